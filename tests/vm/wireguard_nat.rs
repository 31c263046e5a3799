//! The remap NAT across a real kernel WireGuard pair: the programs run on the L3 `liqo-tunnel`
//! devices (no Ethernet header; the instance learns that from the device) of two "clusters"
//! whose pods have the same address.
//!
//! ```text
//!  ns a: pod 10.0.0.1 (lo), sees b's pods as 10.71.0.0/24     ns b: pod 10.0.0.1, sees a as 10.72.0.0/24
//!        liqo-tunnel 169.254.18.1/30 ==== WireGuard over veth 192.0.2.1/30 <-> .2 ==== liqo-tunnel .2/30
//! ```
use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket},
    path::{Path, PathBuf},
    time::Duration,
};

use clusterwire_dataplane::{Hook, Instance, InstanceSpec, NatTables, RemapKind};
use clusterwire_tests::{
    netns::{NetNs, veth_pair},
    traffic::{pattern, tcp_send},
};
use ipnet::Ipv4Net;
use wireguard_control::{Backend, DeviceUpdate, InterfaceName, Key, PeerConfigBuilder};

const POD: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PORT: u16 = 51840;

struct Side {
    ns: NetNs,
    instance: Instance,
    _tables: NatTables,
}

fn net(s: &str) -> Ipv4Net {
    s.parse().expect("test CIDR")
}

/// One gateway: WireGuard to the peer, the pod address, the route to the peer's remapped pods,
/// and the NAT instance on the tunnel.
#[expect(clippy::too_many_arguments, reason = "one call per side, all literal")]
fn side(
    ns: NetNs,
    pins: &Path,
    key: &Key,
    peer_key: &Key,
    underlay: &str,
    peer_underlay: Ipv4Addr,
    tunnel: &str,
    remapped_peer: &str,
) -> Side {
    ns.ip(&["addr", "add", underlay, "dev", "wan"]);
    ns.ip(&["addr", "add", &format!("{POD}/32"), "dev", "lo"]);
    ns.sysctl("net.ipv4.conf.all.rp_filter", "0");
    let instance = ns.enter(|| {
        let name: InterfaceName = "liqo-tunnel".parse().expect("name");
        DeviceUpdate::new()
            .set_private_key(key.clone())
            .set_listen_port(PORT)
            .add_peer(
                PeerConfigBuilder::new(&peer_key.get_public())
                    .set_endpoint(SocketAddr::V4(SocketAddrV4::new(peer_underlay, PORT)))
                    .replace_allowed_ips()
                    .add_allowed_ip(Ipv4Addr::UNSPECIFIED.into(), 0),
            )
            .apply(&name, Backend::Kernel)
            .expect("kernel WireGuard device");
        ns.ip(&["link", "set", "liqo-tunnel", "mtu", "1340", "up"]);
        ns.ip(&["addr", "add", tunnel, "dev", "liqo-tunnel"]);
        ns.ip(&[
            "route",
            "add",
            remapped_peer,
            "dev",
            "liqo-tunnel",
            "src",
            &POD.to_string(),
        ]);
        let spec = InstanceSpec {
            tunnel_mtu: 1340,
            pin_root: pins.to_owned(),
            ..InstanceSpec::gateway(ns.name(), 7, "liqo-tunnel")
        };
        let mut instance = Instance::open(spec).expect("open the gateway instance");
        assert!(
            instance.datapath().config().l3_device(),
            "WireGuard is an L3 device"
        );
        instance
            .attach(Hook::TunnelNat, "liqo-tunnel")
            .expect("attach NAT to liqo-tunnel");
        instance
    });
    let mut instance = instance;
    let mut tables = NatTables::take(instance.datapath_mut()).expect("tables");
    tables
        .sync_remaps(
            RemapKind::Dst,
            &BTreeMap::from([(net(remapped_peer), net("10.0.0.0/24"))]),
        )
        .expect("dst");
    tables
        .sync_remaps(
            RemapKind::Src,
            &BTreeMap::from([(net("10.0.0.0/24"), net(remapped_peer))]),
        )
        .expect("src");
    Side {
        ns,
        instance,
        _tables: tables,
    }
}

#[test]
fn remap_nat_runs_on_kernel_wireguard_in_l3_mode() {
    let pins = PathBuf::from(format!("/sys/fs/bpf/cw-vm-wg-{}", std::process::id()));
    let a = NetNs::new("wga");
    let b = NetNs::new("wgb");
    veth_pair(&a, "wan", &b, "wan");
    let (ka, kb) = (Key::generate_private(), Key::generate_private());
    let a = side(
        a,
        &pins,
        &ka,
        &kb,
        "192.0.2.1/30",
        Ipv4Addr::new(192, 0, 2, 2),
        "169.254.18.1/30",
        "10.71.0.0/24",
    );
    let b = side(
        b,
        &pins,
        &kb,
        &ka,
        "192.0.2.2/30",
        Ipv4Addr::new(192, 0, 2, 1),
        "169.254.18.2/30",
        "10.72.0.0/24",
    );

    let ping =
        a.ns.exec("ping", &["-c", "3", "-i", "0.2", "-W", "3", "10.71.0.1"]);
    let text = String::from_utf8_lossy(&ping.stdout);
    assert!(
        ping.status.success() && text.contains("from 10.71.0.1"),
        "ping across WireGuard: {text}"
    );

    let payload = pattern(2 << 20);
    let run = tcp_send(
        &b.ns,
        SocketAddrV4::new(POD, 5201),
        &a.ns,
        SocketAddrV4::new(Ipv4Addr::new(10, 71, 0, 1), 5201),
        payload.clone(),
    );
    assert_eq!(run.server_saw.ip(), Ipv4Addr::new(10, 72, 0, 1));
    assert!(run.received == payload, "the stream arrived altered");
    assert!(run.client_mss <= 1300, "MSS {} not clamped", run.client_mss);

    let err = a.ns.enter(|| {
        let socket = UdpSocket::bind(SocketAddrV4::new(POD, 0)).expect("bind");
        socket
            .connect(SocketAddrV4::new(Ipv4Addr::new(10, 71, 0, 1), 9))
            .expect("connect");
        socket
            .set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        socket.send(b"anyone?").expect("send");
        socket
            .recv(&mut [0u8; 16])
            .expect_err("nothing listens on 9")
    });
    assert_eq!(
        err.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "the ICMP error came back translated: {err}"
    );
    for side in [a, b] {
        let Side { ns, instance, .. } = side;
        ns.enter(move || instance.destroy()).expect("destroy");
    }
    let _ = std::fs::remove_dir_all(&pins);
}
