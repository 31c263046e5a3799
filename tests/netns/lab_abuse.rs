//! Abuse of the lab (issue 11): the real daemons of `cwctl lab up` (2 clusters) receive what an
//! attacker or a broken peer sends, and must drop it, count it, and disturb nothing else.
//!
//! - garbage UDP from a host on the WAN to the server gateway's WireGuard `NodePort`: WireGuard
//!   ignores it (nothing accepted as peer data, no answer), the tunnel stays Connected;
//! - packets from the peer through the tunnel with forged sources (outside the peer's announced
//!   CIDRs): dropped by the NAT's anti-spoofing as `spoofed_source`, exactly counted;
//! - Geneve to a gateway pod's port 6091 from an unknown node or with an unknown VNI (or not
//!   valid Geneve): dropped as `geneve_unknown_peer` / `geneve_unknown_vni` /
//!   `geneve_malformed`, exactly counted, nothing decapsulated.
//!
//! In each, a UDP stream between pods of the two clusters runs through the injection and must
//! lose no datagram, and ping and TCP work both ways afterwards. Addresses (docs/lab.md): cl01
//! runs the server gateway `cwlab-cl01-gw-cl02` (pod 10.0.1.102 on cl01-n1, `NodePort` 31840 on
//! 198.18.0.11, metrics on 10.0.1.102:9090); cl02 the client `cwlab-cl02-gw-cl01`; either
//! cluster reaches the other's `n1-a` (10.0.1.10) at 10.1.1.10 and `n2-b` at 10.1.2.11.

use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader},
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use clusterwire_tests::netns::NetNs;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, sendto, socket,
};

use crate::lab_kit::{
    Lab, StreamResult, UdpStream, assert_traffic_across, connection_status, cwctl, gateway_metrics,
    in_netns, lab_ok, udp_snmp,
};

const SERVER_GW: &str = "cwlab-cl01-gw-cl02";
const CLIENT_GW: &str = "cwlab-cl02-gw-cl01";
const SERVER_GW_POD: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 102);
const METRICS: SocketAddrV4 = SocketAddrV4::new(SERVER_GW_POD, 9090);
/// `n1-a` of the other cluster, as either cluster sees it.
const REMOTE_N1_A: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 10);
const REMOTE_N2_B: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 11);
const GENEVE_PORT: u16 = 6091;

fn lab_up() -> Lab {
    let guard = Lab::claim();
    let up = lab_ok(&["up"]);
    assert!(up.contains("lab up in"), "{up}");
    guard
}

/// The server gateway's metrics, once they were sampled after `since` (the gateway refreshes
/// them every 500 ms): read twice, 1.2 s apart, and the later read returned.
fn settled_metrics() -> BTreeMap<String, u64> {
    std::thread::sleep(Duration::from_millis(1200));
    gateway_metrics(SERVER_GW, METRICS)
}

fn metric(m: &BTreeMap<String, u64>, name: &str) -> u64 {
    *m.get(name)
        .unwrap_or_else(|| panic!("no metric {name} in {m:#?}"))
}

fn drop_metric(reason: &str) -> String {
    format!("clusterwire_datapath_drops_total{{reason=\"{reason}\"}}")
}

/// Every drop counter that changed between two samples, as reason -> increase.
fn drops_delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Vec<String> {
    after
        .iter()
        .filter(|(k, _)| k.starts_with("clusterwire_datapath_drops_total"))
        .filter_map(|(k, v)| {
            let was = before.get(k).copied().unwrap_or(0);
            (*v != was).then(|| format!("{k} +{}", v - was))
        })
        .collect()
}

/// A stream between pods of the two clusters (cl01/n1-a -> cl02/n2-b: out of cl01's server
/// gateway into the tunnel) over `run`.
fn background_stream(run: Duration, port: u16) -> UdpStream {
    UdpStream::start("cwlab-cl01-n1-a", "cwlab-cl02-n2-b", REMOTE_N2_B, port, run)
}

fn assert_no_loss(what: &str, r: &StreamResult) {
    assert!(
        r.lost.is_empty(),
        "{what}: {} of {} datagrams lost (gaps {:?})",
        r.lost.len(),
        r.sent,
        &r.gaps()[..r.gaps().len().min(10)]
    );
}

