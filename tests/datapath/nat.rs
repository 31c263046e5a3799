//! Remap NAT through `test_run`: exact output bytes against packets built from scratch with the
//! translated addresses, independent checksum checks, and counters.
use std::net::Ipv4Addr;

use clusterwire_common::{drop::DropReason, stats::Event};
use clusterwire_dataplane::{IpMapKind, RemapKind};
use clusterwire_tests::{
    harness::{Harness, TC_ACT_OK, TC_ACT_SHOT, TC_ACT_UNSPEC},
    packet::{self, Ipv4, Tcp, tcp_flags},
};

use crate::fixture::{
    HOST_X, HOST_X_MAPPED, MTU, PEER, PEER_TUNNEL, POD_A, POD_B, POD_B_REMAPPED, assert_bytes,
    assert_checksums, config, frame, harness, harness_with, tcp, udp,
};

/// Runs `input` into (`to_tunnel`) or out of the tunnel and asserts it passes as `want`, with
/// the exact verdict: out of the tunnel `TC_ACT_OK` (it passed anti-spoofing); into the tunnel
/// `TC_ACT_OK` when `want` differs from `input` (rewritten: ours), else `TC_ACT_UNSPEC` (not
/// ours: the next program on the hook runs).
fn expect_pass(h: &mut Harness, to_tunnel: bool, input: &[u8], want: &[u8], what: &str) {
    let verdict = if to_tunnel && want == input {
        TC_ACT_UNSPEC
    } else {
        TC_ACT_OK
    };
    let out = h.expect(to_tunnel, input, verdict, what);
    assert_bytes(&out, want, what);
}

fn data_segment() -> Tcp {
    let mut t = Tcp::new(43210, 8080, tcp_flags::ACK | tcp_flags::PSH).payload(b"hello, peer");
    t.ack = 0x0a0b_0c0d;
    t
}

#[test]
fn tcp_into_the_tunnel_gets_the_real_destination() {
    let mut h = harness();
    let seg = data_segment();
    let input = frame(&tcp(POD_A, POD_B_REMAPPED, &seg));
    let want = frame(&tcp(POD_A, POD_B, &seg));
    expect_pass(&mut h, true, &input, &want, "TCP A -> remapped B");
    assert_checksums(&want, 14, "expected packet");
    assert_eq!(h.events(Event::NatDstRewritten), 1, "{:?}", h.all_events());
    assert_eq!(h.events(Event::IpmapSnat), 0);
    let stats = h.peer(PEER);
    assert_eq!((stats.tx_packets, stats.tx_bytes), (1, input.len() as u64));
    assert_eq!((stats.rx_packets, stats.rx_bytes), (0, 0));
}

#[test]
fn tcp_out_of_the_tunnel_gets_the_remapped_source() {
    let mut h = harness();
    let seg = data_segment();
    let input = frame(&tcp(POD_B, POD_A, &seg));
    let want = frame(&tcp(POD_B_REMAPPED, POD_A, &seg));
    expect_pass(&mut h, false, &input, &want, "TCP B -> A");
    assert_eq!(h.events(Event::NatSrcRewritten), 1, "{:?}", h.all_events());
    let stats = h.peer(PEER);
    assert_eq!((stats.rx_packets, stats.rx_bytes), (1, input.len() as u64));
}

#[test]
fn host_bits_are_kept_and_the_longest_prefix_wins() {
    let mut h = harness();
    let seg = data_segment();
    for (remapped, real) in [
        (
            Ipv4Addr::new(10, 50, 255, 254),
            Ipv4Addr::new(10, 0, 255, 254),
        ),
        (Ipv4Addr::new(10, 50, 0, 0), Ipv4Addr::new(10, 0, 0, 0)),
        (Ipv4Addr::new(10, 50, 9, 3), Ipv4Addr::new(10, 9, 9, 3)),
        (Ipv4Addr::new(10, 51, 0, 5), Ipv4Addr::new(10, 70, 0, 5)),
    ] {
        let what = format!("{remapped} -> {real}");
        let want = frame(&tcp(POD_A, real, &seg));
        expect_pass(
            &mut h,
            true,
            &frame(&tcp(POD_A, remapped, &seg)),
            &want,
            &what,
        );
        let back = frame(&tcp(remapped, POD_A, &seg));
        expect_pass(&mut h, false, &frame(&tcp(real, POD_A, &seg)), &back, &what);
    }
}

