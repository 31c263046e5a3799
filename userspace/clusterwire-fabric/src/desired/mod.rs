//! Desired state computed from a [`Snapshot`]: plain data the daemons apply as a diff.
//!
//! - [`gateway()`]: one peering's gateway (WireGuard, remap and single-IP tables, routes to the
//!   local nodes, the remote CIDRs into the tunnel);
//! - [`agent()`]: one node's agent (Geneve routes to every gateway, decapsulation peers, the
//!   node's internal address);
//! - [`diff()`]: what to add, update and remove to get there.
//!
//! Problems with the objects that define the daemon's own peering (its gateway, the
//! Configuration, the `PublicKey`) are a [`DesiredError`]: there is nothing sensible to apply,
//! so the daemon keeps what it applied last. Problems with shared objects (one Node, one IP,
//! one other `InternalFabric`) only skip that object and are listed as [`Skipped`].
//!
//! The data plane is IPv4-only for now: IPv6 CIDRs and addresses are errors or skipped.

mod agent;
mod diff;
mod gateway;

use std::fmt;

pub use agent::{AgentDesired, AgentGateway, AgentRoute, KINDS as AGENT_KINDS, agent};
pub use diff::{Changes, SetChanges, diff, diff_sets};
pub use gateway::{
    Endpoint, GatewayDesired, GatewayId, NodeRoute, PEERING_KINDS, PERSISTENT_KEEPALIVE_SECS, Role,
    TUNNEL_INTERFACE, WireGuard, WireGuardPeer, gateway, gateway_ids,
};

use crate::snapshot::{Key, Kind};

/// A Geneve VNI: 24 bits, never 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vni(u32);

impl Vni {
    /// Largest VNI.
    pub const MAX: u32 = 0x00FF_FFFF;

    /// A VNI in 1..=2^24-1.
    pub fn try_new(vni: u32) -> Option<Self> {
        (1..=Self::MAX).contains(&vni).then_some(Self(vni))
    }

    /// The value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The VNI of the gateway whose `InternalFabric` is `fabric`, when its `spec.vni` is not
    /// set: stable across restarts and identical on every node and on the gateway, because it
    /// depends only on the fabric's namespace/name. It is the 32-bit FNV-1a hash of
    /// `"<namespace>/<name>"` folded to 24 bits (the top byte `XORed` into the low 24 bits), and
    /// 1 if that is 0. Two fabrics collide with probability about n²/2^25; a controller that
    /// wants a guarantee writes `spec.vni`, which takes precedence.
    pub fn derive(fabric: &Key) -> Self {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in format!("{}/{}", fabric.namespace, fabric.name).bytes() {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        let folded = (hash >> 24) ^ (hash & Self::MAX);
        Self(folded.max(1))
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A shared object left out of the desired state, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The object.
    pub kind: Kind,
    /// Its key.
    pub key: Key,
    /// The field concerned (dotted path), empty for the whole object.
    pub field: String,
    /// Why.
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.kind, self.key)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.reason)
    }
}

/// Why no desired state can be computed for a daemon.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DesiredError {
    /// The gateway object is not in the snapshot.
    #[error("{kind} {key} not found")]
    NoGateway {
        /// `GatewayServer` or `GatewayClient`.
        kind: Kind,
        /// Its key.
        key: Key,
    },
    /// An object lacks the `liqo.io/remote-cluster-id` label.
    #[error("{kind} {key}: metadata.labels: no liqo.io/remote-cluster-id label")]
    NoRemoteClusterId {
        /// The kind.
        kind: Kind,
        /// Its key.
        key: Key,
    },
    /// No object of `kind` is labelled with the remote cluster id.
    #[error("no {kind} labelled liqo.io/remote-cluster-id={remote_cluster_id} (for {gateway})")]
    Missing {
        /// What is missing.
        kind: Kind,
        /// The remote cluster.
        remote_cluster_id: String,
        /// The gateway that needs it.
        gateway: Key,
    },
    /// A field has a value the data plane cannot use.
    #[error("{kind} {key}: {field}: {reason}")]
    Field {
        /// The kind.
        kind: Kind,
        /// The object.
        key: Key,
        /// Dotted path of the field.
        field: String,
        /// Why.
        reason: String,
    },
}

#[cfg(test)]
mod vni_tests {
    use super::*;

    #[test]
    fn vni_range_and_derivation() {
        assert_eq!(Vni::try_new(0), None);
        assert_eq!(Vni::try_new(1).map(Vni::get), Some(1));
        assert_eq!(Vni::try_new(0xFF_FFFF).map(Vni::get), Some(16_777_215));
        assert_eq!(Vni::try_new(0x100_0000), None);
        // FNV-1a("liqo-tenant-cl02/cl02") = 0x390ebbcf -> 0x0ebbcf ^ 0x39 = 965622.
        assert_eq!(
            Vni::derive(&Key::new("liqo-tenant-cl02", "cl02")).get(),
            965_622
        );
        assert_eq!(
            Vni::derive(&Key::new("liqo-tenant-cl03", "cl03")).get(),
            3_176_718
        );
        // A cluster-scoped key hashes "/<name>": FNV-1a("/") = 0x2a0c975e -> 825204.
        assert_eq!(Vni::derive(&Key::default()).get(), 825_204);
    }
}

#[cfg(test)]
mod tests;
