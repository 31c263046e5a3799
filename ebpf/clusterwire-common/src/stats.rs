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

/// Something the datapath did to a packet. The discriminant is the slot in `CW_EVENTS`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// Into the tunnel: a remapped destination became the peer's real address.
    NatDstRewritten = 0,
    /// Out of the tunnel: the peer's real source became its locally remapped address.
    NatSrcRewritten = 1,
    /// Into the tunnel: an IP-mapped local source became its external-CIDR address.
    IpmapSnat = 2,
    /// Out of the tunnel: an external-CIDR destination became the local real address.
    IpmapDnat = 3,
    /// An ICMP error's embedded header was rewritten along with the outer one.
    IcmpInnerRewritten = 4,
    /// A SYN/SYN-ACK MSS option was lowered.
    MssClamped = 5,
    /// A non-first IPv4 fragment got the L3 rewrite only.
    FragmentL3Only = 6,
    /// Geneve: a frame was encapsulated.
    GeneveEncap = 7,
    /// Geneve: a frame was decapsulated.
    GeneveDecap = 8,
    /// Geneve: a frame was redirected to a `collect_md` Geneve device.
    GeneveRedirect = 9,
}

impl Event {
    /// Number of events (slots in `CW_EVENTS`).
    pub const COUNT: u32 = 10;

    /// Every event, in slot order.
    pub const ALL: [Self; Self::COUNT as usize] = [
        Self::NatDstRewritten,
        Self::NatSrcRewritten,
        Self::IpmapSnat,
        Self::IpmapDnat,
        Self::IcmpInnerRewritten,
        Self::MssClamped,
        Self::FragmentL3Only,
        Self::GeneveEncap,
        Self::GeneveDecap,
        Self::GeneveRedirect,
    ];

    /// Stable `snake_case` name, for metric labels and logs.
    pub const fn kind(self) -> &'static str {
        match self {
            Self::NatDstRewritten => "nat_dst_rewritten",
            Self::NatSrcRewritten => "nat_src_rewritten",
            Self::IpmapSnat => "ipmap_snat",
            Self::IpmapDnat => "ipmap_dnat",
            Self::IcmpInnerRewritten => "icmp_inner_rewritten",
            Self::MssClamped => "mss_clamped",
            Self::FragmentL3Only => "fragment_l3_only",
            Self::GeneveEncap => "geneve_encap",
            Self::GeneveDecap => "geneve_decap",
            Self::GeneveRedirect => "geneve_redirect",
        }
    }

    /// Same as [`Self::kind`].
    pub const fn name(self) -> &'static str {
        self.kind()
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
