//! The datapath outlives its process: a gateway-like namespace forwards a client's traffic into
//! a "tunnel" veth through the NAT programs of an instance owned by `cw-test-gateway`, which is
//! killed with SIGKILL and restarted while a TCP and a UDP stream run.
//!
//! ```text
//!  client 10.1.0.2 --c0/g0-- gateway (NAT on t0) --t0/s0-- server 10.0.0.1 (lo)
//!  dials 10.71.0.1          DNAT 10.71.0.x -> 10.0.0.x on t0 egress
//!                           SNAT 10.0.0.x -> 10.71.0.x on t0 ingress
//! ```
//!
//! A restart with the same configuration keeps the programs on the hooks; one with another
//! configuration swaps new ones in (see `keep`). The restart tests do both.
mod keep;
use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use aya::programs::{LinkOrder, SchedClassifier, TcAttachType, tc};
use clusterwire_common::probe::ProbeCounter;
use clusterwire_dataplane::{Instance, features, probe::Probe};
use clusterwire_tests::{
    netns::{NetNs, veth_pair},
    traffic::pattern,
};

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const SERVER_REMAPPED: Ipv4Addr = Ipv4Addr::new(10, 71, 0, 1);

/// The pin root of one test, removed on drop.
struct PinRoot(PathBuf);

impl PinRoot {
    fn new(tag: &str) -> Self {
        Self(PathBuf::from(format!(
            "/sys/fs/bpf/clusterwire-test-{}-{tag}",
            std::process::id()
        )))
    }
}

