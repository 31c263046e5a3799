//! Typed IPAM errors: exhaustion, invalid input, and conflicts while restoring recorded state.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::Family;

/// Everything the IPAM can refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// No free block of the needed size is left in the remap pools of that family.
    #[error(
        "remap pools exhausted: no free /{prefix_len} block left in the {family} pools to remap {source_cidr}"
    )]
    PoolsExhausted {
        /// The remote CIDR that needed a remap.
        source_cidr: IpNet,
        /// Its prefix length (the size of the block looked for).
        prefix_len: u8,
        /// Its address family.
        family: Family,
    },
    /// No remap pool is configured for that family.
    #[error("no {family} remap pool is configured, cannot remap {source_cidr}")]
    NoPool {
        /// The remote CIDR that needed a remap.
        source_cidr: IpNet,
        /// Its address family.
        family: Family,
    },
    /// Every address of a single-address range is taken.
    #[error("no free address left in {cidr}")]
    AddressesExhausted {
        /// The range (external or internal CIDR).
        cidr: IpNet,
    },
    /// No external/internal CIDR of that family is configured.
    #[error("no {what} CIDR of family {family} is configured")]
    NoRange {
        /// "external" or "internal".
        what: &'static str,
        /// The requested family.
        family: Family,
    },
    /// A CIDR given as input is unusable.
    #[error("invalid CIDR {cidr}: {reason}")]
    InvalidCidr {
        /// The offending CIDR.
        cidr: IpNet,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A remap whose two sides differ in family or size.
    #[error(
        "invalid remap {source_cidr} -> {target}: source and target must have the same family and prefix length"
    )]
    RemapSizeMismatch {
        /// The real (remote) CIDR.
        source_cidr: IpNet,
        /// The remapped CIDR.
        target: IpNet,
    },
    /// The cluster already has a mapping for different CIDRs; release it first.
    #[error("cluster {cluster} is already mapped for other CIDRs; release it before mapping again")]
    AlreadyMapped {
        /// The remote cluster id.
        cluster: String,
    },
    /// The key already holds an address for another local IP.
    #[error("{key} already maps local IP {existing}, not {requested}")]
    KeyConflict {
        /// The allocation key (e.g. namespace/name of the IP resource).
        key: String,
        /// The local IP it maps.
        existing: IpAddr,
        /// The local IP now requested.
        requested: IpAddr,
    },
    /// A recorded allocation cannot be restored: it overlaps local ranges or another allocation,
    /// or it is outside the range it must come from.
    #[error("cannot restore {what} {address}: {reason}")]
    RestoreConflict {
        /// What was being restored ("remap", "identity mapping", "IP", "internal address").
        what: &'static str,
        /// The recorded address or CIDR.
        address: IpNet,
        /// Why it cannot be restored.
        reason: &'static str,
    },
}

impl IpamError {
    /// A short stable name, for metric labels and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::PoolsExhausted { .. } => "pools_exhausted",
            Self::NoPool { .. } => "no_pool",
            Self::AddressesExhausted { .. } => "addresses_exhausted",
            Self::NoRange { .. } => "no_range",
            Self::InvalidCidr { .. } => "invalid_cidr",
            Self::RemapSizeMismatch { .. } => "remap_size_mismatch",
            Self::AlreadyMapped { .. } => "already_mapped",
            Self::KeyConflict { .. } => "key_conflict",
            Self::RestoreConflict { .. } => "restore_conflict",
        }
    }
}
