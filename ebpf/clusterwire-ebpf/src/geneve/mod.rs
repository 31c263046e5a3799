//! Geneve between nodes and gateways: `cw_geneve_encap` tunnels IPv4 packets whose destination
//! matches [`CW_GENEVE_ROUTES`], `cw_geneve_decap` strips the Geneve encapsulation of packets
//! from a peer and VNI listed in [`CW_GENEVE_PEERS`]. Wire format and map semantics:
//! `clusterwire_common::geneve`. Both programs expect Ethernet devices.
//!
//! Design decisions:
//! - Native encapsulation uses `bpf_skb_adjust_room(+50, BPF_ADJ_ROOM_MAC,
//!   ENCAP_L3_IPV4 | ENCAP_L4_UDP | ENCAP_L2_ETH | ENCAP_L2(14))`: the room opens after the
//!   original Ethernet header, which stays in front as the outer one (its MACs are those the
//!   kernel chose for the next hop; `bpf_redirect_neigh` rewrites them when the route names an
//!   egress device) and is copied to the end of the room as the inner one, so the inner frame is
//!   the original frame, exactly what a `collect_md` device would carry (with the route's
//!   `inner_dst_mac`, if set, as destination: a kernel geneve receiver checks it). The flags
//!   make the kernel record the inner offsets, `ETH_P_TEB` and `SKB_GSO_UDP_TUNNEL`, so GSO
//!   super-packets are encapsulated once and segmented later (gso_size is lowered by 50).
//! - Outer UDP checksum 0 (RFC 8926 allows it over IPv4; the kernel driver sends the same with
//!   `BPF_F_ZERO_CSUM_TX`): a real one would cover an inner payload whose own checksum may still
//!   be pending (`CHECKSUM_PARTIAL`) and would break GSO. The outer IPv4 header checksum is
//!   computed here; DF set, ID 0, TTL 64, TOS copied from the inner header.
//! - UDP source port: `skb->hash` when the stack already computed it (read, never recomputed:
//!   `bpf_get_hash_recalc` costs a flow dissection per packet), else a cheap multiply-xorshift
//!   hash of the inner 5-tuple (`clusterwire_common::geneve::flow_hash`), folded into
//!   49152..=65535.
//! - MTU: a non-GSO packet whose encapsulated size exceeds the MTU of the device it leaves by
//!   (`bpf_check_mtu`, the route's egress device or this one) is dropped as
//!   `GeneveMtuExceeded` (routes towards the tunnel carry the tunnel MTU, so senders get
//!   frag-needed from the kernel before this). GSO packets are segmented to fit.
//! - GSO: TCP GSO is encapsulated once and segmented later (the kernel lowers gso_size by 50).
//!   UDP GSO (`UDP_SEGMENT`, forwarded UDP GRO) needs `BPF_F_ADJ_ROOM_FIXED_GSO` (gso_size
//!   delimits the datagrams; the kernel refuses UDP GSO without it, on 6.1 as on 6.18): each
//!   datagram becomes one Geneve packet 50 bytes longer. An skb the stack already encapsulated
//!   (`skb->encapsulation`: the kernel refuses the encap flags with `EALREADY`) gets a plain
//!   room when it is not GSO; as a GSO packet it cannot be segmented correctly any more and is
//!   dropped as `GeneveGsoUnsupported` (counted, never sent unencapsulated).
//! - BIG TCP: an inner IPv4 total length of 0 is accepted only on a GSO TCP skb, the rule the
//!   NAT applies (`parse`); anything else with total length 0 is `Ipv4Malformed` in both. The
//!   outer length fields of a super-packet above 64 KiB are 0 (GSO writes each segment's).
//! - Verdicts: what is not ours (not IPv4, no route, not Geneve to us) is `TC_ACT_UNSPEC`, so
//!   the next program on the hook (a CNI's) runs; what we encapsulated or decapsulated in place
//!   is `TC_ACT_OK`; redirects stay redirects; drops are `TC_ACT_SHOT` with a counted reason.
//! - Decapsulation puts the inner Ethernet header in front and removes everything between
//!   (`bpf_skb_adjust_room(-n, BPF_ADJ_ROOM_MAC)`), so the result is exactly the inner frame. Its
//!   action comes from the peer entry: `TC_ACT_OK` (continue up this device's stack; inner IPv4
//!   only, since skb->protocol stays IPv4) or a redirect into another device's ingress, which
//!   re-parses the inner Ethernet header (any inner protocol; policy routing by input device;
//!   the peer's `dst_mac`, if set, addresses the frame to that device).
//! - Only what is certainly ours is judged: IPv4/UDP to `local_ipv4_be` and the Geneve port,
//!   not a fragment (the stack reassembles those; our peers send DF). Then version != 0, OAM or
//!   critical-option packets, a protocol other than 0x6558, or truncation are `GeneveMalformed`;
//!   an unknown (peer, VNI) is `GeneveUnknownPeer` or `GeneveUnknownVni`.
//! - Limits: a UDP GSO aggregate arriving encapsulated (encapsulator on the same host without
//!   a segmenting device in between, or UDP tunnel GRO) is not decapsulated (the kernel refuses
//!   it; `GeneveGsoUnsupported`); packets from a real wire arrive one datagram each. A TCP GSO
//!   aggregate decapsulated here keeps `skb->encapsulation` and `SKB_GSO_UDP_TUNNEL`
//!   (only `BPF_F_ADJ_ROOM_DECAP_L4_UDP`, newer than our kernels, clears them): fine for local
//!   delivery and veth forwarding, a risk if it is forwarded to a device that segments in
//!   software. Such aggregates only arise when encapsulator and decapsulator share a host.
use aya_ebpf::{
    btf_maps::{HashMap, LpmTrie},
    macros::{btf_map, classifier},
    programs::TcContext,
};
use clusterwire_common::drop::{PROGRAM_GENEVE_DECAP, PROGRAM_GENEVE_ENCAP};
use clusterwire_common::geneve::{
    GENEVE_PEERS_MAX, GENEVE_ROUTES_MAX, GenevePeer, GenevePeerKey, GeneveRoute, GeneveRouteKey,
};

