//! Why a packet was dropped. Each reason is a slot of the per-CPU counter array `CW_DROPS`.

/// Name of the per-CPU array of drop counters, indexed by [`DropReason`].
pub const DROPS_MAP: &str = "CW_DROPS";

crate::counter_slots! {
    /// Why a packet was dropped (`TC_ACT_SHOT`). The discriminant is the slot in `CW_DROPS`.
    pub enum DropReason {
        /// A packet leaving the tunnel whose source is outside the peer's announced CIDRs.
        SpoofedSource = 0 => "spoofed_source",
        /// An IPv4 header that is shorter than 20 bytes, has IHL < 5, or whose total length is
        /// smaller than its header or larger than the packet.
        Ipv4Malformed = 1 => "ipv4_malformed",
        /// A TCP/UDP header (first fragment) too short to hold its checksum, on a packet whose
        /// addresses had to be rewritten: it cannot be rewritten correctly.
        L4Truncated = 2 => "l4_truncated",
        /// An ICMP error that had to be rewritten but whose embedded IPv4 header is truncated or
        /// malformed, so it cannot be translated consistently (RFC 5508).
        IcmpInnerMalformed = 3 => "icmp_inner_malformed",
        /// `bpf_l4_csum_replace` failed.
        CsumHelperFailed = 4 => "csum_helper_failed",
        /// `bpf_skb_pull_data` failed to make the headers linear.
        PullFailed = 5 => "pull_failed",
        /// A packet pointer check failed after a successful parse (should not happen).
        RewriteFailed = 6 => "rewrite_failed",
        /// Geneve: a packet to the Geneve port that is not valid Geneve.
        GeneveMalformed = 7 => "geneve_malformed",
        /// Geneve: outer source not a known peer.
        GeneveUnknownPeer = 8 => "geneve_unknown_peer",
        /// Geneve: VNI not configured.
        GeneveUnknownVni = 9 => "geneve_unknown_vni",
        /// Geneve: encapsulation (`bpf_skb_adjust_room`, header writes) failed.
        GeneveEncapFailed = 10 => "geneve_encap_failed",
        /// Geneve: decapsulation failed.
        GeneveDecapFailed = 11 => "geneve_decap_failed",
        /// Geneve: setting the tunnel key or redirecting failed.
        GeneveRedirectFailed = 12 => "geneve_redirect_failed",
        /// Geneve: a packet whose encapsulated size exceeds the egress device's MTU
        /// (`bpf_check_mtu`); not a GSO packet (those are segmented to fit).
        GeneveMtuExceeded = 13 => "geneve_mtu_exceeded",
        /// Out of the tunnel: a packet that is not IPv4 (IPv6, VLAN-tagged, any other
        /// ethertype but ARP), which the anti-spoofing check cannot judge.
        NonIpv4FromTunnel = 14 => "non_ipv4_from_tunnel",
        /// Geneve: a GSO packet the kernel cannot encapsulate natively (already encapsulated,
        /// or a GSO type `bpf_skb_adjust_room` refuses; sending it unencapsulated would leak
        /// it), or a UDP GSO aggregate that cannot be decapsulated.
        GeneveGsoUnsupported = 15 => "geneve_gso_unsupported",
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
