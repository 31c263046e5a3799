//! Remapping IPAM: decides and allocates CIDR remaps and single-IP mappings (no Kubernetes).
//!
//! Each cluster decides, locally and independently, how it sees every peer:
//!
//! - **Remote CIDRs** ([`Ipam::map_cluster`]): a peer's pod and external CIDRs are used unchanged
//!   when they overlap no local range (pod, service, external, internal, reserved) and no live
//!   allocation; otherwise each is remapped to the lowest free block of the same size in the
//!   remap pools (defaults 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 for IPv4, `fd00::/8` for
//!   IPv6), tried in order. The data plane keeps host bits, so a remap is a prefix swap.
//! - **Single-IP mappings** ([`Ipam::allocate_ip`], the `IP` resource): a local IP gets an
//!   address of the external CIDR (default 10.70.0.0/16); the first address is never handed out,
//!   it is the "unknown source" address ([`Ipam::unknown_source_address`]).
//! - **Internal addresses** ([`Ipam::allocate_internal`]): one address of the internal CIDR
//!   (default 10.80.0.0/16) per node and gateway; the first (network) address is skipped.
//!
//! Determinism and restarts: answers depend only on the configuration and the set of live
//! allocations (first fit, lowest address first), not on history. After a restart the
//! controller restores what the resources record ([`Ipam::restore_cluster`] from Configuration
//! statuses, [`Ipam::restore_ip`] from IP statuses, [`Ipam::restore_internal`]) in any order, and
//! the rebuilt IPAM gives the same answers as the original. Releases ([`Ipam::release_cluster`],
//! [`Ipam::release_ip`], [`Ipam::release_internal`]) free space for reuse.
//!
//! IPv6 is modelled throughout: CIDRs, pools and address ranges are per family.
//!
//! Structure: occupied space per family is one sorted, coalesced interval set (`BTreeMap` of
//! `u128` start -> end), so a first-fit search jumps a whole run of packed allocations in one
//! `O(log n)` step.
//!
//! ```
//! use clusterwire_ipam::{Family, Ipam, IpamConfig, RemoteCidrs};
//!
//! let config = IpamConfig::new(
//!     vec!["10.243.0.0/16".parse().unwrap()],
//!     vec!["10.96.0.0/12".parse().unwrap()],
//! );
//! let mut ipam = Ipam::new(config.clone()).unwrap();
//! // A peer with the same pod CIDR as ours: remapped to the lowest free /16 of 10.0.0.0/8.
//! let remote = RemoteCidrs {
//!     pod: vec!["10.243.0.0/16".parse().unwrap()],
//!     external: vec!["10.70.0.0/16".parse().unwrap()],
//! };
//! let mapping = ipam.map_cluster("cl02", &remote).unwrap();
//! assert_eq!(mapping.pod[0].target().to_string(), "10.0.0.0/16");
//! assert_eq!(mapping.external[0].target().to_string(), "10.1.0.0/16");
//!
//! // After a restart: restore what the Configuration status recorded, same answers follow.
//! let mut rebuilt = Ipam::new(config).unwrap();
//! rebuilt.restore_cluster("cl02", &mapping).unwrap();
//! assert_eq!(
//!     rebuilt.map_cluster("cl03", &remote).unwrap(),
//!     ipam.map_cluster("cl03", &remote).unwrap()
//! );
//! assert_eq!(ipam.unknown_source_address(Family::V4), Some("10.70.0.0".parse().unwrap()));
//! ```
#![forbid(unsafe_code)]

mod addr;
mod config;
mod error;
mod interval;
mod ipam;
mod pool;
mod remap;

pub use addr::Family;
pub use config::{
    DEFAULT_EXTERNAL_CIDR, DEFAULT_INTERNAL_CIDR, DEFAULT_POOLS_V4, DEFAULT_POOLS_V6, IpamConfig,
};
pub use error::IpamError;
pub use ipam::{InternalOwner, Ipam};
pub use remap::{ClusterMapping, Remap, RemoteCidrs};
