//! `cargo xtask bench forward`: a gateway namespace forwarding between a client and a server
//! namespace (veth on both sides), three ways, in one run (issue 11, item 3):
//!
//! ```text
//!  client 10.9.0.2 --- lan0 [gateway] cw0 (MTU 1340) --- cw0 server 10.0.0.1 (lo)
//! ```
//!
//! - (a) `plain`: routing only; the client talks to 10.0.0.1 (the limit).
//! - (b) `reference`: the reference's rules (see shared/REFERENCE.md): nftables NETMAP-style
//!   prefix DNAT 10.71.0.0/24 -> 10.0.0.0/24 in prerouting, SNAT back in postrouting (both need
//!   conntrack), and its MSS rule on SYNs leaving through `cw0` (route MTU - 40); the client
//!   talks to 10.71.0.1.
//! - (c) `clusterwire`: `cw_nat_to_tunnel` on `cw0` egress and `cw_nat_from_tunnel` on `cw0`
//!   ingress with the same remap as (b) (stateless, MSS clamp to `tunnel_mtu` - 40); the client
//!   talks to 10.71.0.1.
//!
//! `cw0` has MTU 1340 on both ends in all three, so every case moves segments of the same size
//! (the clamps fire on the SYN but change nothing the server's own MSS did not already say).
//!
//! Rounds are paired: in each round every figure is measured for the three cases back to back,
//! in an order that rotates from round to round, so a load change on this shared machine hits
//! all three; each figure is the median over rounds, each ratio the median of the per-round
//! ratios. The traffic generators are std sockets on threads entered into the namespaces:
//! TCP bulk (1 and 4 streams, client to server), UDP 64-byte payloads as fast as one sender
//! thread can (packets delivered to the server's socket per second), 1-byte TCP
//! request/response on one connection (p50/p99 of each round trip), and new TCP connections
//! per second (connect, 1-byte request and response, close with a reset so that no `TIME_WAIT`
//! piles up).
//!
//! Softirq CPU per packet: the host's softirq time from `/proc/stat` over a bulk sample,
//! divided by the packets the gateway received on `lan0` and `cw0` (`/proc/net/dev` in the
//! gateway). This kernel has no `CONFIG_IRQ_TIME_ACCOUNTING`, so softirq time is sampled at the
//! tick (4 ms at 250 Hz) and includes the softirq of every namespace (the veths deliver through
//! the backlog in softirq, so the client's and server's stacks are in it too, the same in every
//! case) and of anything else the machine does; the median over rounds tames it. For TCP a
//! "packet" is what the interfaces count: a GSO/GRO super-packet counts once.
//!
//! Environment: `CW_BENCH_ROUNDS` (default 7), `CW_BENCH_SECONDS` per sample (default 1.0),
//! `CW_BENCH_QUICK=1` (3 rounds of 0.5 s). Figures are reported against the issue's targets,
//! never asserted.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "benchmark figures: counts and durations become f64 for printing"
)]

use std::{
    io::{ErrorKind, Read as _, Write as _},
    net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use aya::programs::{TcAttachType, tc};
use clusterwire_common::{
    config::DatapathConfig,
    nat::{NAT_FROM_TUNNEL_PROGRAM, NAT_TO_TUNNEL_PROGRAM},
};
use clusterwire_dataplane::{Datapath, LoadOptions, RemapKind};
use clusterwire_tests::netns::{NetNs, veth_pair};
use nix::sys::socket::{setsockopt, sockopt};

mod kit;

const PEER: u32 = 11;
const TUNNEL_MTU: u32 = 1340;
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const SERVER_REMAPPED: Ipv4Addr = Ipv4Addr::new(10, 71, 0, 1);
const PORT_BULK: u16 = 5201;
const PORT_UDP: u16 = 5202;
const PORT_RR: u16 = 5203;
const PORT_CRR: u16 = 5204;

/// The reference's remap (NETMAP prefix DNAT/SNAT, conntrack) and MSS rules, as in
/// shared/REFERENCE.md: DNAT where traffic enters the gateway from anywhere but the tunnel,
/// SNAT of what comes out of the tunnel, and SYNs leaving through the tunnel clamped to the
/// route's MTU - 40.
const REFERENCE_RULES: &str = r#"
table ip remap {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        iifname != "cw0" ip daddr 10.71.0.0/24 dnat ip prefix to 10.0.0.0/24
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        iifname "cw0" ip saddr 10.0.0.0/24 snat ip prefix to 10.71.0.0/24
    }
}
table ip mss {
    chain forward {
        type filter hook forward priority mangle; policy accept;
        oifname "cw0" tcp flags syn tcp option maxseg size set rt mtu
    }
}
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Plain,
    Reference,
    Clusterwire,
}

