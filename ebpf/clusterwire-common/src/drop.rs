//! Why a packet was dropped. Each reason is a slot of the per-CPU counter array `CW_DROPS`.

/// Name of the per-CPU array of drop counters, indexed by [`DropReason`].
pub const DROPS_MAP: &str = "CW_DROPS";

/// Why a packet was dropped (`TC_ACT_SHOT`). The discriminant is the slot in `CW_DROPS`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// A packet leaving the tunnel whose source is outside the peer's announced CIDRs.
    SpoofedSource = 0,
    /// An IPv4 header that is shorter than 20 bytes, has IHL < 5, or whose total length is
    /// smaller than its header or larger than the packet.
    Ipv4Malformed = 1,
    /// A TCP/UDP header (first fragment) too short to hold its checksum, on a packet whose
    /// addresses had to be rewritten: it cannot be rewritten correctly.
    L4Truncated = 2,
    /// An ICMP error that had to be rewritten but whose embedded IPv4 header is truncated or
    /// malformed, so it cannot be translated consistently (RFC 5508).
    IcmpInnerMalformed = 3,
    /// `bpf_l4_csum_replace` failed.
    CsumHelperFailed = 4,
    /// `bpf_skb_pull_data` failed to make the headers linear.
    PullFailed = 5,
    /// A packet pointer check failed after a successful parse (should not happen).
    RewriteFailed = 6,
    /// Geneve: a packet to the Geneve port that is not valid Geneve.
    GeneveMalformed = 7,
    /// Geneve: outer source not a known peer.
    GeneveUnknownPeer = 8,
    /// Geneve: VNI not configured.
    GeneveUnknownVni = 9,
    /// Geneve: encapsulation (`bpf_skb_adjust_room`, header writes) failed.
    GeneveEncapFailed = 10,
    /// Geneve: decapsulation failed.
    GeneveDecapFailed = 11,
    /// Geneve: setting the tunnel key or redirecting failed.
    GeneveRedirectFailed = 12,
}

impl DropReason {
    /// Number of reasons (slots in `CW_DROPS`).
    pub const COUNT: u32 = 13;

    /// Every reason, in slot order.
    pub const ALL: [Self; Self::COUNT as usize] = [
        Self::SpoofedSource,
        Self::Ipv4Malformed,
        Self::L4Truncated,
        Self::IcmpInnerMalformed,
        Self::CsumHelperFailed,
        Self::PullFailed,
        Self::RewriteFailed,
        Self::GeneveMalformed,
        Self::GeneveUnknownPeer,
        Self::GeneveUnknownVni,
        Self::GeneveEncapFailed,
        Self::GeneveDecapFailed,
        Self::GeneveRedirectFailed,
    ];

    /// The reason for a slot index.
    pub const fn from_index(index: u32) -> Option<Self> {
        if index < Self::COUNT {
            Some(Self::ALL[index as usize])
        } else {
            None
        }
    }

    /// Stable `snake_case` name, for metric labels and logs.
    pub const fn kind(self) -> &'static str {
        match self {
            Self::SpoofedSource => "spoofed_source",
            Self::Ipv4Malformed => "ipv4_malformed",
            Self::L4Truncated => "l4_truncated",
            Self::IcmpInnerMalformed => "icmp_inner_malformed",
            Self::CsumHelperFailed => "csum_helper_failed",
            Self::PullFailed => "pull_failed",
            Self::RewriteFailed => "rewrite_failed",
            Self::GeneveMalformed => "geneve_malformed",
            Self::GeneveUnknownPeer => "geneve_unknown_peer",
            Self::GeneveUnknownVni => "geneve_unknown_vni",
            Self::GeneveEncapFailed => "geneve_encap_failed",
            Self::GeneveDecapFailed => "geneve_decap_failed",
            Self::GeneveRedirectFailed => "geneve_redirect_failed",
        }
    }

    /// Same as [`Self::kind`].
    pub const fn name(self) -> &'static str {
        self.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::DropReason;

    #[test]
    fn all_is_in_slot_order() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{} is out of order", r.kind());
            assert_eq!(DropReason::from_index(u32::try_from(i).unwrap()), Some(*r));
        }
        assert_eq!(DropReason::from_index(DropReason::COUNT), None);
    }
}
