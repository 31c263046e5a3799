//! Our rewrites on the skb states `BPF_PROG_TEST_RUN` can build besides a linear
//! `CHECKSUM_NONE` skb (see `clusterwire_tests::testrun` for what each kernel offers):
//! - `CHECKSUM_COMPLETE` (`BPF_F_TEST_SKB_CHECKSUM_COMPLETE`, Linux 6.11+): the kernel fails the
//!   run with `EBADMSG` when `skb->csum` no longer matches the packet after the program, so the
//!   NAT's and MSS clamp's checksum updates are checked against the kernel's own accounting
//!   (the case of packets arriving from a NIC with `CHECKSUM_COMPLETE`, e.g. on decapsulation
//!   ingress); required on 6.11+, skipped with a printed reason on 6.1.
//! - non-linear skbs (`BPF_F_TEST_SKB_NON_LINEAR`, linear part = `ctx.data_end`): the headers
//!   are in page frags and the programs must pull them (`parse::pull`). Probed: skipped with a
//!   printed reason where the kernel refuses the flag.
//!
//! Every case must give exactly the bytes and verdict of the same run on a linear skb.
use std::{io::Write as _, net::Ipv4Addr};

use aya::util::KernelVersion;
use clusterwire_common::nat::{NAT_FROM_TUNNEL_PROGRAM, NAT_TO_TUNNEL_PROGRAM};
use clusterwire_tests::{
    harness::{Harness, SkbIn},
    packet::{self, Tcp, tcp_flags},
    testrun::{BPF_F_TEST_SKB_CHECKSUM_COMPLETE, BPF_F_TEST_SKB_NON_LINEAR},
};

use crate::fixture::{
    HOST_X, HOST_X_MAPPED, POD_A, POD_B, POD_B_REMAPPED, assert_bytes, assert_checksums, frame,
    harness, tcp, udp,
};

/// The kernel release that added `BPF_F_TEST_SKB_CHECKSUM_COMPLETE`.
const CHECKSUM_COMPLETE_SINCE: (u8, u8) = (6, 11);

fn kernel() -> String {
    KernelVersion::current().map_or_else(|_| "unknown".to_owned(), |k| k.to_string())
}

fn has_checksum_complete() -> bool {
    KernelVersion::current().is_ok_and(|k| {
        k >= KernelVersion::new(CHECKSUM_COMPLETE_SINCE.0, CHECKSUM_COMPLETE_SINCE.1, 0)
    })
}

fn flag_names(flags: u32) -> String {
    let mut names = Vec::new();
    if flags & BPF_F_TEST_SKB_CHECKSUM_COMPLETE != 0 {
        names.push("CHECKSUM_COMPLETE");
    }
    if flags & BPF_F_TEST_SKB_NON_LINEAR != 0 {
        names.push("NON_LINEAR");
    }
    names.join("+")
}

/// Runs `program` on `input` in the skb state of `flags` (and `skb.data_end` for the linear
/// size) and checks verdict and bytes against `want`. `false` (with the reason printed) when
/// this kernel cannot build that state; a kernel that must have it and refuses fails.
#[track_caller]
pub fn check_state(
    h: &mut Harness,
    program: &'static str,
    input: &[u8],
    skb: &SkbIn,
    flags: u32,
    want: &(u32, Vec<u8>),
    what: &str,
) -> bool {
    let state = flag_names(flags);
    match h.run_raw(program, input, skb, flags) {
        Ok((verdict, out)) => {
            assert_eq!(verdict, want.0, "{what} ({state}): verdict");
            assert_bytes(&out, &want.1, &format!("{what} ({state})"));
            true
        }
        Err(e) if e.raw_os_error() == Some(libc::EBADMSG) => panic!(
            "{what} ({state}): the kernel found skb->csum stale after {program}: the rewrite \
             changed the packet's sum without updating CHECKSUM_COMPLETE"
        ),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let needs_cc = flags & BPF_F_TEST_SKB_CHECKSUM_COMPLETE != 0;
            let needs_nl = flags & BPF_F_TEST_SKB_NON_LINEAR != 0;
            assert!(
                !(needs_cc && !needs_nl && has_checksum_complete()),
                "{what} ({state}): kernel {} should accept BPF_F_TEST_SKB_CHECKSUM_COMPLETE \
                 (Linux {}.{}+) but refused it: {e}",
                kernel(),
                CHECKSUM_COMPLETE_SINCE.0,
                CHECKSUM_COMPLETE_SINCE.1
            );
            // Straight to the stderr handle: libtest captures `eprintln!` of passing tests,
            // and a skip must never be silent.
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED {what} ({state}): kernel {} refuses this BPF_PROG_TEST_RUN skb state \
                 (EINVAL; CHECKSUM_COMPLETE needs Linux {}.{}+, NON_LINEAR a kernel with \
                 \"bpf: Craft non-linear skbs in BPF_PROG_TEST_RUN\")",
                kernel(),
                CHECKSUM_COMPLETE_SINCE.0,
                CHECKSUM_COMPLETE_SINCE.1
            );
            false
        }
        Err(e) => panic!("{what} ({state}): test_run failed: {e}"),
    }
}

