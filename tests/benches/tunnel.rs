//! `cargo xtask bench tunnel`: WireGuard tunnel throughput, latency and CPU, point to point with
//! each implementation, and the lab's pod-to-pod path end to end (issue 11, item 3).
//!
//! Part 1, point to point: the same topology once per implementation, two namespaces joined by
//! a veth "WAN", a WireGuard device in each at MTU 1340 (the lab's), configured through
//! `clusterwire_links::wireguard` (the UAPI path the gateway uses, as in `tests/netns/wireguard.rs`):
//!
//! ```text
//!  server ns                                      client ns
//!  <if> 169.254.18.1/30 (listen 51840)            <if> 169.254.18.2/30
//!  wan0 10.252.0.1/24 =========================== wan0 10.252.0.2/24
//! ```
//!
//! - (i) `embedded`: clusterwire's embedded userspace device (gotatun) on both ends.
//! - (ii) `wireguard-go` (Debian's) on both ends.
//! - (iii) `kernel`: the kernel's WireGuard, when the kernel has it (skipped otherwise).
//!
//! Each embedded device runs in a child process of its own: this binary re-executed with
//! `CW_TUNNEL_DEVICE=<name>` (and its role and keys), which calls
//! `wireguard::create(<name>, Mode::Userspace, &config)` in its namespace, as the gateway does,
//! and serves until its stdin closes; wireguard-go gets the same configuration through
//! `wireguard::configure`. So both userspace implementations are one process per end, and their
//! CPU is read the same way: `utime + stime` of the process (every thread, also exited ones) from
//! `/proc/<pid>/stat` (ticks of 10 ms) around the 1-stream TCP sample, divided by the gigabytes
//! delivered; the system time includes the kernel work done in the process's own TUN and UDP
//! system calls. The kernel's WireGuard has no process (its work is in softirq and kworkers), so
//! it has no CPU figure.
//!
//! Per case: TCP bulk from client to server with 1 and 4 streams, 1-byte TCP request/response
//! p50/p99 on one connection, ping p50/p99 (one echo every 5 ms), and the CPU of the sending and
//! the receiving end per GB. Rounds are paired as in `forward.rs`: every figure is measured for
//! every case back to back, the order rotating between rounds; figures are medians over rounds,
//! ratios medians of per-round ratios.
//!
//! Part 2, the lab: `cwctl lab up --wireguard userspace --geneve ebpf` (2 clusters; `cwctl` from
//! `CW_CWCTL`, else `target/release`, else `target/debug`), then pod to pod from cl01/n1-a to
//! cl02/n2-b through the tunnel (10.1.2.11: node, Geneve to the gateway, NAT, embedded WireGuard,
//! and back down on the other side) and, for scale, from cl01/n1-a to cl01/n2-b (10.0.2.11,
//! across the underlay, no tunnel): TCP 1 stream, 1-byte request/response and ping, in paired
//! rounds. `cwctl lab down` follows, also when the bench fails (a guard). The gateway daemon
//! cannot run wireguard-go, so there is no lab with wireguard-go: the lab's figures are printed
//! next to the point-to-point figures of (i) and (ii). `CW_TUNNEL_LAB=0` skips part 2.
//!
//! Environment: `CW_BENCH_ROUNDS` (default 7), `CW_BENCH_SECONDS` per sample (default 1.0),
//! `CW_BENCH_QUICK=1` (3 rounds of 0.5 s). Figures are reported, never asserted.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "benchmark figures: counts and durations become f64 for printing"
)]

use std::{
    io::Read as _,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use clusterwire_links::wireguard::{
    self, Implementation, InterfaceSettings, Mode, PeerConfig, PrivateKey, Role, WireGuardConfig,
    WireGuardError,
};
use clusterwire_tests::netns::{NetNs, veth_pair};

mod kit;

const SERVER_WAN: Ipv4Addr = Ipv4Addr::new(10, 252, 0, 1);
const PORT_BULK: u16 = 5301;
const PORT_RR: u16 = 5303;
/// The environment variable that turns this binary into an embedded device process.
const DEVICE_ENV: &str = "CW_TUNNEL_DEVICE";
const LAB_STATE: &str = "/run/clusterwire-lab";
/// Ticks of `/proc/<pid>/stat` per second (`USER_HZ`).
const USER_HZ: f64 = 100.0;

/// A column of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Embedded,
    WireGuardGo,
    Kernel,
    /// The lab, cl01/n1-a to cl02/n2-b through the tunnel.
    LabCross,
    /// The lab, cl01/n1-a to cl01/n2-b (no tunnel).
    LabWithin,
}

