//! Geneve decapsulation on ingress: only from known (peer, VNI) pairs, to this node's address
//! and Geneve port. The result is exactly the inner Ethernet frame, as a Geneve netdev would
//! deliver it.
use aya_ebpf::{
    bindings::{BPF_F_INGRESS, TC_ACT_OK, TC_ACT_UNSPEC, bpf_adj_room_mode::BPF_ADJ_ROOM_MAC},
    helpers::generated::{bpf_redirect, bpf_set_hash_invalid},
    programs::TcContext,
};
use clusterwire_common::{
    drop::DropReason,
    geneve::{GENEVE_HEADER_LEN, GENEVE_PROTO_TEB, GenevePeerKey, VNI_PEER_MARKER},
    stats::Event,
};

use super::CW_GENEVE_PEERS;
use crate::{
    config,
    parse::{
        self, ETH_HLEN, ETH_P_IP, ETH_TYPE_OFF, IPPROTO_UDP, IPV4_DST_OFF, IPV4_FRAG_OFF,
        IPV4_FRAGMENT_MASK, IPV4_MIN_HLEN, IPV4_PROTO_OFF, IPV4_SRC_OFF, IPV4_TOT_LEN_OFF,
        UDP_HLEN, Window,
    },
    stats,
};

/// Geneve flags byte: OAM (control) packet.
const GENEVE_FLAG_OAM: u8 = 0x80;
/// Geneve flags byte: critical options present.
const GENEVE_FLAG_CRITICAL: u8 = 0x40;
/// Offset of the destination port in a UDP header.
const UDP_DPORT_OFF: usize = 2;

