//! Geneve encapsulation: redirect mode (tunnel key + `collect_md` device) and eBPF-native mode
//! (`bpf_skb_adjust_room` with encap flags, headers written here).
use aya_ebpf::{
    bindings::{
        BPF_ADJ_ROOM_ENCAP_L2_SHIFT, BPF_F_ADJ_ROOM_ENCAP_L2_ETH, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4,
        BPF_F_ADJ_ROOM_ENCAP_L4_UDP, BPF_F_DONT_FRAGMENT, BPF_F_ZERO_CSUM_TX, TC_ACT_OK,
        bpf_adj_room_mode::BPF_ADJ_ROOM_MAC, bpf_tunnel_key, bpf_tunnel_key__bindgen_ty_1,
        bpf_tunnel_key__bindgen_ty_2, bpf_tunnel_key__bindgen_ty_3,
    },
    helpers::generated::{
        bpf_get_hash_recalc, bpf_redirect, bpf_redirect_neigh, bpf_skb_set_tunnel_key,
    },
    maps::lpm_trie::Key,
    programs::TcContext,
};
use clusterwire_common::geneve::{
    ETH_HEADER_LEN, GENEVE_DEFAULT_PORT, GENEVE_ENCAP_OVERHEAD, GENEVE_PROTO_TEB, GeneveMode,
    GeneveRoute, GeneveRouteKey, OUTER_IPV4_LEN, OUTER_TTL, UDP_HEADER_LEN, source_port,
};

use super::CW_GENEVE_ROUTES;
use clusterwire_common::{drop::DropReason, stats::Event};

use crate::{config, parse, stats};

const ETH_P_IPV4: u16 = 0x0800;
const IPPROTO_UDP: u8 = 17;
/// Ethernet + the fixed part of the inner IPv4 header: what must be readable to route.
const ROUTE_LOOKUP_LEN: usize = ETH_HEADER_LEN + 20;
/// `bpf_skb_adjust_room` flags: outer IPv4 + UDP tunnel with an inner Ethernet header, so the
/// kernel sets the inner header offsets, `ETH_P_TEB` and `SKB_GSO_UDP_TUNNEL` (GSO keeps working).
const ENCAP_FLAGS: u64 = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 as u64
    | BPF_F_ADJ_ROOM_ENCAP_L4_UDP as u64
    | BPF_F_ADJ_ROOM_ENCAP_L2_ETH as u64
    | ((ETH_HEADER_LEN as u64) << BPF_ADJ_ROOM_ENCAP_L2_SHIFT);

/// Tunnels the packet if its IPv4 destination has a route; `TC_ACT_OK` untouched otherwise.
#[inline(always)]
pub(super) fn try_encap(ctx: &TcContext) -> Result<i32, DropReason> {
    let Some(data) = parse::at(ctx, 0, ROUTE_LOOKUP_LEN) else {
        return Ok(TC_ACT_OK as i32);
    };
    // SAFETY: `at` checked that ROUTE_LOOKUP_LEN bytes from `data` are in the packet.
    let (ethertype, version_ihl, tos, daddr) = unsafe {
        (
            u16::from_be_bytes(*((data + 12) as *const [u8; 2])),
            *((data + ETH_HEADER_LEN) as *const u8),
            *((data + ETH_HEADER_LEN + 1) as *const u8),
            *((data + ETH_HEADER_LEN + 16) as *const [u8; 4]),
        )
    };
    if ethertype != ETH_P_IPV4 || version_ihl >> 4 != 4 || version_ihl & 0x0f < 5 {
        return Ok(TC_ACT_OK as i32);
    }
    let key = Key::new(32, GeneveRouteKey { addr_be: daddr });
    let Some(route) = CW_GENEVE_ROUTES.get(&key) else {
        return Ok(TC_ACT_OK as i32);
    };
    let route = *route;
    match GeneveMode::from_u8(route.mode) {
        Some(GeneveMode::Redirect) => {
            let action = redirect(ctx, &route, tos)?;
            stats::event(Event::GeneveRedirect);
            Ok(action)
        }
        Some(GeneveMode::Native) => {
            let action = native(ctx, &route, tos)?;
            stats::event(Event::GeneveEncap);
            Ok(action)
        }
        // A route the loader cannot have written: never send its traffic unencapsulated.
        None => Err(DropReason::GeneveEncapFailed),
    }
}