/// Both Connections are `Connected` now.
fn both_connected() -> bool {
    connection_status("cl01", "cl02") == "Connected"
        && connection_status("cl02", "cl01") == "Connected"
}

/// A deterministic byte generator (xorshift64*), so a failure can be replayed.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next().to_le_bytes()[7]).collect()
    }
}

/// The `i`-th garbage datagram: random lengths, and messages shaped like each WireGuard type
/// (handshake initiation 148 bytes, response 92, cookie reply 64, transport data with a random
/// receiver index) whose MACs and receiver indexes are random.
fn garbage(noise: &mut Noise, i: usize) -> Vec<u8> {
    let shaped = |noise: &mut Noise, kind: u8, len: usize| {
        let mut b = noise.bytes(len);
        b[..4].copy_from_slice(&[kind, 0, 0, 0]);
        b
    };
    match i % 6 {
        0 => shaped(noise, 1, 148),
        1 => shaped(noise, 2, 92),
        2 => shaped(noise, 3, 64),
        3 => {
            let len = 32 + usize::try_from(noise.next() % 1200).expect("small");
            shaped(noise, 4, len)
        }
        4 => {
            let len = 1 + usize::try_from(noise.next() % 1400).expect("small");
            noise.bytes(len)
        }
        _ => Vec::new(),
    }
}

/// A host on the WAN: a spare namespace on the WAN bridge, 198.18.0.250, with a UDP socket.
fn wan_attacker() -> (NetNs, UdpSocket) {
    let attacker = NetNs::new("wan-attacker");
    let out = Command::new("ip")
        .args(["link", "add", "wan0", "netns", attacker.name()])
        .args(["type", "veth", "peer", "name", "atk0", "netns", "cwlab-wan"])
        .output()
        .expect("ip link add");
    assert!(out.status.success(), "veth to the WAN: {out:?}");
    for args in [
        ["-n", "cwlab-wan", "link", "set", "atk0", "master", "br0"].as_slice(),
        &["-n", "cwlab-wan", "link", "set", "atk0", "up"],
    ] {
        let out = Command::new("ip").args(args).output().expect("ip");
        assert!(out.status.success(), "ip {args:?}: {out:?}");
    }
    attacker.ip(&["addr", "add", "198.18.0.250/24", "dev", "wan0"]);
    attacker.ip(&["link", "set", "wan0", "up"]);
    let sock = attacker
        .enter(|| UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).expect("bind"));
    (attacker, sock)
}

/// What a flood sent, and both Connections' status read every 20 datagrams.
struct Flood {
    count: u64,
    bytes: u64,
    took: Duration,
    statuses: Vec<(String, String)>,
}