impl Drop for PinRoot {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.0) {
            for e in entries.filter_map(Result::ok) {
                let name = e.file_name().to_string_lossy().into_owned();
                let _ = Instance::destroy_by_name(&self.0, &name);
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Lab {
    client: NetNs,
    gateway: NetNs,
    server: NetNs,
}

fn lab() -> Lab {
    let client = NetNs::new("cli");
    let gateway = NetNs::new("gw");
    let server = NetNs::new("srv");
    veth_pair(&client, "c0", &gateway, "g0");
    let (t0, s0) = veth_pair(&gateway, "t0", &server, "s0");
    client.ip(&["addr", "add", "10.1.0.2/24", "dev", "c0"]);
    client.ip(&["route", "add", "default", "via", "10.1.0.1"]);
    gateway.ip(&["addr", "add", "10.1.0.1/24", "dev", "g0"]);
    gateway.ip(&["addr", "add", "169.254.0.1/30", "dev", "t0"]);
    gateway.sysctl("net.ipv4.ip_forward", "1");
    server.ip(&["addr", "add", &format!("{SERVER}/32"), "dev", "lo"]);
    server.ip(&["addr", "add", "169.254.0.2/30", "dev", "s0"]);
    server.ip(&["route", "add", "10.1.0.0/24", "via", "169.254.0.1"]);
    // Static neighbours on the "tunnel": nothing but the test's IPv4 crosses it.
    for (ns, addr, mac, dev) in [
        (&gateway, "169.254.0.2", &s0.mac, "t0"),
        (&server, "169.254.0.1", &t0.mac, "s0"),
    ] {
        ns.ip(&[
            "neigh",
            "replace",
            addr,
            "lladdr",
            mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ]);
    }
    gateway.ip(&[
        "route",
        "add",
        "10.71.0.0/24",
        "via",
        "169.254.0.2",
        "dev",
        "t0",
    ]);
    Lab {
        client,
        gateway,
        server,
    }
}

/// A running `cw-test-gateway`.
struct Holder(Child);

impl Holder {
    /// Starts it and waits for its `ready` line, which it returns.
    fn start(lab: &Lab, pins: &PinRoot, mode: &str) -> (Self, String) {
        Self::start_with(lab, pins, mode, &[])
    }

    fn start_with(lab: &Lab, pins: &PinRoot, mode: &str, extra: &[&str]) -> (Self, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cw-test-gateway"))
            .args([
                format!("netns={}", lab.gateway.name()),
                "instance=gw".to_owned(),
                format!("pin_root={}", pins.0.display()),
                "device=t0".to_owned(),
                "peer=7".to_owned(),
                "mtu=1340".to_owned(),
                format!("mode={mode}"),
                "dst=10.71.0.0/24,10.0.0.0/24".to_owned(),
                "src=10.0.0.0/24,10.71.0.0/24".to_owned(),
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cw-test-gateway");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the ready line");
        if !line.starts_with("ready") {
            let mut err = String::new();
            let _ = child.wait();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("cw-test-gateway did not get ready: {line}{err}");
        }
        (Self(child), line)
    }

    fn kill(mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("reap");
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Programs on one TCX hook of `device` in `ns`.
fn tcx_programs(ns: &NetNs, device: &str, direction: TcAttachType) -> usize {
    ns.enter(|| {
        SchedClassifier::query_tcx(device, direction).map_or(0, |(_, programs)| programs.len())
    })
}

/// `cls_bpf` filters on one clsact hook of `device` in `ns`.
fn netlink_filters(ns: &NetNs, device: &str, direction: &str) -> usize {
    let out = Command::new("tc")
        .args(["-n", ns.name(), "filter", "show", "dev", device, direction])
        .output()
        .expect("run tc");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(" bpf ") && l.contains("handle"))
        .count()
}

/// Runs of consecutive numbers, as (first, count), at most 10.
fn gaps(missing: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &m in missing {
        match out.last_mut() {
            Some((first, count)) if *first + *count == m => *count += 1,
            _ => out.push((m, 1)),
        }
    }
    out.truncate(10);
    out
}

/// `RcvbufErrors` of the UDP MIB in `ns` (datagrams a full socket buffer dropped).
fn udp_receive_errors(ns: &NetNs) -> String {
    let snmp = ns.exec("cat", &["/proc/net/snmp"]);
    let text = String::from_utf8_lossy(&snmp.stdout);
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    match (udp.next(), udp.next()) {
        (Some(names), Some(values)) => names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(n, _)| *n == "RcvbufErrors")
            .map_or_else(|| "?".to_owned(), |(_, v)| v.to_owned()),
        _ => "?".to_owned(),
    }
}

type Joins<A, B> = (std::thread::JoinHandle<A>, std::thread::JoinHandle<B>);

/// Numbered UDP datagrams at 1,000/s from the client to the server's remapped address until
/// `stop`; returns (sender: how many were sent, receiver: the numbers that arrived).
fn udp_stream(lab: &Lab, stop: &Arc<AtomicBool>) -> Joins<u32, Vec<u32>> {
    let udp_rx = lab
        .server
        .enter(|| UdpSocket::bind(SocketAddrV4::new(SERVER, 9000)).expect("bind udp"));
    // A 16 MiB receive buffer: a receiver starved of CPU (the VM tier runs under emulation
    // while a restarted owner goes through the verifier) must not drop what the datapath
    // delivered; `udp_receive_errors` tells the two apart if it still happens.
    nix::sys::socket::setsockopt(&udp_rx, nix::sys::socket::sockopt::RcvBufForce, &(16 << 20))
        .expect("SO_RCVBUFFORCE");
    udp_rx
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let receiver = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 64];
        while let Ok((n, _)) = udp_rx.recv_from(&mut buf) {
            if n >= 4 {
                let seq = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                if seq == u32::MAX {
                    break;
                }
                seen.push(seq);
            }
        }
        seen
    });
    let udp_stop = Arc::clone(stop);
    let sender = lab.client.spawn(move || {
        let sock = UdpSocket::bind("10.1.0.2:0").expect("bind");
        let to = SocketAddrV4::new(SERVER_REMAPPED, 9000);
        let mut seq = 0u32;
        let start = Instant::now();
        while !udp_stop.load(Ordering::Relaxed) {
            sock.send_to(&seq.to_be_bytes(), to).expect("send");
            seq += 1;
            let next = start + Duration::from_millis(u64::from(seq));
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        std::thread::sleep(Duration::from_millis(100));
        for _ in 0..3 {
            sock.send_to(&u32::MAX.to_be_bytes(), to)
                .expect("send stop");
        }
        seq
    });
    (sender, receiver)
}

/// A paced TCP stream of the pattern from the client to the server's remapped address until
/// `stop`; returns (client: bytes sent, server: bytes received).
fn tcp_stream(lab: &Lab, stop: &Arc<AtomicBool>) -> Joins<usize, Vec<u8>> {
    let listener = lab
        .server
        .enter(|| TcpListener::bind(SocketAddrV4::new(SERVER, 9001)).expect("bind tcp"));
    let tcp_server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut got = Vec::new();
        conn.read_to_end(&mut got).expect("read the stream");
        got
    });
    let tcp_stop = Arc::clone(stop);
    let tcp_client = lab.client.spawn(move || {
        let data = pattern(128 << 20);
        let mut conn = TcpStream::connect_timeout(
            &SocketAddrV4::new(SERVER_REMAPPED, 9001).into(),
            Duration::from_secs(5),
        )
        .expect("connect");
        let mut sent = 0;
        while !tcp_stop.load(Ordering::Relaxed) && sent + 8_192 <= data.len() {
            conn.write_all(&data[sent..sent + 8_192]).expect("send");
            sent += 8_192;
            std::thread::sleep(Duration::from_millis(2));
        }
        conn.shutdown(std::net::Shutdown::Write).expect("close");
        sent
    });
    (tcp_client, tcp_server)
}

