//! The local lab (`cwctl lab`), run as the user runs it: the `cwctl` binary.
//!
//! `cwctl` is a binary of another package (`clusterwire-cli`), so `CARGO_BIN_EXE_cwctl` is not
//! available here; the tests run the `cwctl` that sits next to this test binary's `deps/`
//! directory (`target/debug/cwctl`, built by `cargo build -p clusterwire-cli` or by the host
//! tier), or the one named by the `CWCTL` environment variable. A missing binary fails the test
//! with that instruction.
//!
//! The lab has fixed names (`cwlab-*` namespaces, `/run/clusterwire-lab`), so these tests run
//! one at a time (a lock) and refuse to start when a lab is already up on the host. A guard runs
//! `cwctl lab down` when a test ends, also on panic.

use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    path::Path,
    sync::mpsc,
    time::Duration,
};

use nix::sched::{CloneFlags, setns};

use crate::lab_kit::{
    Lab, STATE_DIR, agent_geneve, gateway_rows, in_netns, kernel_drivers, lab, lab_namespaces,
    lab_ok, text,
};

/// A UDP server in `ns` on `port` answering one datagram with the source address it saw.
fn udp_reporter(ns: &str, port: u16) -> std::thread::JoinHandle<()> {
    let path = format!("/run/netns/{ns}");
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
        let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
            .unwrap_or_else(|e| panic!("bind UDP {port} in {path}: {e}"));
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        ready_tx.send(()).expect("ready");
        let mut buf = [0u8; 256];
        if let Ok((_, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(from.ip().to_string().as_bytes(), from);
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("UDP reporter started");
    handle
}

/// Sends a datagram from `ns` to `dst` (3 tries); returns the source address the server saw.
fn udp_seen_as(ns: &str, dst: SocketAddrV4) -> Ipv4Addr {
    in_netns(ns, || {
        let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        let mut buf = [0u8; 256];
        for _ in 0..3 {
            socket.send_to(b"who am i", dst).expect("send");
            if let Ok((n, _)) = socket.recv_from(&mut buf) {
                let seen = String::from_utf8_lossy(&buf[..n]).into_owned();
                return seen
                    .parse()
                    .unwrap_or_else(|e| panic!("bad answer {seen:?}: {e}"));
            }
        }
        panic!("no answer from {dst} to {ns} in 3 tries");
    })
}

fn udp_check(server_ns: &str, port: u16, client_ns: &str, dst: SocketAddrV4) -> Ipv4Addr {
    let server = udp_reporter(server_ns, port);
    let seen = udp_seen_as(client_ns, dst);
    server.join().expect("UDP reporter");
    seen
}

#[test]
fn lab_topology_without_daemons_and_down_leaves_nothing() {
    let guard = Lab::claim();
    let up = lab_ok(&["up", "--no-daemons", "--clusters", "3"]);
    assert!(up.contains("topology up without daemons"), "{up}");

    // A second `up` refuses and says how to clean up.
    let again = lab(&["up", "--no-daemons"]);
    assert!(!again.status.success());
    assert!(text(&again).contains("cwctl lab down"), "{}", text(&again));

    // Pod to pod within each cluster, across nodes too, by cwctl's own probes (ping, TCP,
    // UDP, 10 MB, port unreachable, TTL probe, host network).
    let matrix = lab_ok(&["test", "--within-clusters"]);
    assert!(matrix.contains("all 48 checks passed"), "{matrix}");
    assert!(
        matrix.contains("10.0.1.1 > 172.31.1.12 > 10.0.2.11*"),
        "the TTL probe crosses node n1 then n2:\n{matrix}"
    );

    // Across nodes with our own sockets: no masquerade inside the cluster.
    let seen = udp_check(
        "cwlab-cl01-n2-b",
        7100,
        "cwlab-cl01-n1-a",
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 11), 7100),
    );
    assert_eq!(seen, Ipv4Addr::new(10, 0, 1, 10));

    // Pod to the WAN: masqueraded to the node's WAN address (cl02-n2 is 198.18.0.22).
    let seen = udp_check(
        "cwlab-wan",
        7101,
        "cwlab-cl02-n2-a",
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 7101),
    );
    assert_eq!(seen, Ipv4Addr::new(198, 18, 0, 22));

    // Every client gateway pod reaches its server's NodePort through the WAN (the ring:
    // cl01 serves cl02, cl02 serves cl03, cl03 serves cl01); the server sees the client's
    // node WAN address (masqueraded on the way out).
    for (client_ns, server_ns, server_wan, client_wan) in [
        (
            "cwlab-cl02-gw-cl01",
            "cwlab-cl01-gw-cl02",
            [198, 18, 0, 11],
            [198, 18, 0, 21],
        ),
        (
            "cwlab-cl03-gw-cl02",
            "cwlab-cl02-gw-cl03",
            [198, 18, 0, 22],
            [198, 18, 0, 32],
        ),
        (
            "cwlab-cl01-gw-cl03",
            "cwlab-cl03-gw-cl01",
            [198, 18, 0, 31],
            [198, 18, 0, 12],
        ),
    ] {
        let seen = udp_check(
            server_ns,
            51840,
            client_ns,
            SocketAddrV4::new(Ipv4Addr::from(server_wan), 31840),
        );
        assert_eq!(
            seen,
            Ipv4Addr::from(client_wan),
            "{client_ns} -> {server_ns}"
        );
    }

    // Manifests and keys where the daemons will read them.
    let manifests = Path::new(STATE_DIR).join("clusters/cl01/manifests");
    for file in ["nodes.yaml", "tenant-cl02.yaml", "tenant-cl03.yaml"] {
        assert!(manifests.join(file).is_file(), "{file}");
    }
    let status = lab_ok(&["status", "-o", "json"]);
    assert_eq!(status.matches("\"seen_from\"").count(), 12, "{status}");

    // `exec` runs inside the pod.
    let exec = lab_ok(&[
        "exec",
        "cl03/n2-b",
        "--",
        "ip",
        "-4",
        "-br",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(exec.contains("10.0.2.11/32"), "{exec}");

    // After a crash (state directory lost), `down` still removes every namespace.
    std::fs::remove_dir_all(STATE_DIR).expect("drop the state directory");
    let down = lab_ok(&["down"]);
    assert!(down.contains("removed namespace cwlab-wan"), "{down}");
    assert_eq!(lab_namespaces(), Vec::<String>::new());
    assert!(!Path::new(STATE_DIR).exists());
    // Idempotent.
    assert!(lab_ok(&["down"]).contains("nothing to remove"));
    drop(guard);
}

/// `up`, `test` and `down` with the real daemons, as a user runs them; `check` looks at the
/// output of `up` while the lab is still up.
fn end_to_end(up_args: &[&str], check: impl FnOnce(&str)) {
    let guard = Lab::claim();
    let up = lab_ok(up_args);
    assert!(up.contains("lab up in"), "{up}");
    check(&up);
    let matrix = lab_ok(&["test"]);
    // Shown with `--show-output` (the VM tier uses it): up time, RTTs and throughput per run.
    println!("{up}\n{matrix}");
    assert!(matrix.contains("checks passed"), "{matrix}");
    let status = lab_ok(&["status"]);
    assert!(
        !status.contains("Connecting") && !status.contains("Error"),
        "{status}"
    );
    lab_ok(&["down"]);
    assert_eq!(lab_namespaces(), Vec::<String>::new());
    assert!(!Path::new(STATE_DIR).exists());
    let pins: Vec<String> = std::fs::read_dir("/sys/fs/bpf/clusterwire")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("cwlab-"))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(pins, Vec::<String>::new(), "bpffs instances left behind");
    drop(guard);
}

