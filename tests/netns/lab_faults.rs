//! Faults on the lab (issues 8 and 11): the real daemons of `cwctl lab up` (2 clusters), a
//! fault injected by the test, traffic checked across the clusters.
//!
//! - a bad manifest (an invalid field, broken YAML) is skipped and the last good state is kept;
//! - a Configuration removed stops the peering (remaps and routes withdrawn), re-added resumes it;
//! - the gateway pod's address changes (the pod is recreated): the agents follow;
//! - `kill -9` of a node agent under a UDP stream loses no datagram (the datapath is pinned);
//! - `kill -9` of a gateway during a TCP transfer and a UDP stream: the transfer completes with
//!   identical bytes, the Connection returns to Connected, the outage is measured.
//!
//! Addresses (see docs/lab.md): both clusters use 10.0.0.0/16 and see each other as
//! 10.1.0.0/16 (host bits kept): `cl01/n1-a` (10.0.1.10) reaches `cl02/n2-b` at 10.1.2.11.
//! cl01 runs the server gateway `cwlab-cl01-gw-cl02` (pod 10.0.1.102 on cl01-n1), cl02 the
//! client `cwlab-cl02-gw-cl01` (pod 10.0.1.101 on cl02-n1).

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket},
    path::{Path, PathBuf},
    process::Command,
    sync::mpsc,
    time::{Duration, Instant},
};

use nix::sched::{CloneFlags, setns};

use crate::lab_kit::{Lab, STATE_DIR, in_netns, lab_ok, longest_run, routes};

const CL01_N1_A: &str = "cwlab-cl01-n1-a";
const CL02_N1_A: &str = "cwlab-cl02-n1-a";
const CL01_N2_B: &str = "cwlab-cl01-n2-b";
const CL02_N2_B: &str = "cwlab-cl02-n2-b";
/// `n2-b` of the other cluster, as either cluster sees it.
const REMOTE_N2_B: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 11);
const CLIENT_GW: &str = "cwlab-cl02-gw-cl01";
const SERVER_GW: &str = "cwlab-cl01-gw-cl02";

/// `cwctl lab up` with 2 clusters; the guard takes it down when the test ends.
fn lab_up() -> Lab {
    let guard = Lab::claim();
    let up = lab_ok(&["up"]);
    assert!(up.contains("lab up in"), "{up}");
    guard
}

fn manifests(cluster: &str) -> PathBuf {
    Path::new(STATE_DIR).join(format!("clusters/{cluster}/manifests"))
}

fn tenant_file(cluster: &str, peer: &str) -> PathBuf {
    manifests(cluster).join(format!("tenant-{peer}.yaml"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Replaces a manifest atomically (a hidden temporary file, which the daemons ignore, renamed).
fn write_manifest(path: &Path, text: &str) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, text).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}

/// The YAML documents of a manifest file.
fn documents(text: &str) -> Vec<String> {
    text.split("\n---\n").map(str::to_owned).collect()
}

fn log(instance: &str) -> String {
    read(&Path::new(STATE_DIR).join(format!("logs/{instance}.log")))
}

/// `what` holds within `timeout` (checked every 100 ms); returns how long it took.
fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if check() {
            return start.elapsed();
        }
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One ping from `ns` to `dst`, waiting up to 1 s for the answer.
fn ping(ns: &str, dst: Ipv4Addr) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "1", "-q"])
        .arg(dst.to_string())
        .output()
        .expect("run ping")
        .status
        .success()
}

/// Both directions across the peering answer a ping.
fn pings_across() -> bool {
    ping(CL01_N1_A, REMOTE_N2_B) && ping(CL02_N1_A, REMOTE_N2_B)
}