/// Every skb state for one case: `CHECKSUM_COMPLETE`; non-linear with only Ethernet, and with
/// Ethernet + IPv4 in the linear part; both together. Returns how many states ran.
#[track_caller]
pub fn check_all_states(h: &mut Harness, program: &'static str, input: &[u8], what: &str) -> usize {
    let want = h.run(program, input);
    let mut ran = 0;
    let plain = SkbIn::default();
    ran += usize::from(check_state(
        h,
        program,
        input,
        &plain,
        BPF_F_TEST_SKB_CHECKSUM_COMPLETE,
        &want,
        what,
    ));
    for linear in [14, 34] {
        let skb = SkbIn {
            data_end: linear,
            ..SkbIn::default()
        };
        for flags in [
            BPF_F_TEST_SKB_NON_LINEAR,
            BPF_F_TEST_SKB_NON_LINEAR | BPF_F_TEST_SKB_CHECKSUM_COMPLETE,
        ] {
            let what = format!("{what}, {linear} linear bytes");
            ran += usize::from(check_state(h, program, input, &skb, flags, &want, &what));
        }
    }
    ran
}

#[test]
fn nat_and_mss_clamp_are_exact_on_checksum_complete_and_non_linear_skbs() {
    let mut h = harness();
    let payload = Tcp::new(43210, 8080, tcp_flags::ACK | tcp_flags::PSH).payload(&[0x5a; 600]);
    let syn = Tcp::new(43210, 8080, tcp_flags::SYN).options(&[2, 4, 0x05, 0xb4, 1, 1, 4, 2]);
    let cases: [(&str, &'static str, Vec<u8>); 6] = [
        (
            "TCP dst remap into the tunnel",
            NAT_TO_TUNNEL_PROGRAM,
            frame(&tcp(POD_A, POD_B_REMAPPED, &payload)),
        ),
        (
            "UDP dst remap + IP-map SNAT into the tunnel",
            NAT_TO_TUNNEL_PROGRAM,
            frame(&udp(HOST_X, POD_B_REMAPPED, &[7; 300], true)),
        ),
        (
            "TCP src remap out of the tunnel",
            NAT_FROM_TUNNEL_PROGRAM,
            frame(&tcp(POD_B, POD_A, &payload)),
        ),
        (
            "UDP src remap + IP-map DNAT out of the tunnel",
            NAT_FROM_TUNNEL_PROGRAM,
            frame(&udp(POD_B, HOST_X_MAPPED, &[7; 300], true)),
        ),
        (
            "SYN remap + MSS clamp 1460 -> 1300 into the tunnel",
            NAT_TO_TUNNEL_PROGRAM,
            frame(&tcp(POD_A, POD_B_REMAPPED, &syn)),
        ),
        (
            "ICMP echo remap out of the tunnel",
            NAT_FROM_TUNNEL_PROGRAM,
            frame(
                &packet::Ipv4::new(POD_B, Ipv4Addr::new(10, 0, 1, 5), 1)
                    .build(&packet::icmp_echo(3, 1, &[1; 64])),
            ),
        ),
    ];
    let mut ran = 0;
    for (what, program, input) in &cases {
        let (_, out) = h.run(program, input);
        assert_checksums(&out, 14, what);
        ran += check_all_states(&mut h, program, input, what);
    }
    let _ = writeln!(
        std::io::stderr().lock(),
        "kernel {}: {ran} of {} NAT/MSS skb-state runs executed",
        kernel(),
        cases.len() * 5
    );
    if has_checksum_complete() {
        assert!(
            ran >= cases.len(),
            "CHECKSUM_COMPLETE runs must execute here"
        );
    }
}
