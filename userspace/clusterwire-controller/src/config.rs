//! The controller's validated configuration: the local CIDRs the IPAM never hands out and the
//! remap pools.

use clusterwire_ipam::{Ipam, IpamConfig, IpamError};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// What the controller knows about the local cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerConfig {
    /// Local pod CIDRs.
    pub pod_cidrs: Vec<IpNet>,
    /// Local service CIDRs.
    pub service_cidrs: Vec<IpNet>,
    /// Local external CIDR(s) (default 10.70.0.0/16).
    pub external_cidrs: Vec<IpNet>,
    /// Local internal CIDR(s) (default 10.80.0.0/16).
    pub internal_cidrs: Vec<IpNet>,
    /// Other ranges no remap may use.
    pub reserved: Vec<IpNet>,
    /// IPv4 remap pools, in order (default the RFC 1918 ranges).
    pub pools_v4: Vec<Ipv4Net>,
    /// IPv6 remap pools, in order.
    pub pools_v6: Vec<Ipv6Net>,
}

impl ControllerConfig {
    /// The IPAM configuration.
    pub fn ipam_config(&self) -> IpamConfig {
        let Self {
            pod_cidrs,
            service_cidrs,
            external_cidrs,
            internal_cidrs,
            reserved,
            pools_v4,
            pools_v6,
        } = self.clone();
        IpamConfig {
            pod_cidrs,
            service_cidrs,
            external_cidrs,
            internal_cidrs,
            reserved,
            pools_v4,
            pools_v6,
        }
    }

    /// An empty IPAM over this configuration (validated).
    pub fn ipam(&self) -> Result<Ipam, IpamError> {
        Ipam::new(self.ipam_config())
    }
}

impl From<IpamConfig> for ControllerConfig {
    fn from(config: IpamConfig) -> Self {
        let IpamConfig {
            pod_cidrs,
            service_cidrs,
            external_cidrs,
            internal_cidrs,
            reserved,
            pools_v4,
            pools_v6,
        } = config;
        Self {
            pod_cidrs,
            service_cidrs,
            external_cidrs,
            internal_cidrs,
            reserved,
            pools_v4,
            pools_v6,
        }
    }
}