/// A TCP echo of one message from `client_ns` to `dst:port`, served in `server_ns`.
fn tcp_echo(server_ns: &str, port: u16, client_ns: &str, dst: Ipv4Addr) -> Result<(), String> {
    let path = format!("/run/netns/{server_ns}");
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open netns");
        setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
        let listener =
            TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).expect("bind TCP");
        listener.set_nonblocking(true).expect("nonblocking");
        ready_tx.send(()).expect("ready");
        let deadline = Instant::now() + Duration::from_secs(4);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    conn.set_nonblocking(false).expect("blocking");
                    conn.set_read_timeout(Some(Duration::from_secs(3))).ok();
                    let mut buf = [0u8; 64];
                    if let Ok(n) = conn.read(&mut buf) {
                        let _ = conn.write_all(&buf[..n]);
                    }
                    return;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    ready_rx.recv().expect("TCP server started");
    let result = in_netns(client_ns, || -> Result<(), String> {
        let to = SocketAddr::from(SocketAddrV4::new(dst, port));
        let mut conn = TcpStream::connect_timeout(&to, Duration::from_secs(2))
            .map_err(|e| format!("connect {to}: {e}"))?;
        conn.set_read_timeout(Some(Duration::from_secs(2))).ok();
        conn.write_all(b"across the peering")
            .map_err(|e| format!("send: {e}"))?;
        let mut buf = [0u8; 64];
        let n = conn.read(&mut buf).map_err(|e| format!("receive: {e}"))?;
        (&buf[..n] == b"across the peering")
            .then_some(())
            .ok_or_else(|| format!("echo {:?}", &buf[..n]))
    });
    server.join().expect("TCP server");
    result
}

/// Ping and TCP across the peering, both ways.
fn assert_traffic(when: &str) {
    assert!(pings_across(), "{when}: ping across the peering");
    tcp_echo(CL02_N2_B, 7200, CL01_N1_A, REMOTE_N2_B)
        .unwrap_or_else(|e| panic!("{when}: TCP cl01 -> cl02: {e}"));
    tcp_echo(CL01_N2_B, 7201, CL02_N1_A, REMOTE_N2_B)
        .unwrap_or_else(|e| panic!("{when}: TCP cl02 -> cl01: {e}"));
}

/// The entries of a pinned map of a daemon's datapath, as `bpftool` prints them (JSON).
fn map_entries(instance: &str, map: &str) -> usize {
    let path = format!("/sys/fs/bpf/clusterwire/{instance}/{map}");
    let out = Command::new("bpftool")
        .args(["-j", "map", "dump", "pinned", &path])
        .output()
        .expect("run bpftool");
    assert!(
        out.status.success(),
        "bpftool map dump pinned {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .matches("\"formatted\"")
        .count()
}

/// The pid of a lab daemon (its pid file).
fn daemon_pid(instance: &str) -> i32 {
    read(&Path::new(STATE_DIR).join(format!("pids/{instance}.pid")))
        .trim()
        .parse()
        .expect("pid")
}

/// `kill -9` of a lab daemon; returns its command line (read from `/proc` before the kill)
/// once the process is gone.
fn kill_daemon(instance: &str) -> Vec<String> {
    let pid = daemon_pid(instance);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("daemon cmdline");
    let argv: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    assert!(
        argv.windows(2)
            .any(|w| w[0] == "--instance" && w[1] == instance),
        "pid {pid} is not {instance}: {argv:?}"
    );
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -9 {pid}");
    wait_for(
        &format!("{instance} (pid {pid}) gone"),
        Duration::from_secs(5),
        || !Path::new(&format!("/proc/{pid}")).exists(),
    );
    argv
}

/// Starts a daemon again with `argv`, detached (a shell in between, so it is not our child),
/// appending to its log; records its pid where `cwctl lab down` finds it.
fn restart_daemon(instance: &str, argv: &[String]) {
    let log = Path::new(STATE_DIR).join(format!("logs/{instance}.log"));
    let out = Command::new("sh")
        .args(["-c", "\"$@\" >>\"$CW_LOG\" 2>&1 </dev/null & echo $!", "sh"])
        .args(argv)
        .env("CW_LOG", &log)
        .output()
        .expect("start the daemon");
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(pid.parse::<i32>().is_ok(), "no pid: {out:?}");
    std::fs::write(
        Path::new(STATE_DIR).join(format!("pids/{instance}.pid")),
        format!("{pid}\n"),
    )
    .expect("pid file");
}

