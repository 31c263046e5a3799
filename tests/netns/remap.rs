//! Two "clusters" whose pods have the *same* address (10.0.0.1), joined through clusterwire's
//! NAT programs on a veth that stands in for the tunnel. Each namespace is a cluster's pod and
//! gateway at once:
//!
//! ```text
//!  ns a: pod 10.0.0.1 (lo)                        ns b: pod 10.0.0.1 (lo)
//!        sees b's pods as 10.71.0.0/24                  sees a's pods as 10.72.0.0/24
//!        cw0 --------------- "tunnel" (veth) --------------- cw0
//!        egress:  cw_nat_to_tunnel  (DNAT 10.71.0.x -> 10.0.0.x, MSS clamp)
//!        ingress: cw_nat_from_tunnel (SNAT 10.0.0.x -> 10.71.0.x, anti-spoofing, MSS clamp)
//! ```
//!
//! Real kernel traffic (ICMP echo, a TCP stream, an ICMP port-unreachable error) must cross both
//! rewrites with checksums the receiving kernel accepts.
use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    path::PathBuf,
    process::Command,
    time::Duration,
};

use aya::programs::{TcAttachType, tc};
use clusterwire_common::{
    config::DatapathConfig,
    nat::{NAT_FROM_TUNNEL_PROGRAM, NAT_TO_TUNNEL_PROGRAM, REMAP_DST_MAP},
    stats::Event,
};
use clusterwire_dataplane::{Datapath, LoadOptions, RemapKind};
use clusterwire_tests::{
    netns::{NetNs, veth_pair},
    traffic::{pattern, tcp_send},
};
use ipnet::Ipv4Net;

const PEER: u32 = 7;
const TUNNEL_MTU: u32 = 1340;
const POD: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// How cluster a sees b's pods, and b sees a's.
const B_SEEN_FROM_A: Ipv4Addr = Ipv4Addr::new(10, 71, 0, 1);
const A_SEEN_FROM_B: Ipv4Addr = Ipv4Addr::new(10, 72, 0, 1);

/// Removes a test's pin root from bpffs when dropped.
struct PinRoot(PathBuf);

impl Drop for PinRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Cluster {
    ns: NetNs,
    datapath: Datapath,
}

fn net(s: &str) -> Ipv4Net {
    s.parse().expect("test CIDR")
}

/// Sets up one side: pod address, route to the peer's remapped CIDR through the tunnel, the
/// datapath with its remap tables, and both programs attached to `cw0`.
fn cluster(ns: NetNs, pins: &PinRoot, peer_mac: &str, remapped_peer: &str) -> Cluster {
    ns.ip(&["addr", "add", &format!("{POD}/32"), "dev", "lo"]);
    ns.ip(&["addr", "add", "169.254.0.1/32", "dev", "cw0"]);
    ns.ip(&[
        "neigh",
        "replace",
        "169.254.0.2",
        "lladdr",
        peer_mac,
        "dev",
        "cw0",
        "nud",
        "permanent",
    ]);
    ns.ip(&["route", "add", "169.254.0.2/32", "dev", "cw0"]);
    ns.ip(&[
        "route",
        "add",
        remapped_peer,
        "via",
        "169.254.0.2",
        "dev",
        "cw0",
        "src",
        &POD.to_string(),
    ]);
    let config = DatapathConfig {
        tunnel_mtu: TUNNEL_MTU,
        peer_id: PEER,
        ..DatapathConfig::zeroed()
    };
    let options = LoadOptions {
        instance: ns.name().to_owned(),
        pin: true,
        pin_root: pins.0.clone(),
        ..LoadOptions::pinned("")
    };
    let mut datapath = Datapath::load(&config, &options).expect("load the datapath");
    datapath
        .remap(RemapKind::Dst)
        .expect("dst table")
        .insert(PEER, net(remapped_peer), net("10.0.0.0/24"))
        .expect("dst remap");
    datapath
        .remap(RemapKind::Src)
        .expect("src table")
        .insert(PEER, net("10.0.0.0/24"), net(remapped_peer))
        .expect("src remap");
    ns.enter(|| {
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
    Cluster { ns, datapath }
}

fn two_clusters() -> (Cluster, Cluster, PinRoot) {
    let a = NetNs::new("a");
    // One pin root per pair of clusters: tests run in parallel and each removes its own.
    let pins = PinRoot(PathBuf::from(format!("/sys/fs/bpf/{}", a.name())));
    let b = NetNs::new("b");
    let (va, vb) = veth_pair(&a, "cw0", &b, "cw0");
    for ns in [&a, &b] {
        // Sources arrive already remapped and route back through the tunnel; keep strict
        // reverse-path filtering out of the picture.
        ns.sysctl("net.ipv4.conf.all.rp_filter", "0");
        ns.sysctl("net.ipv4.conf.cw0.rp_filter", "0");
    }
    let a = cluster(a, &pins, &vb.mac, "10.71.0.0/24");
    let b = cluster(b, &pins, &va.mac, "10.72.0.0/24");
    (a, b, pins)
}

/// Non-zero events and drops, for failure messages.
fn counters(c: &Cluster) -> String {
    let events = c.datapath.events().expect("events");
    let drops = c.datapath.drop_counts().expect("drops");
    let events = events
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(e, n)| format!("{}={n}", e.kind()));
    let drops = drops
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(d, n)| format!("drop {}={n}", d.kind()));
    events.chain(drops).collect::<Vec<_>>().join(" ")
}

