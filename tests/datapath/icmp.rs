//! ICMP errors across the remap NAT (RFC 5508): every error type embedding TCP, UDP (with and
//! without checksum) and ICMP, whole and truncated quotes, both directions; exact bytes against
//! errors built from scratch around the translated embedded packet, plus independent checksums.
use std::net::Ipv4Addr;

use clusterwire_common::{drop::DropReason, stats::Event};
use clusterwire_tests::{
    harness::{Harness, TC_ACT_OK, TC_ACT_SHOT, TC_ACT_UNSPEC},
    packet::{self, Ipv4, Tcp, icmp_kind, tcp_flags},
};

use crate::fixture::{
    HOST_X, HOST_X_MAPPED, PEER_TUNNEL, POD_A, POD_B, POD_B_REMAPPED, assert_bytes,
    assert_checksums, frame, harness,
};

/// The error types under test: (type, code, name).
const ERRORS: [(u8, u8, &str); 4] = [
    (
        icmp_kind::DEST_UNREACH,
        icmp_kind::FRAG_NEEDED,
        "fragmentation needed",
    ),
    (
        icmp_kind::DEST_UNREACH,
        icmp_kind::PORT_UNREACH,
        "port unreachable",
    ),
    (icmp_kind::TIME_EXCEEDED, 0, "time exceeded"),
    (icmp_kind::PARAMETER_PROBLEM, 0, "parameter problem"),
];

/// Embedded packet kinds.
#[derive(Debug, Clone, Copy)]
enum Inner {
    Tcp,
    Udp,
    UdpNoChecksum,
    Echo,
}

const INNERS: [Inner; 4] = [Inner::Tcp, Inner::Udp, Inner::UdpNoChecksum, Inner::Echo];

/// The offending datagram `src -> dst` of `kind`.
fn offending(kind: Inner, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    match kind {
        Inner::Tcp => {
            let seg = Tcp::new(40000, 443, tcp_flags::ACK).payload(&[0x5a; 40]);
            Ipv4::new(src, dst, 6).build(&seg.build(src, dst))
        }
        Inner::Udp | Inner::UdpNoChecksum => {
            let with = matches!(kind, Inner::Udp);
            let d = packet::udp(src, dst, 33434, 33435, &[0x11; 30], with);
            Ipv4::new(src, dst, 17).build(&d)
        }
        Inner::Echo => Ipv4::new(src, dst, 1).build(&packet::icmp_echo(7, 9, &[0x22; 24])),
    }
}

/// An ICMP error `from -> to` quoting `quoted` cut to `quote_len` bytes (`None`: whole).
fn error(
    (kind, code): (u8, u8),
    from: Ipv4Addr,
    to: Ipv4Addr,
    quoted: &[u8],
    quote_len: Option<usize>,
) -> Vec<u8> {
    let quote = &quoted[..quote_len.unwrap_or(quoted.len()).min(quoted.len())];
    let msg = packet::icmp_error(kind, code, 1300, quote);
    frame(&Ipv4::new(from, to, 1).build(&msg))
}

/// Runs `input` one way and asserts the output `want` and the exact verdict: `TC_ACT_OK` out of
/// the tunnel and for a translated packet into it, `TC_ACT_UNSPEC` (not ours) for an untouched
/// one into it.
fn expect(h: &mut Harness, to_tunnel: bool, input: &[u8], want: &[u8], what: &str) {
    let verdict = if to_tunnel && want == input {
        TC_ACT_UNSPEC
    } else {
        TC_ACT_OK
    };
    let out = h.expect(to_tunnel, input, verdict, what);
    assert_bytes(&out, want, what);
    assert_checksums(&out, 14, what);
}