/// The `status.value` of a gateway's Connection status file.
fn connection_value(cluster: &str, peer: &str) -> String {
    let path = manifests(cluster).join(format!(
        "status/connection-liqo-tenant-{peer}-gw-{peer}.yaml"
    ));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("  value: "))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn lab_configuration_removed_stops_the_peering_and_readded_resumes_it() {
    let _lab = lab_up();
    assert_traffic("after up");
    assert_eq!(
        map_entries(CLIENT_GW, "CW_REMAP_DST"),
        2,
        "pod and external"
    );

    // cl02 deletes its Configuration of the peering with cl01 (the other objects of the file
    // stay).
    let file = tenant_file("cl02", "cl01");
    let original = read(&file);
    let without: Vec<String> = documents(&original)
        .into_iter()
        .filter(|d| !d.contains("kind: Configuration\n"))
        .collect();
    assert_eq!(without.len(), 2, "{original}");
    write_manifest(&file, &without.join("\n---\n"));
    let stopped = wait_for(
        "the client gateway withdraws its remaps",
        Duration::from_secs(10),
        || map_entries(CLIENT_GW, "CW_REMAP_DST") == 0,
    );
    assert_eq!(
        map_entries(CLIENT_GW, "CW_REMAP_SRC"),
        1,
        "only the peer's tunnel address"
    );
    wait_for(
        "the client gateway withdraws its routes into the tunnel",
        Duration::from_secs(2),
        || {
            let table = routes(CLIENT_GW);
            ["10.1.0.0/16", "10.2.0.0/16"].iter().all(|cidr| {
                table.contains(&format!("unreachable {cidr}"))
                    && !table.contains(&format!("{cidr} dev liqo-tunnel"))
            })
        },
    );
    // Refused at the gateway (ICMP net unreachable), not looping between the node (which
    // still routes the peer's CIDRs to the gateway) and the gateway's default route.
    let out = Command::new("ip")
        .args(["netns", "exec", CL02_N1_A, "ping", "-c", "1", "-W", "1"])
        .arg(REMOTE_N2_B.to_string())
        .output()
        .expect("ping");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && said.contains("Unreachable") && !said.contains("Time to live"),
        "{said}"
    );
    assert!(!ping(CL02_N1_A, REMOTE_N2_B), "cl02 -> cl01 stopped");
    assert!(!ping(CL01_N1_A, REMOTE_N2_B), "cl01 -> cl02 stopped");
    assert!(
        log(CLIENT_GW).contains("withdrawing its remaps and routes"),
        "{}",
        log(CLIENT_GW)
    );
    println!("Configuration removed: remaps withdrawn in {stopped:?}");

    // Re-added: traffic resumes.
    write_manifest(&file, &original);
    let resumed = wait_for(
        "traffic resumes after the Configuration is back",
        Duration::from_secs(10),
        pings_across,
    );
    println!("Configuration re-added: traffic resumed in {resumed:?}");
    assert_eq!(map_entries(CLIENT_GW, "CW_REMAP_DST"), 2);
    assert!(!routes(CLIENT_GW).contains("unreachable"));
    assert_traffic("after the Configuration came back");
}