#[test]
fn tcp_and_udp_streams_survive_twenty_sigkill_restarts_of_the_owner() {
    let pins = PinRoot::new("restart");
    let lab = lab();
    // TCX where the kernel has it (6.6+), netlink filters otherwise (the VM tier's 6.1).
    let (mut holder, ready) = Holder::start(&lab, &pins, "auto");
    assert!(ready.contains("adopted=false"), "{ready}");

    let stop = Arc::new(AtomicBool::new(false));
    let udp = udp_stream(&lab, &stop);
    let tcp = tcp_stream(&lab, &stop);

    std::thread::sleep(Duration::from_millis(300));
    let mut restart_times = Vec::new();
    let mut mtu = 1340;
    for round in 0..20 {
        holder.kill();
        // Two restarts per tunnel MTU: the first with a new one swaps new programs in, the
        // second keeps them.
        let previous = mtu;
        mtu = if round % 4 < 2 { 1340 } else { 1360 };
        let expected = if mtu == previous {
            "programs_kept=true outcomes=[Kept, Kept]"
        } else {
            "programs_kept=false outcomes=[Replaced, Replaced]"
        };
        let t = Instant::now();
        let (next, ready) = Holder::start_with(&lab, &pins, "auto", &[&format!("mtu={mtu}")]);
        restart_times.push(t.elapsed());
        assert!(
            ready.contains("adopted=true") && ready.contains(expected),
            "round {round} (MTU {previous} -> {mtu}): {ready}"
        );
        holder = next;
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);

    let (sender, receiver) = udp;
    let sent = sender.join().expect("udp sender");
    let seen = receiver.join().expect("udp receiver");
    let missing: Vec<u32> = (0..sent)
        .filter(|s| seen.binary_search(s).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {sent} datagrams missing in gaps {:?}; the server's socket dropped {} (UDP RcvbufErrors)",
        missing.len(),
        gaps(&missing),
        udp_receive_errors(&lab.server)
    );
    let (tcp_client, tcp_server) = tcp;
    let tcp_sent = tcp_client.join().expect("tcp client");
    let received = tcp_server.join().expect("tcp server");
    assert_eq!(received.len(), tcp_sent, "TCP byte count");
    assert!(received == pattern(tcp_sent), "TCP bytes differ");
    let slowest = restart_times.iter().max().expect("20 rounds");
    println!(
        "20 restarts: {sent} datagrams, {tcp_sent} TCP bytes, none lost; restart to ready: max {slowest:?}"
    );

    let hooks = |lab: &Lab| -> [usize; 2] {
        if features::tcx() {
            [TcAttachType::Ingress, TcAttachType::Egress]
                .map(|direction| tcx_programs(&lab.gateway, "t0", direction))
        } else {
            ["ingress", "egress"].map(|direction| netlink_filters(&lab.gateway, "t0", direction))
        }
    };
    assert_eq!(hooks(&lab), [1, 1], "one link or filter per hook on t0");
    holder.kill();
    lab.gateway
        .enter(|| Instance::destroy_by_name(&pins.0, "gw"))
        .expect("destroy");
    assert_eq!(hooks(&lab), [0, 0], "detached");
    assert!(!pins.0.join("gw").exists(), "pins removed");
}