#[test]
fn udp_with_checksum_both_ways() {
    let mut h = harness();
    let input = frame(&udp(POD_A, POD_B_REMAPPED, b"query", true));
    expect_pass(
        &mut h,
        true,
        &input,
        &frame(&udp(POD_A, POD_B, b"query", true)),
        "UDP out",
    );
    let input = frame(&udp(POD_B, POD_A, b"answer!", true));
    let want = frame(&udp(POD_B_REMAPPED, POD_A, b"answer!", true));
    expect_pass(&mut h, false, &input, &want, "UDP in");
    assert_checksums(&want, 14, "expected UDP");
}

#[test]
fn udp_without_checksum_keeps_zero() {
    let mut h = harness();
    let input = frame(&udp(POD_A, POD_B_REMAPPED, b"no checksum", false));
    let want = frame(&udp(POD_A, POD_B, b"no checksum", false));
    expect_pass(
        &mut h,
        true,
        &input,
        &want,
        "UDP checksum 0 into the tunnel",
    );
    assert_eq!(
        &want[14 + 26..14 + 28],
        &[0, 0],
        "expected packet has checksum 0"
    );
    let input = frame(&udp(POD_B, POD_A, b"no checksum", false));
    let want = frame(&udp(POD_B_REMAPPED, POD_A, b"no checksum", false));
    expect_pass(
        &mut h,
        false,
        &input,
        &want,
        "UDP checksum 0 out of the tunnel",
    );
}

#[test]
fn udp_checksum_that_becomes_zero_is_sent_as_ffff() {
    // Find a payload whose translated datagram sums to 0xffff (computed checksum 0, which UDP
    // sends as 0xffff).
    let payload = (0..=u16::MAX)
        .map(u16::to_be_bytes)
        .find(|p| {
            let d = packet::udp(POD_A, POD_B, 40000, 53, p, false);
            let mut data =
                clusterwire_tests::csum::pseudo_header(POD_A.octets(), POD_B.octets(), 17, d.len());
            data.extend_from_slice(&d);
            clusterwire_tests::csum::ones_sum(&data) == 0xffff
        })
        .expect("some payload word makes the sum 0xffff");
    let mut h = harness();
    let input = frame(&udp(POD_A, POD_B_REMAPPED, &payload, true));
    let want = frame(&udp(POD_A, POD_B, &payload, true));
    assert_eq!(
        &want[14 + 26..14 + 28],
        &[0xff, 0xff],
        "the oracle sends 0 as 0xffff"
    );
    expect_pass(&mut h, true, &input, &want, "UDP checksum becoming 0");
}

#[test]
fn icmp_echo_both_ways() {
    let mut h = harness();
    let echo = packet::icmp_echo(0x4242, 1, b"ping payload");
    let input = frame(&Ipv4::new(POD_A, POD_B_REMAPPED, 1).build(&echo));
    let want = frame(&Ipv4::new(POD_A, POD_B, 1).build(&echo));
    expect_pass(&mut h, true, &input, &want, "echo request out");
    let reply = packet::icmp(0, 0, [0x42, 0x42, 0, 1], b"ping payload");
    let input = frame(&Ipv4::new(POD_B, POD_A, 1).build(&reply));
    let want = frame(&Ipv4::new(POD_B_REMAPPED, POD_A, 1).build(&reply));
    expect_pass(&mut h, false, &input, &want, "echo reply in");
    assert_checksums(&want, 14, "expected echo reply");
    assert_eq!(
        h.events(Event::IcmpInnerRewritten),
        0,
        "echo has no embedded packet"
    );
}

