//! Geneve decapsulation on ingress: only from known (peer, VNI) pairs, to this node's address
//! and Geneve port. The result is exactly the inner Ethernet frame, as a Geneve netdev would
//! deliver it.
use aya_ebpf::{
    bindings::{BPF_F_INGRESS, TC_ACT_OK, bpf_adj_room_mode::BPF_ADJ_ROOM_MAC},
    helpers::generated::{bpf_redirect, bpf_set_hash_invalid},
    programs::TcContext,
};
use clusterwire_common::geneve::{
    ETH_HEADER_LEN, GENEVE_HEADER_LEN, GENEVE_PROTO_TEB, GenevePeerKey, UDP_HEADER_LEN,
    VNI_PEER_MARKER,
};

use super::CW_GENEVE_PEERS;
use clusterwire_common::{drop::DropReason, stats::Event};

use crate::{config, parse, stats};

const ETH_P_IPV4: u16 = 0x0800;
const IPPROTO_UDP: u8 = 17;
/// Fixed IPv4 header length (the outer header may carry options: IHL is honoured).
const IPV4_MIN_LEN: usize = 20;
/// Geneve flags byte: OAM (control) packet.
const GENEVE_FLAG_OAM: u8 = 0x80;
/// Geneve flags byte: critical options present.
const GENEVE_FLAG_CRITICAL: u8 = 0x40;

/// Decapsulates Geneve addressed to us; `TC_ACT_OK` untouched for anything else.
#[inline(always)]
pub(super) fn try_decap(ctx: &TcContext) -> Result<i32, DropReason> {
    let config = config::get();

    // Outer Ethernet + fixed IPv4 header.
    let Some(data) = parse::at(ctx, 0, ETH_HEADER_LEN + IPV4_MIN_LEN) else {
        return Ok(TC_ACT_OK as i32);
    };
    // SAFETY: `at` checked that ETH_HEADER_LEN + IPV4_MIN_LEN bytes from `data` are present.
    let (ethertype, version_ihl, total_len, frag, protocol, saddr_be, daddr_be) = unsafe {
        let ip = data + ETH_HEADER_LEN;
        (
            u16::from_be_bytes(*((data + 12) as *const [u8; 2])),
            *(ip as *const u8),
            u16::from_be_bytes(*((ip + 2) as *const [u8; 2])),
            u16::from_be_bytes(*((ip + 6) as *const [u8; 2])),
            *((ip + 9) as *const u8),
            *((ip + 12) as *const [u8; 4]),
            u32::from_ne_bytes(*((ip + 16) as *const [u8; 4])),
        )
    };
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    // Not IPv4/UDP to this node, or a fragment (the stack reassembles those; our peers send DF).
    if ethertype != ETH_P_IPV4
        || version_ihl >> 4 != 4
        || ihl < IPV4_MIN_LEN
        || protocol != IPPROTO_UDP
        || frag & 0x3fff != 0
        || daddr_be != config.local_ipv4_be
    {
        return Ok(TC_ACT_OK as i32);
    }

    // UDP header: its destination port says whether the packet is ours.
    let udp_at = ETH_HEADER_LEN + ihl;
    let Some(udp) = parse::at(ctx, udp_at, UDP_HEADER_LEN) else {
        return Ok(TC_ACT_OK as i32);
    };
    // SAFETY: `at` checked that UDP_HEADER_LEN bytes from `udp` are present.
    let dport = unsafe { u16::from_be_bytes(*((udp + 2) as *const [u8; 2])) };
    if dport != super::encap::geneve_port(config.geneve_port) {
        return Ok(TC_ACT_OK as i32);
    }

    // From here on the packet is Geneve for us: anything wrong is a counted drop.
    let geneve_at = udp_at + UDP_HEADER_LEN;
    let Some(geneve) = parse::at(ctx, geneve_at, GENEVE_HEADER_LEN) else {
        return Err(DropReason::GeneveMalformed);
    };
    // SAFETY: `at` checked that GENEVE_HEADER_LEN bytes from `geneve` are present.
    let (ver_opt_len, flags, proto, vni_word) = unsafe {
        (
            *(geneve as *const u8),
            *((geneve + 1) as *const u8),
            u16::from_be_bytes(*((geneve + 2) as *const [u8; 2])),
            u32::from_be_bytes(*((geneve + 4) as *const [u8; 4])),
        )
    };
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
    let outer_end = ETH_HEADER_LEN + usize::from(total_len);
    if inner_at + ETH_HEADER_LEN + IPV4_MIN_LEN > outer_end || outer_end > ctx.len() as usize {
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

    let Some(inner) = parse::at(ctx, inner_at, ETH_HEADER_LEN) else {
        return Err(DropReason::GeneveMalformed);
    };
    // The inner Ethernet header, read as scalars (a pull by the next bounds check would
    // invalidate `inner`, and a byte-array copy compiles to a `memmove` call).
    // SAFETY: `at` checked that ETH_HEADER_LEN bytes from `inner` are present.
    let (macs_head, macs_tail, inner_type) = unsafe {
        (
            core::ptr::read_unaligned(inner as *const u64),
            core::ptr::read_unaligned((inner + 8) as *const u32),
            core::ptr::read_unaligned((inner + 12) as *const u16),
        )
    };
    // Delivered on this device, the frame keeps skb->protocol IPv4: only IPv4 may take that
    // path. A redirect to a device re-parses the inner Ethernet header, so anything goes there.
    if ifindex == 0 && u16::from_be(inner_type) != ETH_P_IPV4 {
        return Err(DropReason::GeneveDecapFailed);
    }
    let Some(front) = parse::at(ctx, 0, ETH_HEADER_LEN) else {
        return Err(DropReason::GeneveMalformed);
    };
    // SAFETY: `at` checked that ETH_HEADER_LEN bytes from `front` are present.
    unsafe {
        core::ptr::write_unaligned(front as *mut u64, macs_head);
        core::ptr::write_unaligned((front + 8) as *mut u32, macs_tail);
        core::ptr::write_unaligned((front + 12) as *mut u16, inner_type);
        // Redirected frames are addressed to the receiving device, as the peer entry says.
        if ifindex != 0 && dst_mac != [0; 6] {
            core::ptr::write_unaligned(front as *mut [u8; 6], dst_mac);
        }
    }

    // Remove outer IPv4, UDP, Geneve (with options) and the inner Ethernet header (now also in
    // front): the `inner_at` bytes after the first ETH_HEADER_LEN.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_possible_wrap,
        reason = "at most 60 + 8 + 8 + 252 bytes"
    )]
    let strip = inner_at as i32;
    ctx.adjust_room(-strip, BPF_ADJ_ROOM_MAC, 0)
        .map_err(|_| DropReason::GeneveDecapFailed)?;
    // The cached hash was the outer UDP flow's; let the kernel hash the inner flow again.
    // SAFETY: plain helper call on our own context.
    unsafe { bpf_set_hash_invalid(ctx.skb.skb) };
    stats::event(Event::GeneveDecap);

    if ifindex == 0 {
        return Ok(TC_ACT_OK as i32);
    }
    // SAFETY: plain helper call; it only records the target device.
    #[expect(clippy::cast_possible_truncation, reason = "returns a TC_ACT_* value")]
    let action = unsafe { bpf_redirect(ifindex, u64::from(BPF_F_INGRESS)) } as i32;
    Ok(action)
}