const COLUMNS: [Column; 5] = [
    Column::Embedded,
    Column::WireGuardGo,
    Column::Kernel,
    Column::LabCross,
    Column::LabWithin,
];

impl Column {
    fn index(self) -> usize {
        self as usize
    }

    fn header(self) -> &'static str {
        match self {
            Self::Embedded => "(i) embedded",
            Self::WireGuardGo => "(ii) wg-go",
            Self::Kernel => "(iii) kernel",
            Self::LabCross => "lab cl01>cl02",
            Self::LabWithin => "lab in-cluster",
        }
    }

    /// Interface-name tag of a point-to-point case.
    fn tag(self) -> &'static str {
        match self {
            Self::Embedded => "e",
            Self::WireGuardGo => "g",
            Self::Kernel | Self::LabCross | Self::LabWithin => "k",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Figure {
    Tcp1,
    Tcp4,
    RrP50,
    RrP99,
    PingP50,
    PingP99,
    CpuSender,
    CpuReceiver,
}

const FIGURES: [Figure; 8] = [
    Figure::Tcp1,
    Figure::Tcp4,
    Figure::RrP50,
    Figure::RrP99,
    Figure::PingP50,
    Figure::PingP99,
    Figure::CpuSender,
    Figure::CpuReceiver,
];

impl Figure {
    fn label(self) -> &'static str {
        match self {
            Self::Tcp1 => "TCP 1 stream (Gbit/s)",
            Self::Tcp4 => "TCP 4 streams (Gbit/s)",
            Self::RrP50 => "TCP 1 B req/resp p50 (us)",
            Self::RrP99 => "TCP 1 B req/resp p99 (us)",
            Self::PingP50 => "ping p50 (us)",
            Self::PingP99 => "ping p99 (us)",
            Self::CpuSender => "WG CPU s/GB, sending end",
            Self::CpuReceiver => "WG CPU s/GB, receiving end",
        }
    }
}

/// `samples[figure][column]`: one value per round.
struct Samples(Vec<Vec<Vec<f64>>>);

impl Samples {
    fn new() -> Self {
        Self(vec![vec![Vec::new(); COLUMNS.len()]; FIGURES.len()])
    }

    fn record(&mut self, figure: Figure, column: Column, value: f64) {
        let f = FIGURES.iter().position(|&x| x == figure).expect("figure");
        self.0[f][column.index()].push(value);
    }
}

/// A host-unique interface name (the UAPI sockets of userspace devices share
/// `/var/run/wireguard` across namespaces).
fn ifname(column: Column, end: &str) -> String {
    format!("tb{}{}{end}", std::process::id(), column.tag())
}

/// A userspace WireGuard process serving one device: an embedded device (this binary in device
/// mode) or wireguard-go. Stopped on drop.
struct Process {
    child: Child,
    name: String,
    embedded: bool,
}

