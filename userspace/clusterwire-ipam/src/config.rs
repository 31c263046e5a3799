//! The local view the IPAM starts from: local CIDRs, reserved ranges and remap pools.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

/// Default external CIDR (its first address is the "unknown source" address).
pub const DEFAULT_EXTERNAL_CIDR: &str = "10.70.0.0/16";
/// Default internal CIDR (addresses of nodes and gateways on the fabric).
pub const DEFAULT_INTERNAL_CIDR: &str = "10.80.0.0/16";
/// Default IPv4 remap pools (RFC 1918), tried in this order.
pub const DEFAULT_POOLS_V4: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];
/// Default IPv6 remap pool (the locally assigned half of the unique local range, RFC 4193).
pub const DEFAULT_POOLS_V6: [&str; 1] = ["fd00::/8"];

/// What the IPAM knows about the local cluster. Every CIDR here is a local range: remote CIDRs
/// overlapping one of them are remapped, and no remap is ever placed on one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpamConfig {
    /// Local pod CIDRs.
    pub pod_cidrs: Vec<IpNet>,
    /// Local service CIDRs.
    pub service_cidrs: Vec<IpNet>,
    /// Local external CIDRs (at most one per family is used for single-IP mappings).
    pub external_cidrs: Vec<IpNet>,
    /// Local internal CIDRs (at most one per family is used for node/gateway addresses).
    pub internal_cidrs: Vec<IpNet>,
    /// Other ranges no remap may use (node networks, load balancer ranges, ...).
    pub reserved: Vec<IpNet>,
    /// IPv4 remap pools, searched in order, lowest address first.
    pub pools_v4: Vec<Ipv4Net>,
    /// IPv6 remap pools, searched in order, lowest address first.
    pub pools_v6: Vec<Ipv6Net>,
}

impl IpamConfig {
    /// A configuration with the given local pod and service CIDRs and the defaults for the rest
    /// (external 10.70.0.0/16, internal 10.80.0.0/16, RFC 1918 pools, `fd00::/8`).
    pub fn new(pod_cidrs: Vec<IpNet>, service_cidrs: Vec<IpNet>) -> Self {
        Self {
            pod_cidrs,
            service_cidrs,
            external_cidrs: vec![DEFAULT_EXTERNAL_CIDR.parse().expect("valid default")],
            internal_cidrs: vec![DEFAULT_INTERNAL_CIDR.parse().expect("valid default")],
            reserved: Vec::new(),
            pools_v4: DEFAULT_POOLS_V4
                .iter()
                .map(|p| p.parse().expect("valid default"))
                .collect(),
            pools_v6: DEFAULT_POOLS_V6
                .iter()
                .map(|p| p.parse().expect("valid default"))
                .collect(),
        }
    }

    /// Every local range (pod, service, external, internal, reserved).
    pub fn local_ranges(&self) -> impl Iterator<Item = &IpNet> {
        let Self {
            pod_cidrs,
            service_cidrs,
            external_cidrs,
            internal_cidrs,
            reserved,
            pools_v4: _,
            pools_v6: _,
        } = self;
        pod_cidrs
            .iter()
            .chain(service_cidrs)
            .chain(external_cidrs)
            .chain(internal_cidrs)
            .chain(reserved)
    }
}
