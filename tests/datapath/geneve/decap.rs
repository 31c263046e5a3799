//! `cw_geneve_decap`: round trips, exact inner frames, rejections with their counted reasons,
//! and pass-through of everything that is not Geneve for us.
use std::{net::Ipv4Addr, num::NonZeroU32};

use clusterwire_common::{drop::DropReason, stats::Event};
use clusterwire_dataplane::geneve::{Delivery, Vni};
use clusterwire_tests::packet::{self, Ipv4, Tcp, tcp_flags};

use super::{
    GATEWAY_IP, Host, NODE_IP, PORT, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, TC_ACT_UNSPEC,
    assert_frame_eq, encap,
    frames::{self, GeneveSpec},
};

const VNI: u32 = 0x12_3456;

/// A gateway that accepts `VNI` from the node, delivered as `delivery`.
fn gateway(delivery: Delivery) -> Host {
    let mut host = Host::new(GATEWAY_IP, PORT);
    host.maps
        .allow_peer(NODE_IP, Vni::try_new(VNI).expect("vni"), delivery)
        .expect("allow peer");
    host
}

/// The inner frame the decapsulation tests carry (its MACs differ from the outer ones).
fn inner_frame() -> Vec<u8> {
    frames::pod_udp(
        Ipv4Addr::new(10, 0, 1, 5),
        Ipv4Addr::new(10, 70, 3, 9),
        40000,
        5201,
        0,
    )
}

#[test]
fn native_encap_then_decap_restores_the_original_frame() {
    let mut node = encap::node(None);
    let mut gateway = gateway(Delivery::InPlace);
    let (pod, remote) = (Ipv4Addr::new(10, 0, 1, 5), Ipv4Addr::new(10, 70, 3, 9));
    let syn = Tcp::new(40011, 443, tcp_flags::SYN)
        .options(&[2, 4, 0x05, 0xb4, 1, 3, 3, 7])
        .build(pod, remote);
    let cases = [
        ("UDP", encap::pod_frame(40010)),
        (
            "TCP SYN with options, inner IPv4 options",
            frames::ethernet(
                frames::PEER_MAC,
                frames::POD_MAC,
                0x0800,
                &Ipv4::new(pod, remote, 6)
                    .options(&[0x94, 0x04, 0, 0])
                    .build(&syn),
            ),
        ),
        (
            "ICMP echo",
            frames::ethernet(
                frames::PEER_MAC,
                frames::POD_MAC,
                0x0800,
                &Ipv4::new(pod, remote, 1).build(&packet::icmp_echo(7, 1, &[0xab; 56])),
            ),
        ),
    ];
    for (what, original) in &cases {
        let (action, tunnelled) = node.encap(original);
        assert_eq!(action, TC_ACT_OK, "{what}: encapsulated");
        assert_eq!(tunnelled.len(), original.len() + 50, "{what}: encapsulated");
        let (action, out) = gateway.decap(&tunnelled);
        assert_eq!(action, TC_ACT_OK, "{what}: delivered in place");
        assert_frame_eq(&out, original, what);
    }
    assert_eq!(gateway.events(Event::GeneveDecap), 3);
    assert_eq!(gateway.all_drops(), 0);
}

#[test]
fn decap_delivers_exactly_the_inner_frame() {
    let mut gateway = gateway(Delivery::InPlace);
    let inner = inner_frame();
    let spec = GeneveSpec::new(NODE_IP, GATEWAY_IP, VNI);
    let plain = spec.frame(&inner);
    let mut with_options = spec.clone();
    // One non-critical option (class 0x0102, type 0x03, 4 bytes of data).
    with_options.options = vec![0x01, 0x02, 0x03, 0x01, 0xde, 0xad, 0xbe, 0xef];
    let mut with_ip_options = spec.clone();
    with_ip_options.outer = with_ip_options.outer.options(&[1, 1, 1, 1]); // 4 NOPs: IHL 6
    let cases = [
        ("plain", plain),
        ("Geneve options", with_options.frame(&inner)),
        ("outer IPv4 options", with_ip_options.frame(&inner)),
    ];
    for (what, frame) in cases {
        let (action, out) = gateway.decap(&frame);
        assert_eq!(action, TC_ACT_OK, "{what}: delivered in place");
        assert_frame_eq(&out, &inner, what);
    }
    assert_eq!(gateway.events(Event::GeneveDecap), 3);
}