impl Process {
    /// Starts the device `name` in `ns`; an embedded one is created with its configuration
    /// (`role`, its and the peer's base64 private keys), wireguard-go is configured afterwards.
    fn start(ns: &NetNs, name: &str, column: Column, role: Role, keys: [&str; 2]) -> Self {
        let owned = name.to_owned();
        let child = ns.enter(move || {
            let mut command = if column == Column::Embedded {
                let mut c = Command::new(std::env::current_exe().expect("this binary"));
                c.env(DEVICE_ENV, &owned)
                    .env(
                        "CW_TUNNEL_ROLE",
                        if role == Role::Server {
                            "server"
                        } else {
                            "client"
                        },
                    )
                    .env("CW_TUNNEL_KEY", keys[0])
                    .env("CW_TUNNEL_PEER_KEY", keys[1])
                    .stderr(Stdio::inherit());
                c
            } else {
                let mut c = Command::new("wireguard-go");
                c.args(["-f", &owned]).stderr(Stdio::null());
                c
            };
            command.stdin(Stdio::piped()).stdout(Stdio::null()).spawn()
        });
        let child = child.unwrap_or_else(|e| {
            panic!(
                "start the {} device {name} (wireguard-go: Debian package wireguard-go, \
                 `cargo xtask setup`): {e}",
                column.header()
            )
        });
        let mut me = Self {
            child,
            name: name.to_owned(),
            embedded: column == Column::Embedded,
        };
        let socket = wireguard::uapi_socket(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&socket).is_err() {
            if let Ok(Some(status)) = me.child.try_wait() {
                panic!("the {} device {name} exited: {status}", column.header());
            }
            assert!(
                Instant::now() < deadline,
                "{} never served {}",
                column.header(),
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        me
    }

    /// CPU seconds (user + system, every thread) the process used so far.
    fn cpu_secs(&self) -> f64 {
        let path = format!("/proc/{}/stat", self.child.id());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        // Fields after "(comm)": state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = text
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks: u64 = [11, 12]
            .iter()
            .map(|&i| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("no utime/stime in {path}: {text}"))
            })
            .sum();
        ticks as f64 / USER_HZ
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // The embedded device stops (removing its TUN device and socket) when its stdin closes;
        // wireguard-go is killed, as in the interop test.
        drop(self.child.stdin.take());
        if !self.embedded {
            let _ = self.child.kill();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) {
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_file(wireguard::uapi_socket(&self.name));
    }
}

/// Device mode: the embedded device `name` in this process's namespace, created with its
/// configuration (`CW_TUNNEL_ROLE`, `CW_TUNNEL_KEY`, `CW_TUNNEL_PEER_KEY`) as the gateway creates
/// it; serves until stdin closes.
fn serve_device(name: &str) {
    let var = |key: &str| std::env::var(key).unwrap_or_else(|_| panic!("{key} is not set"));
    let role = if var("CW_TUNNEL_ROLE") == "server" {
        Role::Server
    } else {
        Role::Client
    };
    let config = config(
        role,
        &key(&var("CW_TUNNEL_KEY")),
        &key(&var("CW_TUNNEL_PEER_KEY")),
    );
    let tunnel = wireguard::create(name, Mode::Userspace, &config)
        .unwrap_or_else(|e| panic!("embedded device {name}: {}", chain(&e)));
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    tunnel
        .delete()
        .unwrap_or_else(|e| panic!("stop {name}: {}", chain(&e)));
}

/// A private key from its base64 text.
fn key(text: &str) -> PrivateKey {
    PrivateKey::from_base64(text.trim()).unwrap_or_else(|e| panic!("private key: {e}"))
}

/// A new private key as base64 (`wg genkey`), so that an embedded device process can be given
/// it.
fn genkey() -> String {
    let out = Command::new("wg")
        .arg("genkey")
        .output()
        .expect("run wg genkey (Debian package wireguard-tools; `cargo xtask setup`)");
    assert!(out.status.success(), "wg genkey: {}", out.status);
    String::from_utf8(out.stdout)
        .expect("base64")
        .trim()
        .to_owned()
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn config(role: Role, key: &PrivateKey, peer: &PrivateKey) -> WireGuardConfig {
    WireGuardConfig {
        private_key: key.clone(),
        listen_port: (role == Role::Server).then_some(wireguard::DEFAULT_PORT),
        peer: Some(PeerConfig {
            public_key: peer.public_key(),
            endpoint: (role == Role::Client)
                .then(|| SocketAddr::from((SERVER_WAN, wireguard::DEFAULT_PORT))),
            allowed_ips: vec!["0.0.0.0/0".parse().expect("net")],
            persistent_keepalive: (role == Role::Client).then_some(10),
        }),
    }
}

/// MTU 1340, the role's /30 address, up: over rtnetlink from inside `ns`.
fn set_up(ns: &NetNs, name: &str, role: Role) {
    ns.enter(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(async {
            let (connection, handle, _) = rtnetlink::new_connection().expect("rtnetlink");
            tokio::spawn(connection);
            wireguard::set_up_interface(&handle, name, &InterfaceSettings::for_role(role))
                .await
                .unwrap_or_else(|e| panic!("set up {name}: {e}"));
        });
    });
}

/// One point-to-point case: two namespaces, a device in each, the handshake done.
struct Case {
    column: Column,
    server: NetNs,
    client: NetNs,
    /// The server's and the client's process (none for the kernel's WireGuard).
    processes: Option<[Process; 2]>,
}

impl Case {
    /// Builds the case, or `None` for the kernel's WireGuard on a kernel without it.
    fn new(column: Column) -> Option<Self> {
        let server = NetNs::new(&format!("tn{}s", column.tag()));
        let client = NetNs::new(&format!("tn{}c", column.tag()));
        veth_pair(&server, "wan0", &client, "wan0");
        server.ip(&["addr", "add", &format!("{SERVER_WAN}/24"), "dev", "wan0"]);
        client.ip(&["addr", "add", "10.252.0.2/24", "dev", "wan0"]);
        let (server_if, client_if) = (ifname(column, "s"), ifname(column, "c"));
        let (server_b64, client_b64) = (genkey(), genkey());
        let (server_key, client_key) = (key(&server_b64), key(&client_b64));
        let server_cfg = config(Role::Server, &server_key, &client_key);
        let client_cfg = config(Role::Client, &client_key, &server_key);
        let processes = if column == Column::Kernel {
            for (ns, name, cfg) in [
                (&server, &server_if, &server_cfg),
                (&client, &client_if, &client_cfg),
            ] {
                match ns.enter(|| wireguard::create(name, Mode::Kernel, cfg)) {
                    // The link stays in the namespace, which goes with the case.
                    Ok(_) => {}
                    Err(WireGuardError::KernelUnavailable { .. }) => return None,
                    Err(e) => panic!("kernel WireGuard {name}: {}", chain(&e)),
                }
            }
            None
        } else {
            let server_process = Process::start(
                &server,
                &server_if,
                column,
                Role::Server,
                [&server_b64, &client_b64],
            );
            let client_process = Process::start(
                &client,
                &client_if,
                column,
                Role::Client,
                [&client_b64, &server_b64],
            );
            if column == Column::WireGuardGo {
                // The same configuration path, over the UAPI socket.
                for (name, cfg) in [(&server_if, &server_cfg), (&client_if, &client_cfg)] {
                    wireguard::configure(name, Implementation::Userspace, cfg)
                        .unwrap_or_else(|e| panic!("configure {name}: {}", chain(&e)));
                }
            }
            Some([server_process, client_process])
        };
        set_up(&server, &server_if, Role::Server);
        set_up(&client, &client_if, Role::Client);
        let case = Self {
            column,
            server,
            client,
            processes,
        };
        handshake(case.client.name(), Role::Server.tunnel_address().addr());
        Some(case)
    }

