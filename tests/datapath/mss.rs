//! MSS clamping of SYN and SYN-ACK segments: exact bytes against segments built with the
//! clamped option, independent TCP checksums, the `mss_clamped` counter, odd option positions
//! and malformed option lists (left untouched).
use std::net::Ipv4Addr;

use clusterwire_common::stats::Event;
use clusterwire_tests::{
    harness::Harness,
    packet::{Tcp, tcp_flags},
};

use crate::fixture::{
    MTU, POD_A, POD_B, POD_B_REMAPPED, assert_bytes, assert_checksums, config, frame, harness,
    harness_with, tcp,
};

/// A destination nothing remaps, so only the MSS changes.
const OTHER: Ipv4Addr = Ipv4Addr::new(10, 60, 0, 1);
/// `MTU - 40`.
const CLAMP: u16 = 1300;

fn mss(v: u16) -> [u8; 4] {
    let [hi, lo] = v.to_be_bytes();
    [2, 4, hi, lo]
}

fn syn(flags: u8, options: &[u8]) -> Tcp {
    Tcp::new(51000, 443, flags).options(options)
}

/// Options with the MSS option (value `v`) placed after `before` and followed by `after`.
fn opts(before: &[u8], v: u16, after: &[u8]) -> Vec<u8> {
    [before, &mss(v), after].concat()
}

/// Runs `input` one way; asserts the verdict: `TC_ACT_OK` out of the tunnel and for a clamped
/// (or translated) packet into it, `TC_ACT_UNSPEC` for one left untouched into it.
fn run(h: &mut Harness, to_tunnel: bool, input: &[u8]) -> Vec<u8> {
    h.through(to_tunnel, input, "MSS")
}

#[test]
fn syn_and_syn_ack_are_clamped_in_both_directions_whatever_the_option_position() {
    let sack_perm = [4, 2];
    let ts = [8, 10, 1, 2, 3, 4, 5, 6, 7, 8];
    let wscale = [3, 3, 7];
    let layouts: [(&str, &[u8], &[u8]); 5] = [
        ("MSS first", &[], &[1, 3, 3, 7]),
        ("after one NOP (odd offset)", &[1], &[1, 1, 1]),
        (
            "after SACK-permitted and timestamps",
            &[&sack_perm[..], &ts[..]].concat(),
            &[],
        ),
        ("after window scale (odd offset)", &wscale, &[1]),
        ("last, after NOPs", &[1, 1, 1, 1, 1, 1, 1, 1], &[]),
    ];
    let mut h = harness();
    let mut n = 0;
    for (where_, before, after) in layouts {
        for flags in [tcp_flags::SYN, tcp_flags::SYN | tcp_flags::ACK] {
            for to_tunnel in [true, false] {
                let what = format!("{where_}, flags {flags:#x}, to_tunnel {to_tunnel}");
                let (src, dst) = if to_tunnel {
                    (POD_A, OTHER)
                } else {
                    (POD_B, POD_A)
                };
                let out_src = if to_tunnel { POD_A } else { POD_B_REMAPPED };
                let input = frame(&tcp(src, dst, &syn(flags, &opts(before, 1460, after))));
                let want = frame(&tcp(out_src, dst, &syn(flags, &opts(before, CLAMP, after))));
                let out = run(&mut h, to_tunnel, &input);
                assert_bytes(&out, &want, &what);
                assert_checksums(&out, 14, &what);
                n += 1;
            }
        }
    }
    assert_eq!(h.events(Event::MssClamped), n);
}

#[test]
fn clamp_and_nat_together() {
    let mut h = harness();
    let o = opts(&[], 8960, &[1, 1, 4, 2]);
    let input = frame(&tcp(POD_A, POD_B_REMAPPED, &syn(tcp_flags::SYN, &o)));
    let want = frame(&tcp(
        POD_A,
        POD_B,
        &syn(tcp_flags::SYN, &opts(&[], CLAMP, &[1, 1, 4, 2])),
    ));
    let out = run(&mut h, true, &input);
    assert_bytes(&out, &want, "SYN to a remapped pod with MSS 8960");
    assert_checksums(&out, 14, "SYN to a remapped pod");
    assert_eq!(
        (
            h.events(Event::MssClamped),
            h.events(Event::NatDstRewritten)
        ),
        (1, 1)
    );
}

#[test]
fn small_mss_is_never_raised_and_exact_mss_untouched() {
    let mut h = harness();
    for v in [536, 1200, CLAMP] {
        let input = frame(&tcp(POD_A, OTHER, &syn(tcp_flags::SYN, &mss(v))));
        assert_bytes(&run(&mut h, true, &input), &input, &format!("MSS {v}"));
    }
    assert_eq!(h.events(Event::MssClamped), 0);
}

