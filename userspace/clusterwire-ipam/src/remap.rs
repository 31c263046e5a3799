//! The values the IPAM hands out for a remote cluster: one [`Remap`] per remote CIDR.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::IpamError;

/// How one remote CIDR appears locally: `source` is the remote cluster's real CIDR, `target` the
/// CIDR the local cluster uses for it (equal to `source` when no remap was needed). Both sides
/// always have the same family and prefix length (host bits are kept by the data plane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Remap {
    source: IpNet,
    target: IpNet,
}

impl Remap {
    /// Validates that both sides are canonical CIDRs of the same family and size.
    pub fn try_new(source: IpNet, target: IpNet) -> Result<Self, IpamError> {
        for net in [source, target] {
            if net.trunc() != net {
                return Err(IpamError::InvalidCidr {
                    cidr: net,
                    reason: "host bits are set",
                });
            }
        }
        let same_family = matches!(
            (source, target),
            (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
        );
        if !same_family || source.prefix_len() != target.prefix_len() {
            return Err(IpamError::RemapSizeMismatch {
                source_cidr: source,
                target,
            });
        }
        Ok(Self { source, target })
    }

    /// The remote cluster's real CIDR.
    pub fn source(&self) -> IpNet {
        self.source
    }

    /// The CIDR the local cluster uses for it.
    pub fn target(&self) -> IpNet {
        self.target
    }

    /// Whether the remote CIDR is used unchanged.
    pub fn is_identity(&self) -> bool {
        self.source == self.target
    }
}

/// The real CIDRs a remote cluster announces (`spec.remote.cidr` of a Configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteCidrs {
    /// Remote pod CIDRs.
    pub pod: Vec<IpNet>,
    /// Remote external CIDRs.
    pub external: Vec<IpNet>,
}

/// How the local cluster sees one remote cluster (`status.remote.cidr` of a Configuration):
/// one remap per remote CIDR, in the order of [`RemoteCidrs`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMapping {
    /// Remaps of the pod CIDRs.
    pub pod: Vec<Remap>,
    /// Remaps of the external CIDRs.
    pub external: Vec<Remap>,
}

impl ClusterMapping {
    /// The remote CIDRs this mapping was made for.
    pub fn sources(&self) -> RemoteCidrs {
        RemoteCidrs {
            pod: self.pod.iter().map(Remap::source).collect(),
            external: self.external.iter().map(Remap::source).collect(),
        }
    }

    /// Every remap, pod first then external.
    pub fn iter(&self) -> impl Iterator<Item = &Remap> {
        self.pod.iter().chain(&self.external)
    }
}

#[cfg(test)]
mod tests {
    use super::Remap;
    use crate::IpamError;

    #[test]
    fn try_new_rejects_size_and_family_mismatch() {
        let v4_16 = "10.1.0.0/16".parse().unwrap();
        let v4_24 = "10.2.0.0/24".parse().unwrap();
        let v6 = "fd00::/16".parse().unwrap();
        assert!(matches!(
            Remap::try_new(v4_16, v4_24),
            Err(IpamError::RemapSizeMismatch { .. })
        ));
        assert!(matches!(
            Remap::try_new(v6, v4_16),
            Err(IpamError::RemapSizeMismatch { .. })
        ));
        let host_bits = "10.1.2.0/16".parse().unwrap();
        assert!(matches!(
            Remap::try_new(host_bits, v4_16),
            Err(IpamError::InvalidCidr { .. })
        ));
        let ok = Remap::try_new(v4_16, "10.9.0.0/16".parse().unwrap()).unwrap();
        assert!(!ok.is_identity());
    }
}