const CASES: [Case; 3] = [Case::Plain, Case::Reference, Case::Clusterwire];

impl Case {
    fn index(self) -> usize {
        self as usize
    }
}

struct Topology {
    client: NetNs,
    gateway: NetNs,
    server: NetNs,
    /// Where the client sends: the real address (plain) or the remapped one.
    target: Ipv4Addr,
    /// clusterwire's programs stay attached while this lives.
    _datapath: Option<Datapath>,
}

fn net(s: &str) -> ipnet::Ipv4Net {
    s.parse().expect("CIDR")
}

fn topology(case: Case) -> Topology {
    let tag = match case {
        Case::Plain => "fw-plain",
        Case::Reference => "fw-ref",
        Case::Clusterwire => "fw-cw",
    };
    let client = NetNs::new(&format!("{tag}-c"));
    let gateway = NetNs::new(&format!("{tag}-g"));
    let server = NetNs::new(&format!("{tag}-s"));
    veth_pair(&client, "eth0", &gateway, "lan0");
    veth_pair(&gateway, "cw0", &server, "cw0");
    for ns in [&gateway, &server] {
        ns.ip(&["link", "set", "cw0", "mtu", &TUNNEL_MTU.to_string()]);
    }
    client.ip(&["addr", "add", "10.9.0.2/24", "dev", "eth0"]);
    client.ip(&["route", "add", "default", "via", "10.9.0.1"]);
    client.sysctl("net.ipv4.ip_local_port_range", "1024 65000");
    gateway.ip(&["addr", "add", "10.9.0.1/24", "dev", "lan0"]);
    gateway.ip(&["addr", "add", "169.254.0.1/30", "dev", "cw0"]);
    // The remapped prefix is routed to the server side too: clusterwire rewrites after routing
    // (egress of cw0), the reference before (prerouting).
    for prefix in ["10.71.0.0/24", "10.0.0.0/24"] {
        gateway.ip(&["route", "add", prefix, "via", "169.254.0.2", "dev", "cw0"]);
    }
    gateway.sysctl("net.ipv4.ip_forward", "1");
    for dev in ["all", "default", "lan0", "cw0"] {
        gateway.sysctl(&format!("net.ipv4.conf.{dev}.rp_filter"), "0");
    }
    server.ip(&["addr", "add", "169.254.0.2/30", "dev", "cw0"]);
    server.ip(&["addr", "add", &format!("{SERVER}/32"), "dev", "lo"]);
    server.ip(&["route", "add", "10.9.0.0/24", "via", "169.254.0.1"]);

    let (target, datapath) = match case {
        Case::Plain => (SERVER, None),
        Case::Reference => {
            let out = gateway.exec(
                "sh",
                &["-c", &format!("nft -f - <<'EOF'\n{REFERENCE_RULES}\nEOF")],
            );
            assert!(
                out.status.success(),
                "nft: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            (SERVER_REMAPPED, None)
        }
        Case::Clusterwire => {
            let config = DatapathConfig {
                tunnel_mtu: TUNNEL_MTU,
                peer_id: PEER,
                ..DatapathConfig::zeroed()
            };
            let mut datapath =
                Datapath::load(&config, &LoadOptions::unpinned()).expect("load the datapath");
            datapath
                .remap(RemapKind::Dst)
                .expect("dst table")
                .insert(PEER, net("10.71.0.0/24"), net("10.0.0.0/24"))
                .expect("dst remap");
            datapath
                .remap(RemapKind::Src)
                .expect("src table")
                .insert(PEER, net("10.0.0.0/24"), net("10.71.0.0/24"))
                .expect("src remap");
            gateway.enter(|| {
                let _ = tc::qdisc_add_clsact("cw0");
                for (program, direction) in [
                    (NAT_TO_TUNNEL_PROGRAM, TcAttachType::Egress),
                    (NAT_FROM_TUNNEL_PROGRAM, TcAttachType::Ingress),
                ] {
                    datapath
                        .program(program)
                        .expect("program")
                        .attach("cw0", direction)
                        .unwrap_or_else(|e| panic!("attach {program} to cw0 {direction:?}: {e}"));
                }
            });
            (SERVER_REMAPPED, Some(datapath))
        }
    };
    Topology {
        client,
        gateway,
        server,
        target,
        _datapath: datapath,
    }
}

/// Host-wide softirq time so far, in ns (`/proc/stat`, `USER_HZ` = 100).
fn softirq_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").expect("read /proc/stat");
    let line = text.lines().next().expect("cpu line");
    // cpu user nice system idle iowait irq softirq ...
    let ticks: u64 = line
        .split_whitespace()
        .nth(7)
        .and_then(|v| v.parse().ok())
        .expect("softirq field");
    ticks * 10_000_000
}