/// Into the tunnel: our pod A reports an error about a packet the peer's pod sent it (seen
/// here as from B's remapped address); the peer must see its real address everywhere.
#[test]
fn errors_into_the_tunnel_translate_the_embedded_source() {
    let mut h = harness();
    let mut n = 0;
    for (kind, code, name) in ERRORS {
        for inner in INNERS {
            for quote in [None, Some(28)] {
                let what = format!("{name} quoting {inner:?} ({quote:?} bytes), into the tunnel");
                let seen = offending(inner, POD_B_REMAPPED, POD_A);
                let real = offending(inner, POD_B, POD_A);
                let input = error((kind, code), POD_A, POD_B_REMAPPED, &seen, quote);
                let want = error((kind, code), POD_A, POD_B, &real, quote);
                expect(&mut h, true, &input, &want, &what);
                n += 1;
            }
        }
    }
    assert_eq!(h.events(Event::IcmpInnerRewritten), n);
    assert_eq!(h.events(Event::NatDstRewritten), n);
}

/// Out of the tunnel: the peer's pod (real address) reports an error about our pod's packet to
/// it; our pod must see the peer's remapped address both outside and inside.
#[test]
fn errors_out_of_the_tunnel_translate_the_embedded_destination() {
    let mut h = harness();
    let mut n = 0;
    for (kind, code, name) in ERRORS {
        for inner in INNERS {
            for quote in [None, Some(28)] {
                let what = format!("{name} quoting {inner:?} ({quote:?} bytes), out of the tunnel");
                let sent = offending(inner, POD_A, POD_B);
                let seen = offending(inner, POD_A, POD_B_REMAPPED);
                let input = error((kind, code), POD_B, POD_A, &sent, quote);
                let want = error((kind, code), POD_B_REMAPPED, POD_A, &seen, quote);
                expect(&mut h, false, &input, &want, &what);
                n += 1;
            }
        }
    }
    assert_eq!(h.events(Event::IcmpInnerRewritten), n);
    assert_eq!(h.events(Event::NatSrcRewritten), n);
}

#[test]
fn errors_about_ip_mapped_hosts_translate_both_headers() {
    let mut h = harness();
    let frag = (icmp_kind::DEST_UNREACH, icmp_kind::FRAG_NEEDED);
    // Our mapped host X answers a peer pod with an error: outer source and embedded
    // destination become X's external-CIDR address, the remapped peer becomes real.
    let input = error(
        frag,
        HOST_X,
        POD_B_REMAPPED,
        &offending(Inner::Tcp, POD_B_REMAPPED, HOST_X),
        None,
    );
    let want = error(
        frag,
        HOST_X_MAPPED,
        POD_B,
        &offending(Inner::Tcp, POD_B, HOST_X_MAPPED),
        None,
    );
    expect(&mut h, true, &input, &want, "error from an IP-mapped host");
    assert_eq!(h.events(Event::IpmapSnat), 1);
    // The peer's pod reports an error about X's packet (sent from X's mapped address).
    let input = error(
        frag,
        POD_B,
        HOST_X_MAPPED,
        &offending(Inner::Udp, HOST_X_MAPPED, POD_B),
        None,
    );
    let want = error(
        frag,
        POD_B_REMAPPED,
        HOST_X,
        &offending(Inner::Udp, HOST_X, POD_B_REMAPPED),
        None,
    );
    expect(
        &mut h,
        false,
        &input,
        &want,
        "error about an IP-mapped host",
    );
    assert_eq!(h.events(Event::IpmapDnat), 1);
}

#[test]
fn error_from_the_peer_gateway_rewrites_only_the_embedded_packet() {
    let mut h = harness();
    // Time exceeded (traceroute) from the peer gateway's tunnel address (announced as is).
    let ttl = (icmp_kind::TIME_EXCEEDED, 0);
    let input = error(
        ttl,
        PEER_TUNNEL,
        POD_A,
        &offending(Inner::Udp, POD_A, POD_B),
        Some(28),
    );
    let want = error(
        ttl,
        PEER_TUNNEL,
        POD_A,
        &offending(Inner::Udp, POD_A, POD_B_REMAPPED),
        Some(28),
    );
    expect(
        &mut h,
        false,
        &input,
        &want,
        "time exceeded from the peer gateway",
    );
    assert_eq!(h.events(Event::IcmpInnerRewritten), 1);
    assert_eq!(
        h.events(Event::NatSrcRewritten),
        0,
        "outer source unchanged"
    );
}