/// 6,000 garbage datagrams to `to` over 3 s.
fn flood(sock: &UdpSocket, to: SocketAddrV4) -> Flood {
    let mut noise = Noise(0x00c1_0573_a11e_5eed);
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut statuses = Vec::new();
    let start = Instant::now();
    for i in 0..6000usize {
        let datagram = garbage(&mut noise, i);
        sock.send_to(&datagram, to).expect("send garbage");
        count += 1;
        bytes += datagram.len() as u64;
        if i % 20 == 19 {
            statuses.push((
                connection_status("cl01", "cl02"),
                connection_status("cl02", "cl01"),
            ));
            let due = start + Duration::from_millis(u64::try_from(i / 2).expect("small"));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
    Flood {
        count,
        bytes,
        took: start.elapsed(),
        statuses,
    }
}

#[test]
fn lab_abuse_garbage_to_the_wireguard_port_is_ignored() {
    let _lab = lab_up();
    assert_traffic_across("after up");
    let (_attacker, sock) = wan_attacker();
    let nodeport = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 11), 31840);

    let before = settled_metrics();
    let snmp_before = udp_snmp(SERVER_GW);
    let stream = background_stream(Duration::from_secs(6), 7500);
    std::thread::sleep(Duration::from_secs(1));

    let Flood {
        count,
        bytes,
        took: flood,
        statuses,
    } = flood(&sock, nodeport);
    // Nothing answers the attacker (a cookie reply would, for a valid MAC1 under load).
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let answer = sock.recv_from(&mut [0u8; 2048]);
    assert!(answer.is_err(), "the gateway answered garbage: {answer:?}");

    let streamed = stream.finish();
    let after = settled_metrics();
    let snmp_after = udp_snmp(SERVER_GW);
    let delta = |k: &str| snmp_after[k] - snmp_before[k];
    let rx = metric(
        &after,
        "liqo_peer_receive_bytes_total{driver=\"wireguard\",cluster_id=\"cl02\"}",
    ) - metric(
        &before,
        "liqo_peer_receive_bytes_total{driver=\"wireguard\",cluster_id=\"cl02\"}",
    );
    println!(
        "garbage to the WireGuard NodePort: {count} datagrams ({bytes} bytes) in {flood:?}; the \
         gateway pod's UDP InDatagrams +{}, RcvbufErrors +{}, OutDatagrams +{}; WireGuard peer \
         rx +{rx} bytes; stream {} sent, {} lost",
        delta("InDatagrams"),
        delta("RcvbufErrors"),
        delta("OutDatagrams"),
        streamed.sent,
        streamed.lost.len()
    );
    // It reached the WireGuard socket (the NodePort forwarded it)...
    assert!(
        delta("InDatagrams") + delta("RcvbufErrors") >= count,
        "the garbage did not reach the gateway's socket: {snmp_before:?} -> {snmp_after:?}"
    );
    // ... which accepted none of it as the peer's data (only the health check's few hundred
    // bytes), and answered none: it sent the stream's datagrams (one WireGuard datagram
    // each) and a few dozen of the health check.
    assert!(bytes > 1 << 20, "{bytes}");
    assert!(
        rx < 16 * 1024,
        "WireGuard took {rx} bytes from the peer during the flood"
    );
    let beyond_the_stream = delta("OutDatagrams").saturating_sub(u64::from(streamed.sent));
    assert!(
        beyond_the_stream < 100,
        "the gateway sent {beyond_the_stream} datagrams besides the stream's"
    );
    // The datapath saw nothing to drop (not Geneve, not from the tunnel).
    assert_eq!(drops_delta(&before, &after), Vec::<String>::new());
    // The tunnel stayed up, traffic flowed.
    assert!(
        statuses
            .iter()
            .all(|(a, b)| a == "Connected" && b == "Connected"),
        "a Connection left Connected during the flood: {statuses:?}"
    );
    assert_eq!(
        metric(
            &after,
            "liqo_peer_is_connected{driver=\"wireguard\",cluster_id=\"cl02\"}"
        ),
        1
    );
    assert_no_loss("pod stream during the flood", &streamed);
    assert_traffic_across("after the flood");
}

/// An IPv4/UDP packet `src:5555 -> dst:port` carrying `payload`, checksums computed.
fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr, port: u16, payload: &[u8]) -> Vec<u8> {
    fn fold(mut sum: u32) -> u16 {
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !u16::try_from(sum).expect("folded")
    }
    fn sum(bytes: &[u8]) -> u32 {
        bytes
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum()
    }
    let udp_len = u16::try_from(8 + payload.len()).expect("small");
    let mut udp = Vec::with_capacity(usize::from(udp_len));
    udp.extend_from_slice(&5555u16.to_be_bytes());
    udp.extend_from_slice(&port.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&udp_len.to_be_bytes());
    let csum = fold(sum(&pseudo) + sum(&udp));
    udp[6..8].copy_from_slice(&(if csum == 0 { 0xffff } else { csum }).to_be_bytes());

    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&(20 + udp_len).to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let csum = fold(sum(&ip));
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    ip.extend_from_slice(&udp);
    ip
}

/// Sends raw IPv4 packets (`IP_HDRINCL`) from the lab namespace `ns`: routed by destination,
/// with whatever source they carry.
fn send_raw(ns: &str, packets: &[Vec<u8>]) {
    in_netns(ns, || {
        let fd = socket(
            AddressFamily::Inet,
            SockType::Raw,
            SockFlag::empty(),
            SockProtocol::Raw,
        )
        .expect("raw socket");
        for p in packets {
            let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
            let to = SockaddrIn::from(SocketAddrV4::new(dst, 0));
            sendto(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                p,
                &to,
                MsgFlags::empty(),
            )
            .unwrap_or_else(|e| panic!("raw send to {dst} in {ns}: {e}"));
        }
    });
}