/// Packets the gateway received on `lan0` and `cw0` so far.
fn gateway_rx_packets(t: &Topology) -> u64 {
    t.gateway.enter(|| {
        let text =
            std::fs::read_to_string("/proc/thread-self/net/dev").expect("read /proc/net/dev");
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(name, _)| matches!(name.trim(), "lan0" | "cw0"))
            .map(|(_, fields)| {
                fields
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .expect("rx_packets")
            })
            .sum()
    })
}

/// Softirq accounting around one sample.
struct Softirq {
    ns: u64,
    packets: u64,
}

impl Softirq {
    fn start(t: &Topology) -> Self {
        Self {
            packets: gateway_rx_packets(t),
            ns: softirq_ns(),
        }
    }

    /// ns of softirq per packet the gateway received since `start`.
    fn per_packet(&self, t: &Topology) -> f64 {
        let ns = softirq_ns() - self.ns;
        let packets = gateway_rx_packets(t) - self.packets;
        ns as f64 / packets.max(1) as f64
    }
}

/// Bulk TCP, `streams` connections client -> server for `secs`: (Gbit/s, softirq ns/packet).
fn tcp_bulk(t: &Topology, streams: usize, secs: f64) -> (f64, f64) {
    let dst = SocketAddrV4::new(t.target, PORT_BULK);
    let (bulk, softirq) =
        kit::tcp_bulk(t.server.name(), t.client.name(), dst, streams, secs, || {
            Softirq::start(t)
        });
    (bulk.gbps(), softirq.per_packet(t))
}

/// UDP, 64-byte payloads from one sender for `secs`: (packets delivered per second, softirq
/// ns/packet).
fn udp_pps(t: &Topology, secs: f64) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = {
        let stop = Arc::clone(&stop);
        t.server.spawn(move || {
            let s =
                UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT_UDP)).expect("bind");
            setsockopt(&s, sockopt::RcvBuf, &(4 << 20)).expect("SO_RCVBUF");
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            ready_tx.send(()).expect("ready");
            let mut buf = [0u8; 2048];
            let mut n = 0u64;
            loop {
                match s.recv(&mut buf) {
                    Ok(_) => n += 1,
                    Err(_) if stop.load(Ordering::Relaxed) => break n,
                    Err(_) => {}
                }
            }
        })
    };
    ready_rx.recv().expect("server ready");
    let softirq = Softirq::start(t);
    let dst = SocketAddrV4::new(t.target, PORT_UDP);
    t.client.enter(|| {
        let s = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
        s.connect(dst).expect("connect");
        let payload = [0x5au8; 64];
        let end = Instant::now() + Duration::from_secs_f64(secs);
        while Instant::now() < end {
            for _ in 0..64 {
                // ENOBUFS when the qdisc or the veth is full: the packet is lost, keep going.
                let _ = s.send(&payload);
            }
        }
    });
    stop.store(true, Ordering::Relaxed);
    let received = server.join().expect("server");
    (received as f64 / secs, softirq.per_packet(t))
}