    /// CPU seconds so far of the sending (client) and receiving (server) ends.
    fn cpu(&self) -> Option<(f64, f64)> {
        self.processes
            .as_ref()
            .map(|[server, client]| (client.cpu_secs(), server.cpu_secs()))
    }
}

/// Pings until an echo comes back (the first one waits for the handshake), up to 10 tries.
fn handshake(ns: &str, dst: Ipv4Addr) {
    for _ in 0..10 {
        let out = kit::enter(ns, move || {
            Command::new("ping")
                .args(["-n", "-c", "1", "-W", "2", &dst.to_string()])
                .output()
        })
        .expect("run ping");
        if out.status.success() {
            return;
        }
    }
    panic!("no echo from {dst} in {ns} after 10 pings");
}

/// Pings `dst` from `ns` for about `secs` (an echo every 5 ms, at least 100): (p50 µs, p99 µs).
fn ping(ns: &str, dst: Ipv4Addr, secs: f64) -> (f64, f64) {
    let count = ((secs * 200.0) as usize).max(100).to_string();
    let out = kit::enter(ns, move || {
        Command::new("ping")
            .args([
                "-n",
                "-c",
                &count,
                "-i",
                "0.005",
                "-W",
                "1",
                &dst.to_string(),
            ])
            .output()
    })
    .expect("run ping");
    let text = String::from_utf8_lossy(&out.stdout);
    // "64 bytes from 10.1.2.11: icmp_seq=1 ttl=62 time=0.412 ms"
    let mut rtts: Vec<f64> = text
        .lines()
        .filter_map(|l| {
            l.split_once("time=")?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .map(|ms: f64| ms * 1000.0)
        .collect();
    assert!(
        rtts.len() >= 50,
        "ping {dst} from {ns}: {} echoes\n{text}",
        rtts.len()
    );
    kit::percentiles(&mut rtts)
}

/// Part 1: every figure for every case, paired rounds.
fn point_to_point(cases: &[Case], samples: &mut Samples, rounds: usize, secs: f64) {
    let server = Role::Server.tunnel_address().addr();
    for round in 0..rounds {
        let mut order: Vec<&Case> = cases.iter().collect();
        order.rotate_left(round % cases.len());
        let names: Vec<_> = order.iter().map(|c| c.column.header()).collect();
        eprintln!("point to point, round {}/{rounds}: {names:?}", round + 1);
        for case in &order {
            let (s, c) = (case.server.name(), case.client.name());
            let dst = SocketAddrV4::new(server, PORT_BULK);
            let (bulk, before) = kit::tcp_bulk(s, c, dst, 1, secs, || case.cpu());
            samples.record(Figure::Tcp1, case.column, bulk.gbps());
            if let (Some((send0, recv0)), Some((send1, recv1))) = (before, case.cpu()) {
                let gb = bulk.bytes as f64 / 1e9;
                samples.record(Figure::CpuSender, case.column, (send1 - send0) / gb);
                samples.record(Figure::CpuReceiver, case.column, (recv1 - recv0) / gb);
            }
        }
        for case in &order {
            let dst = SocketAddrV4::new(server, PORT_BULK);
            let (bulk, ()) =
                kit::tcp_bulk(case.server.name(), case.client.name(), dst, 4, secs, || ());
            samples.record(Figure::Tcp4, case.column, bulk.gbps());
        }
        for case in &order {
            let dst = SocketAddrV4::new(server, PORT_RR);
            let (p50, p99) = kit::tcp_rr(case.server.name(), case.client.name(), dst, secs);
            samples.record(Figure::RrP50, case.column, p50);
            samples.record(Figure::RrP99, case.column, p99);
        }
        for case in &order {
            let (p50, p99) = ping(case.client.name(), server, secs);
            samples.record(Figure::PingP50, case.column, p50);
            samples.record(Figure::PingP99, case.column, p99);
        }
    }
}

/// The lab of `cwctl lab up`; `cwctl lab down` on drop, also after a failed `up`.
struct Lab {
    cwctl: PathBuf,
}

/// Why no lab can be brought up now, if another one is up (only one can exist per host).
fn lab_busy() -> Option<String> {
    let namespaces = lab_namespaces();
    (Path::new(LAB_STATE).exists() || !namespaces.is_empty()).then(|| {
        format!(
            "a lab is already up on this host ({LAB_STATE}, {} cwlab- namespaces); only one can \
             exist: wait for it to go (or `cwctl lab down` if it is yours), or skip the lab with \
             --no-lab (CW_TUNNEL_LAB=0)",
            namespaces.len()
        )
    })
}

impl Lab {
    fn up(cwctl: PathBuf) -> Self {
        if let Some(busy) = lab_busy() {
            panic!("{busy}");
        }
        let lab = Self { cwctl };
        let args = ["lab", "up", "--wireguard", "userspace", "--geneve", "ebpf"];
        eprintln!("lab: {} {}", lab.cwctl.display(), args.join(" "));
        let status = Command::new(&lab.cwctl)
            .args(args)
            .stdout(std::io::stderr())
            .status()
            .unwrap_or_else(|e| panic!("run {}: {e}", lab.cwctl.display()));
        assert!(status.success(), "cwctl lab up failed: {status}");
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        match Command::new(&self.cwctl).args(["lab", "down"]).output() {
            Ok(out) if out.status.success() => eprintln!("lab: down"),
            Ok(out) => eprintln!(
                "cleanup: cwctl lab down failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("cleanup: run {} lab down: {e}", self.cwctl.display()),
        }
    }
}

fn lab_namespaces() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("cwlab-"))
                .collect()
        })
        .unwrap_or_default()
}