/// Listens on UDP `port` in `ns` for `run`; returns (source, payload) of what arrived.
fn collect_udp(
    ns: &str,
    port: u16,
    run: Duration,
) -> std::thread::JoinHandle<Vec<(Ipv4Addr, Vec<u8>)>> {
    let socket = in_netns(ns, || {
        UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
            .unwrap_or_else(|e| panic!("bind UDP {port} in {ns}: {e}"))
    });
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    std::thread::spawn(move || {
        let until = Instant::now() + run;
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while Instant::now() < until {
            if let Ok((n, std::net::SocketAddr::V4(from))) = socket.recv_from(&mut buf) {
                got.push((*from.ip(), buf[..n].to_vec()));
            }
        }
        got
    })
}

/// `cwctl monitor --instance <instance> --count <count>`, started and ready (it has switched
/// the drop monitor on); `finish` returns its lines.
struct Monitor(std::process::Child);

impl Monitor {
    fn start(instance: &str, count: usize) -> Self {
        let mut child = Command::new(cwctl())
            .args([
                "monitor",
                "--instance",
                instance,
                "--type",
                "drop",
                "--count",
            ])
            .arg(count.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cwctl monitor");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        stderr.read_line(&mut line).expect("read cwctl monitor");
        assert!(line.contains("watching drops on"), "cwctl monitor: {line}");
        Self(child)
    }

    fn finish(mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while self.0.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                // Our own child, by its pid.
                let _ = self.0.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = self.0.wait_with_output().expect("cwctl monitor output");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Forged packets per forged source, and control packets.
const EACH: usize = 10;

#[test]
fn lab_abuse_spoofed_sources_inside_the_tunnel_are_dropped_and_counted() {
    let _lab = lab_up();
    assert_traffic_across("after up");

    // Injected in cl02's gateway pod, the peer of cl01: raw packets to cl01's n1-a (10.1.1.10
    // as cl02 sees it) route into liqo-tunnel, through cl02's NAT (destination rewritten to
    // 10.0.1.10) and WireGuard (AllowedIPs 0.0.0.0/0 on both sides), out of the tunnel in
    // cl01's gateway, where anti-spoofing checks the source against what cl02 announced
    // (10.0.0.0/16, 10.70.0.0/16 and its tunnel address 169.254.18.2).
    let forged = [
        Ipv4Addr::new(192, 168, 77, 7), // nobody's
        Ipv4Addr::new(10, 1, 0, 5),     // cl02's own view of cl01, not an address of cl02
        Ipv4Addr::new(172, 16, 0, 9),   // a private range nobody announced
        Ipv4Addr::new(169, 254, 18, 1), // cl01's own tunnel address
        Ipv4Addr::new(8, 8, 8, 8),      // the internet
    ];
    let legit = Ipv4Addr::new(10, 0, 2, 11); // cl02/n2-b's real address: announced
    let mut packets = Vec::new();
    for (k, src) in forged.iter().enumerate() {
        for i in 0..EACH {
            packets.push(udp_packet(
                *src,
                REMOTE_N1_A,
                7600,
                format!("forged {k} {i}").as_bytes(),
            ));
        }
    }
    let control: Vec<Vec<u8>> = (0..EACH)
        .map(|i| udp_packet(legit, REMOTE_N1_A, 7600, format!("control {i}").as_bytes()))
        .collect();
    let total = forged.len() * EACH;

    let before = settled_metrics();
    let stream = UdpStream::start(
        "cwlab-cl02-n1-a",
        "cwlab-cl01-n2-b",
        REMOTE_N2_B,
        7501,
        Duration::from_secs(4),
    );
    let monitor = Monitor::start(SERVER_GW, total);
    let listener = collect_udp("cwlab-cl01-n1-a", 7600, Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(500));
    send_raw(CLIENT_GW, &packets);
    send_raw(CLIENT_GW, &control);
    let drops = monitor.finish(Duration::from_secs(5));
    let got = listener.join().expect("listener");
    let streamed = stream.finish();
    let after = settled_metrics();

    let spoofed = metric(&after, &drop_metric("spoofed_source"))
        - metric(&before, &drop_metric("spoofed_source"));
    println!(
        "spoofed sources through the tunnel: {total} forged sent, {spoofed} dropped as \
         spoofed_source; {} control packets delivered; stream {} sent, {} lost\n{drops}",
        got.len(),
        streamed.sent,
        streamed.lost.len()
    );
    // The control packets crossed, seen from cl02/n2-b's remapped address; nothing forged did.
    let expected: Vec<(Ipv4Addr, Vec<u8>)> = (0..EACH)
        .map(|i| {
            (
                Ipv4Addr::new(10, 1, 2, 11),
                format!("control {i}").into_bytes(),
            )
        })
        .collect();
    assert_eq!(got, expected, "what reached cl01/n1-a");
    assert_eq!(spoofed, total as u64, "spoofed_source drops");
    assert_eq!(
        drops_delta(&before, &after),
        vec![format!("{} +{total}", drop_metric("spoofed_source"))],
        "no other drop"
    );
    // The monitor names every drop: reason, program, the forged source.
    let lines: Vec<&str> = drops.lines().collect();
    assert_eq!(lines.len(), total, "{drops}");
    for src in forged {
        let with_src = lines
            .iter()
            .filter(|l| {
                l.contains("drop (spoofed_source) cw_nat_from_tunnel")
                    && l.contains(&format!(" {src}:5555 -> 10.0.1.10:7600 udp"))
            })
            .count();
        assert_eq!(with_src, EACH, "monitor lines from {src}:\n{drops}");
    }
    assert!(both_connected());
    assert_no_loss("pod stream during the injection", &streamed);
    assert_traffic_across("after the injection");
}

/// A Geneve packet (VNI `vni`, `flags`) whose inner frame is IPv4/UDP `inner_src -> inner_dst:
/// port` carrying `payload`.
fn geneve(
    vni: u32,
    flags: u8,
    inner_src: Ipv4Addr,
    inner_dst: Ipv4Addr,
    port: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut g = vec![0, flags, 0x65, 0x58];
    g.extend_from_slice(&(vni << 8).to_be_bytes());
    // Inner Ethernet: locally administered addresses, IPv4.
    g.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00]);
    g.extend_from_slice(&udp_packet(inner_src, inner_dst, port, payload));
    g
}

/// The VNI of the server gateway's Geneve peers (the nodes), from its pinned map.
fn gateway_vni() -> u32 {
    let path = format!("/sys/fs/bpf/clusterwire/{SERVER_GW}/CW_GENEVE_PEERS");
    let out = Command::new("bpftool")
        .args(["-j", "map", "dump", "pinned", &path])
        .output()
        .expect("run bpftool");
    assert!(
        out.status.success(),
        "bpftool map dump pinned {path}: {out:?}"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let vnis: std::collections::BTreeSet<u32> = text
        .split("\"vni\":")
        .skip(1)
        .filter_map(|rest| {
            rest.trim_start()
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .filter(|v| *v != u32::MAX)
        .collect();
    assert_eq!(vnis.len(), 1, "one VNI for the peering: {text}");
    vnis.into_iter().next().expect("one")
}

/// Sends each payload as one UDP datagram from `ns`, bound to `src`, to `dst:port`.
fn send_udp(ns: &str, src: Ipv4Addr, dst: SocketAddrV4, payloads: &[Vec<u8>]) {
    in_netns(ns, || {
        let socket = UdpSocket::bind(SocketAddrV4::new(src, 0))
            .unwrap_or_else(|e| panic!("bind {src} in {ns}: {e}"));
        for p in payloads {
            socket
                .send_to(p, dst)
                .unwrap_or_else(|e| panic!("send to {dst} from {ns}: {e}"));
        }
    });
}

/// 10 Geneve packets (`vni`, `flags`) whose inner packets are datagrams `"<tag> <i>"` from
/// 10.0.1.10 to the gateway pod itself, port 7700, where a listener sees what was
/// decapsulated.
fn geneve_packets(vni: u32, flags: u8, tag: &str) -> Vec<Vec<u8>> {
    (0..10)
        .map(|i| {
            geneve(
                vni,
                flags,
                Ipv4Addr::new(10, 0, 1, 10),
                SERVER_GW_POD,
                7700,
                format!("{tag} {i}").as_bytes(),
            )
        })
        .collect()
}

#[test]
fn lab_abuse_geneve_from_unknown_nodes_or_vnis_is_dropped_and_counted() {
    let _lab = lab_up();
    assert_traffic_across("after up");
    let vni = gateway_vni();
    let to_gateway = SocketAddrV4::new(SERVER_GW_POD, GENEVE_PORT);
    let (pod_n1, pod_n2) = (Ipv4Addr::new(10, 0, 1, 10), Ipv4Addr::new(10, 0, 2, 10));
    let (node1, node2) = (Ipv4Addr::new(172, 31, 1, 11), Ipv4Addr::new(172, 31, 1, 12));
    // (sender namespace, its address, VNI, Geneve flags, tag), 10 packets each, in order.
    let senders = [
        // Unknown peers: pods of the cluster, on the gateway's node and on the other one,
        // with the right VNI.
        ("cwlab-cl01-n1-a", pod_n1, vni, 0, "pod n1-a"),
        ("cwlab-cl01-n2-a", pod_n2, vni, 0, "pod n2-a"),
        // Unknown VNIs from the known nodes.
        ("cwlab-cl01-n1", node1, vni ^ 1, 0, "vni n1"),
        ("cwlab-cl01-n2", node2, 0x00ab_cdef, 0, "vni n2"),
        // Not valid Geneve from a known node: OAM (control), a critical option.
        ("cwlab-cl01-n2", node2, vni, 0x80, "oam"),
        ("cwlab-cl01-n2", node2, vni, 0x40, "critical"),
        // The control, last: a known node, the right VNI.
        ("cwlab-cl01-n2", node2, vni, 0, "control"),
    ];

    let before = settled_metrics();
    let stream = UdpStream::start(
        "cwlab-cl02-n1-a",
        "cwlab-cl01-n2-b",
        REMOTE_N2_B,
        7502,
        Duration::from_secs(4),
    );
    let listener = collect_udp(SERVER_GW, 7700, Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(500));
    // A header cut short (4 of its 8 bytes), from a known node.
    send_udp(
        "cwlab-cl01-n2",
        node2,
        to_gateway,
        &vec![vec![0, 0, 0x65, 0x58]; 10],
    );
    for (ns, src, vni, flags, tag) in senders {
        send_udp(ns, src, to_gateway, &geneve_packets(vni, flags, tag));
    }
    let got = listener.join().expect("listener");
    let streamed = stream.finish();
    let after = settled_metrics();

    let delta =
        |reason: &str| metric(&after, &drop_metric(reason)) - metric(&before, &drop_metric(reason));
    println!(
        "Geneve abuse to {to_gateway} (VNI {vni}): geneve_unknown_peer +{}, geneve_unknown_vni \
         +{}, geneve_malformed +{}; {} control packets decapsulated; stream {} sent, {} lost",
        delta("geneve_unknown_peer"),
        delta("geneve_unknown_vni"),
        delta("geneve_malformed"),
        got.len(),
        streamed.sent,
        streamed.lost.len()
    );
    let control: Vec<(Ipv4Addr, Vec<u8>)> = (0..10)
        .map(|i| (pod_n1, format!("control {i}").into_bytes()))
        .collect();
    assert_eq!(got, control, "only the control packets were decapsulated");
    let mut changed = drops_delta(&before, &after);
    changed.sort();
    let mut expected = vec![
        format!("{} +30", drop_metric("geneve_malformed")),
        format!("{} +20", drop_metric("geneve_unknown_peer")),
        format!("{} +20", drop_metric("geneve_unknown_vni")),
    ];
    expected.sort();
    assert_eq!(changed, expected, "drops by reason");
    assert!(both_connected());
    assert_no_loss("pod stream during the injection", &streamed);
    assert_traffic_across("after the injection");
}
