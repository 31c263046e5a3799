//! Wire compatibility of clusterwire's Geneve with the Linux geneve driver, both ways, on a real
//! kernel (the VM tier's 6.1 and 6.12):
//!
//! - eBPF-native encapsulation (`cw_geneve_encap`, native mode) is received by a kernel
//!   point-to-point geneve device;
//! - the redirect mode (`cw_geneve_encap` sets the tunnel key and redirects into a kernel
//!   `collect_md` geneve device, which encapsulates) is received by eBPF decapsulation
//!   (`cw_geneve_decap`).
//!
//! Two namespaces joined by a veth underlay 10.200.0.1 (a) <-> 10.200.0.2 (b); a UDP datagram is
//! the inner payload and must arrive byte-identical.
use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    num::NonZeroU32,
    time::{Duration, Instant},
};

use clusterwire_common::{config::DatapathConfig, stats::Event};
use clusterwire_dataplane::{
    Datapath, LoadOptions,
    geneve::{self, Delivery, GeneveMaps, TunnelMode, TunnelRoute, Vni},
};
use clusterwire_tests::netns::{NetNs, veth_pair};

const A: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);
const PORT: u16 = 6091;

fn underlay() -> (NetNs, NetNs, String) {
    let a = NetNs::new("ga");
    let b = NetNs::new("gb");
    let (_, vb) = veth_pair(&a, "u0", &b, "u0");
    a.ip(&["addr", "add", "10.200.0.1/24", "dev", "u0"]);
    b.ip(&["addr", "add", "10.200.0.2/24", "dev", "u0"]);
    for ns in [&a, &b] {
        ns.sysctl("net.ipv4.conf.all.rp_filter", "0");
        ns.sysctl("net.ipv4.conf.default.rp_filter", "0");
    }
    (a, b, vb.mac)
}

fn datapath(local: Ipv4Addr) -> (Datapath, GeneveMaps) {
    let config = DatapathConfig {
        local_ipv4_be: u32::from_ne_bytes(local.octets()),
        geneve_port: PORT,
        ..DatapathConfig::zeroed()
    };
    let mut datapath = Datapath::load(&config, &LoadOptions::unpinned()).expect("load datapath");
    let maps = GeneveMaps::take(datapath.ebpf_mut()).expect("geneve maps");
    (datapath, maps)
}

fn ifindex(ns: &NetNs, name: &str) -> NonZeroU32 {
    let name = name.to_owned();
    ns.enter(move || {
        let index = nix::net::if_::if_nametoindex(name.as_str()).expect("if_nametoindex");
        NonZeroU32::new(index).expect("non-zero ifindex")
    })
}

fn mac(ns: &NetNs, name: &str) -> String {
    let out = ns.ip(&["-br", "link", "show", name]);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(2)
        .expect("MAC in ip -br link")
        .to_owned()
}

/// Sends `payload` from namespace `from` to `to` every 200 ms until `to` has it (or 5 s pass),
/// and asserts that it arrived unchanged.
fn assert_delivered(from: &NetNs, to: &NetNs, dst: SocketAddrV4, payload: &'static [u8]) {
    let got = deliver(from, to, dst, payload);
    assert_eq!(
        got.as_deref(),
        Some(payload),
        "{dst} in {} got nothing (or other bytes)",
        to.name()
    );
}

fn deliver(from: &NetNs, to: &NetNs, dst: SocketAddrV4, payload: &'static [u8]) -> Option<Vec<u8>> {
    let receiver = to.enter(|| UdpSocket::bind(dst).expect("bind receiver"));
    receiver
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let sender = from.enter(|| UdpSocket::bind("0.0.0.0:0").expect("bind sender"));
    let started = Instant::now();
    let mut buf = [0u8; 2048];
    while started.elapsed() < Duration::from_secs(5) {
        sender.send_to(payload, dst).expect("send");
        if let Ok(n) = receiver.recv(&mut buf) {
            return Some(buf[..n].to_vec());
        }
    }
    None
}

