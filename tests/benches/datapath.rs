//! `cargo xtask bench datapath`: ns per packet of the datapath programs through
//! `BPF_PROG_TEST_RUN` (the kernel's own per-run average over `repeat` runs). Needs root.
//!
//! Measuring rewrites honestly: with `repeat`, the kernel reruns the program on the same
//! buffer, so a rewrite would happen on the first run only and the rest would measure a miss.
//! The NAT-hit cases therefore use a benchmark table that maps 10.50.0.0/16 and 10.0.0.0/16
//! onto each other: every run finds an entry and rewrites the address and both checksums
//! (the packet flips between the two prefixes). An MSS option cannot flip back, so the clamp is
//! measured single-shot (`repeat` 1 on a fresh copy, averaged over many calls, which adds the
//! kernel's timer overhead) and the walk over an already-clamped SYN is measured with `repeat`.
//!
//! Every row is printed next to the harness baseline (`cw_probe_count`, two counter updates),
//! measured on the same harness by the same method (looped or single-shot), one baseline sample
//! right before each sample of the case (so a load change on this shared machine moves both),
//! and judged by its extra cost over that baseline against the targets: miss <= +10 ns, NAT hit <= +45 ns,
//! MSS clamp <= +90 ns, native encap <= +90 ns, decap <= +90 ns.
//!
//! Where the time goes (measured by removing parts in a scratch build, paired rounds): of a TCP
//! NAT hit (~78 ns) about 28 ns are the harness baseline, ~25 ns the `bpf_l4_csum_replace` call,
//! ~14 ns the LPM lookup, and ~10 ns parsing, the prefilter, the header writes and the counters
//! (peer counters ~2-3, the rewrite event ~1-3, the MSS check of a non-SYN ~1-2). The checksum
//! helper stays because only the kernel knows whether the skb is `CHECKSUM_PARTIAL` or
//! `CHECKSUM_COMPLETE` (a direct write would be wrong for one of them; telling them apart from
//! the packet, by comparing the checksum with the pseudo-header seed, would corrupt the one
//! packet in 65,536 whose complete checksum equals its seed). Geneve: see `geneve.rs`.
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

/// How a case is timed.
#[derive(Clone, Copy, Debug)]
pub enum Method {
    /// `repeat` runs in one `BPF_PROG_TEST_RUN` (the kernel reruns the same buffer).
    Looped(u32),
    /// `repeat` 1 on a fresh copy, averaged over this many calls.
    SingleShot(u32),
}

fn sample(h: &mut Harness, program: &'static str, input: &[u8], method: Method) -> f64 {
    match method {
        Method::Looped(repeat) => h.time(program, input, repeat),
        Method::SingleShot(calls) => {
            (0..calls).map(|_| h.time(program, input, 1)).sum::<f64>() / f64::from(calls)
        }
    }
}

/// The IPv6 frame the baseline runs on (the probe program only counts it).
fn baseline_frame() -> Vec<u8> {
    packet::ethernet(0x86dd, &packet::ipv6([0xfd; 16], [0xfe; 16], 59, &[0; 64]))
}

/// Times `program` on `input`, each of its `SAMPLES` samples taken right after a sample of the
/// harness baseline (`cw_probe_count`) on the same harness by the same method, so that both
/// see the same machine load; (median of the case, median of the baseline).
fn paired(h: &mut Harness, program: &'static str, input: &[u8], method: Method) -> (f64, f64) {
    let base_frame = baseline_frame();
    let (mut cases, mut bases) = (Vec::new(), Vec::new());
    for _ in 0..SAMPLES {
        bases.push(sample(h, PROBE_PROGRAM, &base_frame, method));
        cases.push(sample(h, program, input, method));
    }
    (median(cases), median(bases))
}

/// One benchmark row: a case, its time, the harness baseline measured the same way in the
/// same run, and the target for the extra cost over that baseline.
#[derive(Debug)]
pub struct Row {
    /// What is measured.
    pub name: &'static str,
    /// ns per packet.
    pub ns: f64,
    /// The baseline program (`cw_probe_count`) measured the same way (looped or single-shot).
    pub base: f64,
    /// Target for `ns - base`, if the issue sets one.
    pub target: Option<u32>,
}

