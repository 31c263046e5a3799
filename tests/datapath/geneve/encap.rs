//! `cw_geneve_encap`: native encapsulation to the byte, redirect mode, and pass-through.
use std::{
    collections::BTreeSet,
    net::{Ipv4Addr, Ipv6Addr},
    num::NonZeroU32,
};

use clusterwire_common::{drop::DropReason, stats::Event};
use clusterwire_dataplane::geneve::{TunnelMode, TunnelRoute, Vni};

use super::{
    GATEWAY_IP, Host, NODE_IP, PORT, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, TC_ACT_UNSPEC,
    assert_frame_eq, frames,
};
use clusterwire_common::geneve::{flow_hash, source_port};
use clusterwire_tests::{
    csum::{checksum, verify_ipv4},
    harness::SkbIn,
    netns::NetNs,
    packet::{self, Ipv4, Tcp, tcp_flags},
};

/// Remote pods (the prefix the node tunnels to the gateway).
const REMOTE_PODS: Ipv4Addr = Ipv4Addr::new(10, 70, 0, 0);
const LOCAL_POD: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);
const REMOTE_POD: Ipv4Addr = Ipv4Addr::new(10, 70, 3, 9);
const VNI: u32 = 0x12_3456;

/// A node whose encapsulation sends 10.70.0.0/16 natively to the gateway.
pub(super) fn node(egress: Option<NonZeroU32>) -> Host {
    let mut host = Host::new(NODE_IP, PORT);
    host.maps
        .set_route(
            REMOTE_PODS,
            16,
            TunnelRoute {
                remote: GATEWAY_IP,
                vni: Vni::try_new(VNI).expect("24-bit VNI"),
                mode: TunnelMode::Native {
                    egress_ifindex: egress,
                },
            },
        )
        .expect("set route");
    host
}

/// The pod frame the encapsulation tests send.
pub(super) fn pod_frame(sport: u16) -> Vec<u8> {
    frames::pod_udp(LOCAL_POD, REMOTE_POD, sport, 5201, 0xb8)
}

/// What native encapsulation of `inner` must produce, field by field, given the source port
/// (which comes from the kernel's randomly seeded flow hash).
fn expected_encap(inner: &[u8], vni: u32, sport: u16) -> Vec<u8> {
    let ip_len = u16::try_from(inner.len() - 14 + 20 + 8 + 8 + 14).expect("fits");
    let mut ip = vec![
        0x45,      // version 4, IHL 5
        inner[15], // TOS copied from the inner header
    ];
    ip.extend_from_slice(&ip_len.to_be_bytes());
    ip.extend_from_slice(&[0, 0]); // ID 0
    ip.extend_from_slice(&[0x40, 0]); // DF, offset 0
    ip.extend_from_slice(&[64, 17]); // TTL 64, UDP
    ip.extend_from_slice(&[0, 0]); // checksum, filled below
    ip.extend_from_slice(&NODE_IP.octets());
    ip.extend_from_slice(&GATEWAY_IP.octets());
    let c = checksum(&ip).to_be_bytes();
    ip[10..12].copy_from_slice(&c);

    let mut out = inner[..14].to_vec(); // outer Ethernet: the original header, kept
    out.extend_from_slice(&ip);
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&PORT.to_be_bytes());
    out.extend_from_slice(&(ip_len - 20).to_be_bytes());
    out.extend_from_slice(&[0, 0]); // UDP checksum 0
    out.extend_from_slice(&[0x00, 0x00, 0x65, 0x58]); // ver 0, no options, O=C=0, TEB
    out.extend_from_slice(&(vni << 8).to_be_bytes()); // VNI + reserved
    out.extend_from_slice(inner); // the whole original frame
    out
}

/// The UDP source port of an encapsulated frame.
pub(super) fn sport_of(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[34], frame[35]])
}

#[test]
fn native_encap_writes_every_outer_header_field() {
    let mut node = node(None);
    let inner = pod_frame(40000);
    let (action, out) = node.encap(&inner);
    assert_eq!(
        action, TC_ACT_OK,
        "native encap without egress device continues"
    );
    assert_eq!(out.len(), inner.len() + 50, "50 bytes of encapsulation");
    let sport = sport_of(&out);
    assert!(
        (49152..=65535).contains(&sport),
        "source port {sport} outside the ephemeral range"
    );
    assert_frame_eq(
        &out,
        &expected_encap(&inner, VNI, sport),
        "encapsulated frame",
    );
    assert_eq!(checksum(&out[14..34]), 0, "outer IPv4 checksum must verify");
    verify_ipv4(&out[14..]).unwrap_or_else(|e| panic!("outer datagram: {e}"));
    verify_ipv4(&out[64..]).unwrap_or_else(|e| panic!("inner datagram: {e}"));
    assert_eq!(node.events(Event::GeneveEncap), 1);
    assert_eq!(node.all_drops(), 0);
}