/// Decapsulates Geneve addressed to us; `TC_ACT_UNSPEC` (not ours: the next program on the
/// hook decides) untouched for anything else.
#[inline(always)]
pub(super) fn try_decap(ctx: &TcContext) -> Result<i32, DropReason> {
    let config = config::get();

    // Outer Ethernet + fixed IPv4 header.
    let Some(w) = Window::<{ ETH_HLEN + IPV4_MIN_HLEN }>::get(ctx, 0) else {
        return Ok(TC_ACT_UNSPEC);
    };
    let ethertype = w.be16::<ETH_TYPE_OFF>();
    let version_ihl = w.read::<u8, ETH_HLEN>();
    let total_len = w.be16::<{ ETH_HLEN + IPV4_TOT_LEN_OFF }>();
    let frag = w.be16::<{ ETH_HLEN + IPV4_FRAG_OFF }>();
    let protocol = w.read::<u8, { ETH_HLEN + IPV4_PROTO_OFF }>();
    let saddr_be = w.read::<[u8; 4], { ETH_HLEN + IPV4_SRC_OFF }>();
    let daddr_be = w.read::<u32, { ETH_HLEN + IPV4_DST_OFF }>();
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    // Not IPv4/UDP to this node, or a fragment (the stack reassembles those; our peers send DF).
    if ethertype != ETH_P_IP
        || version_ihl >> 4 != 4
        || ihl < IPV4_MIN_HLEN
        || protocol != IPPROTO_UDP
        || frag & IPV4_FRAGMENT_MASK != 0
        || daddr_be != config.local_ipv4_be
    {
        return Ok(TC_ACT_UNSPEC);
    }

    // UDP header: its destination port says whether the packet is ours.
    let udp_at = ETH_HLEN + ihl;
    let Some(udp) = Window::<UDP_HLEN>::get(ctx, udp_at) else {
        return Ok(TC_ACT_UNSPEC);
    };
    if udp.be16::<UDP_DPORT_OFF>() != super::encap::geneve_port(config.geneve_port) {
        return Ok(TC_ACT_UNSPEC);
    }

    // From here on the packet is Geneve for us: anything wrong is a counted drop.
    let geneve_at = udp_at + UDP_HLEN;
    let Some(g) = Window::<GENEVE_HEADER_LEN>::get(ctx, geneve_at) else {
        return Err(DropReason::GeneveMalformed);
    };
    let ver_opt_len = g.read::<u8, 0>();
    let flags = g.read::<u8, 1>();
    let proto = g.be16::<2>();
    let vni_word = u32::from_be(g.read::<u32, 4>());
    // Version 0 only; control (OAM) packets and critical options are not data we can forward.
    if ver_opt_len >> 6 != 0
        || flags & (GENEVE_FLAG_OAM | GENEVE_FLAG_CRITICAL) != 0
        || proto != GENEVE_PROTO_TEB
    {
        return Err(DropReason::GeneveMalformed);
    }
    let options_len = usize::from(ver_opt_len & 0x3f) * 4;
    let inner_at = geneve_at + GENEVE_HEADER_LEN + options_len;
    // The inner frame must hold an Ethernet and an IPv4 header, inside the outer IPv4 length.
    let outer_end = ETH_HLEN + usize::from(total_len);
    if inner_at + ETH_HLEN + IPV4_MIN_HLEN > outer_end || outer_end > ctx.len() as usize {
        return Err(DropReason::GeneveMalformed);
    }

    let vni = vni_word >> 8;
    let peer_key = GenevePeerKey {
        remote_ipv4_be: saddr_be,
        vni,
    };
    let Some(peer) = CW_GENEVE_PEERS.get_ptr(peer_key) else {
        let marker = GenevePeerKey {
            remote_ipv4_be: saddr_be,
            vni: VNI_PEER_MARKER,
        };
        return Err(if CW_GENEVE_PEERS.get_ptr(marker).is_some() {
            DropReason::GeneveUnknownVni
        } else {
            DropReason::GeneveUnknownPeer
        });
    };
    // SAFETY: a value pointer the map lookup just returned; the entry is plain data.
    let (ifindex, dst_mac) = unsafe { ((*peer).ifindex, (*peer).dst_mac) };

    let Some(inner) = Window::<ETH_HLEN>::get(ctx, inner_at) else {
        return Err(DropReason::GeneveMalformed);
    };
    let inner_type = inner.read::<u16, ETH_TYPE_OFF>();
    // Delivered on this device, the frame keeps skb->protocol IPv4: only IPv4 may take that
    // path. A redirect to a device re-parses the inner Ethernet header, so anything goes there.
    if ifindex == 0 && u16::from_be(inner_type) != ETH_P_IP {
        return Err(DropReason::GeneveDecapFailed);
    }
    // The inner Ethernet header, read as scalars before the next bounds check (a pull by it
    // would invalidate `inner`), written over the outer one.
    let (macs_head, macs_tail) = (inner.read::<u64, 0>(), inner.read::<u32, 8>());
    let Some(front) = Window::<ETH_HLEN>::get(ctx, 0) else {
        return Err(DropReason::GeneveMalformed);
    };
    front.write::<u64, 0>(macs_head);
    front.write::<u32, 8>(macs_tail);
    front.write::<u16, ETH_TYPE_OFF>(inner_type);
    // Redirected frames are addressed to the receiving device, as the peer entry says.
    if ifindex != 0 && dst_mac != [0; 6] {
        front.write::<[u8; 6], 0>(dst_mac);
    }

    // Remove outer IPv4, UDP, Geneve (with options) and the inner Ethernet header (now also in
    // front): the `inner_at` bytes after the first ETH_HLEN.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_possible_wrap,
        reason = "at most 60 + 8 + 8 + 252 bytes"
    )]
    let strip = inner_at as i32;
    // A UDP GSO aggregate (encapsulator on the same host, or UDP tunnel GRO) cannot be
    // stripped: the kernel refuses it without BPF_F_ADJ_ROOM_FIXED_GSO, and with it the result
    // would keep skb->encapsulation and be segmented as a tunnel again on delivery. Counted.
    ctx.adjust_room(-strip, BPF_ADJ_ROOM_MAC, 0).map_err(|_| {
        if parse::gso_size(ctx) != 0 {
            DropReason::GeneveGsoUnsupported
        } else {
            DropReason::GeneveDecapFailed
        }
    })?;
    // A cached hash is the outer UDP flow's: invalidate it so the kernel hashes the inner flow
    // again. `skb->hash` 0 means none was computed (the stack's software hash is never 0), so
    // the helper call (~15 ns single-shot) is skipped then; an RSS hash that happens to be 0
    // stays as the NIC set it.
    if parse::skb_hash(ctx) != 0 {
        // SAFETY: plain helper call on our own context.
        unsafe { bpf_set_hash_invalid(ctx.skb.skb) };
    }
    stats::event(Event::GeneveDecap);

    if ifindex == 0 {
        return Ok(TC_ACT_OK);
    }
    // SAFETY: plain helper call; it only records the target device.
    #[expect(clippy::cast_possible_truncation, reason = "returns a TC_ACT_* value")]
    let action = unsafe { bpf_redirect(ifindex, u64::from(BPF_F_INGRESS)) } as i32;
    Ok(action)
}