#[test]
fn lab_bad_manifest_is_skipped_and_the_last_state_kept() {
    let _lab = lab_up();
    assert_traffic("after up");
    let file = tenant_file("cl02", "cl01");
    let original = read(&file);

    // 1. An invalid field in the Configuration (a CIDR that is not one) and in the
    // GatewayClient (an MTU that is not a number).
    let bad = original
        .replacen(
            "      pod:\n      - 10.1.0.0/16",
            "      pod:\n      - 10.1.0.0/33",
            1,
        )
        .replacen(
            "  mtu: 1340\nstatus:\n  internalEndpoint",
            "  mtu: fast\nstatus:\n  internalEndpoint",
            1,
        );
    assert_ne!(bad, original);
    write_manifest(&file, &bad);
    // The gateway reads both objects and reports them; the agents read neither (only
    // InternalNodes and InternalFabrics) and skip them unchecked.
    wait_for(
        "the gateway reports the bad fields",
        Duration::from_secs(10),
        || {
            let log = log(CLIENT_GW);
            log.contains(
                "tenant-cl01.yaml: Configuration liqo-tenant-cl01/cl01: status.remote.cidr.pod",
            ) && log.contains("tenant-cl01.yaml: GatewayClient liqo-tenant-cl01/cl01: spec.mtu")
        },
    );
    assert!(!log("cwlab-cl02-n1").contains("GatewayClient liqo-tenant-cl01/cl01: spec.mtu"));
    assert_traffic("with invalid fields");
    assert_eq!(map_entries(CLIENT_GW, "CW_REMAP_DST"), 2, "remaps kept");

    // 2. Broken YAML: the whole file is skipped, every object of it keeps its last version.
    write_manifest(&file, &format!("{original}\n  - [unbalanced: {{\n"));
    wait_for(
        "the gateway reports the broken file",
        Duration::from_secs(10),
        || log(CLIENT_GW).contains("tenant-cl01.yaml: not valid YAML"),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_traffic("with broken YAML");
    assert_eq!(map_entries(CLIENT_GW, "CW_REMAP_DST"), 2, "remaps kept");
    assert!(routes("cwlab-cl02-n1").contains("10.1.0.0/16 via 10.0.1.101"));

    // Fixed: still working, and no new complaint.
    write_manifest(&file, &original);
    std::thread::sleep(Duration::from_secs(2));
    let before = log(CLIENT_GW).len();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !log(CLIENT_GW)[before..].contains("skipped"),
        "{}",
        &log(CLIENT_GW)[before..]
    );
    assert_traffic("after the fix");
}

/// A UDP stream of numbered datagrams, one per millisecond, from `src_ns` to `dst:port`
/// (received in `dst_ns`, 16 MiB buffer); returns the sequence numbers received.
struct Stream {
    sender: std::thread::JoinHandle<u32>,
    receiver: std::thread::JoinHandle<Vec<u32>>,
}

impl Stream {
    fn start(src_ns: &str, dst_ns: &str, dst: Ipv4Addr, port: u16, duration: Duration) -> Self {
        let (ready_tx, ready_rx) = mpsc::channel();
        let dst_path = format!("/run/netns/{dst_ns}");
        let receiver = std::thread::spawn(move || {
            let file = std::fs::File::open(&dst_path).expect("open netns");
            setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
            let socket =
                UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).expect("bind");
            nix::sys::socket::setsockopt(
                &socket,
                nix::sys::socket::sockopt::RcvBufForce,
                &(16 << 20),
            )
            .expect("SO_RCVBUFFORCE");
            socket
                .set_read_timeout(Some(Duration::from_millis(200)))
                .expect("timeout");
            ready_tx.send(()).expect("ready");
            // Until the end marker, or 3 s after the stream's end (the marker may be lost):
            // an outage in the middle does not end the reception.
            let until = Instant::now() + duration + Duration::from_secs(3);
            let mut seen = Vec::new();
            let mut buf = [0u8; 64];
            while Instant::now() < until {
                let Ok((n, _)) = socket.recv_from(&mut buf) else {
                    continue;
                };
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
        ready_rx.recv().expect("receiver ready");
        let src_path = format!("/run/netns/{src_ns}");
        let sender = std::thread::spawn(move || {
            let file = std::fs::File::open(&src_path).expect("open netns");
            setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
            let socket =
                UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
            let to = SocketAddrV4::new(dst, port);
            let start = Instant::now();
            let mut seq = 0u32;
            while start.elapsed() < duration {
                let mut payload = [0u8; 32];
                payload[..4].copy_from_slice(&seq.to_be_bytes());
                let _ = socket.send_to(&payload, to);
                seq += 1;
                if let Some(wait) = (start + Duration::from_millis(u64::from(seq)))
                    .checked_duration_since(Instant::now())
                {
                    std::thread::sleep(wait);
                }
            }
            // The end marker, a few times (it may itself be lost during an outage).
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(50));
                let _ = socket.send_to(&u32::MAX.to_be_bytes(), to);
            }
            seq
        });
        Self { sender, receiver }
    }

