//! Geneve encapsulation: redirect mode (tunnel key + `collect_md` device) and eBPF-native mode
//! (`bpf_skb_adjust_room` with encap flags, headers written here).
use aya_ebpf::{
    bindings::{
        BPF_ADJ_ROOM_ENCAP_L2_SHIFT, BPF_F_ADJ_ROOM_ENCAP_L2_ETH, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4,
        BPF_F_ADJ_ROOM_ENCAP_L4_UDP, BPF_F_ADJ_ROOM_FIXED_GSO, BPF_F_DONT_FRAGMENT,
        BPF_F_ZERO_CSUM_TX, TC_ACT_OK, TC_ACT_UNSPEC, bpf_adj_room_mode::BPF_ADJ_ROOM_MAC,
        bpf_check_mtu_ret::BPF_MTU_CHK_RET_SUCCESS, bpf_tunnel_key, bpf_tunnel_key__bindgen_ty_1,
        bpf_tunnel_key__bindgen_ty_2, bpf_tunnel_key__bindgen_ty_3,
    },
    helpers::generated::{
        bpf_check_mtu, bpf_csum_update, bpf_redirect, bpf_redirect_neigh, bpf_skb_set_tunnel_key,
    },
    maps::lpm_trie::Key,
    programs::TcContext,
};
use clusterwire_common::{
    drop::DropReason,
    geneve::{
        GENEVE_DEFAULT_PORT, GENEVE_ENCAP_OVERHEAD, GENEVE_HEADER_LEN, GENEVE_PROTO_TEB,
        GeneveMode, GeneveRoute, GeneveRouteKey, OUTER_IPV4_LEN, OUTER_TTL, flow_hash, source_port,
    },
    stats::Event,
};

use super::CW_GENEVE_ROUTES;
use crate::{
    config,
    parse::{
        self, ETH_HLEN, ETH_P_IP, ETH_TYPE_OFF, IPPROTO_TCP, IPPROTO_UDP, IPV4_DST_OFF,
        IPV4_FRAG_OFF, IPV4_FRAGMENT_MASK, IPV4_MIN_HLEN, IPV4_PROTO_OFF, IPV4_SRC_OFF,
        IPV4_TOT_LEN_OFF, UDP_HLEN, Window,
    },
    stats,
};

/// Ethernet + the fixed part of the inner IPv4 header: what must be readable to route.
const ROUTE_LOOKUP_LEN: usize = ETH_HLEN + IPV4_MIN_HLEN;
/// `bpf_skb_adjust_room` flags: outer IPv4 + UDP tunnel with an inner Ethernet header, so the
/// kernel sets the inner header offsets, `ETH_P_TEB` and `SKB_GSO_UDP_TUNNEL` (GSO keeps working).
const ENCAP_FLAGS: u64 = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 as u64
    | BPF_F_ADJ_ROOM_ENCAP_L4_UDP as u64
    | BPF_F_ADJ_ROOM_ENCAP_L2_ETH as u64
    | ((ETH_HLEN as u64) << BPF_ADJ_ROOM_ENCAP_L2_SHIFT);
/// `bpf_skb_adjust_room` error for an skb that is already encapsulated (`skb->encapsulation`).
const EALREADY: i64 = 114;
/// Bytes the encapsulation adds, as `bpf_skb_adjust_room` and `bpf_check_mtu` take them.
#[expect(clippy::cast_possible_wrap, reason = "50 bytes")]
const GROWTH: i32 = GENEVE_ENCAP_OVERHEAD as i32;

/// What encapsulation needs from the inner frame.
#[derive(Clone, Copy)]
struct Inner {
    /// TOS, copied to the outer header.
    tos: u8,
    /// IPv4 protocol.
    proto: u8,
    /// IPv4 header length.
    ihl: usize,
    /// Flags and fragment offset, host order.
    frag: u16,
    /// Source, raw.
    src: u32,
    /// Destination, raw.
    dst: u32,
}