/// 1-byte request/response on one TCP connection for `secs`: (p50 µs, p99 µs).
fn tcp_rr(t: &Topology, secs: f64) -> (f64, f64) {
    kit::tcp_rr(
        t.server.name(),
        t.client.name(),
        SocketAddrV4::new(t.target, PORT_RR),
        secs,
    )
}

/// New TCP connections per second for `secs` (connect, 1-byte request and response, close
/// with a reset).
fn tcp_crr(t: &Topology, secs: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = {
        let stop = Arc::clone(&stop);
        t.server.spawn(move || {
            let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT_CRR))
                .expect("bind");
            listener.set_nonblocking(true).expect("nonblocking");
            ready_tx.send(()).expect("ready");
            loop {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).expect("blocking");
                        s.set_nodelay(true).expect("nodelay");
                        let mut b = [0u8; 1];
                        if let Ok(1) = s.read(&mut b) {
                            let _ = s.write_all(&b);
                            let _ = s.read(&mut b);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        std::thread::sleep(Duration::from_micros(20));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
        })
    };
    ready_rx.recv().expect("server ready");
    let dst = SocketAddrV4::new(t.target, PORT_CRR);
    let (count, elapsed) = t.client.enter(|| {
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(secs);
        let mut count = 0u64;
        while Instant::now() < end {
            let mut s =
                TcpStream::connect_timeout(&dst.into(), Duration::from_secs(2)).expect("connect");
            s.set_nodelay(true).expect("nodelay");
            let mut b = [1u8; 1];
            s.write_all(&b).expect("request");
            s.read_exact(&mut b).expect("response");
            setsockopt(
                &s,
                sockopt::Linger,
                &libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                },
            )
            .expect("SO_LINGER");
            drop(s);
            count += 1;
        }
        (count, start.elapsed().as_secs_f64())
    });
    stop.store(true, Ordering::Relaxed);
    server.join().expect("server");
    count as f64 / elapsed
}

/// A figure of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Figure {
    Tcp1,
    Tcp4,
    Udp64,
    RrP50,
    RrP99,
    Crr,
    SoftirqTcp1,
    SoftirqUdp,
}

const FIGURES: [Figure; 8] = [
    Figure::Tcp1,
    Figure::Tcp4,
    Figure::Udp64,
    Figure::RrP50,
    Figure::RrP99,
    Figure::Crr,
    Figure::SoftirqTcp1,
    Figure::SoftirqUdp,
];

impl Figure {
    fn label(self) -> &'static str {
        match self {
            Self::Tcp1 => "TCP 1 stream (Gbit/s)",
            Self::Tcp4 => "TCP 4 streams (Gbit/s)",
            Self::Udp64 => "UDP 64 B (kpps delivered)",
            Self::RrP50 => "TCP 1 B req/resp p50 (us)",
            Self::RrP99 => "TCP 1 B req/resp p99 (us)",
            Self::Crr => "new TCP connections/s",
            Self::SoftirqTcp1 => "softirq ns/packet, TCP 1",
            Self::SoftirqUdp => "softirq ns/packet, UDP 64 B",
        }
    }

    fn higher_is_better(self) -> bool {
        matches!(self, Self::Tcp1 | Self::Tcp4 | Self::Udp64 | Self::Crr)
    }

    /// The issue's target for clusterwire against plain, if it sets one.
    fn target(self, c_over_a: f64, c_minus_a: f64) -> String {
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        match self {
            Self::Tcp1 | Self::Tcp4 | Self::Crr => {
                format!(">= 0.97x plain: {}", verdict(c_over_a >= 0.97))
            }
            Self::SoftirqTcp1 | Self::SoftirqUdp => {
                format!("<= 1.10x plain: {}", verdict(c_over_a <= 1.10))
            }
            Self::RrP50 => format!(
                "<= plain + 1 us ({c_minus_a:+.1} us): {}",
                verdict(c_minus_a <= 1.0)
            ),
            Self::Udp64 | Self::RrP99 => "-".to_owned(),
        }
    }
}

