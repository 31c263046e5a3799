//! What the running kernel offers the datapath, by the kernel release each feature appeared in
//! (stock kernels; a distribution kernel with backports may have more). The loader uses TCX
//! only where it exists; `cwctl selfcheck` prints the whole table so an operator sees exactly
//! what is missing instead of a verifier error.
use aya::util::KernelVersion;

/// One kernel feature the datapath uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feature {
    /// Short name.
    pub name: &'static str,
    /// What clusterwire uses it for, and what happens without it.
    pub used_for: &'static str,
    /// First kernel release that has it.
    pub since: (u8, u8),
}

/// Every feature probed, oldest first.
pub const FEATURES: &[Feature] = &[
    Feature {
        name: "adjust_room encap flags",
        used_for: "native Geneve encapsulation (BPF_F_ADJ_ROOM_ENCAP_L4_UDP / ENCAP_L2); required",
        since: (5, 2),
    },
    Feature {
        name: "bpf_check_mtu",
        used_for: "the MTU check at encapsulation; required by cw_geneve_encap",
        since: (5, 12),
    },
    Feature {
        name: "44-byte tunnel key",
        used_for: "bpf_skb_set_tunnel_key with the local (source) address, for kernel collect_md Geneve devices",
        since: (6, 0),
    },
    Feature {
        name: "TCX",
        used_for: "BPF links on TC hooks with ordering (otherwise netlink clsact filters)",
        since: (6, 6),
    },
];

/// The running kernel's release, if it can be read.
pub fn kernel() -> Option<KernelVersion> {
    KernelVersion::current().ok()
}

/// Whether `feature` is available on the running kernel (unknown kernel: assumed missing).
pub fn available(feature: &Feature) -> bool {
    kernel().is_some_and(|k| k >= KernelVersion::new(feature.since.0, feature.since.1, 0))
}

/// Whether the kernel attaches TC programs with TCX links.
pub fn tcx() -> bool {
    FEATURES
        .iter()
        .find(|f| f.name == "TCX")
        .is_some_and(available)
}

/// The features the running kernel lacks.
pub fn missing() -> Vec<&'static Feature> {
    FEATURES.iter().filter(|f| !available(f)).collect()
}

#[cfg(test)]
mod tests {
    use super::FEATURES;

    #[test]
    fn features_are_listed_oldest_first() {
        let since: Vec<_> = FEATURES.iter().map(|f| f.since).collect();
        let mut sorted = since.clone();
        sorted.sort_unstable();
        assert_eq!(since, sorted);
    }
}
