//! BIG TCP (IPv4 total length 0 on a GSO TCP skb longer than 64 KiB): the NAT and the Geneve
//! encapsulation apply the same rule (`parse::ipv4`, the kernel's `iph_totlen`): total length 0
//! is valid only on a GSO skb carrying TCP, and the datagram then ends at `skb->len`. Anything
//! else with total length 0 is `Ipv4Malformed` for both programs. (`test_run` cannot build a
//! 64 KiB skb; the rule does not depend on the length, so a small GSO-marked skb shows it.)
use std::net::Ipv4Addr;

use clusterwire_common::{
    config::DatapathConfig,
    drop::DropReason,
    geneve::GENEVE_ENCAP_PROGRAM,
    nat::{NAT_FROM_TUNNEL_PROGRAM, NAT_TO_TUNNEL_PROGRAM},
};
use clusterwire_dataplane::geneve::{GeneveMaps, TunnelMode, TunnelRoute, Vni};
use clusterwire_tests::{
    csum::checksum,
    harness::{Harness, SkbIn, TC_ACT_OK, TC_ACT_SHOT},
    packet::{Tcp, tcp_flags},
};

use crate::fixture::{POD_A, POD_B, POD_B_REMAPPED, assert_bytes, frame, harness, tcp};

/// A GSO skb, as the stack hands a BIG TCP super-packet to TC.
const GSO: SkbIn = SkbIn {
    ifindex: 0,
    gso_segs: 2,
    gso_size: 1448,
    data_end: 0,
};

/// `frame` with its IPv4 total length set to 0 (BIG TCP's marker), header checksum recomputed.
fn zero_tot_len(mut frame: Vec<u8>) -> Vec<u8> {
    frame[16..18].copy_from_slice(&[0, 0]);
    frame[24..26].copy_from_slice(&[0, 0]);
    let c = checksum(&frame[14..34]).to_be_bytes();
    frame[24..26].copy_from_slice(&c);
    frame
}

fn segment() -> Tcp {
    Tcp::new(43210, 443, tcp_flags::ACK).payload(&[0x5a; 200])
}

#[test]
fn nat_translates_big_tcp_and_refuses_total_length_0_without_gso() {
    let mut h = harness();
    let input = zero_tot_len(frame(&tcp(POD_A, POD_B_REMAPPED, &segment())));
    let want = zero_tot_len(frame(&tcp(POD_A, POD_B, &segment())));
    let (action, out) = h.run_with(NAT_TO_TUNNEL_PROGRAM, &input, &GSO);
    assert_eq!(action, TC_ACT_OK, "BIG TCP into the tunnel is translated");
    assert_bytes(&out, &want, "BIG TCP into the tunnel");
    let input = zero_tot_len(frame(&tcp(POD_B, POD_A, &segment())));
    let want = zero_tot_len(frame(&tcp(POD_B_REMAPPED, POD_A, &segment())));
    let (action, out) = h.run_with(NAT_FROM_TUNNEL_PROGRAM, &input, &GSO);
    assert_eq!(action, TC_ACT_OK, "BIG TCP out of the tunnel is translated");
    assert_bytes(&out, &want, "BIG TCP out of the tunnel");
    assert_eq!(h.total_drops(), 0);

    // Without GSO, or on UDP, total length 0 is malformed.
    let plain = zero_tot_len(frame(&tcp(POD_A, POD_B_REMAPPED, &segment())));
    assert_eq!(h.to_tunnel(&plain).0, TC_ACT_SHOT, "tot_len 0 without GSO");
    let udp = zero_tot_len(frame(&crate::fixture::udp(
        POD_A,
        POD_B_REMAPPED,
        b"u",
        true,
    )));
    assert_eq!(
        h.run_with(NAT_TO_TUNNEL_PROGRAM, &udp, &GSO).0,
        TC_ACT_SHOT,
        "tot_len 0 on UDP"
    );
    assert_eq!(h.drops(DropReason::Ipv4Malformed), 2);
}

#[test]
fn encap_applies_the_same_total_length_rule() {
    let node_ip = Ipv4Addr::new(192, 0, 2, 10);
    let mut h = Harness::new(DatapathConfig {
        local_ipv4_be: u32::from_ne_bytes(node_ip.octets()),
        geneve_port: 6091,
        ..DatapathConfig::zeroed()
    });
    let mut maps = GeneveMaps::take(h.datapath().ebpf_mut()).expect("Geneve maps");
    maps.set_route(
        Ipv4Addr::new(10, 0, 0, 0),
        16,
        TunnelRoute {
            remote: Ipv4Addr::new(192, 0, 2, 200),
            vni: Vni::try_new(7).expect("vni"),
            mode: TunnelMode::Native {
                egress_ifindex: None,
            },
        },
    )
    .expect("route");
    let big = zero_tot_len(frame(&tcp(POD_A, POD_B, &segment())));
    // Without GSO: malformed, as for the NAT.
    let (action, out) = h.run(GENEVE_ENCAP_PROGRAM, &big);
    assert_eq!(
        action, TC_ACT_SHOT,
        "tot_len 0 without GSO is not encapsulated"
    );
    assert_eq!(out, big);
    assert_eq!(h.drops(DropReason::Ipv4Malformed), 1);
    // With GSO it is not malformed. (test_run's GSO skb has no gso_type, which
    // bpf_skb_adjust_room refuses: counted as such, not as malformed.)
    let (action, _) = h.run_with(GENEVE_ENCAP_PROGRAM, &big, &GSO);
    assert_eq!(action, TC_ACT_SHOT);
    assert_eq!(
        h.drops(DropReason::Ipv4Malformed),
        1,
        "BIG TCP is not malformed"
    );
    assert_eq!(h.drops(DropReason::GeneveGsoUnsupported), 1);
}