#[test]
fn native_ebpf_encapsulation_is_received_by_the_kernel_geneve_driver() {
    let (a, b, _) = underlay();
    // b: a kernel point-to-point geneve device for VNI 42 from a.
    b.ip(&[
        "link",
        "add",
        "gnv0",
        "type",
        "geneve",
        "id",
        "42",
        "remote",
        "10.200.0.1",
        "dstport",
        "6091",
    ]);
    b.ip(&["addr", "add", "10.99.0.2/24", "dev", "gnv0"]);
    b.ip(&["link", "set", "gnv0", "up"]);
    // a: the inner frame is addressed to b's geneve device, on a's underlay; our program
    // encapsulates it there and sends it to b through the neighbour table.
    let gnv_mac = mac(&b, "gnv0");
    a.ip(&[
        "neigh",
        "replace",
        "10.99.0.2",
        "lladdr",
        &gnv_mac,
        "dev",
        "u0",
        "nud",
        "permanent",
    ]);
    a.ip(&[
        "route",
        "add",
        "10.99.0.0/24",
        "dev",
        "u0",
        "src",
        "10.200.0.1",
    ]);
    let (mut dp, mut maps) = datapath(A);
    let route = TunnelRoute {
        remote: B,
        vni: Vni::try_new(42).expect("vni"),
        mode: TunnelMode::Native {
            egress_ifindex: Some(ifindex(&a, "u0")),
        },
    };
    maps.set_route(Ipv4Addr::new(10, 99, 0, 0), 24, route)
        .expect("route");
    a.enter(|| geneve::attach_encap(&mut dp, "u0").expect("attach encap"));

    assert_delivered(
        &a,
        &b,
        SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 2), 7777),
        b"native->kernel",
    );
    assert!(dp.event_count(Event::GeneveEncap).expect("events") >= 1);
}

#[test]
fn kernel_collect_md_encapsulation_is_accepted_by_ebpf_decapsulation() {
    let (a, b, b_mac) = underlay();
    // a: a collect_md geneve device; our program sets the tunnel key and redirects into it.
    a.ip(&[
        "link", "add", "gnv-ext", "type", "geneve", "external", "dstport", "6091",
    ]);
    a.ip(&["link", "set", "gnv-ext", "up"]);
    a.ip(&[
        "neigh",
        "replace",
        "10.98.0.2",
        "lladdr",
        &b_mac,
        "dev",
        "u0",
        "nud",
        "permanent",
    ]);
    a.ip(&[
        "route",
        "add",
        "10.98.0.0/24",
        "dev",
        "u0",
        "src",
        "10.200.0.1",
    ]);
    let (mut adp, mut amaps) = datapath(A);
    let vni = Vni::try_new(43).expect("vni");
    let route = TunnelRoute::via_collect_md_device(B, vni, ifindex(&a, "gnv-ext"));
    amaps
        .set_route(Ipv4Addr::new(10, 98, 0, 0), 24, route)
        .expect("route");
    a.enter(|| geneve::attach_encap(&mut adp, "u0").expect("attach encap"));
    // b: the inner destination is local; our program strips the kernel's encapsulation.
    b.ip(&["addr", "add", "10.98.0.2/32", "dev", "lo"]);
    let (mut bdp, mut bmaps) = datapath(B);
    bmaps.allow_peer(A, vni, Delivery::InPlace).expect("peer");
    b.enter(|| geneve::attach_decap(&mut bdp, "u0").expect("attach decap"));

    assert_delivered(
        &a,
        &b,
        SocketAddrV4::new(Ipv4Addr::new(10, 98, 0, 2), 7777),
        b"kernel->ebpf",
    );
    assert!(adp.event_count(Event::GeneveRedirect).expect("events") >= 1);
    assert!(bdp.event_count(Event::GeneveDecap).expect("events") >= 1);
}