#[test]
fn ipv4_options_are_honoured() {
    let mut h = harness();
    // Record-route option (7 bytes of 11 used) + NOPs: IHL 8.
    let options = [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let seg = data_segment();
    let ip = |s, d| Ipv4::new(s, d, 6).options(&options).build(&seg.build(s, d));
    expect_pass(
        &mut h,
        true,
        &frame(&ip(POD_A, POD_B_REMAPPED)),
        &frame(&ip(POD_A, POD_B)),
        "options out",
    );
    let want = frame(&ip(POD_B_REMAPPED, POD_A));
    expect_pass(
        &mut h,
        false,
        &frame(&ip(POD_B, POD_A)),
        &want,
        "options in",
    );
    assert_eq!(want[14] & 0x0f, 8, "IHL 8 in the expected packet");
    assert_checksums(&want, 14, "expected packet with options");
}

/// A UDP datagram of 64 payload bytes, split into a first fragment (header + 24 bytes) and a
/// later one (40 bytes at offset 32).
fn fragments(src: Ipv4Addr, dst: Ipv4Addr) -> (Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0u8..64).collect();
    let whole = packet::udp(src, dst, 5000, 6000, &payload, true);
    let first = Ipv4::new(src, dst, 17)
        .fragment(true, 0)
        .build(&whole[..32]);
    let later = Ipv4::new(src, dst, 17)
        .fragment(false, 4)
        .build(&whole[32..]);
    (first, later)
}

#[test]
fn first_fragment_gets_l3_and_l4_later_fragment_l3_only() {
    let mut h = harness();
    let (first, later) = fragments(POD_A, POD_B_REMAPPED);
    let (want_first, want_later) = fragments(POD_A, POD_B);
    expect_pass(
        &mut h,
        true,
        &frame(&first),
        &frame(&want_first),
        "first fragment out",
    );
    expect_pass(
        &mut h,
        true,
        &frame(&later),
        &frame(&want_later),
        "later fragment out",
    );
    assert_checksums(
        &frame(&want_later),
        14,
        "expected later fragment (IPv4 header)",
    );
    assert_eq!(h.events(Event::FragmentL3Only), 1);
    assert_eq!(h.events(Event::NatDstRewritten), 2);
    let (first, later) = fragments(POD_B, POD_A);
    let (want_first, want_later) = fragments(POD_B_REMAPPED, POD_A);
    expect_pass(
        &mut h,
        false,
        &frame(&first),
        &frame(&want_first),
        "first fragment in",
    );
    expect_pass(
        &mut h,
        false,
        &frame(&later),
        &frame(&want_later),
        "later fragment in",
    );
}

#[test]
fn other_ip_protocols_get_the_l3_rewrite() {
    let mut h = harness();
    let gre = [0u8, 0, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef];
    let input = frame(&Ipv4::new(POD_A, POD_B_REMAPPED, 47).build(&gre));
    let want = frame(&Ipv4::new(POD_A, POD_B, 47).build(&gre));
    expect_pass(&mut h, true, &input, &want, "GRE to a remapped address");
}

#[test]
fn unmatched_ipv4_passes_byte_identical() {
    let mut h = harness();
    let seg = data_segment();
    let dst = Ipv4Addr::new(10, 60, 1, 1);
    let input = frame(&tcp(POD_A, dst, &seg));
    expect_pass(
        &mut h,
        true,
        &input,
        &input,
        "TCP to an address that is not remapped",
    );
    assert_eq!(
        h.all_events().iter().map(|(_, n)| n).sum::<u64>(),
        0,
        "no event"
    );
}