impl Row {
    /// Measures a row: the case and its paired baseline (see [`paired`]).
    pub fn measure(
        name: &'static str,
        h: &mut Harness,
        program: &'static str,
        input: &[u8],
        method: Method,
        target: Option<u32>,
    ) -> Self {
        let (ns, base) = paired(h, program, input, method);
        Self {
            name,
            ns,
            base,
            target,
        }
    }
}

/// Miss (a packet that is not ours): extra cost over the baseline.
pub const MISS_TARGET: u32 = 10;
/// NAT hit.
pub const NAT_HIT_TARGET: u32 = 45;
/// MSS clamp.
pub const MSS_TARGET: u32 = 90;
/// Native Geneve encapsulation.
pub const ENCAP_TARGET: u32 = 90;
/// Geneve decapsulation.
pub const DECAP_TARGET: u32 = 90;

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

    let (looped, single) = (Method::Looped(repeat), Method::SingleShot(calls));
    let mut rows = vec![
        Row::measure(
            "miss: IPv4 TCP to an unmapped address (to tunnel)",
            &mut h,
            NAT_TO_TUNNEL_PROGRAM,
            &tcp(LOCAL, UNMAPPED, &data),
            looped,
            Some(MISS_TARGET),
        ),
        Row::measure(
            "miss: IPv6 (to tunnel)",
            &mut h,
            NAT_TO_TUNNEL_PROGRAM,
            &ipv6,
            looped,
            Some(MISS_TARGET),
        ),
        Row::measure(
            "NAT hit: TCP dst remap (to tunnel)",
            &mut h,
            NAT_TO_TUNNEL_PROGRAM,
            &tcp(LOCAL, REMAPPED, &data),
            looped,
            Some(NAT_HIT_TARGET),
        ),
        Row::measure(
            "NAT hit: TCP src remap + anti-spoof (from tunnel)",
            &mut h,
            NAT_FROM_TUNNEL_PROGRAM,
            &tcp(REAL, LOCAL, &data),
            looped,
            Some(NAT_HIT_TARGET),
        ),
        Row::measure(
            "NAT hit: UDP dst remap (to tunnel)",
            &mut h,
            NAT_TO_TUNNEL_PROGRAM,
            &udp,
            looped,
            Some(NAT_HIT_TARGET),
        ),
        Row::measure(
            "MSS: walk of an already-clamped SYN (to tunnel)",
            &mut h,
            NAT_TO_TUNNEL_PROGRAM,
            &tcp(LOCAL, UNMAPPED, &clamped_syn),
            looped,
            Some(MSS_TARGET),
        ),
        Row::measure(
            "single-shot MSS clamp 1460 -> 1300 on a SYN",
            &mut h,
            NAT_TO_TUNNEL_PROGRAM,
            &tcp(LOCAL, UNMAPPED, &syn),
            single,
            Some(MSS_TARGET),
        ),
    ];
    rows.extend(geneve::cases(looped, single));
    report(repeat, &rows);
}

/// Prints every row next to its baseline, with its extra cost and target.
fn report(repeat: u32, rows: &[Row]) {
    println!("datapath benchmark: BPF_PROG_TEST_RUN, {repeat} repeats, median of {SAMPLES}");
    println!(
        "baseline: the harness program (cw_probe_count, 2 counter updates) on the same harness, \
         by the same method, one sample before each sample of the case"
    );
    println!(
        "{:<54} {:>9} {:>9} {:>8} {:>8}",
        "case", "ns/packet", "baseline", "extra", "target"
    );
    let mut over = 0;
    for &Row {
        name,
        ns,
        base,
        target,
    } in rows
    {
        let extra = ns - base;
        let verdict = match target {
            Some(t) if extra > f64::from(t) => {
                over += 1;
                format!("<= +{t} OVER")
            }
            Some(t) => format!("<= +{t}"),
            None => "-".to_owned(),
        };
        println!("{name:<54} {ns:>9.1} {base:>9.1} {extra:>+8.1} {verdict:>8}");
    }
    println!(
        "{over} case(s) over target (extra cost = case - harness baseline measured the same way)"
    );
}