#[test]
fn native_encap_with_egress_device_redirects_via_neighbour_table() {
    let mut node = node(NonZeroU32::new(1));
    let inner = pod_frame(40001);
    let (action, out) = node.encap(&inner);
    assert_eq!(
        action, TC_ACT_REDIRECT,
        "bpf_redirect_neigh to the egress device"
    );
    assert_frame_eq(&out, &expected_encap(&inner, VNI, sport_of(&out)), "frame");
}

#[test]
fn native_encap_can_address_a_kernel_geneve_device() {
    let mut node = Host::new(NODE_IP, PORT);
    let device_mac = [0x02, 0x6e, 0x65, 0x76, 0x65, 0x01];
    let route = TunnelRoute {
        remote: GATEWAY_IP,
        vni: Vni::try_new(VNI).expect("vni"),
        mode: TunnelMode::Native {
            egress_ifindex: None,
        },
    };
    node.maps
        .set_route_to_kernel_device(REMOTE_PODS, 16, route, device_mac)
        .expect("route");
    let inner = pod_frame(40003);
    let (action, out) = node.encap(&inner);
    assert_eq!(action, TC_ACT_OK);
    let mut expected = expected_encap(&inner, VNI, sport_of(&out));
    expected[50..56].copy_from_slice(&device_mac);
    assert_frame_eq(
        &out,
        &expected,
        "inner destination MAC is the device's, nothing else moves",
    );
    assert_eq!(&out[..6], &inner[..6], "the outer destination MAC is kept");
}

#[test]
fn native_encap_without_a_local_address_is_a_counted_drop() {
    let mut node = Host::new(Ipv4Addr::UNSPECIFIED, PORT);
    let route = TunnelRoute {
        remote: GATEWAY_IP,
        vni: Vni::try_new(VNI).expect("vni"),
        mode: TunnelMode::Native {
            egress_ifindex: None,
        },
    };
    node.maps.set_route(REMOTE_PODS, 16, route).expect("route");
    let (action, _) = node.encap(&pod_frame(40004));
    assert_eq!(action, TC_ACT_SHOT, "no outer source address: dropped");
    assert_eq!(node.drops(DropReason::GeneveEncapFailed), 1);
    assert_eq!(node.events(Event::GeneveEncap), 0);
}

#[test]
fn source_port_is_stable_per_flow_and_spreads_across_flows() {
    let mut node = node(None);
    let mut ports = BTreeSet::new();
    for flow in 0..16u16 {
        let inner = pod_frame(30000 + flow);
        let first = sport_of(&node.encap(&inner).1);
        let again = sport_of(&node.encap(&inner).1);
        assert_eq!(
            first, again,
            "flow {flow}: the same flow must keep its source port"
        );
        assert!(
            (49152..=65535).contains(&first),
            "port {first} out of range"
        );
        ports.insert(first);
    }
    assert!(
        ports.len() >= 4,
        "16 flows hashed to only {} source ports: {ports:?}",
        ports.len()
    );
}

#[test]
fn longest_prefix_decides_the_vni() {
    let mut node = node(None);
    let specific = TunnelRoute {
        remote: GATEWAY_IP,
        vni: Vni::try_new(77).expect("vni"),
        mode: TunnelMode::Native {
            egress_ifindex: None,
        },
    };
    node.maps
        .set_route(Ipv4Addr::new(10, 70, 3, 0), 24, specific)
        .expect("route");
    let (_, out) = node.encap(&pod_frame(1));
    assert_eq!(
        &out[46..50],
        &[0, 0, 77, 0],
        "10.70.3.9 takes the /24's VNI"
    );
    let other = frames::pod_udp(LOCAL_POD, Ipv4Addr::new(10, 70, 4, 1), 1, 2, 0);
    let (_, out) = node.encap(&other);
    assert_eq!(
        &out[46..50],
        &[0x12, 0x34, 0x56, 0],
        "10.70.4.1 takes the /16's VNI"
    );
}