use crate::drop;

mod decap;
mod encap;

/// Inner destination prefix -> tunnel endpoint, VNI and mode.
#[btf_map]
static CW_GENEVE_ROUTES: LpmTrie<GeneveRouteKey, GeneveRoute, { GENEVE_ROUTES_MAX as usize }> =
    LpmTrie::new();

/// (peer outer source, VNI) -> what to do with its decapsulated frames. One marker entry per
/// peer (`VNI_PEER_MARKER`) tells an unknown VNI from an unknown peer.
#[btf_map]
static CW_GENEVE_PEERS: HashMap<GenevePeerKey, GenevePeer, { GENEVE_PEERS_MAX as usize }> =
    HashMap::new();

/// TC egress (pods' traffic leaving the node, or the gateway's traffic to a node): tunnels
/// IPv4 packets to routed destinations; everything else continues untouched (`TC_ACT_UNSPEC`).
#[classifier]
pub fn cw_geneve_encap(ctx: TcContext) -> i32 {
    match encap::try_encap(&ctx) {
        Ok(action) => action,
        Err(reason) => drop::count(&ctx, PROGRAM_GENEVE_ENCAP, reason),
    }
}

/// TC ingress: decapsulates Geneve from known peers to this node's address and port; other
/// packets to the Geneve port are dropped and counted; everything else continues untouched
/// (`TC_ACT_UNSPEC`).
#[classifier]
pub fn cw_geneve_decap(ctx: TcContext) -> i32 {
    match decap::try_decap(&ctx) {
        Ok(action) => action,
        Err(reason) => drop::count(&ctx, PROGRAM_GENEVE_DECAP, reason),
    }
}
