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

/// Name of the one-entry array that switches the drop monitor: slot 0 holds `MONITOR_*` bits,
/// 0 (off) by default. The programs read it once per drop, never on other packets.
pub const MONITOR_MAP: &str = "CW_MONITOR";

/// Name of the ring buffer the programs write a [`DropEvent`] to for each drop while the
/// monitor is on.
pub const MONITOR_EVENTS_MAP: &str = "CW_MONITOR_EVENTS";

/// `CW_MONITOR` bit: emit a [`DropEvent`] per drop.
pub const MONITOR_DROPS: u32 = 1 << 0;

/// Size of `CW_MONITOR_EVENTS` in bytes (a power-of-2 number of pages): about 1,300 events
/// (40 bytes + an 8-byte record header each) waiting for a reader. When it is full, events are
/// lost (the drop is still counted in `CW_DROPS`).
pub const MONITOR_RING_BYTES: u32 = 64 * 1024;

/// The program that dropped a packet ([`DropEvent::program`]).
pub const PROGRAM_NAT_TO_TUNNEL: u8 = 0;
/// See [`PROGRAM_NAT_TO_TUNNEL`].
pub const PROGRAM_NAT_FROM_TUNNEL: u8 = 1;
/// See [`PROGRAM_NAT_TO_TUNNEL`].
pub const PROGRAM_GENEVE_ENCAP: u8 = 2;
/// See [`PROGRAM_NAT_TO_TUNNEL`].
pub const PROGRAM_GENEVE_DECAP: u8 = 3;

/// Program names by `PROGRAM_*` value.
pub const PROGRAM_NAMES: [&str; 4] = [
    "cw_nat_to_tunnel",
    "cw_nat_from_tunnel",
    "cw_geneve_encap",
    "cw_geneve_decap",
];

/// [`DropEvent::flags`]: the packet is IPv4 and the addresses (and protocol) were read.
pub const DROP_EVENT_IPV4: u8 = 1 << 0;
/// [`DropEvent::flags`]: the ports were read (TCP or UDP first fragment, header present).
pub const DROP_EVENT_PORTS: u8 = 1 << 1;

/// One dropped packet, as the programs report it to `CW_MONITOR_EVENTS` when the monitor is on.
/// The packet is read as it was at the drop (a drop in the middle of a rewrite shows the
/// partly rewritten packet).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[expect(
    clippy::pub_underscore_fields,
    reason = "explicit padding, public so the type can be built literally"
)]
pub struct DropEvent {
    /// `bpf_ktime_get_ns()` at the drop (`CLOCK_MONOTONIC`).
    pub ktime_ns: u64,
    /// The [`DropReason`] (its slot index).
    pub reason: u32,
    /// `skb->ifindex`: the device the program runs on.
    pub ifindex: u32,
    /// `skb->len`.
    pub len: u32,
    /// IPv4 source address, network order (with [`DROP_EVENT_IPV4`]).
    pub src_be: [u8; 4],
    /// IPv4 destination address, network order (with [`DROP_EVENT_IPV4`]).
    pub dst_be: [u8; 4],
    /// TCP/UDP source port, host order (with [`DROP_EVENT_PORTS`]).
    pub sport: u16,
    /// TCP/UDP destination port, host order (with [`DROP_EVENT_PORTS`]).
    pub dport: u16,
    /// IP protocol (with [`DROP_EVENT_IPV4`]).
    pub proto: u8,
    /// `PROGRAM_*`: which program dropped it.
    pub program: u8,
    /// `DROP_EVENT_*` bits: which fields were read.
    pub flags: u8,
    /// Explicit padding.
    pub _pad0: u8,
    /// Explicit padding.
    pub _pad1: u32,
}

const _: () = assert!(size_of::<DropEvent>() == 40);
crate::impl_pod!(DropEvent);

impl DropEvent {
    /// The drop reason, `None` for an index this build does not know.
    pub const fn drop_reason(&self) -> Option<DropReason> {
        DropReason::from_index(self.reason)
    }

    /// The program's name, `"?"` for an unknown value.
    pub const fn program_name(&self) -> &'static str {
        if (self.program as usize) < PROGRAM_NAMES.len() {
            PROGRAM_NAMES[self.program as usize]
        } else {
            "?"
        }
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