/// `CW_CWCTL`, else the workspace's release `cwctl`, else its debug one.
fn cwctl() -> PathBuf {
    if let Some(path) = std::env::var_os("CW_CWCTL") {
        return PathBuf::from(path);
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let release = target.join("release/cwctl");
    if release.is_file() {
        release
    } else {
        target.join("debug/cwctl")
    }
}

/// Part 2: the lab's pod-to-pod paths, paired rounds.
fn lab(samples: &mut Samples, rounds: usize, secs: f64) {
    const CLIENT: &str = "cwlab-cl01-n1-a";
    let paths = [
        (
            Column::LabCross,
            "cwlab-cl02-n2-b",
            Ipv4Addr::new(10, 1, 2, 11),
        ),
        (
            Column::LabWithin,
            "cwlab-cl01-n2-b",
            Ipv4Addr::new(10, 0, 2, 11),
        ),
    ];
    let _lab = Lab::up(cwctl());
    for &(_, _, dst) in &paths {
        handshake(CLIENT, dst);
    }
    for round in 0..rounds {
        let mut order = paths;
        order.rotate_left(round % paths.len());
        eprintln!("lab, round {}/{rounds}", round + 1);
        for &(column, server, dst) in &order {
            let (bulk, ()) = kit::tcp_bulk(
                server,
                CLIENT,
                SocketAddrV4::new(dst, PORT_BULK),
                1,
                secs,
                || (),
            );
            samples.record(Figure::Tcp1, column, bulk.gbps());
        }
        for &(column, server, dst) in &order {
            let (p50, p99) = kit::tcp_rr(server, CLIENT, SocketAddrV4::new(dst, PORT_RR), secs);
            samples.record(Figure::RrP50, column, p50);
            samples.record(Figure::RrP99, column, p99);
        }
        for &(column, _, dst) in &order {
            let (p50, p99) = ping(CLIENT, dst, secs);
            samples.record(Figure::PingP50, column, p50);
            samples.record(Figure::PingP99, column, p99);
        }
    }
}

fn print_table(samples: &Samples, rounds: usize, secs: f64) {
    println!(
        "\ntunnel: WireGuard at MTU 1340, point to point between two namespaces over a veth \
         WAN: (i) clusterwire's embedded userspace device, (ii) wireguard-go, (iii) the kernel's; \
         and the lab pod to pod (embedded userspace WireGuard, eBPF Geneve)"
    );
    println!(
        "medians over {rounds} paired rounds of {secs} s; i/ii is the median of per-round ratios; \
         '-' not measured\n"
    );
    print!("{:<28}", "figure");
    for column in COLUMNS {
        print!(" {:>14}", column.header());
    }
    println!(" {:>8}", "i/ii");
    let value = |v: &[f64]| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.2}", kit::median(v.to_vec()))
        }
    };
    for (f, figure) in FIGURES.iter().enumerate() {
        let s = &samples.0[f];
        print!("{:<28}", figure.label());
        for column in COLUMNS {
            print!(" {:>14}", value(&s[column.index()]));
        }
        let (i, ii) = (
            &s[Column::Embedded.index()],
            &s[Column::WireGuardGo.index()],
        );
        let ratio = if !i.is_empty() && i.len() == ii.len() {
            format!("{:.3}", kit::median_ratio(i, ii))
        } else {
            "-".to_owned()
        };
        println!(" {ratio:>8}");
    }
    println!(
        "\nlab: cl01>cl02 is cl01/n1-a to cl02/n2-b at 10.1.2.11 through both gateways (Geneve, \
         NAT, embedded WireGuard); in-cluster is cl01/n1-a to cl01/n2-b at 10.0.2.11 (no tunnel). \
         The lab's gateways cannot use wireguard-go, so no lab ran with it: its figures stand next \
         to the point-to-point (i) and (ii). CPU: utime+stime of each end's WireGuard process \
         over the 1-stream sample, per GB delivered."
    );
}