#[test]
fn non_ipv4_continues_into_the_tunnel_and_only_arp_leaves_it() {
    let mut h = harness();
    let seg = data_segment();
    let v6 = packet::ethernet(
        0x86dd,
        &packet::ipv6([0xfd; 16], [0xfe; 16], 59, b"v6 payload"),
    );
    let arp = packet::arp_request(POD_A, POD_B_REMAPPED);
    let tagged = packet::vlan(42, 0x0800, &tcp(POD_A, POD_B_REMAPPED, &seg));
    let spoofed_tagged = packet::vlan(42, 0x0800, &tcp(Ipv4Addr::new(1, 2, 3, 4), POD_A, &seg));
    let other = packet::ethernet(0x88b5, b"local experimental ethertype");
    let cases = [
        ("IPv6", &v6),
        ("ARP", &arp),
        ("VLAN", &tagged),
        ("VLAN spoof", &spoofed_tagged),
        ("ethertype 0x88b5", &other),
    ];
    for (what, input) in cases {
        let out = h.next(true, input, what);
        assert_bytes(&out, input, what);
    }
    assert_eq!(h.total_drops(), 0, "into the tunnel nothing is dropped");
    // Out of the tunnel only ARP (the link's neighbours) continues; the rest cannot be judged
    // by anti-spoofing and is dropped.
    let out = h.next(false, &arp, "ARP out of the tunnel");
    assert_bytes(&out, &arp, "ARP out of the tunnel");
    for (what, input) in cases.iter().filter(|(w, _)| *w != "ARP") {
        let (action, _) = h.from_tunnel(input);
        assert_eq!(
            action, TC_ACT_SHOT,
            "{what} out of the tunnel must be dropped"
        );
    }
    assert_eq!(h.drops(DropReason::NonIpv4FromTunnel), 4);
    assert_eq!(h.total_drops(), 4);
    assert_eq!(
        h.all_events().iter().map(|(_, n)| n).sum::<u64>(),
        0,
        "no event"
    );
    assert_eq!(
        h.peer(PEER).tx_packets,
        5,
        "non-IPv4 counted as peer traffic too"
    );
}

#[test]
fn spoofed_source_out_of_the_tunnel_is_dropped_and_counted() {
    let mut h = harness();
    let seg = data_segment();
    for src in [
        Ipv4Addr::new(10, 1, 0, 1),
        Ipv4Addr::new(10, 99, 0, 1),
        Ipv4Addr::new(169, 254, 18, 1),
    ] {
        let (action, _) = h.from_tunnel(&frame(&tcp(src, POD_A, &seg)));
        assert_eq!(action, TC_ACT_SHOT, "source {src} must be dropped");
    }
    assert_eq!(h.drops(DropReason::SpoofedSource), 3);
    // The announced tunnel address passes unchanged; into the tunnel nothing is anti-spoofed.
    let ok = frame(&tcp(PEER_TUNNEL, POD_A, &seg));
    expect_pass(&mut h, false, &ok, &ok, "peer tunnel address");
    let out = frame(&tcp(Ipv4Addr::new(10, 1, 0, 1), POD_B, &seg));
    expect_pass(&mut h, true, &out, &out, "unmapped source into the tunnel");
    assert_eq!(h.total_drops(), 3);
}

#[test]
fn ip_mapping_snat_into_and_dnat_out_of_the_tunnel() {
    let mut h = harness();
    let seg = data_segment();
    let input = frame(&tcp(HOST_X, POD_B_REMAPPED, &seg));
    let want = frame(&tcp(HOST_X_MAPPED, POD_B, &seg));
    expect_pass(
        &mut h,
        true,
        &input,
        &want,
        "IP-mapped host to a remapped pod",
    );
    assert_eq!(
        (h.events(Event::IpmapSnat), h.events(Event::NatDstRewritten)),
        (1, 1)
    );
    let input = frame(&udp(POD_B, HOST_X_MAPPED, b"reply", true));
    let want = frame(&udp(POD_B_REMAPPED, HOST_X, b"reply", true));
    expect_pass(
        &mut h,
        false,
        &input,
        &want,
        "peer pod to the external-CIDR address",
    );
    assert_eq!(
        (h.events(Event::IpmapDnat), h.events(Event::NatSrcRewritten)),
        (1, 1)
    );
}

#[test]
fn malformed_ipv4_headers_are_dropped() {
    let mut h = harness();
    let good = tcp(POD_A, POD_B_REMAPPED, &data_segment());
    let mut ihl4 = good.clone();
    ihl4[0] = 0x44;
    let mut too_long = good.clone();
    too_long[2..4].copy_from_slice(&2000u16.to_be_bytes());
    let mut below_header = good.clone();
    below_header[2..4].copy_from_slice(&16u16.to_be_bytes());
    // IHL 15 (60 bytes) on a 40-byte datagram.
    let mut ihl15 = good[..40].to_vec();
    ihl15[0] = 0x4f;
    ihl15[2..4].copy_from_slice(&40u16.to_be_bytes());
    let cases = [
        ("IHL 4", frame(&ihl4)),
        ("total length past the packet", frame(&too_long)),
        ("total length below the header", frame(&below_header)),
        ("options past the packet", frame(&ihl15)),
    ];
    for (i, (what, input)) in cases.iter().enumerate() {
        let (action, _) = h.to_tunnel(input);
        assert_eq!(action, TC_ACT_SHOT, "{what} into the tunnel");
        let (action, _) = h.from_tunnel(input);
        assert_eq!(action, TC_ACT_SHOT, "{what} out of the tunnel");
        assert_eq!(
            h.drops(DropReason::Ipv4Malformed),
            2 * (i as u64 + 1),
            "{what}"
        );
    }
}