fn main() {
    let (rounds, secs) = kit::settings();
    let setup = Instant::now();
    let topologies: Vec<Topology> = CASES.iter().map(|&c| topology(c)).collect();
    eprintln!(
        "forward: 3 topologies up in {:.1} s; {rounds} rounds of {secs} s per sample",
        setup.elapsed().as_secs_f64()
    );
    // samples[figure][case] = one value per round.
    let mut samples = vec![vec![Vec::<f64>::new(); CASES.len()]; FIGURES.len()];
    let mut record = |figure: Figure, case: Case, value: f64| {
        let f = FIGURES.iter().position(|&x| x == figure).expect("figure");
        samples[f][case.index()].push(value);
    };
    let run = Instant::now();
    for round in 0..rounds {
        let mut order = CASES;
        order.rotate_left(round % CASES.len());
        eprintln!("round {}/{rounds}: order {order:?}", round + 1);
        for &case in &order {
            let (gbps, sirq) = tcp_bulk(&topologies[case.index()], 1, secs);
            record(Figure::Tcp1, case, gbps);
            record(Figure::SoftirqTcp1, case, sirq);
        }
        for &case in &order {
            let (gbps, _) = tcp_bulk(&topologies[case.index()], 4, secs);
            record(Figure::Tcp4, case, gbps);
        }
        for &case in &order {
            let (pps, sirq) = udp_pps(&topologies[case.index()], secs);
            record(Figure::Udp64, case, pps / 1000.0);
            record(Figure::SoftirqUdp, case, sirq);
        }
        for &case in &order {
            let (p50, p99) = tcp_rr(&topologies[case.index()], secs);
            record(Figure::RrP50, case, p50);
            record(Figure::RrP99, case, p99);
        }
        for &case in &order {
            let cps = tcp_crr(&topologies[case.index()], secs);
            record(Figure::Crr, case, cps);
        }
    }
    eprintln!("forward: measured in {:.1} s", run.elapsed().as_secs_f64());

    println!(
        "\nforward: gateway namespace between two veths; (a) plain routing, (b) reference \
         nftables NETMAP + conntrack + MSS rule, (c) clusterwire TC programs"
    );
    println!(
        "medians over {rounds} paired rounds of {secs} s; ratios are medians of per-round ratios\n"
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>7} {:>7}  {:<8} target (c vs a)",
        "figure", "(a) plain", "(b) ref", "(c) cw", "c/a", "c/b", "c vs b"
    );
    for (f, figure) in FIGURES.iter().enumerate() {
        let s = &samples[f];
        let [a, b, c] = [0, 1, 2].map(|i| kit::median(s[i].clone()));
        let (ca, cb) = (
            kit::median_ratio(&s[2], &s[0]),
            kit::median_ratio(&s[2], &s[1]),
        );
        let diff = kit::median(s[2].iter().zip(&s[0]).map(|(c, a)| c - a).collect());
        let ahead = if figure.higher_is_better() {
            cb > 1.0
        } else {
            cb < 1.0
        };
        println!(
            "{:<28} {a:>10.2} {b:>10.2} {c:>10.2} {ca:>7.3} {cb:>7.3}  {:<8} {}",
            figure.label(),
            if ahead { "ahead" } else { "BEHIND" },
            figure.target(ca, diff),
        );
    }
}