/// Pings `to` from `ns` `count` times; panics unless every echo is answered.
fn ping(ns: &NetNs, to: Ipv4Addr, count: u32) {
    let out = ns.exec(
        "ping",
        &[
            "-c",
            &count.to_string(),
            "-i",
            "0.05",
            "-W",
            "2",
            &to.to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "ping {to} from {}: {}",
        ns.name(),
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn netlink_filters_are_replaced_in_place_and_the_qdisc_removed_with_the_instance() {
    let pins = PinRoot::new("netlink");
    let lab = lab();
    let (mut holder, _) = Holder::start(&lab, &pins, "netlink");
    for round in 0..5 {
        holder.kill();
        // Another tunnel MTU each time: new programs, swapped into the same filters.
        let mtu = if round % 2 == 0 {
            "mtu=1360"
        } else {
            "mtu=1340"
        };
        let (next, ready) = Holder::start_with(&lab, &pins, "netlink", &[mtu]);
        assert!(ready.contains("[Replaced, Replaced]"), "{ready}");
        holder = next;
    }
    ping(&lab.client, SERVER_REMAPPED, 3);
    for direction in ["ingress", "egress"] {
        assert_eq!(
            netlink_filters(&lab.gateway, "t0", direction),
            1,
            "one filter on t0 {direction}"
        );
    }
    holder.kill();
    lab.gateway
        .enter(|| Instance::destroy_by_name(&pins.0, "gw"))
        .expect("destroy");
    let qdiscs = lab.gateway.exec("tc", &["qdisc", "show", "dev", "t0"]);
    assert!(
        !String::from_utf8_lossy(&qdiscs.stdout).contains("clsact"),
        "the clsact qdisc the instance added is gone"
    );
}

#[test]
fn a_cni_program_after_ours_still_sees_the_traffic_we_do_not_own() {
    let modes: &[&str] = if features::tcx() {
        &["tcx", "netlink"]
    } else {
        &["netlink"]
    };
    for &mode in modes {
        let pins = PinRoot::new(&format!("cni-{mode}"));
        let lab = lab();
        // The tunnel peer's own address is announced (identity entry), so its replies pass the
        // anti-spoofing check.
        let (_holder, _) =
            Holder::start_with(&lab, &pins, mode, &["src=169.254.0.2/32,169.254.0.2/32"]);
        let mut cni = Probe::load().expect("load the stand-in CNI program");
        lab.gateway.enter(|| {
            let program = cni.program().expect("probe");
            let options = if mode == "tcx" {
                tc::TcAttachOptions::TcxOrder(LinkOrder::last())
            } else {
                tc::TcAttachOptions::Netlink(tc::NlOptions {
                    priority: 100,
                    ..tc::NlOptions::default()
                })
            };
            program
                .attach_with_options("t0", TcAttachType::Egress, options)
                .expect("attach the CNI stand-in after ours");
        });
        // Remapped traffic is ours (rewritten, passed); the gateway's own pings to the tunnel
        // peer are not, and must reach the next program.
        ping(&lab.client, SERVER_REMAPPED, 3);
        let before = cni.counter(ProbeCounter::Packets).expect("counter");
        ping(&lab.gateway, Ipv4Addr::new(169, 254, 0, 2), 5);
        let after = cni.counter(ProbeCounter::Packets).expect("counter");
        assert_eq!(
            after - before,
            5,
            "{mode}: the CNI program saw the 5 echo requests"
        );
    }
}

#[test]
fn devices_instances_and_locks_are_checked_with_clear_errors() {
    use clusterwire_dataplane::{AttachMode, DeviceKind, Hook, InstanceError, InstanceSpec, Role};
    let pins = PinRoot::new("errors");
    let ns = NetNs::new("err");
    ns.ip(&["tuntap", "add", "dev", "wg0", "mode", "tun"]);
    ns.ip(&["link", "set", "wg0", "up"]);
    let peer = NetNs::new("peer");
    veth_pair(&ns, "eth0", &peer, "eth0");
    ns.enter(|| {
        let spec = InstanceSpec {
            pin_root: pins.0.clone(),
            attach_mode: AttachMode::Auto,
            ..InstanceSpec::gateway("gw", 3, "wg0")
        };
        let mut gw = Instance::open(spec.clone()).expect("open a gateway on a TUN device");
        assert!(gw.datapath().config().l3_device(), "TUN means L3 parsing");
        gw.attach(Hook::TunnelNat, "wg0")
            .expect("NAT on the L3 tunnel");
        match gw.attach(Hook::GeneveEncap, "wg0") {
            Err(InstanceError::DeviceKind {
                found, expected, ..
            }) => assert_eq!((found, expected), (DeviceKind::L3, DeviceKind::Ethernet)),
            other => panic!("Geneve on a TUN device: {other:?}"),
        }
        gw.attach(Hook::GeneveDecap, "eth0")
            .expect("decap on Ethernet");
        match gw.attach(Hook::TunnelNat, "nosuchdev") {
            Err(InstanceError::NoDevice(d)) => assert_eq!(d, "nosuchdev"),
            other => panic!("missing device: {other:?}"),
        }
        // One writer per instance.
        match Instance::open(spec.clone()) {
            Err(InstanceError::Locked { holder, .. }) => {
                assert_eq!(holder, std::process::id(), "the holder is named");
            }
            other => panic!("second writer: {other:?}"),
        }
        drop(gw);
        // Same name, another role or peer: refused, naming both.
        let node = InstanceSpec {
            pin_root: pins.0.clone(),
            ..InstanceSpec::node("gw")
        };
        match Instance::open(node) {
            Err(e @ InstanceError::IdentityMismatch { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains("gateway for peer 3") && text.contains("node"),
                    "{text}"
                );
            }
            other => panic!("role mismatch: {other:?}"),
        }
        let adopted = Instance::open(spec).expect("adopt");
        assert!(adopted.adopted());
        assert_eq!(
            adopted.attachments().len(),
            3,
            "{:?}",
            adopted.attachments()
        );
        adopted.destroy().expect("destroy");
        // A node instance is sized for its role: no NAT map pinned.
        let node = Instance::open(InstanceSpec {
            pin_root: pins.0.clone(),
            ..InstanceSpec::node("node")
        })
        .expect("node");
        assert_eq!(node.spec().role, Role::Node);
        assert!(!pins.0.join("node/CW_REMAP_DST").exists());
        assert!(pins.0.join("node/CW_GENEVE_ROUTES").exists());
    });
}