#[test]
fn truncated_ipv4_header_is_dropped() {
    // `test_run` refuses an Ethernet frame with ethertype IPv4 and less than 20 bytes of IP
    // (EINVAL), so the truncated header goes through the L3-device mode: 16 bytes whose bytes
    // 12..14 (the source address, 10.0.x.x) are no ethertype the kernel checks.
    let mut h = harness_with(config(MTU, true));
    let good = tcp(POD_A, POD_B_REMAPPED, &data_segment());
    let (action, _) = h.to_tunnel(&good[..16]);
    assert_eq!(action, TC_ACT_SHOT, "16-byte IPv4 header into the tunnel");
    let (action, _) = h.from_tunnel(&good[..16]);
    assert_eq!(action, TC_ACT_SHOT, "16-byte IPv4 header out of the tunnel");
    assert_eq!(h.drops(DropReason::Ipv4Malformed), 2);
}

#[test]
fn truncated_l4_header_is_refused_only_when_a_rewrite_is_needed() {
    let mut h = harness();
    // A TCP datagram cut to 10 bytes of TCP header (total length says so).
    let cut = |s: Ipv4Addr, d: Ipv4Addr| {
        let seg = data_segment().build(s, d);
        Ipv4::new(s, d, 6).build(&seg[..10])
    };
    let (action, _) = h.to_tunnel(&frame(&cut(POD_A, POD_B_REMAPPED)));
    assert_eq!(action, TC_ACT_SHOT, "cannot fix the TCP checksum");
    assert_eq!(h.drops(DropReason::L4Truncated), 1);
    let untouched = frame(&cut(POD_A, Ipv4Addr::new(10, 60, 0, 1)));
    expect_pass(&mut h, true, &untouched, &untouched, "no rewrite needed");
    // UDP with 6 bytes of header, out of the tunnel (source rewrite needed).
    let udp6 = Ipv4::new(POD_B, POD_A, 17).build(&packet::udp(POD_B, POD_A, 1, 2, b"", true)[..6]);
    let (action, _) = h.from_tunnel(&frame(&udp6));
    assert_eq!(action, TC_ACT_SHOT);
    assert_eq!(h.drops(DropReason::L4Truncated), 2);
}

#[test]
fn ethernet_padding_is_not_taken_for_l4_bytes() {
    let mut h = harness();
    // A 28-byte UDP datagram padded to the 60-byte Ethernet minimum.
    let mut input = frame(&udp(POD_A, POD_B_REMAPPED, b"", true));
    let mut want = frame(&udp(POD_A, POD_B, b"", true));
    input.resize(60, 0);
    want.resize(60, 0);
    expect_pass(&mut h, true, &input, &want, "padded frame");
}

#[test]
fn l3_device_mode_handles_bare_ip_packets() {
    let mut h = harness_with(config(MTU, true));
    let seg = data_segment();
    let input = tcp(POD_A, POD_B_REMAPPED, &seg);
    expect_pass(
        &mut h,
        true,
        &input,
        &tcp(POD_A, POD_B, &seg),
        "bare IPv4 into the tunnel",
    );
    assert_checksums(&tcp(POD_A, POD_B, &seg), 0, "expected bare packet");
    let input = udp(POD_B, POD_A, b"x", true);
    expect_pass(
        &mut h,
        false,
        &input,
        &udp(POD_B_REMAPPED, POD_A, b"x", true),
        "bare IPv4 out",
    );
    let v6 = packet::ipv6([0xfd; 16], [0xfe; 16], 17, b"bare v6");
    expect_pass(&mut h, true, &v6, &v6, "bare IPv6");
    let (action, _) = h.from_tunnel(&v6);
    assert_eq!(action, TC_ACT_SHOT, "bare IPv6 out of the tunnel");
    assert_eq!(h.drops(DropReason::NonIpv4FromTunnel), 1);
    let (action, _) = h.from_tunnel(&tcp(Ipv4Addr::new(8, 8, 8, 8), POD_A, &seg));
    assert_eq!(action, TC_ACT_SHOT, "spoofed bare packet");
    assert_eq!(h.drops(DropReason::SpoofedSource), 1);
}