/// Redirect mode: the `collect_md` Geneve device encapsulates with this key. Same wire result
/// as native mode: DF, UDP checksum 0, TTL 64, TOS of the inner header.
#[inline(always)]
fn redirect(ctx: &TcContext, route: &GeneveRoute, tos: u8) -> Result<i32, DropReason> {
    // Every field written explicitly: a zeroed() key compiles to a byte-by-byte memset call.
    // The IPv4 addresses are the first word of their IPv6-sized unions, host byte order.
    let mut key = bpf_tunnel_key {
        tunnel_id: route.vni,
        __bindgen_anon_1: bpf_tunnel_key__bindgen_ty_1 {
            remote_ipv6: [u32::from_be_bytes(route.remote_ipv4_be), 0, 0, 0],
        },
        tunnel_tos: tos,
        tunnel_ttl: OUTER_TTL,
        __bindgen_anon_2: bpf_tunnel_key__bindgen_ty_2 { tunnel_ext: 0 },
        tunnel_label: 0,
        __bindgen_anon_3: bpf_tunnel_key__bindgen_ty_3 {
            local_ipv6: [u32::from_be(config::get().local_ipv4_be), 0, 0, 0],
        },
    };
    #[expect(clippy::cast_possible_truncation, reason = "44 bytes")]
    const KEY_SIZE: u32 = size_of::<bpf_tunnel_key>() as u32;
    // SAFETY: `key` is a live, fully initialised `bpf_tunnel_key` of KEY_SIZE bytes.
    let ret = unsafe {
        bpf_skb_set_tunnel_key(
            ctx.skb.skb,
            &raw mut key,
            KEY_SIZE,
            u64::from(BPF_F_ZERO_CSUM_TX | BPF_F_DONT_FRAGMENT),
        )
    };
    if ret != 0 {
        return Err(DropReason::GeneveRedirectFailed);
    }
    // SAFETY: plain helper call; it only records the target device.
    #[expect(clippy::cast_possible_truncation, reason = "returns a TC_ACT_* value")]
    let action = unsafe { bpf_redirect(route.ifindex, 0) } as i32;
    Ok(action)
}

