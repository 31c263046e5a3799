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
    let route = *route;
    // Total length 0 is valid only as BIG TCP, by the rule the NAT applies too (`parse`).
    if tot_len == 0 && !parse::big_tcp_ok(ctx, inner.proto) {
        return Err(DropReason::Ipv4Malformed);
    }
    match GeneveMode::from_u8(route.mode) {
        Some(GeneveMode::Redirect) => {
            let action = redirect(ctx, &route, inner.tos)?;
            stats::event(Event::GeneveRedirect);
            Ok(action)
        }
        Some(GeneveMode::Native) => {
            let action = native(ctx, &route, &inner)?;
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

    let src = config.local_ipv4_be.to_ne_bytes();
    let dst = route.remote_ipv4_be;
    let mut ip = [
        0x45,
        inner.tos,
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

    const IP_AT: usize = ETH_HLEN;
    const UDP_AT: usize = IP_AT + OUTER_IPV4_LEN;
    const GENEVE_AT: usize = UDP_AT + UDP_HLEN;
    const INNER_ETH_AT: usize = GENEVE_AT + GENEVE_HEADER_LEN;
    // The original Ethernet header is still at the front: it becomes the inner one too.
    super::copy_eth_header(w.sub::<ETH_HLEN, 0>(), w.sub::<ETH_HLEN, INNER_ETH_AT>());
    if route.inner_dst_mac != [0; 6] {
        w.write::<[u8; 6], INNER_ETH_AT>(route.inner_dst_mac);
    }
    w.write::<[u8; OUTER_IPV4_LEN], IP_AT>(ip);
    w.write::<[u8; UDP_HLEN], UDP_AT>(udp);
    w.write::<[u8; GENEVE_HEADER_LEN], GENEVE_AT>(geneve);
    // A CHECKSUM_COMPLETE skb (received from a NIC and forwarded here): `bpf_skb_adjust_room`
    // added the 50 new bytes to `skb->csum` as zeros; add what was written into them. The
    // helper changes nothing on skbs in other checksum states.
    let inner_eth = w.read::<[u8; ETH_HLEN], INNER_ETH_AT>();
    let written = words(&ip) + words(&udp) + words(&geneve) + words(&inner_eth);
    // SAFETY: the program's own skb; the helper only adds `written` to `skb->csum`.
    unsafe { bpf_csum_update(ctx.skb.skb, written) };

    if route.ifindex == 0 {
        return Ok(TC_ACT_OK);
    }
    // SAFETY: plain helper call; no parameters, so the kernel does the FIB and neighbour lookup
    // of the outer destination and writes the outer Ethernet header.
    #[expect(clippy::cast_possible_truncation, reason = "returns a TC_ACT_* value")]
    let action = unsafe { bpf_redirect_neigh(route.ifindex, core::ptr::null_mut(), 0, 0) } as i32;
    Ok(action)
}

/// One's-complement sum (unfolded) of `bytes` as 16-bit words in memory order, as
/// `skb->csum` sums them; `N` even.
#[inline(always)]
fn words<const N: usize>(bytes: &[u8; N]) -> u32 {
    let mut sum = 0u32;
    let mut i = 0;
    while i + 1 < N {
        sum += u32::from(u16::from_ne_bytes([bytes[i], bytes[i + 1]]));
        i += 2;
    }
    sum
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
