//! The internal network with eBPF-native Geneve and real traffic: a node's pod reaches a host
//! behind the gateway through `cw_geneve_encap`/`cw_geneve_decap` on both underlay ends, and
//! the gateway forwards the decapsulated packets on.
//!
//! ```text
//!  node: pod 10.0.1.5 (lo)     gateway                     far: 10.70.3.9 (lo)
//!        n0 192.0.2.10 ===== g0 192.0.2.200   g1 172.31.0.1 ----- f0 172.31.0.2
//!        (Geneve, VNI 0x1234, UDP 6091, on both n0 and g0)
//! ```
use std::net::{Ipv4Addr, SocketAddrV4};

use clusterwire_common::{config::DatapathConfig, stats::Event};
use clusterwire_dataplane::{
    Datapath, LoadOptions,
    geneve::{self, Delivery, GeneveMaps, TunnelMode, TunnelRoute, Vni},
};
use clusterwire_tests::{
    netns::{NetNs, veth_pair},
    traffic::{pattern, tcp_send},
};

const NODE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
const POD: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);
const FAR: Ipv4Addr = Ipv4Addr::new(10, 70, 3, 9);

struct End {
    datapath: Datapath,
    _maps: GeneveMaps,
}

/// Loads a datapath for `local`, tunnels `prefix/len` to `remote`, accepts `remote`'s frames,
/// and attaches both programs to `dev` inside `ns`.
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

/// The three namespaces, addressed and routed (see the module docs).
fn topology() -> (NetNs, NetNs, NetNs) {
    let node = NetNs::new("gnode");
    let gw = NetNs::new("ggw");
    let far = NetNs::new("gfar");
    veth_pair(&node, "n0", &gw, "g0");
    veth_pair(&gw, "g1", &far, "f0");
    node.ip(&["addr", "add", "192.0.2.10/24", "dev", "n0"]);
    node.ip(&["addr", "add", "10.0.1.5/32", "dev", "lo"]);
    gw.ip(&["addr", "add", "192.0.2.200/24", "dev", "g0"]);
    gw.ip(&["addr", "add", "172.31.0.1/30", "dev", "g1"]);
    far.ip(&["addr", "add", "172.31.0.2/30", "dev", "f0"]);
    far.ip(&["addr", "add", "10.70.3.9/32", "dev", "lo"]);
    far.ip(&["route", "add", "default", "via", "172.31.0.1"]);
    gw.ip(&["route", "add", "10.70.3.9/32", "via", "172.31.0.2"]);
    // Inner packets plus 50 bytes of encapsulation fit the 1500-byte underlay.
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
    gw.ip(&[
        "route",
        "add",
        "10.0.1.0/24",
        "via",
        "192.0.2.10",
        "dev",
        "g0",
        "mtu",
        "1450",
    ]);
    gw.sysctl("net.ipv4.ip_forward", "1");
    for ns in [&node, &gw, &far] {
        ns.sysctl("net.ipv4.conf.all.rp_filter", "0");
        ns.sysctl("net.ipv4.conf.default.rp_filter", "0");
    }
    (node, gw, far)
}

#[test]
fn pod_traffic_crosses_native_geneve_to_the_gateway_and_back() {
    let (node, gw, far) = topology();
    let node_end = end(
        &node,
        "n0",
        NODE,
        GATEWAY,
        (Ipv4Addr::new(10, 70, 0, 0), 16),
    );
    let gw_end = end(&gw, "g0", GATEWAY, NODE, (Ipv4Addr::new(10, 0, 1, 0), 24));

    let ping = node.exec(
        "ping",
        &[
            "-c",
            "3",
            "-i",
            "0.05",
            "-W",
            "2",
            "-I",
            "10.0.1.5",
            "10.70.3.9",
        ],
    );
    assert!(
        ping.status.success(),
        "ping over Geneve failed:\n{}",
        String::from_utf8_lossy(&ping.stdout)
    );

    let payload = pattern(8 << 20);
    let run = tcp_send(
        &far,
        SocketAddrV4::new(FAR, 5201),
        &node,
        SocketAddrV4::new(FAR, 5201),
        payload.clone(),
    );
    assert_eq!(
        run.server_saw.ip().to_string(),
        POD.to_string(),
        "no NAT on the internal network"
    );
    assert!(
        run.received == payload,
        "the stream arrived altered ({} bytes)",
        run.received.len()
    );

    for (side, e) in [("node", &node_end), ("gateway", &gw_end)] {
        let encap = e.datapath.event_count(Event::GeneveEncap).expect("events");
        let decap = e.datapath.event_count(Event::GeneveDecap).expect("events");
        assert!(
            encap >= 3 && decap >= 3,
            "{side}: encap {encap}, decap {decap}"
        );
        let drops: Vec<_> = e
            .datapath
            .drop_counts()
            .expect("drops")
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
        assert!(drops.is_empty(), "{side} dropped: {drops:?}");
    }
}