#[test]
fn lab_up_test_down_end_to_end() {
    end_to_end(&["up"], |_| {});
}

#[test]
fn lab_up_test_down_end_to_end_three_clusters() {
    end_to_end(&["up", "--clusters", "3"], |_| {});
}

/// The lab with the kernel's WireGuard and Geneve drivers (the VM tier's kernels), three
/// clusters (every cluster server toward one peer and client toward the other; the two-cluster
/// lab with a kernel side is `lab_mixed_implementations_end_to_end`).
#[test]
fn lab_kernel_drivers_end_to_end() {
    if !kernel_drivers("lab_kernel_drivers_end_to_end") {
        return;
    }
    let args = [
        "up",
        "--clusters",
        "3",
        "--wireguard",
        "kernel",
        "--geneve",
        "kernel",
        "--timeout",
        "300",
    ];
    end_to_end(&args, |up| {
        let rows = gateway_rows(up);
        assert_eq!(rows.len(), 6, "{up}");
        for (cluster, tunnel, geneve, connection) in rows {
            assert_eq!(
                (tunnel.as_str(), geneve.as_str(), connection.as_str()),
                ("kernel", "kernel", "Connected"),
                "{cluster}: {up}"
            );
        }
        for node in ["cwlab-cl01-n1", "cwlab-cl02-n2", "cwlab-cl03-n1"] {
            assert_eq!(agent_geneve(node), "kernel", "{node}");
        }
    });
}

/// Kernel WireGuard against embedded userspace WireGuard, and in each cluster kernel Geneve on
/// one side and eBPF-native Geneve on the other (`up --mixed`).
#[test]
fn lab_mixed_implementations_end_to_end() {
    if !kernel_drivers("lab_mixed_implementations_end_to_end") {
        return;
    }
    end_to_end(&["up", "--mixed", "--timeout", "300"], |up| {
        let rows: Vec<_> = gateway_rows(up)
            .into_iter()
            .map(|(cluster, tunnel, geneve, connection)| {
                format!("{cluster} {tunnel} {geneve} {connection}")
            })
            .collect();
        assert_eq!(
            rows,
            [
                "cl01 kernel ebpf Connected",
                "cl02 userspace kernel Connected"
            ],
            "{up}"
        );
        assert_eq!(agent_geneve("cwlab-cl01-n1"), "kernel");
        assert_eq!(agent_geneve("cwlab-cl02-n1"), "ebpf");
    });
}
