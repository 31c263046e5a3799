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
