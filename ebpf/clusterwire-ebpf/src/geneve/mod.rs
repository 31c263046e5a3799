//! Geneve between nodes and gateways: `cw_geneve_encap` tunnels IPv4 packets whose destination
//! matches [`CW_GENEVE_ROUTES`], `cw_geneve_decap` strips the Geneve encapsulation of packets
//! from a peer and VNI listed in [`CW_GENEVE_PEERS`]. Wire format and map semantics:
//! `clusterwire_common::geneve`.
use aya_ebpf::{
    btf_maps::{HashMap, LpmTrie},
    macros::{btf_map, classifier},
    programs::TcContext,
};
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
/// IPv4 packets to routed destinations; everything else passes untouched.
#[classifier]
pub fn cw_geneve_encap(ctx: TcContext) -> i32 {
    match encap::try_encap(&ctx) {
        Ok(action) => action,
        Err(reason) => drop::count(reason),
    }
}

/// TC ingress: decapsulates Geneve from known peers to this node's address and port; other
/// packets to the Geneve port are dropped and counted; everything else passes untouched.
#[classifier]
pub fn cw_geneve_decap(ctx: TcContext) -> i32 {
    match decap::try_decap(&ctx) {
        Ok(action) => action,
        Err(reason) => drop::count(reason),
    }
}

/// Copies an Ethernet header (14 bytes) between two packet locations with scalar loads and
/// stores: a `[u8; 14]` copy compiles to a call to a byte-wise `memmove` subprogram.
///
/// # Safety
/// `src..src + 14` and `dst..dst + 14` must have been bounds-checked against `data_end`.
#[inline(always)]
unsafe fn copy_eth_header(src: usize, dst: usize) {
    // SAFETY: the caller checked both 14-byte ranges; unaligned accesses are allowed.
    unsafe {
        let a = core::ptr::read_unaligned(src as *const u64);
        let b = core::ptr::read_unaligned((src + 8) as *const u32);
        let c = core::ptr::read_unaligned((src + 12) as *const u16);
        core::ptr::write_unaligned(dst as *mut u64, a);
        core::ptr::write_unaligned((dst + 8) as *mut u32, b);
        core::ptr::write_unaligned((dst + 12) as *mut u16, c);
    }
}