fn main() {
    if let Ok(name) = std::env::var(DEVICE_ENV) {
        serve_device(&name);
        return;
    }
    let (rounds, secs) = kit::settings();
    let load_before = loadavg();
    let setup = Instant::now();
    let mut cases = Vec::new();
    for column in [Column::Embedded, Column::WireGuardGo, Column::Kernel] {
        match Case::new(column) {
            Some(case) => cases.push(case),
            None => eprintln!("{}: skipped: no kernel wireguard", column.header()),
        }
    }
    eprintln!(
        "tunnel: {} point-to-point cases up in {:.1} s; {rounds} rounds of {secs} s per sample",
        cases.len(),
        setup.elapsed().as_secs_f64()
    );
    let mut samples = Samples::new();
    let run = Instant::now();
    point_to_point(&cases, &mut samples, rounds, secs);
    drop(cases);
    eprintln!(
        "tunnel: point to point measured in {:.1} s",
        run.elapsed().as_secs_f64()
    );
    let mut refused = None;
    if std::env::var("CW_TUNNEL_LAB").is_ok_and(|v| v == "0") {
        eprintln!("lab: skipped (CW_TUNNEL_LAB=0)");
    } else if let Some(busy) = lab_busy() {
        // Another engineer's lab came up meanwhile: keep the point-to-point figures, fail after.
        refused = Some(busy);
    } else {
        let run = Instant::now();
        lab(&mut samples, rounds, secs);
        eprintln!(
            "tunnel: lab measured in {:.1} s",
            run.elapsed().as_secs_f64()
        );
    }
    print_table(&samples, rounds, secs);
    println!(
        "load average: {load_before} at the start, {} at the end",
        loadavg()
    );
    if let Some(busy) = refused {
        eprintln!("lab: not measured: {busy}");
        std::process::exit(1);
    }
}

/// The first three fields of `/proc/loadavg`.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
