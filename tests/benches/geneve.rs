//! Geneve cases of `cargo xtask bench datapath`.
//!
//! Encapsulation and decapsulation change the packet for good (an encapsulated packet is not
//! routed again, a decapsulated one is no longer Geneve), so with `repeat` every run after the
//! first would measure a miss: both are measured single-shot, like the MSS clamp, against the
//! single-shot baseline. Each `test_run` skb is fresh and carries no hash (`skb->hash` 0), so
//! the encapsulation figure includes the cheap inner 5-tuple hash; on real traffic the hash is
//! usually already in the skb (socket `txhash`, RX hash) and read for free. It also includes
//! `bpf_check_mtu`. Redirect mode leaves the packet as it is and is measured with `repeat`.
//!
//! Where the time goes (single-shot, removing parts in a scratch build; `perf` samples inside
//! the program agree): native encapsulation (~+170) is the route lookup, flow hash and program
//! code before the room (~64 ns, of which `bpf_check_mtu` ~16), `bpf_skb_adjust_room` with the
//! encap flags (~90; without the flags no cheaper) and the header writes with `bpf_csum_update`
//! (~21, the helper ~12). `bpf_skb_change_head` opens the same 50 bytes ~50 ns cheaper and gives
//! identical bytes, but it leaves `skb->encapsulation`, the inner offsets and the network header
//! where they were: a `CHECKSUM_PARTIAL` inner packet then gets its checksum offloaded wrongly by
//! NICs that parse headers (mlx5 picks outer vs inner checksum by `skb->encapsulation`), and
//! `bpf_redirect_neigh` would route by the inner header; the skb's checksum state cannot be read
//! from a TC program, so it is not used. Even with it, skipping `bpf_check_mtu` and
//! `bpf_csum_update` would be needed to reach +90. Decapsulation (~+95) is ~35-40 ns of parsing,
//! the peer lookup and the header copy, and ~55-60 ns `bpf_skb_adjust_room`; one bounds check
//! for all headers instead of five made no measurable difference.
use std::{net::Ipv4Addr, num::NonZeroU32};

use clusterwire_common::{
    config::DatapathConfig,
    geneve::{GENEVE_DECAP_PROGRAM, GENEVE_ENCAP_PROGRAM},
};
use clusterwire_dataplane::geneve::{Delivery, GeneveMaps, TunnelMode, TunnelRoute, Vni};
use clusterwire_tests::{
    harness::Harness,
    packet::{self, Ipv4},
};

use super::{DECAP_TARGET, ENCAP_TARGET, MISS_TARGET, Method, Row};

const NODE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
const POD: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);
const REMOTE_POD: Ipv4Addr = Ipv4Addr::new(10, 70, 3, 9);
const VNI: u32 = 0x12_3456;

/// A datapath configured as `local`, with its Geneve maps taken out.
fn host(local: Ipv4Addr) -> (Harness, GeneveMaps) {
    let mut h = Harness::new(DatapathConfig {
        local_ipv4_be: u32::from_ne_bytes(local.octets()),
        geneve_port: 6091,
        ..DatapathConfig::zeroed()
    });
    let maps = GeneveMaps::take(h.datapath().ebpf_mut()).expect("Geneve maps");
    (h, maps)
}

fn pod_udp(dst: Ipv4Addr) -> Vec<u8> {
    packet::eth_ipv4(
        &Ipv4::new(POD, dst, 17).build(&packet::udp(POD, dst, 5000, 5201, &[7; 64], true)),
    )
}

/// The Geneve rows, each with the harness baseline measured the same way.
pub fn cases(looped: Method, single: Method) -> Vec<Row> {
    let vni = Vni::try_new(VNI).expect("24-bit VNI");
    let (mut node, mut node_maps) = host(NODE);
    let native = TunnelRoute {
        remote: GATEWAY,
        vni,
        mode: TunnelMode::Native {
            egress_ifindex: None,
        },
    };
    node_maps
        .set_route(Ipv4Addr::new(10, 70, 0, 0), 16, native)
        .expect("route");
    let inner = pod_udp(REMOTE_POD);
    let (_, tunnelled) = node.run(GENEVE_ENCAP_PROGRAM, &inner);
    assert_eq!(
        tunnelled.len(),
        inner.len() + 50,
        "the bench frame is encapsulated"
    );

    let (mut redirect, mut redirect_maps) = host(NODE);
    let route = TunnelRoute::via_collect_md_device(GATEWAY, vni, NonZeroU32::MIN);
    redirect_maps
        .set_route(Ipv4Addr::new(10, 70, 0, 0), 16, route)
        .expect("route");

    let (mut gateway, mut gateway_maps) = host(GATEWAY);
    gateway_maps
        .allow_peer(NODE, vni, Delivery::InPlace)
        .expect("peer");
    let (_, decapsulated) = gateway.run(GENEVE_DECAP_PROGRAM, &tunnelled);
    assert_eq!(decapsulated, inner, "the bench frame round-trips");

    vec![
        Row::measure(
            "Geneve encap miss: IPv4 outside the routes",
            &mut node,
            GENEVE_ENCAP_PROGRAM,
            &pod_udp(Ipv4Addr::new(10, 71, 0, 1)),
            looped,
            Some(MISS_TARGET),
        ),
        Row::measure(
            "Geneve redirect mode: tunnel key + redirect",
            &mut redirect,
            GENEVE_ENCAP_PROGRAM,
            &inner,
            looped,
            None,
        ),
        Row::measure(
            "Geneve decap miss: UDP that is not Geneve",
            &mut gateway,
            GENEVE_DECAP_PROGRAM,
            &inner,
            looped,
            Some(MISS_TARGET),
        ),
        Row::measure(
            "single-shot Geneve native encap (5-tuple hash, MTU)",
            &mut node,
            GENEVE_ENCAP_PROGRAM,
            &inner,
            single,
            Some(ENCAP_TARGET),
        ),
        Row::measure(
            "single-shot Geneve decap",
            &mut gateway,
            GENEVE_DECAP_PROGRAM,
            &tunnelled,
            single,
            Some(DECAP_TARGET),
        ),
    ]
}
