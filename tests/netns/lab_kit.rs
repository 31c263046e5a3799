//! What the lab tests share (`lab.rs`, `lab_faults.rs`): the `cwctl` binary, the one-lab lock
//! and the guard that takes the lab down, entering a lab namespace.
//!
//! Only one lab can exist per host (fixed `cwlab-*` names and `/run/clusterwire-lab`), so every
//! lab test holds [`ONE_LAB_AT_A_TIME`] through [`Lab::claim`].

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::Mutex,
};

use nix::sched::{CloneFlags, setns};

pub static ONE_LAB_AT_A_TIME: Mutex<()> = Mutex::new(());

pub const STATE_DIR: &str = "/run/clusterwire-lab";

pub fn cwctl() -> PathBuf {
    if let Some(path) = std::env::var_os("CWCTL") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/netns-<hash> -> target/<profile>/cwctl
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("cwctl"))
        .expect("target directory");
    assert!(
        path.is_file(),
        "{} not found: build it first (`cargo build -p clusterwire-cli`) or set CWCTL",
        path.display()
    );
    path
}

pub fn lab(args: &[&str]) -> Output {
    Command::new(cwctl())
        .arg("lab")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("could not run cwctl lab {args:?}: {e}"))
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn lab_ok(args: &[&str]) -> String {
    let out = lab(args);
    let all = text(&out);
    assert!(out.status.success(), "cwctl lab {args:?} failed:\n{all}");
    all
}

