//! Geneve encapsulation and decapsulation on `CHECKSUM_COMPLETE` and non-linear skbs (see
//! `crate::skb_states`): exactly the bytes and verdict of a linear `CHECKSUM_NONE` run, and no
//! stale `skb->csum` (`EBADMSG`) after `bpf_skb_adjust_room` and the header writes.
use std::io::Write as _;

use clusterwire_common::geneve::{GENEVE_DECAP_PROGRAM, GENEVE_ENCAP_PROGRAM};
use clusterwire_dataplane::geneve::{Delivery, Vni};

use super::{GATEWAY_IP, Host, NODE_IP, PORT, encap};
use crate::skb_states::check_all_states;

#[test]
fn encap_and_decap_are_exact_on_checksum_complete_and_non_linear_skbs() {
    let mut node = encap::node(None);
    let inner = encap::pod_frame(40000);
    let (_, tunnelled) = node.encap(&inner);
    let mut ran = check_all_states(
        &mut node.harness,
        GENEVE_ENCAP_PROGRAM,
        &inner,
        "native encap",
    );

    let mut gateway = Host::new(GATEWAY_IP, PORT);
    gateway
        .maps
        .allow_peer(
            NODE_IP,
            Vni::try_new(0x12_3456).expect("vni"),
            Delivery::InPlace,
        )
        .expect("allow peer");
    let (_, out) = gateway.decap(&tunnelled);
    assert_eq!(out, inner, "decap restores the frame");
    ran += check_all_states(
        &mut gateway.harness,
        GENEVE_DECAP_PROGRAM,
        &tunnelled,
        "decap",
    );
    let _ = writeln!(
        std::io::stderr().lock(),
        "{ran} of 10 Geneve skb-state runs executed"
    );
}