    /// (sent, received sequence numbers).
    fn finish(self) -> (u32, Vec<u32>) {
        let sent = self.sender.join().expect("sender");
        let mut seen = self.receiver.join().expect("receiver");
        seen.sort_unstable();
        seen.dedup();
        (sent, seen)
    }
}

/// The sequence numbers in 0..sent that were not received.
fn missing(sent: u32, seen: &[u32]) -> Vec<u32> {
    (0..sent)
        .filter(|s| seen.binary_search(s).is_err())
        .collect()
}

#[test]
fn lab_agent_kill_9_under_traffic_loses_no_packet() {
    let _lab = lab_up();
    assert_traffic("after up");
    // cl01/n1-a -> cl02/n2-b: through node cl01-n1 (its agent's Geneve encapsulation toward
    // the gateway pod on that node), the tunnel, and cl02-n2 (decapsulation).
    let stream = Stream::start(
        CL01_N1_A,
        CL02_N2_B,
        REMOTE_N2_B,
        7300,
        Duration::from_secs(4),
    );
    std::thread::sleep(Duration::from_secs(1));
    let mut argvs = Vec::new();
    for agent in ["cwlab-cl01-n1", "cwlab-cl02-n2"] {
        argvs.push((agent, kill_daemon(agent)));
    }
    let killed_at = Instant::now();
    // Down for a while, then restarted with the same command lines: they adopt the pins.
    std::thread::sleep(Duration::from_secs(1));
    for (agent, argv) in &argvs {
        restart_daemon(agent, argv);
    }
    let (sent, seen) = stream.finish();
    let lost = missing(sent, &seen);
    println!(
        "agents killed for {:?} (restarted under traffic): {sent} datagrams sent, {} received",
        killed_at.elapsed(),
        seen.len()
    );
    assert!(
        lost.is_empty(),
        "{} datagrams lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    for (agent, _) in &argvs {
        wait_for(
            &format!("{agent} adopted its pinned datapath"),
            Duration::from_secs(10),
            || log(agent).contains("adopted=true"),
        );
    }
    // The stream is the no-loss claim; a single ping right after the restart may still miss
    // on a slow (emulated) machine (seen in the VM tier: answered 3-7 s later on 6.1).
    let answered = wait_for(
        "pings across after the agents' restart",
        Duration::from_secs(20),
        pings_across,
    );
    println!("pings across {answered:?} after the agents adopted their pins");
    assert_traffic("after the agents' restart");
}