pub fn lab_namespaces() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("cwlab-"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Holds the lab lock; runs `cwctl lab down` on drop.
pub struct Lab {
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl Lab {
    pub fn claim() -> Self {
        let lock = ONE_LAB_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        assert!(
            !Path::new(STATE_DIR).exists() && lab_namespaces().is_empty(),
            "a lab is already up on this host ({STATE_DIR}, {:?}): run `cwctl lab down`",
            lab_namespaces()
        );
        Self { _lock: lock }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = lab(&["down"]);
        if !out.status.success() {
            eprintln!("cleanup: cwctl lab down failed:\n{}", text(&out));
        }
    }
}

pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                setns(&file, CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns into {path}: {e}"));
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The kernel's Geneve and WireGuard capabilities, probed in a fresh namespace tagged `tag`.
pub fn probe_kernel(
    tag: &str,
) -> Result<clusterwire_links::KernelCapabilities, clusterwire_links::LinkError> {
    clusterwire_tests::netns::NetNs::new(tag).enter(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(async {
            let (connection, handle, _) = rtnetlink::new_connection().expect("rtnetlink");
            tokio::spawn(connection);
            clusterwire_links::probe_kernel(&handle).await
        })
    })
}

/// Whether this kernel has the WireGuard and Geneve drivers (probed in a fresh namespace). Where
/// it does not, `test` says it was skipped and why, unless `CW_REQUIRE_KERNEL_DRIVERS` is set
/// (the VM tier, whose kernels have both): there a missing driver fails the test.
pub fn kernel_drivers(test: &str) -> bool {
    let caps = probe_kernel("drv").expect("kernel capability probe");
    let missing: Vec<String> = [("geneve", &caps.geneve), ("wireguard", &caps.wireguard)]
        .into_iter()
        .filter(|(_, cap)| !cap.is_available())
        .map(|(what, cap)| format!("{what}: {cap}"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CW_REQUIRE_KERNEL_DRIVERS").is_none(),
        "{test}: kernel drivers required here but missing: {missing:?}"
    );
    println!("SKIPPED {test}: this kernel lacks {missing:?} (the VM tier runs it)");
    false
}

/// The gateway rows of `cwctl lab up`'s table as (cluster, tunnel, geneve, connection).
pub fn gateway_rows(up: &str) -> Vec<(String, String, String, String)> {
    up.lines()
        .skip_while(|l| !l.starts_with("CLUSTER"))
        .skip(1)
        .map_while(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.len() >= 7 && cols[0].starts_with("cl")).then(|| {
                (
                    cols[0].to_owned(),
                    cols[4].to_owned(),
                    cols[5].to_owned(),
                    cols[6].to_owned(),
                )
            })
        })
        .collect()
}

/// The Geneve implementation an agent's log reports.
pub fn agent_geneve(instance: &str) -> String {
    let path = format!("{STATE_DIR}/logs/{instance}.log");
    let log = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    log.split("geneve implementation: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_alphanumeric()).next())
        .unwrap_or_else(|| panic!("{path} names no Geneve implementation:\n{log}"))
        .to_owned()
}

// Helpers of the abuse and restart tests (`lab_abuse.rs`, `lab_restart.rs`).

/// `what` holds within `timeout` (checked every 50 ms); returns how long it took.
pub fn wait_until(
    what: &str,
    timeout: std::time::Duration,
    mut check: impl FnMut() -> bool,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    loop {
        if check() {
            return start.elapsed();
        }
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A lab daemon's log.
pub fn daemon_log(instance: &str) -> String {
    let path = format!("{STATE_DIR}/logs/{instance}.log");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// `kill -9` of the lab daemons `instances`, all signalled before any is waited for (each
/// checked against its pid file and command line); returns their command lines once every one
/// is dead (a zombie counts: the host's init reaps them only every few seconds).
pub fn sigkill_daemons(instances: &[&str]) -> Vec<Vec<String>> {
    let mut killed = Vec::new();
    for instance in instances {
        let path = format!("{STATE_DIR}/pids/{instance}.pid");
        let pid: i32 = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {path}: {e}"))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_else(|e| panic!("{instance} (pid {pid}) is not running: {e}"));
        let argv: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert!(
            argv.windows(2)
                .any(|w| w[0] == "--instance" && w[1] == *instance),
            "pid {pid} is not {instance}: {argv:?}"
        );
        let status = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -9 {pid} ({instance})");
        killed.push((pid, argv));
    }
    for (pid, _) in &killed {
        wait_until(
            &format!("pid {pid} dead"),
            std::time::Duration::from_secs(5),
            || {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
                    stat.rsplit_once(')')
                        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
                })
            },
        );
    }
    killed.into_iter().map(|(_, argv)| argv).collect()
}

/// Starts a lab daemon again with `argv`, detached (a shell in between, so it is not our
/// child), appending to its log; records its pid where `cwctl lab down` finds it.
pub fn start_daemon(instance: &str, argv: &[String]) {
    let log = format!("{STATE_DIR}/logs/{instance}.log");
    let out = Command::new("sh")
        .args(["-c", "\"$@\" >>\"$CW_LOG\" 2>&1 </dev/null & echo $!", "sh"])
        .args(argv)
        .env("CW_LOG", &log)
        .output()
        .unwrap_or_else(|e| panic!("start {instance}: {e}"));
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(pid.parse::<i32>().is_ok(), "{instance}: no pid: {out:?}");
    std::fs::write(
        format!("{STATE_DIR}/pids/{instance}.pid"),
        format!("{pid}\n"),
    )
    .unwrap_or_else(|e| panic!("pid file of {instance}: {e}"));
}

/// The `status.value` of the Connection that `cluster`'s gateway toward `peer` writes ("" when
/// the file is missing or being replaced).
pub fn connection_status(cluster: &str, peer: &str) -> String {
    let path = format!(
        "{STATE_DIR}/clusters/{cluster}/manifests/status/connection-liqo-tenant-{peer}-gw-{peer}.yaml"
    );
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("  value: "))
        .unwrap_or_default()
        .to_owned()
}

/// A gateway's `/metrics` (its `--metrics-addr`, read from inside the gateway pod `netns`) as
/// `name{labels}` -> value.
pub fn gateway_metrics(
    netns: &str,
    addr: std::net::SocketAddrV4,
) -> std::collections::BTreeMap<String, u64> {
    use std::io::{Read as _, Write as _};
    let text = in_netns(netns, || {
        let mut conn =
            std::net::TcpStream::connect_timeout(&addr.into(), std::time::Duration::from_secs(2))
                .unwrap_or_else(|e| panic!("connect to the metrics of {netns} at {addr}: {e}"));
        conn.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .expect("read timeout");
        conn.write_all(b"GET /metrics HTTP/1.1\r\nhost: lab\r\n\r\n")
            .expect("send the request");
        let mut text = String::new();
        conn.read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("read the metrics of {netns}: {e}"));
        text
    });
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {text}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The UDP counters of a namespace (`/proc/net/snmp`, read from inside it) by name
/// (`InDatagrams`, `OutDatagrams`, `RcvbufErrors`...).
pub fn udp_snmp(netns: &str) -> std::collections::BTreeMap<String, u64> {
    let text = in_netns(netns, || {
        // /proc/net follows the main thread's namespace; thread-self follows ours.
        std::fs::read_to_string("/proc/thread-self/net/snmp")
            .expect("read /proc/thread-self/net/snmp")
    });
    let mut udp = text.lines().filter(|l| l.starts_with("Udp: "));
    let (names, values) = (udp.next(), udp.next());
    let (Some(names), Some(values)) = (names, values) else {
        panic!("no Udp lines in {netns}'s /proc/net/snmp:\n{text}");
    };
    names
        .split_whitespace()
        .skip(1)
        .zip(values.split_whitespace().skip(1))
        .filter_map(|(n, v)| Some((n.to_owned(), v.parse().ok()?)))
        .collect()
}

/// One ping from the lab namespace `ns` to `dst`, waiting up to 1 s for the answer.
pub fn ping_once(ns: &str, dst: std::net::Ipv4Addr) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "1", "-q"])
        .arg(dst.to_string())
        .output()
        .expect("run ping")
        .status
        .success()
}