#[test]
fn decap_redirects_to_the_peer_ingress_device() {
    let ifindex = NonZeroU32::new(5).expect("nonzero");
    let mut gateway = gateway(Delivery::IngressOf { ifindex, mac: None });
    let inner = inner_frame();
    let (action, out) = gateway.decap(&GeneveSpec::new(NODE_IP, GATEWAY_IP, VNI).frame(&inner));
    assert_eq!(action, TC_ACT_REDIRECT, "redirected to the peer's device");
    assert_frame_eq(&out, &inner, "inner frame");
    // A redirect re-parses the inner Ethernet header, so non-IPv4 inner frames may go there.
    let arp = frames::ethernet([0xff; 6], frames::POD_MAC, 0x0806, &[0u8; 28]);
    let (action, out) = gateway.decap(&GeneveSpec::new(NODE_IP, GATEWAY_IP, VNI).frame(&arp));
    assert_eq!(action, TC_ACT_REDIRECT, "inner ARP redirected");
    assert_frame_eq(&out, &arp, "inner ARP frame");

    // With the device's MAC in the peer entry, the frame is addressed to that device.
    let device_mac = [0x02, 0xd0, 0, 0, 0, 0x05];
    gateway
        .maps
        .allow_peer(
            NODE_IP,
            Vni::try_new(VNI).expect("vni"),
            Delivery::IngressOf {
                ifindex,
                mac: Some(device_mac),
            },
        )
        .expect("update peer");
    let (action, out) = gateway.decap(&GeneveSpec::new(NODE_IP, GATEWAY_IP, VNI).frame(&inner));
    assert_eq!(action, TC_ACT_REDIRECT);
    let mut expected = inner.clone();
    expected[..6].copy_from_slice(&device_mac);
    assert_frame_eq(&out, &expected, "inner frame addressed to the device");
}

#[test]
fn decap_rejects_with_the_right_drop_reason() {
    let mut gateway = gateway(Delivery::InPlace);
    let inner = inner_frame();
    let good = GeneveSpec::new(NODE_IP, GATEWAY_IP, VNI);
    let with = |change: &dyn Fn(&mut GeneveSpec)| {
        let mut spec = good.clone();
        change(&mut spec);
        spec.frame(&inner)
    };
    let arp = frames::ethernet([0xff; 6], frames::POD_MAC, 0x0806, &[0u8; 28]);
    let full = good.frame(&inner);
    let real_total = u16::try_from(full.len() - 14).expect("fits");
    let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
        (
            "unknown peer",
            with(&|s| s.outer.src = Ipv4Addr::new(192, 0, 2, 77)),
            DropReason::GeneveUnknownPeer,
        ),
        (
            "known peer, unknown VNI",
            with(&|s| s.vni = 999),
            DropReason::GeneveUnknownVni,
        ),
        (
            "version 1",
            with(&|s| s.version = 1),
            DropReason::GeneveMalformed,
        ),
        (
            "protocol IPv4 instead of Ethernet",
            with(&|s| s.proto = 0x0800),
            DropReason::GeneveMalformed,
        ),
        (
            "OAM packet",
            with(&|s| s.flags = 0x80),
            DropReason::GeneveMalformed,
        ),
        (
            "critical options",
            with(&|s| {
                s.flags = 0x40;
                s.options = vec![0x01, 0x02, 0x83, 0x00];
            }),
            DropReason::GeneveMalformed,
        ),
        (
            "Geneve header cut short",
            full[..14 + 20 + 8 + 4].to_vec(),
            DropReason::GeneveMalformed,
        ),
        (
            "inner frame cut short",
            good.frame(&inner[..20]),
            DropReason::GeneveMalformed,
        ),
        (
            "outer total length beyond the packet",
            with(&|s| s.outer.total_len = Some(real_total + 40)),
            DropReason::GeneveMalformed,
        ),
        (
            "inner ARP delivered in place",
            good.frame(&arp),
            DropReason::GeneveDecapFailed,
        ),
    ];
    for (what, frame, reason) in cases {
        let before = gateway.drops(reason);
        let total_before = gateway.all_drops();
        let (action, _) = gateway.decap(&frame);
        assert_eq!(action, TC_ACT_SHOT, "{what}: dropped");
        assert_eq!(
            gateway.drops(reason),
            before + 1,
            "{what}: counted as {}",
            reason.kind()
        );
        assert_eq!(
            gateway.all_drops(),
            total_before + 1,
            "{what}: counted once"
        );
    }
    assert_eq!(
        gateway.events(Event::GeneveDecap),
        0,
        "nothing was decapsulated"
    );
}