#[test]
fn lab_gateway_pod_address_change_is_followed_by_the_agents() {
    let _lab = lab_up();
    assert_traffic("after up");
    // cl02's gateway pod toward cl01 is recreated with another address, as Kubernetes does
    // (a pod keeps its IP for life): the old process goes, the pod's eth0 and the node's /32
    // route change, the new process starts, then the controller updates the manifests
    // (GatewayClient status.internalEndpoint, InternalFabric spec.gatewayIP).
    let (old, new) = ("10.0.1.101", "10.0.1.121");
    let argv = kill_daemon(CLIENT_GW);
    let node = "cwlab-cl02-n1";
    for args in [
        vec![
            "-n",
            CLIENT_GW,
            "addr",
            "add",
            "10.0.1.121/32",
            "dev",
            "eth0",
        ],
        vec![
            "-n",
            CLIENT_GW,
            "addr",
            "del",
            "10.0.1.101/32",
            "dev",
            "eth0",
        ],
        // Deleting the address keeps the pod's routes (none names it as source).
        vec![
            "-n", CLIENT_GW, "route", "replace", "default", "via", "10.0.1.1", "dev", "eth0",
        ],
        vec![
            "-n",
            node,
            "route",
            "replace",
            "10.0.1.121",
            "dev",
            "veth-gw-cl01",
            "scope",
            "link",
            "src",
            "10.0.1.1",
        ],
        vec![
            "-n",
            node,
            "route",
            "del",
            "10.0.1.101",
            "dev",
            "veth-gw-cl01",
        ],
    ] {
        let out = Command::new("ip").args(&args).output().expect("run ip");
        assert!(out.status.success(), "ip {args:?}: {out:?}");
    }
    let argv: Vec<String> = argv
        .into_iter()
        .map(|a| a.replace(&format!("{old}:"), &format!("{new}:")))
        .collect();
    restart_daemon(CLIENT_GW, &argv);

    // The GatewayClient's status in the tenant file, the InternalFabric in its own file.
    let changed = Instant::now();
    for file in [
        tenant_file("cl02", "cl01"),
        manifests("cl02").join("fabric-cl01.yaml"),
    ] {
        let original = read(&file);
        let moved = original.replace(&format!("\"{old}\""), &format!("\"{new}\""));
        assert_eq!(moved.matches(new).count(), 1, "{moved}");
        write_manifest(&file, &moved);
    }
    for (ns, via) in [
        (node, format!("10.1.0.0/16 via {new} dev veth-gw-cl01")),
        (
            "cwlab-cl02-n2",
            "10.1.0.0/16 via 172.31.2.11 dev eth0".to_owned(),
        ),
    ] {
        wait_for(
            &format!("{ns} routes the peer's CIDRs to the moved pod"),
            Duration::from_secs(10),
            || routes(ns).contains(&via),
        );
    }
    let followed = changed.elapsed();
    wait_for(
        "traffic across the moved gateway",
        Duration::from_secs(15),
        pings_across,
    );
    println!(
        "gateway pod moved {old} -> {new}: agents followed in {followed:?}, traffic resumed {:?} \
         after the manifests changed",
        changed.elapsed()
    );
    assert!(!routes(node).contains(old), "{}", routes(node));
    assert_traffic("after the move");
}

/// FNV-1a over a byte stream.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The `i`-th chunk of the transfer: bytes that differ per position.
fn chunk(i: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| (i * 131 + j * 7 + (j >> 8)).to_le_bytes()[0])
        .collect()
}

/// The gateway-kill transfer: 8 MiB in chunks, paced over about 8 s.
const CHUNK: usize = 32 * 1024;
const CHUNKS: u32 = 256;

#[test]
fn lab_gateway_kill_9_during_tcp_transfer_and_udp_stream() {
    gateway_kill_9(CLIENT_GW, ("cl02", "cl01"), Duration::from_secs(8));
}

#[test]
fn lab_server_gateway_kill_9_during_tcp_transfer_and_udp_stream() {
    gateway_kill_9(SERVER_GW, ("cl01", "cl02"), Duration::from_secs(12));
}