/// A TCP echo of one message from `client_ns` to `dst:port`, served in `server_ns` on `port`.
pub fn tcp_echo_once(
    server_ns: &str,
    port: u16,
    client_ns: &str,
    dst: std::net::Ipv4Addr,
) -> Result<(), String> {
    use std::{
        io::{Read as _, Write as _},
        net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream},
        time::Duration,
    };
    let listener = in_netns(server_ns, || {
        TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
            .unwrap_or_else(|e| panic!("bind TCP {port} in {server_ns}: {e}"))
    });
    listener.set_nonblocking(true).expect("nonblocking");
    let server = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(4);
        while std::time::Instant::now() < deadline {
            if let Ok((mut conn, _)) = listener.accept() {
                conn.set_nonblocking(false).expect("blocking");
                conn.set_read_timeout(Some(Duration::from_secs(3))).ok();
                let mut buf = [0u8; 64];
                if let Ok(n) = conn.read(&mut buf) {
                    let _ = conn.write_all(&buf[..n]);
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let result = in_netns(client_ns, || -> Result<(), String> {
        let to = SocketAddrV4::new(dst, port).into();
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

/// Ping and a TCP echo across the 2-cluster lab's peering, both ways (`n1-a` of each cluster
/// to `n2-b` of the other, 10.1.2.11 from either side).
pub fn assert_traffic_across(when: &str) {
    let remote = std::net::Ipv4Addr::new(10, 1, 2, 11);
    for (from, to, port) in [
        ("cwlab-cl01-n1-a", "cwlab-cl02-n2-b", 7250),
        ("cwlab-cl02-n1-a", "cwlab-cl01-n2-b", 7251),
    ] {
        assert!(ping_once(from, remote), "{when}: ping {from} -> {to}");
        tcp_echo_once(to, port, from, remote)
            .unwrap_or_else(|e| panic!("{when}: TCP {from} -> {to}: {e}"));
    }
}

/// A UDP stream of numbered datagrams, sequence number `k` sent `k` ms after
/// [`UdpStream::started`], from `src_ns` to `dst:port` (received in `dst_ns`, 16 MiB buffer).
pub struct UdpStream {
    pub started: std::time::Instant,
    sender: std::thread::JoinHandle<u32>,
    receiver: std::thread::JoinHandle<Vec<u32>>,
}

/// What a [`UdpStream`] delivered.
#[derive(Debug)]
pub struct StreamResult {
    pub started: std::time::Instant,
    pub sent: u32,
    /// Sequence numbers not received, ascending.
    pub lost: Vec<u32>,
}

impl UdpStream {
    pub fn start(
        src_ns: &str,
        dst_ns: &str,
        dst: std::net::Ipv4Addr,
        port: u16,
        duration: std::time::Duration,
    ) -> Self {
        use std::{
            net::{Ipv4Addr, SocketAddrV4, UdpSocket},
            time::{Duration, Instant},
        };
        let socket = in_netns(dst_ns, || {
            UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
                .unwrap_or_else(|e| panic!("bind UDP {port} in {dst_ns}: {e}"))
        });
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBufForce, &(16 << 20))
            .expect("SO_RCVBUFFORCE");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let receiver = std::thread::spawn(move || {
            // Until the end marker, or 3 s after the stream's end (the marker may be lost).
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
        let socket = in_netns(src_ns, || {
            UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).expect("bind")
        });
        let started = Instant::now();
        let sender = std::thread::spawn(move || {
            let to = SocketAddrV4::new(dst, port);
            let mut seq = 0u32;
            while started.elapsed() < duration {
                let mut payload = [0u8; 32];
                payload[..4].copy_from_slice(&seq.to_be_bytes());
                let _ = socket.send_to(&payload, to);
                seq += 1;
                if let Some(wait) = (started + Duration::from_millis(u64::from(seq)))
                    .checked_duration_since(Instant::now())
                {
                    std::thread::sleep(wait);
                }
            }
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(50));
                let _ = socket.send_to(&u32::MAX.to_be_bytes(), to);
            }
            seq
        });
        Self {
            started,
            sender,
            receiver,
        }
    }

    pub fn finish(self) -> StreamResult {
        let sent = self.sender.join().expect("stream sender");
        let mut seen = self.receiver.join().expect("stream receiver");
        seen.sort_unstable();
        seen.dedup();
        let lost = (0..sent)
            .filter(|s| seen.binary_search(s).is_err())
            .collect();
        StreamResult {
            started: self.started,
            sent,
            lost,
        }
    }
}

impl StreamResult {
    /// Runs of consecutive lost sequence numbers, as (first, last).
    pub fn gaps(&self) -> Vec<(u32, u32)> {
        let mut gaps: Vec<(u32, u32)> = Vec::new();
        for &s in &self.lost {
            match gaps.last_mut() {
                Some((_, last)) if *last + 1 == s => *last = s,
                _ => gaps.push((s, s)),
            }
        }
        gaps
    }

    /// The longest run of lost datagrams, in ms (one datagram per ms).
    pub fn longest_gap_ms(&self) -> u32 {
        longest_run(&self.lost)
    }
}

/// The longest run of consecutive numbers in ascending `lost`: the outage in ms of a stream of
/// one datagram per ms.
pub fn longest_run(lost: &[u32]) -> u32 {
    let mut longest = 0;
    let mut run = 0;
    for (i, s) in lost.iter().enumerate() {
        run = if i > 0 && lost[i - 1] + 1 == *s {
            run + 1
        } else {
            1
        };
        longest = longest.max(run);
    }
    longest
}

/// The IPv4 routes of namespace `ns`, as `ip route show` prints them.
/// `ip route show` in `ns`, without the `nhid N` of routes through nexthop objects (the
/// daemons' routes with a gateway), so a line reads `PREFIX via GW dev DEV ...` either way.
pub fn routes(ns: &str) -> String {
    let out = Command::new("ip")
        .args(["-n", ns, "-4", "route", "show"])
        .output()
        .expect("ip route");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = String::new();
    for line in text.lines() {
        let mut words = line.split(' ').peekable();
        let mut kept = Vec::new();
        while let Some(word) = words.next() {
            if word == "nhid" && words.peek().is_some_and(|id| id.parse::<u32>().is_ok()) {
                words.next();
                continue;
            }
            kept.push(word);
        }
        lines.push_str(&kept.join(" "));
        lines.push('\n');
    }
    lines
}
