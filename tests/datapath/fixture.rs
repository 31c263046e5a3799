//! The scenario shared by the NAT, ICMP, MSS and randomized datapath tests.
//!
//! Peer 7's real pod CIDR 10.0.0.0/16 (the same as ours) is remapped here to 10.50.0.0/16 and
//! its external CIDR 10.70.0.0/16 to 10.51.0.0/16; a more specific 10.50.9.0/24 -> 10.9.9.0/24
//! checks the longest match; the peer's tunnel address is announced as itself. Our host
//! 192.168.1.10 is IP-mapped to 10.70.0.5 of our external CIDR.
use std::net::Ipv4Addr;

use clusterwire_common::config::{DatapathConfig, FLAG_L3_DEVICE};
use clusterwire_dataplane::{IpMapKind, RemapKind};
use clusterwire_tests::{csum, harness::Harness, packet};
use ipnet::Ipv4Net;

/// The peering under test.
pub const PEER: u32 = 7;
/// Another peering whose entries must never apply.
pub const OTHER_PEER: u32 = 8;
/// Tunnel MTU (MSS clamp 1300).
pub const MTU: u32 = 1340;
/// A local pod (real address).
pub const POD_A: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);
/// A peer pod, its real address.
pub const POD_B: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 7);
/// The same peer pod as remapped here.
pub const POD_B_REMAPPED: Ipv4Addr = Ipv4Addr::new(10, 50, 2, 7);
/// A local host with an IP resource.
pub const HOST_X: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
/// Its external-CIDR address.
pub const HOST_X_MAPPED: Ipv4Addr = Ipv4Addr::new(10, 70, 0, 5);
/// The peer gateway's tunnel address (announced unremapped).
pub const PEER_TUNNEL: Ipv4Addr = Ipv4Addr::new(169, 254, 18, 2);

/// Prefix remaps (from, to): into the tunnel (`Dst`), the reverse out of it (`Src`).
pub const REMAPS: [(&str, &str); 3] = [
    ("10.50.0.0/16", "10.0.0.0/16"),
    ("10.51.0.0/16", "10.70.0.0/16"),
    ("10.50.9.0/24", "10.9.9.0/24"),
];

fn net(s: &str) -> Ipv4Net {
    s.parse().expect("valid prefix")
}

/// The configuration with MSS clamping at `mtu` (0: off) and an Ethernet or L3 device.
pub fn config(mtu: u32, l3_device: bool) -> DatapathConfig {
    DatapathConfig {
        tunnel_mtu: mtu,
        peer_id: PEER,
        flags: if l3_device { FLAG_L3_DEVICE } else { 0 },
        ..DatapathConfig::zeroed()
    }
}

/// A harness loaded with `config` and the scenario's tables.
pub fn harness_with(config: DatapathConfig) -> Harness {
    let mut h = Harness::new(config);
    let dp = h.datapath();
    {
        let mut dst = dp.remap(RemapKind::Dst).expect("CW_REMAP_DST");
        for (from, to) in REMAPS {
            dst.insert(PEER, net(from), net(to))
                .expect("insert dst remap");
        }
        dst.insert(OTHER_PEER, net("10.50.0.0/16"), net("10.99.0.0/16"))
            .expect("insert other peer");
    }
    {
        let mut src = dp.remap(RemapKind::Src).expect("CW_REMAP_SRC");
        for (from, to) in REMAPS {
            src.insert(PEER, net(to), net(from))
                .expect("insert src remap");
        }
        src.insert(PEER, net("169.254.18.2/32"), net("169.254.18.2/32"))
            .expect("insert tunnel identity");
        src.insert(OTHER_PEER, net("10.99.0.0/16"), net("10.99.0.0/16"))
            .expect("insert other peer");
    }
    dp.ipmap(IpMapKind::Exit)
        .expect("CW_IPMAP_EXIT")
        .insert(HOST_X, HOST_X_MAPPED)
        .expect("insert ipmap exit");
    dp.ipmap(IpMapKind::Entry)
        .expect("CW_IPMAP_ENTRY")
        .insert(HOST_X_MAPPED, HOST_X)
        .expect("insert ipmap entry");
    h
}

/// The default harness: Ethernet device, MSS clamp at 1300.
pub fn harness() -> Harness {
    harness_with(config(MTU, false))
}

/// The test's own model of the into-the-tunnel translation of a destination.
pub fn model_remap_dst(a: Ipv4Addr) -> Ipv4Addr {
    let [a0, a1, a2, a3] = a.octets();
    match (a0, a1, a2) {
        (10, 50, 9) => Ipv4Addr::new(10, 9, 9, a3),
        (10, 50, _) => Ipv4Addr::new(10, 0, a2, a3),
        (10, 51, _) => Ipv4Addr::new(10, 70, a2, a3),
        _ => a,
    }
}

/// The test's own model of the out-of-the-tunnel translation of a source (`None`: spoofed).
pub fn model_remap_src(a: Ipv4Addr) -> Option<Ipv4Addr> {
    let [a0, a1, a2, a3] = a.octets();
    match (a0, a1, a2) {
        (10, 9, 9) => Some(Ipv4Addr::new(10, 50, 9, a3)),
        (10, 0, _) => Some(Ipv4Addr::new(10, 50, a2, a3)),
        (10, 70, _) => Some(Ipv4Addr::new(10, 51, a2, a3)),
        _ if a == PEER_TUNNEL => Some(a),
        _ => None,
    }
}

/// An Ethernet frame with this IPv4 datagram.
pub fn frame(datagram: &[u8]) -> Vec<u8> {
    packet::eth_ipv4(datagram)
}

/// A TCP datagram.
pub fn tcp(src: Ipv4Addr, dst: Ipv4Addr, segment: &packet::Tcp) -> Vec<u8> {
    packet::Ipv4::new(src, dst, 6).build(&segment.build(src, dst))
}

/// A UDP datagram.
pub fn udp(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8], with_checksum: bool) -> Vec<u8> {
    packet::Ipv4::new(src, dst, 17).build(&packet::udp(src, dst, 40000, 53, payload, with_checksum))
}

/// Asserts exact bytes, saying where they differ.
pub fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    assert!(
        got == want,
        "{what}: output differs from the expected packet: {}\n got: {got:02x?}\nwant: {want:02x?}",
        clusterwire_tests::harness::first_difference(got, want)
    );
}

/// Asserts every checksum of the IPv4 datagram at `l3` in `frame`, recomputed independently.
pub fn assert_checksums(frame: &[u8], l3: usize, what: &str) {
    if let Err(e) = csum::verify_ipv4(&frame[l3..]) {
        panic!("{what}: {e}");
    }
}