/// Tunnels the packet if its IPv4 destination has a route; `TC_ACT_UNSPEC` (not ours: the next
/// program on the hook decides) untouched otherwise.
#[inline(always)]
pub(super) fn try_encap(ctx: &TcContext) -> Result<i32, DropReason> {
    let Some(w) = Window::<ROUTE_LOOKUP_LEN>::get(ctx, 0) else {
        return Ok(TC_ACT_UNSPEC);
    };
    let vihl = w.read::<u8, ETH_HLEN>();
    if w.be16::<ETH_TYPE_OFF>() != ETH_P_IP || vihl >> 4 != 4 || vihl & 0x0f < 5 {
        return Ok(TC_ACT_UNSPEC);
    }
    let inner = Inner {
        tos: w.read::<u8, { ETH_HLEN + 1 }>(),
        proto: w.read::<u8, { ETH_HLEN + IPV4_PROTO_OFF }>(),
        ihl: usize::from(vihl & 0x0f) * 4,
        frag: w.be16::<{ ETH_HLEN + IPV4_FRAG_OFF }>(),
        src: w.read::<u32, { ETH_HLEN + IPV4_SRC_OFF }>(),
        dst: w.read::<u32, { ETH_HLEN + IPV4_DST_OFF }>(),
    };
    let tot_len = w.be16::<{ ETH_HLEN + IPV4_TOT_LEN_OFF }>();
    let key = Key::new(
        32,
        GeneveRouteKey {
            addr_be: inner.dst.to_ne_bytes(),
        },
    );
    let Some(route) = CW_GENEVE_ROUTES.get(&key) else {
        return Ok(TC_ACT_UNSPEC);
    };
    // Read in place (a map value stays valid while the program runs): copying it out spilled
    // its 20 bytes to the stack byte by byte on every packet.
    // Total length 0 is valid only as BIG TCP, by the rule the NAT applies too (`parse`).
    if tot_len == 0 && !parse::big_tcp_ok(ctx, inner.proto) {
        return Err(DropReason::Ipv4Malformed);
    }
    match GeneveMode::from_u8(route.mode) {
        Some(GeneveMode::Redirect) => {
            let action = redirect(ctx, route, inner.tos)?;
            stats::event(Event::GeneveRedirect);
            Ok(action)
        }
        Some(GeneveMode::Native) => {
            let action = native(ctx, route, &inner)?;
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
    // Attached to the `collect_md` device itself (kernel Geneve: the route sends the packet out
    // of that device): the key is all it needs, and a redirect to itself would recurse.
    if route.ifindex == parse::ifindex(ctx) {
        return Ok(TC_ACT_OK);
    }
    // SAFETY: plain helper call; it only records the target device.
    #[expect(clippy::cast_possible_truncation, reason = "returns a TC_ACT_* value")]
    let action = unsafe { bpf_redirect(route.ifindex, 0) } as i32;
    Ok(action)
}

/// The flow hash behind the outer UDP source port: `skb->hash` when the stack already computed
/// it (free to read; never recomputed with `bpf_get_hash_recalc`), else a cheap hash of the
/// inner 5-tuple (ports 0 for fragments and protocols without ports).
#[inline(always)]
fn flow(ctx: &TcContext, inner: &Inner) -> u32 {
    let hash = parse::skb_hash(ctx);
    if hash != 0 {
        return hash;
    }
    let ports = if matches!(inner.proto, IPPROTO_TCP | IPPROTO_UDP)
        && inner.frag & IPV4_FRAGMENT_MASK == 0
    {
        parse::load::<u32>(ctx, ETH_HLEN + inner.ihl).unwrap_or(0)
    } else {
        0
    };
    flow_hash(inner.src, inner.dst, inner.proto, ports)
}

/// Whether the frame, grown by the encapsulation, fits the MTU of the device it leaves by
/// (`ifindex`, 0: this one). GSO packets are not checked: they are segmented to fit.
#[inline(always)]
fn fits_mtu(ctx: &TcContext, ifindex: u32) -> bool {
    let mut mtu_len = 0u32;
    // SAFETY: plain helper call on our own context; `mtu_len` is a live local.
    let ret = unsafe { bpf_check_mtu(ctx.skb.skb.cast(), ifindex, &raw mut mtu_len, GROWTH, 0) };
    ret == i64::from(BPF_MTU_CHK_RET_SUCCESS)
}

/// Opens the room for the encapsulation. UDP GSO packets (`UDP_SEGMENT`, forwarded UDP GRO)
/// keep their segment size (`BPF_F_ADJ_ROOM_FIXED_GSO`: gso_size delimits the datagrams; the
/// only way the kernel accepts them); TCP GSO packets get their MSS lowered by the kernel.
/// An skb the stack already encapsulated cannot take the encap flags: without GSO it gets a
/// plain room (the headers are ours to write anyway); with GSO it cannot be segmented
/// correctly any more, so it is a counted drop rather than a black hole or a leak.
#[inline(always)]
fn open_room(ctx: &TcContext, inner: &Inner, gso: bool) -> Result<(), DropReason> {
    let flags = if gso && inner.proto == IPPROTO_UDP {
        ENCAP_FLAGS | BPF_F_ADJ_ROOM_FIXED_GSO as u64
    } else {
        ENCAP_FLAGS
    };
    match ctx.adjust_room(GROWTH, BPF_ADJ_ROOM_MAC, flags) {
        Ok(()) => Ok(()),
        Err(_) if gso => Err(DropReason::GeneveGsoUnsupported),
        Err(e) if e == -EALREADY => ctx
            .adjust_room(GROWTH, BPF_ADJ_ROOM_MAC, 0)
            .map_err(|_| DropReason::GeneveEncapFailed),
        Err(_) => Err(DropReason::GeneveEncapFailed),
    }
}

/// Native mode: inserts outer IPv4 + UDP + Geneve + inner Ethernet after the (kept) outer
/// Ethernet header, then sends the packet on through the neighbour table or the current device.
#[inline(always)]
fn native(ctx: &TcContext, route: &GeneveRoute, inner: &Inner) -> Result<i32, DropReason> {
    let config = config::get();
    // Without this node's address the outer source would be 0.0.0.0: refuse, visibly.
    if config.local_ipv4_be == 0 {
        return Err(DropReason::GeneveEncapFailed);
    }
    let gso = parse::gso_size(ctx) != 0;
    if !gso && !fits_mtu(ctx, route.ifindex) {
        return Err(DropReason::GeneveMtuExceeded);
    }
    // Before the packet is wrapped: the inner flow's hash.
    let hash = flow(ctx, inner);
    open_room(ctx, inner, gso)?;

    // adjust_room invalidated every packet pointer: take a new window.
    let Some(w) = Window::<{ ETH_HLEN + GENEVE_ENCAP_OVERHEAD }>::get(ctx, 0) else {
        return Err(DropReason::GeneveEncapFailed);
    };
    let skb_len = ctx.len() as usize;
    let ip_len = length_field(skb_len - ETH_HLEN);
    let udp_len = length_field(skb_len - ETH_HLEN - OUTER_IPV4_LEN);
    let src = config.local_ipv4_be;
    let dst = u32::from_ne_bytes(route.remote_ipv4_be);

    // Every field is written as a raw 16- or 32-bit word at a constant offset (a byte array
    // assembled and checksummed byte by byte costs hundreds of instructions), and every sum is
    // taken over the same raw words: one's-complement sums do not depend on byte order.
    const IP_AT: usize = ETH_HLEN;
    const UDP_AT: usize = IP_AT + OUTER_IPV4_LEN;
    const GENEVE_AT: usize = UDP_AT + UDP_HLEN;
    const INNER_ETH_AT: usize = GENEVE_AT + GENEVE_HEADER_LEN;
    // Version 4, IHL 5; TOS.
    let ver_tos = u16::from_ne_bytes([0x45, inner.tos]);
    // ID 0; flags DF, fragment offset 0.
    const ID_FRAG: u32 = u32::from_ne_bytes([0, 0, 0x40, 0]);
    const TTL_PROTO: u16 = u16::from_ne_bytes([OUTER_TTL, IPPROTO_UDP]);
    let ip_sum = u64::from(ver_tos)
        + u64::from(ip_len)
        + u64::from(ID_FRAG)
        + u64::from(TTL_PROTO)
        + u64::from(src)
        + u64::from(dst);
    let ip_check = !fold64(ip_sum);

    let sport = source_port(hash).to_be();
    let dport = geneve_port(config.geneve_port).to_be();
    // Version 0, no options, O = C = 0; protocol: an Ethernet frame.
    const GENEVE_WORD0: u32 = u32::from_ne_bytes([
        0,
        0,
        GENEVE_PROTO_TEB.to_be_bytes()[0],
        GENEVE_PROTO_TEB.to_be_bytes()[1],
    ]);
    // VNI (24 bits) and a reserved zero byte.
    let vni_word = (route.vni << 8).to_be();

    // The original Ethernet header is still at the front: it becomes the inner one too (with
    // the route's destination MAC, if it has one).
    let mut eth_head = w.read::<u64, 0>();
    let eth_mid = w.read::<u32, 8>();
    let eth_type = w.read::<u16, 12>();
    let mac = route.inner_dst_mac;
    if mac != [0; 6] {
        // Bytes 0..6 of the header are the destination MAC; bytes 6..8 start the source.
        const SRC_START: u64 = u64::from_ne_bytes([0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        let [a, b, c, d, e, f] = mac;
        eth_head = (eth_head & SRC_START) | u64::from_ne_bytes([a, b, c, d, e, f, 0, 0]);
    }

    w.write::<u16, IP_AT>(ver_tos);
    w.write::<u16, { IP_AT + 2 }>(ip_len);
    w.write::<u32, { IP_AT + 4 }>(ID_FRAG);
    w.write::<u16, { IP_AT + 8 }>(TTL_PROTO);
    w.write::<u16, { IP_AT + 10 }>(ip_check);
    w.write::<u32, { IP_AT + 12 }>(src);
    w.write::<u32, { IP_AT + 16 }>(dst);
    w.write::<u16, UDP_AT>(sport);
    w.write::<u16, { UDP_AT + 2 }>(dport);
    w.write::<u16, { UDP_AT + 4 }>(udp_len);
    w.write::<u16, { UDP_AT + 6 }>(0);
    w.write::<u32, GENEVE_AT>(GENEVE_WORD0);
    w.write::<u32, { GENEVE_AT + 4 }>(vni_word);
    w.write::<u64, INNER_ETH_AT>(eth_head);
    w.write::<u32, { INNER_ETH_AT + 8 }>(eth_mid);
    w.write::<u16, { INNER_ETH_AT + 12 }>(eth_type);

    // A CHECKSUM_COMPLETE skb (received from a NIC and forwarded here): `bpf_skb_adjust_room`
    // added the 50 new bytes to `skb->csum` as zeros; add what was written into them. The IPv4
    // header sums to 0xffff (one's-complement zero) with its checksum in place, so it adds
    // nothing. The helper changes nothing on skbs in other checksum states.
    let written = fold64(
        u64::from(sport)
            + u64::from(dport)
            + u64::from(udp_len)
            + u64::from(GENEVE_WORD0)
            + u64::from(vni_word)
            + (eth_head & 0xffff_ffff)
            + (eth_head >> 32)
            + u64::from(eth_mid)
            + u64::from(eth_type),
    );
    // SAFETY: the program's own skb; the helper only adds `written` to `skb->csum`.
    unsafe { bpf_csum_update(ctx.skb.skb, u32::from(written)) };

    if route.ifindex == 0 {
        return Ok(TC_ACT_OK);
    }
    // SAFETY: plain helper call; no parameters, so the kernel does the FIB and neighbour lookup
    // of the outer destination and writes the outer Ethernet header.
    #[expect(clippy::cast_possible_truncation, reason = "returns a TC_ACT_* value")]
    let action = unsafe { bpf_redirect_neigh(route.ifindex, core::ptr::null_mut(), 0, 0) } as i32;
    Ok(action)
}

/// A one's-complement sum of raw 16/32/64-bit words accumulated in a `u64`, folded to 16 bits
/// (end-around carries); the result is raw, like the words.
#[inline(always)]
fn fold64(sum: u64) -> u16 {
    let s = (sum & 0xffff_ffff) + (sum >> 32);
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    #[expect(clippy::cast_possible_truncation, reason = "folded to 16 bits")]
    let folded = s as u16;
    folded
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

/// A 16-bit length field, raw (network order in memory); 0 above 65535 (an IPv4 BIG TCP
/// super-packet: GSO writes each segment's real lengths).
#[inline(always)]
fn length_field(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(0).to_be()
}
