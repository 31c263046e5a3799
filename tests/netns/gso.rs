//! UDP GSO through eBPF-native Geneve: a node's pod sends numbered datagrams with
//! `UDP_SEGMENT` (QUIC-style super-packets, one `send` = 16 datagrams) across `cw_geneve_encap`
//! on the node's underlay link; every datagram must arrive, intact and at its segment size, at
//! the gateway (decapsulated by `cw_geneve_decap`). Before `BPF_F_ADJ_ROOM_FIXED_GSO`, the
//! kernel refused to encapsulate UDP GSO skbs and every one of them was lost.
//!
//! The underlay link is a veth, which would carry the encapsulated super-packet across
//! unsegmented (it offers every GSO feature) and hand the gateway an aggregate no real wire
//! carries. A `tbf` root qdisc on `n0` (after the clsact egress hook, so after our
//! encapsulation) segments GSO packets larger than its burst in software, as a NIC does on
//! transmit, so the gateway sees one Geneve packet per datagram, as from a real network.
//!
//! ```text
//!  node: pod 10.0.1.5 (lo)                       gateway: 10.70.3.9 (lo), UDP 5300
//!        n0 192.0.2.10 ========================= g0 192.0.2.200
//!        (Geneve, VNI 0x1234, UDP 6091, encap + decap on both n0 and g0)
//! ```
use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use clusterwire_common::{config::DatapathConfig, stats::Event};
use clusterwire_dataplane::{
    Datapath, LoadOptions,
    geneve::{self, Delivery, GeneveMaps, TunnelMode, TunnelRoute, Vni},
};
use clusterwire_tests::netns::{NetNs, veth_pair};

const NODE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
const POD: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);
const FAR: Ipv4Addr = Ipv4Addr::new(10, 70, 3, 9);
const PORT: u16 = 5300;
/// `UDP_SEGMENT` (linux/udp.h), at level `SOL_UDP`.
const UDP_SEGMENT: libc::c_int = 103;
/// Datagram payload size: 28 bytes of headers + 1400 fit the route's 1450-byte MTU, and the
/// encapsulated datagram (+ 50) the 1500-byte underlay.
const SEGMENT: usize = 1400;
/// Datagrams per `send`.
const PER_SEND: usize = 16;
/// `send` calls.
const SENDS: usize = 40;

struct End {
    datapath: Datapath,
    _maps: GeneveMaps,
}

/// Loads a datapath for `local`, tunnels `prefix/len` natively to `remote`, accepts `remote`'s
/// frames in place, and attaches both programs to `dev` inside `ns`.
fn end(ns: &NetNs, dev: &str, local: Ipv4Addr, remote: Ipv4Addr, prefix: (Ipv4Addr, u8)) -> End {
    let config = DatapathConfig {
        local_ipv4_be: u32::from_ne_bytes(local.octets()),
        geneve_port: 6091,
        ..DatapathConfig::zeroed()
    };
    let mut datapath = Datapath::load(&config, &LoadOptions::unpinned()).expect("load");
    let mut maps = GeneveMaps::take(datapath.ebpf_mut()).expect("geneve maps");
    let vni = Vni::try_new(0x1234).expect("vni");
    let route = TunnelRoute {
        remote,
        vni,
        mode: TunnelMode::Native {
            egress_ifindex: None,
        },
    };
    maps.set_route(prefix.0, prefix.1, route).expect("route");
    maps.allow_peer(remote, vni, Delivery::InPlace)
        .expect("peer");
    ns.enter(|| {
        geneve::attach_encap(&mut datapath, dev).expect("attach encap");
        geneve::attach_decap(&mut datapath, dev).expect("attach decap");
    });
    End {
        datapath,
        _maps: maps,
    }
}

/// Sets an integer socket option, panicking with the OS error.
fn setsockopt(socket: &UdpSocket, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: a valid socket descriptor and a live c_int of the size passed.
    let ret = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            libc::socklen_t::try_from(size_of::<libc::c_int>()).expect("4"),
        )
    };
    assert_eq!(
        ret,
        0,
        "setsockopt({level}, {name}): {}",
        std::io::Error::last_os_error()
    );
}

/// The payload of datagram `seq`: its number, then a pattern that depends on it.
fn datagram(seq: u32) -> Vec<u8> {
    let mut d = seq.to_be_bytes().to_vec();
    #[expect(clippy::cast_possible_truncation, reason = "a byte pattern")]
    d.extend((4..SEGMENT).map(|i| (i as u32 ^ seq) as u8));
    d
}