/// Native mode: inserts outer IPv4 + UDP + Geneve + inner Ethernet after the (kept) outer
/// Ethernet header, then sends the packet on through the neighbour table or the current device.
#[inline(always)]
fn native(ctx: &TcContext, route: &GeneveRoute, tos: u8) -> Result<i32, DropReason> {
    // Flow hash of the inner packet, before it is wrapped (the kernel caches it in the skb).
    // SAFETY: plain helper call on our own context.
    let hash = unsafe { bpf_get_hash_recalc(ctx.skb.skb) };
    let config = config::get();
    // Without this node's address the outer source would be 0.0.0.0: refuse, visibly.
    if config.local_ipv4_be == 0 {
        return Err(DropReason::GeneveEncapFailed);
    }

    #[expect(clippy::cast_possible_wrap, reason = "50 bytes")]
    ctx.adjust_room(GENEVE_ENCAP_OVERHEAD as i32, BPF_ADJ_ROOM_MAC, ENCAP_FLAGS)
        .map_err(|_| DropReason::GeneveEncapFailed)?;

    // adjust_room invalidated every packet pointer: derive them again.
    let Some(data) = parse::at(ctx, 0, ETH_HEADER_LEN + GENEVE_ENCAP_OVERHEAD) else {
        return Err(DropReason::GeneveEncapFailed);
    };
    let skb_len = ctx.len() as usize;
    let ip_len = length_field(skb_len - ETH_HEADER_LEN);
    let udp_len = length_field(skb_len - ETH_HEADER_LEN - OUTER_IPV4_LEN);

    let src = config.local_ipv4_be.to_ne_bytes();
    let dst = route.remote_ipv4_be;
    let mut ip = [
        0x45,
        tos,
        ip_len[0],
        ip_len[1],
        0,
        0,
        0x40,
        0,
        OUTER_TTL,
        IPPROTO_UDP,
        0,
        0,
        src[0],
        src[1],
        src[2],
        src[3],
        dst[0],
        dst[1],
        dst[2],
        dst[3],
    ];
    let csum = ipv4_header_checksum(&ip).to_be_bytes();
    ip[10] = csum[0];
    ip[11] = csum[1];

    let sport = source_port(hash).to_be_bytes();
    let dport = geneve_port(config.geneve_port).to_be_bytes();
    let udp = [
        sport[0], sport[1], dport[0], dport[1], udp_len[0], udp_len[1], 0, 0,
    ];

    let vni = route.vni.to_be_bytes();
    let proto = GENEVE_PROTO_TEB.to_be_bytes();
    let geneve = [0, 0, proto[0], proto[1], vni[1], vni[2], vni[3], 0];

    let ip_at = data + ETH_HEADER_LEN;
    let udp_at = ip_at + OUTER_IPV4_LEN;
    let geneve_at = udp_at + UDP_HEADER_LEN;
    let inner_eth_at = data + GENEVE_ENCAP_OVERHEAD;
    // SAFETY: `at` checked that ETH_HEADER_LEN + GENEVE_ENCAP_OVERHEAD bytes from `data` are
    // in the packet; every write below ends at or before that bound.
    unsafe {
        // The original Ethernet header is still at the front: it becomes the inner one too.
        super::copy_eth_header(data, inner_eth_at);
        if route.inner_dst_mac != [0; 6] {
            core::ptr::write_unaligned(inner_eth_at as *mut [u8; 6], route.inner_dst_mac);
        }
        core::ptr::write_unaligned(ip_at as *mut [u8; OUTER_IPV4_LEN], ip);
        core::ptr::write_unaligned(udp_at as *mut [u8; UDP_HEADER_LEN], udp);
        core::ptr::write_unaligned(geneve_at as *mut [u8; 8], geneve);
    }

    if route.ifindex == 0 {
        return Ok(TC_ACT_OK as i32);
    }
    // SAFETY: plain helper call; no parameters, so the kernel does the FIB and neighbour lookup
    // of the outer destination and writes the outer Ethernet header.
    #[expect(clippy::cast_possible_truncation, reason = "returns a TC_ACT_* value")]
    let action = unsafe { bpf_redirect_neigh(route.ifindex, core::ptr::null_mut(), 0, 0) } as i32;
    Ok(action)
}

/// The configured Geneve port, or Liqo's default when the loader left it 0.
#[inline(always)]
pub(super) fn geneve_port(configured: u16) -> u16 {
    if configured == 0 {
        GENEVE_DEFAULT_PORT
    } else {
        configured
    }
}

/// A 16-bit length field; 0 above 65535 (an IPv4 BIG TCP super-packet: GSO writes each
/// segment's real lengths).
#[inline(always)]
fn length_field(len: usize) -> [u8; 2] {
    u16::try_from(len).unwrap_or(0).to_be_bytes()
}

/// RFC 1071 checksum of a 20-byte IPv4 header whose checksum field is zero.
#[inline(always)]
fn ipv4_header_checksum(header: &[u8; OUTER_IPV4_LEN]) -> u16 {
    let mut sum = 0u32;
    let mut i = 0;
    while i < OUTER_IPV4_LEN {
        sum += u32::from(u16::from_be_bytes([header[i], header[i + 1]]));
        i += 2;
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    #[expect(clippy::cast_possible_truncation, reason = "folded to 16 bits")]
    let folded = sum as u16;
    !folded
}