/// Redirect mode toward the `collect_md` device of index `device` (`test_run` runs on `lo`, 1).
fn redirect_mode(device: u32) -> (u32, Vec<u8>, Vec<u8>, Host) {
    let mut node = Host::new(NODE_IP, PORT);
    let route = TunnelRoute::via_collect_md_device(
        GATEWAY_IP,
        Vni::try_new(VNI).expect("vni"),
        NonZeroU32::new(device).expect("nonzero"),
    );
    node.maps.set_route(REMOTE_PODS, 16, route).expect("route");
    let inner = pod_frame(40002);
    let (action, out) = node.encap(&inner);
    assert_eq!(node.events(Event::GeneveRedirect), 1);
    assert_eq!(node.events(Event::GeneveEncap), 0);
    assert_eq!(
        node.drops(DropReason::GeneveRedirectFailed),
        0,
        "bpf_skb_set_tunnel_key accepted the key"
    );
    (action, inner, out, node)
}

#[test]
fn redirect_mode_sets_the_tunnel_key_and_redirects_unchanged() {
    let (action, inner, out, _) = redirect_mode(7);
    assert_eq!(action, TC_ACT_REDIRECT, "redirect to the collect_md device");
    assert_frame_eq(&out, &inner, "the device encapsulates, not the program");
}

#[test]
fn redirect_mode_on_the_collect_md_device_itself_sets_the_key_and_continues() {
    // The daemons' kernel Geneve mode: the route leaves through the device the program runs on;
    // a redirect to itself would recurse.
    let (action, inner, out, _) = redirect_mode(1);
    assert_eq!(
        action, TC_ACT_OK,
        "continue into the device, which encapsulates"
    );
    assert_frame_eq(&out, &inner, "the device encapsulates, not the program");
}

#[test]
fn everything_not_routed_passes_byte_identical() {
    let mut node = node(None);
    let datagram = Ipv4::new(LOCAL_POD, REMOTE_POD, 17)
        .build(&packet::udp(LOCAL_POD, REMOTE_POD, 1, 2, b"x", true));
    let ipv6 = packet::ipv6(
        Ipv6Addr::LOCALHOST.octets(),
        Ipv6Addr::LOCALHOST.octets(),
        17,
        &[0, 1, 0, 2, 0, 8, 0, 0],
    );
    // (A header shorter than 20 bytes cannot be tested: test_run itself rejects it.)
    let mut short_ihl = frames::pod_udp(LOCAL_POD, REMOTE_POD, 1, 2, 0);
    short_ihl[14] = 0x44;
    let mut bad_version = frames::pod_udp(LOCAL_POD, REMOTE_POD, 1, 2, 0);
    bad_version[14] = 0x65;
    let cases: [(&str, Vec<u8>); 6] = [
        (
            "IPv4 outside the routes",
            frames::pod_udp(LOCAL_POD, Ipv4Addr::new(10, 71, 0, 1), 1, 2, 0),
        ),
        ("IPv6", packet::ethernet(0x86dd, &ipv6)),
        ("ARP", packet::arp_request(LOCAL_POD, REMOTE_POD)),
        (
            "VLAN-tagged IPv4 to a routed address",
            packet::vlan(100, 0x0800, &datagram),
        ),
        ("IHL below 5 to a routed address", short_ihl),
        ("version nibble 6 in an IPv4 ethertype", bad_version),
    ];
    for (what, frame) in cases {
        let (action, out) = node.encap(&frame);
        assert_eq!(
            action, TC_ACT_UNSPEC,
            "{what}: not ours, the next program runs"
        );
        assert_frame_eq(&out, &frame, what);
    }
    assert_eq!(
        node.events(Event::GeneveEncap),
        0,
        "nothing was encapsulated"
    );
    assert_eq!(node.all_drops(), 0, "nothing was dropped");
}

/// The source port the encapsulation must pick for an skb without a hash: the documented cheap
/// hash of the inner 5-tuple (raw words, as loaded from the packet).
fn expected_sport(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ports: Option<(u16, u16)>) -> u16 {
    let raw = |a: Ipv4Addr| u32::from_ne_bytes(a.octets());
    let ports = ports.map_or(0, |(s, d)| {
        let (s, d) = (s.to_be_bytes(), d.to_be_bytes());
        u32::from_ne_bytes([s[0], s[1], d[0], d[1]])
    });
    source_port(flow_hash(raw(src), raw(dst), proto, ports))
}

