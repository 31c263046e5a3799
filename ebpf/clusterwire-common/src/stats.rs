//! Per-peer packet/byte counters and per-CPU event counters.

/// Name of the per-CPU array of [`PeerStats`] indexed by peer id.
pub const PEER_STATS_MAP: &str = "CW_PEER_STATS";
/// Peer ids are below this (size of `CW_PEER_STATS`).
pub const PEER_STATS_MAX: u32 = 256;
/// Name of the per-CPU array of event counters, indexed by [`Event`].
pub const EVENTS_MAP: &str = "CW_EVENTS";

/// Packets and bytes through the tunnel for one peer (`rx` = out of the tunnel, `tx` = into it).
/// Bytes are `skb->len` as the program sees it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Packets received from the peer (leaving the tunnel).
    pub rx_packets: u64,
    /// Bytes received from the peer.
    pub rx_bytes: u64,
    /// Packets sent to the peer (entering the tunnel).
    pub tx_packets: u64,
    /// Bytes sent to the peer.
    pub tx_bytes: u64,
}

const _: () = assert!(size_of::<PeerStats>() == 32);
crate::impl_pod!(PeerStats);

crate::counter_slots! {
    /// Something the datapath did to a packet. The discriminant is the slot in `CW_EVENTS`.
    pub enum Event {
        /// Into the tunnel: a remapped destination became the peer's real address.
        NatDstRewritten = 0 => "nat_dst_rewritten",
        /// Out of the tunnel: the peer's real source became its locally remapped address.
        NatSrcRewritten = 1 => "nat_src_rewritten",
        /// Into the tunnel: an IP-mapped local source became its external-CIDR address.
        IpmapSnat = 2 => "ipmap_snat",
        /// Out of the tunnel: an external-CIDR destination became the local real address.
        IpmapDnat = 3 => "ipmap_dnat",
        /// An ICMP error's embedded header was rewritten along with the outer one.
        IcmpInnerRewritten = 4 => "icmp_inner_rewritten",
        /// A SYN/SYN-ACK MSS option was lowered.
        MssClamped = 5 => "mss_clamped",
        /// A non-first IPv4 fragment got the L3 rewrite only.
        FragmentL3Only = 6 => "fragment_l3_only",
        /// Geneve: a frame was encapsulated.
        GeneveEncap = 7 => "geneve_encap",
        /// Geneve: a frame was decapsulated.
        GeneveDecap = 8 => "geneve_decap",
        /// Geneve: a frame was redirected to a `collect_md` Geneve device.
        GeneveRedirect = 9 => "geneve_redirect",
        /// Out of the tunnel: an ICMP error from a router the peer never announced, accepted
        /// because it quotes a packet we sent to the peer's announced CIDRs (outer source
        /// replaced by the remapped quoted destination).
        IcmpErrorFromRouter = 10 => "icmp_error_from_router",
    }
}

#[cfg(test)]
mod tests {
    use super::Event;

    #[test]
    fn all_is_in_slot_order() {
        for (i, e) in Event::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i, "{} is out of order", e.kind());
        }
    }
}