#[test]
fn removing_entries_stops_translation_and_short_prefixes_work() {
    let mut h = harness();
    let seg = data_segment();
    let net = |s: &str| -> ipnet::Ipv4Net { s.parse().expect("prefix") };
    // A /8 covers 256 prefilter slots.
    h.datapath()
        .remap(RemapKind::Dst)
        .expect("table")
        .insert(PEER, net("11.0.0.0/8"), net("12.0.0.0/8"))
        .expect("insert /8");
    let far = Ipv4Addr::new(11, 200, 3, 4);
    let want = frame(&tcp(POD_A, Ipv4Addr::new(12, 200, 3, 4), &seg));
    expect_pass(
        &mut h,
        true,
        &frame(&tcp(POD_A, far, &seg)),
        &want,
        "/8 remap",
    );
    // Remove the /16: the more specific /24 still applies, the rest of the /16 no longer.
    h.datapath()
        .remap(RemapKind::Dst)
        .expect("table")
        .remove(PEER, net("10.50.0.0/16"))
        .expect("remove /16");
    let plain = frame(&tcp(POD_A, POD_B_REMAPPED, &seg));
    expect_pass(&mut h, true, &plain, &plain, "after removing 10.50.0.0/16");
    let in24 = Ipv4Addr::new(10, 50, 9, 3);
    let want = frame(&tcp(POD_A, Ipv4Addr::new(10, 9, 9, 3), &seg));
    expect_pass(
        &mut h,
        true,
        &frame(&tcp(POD_A, in24, &seg)),
        &want,
        "the /24 stays",
    );
    {
        let mut dst = h.datapath().remap(RemapKind::Dst).expect("table");
        dst.remove(PEER, net("10.50.9.0/24")).expect("remove /24");
        dst.remove(PEER, net("11.0.0.0/8")).expect("remove /8");
    }
    let plain = frame(&tcp(POD_A, in24, &seg));
    expect_pass(&mut h, true, &plain, &plain, "after removing 10.50.9.0/24");
    let plain = frame(&tcp(POD_A, far, &seg));
    expect_pass(&mut h, true, &plain, &plain, "after removing 11.0.0.0/8");
    // IP mappings.
    h.datapath()
        .ipmap(IpMapKind::Exit)
        .expect("table")
        .remove(HOST_X)
        .expect("remove ipmap");
    let plain = frame(&tcp(HOST_X, Ipv4Addr::new(10, 60, 0, 1), &seg));
    expect_pass(
        &mut h,
        true,
        &plain,
        &plain,
        "after removing the IP mapping",
    );
    // Out of the tunnel, removing the announced tunnel address makes it a spoofed source.
    h.datapath()
        .remap(RemapKind::Src)
        .expect("table")
        .remove(PEER, net("169.254.18.2/32"))
        .expect("remove tunnel identity");
    let (action, _) = h.from_tunnel(&frame(&tcp(PEER_TUNNEL, POD_A, &seg)));
    assert_eq!(action, TC_ACT_SHOT, "tunnel address no longer announced");
}

#[test]
fn remaps_of_different_sizes_are_refused() {
    let mut h = harness();
    let mut dst = h.datapath().remap(RemapKind::Dst).expect("table");
    let err = dst
        .insert(
            PEER,
            "10.80.0.0/16".parse().expect("prefix"),
            "10.90.0.0/24".parse().expect("prefix"),
        )
        .expect_err("sizes differ");
    assert!(
        matches!(err, clusterwire_dataplane::MapError::SizeMismatch { .. }),
        "got {err}"
    );
}