#[test]
fn embedded_ipv4_options_and_fragments() {
    let mut h = harness();
    let unreach = (icmp_kind::DEST_UNREACH, icmp_kind::PORT_UNREACH);
    let with_options = |s, d| {
        let u = packet::udp(s, d, 1000, 2000, b"opts", true);
        Ipv4::new(s, d, 17).options(&[1, 1, 1, 0]).build(&u)
    };
    let input = error(
        unreach,
        POD_A,
        POD_B_REMAPPED,
        &with_options(POD_B_REMAPPED, POD_A),
        None,
    );
    let want = error(unreach, POD_A, POD_B, &with_options(POD_B, POD_A), None);
    expect(&mut h, true, &input, &want, "embedded header with options");
    // A later fragment quoted: its payload is not an L4 header and stays as is.
    let later = |s, d| Ipv4::new(s, d, 17).fragment(false, 4).build(&[0xab; 16]);
    let input = error(unreach, POD_B, POD_A, &later(POD_A, POD_B), None);
    let want = error(
        unreach,
        POD_B_REMAPPED,
        POD_A,
        &later(POD_A, POD_B_REMAPPED),
        None,
    );
    expect(&mut h, false, &input, &want, "embedded later fragment");
}

#[test]
fn echo_and_other_icmp_types_rewrite_the_outer_header_only() {
    let mut h = harness();
    // A redirect (type 5) also quotes a header but is not translated inside.
    let quoted = offending(Inner::Udp, POD_B_REMAPPED, POD_A);
    let msg = packet::icmp(5, 1, [10, 0, 0, 1], &quoted);
    let input = frame(&Ipv4::new(POD_A, POD_B_REMAPPED, 1).build(&msg));
    let want = frame(&Ipv4::new(POD_A, POD_B, 1).build(&msg));
    expect(&mut h, true, &input, &want, "redirect");
    assert_eq!(h.events(Event::IcmpInnerRewritten), 0);
}

#[test]
fn malformed_embedded_header_is_dropped_when_a_rewrite_is_needed() {
    let mut h = harness();
    let unreach = (icmp_kind::DEST_UNREACH, icmp_kind::PORT_UNREACH);
    let quoted = offending(Inner::Tcp, POD_B_REMAPPED, POD_A);
    let mut ihl4 = quoted.clone();
    ihl4[0] = 0x44;
    let mut ihl15 = quoted[..28].to_vec();
    ihl15[0] = 0x4f;
    let mut v6 = quoted.clone();
    v6[0] = 0x65;
    let cases: [(&str, Vec<u8>); 4] = [
        ("10-byte embedded header", quoted[..10].to_vec()),
        ("embedded IHL 4", ihl4),
        ("embedded options past the quote", ihl15),
        ("embedded version 6", v6),
    ];
    for (i, (what, bad)) in cases.iter().enumerate() {
        let input = error(unreach, POD_A, POD_B_REMAPPED, bad, None);
        let (action, _) = h.to_tunnel(&input);
        assert_eq!(action, TC_ACT_SHOT, "{what}: must not be half-translated");
        assert_eq!(
            h.drops(DropReason::IcmpInnerMalformed),
            i as u64 + 1,
            "{what}"
        );
        // The same error between addresses nothing maps passes untouched.
        let other = Ipv4Addr::new(10, 60, 0, 1);
        let untouched = error(unreach, POD_A, other, bad, None);
        let (action, out) = h.to_tunnel(&untouched);
        assert_eq!(action, TC_ACT_UNSPEC, "{what} needing no rewrite: not ours");
        assert_bytes(&out, &untouched, what);
    }
}

#[test]
fn error_quoting_unmapped_addresses_passes_unchanged() {
    let mut h = harness();
    let other = Ipv4Addr::new(10, 60, 0, 1);
    let input = error(
        (icmp_kind::TIME_EXCEEDED, 0),
        POD_A,
        other,
        &offending(Inner::Tcp, other, POD_A),
        None,
    );
    expect(&mut h, true, &input, &input, "nothing to translate");
    assert_eq!(h.events(Event::IcmpInnerRewritten), 0);
}

/// A router inside the peer's network that the peer never announced.
const ROUTER: Ipv4Addr = Ipv4Addr::new(172, 16, 5, 1);