#[test]
fn everything_not_geneve_for_us_passes_byte_identical() {
    let mut gateway = gateway(Delivery::InPlace);
    let inner = inner_frame();
    let good = GeneveSpec::new(NODE_IP, GATEWAY_IP, VNI);
    let mut iana_port = good.clone();
    iana_port.dport = 6081;
    let mut other_host = good.clone();
    other_host.outer.dst = Ipv4Addr::new(192, 0, 2, 201);
    let mut first_fragment = good.clone();
    first_fragment.outer = first_fragment.outer.fragment(true, 0);
    let tcp = frames::ethernet(
        frames::UNDERLAY_DST_MAC,
        frames::UNDERLAY_SRC_MAC,
        0x0800,
        &Ipv4::new(NODE_IP, GATEWAY_IP, 6).build(&[0u8; 20]),
    );
    let cases = [
        ("UDP to another port", iana_port.frame(&inner)),
        ("Geneve to another host", other_host.frame(&inner)),
        ("a first fragment", first_fragment.frame(&inner)),
        ("TCP", tcp),
        (
            "ARP",
            frames::ethernet([0xff; 6], frames::POD_MAC, 0x0806, &[0u8; 28]),
        ),
        ("plain pod traffic", inner.clone()),
    ];
    for (what, frame) in cases {
        let (action, out) = gateway.decap(&frame);
        assert_eq!(
            action, TC_ACT_UNSPEC,
            "{what}: not ours, the next program runs"
        );
        assert_frame_eq(&out, &frame, what);
    }
    assert_eq!(gateway.all_drops(), 0, "nothing was dropped");
    assert_eq!(gateway.events(Event::GeneveDecap), 0);
}

#[test]
fn removing_peers_and_vnis_takes_effect() {
    let mut gateway = gateway(Delivery::InPlace);
    let inner = inner_frame();
    let other = Vni::try_new(7).expect("vni");
    gateway
        .maps
        .allow_peer(NODE_IP, other, Delivery::InPlace)
        .expect("allow");
    let frame = GeneveSpec::new(NODE_IP, GATEWAY_IP, VNI).frame(&inner);
    gateway
        .maps
        .remove_peer(NODE_IP, Vni::try_new(VNI).expect("vni"))
        .expect("remove");
    assert_eq!(gateway.decap(&frame).0, TC_ACT_SHOT);
    assert_eq!(
        gateway.drops(DropReason::GeneveUnknownVni),
        1,
        "the peer is still known through VNI 7"
    );
    gateway.maps.remove_peer(NODE_IP, other).expect("remove");
    assert_eq!(gateway.decap(&frame).0, TC_ACT_SHOT);
    assert_eq!(
        gateway.drops(DropReason::GeneveUnknownPeer),
        1,
        "no VNI left: the peer is forgotten"
    );
}

#[test]
fn configured_port_is_used_both_ways() {
    let mut host = Host::new(GATEWAY_IP, 6081);
    host.maps
        .allow_peer(NODE_IP, Vni::try_new(VNI).expect("vni"), Delivery::InPlace)
        .expect("allow");
    let inner = inner_frame();
    let liqo = GeneveSpec::new(NODE_IP, GATEWAY_IP, VNI).frame(&inner);
    let (action, out) = host.decap(&liqo);
    assert_eq!(action, TC_ACT_UNSPEC, "6091 is not this host's port");
    assert_frame_eq(&out, &liqo, "untouched");
    let mut iana = GeneveSpec::new(NODE_IP, GATEWAY_IP, VNI);
    iana.dport = 6081;
    let (action, out) = host.decap(&iana.frame(&inner));
    assert_eq!(action, TC_ACT_OK);
    assert_frame_eq(&out, &inner, "decapsulated on 6081");
}