/// `test_run` skbs carry no hash (`skb->hash` 0), so the port must come from the inner 5-tuple,
/// deterministically (not from a randomly seeded `bpf_get_hash_recalc`), in the ephemeral range,
/// the same for a flow and different across flows.
#[test]
fn source_port_without_skb_hash_is_the_inner_5_tuple_hash() {
    let mut node = node(None);
    let mut ports = BTreeSet::new();
    for sport in [40000u16, 40001, 40002, 51234] {
        let (action, out) = node.encap(&pod_frame(sport));
        assert_eq!(action, TC_ACT_OK);
        let want = expected_sport(LOCAL_POD, REMOTE_POD, 17, Some((sport, 5201)));
        assert_eq!(sport_of(&out), want, "UDP flow from port {sport}");
        assert!((49152..=65535).contains(&want));
        ports.insert(want);
    }
    assert_eq!(ports.len(), 4, "four flows, four source ports: {ports:?}");
    // TCP: ports are part of the flow too.
    let seg = Tcp::new(43210, 443, tcp_flags::ACK).payload(b"tcp");
    let tcp = frames::ethernet(
        frames::PEER_MAC,
        frames::POD_MAC,
        0x0800,
        &Ipv4::new(LOCAL_POD, REMOTE_POD, 6).build(&seg.build(LOCAL_POD, REMOTE_POD)),
    );
    let (_, out) = node.encap(&tcp);
    assert_eq!(
        sport_of(&out),
        expected_sport(LOCAL_POD, REMOTE_POD, 6, Some((43210, 443)))
    );
    // A later fragment has no ports: addresses and protocol only.
    let later = frames::ethernet(
        frames::PEER_MAC,
        frames::POD_MAC,
        0x0800,
        &Ipv4::new(LOCAL_POD, REMOTE_POD, 17)
            .fragment(false, 8)
            .build(&[0xab; 24]),
    );
    let (_, out) = node.encap(&later);
    assert_eq!(
        sport_of(&out),
        expected_sport(LOCAL_POD, REMOTE_POD, 17, None)
    );
}

/// A pod frame whose IPv4 datagram is `ip_len` bytes long.
fn frame_of_ip_len(ip_len: usize) -> Vec<u8> {
    let payload = vec![0x42; ip_len - 28];
    let l4 = packet::udp(LOCAL_POD, REMOTE_POD, 40100, 5201, &payload, true);
    frames::ethernet(
        frames::PEER_MAC,
        frames::POD_MAC,
        0x0800,
        &Ipv4::new(LOCAL_POD, REMOTE_POD, 17).build(&l4),
    )
}

/// `bpf_check_mtu` at encapsulation: in a namespace whose loopback (the device `test_run` puts
/// the skb on, and the route's egress device 1) has MTU 1400, a datagram of 1350 bytes becomes
/// an outer packet of exactly 1400 and goes; one byte more is a counted `GeneveMtuExceeded`.
#[test]
fn encapsulation_beyond_the_device_mtu_is_a_counted_drop() {
    let ns = NetNs::new("mtu");
    ns.ip(&["link", "set", "lo", "mtu", "1400"]);
    for egress in [None, NonZeroU32::new(1)] {
        let mut node = node(egress);
        let (fits, too_big) = ns.enter(|| {
            (
                node.encap(&frame_of_ip_len(1350)),
                node.encap(&frame_of_ip_len(1351)),
            )
        });
        let what = format!("egress {egress:?}");
        let ok = if egress.is_some() {
            TC_ACT_REDIRECT
        } else {
            TC_ACT_OK
        };
        assert_eq!(fits.0, ok, "{what}: 1400 bytes fit the MTU");
        assert_eq!(fits.1.len() - 14, 1400, "{what}: outer packet size");
        assert_eq!(too_big.0, TC_ACT_SHOT, "{what}: 1401 bytes do not fit");
        assert_eq!(node.drops(DropReason::GeneveMtuExceeded), 1, "{what}");
        assert_eq!(node.events(Event::GeneveEncap), 1, "{what}");
    }
}

/// A GSO packet is not MTU-checked (it is segmented to fit). `test_run` can mark an skb GSO
/// (`gso_size`) but not give it a GSO type, and `bpf_skb_adjust_room` refuses GSO skbs of a type
/// it cannot encapsulate: that refusal must be its own counted reason, never a silent pass.
#[test]
fn gso_packets_skip_the_mtu_check_and_a_refused_gso_type_is_counted() {
    let ns = NetNs::new("gso");
    ns.ip(&["link", "set", "lo", "mtu", "1400"]);
    let mut node = node(None);
    let gso = SkbIn {
        gso_size: 1000,
        gso_segs: 3,
        ..SkbIn::default()
    };
    let (action, _) = ns.enter(|| node.encap_with(&frame_of_ip_len(2900), &gso));
    assert_eq!(action, TC_ACT_SHOT);
    assert_eq!(
        node.drops(DropReason::GeneveMtuExceeded),
        0,
        "not MTU-checked"
    );
    assert_eq!(node.drops(DropReason::GeneveGsoUnsupported), 1);
    assert_eq!(node.drops(DropReason::GeneveEncapFailed), 0);
}