/// The two namespaces, addressed and routed, with the segmenting qdisc (see the module docs).
fn topology() -> (NetNs, NetNs) {
    let node = NetNs::new("unode");
    let gw = NetNs::new("ugw");
    veth_pair(&node, "n0", &gw, "g0");
    node.ip(&["addr", "add", "192.0.2.10/24", "dev", "n0"]);
    node.ip(&["addr", "add", "10.0.1.5/32", "dev", "lo"]);
    gw.ip(&["addr", "add", "192.0.2.200/24", "dev", "g0"]);
    gw.ip(&["addr", "add", "10.70.3.9/32", "dev", "lo"]);
    node.ip(&[
        "route",
        "add",
        "10.70.0.0/16",
        "via",
        "192.0.2.200",
        "dev",
        "n0",
        "mtu",
        "1450",
        "src",
        "10.0.1.5",
    ]);
    // Segment GSO packets on n0's transmit, as a wire does (see the module docs).
    let tbf = std::process::Command::new("tc")
        .args([
            "-n",
            node.name(),
            "qdisc",
            "add",
            "dev",
            "n0",
            "root",
            "tbf",
        ])
        .args(["rate", "1gbit", "burst", "4000", "latency", "200ms"])
        .output()
        .expect("run tc");
    assert!(
        tbf.status.success(),
        "tc qdisc add tbf: {}",
        String::from_utf8_lossy(&tbf.stderr)
    );
    for ns in [&node, &gw] {
        ns.sysctl("net.ipv4.conf.all.rp_filter", "0");
        ns.sysctl("net.ipv4.conf.default.rp_filter", "0");
    }
    (node, gw)
}

/// Sends every datagram from the pod, `PER_SEND` per `send` with `UDP_SEGMENT`.
fn send_all(node: &NetNs) {
    node.enter(|| {
        let s = UdpSocket::bind(SocketAddrV4::new(POD, 0)).expect("bind the sender");
        s.connect(SocketAddrV4::new(FAR, PORT)).expect("connect");
        setsockopt(
            &s,
            libc::SOL_UDP,
            UDP_SEGMENT,
            libc::c_int::try_from(SEGMENT).expect("fits"),
        );
        for send in 0..SENDS {
            let first = u32::try_from(send * PER_SEND).expect("fits");
            let buf: Vec<u8> = (first..first + u32::try_from(PER_SEND).expect("fits"))
                .flat_map(datagram)
                .collect();
            let n = s.send(&buf).expect("send a UDP GSO super-packet");
            assert_eq!(n, buf.len());
            std::thread::sleep(Duration::from_millis(2));
        }
    });
}

/// Receives until every datagram was seen or 5 s passed; which ones arrived. Each must be one
/// whole segment with its exact bytes.
fn receive_all(receiver: &UdpSocket, total: usize) -> Vec<bool> {
    let mut seen = vec![false; total];
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.iter().any(|s| !s) && Instant::now() < deadline {
        let Ok(n) = receiver.recv(&mut buf) else {
            continue;
        };
        let seq = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes"));
        assert!((seq as usize) < total, "unknown datagram {seq}");
        assert_eq!(n, SEGMENT, "datagram {seq}: one segment per datagram");
        assert!(buf[..n] == datagram(seq), "datagram {seq} arrived altered");
        seen[seq as usize] = true;
    }
    seen
}

/// The non-zero drop counters of `end`, as `reason=n`.
fn drops(end: &End) -> Vec<String> {
    end.datapath
        .drop_counts()
        .expect("drops")
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{}={n}", r.kind()))
        .collect()
}

#[test]
fn udp_gso_datagrams_all_cross_native_geneve() {
    let (node, gw) = topology();
    let node_end = end(
        &node,
        "n0",
        NODE,
        GATEWAY,
        (Ipv4Addr::new(10, 70, 0, 0), 16),
    );
    let gw_end = end(&gw, "g0", GATEWAY, NODE, (Ipv4Addr::new(10, 0, 1, 0), 24));
    let receiver = gw.enter(|| {
        let s = UdpSocket::bind(SocketAddrV4::new(FAR, PORT)).expect("bind the receiver");
        setsockopt(&s, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 16 << 20);
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        s
    });
    let total = SENDS * PER_SEND;
    send_all(&node);
    let seen = receive_all(&receiver, total);

    let missing: Vec<_> = (0..total).filter(|&i| !seen[i]).collect();
    let encap = node_end
        .datapath
        .event_count(Event::GeneveEncap)
        .expect("events");
    let decap = gw_end
        .datapath
        .event_count(Event::GeneveDecap)
        .expect("events");
    let (node_drops, gw_drops) = (drops(&node_end), drops(&gw_end));
    assert!(
        missing.is_empty(),
        "{} of {total} datagrams missing (first {:?}); node encapsulations {encap}, node drops \
         [{}]; gateway decapsulations {decap}, gateway drops [{}]",
        missing.len(),
        &missing[..missing.len().min(8)],
        node_drops.join(" "),
        gw_drops.join(" ")
    );
    assert!(node_drops.is_empty(), "node dropped: {node_drops:?}");
    assert!(gw_drops.is_empty(), "gateway dropped: {gw_drops:?}");
    assert!(
        encap < u64::try_from(total).expect("fits"),
        "{encap} encapsulations for {total} datagrams: the sender did not use GSO"
    );
    assert!(decap >= encap, "gateway decapsulated {decap}");
}