fn event(c: &Cluster, e: Event) -> u64 {
    c.datapath.event_count(e).expect("read events")
}

#[test]
fn ping_crosses_both_remaps_between_clusters_with_the_same_pod_address() {
    let (a, b, _pins) = two_clusters();
    let ping = a.ns.exec(
        "ping",
        &[
            "-c",
            "3",
            "-i",
            "0.05",
            "-W",
            "2",
            &B_SEEN_FROM_A.to_string(),
        ],
    );
    assert!(
        ping.status.success(),
        "ping 10.71.0.1 from a failed:\n{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let out = String::from_utf8_lossy(&ping.stdout);
    assert!(
        out.contains("from 10.71.0.1"),
        "replies must come from the remapped address: {out}"
    );
    for (side, c) in [("a", &a), ("b", &b)] {
        assert_eq!(
            event(c, Event::NatDstRewritten),
            3,
            "{side}: one DNAT per packet sent"
        );
        assert_eq!(
            event(c, Event::NatSrcRewritten),
            3,
            "{side}: one SNAT per packet received"
        );
        let stats = c.datapath.peer_stats(PEER).expect("peer stats");
        assert_eq!(
            (stats.tx_packets, stats.rx_packets),
            (3, 3),
            "{side}: {stats:?}"
        );
    }
}

#[test]
fn tcp_stream_is_intact_sees_remapped_peers_and_gets_a_clamped_mss() {
    let (a, b, _pins) = two_clusters();
    let payload = pattern(4 << 20);
    let run = tcp_send(
        &b.ns,
        SocketAddrV4::new(POD, 5201),
        &a.ns,
        SocketAddrV4::new(B_SEEN_FROM_A, 5201),
        payload.clone(),
    );
    assert_eq!(
        run.server_saw.ip().to_string(),
        A_SEEN_FROM_B.to_string(),
        "b sees a remapped"
    );
    assert!(
        run.received == payload,
        "the stream arrived altered ({} bytes)",
        run.received.len()
    );
    // The SYN-ACK's MSS was clamped to 1340 - 40 = 1300 on b's way into the tunnel; without
    // clamping a's socket would use 1448 (1500 - 40 - 12 bytes of timestamps).
    assert!(
        run.client_mss <= 1300,
        "a's MSS is {}, the SYN-ACK was not clamped",
        run.client_mss
    );
    assert!(event(&a, Event::MssClamped) >= 1 && event(&b, Event::MssClamped) >= 1);
}

#[test]
fn icmp_port_unreachable_reaches_the_sender_through_both_remaps() {
    let (a, b, _pins) = two_clusters();
    let err = a.ns.enter(|| {
        let socket = UdpSocket::bind(SocketAddrV4::new(POD, 0)).expect("bind in a");
        socket
            .connect(SocketAddrV4::new(B_SEEN_FROM_A, 9))
            .expect("connect");
        socket
            .set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        socket.send(b"anyone?").expect("send");
        socket
            .recv(&mut [0u8; 16])
            .expect_err("nothing listens on b:9")
    });
    // The kernel reports ECONNREFUSED only if the ICMP error's embedded header matches the
    // socket: a -> 10.71.0.1:9, so the embedded destination must have been rewritten back.
    assert_eq!(
        err.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "got {err}; a: {}; b: {}",
        counters(&a),
        counters(&b)
    );
    assert_eq!(
        event(&b, Event::IcmpInnerRewritten),
        1,
        "b rewrote the error's embedded source"
    );
    assert_eq!(
        event(&a, Event::IcmpInnerRewritten),
        1,
        "a rewrote the error's embedded destination"
    );
}

#[test]
fn host_tool_bpftool_reads_pinned_tables() {
    let (a, _b, pins) = two_clusters();
    let pin = pins.0.join(a.ns.name()).join(REMAP_DST_MAP);
    let out = Command::new("bpftool")
        .args(["map", "dump", "pinned"])
        .arg(&pin)
        .output()
        .expect("bpftool is installed by cargo xtask setup");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bpftool map dump pinned {}: {:?}",
        pin.display(),
        out
    );
    for field in [
        "\"peer_id\": 7",
        "\"addr_be\"",
        "\"prefix_be\"",
        "\"prefix_len\": 24",
    ] {
        assert!(
            text.contains(field),
            "BTF pretty-print lacks {field}:\n{text}"
        );
    }
}