/// Out of the tunnel: PMTUD and traceroute errors from a router of the peer's network about
/// our packets to the peer's pods arrive with the peer pod's remapped address as their source
/// (as the kernel's NAT presents them) and the quote translated; counted.
#[test]
fn errors_from_an_unannounced_router_about_our_packets_are_accepted() {
    let mut h = harness();
    let mut n = 0;
    for (kind, code, name) in ERRORS {
        for inner in INNERS {
            for quote in [None, Some(28)] {
                let what = format!("{name} from {ROUTER} quoting {inner:?} ({quote:?} bytes)");
                let sent = offending(inner, POD_A, POD_B);
                let seen = offending(inner, POD_A, POD_B_REMAPPED);
                let input = error((kind, code), ROUTER, POD_A, &sent, quote);
                let want = error((kind, code), POD_B_REMAPPED, POD_A, &seen, quote);
                expect(&mut h, false, &input, &want, &what);
                n += 1;
            }
        }
    }
    assert_eq!(h.events(Event::IcmpErrorFromRouter), n);
    assert_eq!(h.events(Event::IcmpInnerRewritten), n);
    assert_eq!(h.total_drops(), 0);
    // About our IP-mapped host X (seen by the peer as its external-CIDR address): the quote's
    // source and the outer destination become X again.
    let frag = (icmp_kind::DEST_UNREACH, icmp_kind::FRAG_NEEDED);
    let sent = offending(Inner::Tcp, HOST_X_MAPPED, POD_B);
    let input = error(frag, ROUTER, HOST_X_MAPPED, &sent, None);
    let want = error(
        frag,
        POD_B_REMAPPED,
        HOST_X,
        &offending(Inner::Tcp, HOST_X, POD_B_REMAPPED),
        None,
    );
    expect(
        &mut h,
        false,
        &input,
        &want,
        "frag-needed about an IP-mapped host",
    );
    assert_eq!(h.events(Event::IcmpErrorFromRouter), n + 1);
}

/// Anything else from an unannounced source stays a spoofed source.
#[test]
fn other_traffic_from_an_unannounced_router_is_still_spoofed() {
    let mut h = harness();
    let frag = (icmp_kind::DEST_UNREACH, icmp_kind::FRAG_NEEDED);
    let outside = Ipv4Addr::new(10, 60, 0, 1);
    let mut bad_version = offending(Inner::Udp, POD_A, POD_B);
    bad_version[0] = 0x65;
    let later_fragment = {
        let msg = packet::icmp_error(3, 4, 1300, &offending(Inner::Udp, POD_A, POD_B));
        frame(&Ipv4::new(ROUTER, POD_A, 1).fragment(false, 8).build(&msg))
    };
    let cases: [(&str, Vec<u8>); 6] = [
        (
            "error quoting a packet to an address the peer did not announce",
            error(
                frag,
                ROUTER,
                POD_A,
                &offending(Inner::Udp, POD_A, outside),
                None,
            ),
        ),
        (
            "echo request",
            frame(&Ipv4::new(ROUTER, POD_A, 1).build(&packet::icmp_echo(1, 1, b"hi"))),
        ),
        (
            "redirect (not an error we translate)",
            frame(&Ipv4::new(ROUTER, POD_A, 1).build(&packet::icmp(
                5,
                1,
                [10, 0, 0, 1],
                &offending(Inner::Udp, POD_A, POD_B),
            ))),
        ),
        (
            "error with a malformed quote",
            error(frag, ROUTER, POD_A, &bad_version, None),
        ),
        ("later fragment of an error", later_fragment),
        (
            "UDP from the router",
            frame(
                &Ipv4::new(ROUTER, POD_A, 17).build(&packet::udp(ROUTER, POD_A, 1, 2, b"x", true)),
            ),
        ),
    ];
    for (i, (what, input)) in cases.iter().enumerate() {
        let (action, _) = h.from_tunnel(input);
        assert_eq!(action, TC_ACT_SHOT, "{what}: spoofed");
        assert_eq!(h.drops(DropReason::SpoofedSource), i as u64 + 1, "{what}");
    }
    assert_eq!(h.events(Event::IcmpErrorFromRouter), 0);
}
