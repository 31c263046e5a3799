//! `cargo xtask bench datapath`: ns per packet of the datapath programs through
//! `BPF_PROG_TEST_RUN` (the kernel's own per-run average over `repeat` runs). Needs root.
//!
//! Measuring rewrites honestly: with `repeat`, the kernel reruns the program on the same
//! buffer, so a rewrite would happen on the first run only and the rest would measure a miss.
//! The NAT-hit cases therefore use a benchmark table that maps 10.50.0.0/16 and 10.0.0.0/16
//! onto each other: every run finds an entry and rewrites the address and both checksums
//! (the packet flips between the two prefixes). An MSS option cannot flip back, so the clamp is
//! measured single-shot (`repeat` 1 on a fresh copy, averaged over many calls, which adds the
//! kernel's timer overhead; the single-shot baseline is printed next to it) and the walk over
//! an already-clamped SYN is measured with `repeat`.
//!
//! Where the time goes (measured by removing parts): of a TCP NAT hit (~80 ns) about 28 ns are
//! the harness baseline, ~10 ns parsing and counters, ~17 ns the LPM lookup and the header
//! writes, and ~24 ns the `bpf_l4_csum_replace` call, kept because only the kernel knows whether
//! the skb is `CHECKSUM_PARTIAL` or `CHECKSUM_COMPLETE` (a direct write would be wrong for both).
use std::net::Ipv4Addr;

use clusterwire_common::{
    config::DatapathConfig,
    nat::{NAT_FROM_TUNNEL_PROGRAM, NAT_TO_TUNNEL_PROGRAM},
    probe::PROBE_PROGRAM,
};
use clusterwire_dataplane::RemapKind;
use clusterwire_tests::{
    harness::Harness,
    packet::{self, Ipv4, Tcp, tcp_flags},
};
use ipnet::Ipv4Net;

mod geneve;

const PEER: u32 = 1;
const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);
const REMAPPED: Ipv4Addr = Ipv4Addr::new(10, 50, 2, 7);
const REAL: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 7);
const UNMAPPED: Ipv4Addr = Ipv4Addr::new(10, 60, 2, 7);
/// Measurements per case; the median is printed.
const SAMPLES: usize = 5;

fn tcp(src: Ipv4Addr, dst: Ipv4Addr, seg: &Tcp) -> Vec<u8> {
    packet::eth_ipv4(&Ipv4::new(src, dst, 6).build(&seg.build(src, dst)))
}

fn harness() -> Harness {
    let config = DatapathConfig {
        tunnel_mtu: 1340,
        peer_id: PEER,
        ..DatapathConfig::zeroed()
    };
    let mut h = Harness::new(config);
    let a: Ipv4Net = "10.50.0.0/16".parse().expect("prefix");
    let b: Ipv4Net = "10.0.0.0/16".parse().expect("prefix");
    for kind in [RemapKind::Dst, RemapKind::Src] {
        let mut t = h.datapath().remap(kind).expect("remap table");
        t.insert(PEER, a, b).expect("insert");
        t.insert(PEER, b, a).expect("insert");
    }
    h
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn looped(h: &mut Harness, program: &'static str, input: &[u8], repeat: u32) -> f64 {
    median(
        (0..SAMPLES)
            .map(|_| h.time(program, input, repeat))
            .collect(),
    )
}

fn single_shot(h: &mut Harness, program: &'static str, input: &[u8], calls: u32) -> f64 {
    median(
        (0..SAMPLES)
            .map(|_| (0..calls).map(|_| h.time(program, input, 1)).sum::<f64>() / f64::from(calls))
            .collect(),
    )
}

fn main() {
    let repeat: u32 = std::env::var("CW_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let calls = (repeat / 20).max(1000);
    let mut h = harness();
    let data = Tcp::new(43210, 443, tcp_flags::ACK | tcp_flags::PSH).payload(&[0x5a; 64]);
    let syn = Tcp::new(43210, 443, tcp_flags::SYN).options(&[2, 4, 0x05, 0xb4, 4, 2, 1, 3, 3, 7]);
    let clamped_syn =
        Tcp::new(43210, 443, tcp_flags::SYN).options(&[2, 4, 0x05, 0x14, 4, 2, 1, 3, 3, 7]);
    let ipv6 = packet::ethernet(0x86dd, &packet::ipv6([0xfd; 16], [0xfe; 16], 59, &[0; 64]));
    let udp = packet::eth_ipv4(
        &Ipv4::new(LOCAL, REMAPPED, 17)
            .build(&packet::udp(LOCAL, REMAPPED, 5000, 53, &[7; 64], true)),
    );

    println!("datapath benchmark: BPF_PROG_TEST_RUN, {repeat} repeats, median of {SAMPLES}");
    println!("{:<52} {:>10} {:>8}", "case", "ns/packet", "target");
    let row = |name: &str, ns: f64, target: Option<u32>| {
        let target = target.map_or_else(|| "-".to_owned(), |t| format!("<= {t}"));
        println!("{name:<52} {ns:>10.1} {target:>8}");
    };
    row(
        "baseline: cw_probe_count (2 counter updates)",
        looped(&mut h, PROBE_PROGRAM, &ipv6, repeat),
        None,
    );
    row(
        "miss: IPv4 TCP to an unmapped address (to tunnel)",
        looped(
            &mut h,
            NAT_TO_TUNNEL_PROGRAM,
            &tcp(LOCAL, UNMAPPED, &data),
            repeat,
        ),
        Some(40),
    );
    row(
        "miss: IPv6 (to tunnel)",
        looped(&mut h, NAT_TO_TUNNEL_PROGRAM, &ipv6, repeat),
        Some(40),
    );
    row(
        "NAT hit: TCP dst remap (to tunnel)",
        looped(
            &mut h,
            NAT_TO_TUNNEL_PROGRAM,
            &tcp(LOCAL, REMAPPED, &data),
            repeat,
        ),
        Some(80),
    );
    row(
        "NAT hit: TCP src remap + anti-spoof (from tunnel)",
        looped(
            &mut h,
            NAT_FROM_TUNNEL_PROGRAM,
            &tcp(REAL, LOCAL, &data),
            repeat,
        ),
        Some(80),
    );
    row(
        "NAT hit: UDP dst remap (to tunnel)",
        looped(&mut h, NAT_TO_TUNNEL_PROGRAM, &udp, repeat),
        Some(80),
    );
    row(
        "MSS: walk of an already-clamped SYN (to tunnel)",
        looped(
            &mut h,
            NAT_TO_TUNNEL_PROGRAM,
            &tcp(LOCAL, UNMAPPED, &clamped_syn),
            repeat,
        ),
        Some(120),
    );
    let base_loop = looped(&mut h, PROBE_PROGRAM, &ipv6, repeat);
    let base_single = single_shot(&mut h, PROBE_PROGRAM, &ipv6, calls);
    let clamp_single = single_shot(
        &mut h,
        NAT_TO_TUNNEL_PROGRAM,
        &tcp(LOCAL, UNMAPPED, &syn),
        calls,
    );
    row("single-shot baseline: cw_probe_count", base_single, None);
    row(
        "single-shot MSS clamp 1460 -> 1300 on a SYN",
        clamp_single,
        None,
    );
    row(
        "MSS clamp, looped-equivalent (single-shot - its baseline + looped baseline)",
        clamp_single - base_single + base_loop,
        Some(120),
    );
    for (name, ns, target) in geneve::cases(repeat, calls) {
        row(name, ns, target);
    }
}