#[test]
fn only_syn_segments_are_clamped() {
    let mut h = harness();
    for flags in [
        tcp_flags::ACK,
        tcp_flags::ACK | tcp_flags::PSH,
        tcp_flags::FIN | tcp_flags::ACK,
        tcp_flags::RST,
    ] {
        let input = frame(&tcp(POD_A, OTHER, &syn(flags, &mss(1460))));
        assert_bytes(
            &run(&mut h, true, &input),
            &input,
            &format!("flags {flags:#x}"),
        );
    }
    assert_eq!(h.events(Event::MssClamped), 0);
}

#[test]
fn malformed_option_lists_are_left_untouched() {
    let big = mss(1460);
    let cases: [(&str, Vec<u8>); 7] = [
        ("EOL before MSS", [&[0u8, 1, 1, 1][..], &big[..]].concat()),
        (
            "zero-length option before MSS",
            [&[8u8, 0, 1, 1][..], &big[..]].concat(),
        ),
        (
            "one-length option before MSS",
            [&[30u8, 1, 1, 1][..], &big[..]].concat(),
        ),
        (
            "option running past the header",
            [&[5u8, 40, 0, 0][..], &big[..]].concat(),
        ),
        ("MSS with length 3", vec![2, 3, 5, 0xb4]),
        ("MSS with length 6", vec![2, 6, 5, 0xb4, 0, 0, 1, 1]),
        ("MSS cut by the header end", vec![1, 1, 2, 4]),
    ];
    let mut h = harness();
    for (what, options) in cases {
        let input = frame(&tcp(POD_A, OTHER, &syn(tcp_flags::SYN, &options)));
        assert_bytes(&run(&mut h, true, &input), &input, what);
    }
    assert_eq!(h.events(Event::MssClamped), 0);
}

#[test]
fn data_offset_past_the_segment_is_left_untouched() {
    let mut h = harness();
    let mut seg = syn(tcp_flags::SYN, &mss(1460));
    seg.data_offset = Some(15);
    let input = frame(&tcp(POD_A, OTHER, &seg));
    assert_bytes(
        &run(&mut h, true, &input),
        &input,
        "data offset 15 on a 24-byte header",
    );
    assert_eq!(h.events(Event::MssClamped), 0);
}

#[test]
fn forty_bytes_of_nops_then_nothing() {
    let mut h = harness();
    let input = frame(&tcp(POD_A, OTHER, &syn(tcp_flags::SYN, &[1; 40])));
    assert_bytes(&run(&mut h, true, &input), &input, "40 NOPs");
    let mut opts = vec![1u8; 36];
    opts.extend_from_slice(&mss(9000));
    let input = frame(&tcp(POD_A, OTHER, &syn(tcp_flags::SYN, &opts)));
    let mut want_opts = vec![1u8; 36];
    want_opts.extend_from_slice(&mss(CLAMP));
    let want = frame(&tcp(POD_A, OTHER, &syn(tcp_flags::SYN, &want_opts)));
    assert_bytes(
        &run(&mut h, true, &input),
        &want,
        "MSS after 36 NOPs (last 4 option bytes)",
    );
    assert_eq!(h.events(Event::MssClamped), 1);
}

#[test]
fn clamping_is_off_with_mtu_zero_and_follows_the_configured_mtu() {
    let mut off = harness_with(config(0, false));
    let input = frame(&tcp(POD_A, OTHER, &syn(tcp_flags::SYN, &mss(1460))));
    assert_bytes(&run(&mut off, true, &input), &input, "MTU 0");
    let mut h1400 = harness_with(config(1400, false));
    let want = frame(&tcp(POD_A, OTHER, &syn(tcp_flags::SYN, &mss(1360))));
    assert_bytes(&run(&mut h1400, true, &input), &want, "MTU 1400");
}

#[test]
fn bare_ip_syn_on_an_l3_device() {
    let mut h = harness_with(config(MTU, true));
    let input = tcp(
        POD_B,
        POD_A,
        &syn(tcp_flags::SYN, &opts(&[1], 1460, &[1, 1, 1])),
    );
    let want = tcp(
        POD_B_REMAPPED,
        POD_A,
        &syn(tcp_flags::SYN, &opts(&[1], CLAMP, &[1, 1, 1])),
    );
    assert_bytes(
        &run(&mut h, false, &input),
        &want,
        "bare SYN out of the tunnel",
    );
    assert_checksums(&want, 0, "expected bare SYN");
}