/// `kill -9` of `gateway` (of `cluster` toward `peer`) 2 s into a TCP transfer and a UDP
/// stream lasting `run`, restarted at once with the same command line.
fn gateway_kill_9(gateway: &str, (cluster, peer): (&str, &str), run: Duration) {
    let _lab = lab_up();
    assert_traffic("after up");

    // TCP: cl01/n1-a sends to cl02/n2-b, which hashes what it receives until EOF.
    let (ready_tx, ready_rx) = mpsc::channel();
    let receiver = std::thread::spawn(move || {
        let file = std::fs::File::open(format!("/run/netns/{CL02_N2_B}")).expect("open netns");
        setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
        let listener =
            TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7400)).expect("bind");
        ready_tx.send(()).expect("ready");
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let mut hash = Fnv::new();
        let mut total = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => return Ok((total, hash.0)),
                Ok(n) => {
                    hash.update(&buf[..n]);
                    total += n;
                }
                Err(e) => return Err(format!("after {total} bytes: {e}")),
            }
        }
    });
    ready_rx.recv().expect("TCP receiver ready");
    let sender = std::thread::spawn(move || {
        let file = std::fs::File::open(format!("/run/netns/{CL01_N1_A}")).expect("open netns");
        setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
        let to = SocketAddr::from(SocketAddrV4::new(REMOTE_N2_B, 7400));
        let mut conn =
            TcpStream::connect_timeout(&to, Duration::from_secs(3)).map_err(|e| e.to_string())?;
        conn.set_write_timeout(Some(Duration::from_secs(30))).ok();
        let mut hash = Fnv::new();
        let start = Instant::now();
        for i in 0..CHUNKS as usize {
            let data = chunk(i, CHUNK);
            hash.update(&data);
            conn.write_all(&data)
                .map_err(|e| format!("chunk {i}: {e}"))?;
            let due = start + run * u32::try_from(i + 1).expect("chunk") / CHUNKS;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        conn.shutdown(std::net::Shutdown::Write)
            .map_err(|e| format!("shutdown: {e}"))?;
        // Wait for the receiver's EOF answer (its close), so no byte is in flight when we go.
        let mut rest = [0u8; 1];
        conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let _ = conn.read(&mut rest);
        Ok::<_, String>((CHUNK * CHUNKS as usize, hash.0))
    });
    // UDP: the other direction, cl02/n1-a to cl01/n2-b, through the same two gateways.
    let stream = Stream::start(CL02_N1_A, CL01_N2_B, REMOTE_N2_B, 7401, run);

    std::thread::sleep(Duration::from_secs(2));
    let argv = kill_daemon(gateway);
    let killed = Instant::now();
    restart_daemon(gateway, &argv);

    let (sent_bytes, sent_hash) = sender.join().expect("sender").expect("TCP transfer");
    let (got_bytes, got_hash) = receiver.join().expect("receiver").expect("TCP receive");
    assert_eq!(
        (got_bytes, got_hash),
        (sent_bytes, sent_hash),
        "identical bytes"
    );
    let (sent, seen) = stream.finish();
    let lost = missing(sent, &seen);
    let outage = longest_run(&lost);
    println!(
        "gateway {gateway} kill -9 and restart: TCP {got_bytes} bytes identical, UDP \
         {sent} sent, {} lost, longest outage {outage} ms",
        lost.len()
    );
    wait_for(
        "the restarted gateway's Connection is Connected again",
        // Seconds on this host; up to half a minute in the VM tier's emulated guests.
        Duration::from_secs(45),
        || {
            log(gateway).matches("to=Connected").count() >= 2
                && connection_value(cluster, peer) == "Connected"
        },
    );
    println!("Connected again {:?} after the kill", killed.elapsed());
    assert!(outage < 10_000, "outage {outage} ms");
    // With the kernel's WireGuard the tunnel, its session and the pinned programs outlive the
    // process: no outage. Measured: not one datagram lost on 6.12 in the VM tier; on 6.1 the
    // emulated guest (TCG, one vCPU) lost scattered datagrams in bursts of at most 277 ms
    // while the restarted gateway loaded its programs, so the bound is "no gap of 1 s",
    // well below the 2.7 s an embedded-WireGuard restart costs.
    if log(gateway).contains("wireguard implementation: kernel") {
        assert!(
            outage < 1000,
            "kernel WireGuard: an outage of {outage} ms ({} datagrams lost)",
            lost.len()
        );
    }
    assert_traffic("after the gateway's restart");
}
