//! The drop monitor on a real attachment: `cw-test-gateway` owns a gateway instance with the
//! NAT programs on its "tunnel" veth `t0`; a host on the other end sends a datagram from a
//! source the peer never announced. With the pinned monitor switched on (from this process,
//! as `cwctl monitor` does) the drop is read back from the pinned ring buffer with its reason,
//! program, device and flow; with it off nothing is written.
//!
//! ```text
//!  client 10.1.0.2 --c0/g0-- gateway (NAT on t0) --t0/s0-- peer 169.254.0.2 (not announced)
//! ```
use std::{
    io::{BufRead as _, BufReader},
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use clusterwire_common::drop::{
    DROP_EVENT_IPV4, DROP_EVENT_PORTS, DropEvent, DropReason, PROGRAM_NAT_FROM_TUNNEL,
};
use clusterwire_dataplane::{DropMonitor, Instance};
use clusterwire_tests::netns::{NetNs, veth_pair};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const PEER_LINK: Ipv4Addr = Ipv4Addr::new(169, 254, 0, 2);

/// The pin root of this test and the `cw-test-gateway` holding the instance; both removed on
/// drop (the holder killed, then the instance destroyed).
struct Gateway {
    child: Child,
    pin_root: PathBuf,
}

impl Gateway {
    fn start(gateway: &NetNs) -> Self {
        let pin_root = PathBuf::from(format!(
            "/sys/fs/bpf/clusterwire-test-{}-monitor",
            std::process::id()
        ));
        let mut child = Command::new(env!("CARGO_BIN_EXE_cw-test-gateway"))
            .args([
                format!("netns={}", gateway.name()),
                "instance=gw".to_owned(),
                format!("pin_root={}", pin_root.display()),
                "device=t0".to_owned(),
                "peer=7".to_owned(),
                "mtu=1340".to_owned(),
                "mode=auto".to_owned(),
                "dst=10.71.0.0/24,10.0.0.0/24".to_owned(),
                "src=10.0.0.0/24,10.71.0.0/24".to_owned(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cw-test-gateway");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the ready line");
        assert!(line.starts_with("ready"), "cw-test-gateway: {line}");
        Self { child, pin_root }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Instance::destroy_by_name(&self.pin_root, "gw");
        let _ = std::fs::remove_dir_all(&self.pin_root);
    }
}

/// Sends one UDP datagram 169.254.0.2:5555 -> 10.1.0.2:9999 from the peer's namespace.
fn send_spoofed(peer: &NetNs) {
    peer.enter(|| {
        let socket =
            UdpSocket::bind(SocketAddrV4::new(PEER_LINK, 5555)).expect("bind the peer's address");
        socket
            .send_to(b"not announced", SocketAddrV4::new(CLIENT, 9999))
            .expect("send");
    });
}

/// Events read from the ring within `wait`.
fn read_events(monitor: &mut DropMonitor, wait: Duration) -> Vec<DropEvent> {
    let deadline = Instant::now() + wait;
    let mut events = Vec::new();
    while Instant::now() < deadline {
        while let Some(e) = monitor.next_event() {
            events.push(e);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    events
}

#[test]
fn a_spoofed_packet_on_an_attached_instance_is_reported_by_the_pinned_monitor() {
    let client = NetNs::new("mcli");
    let gateway = NetNs::new("mgw");
    let peer = NetNs::new("mpeer");
    veth_pair(&client, "c0", &gateway, "g0");
    let (t0, s0) = veth_pair(&gateway, "t0", &peer, "s0");
    client.ip(&["addr", "add", "10.1.0.2/24", "dev", "c0"]);
    gateway.ip(&["addr", "add", "10.1.0.1/24", "dev", "g0"]);
    gateway.ip(&["addr", "add", "169.254.0.1/30", "dev", "t0"]);
    gateway.sysctl("net.ipv4.ip_forward", "1");
    peer.ip(&["addr", "add", "169.254.0.2/30", "dev", "s0"]);
    peer.ip(&["route", "add", "10.1.0.0/24", "via", "169.254.0.1"]);
    for (ns, addr, mac, dev) in [
        (&gateway, "169.254.0.2", &s0.mac, "t0"),
        (&peer, "169.254.0.1", &t0.mac, "s0"),
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
    let t0_index = gateway.enter(|| nix::net::if_::if_nametoindex("t0").expect("t0 ifindex"));

    let gw = Gateway::start(&gateway);
    let dir = gw.pin_root.join("gw");
    let mut monitor = DropMonitor::open_pinned(&dir).expect("open the pinned monitor");
    assert!(!monitor.is_on().expect("read the switch"), "off by default");

    send_spoofed(&peer);
    assert_eq!(
        read_events(&mut monitor, Duration::from_millis(300)),
        [],
        "monitor off: no event"
    );

    monitor.set(true).expect("switch on");
    send_spoofed(&peer);
    let events = read_events(&mut monitor, Duration::from_millis(500));
    // Only our datagram crosses t0 (static neighbours, no ARP; IPv6 is off in test namespaces
    // or dropped as non-IPv4, which the filter below would show).
    let spoofed: Vec<_> = events
        .iter()
        .filter(|e| e.drop_reason() == Some(DropReason::SpoofedSource))
        .collect();
    assert_eq!(spoofed.len(), 1, "one spoofed-source event: {events:?}");
    let e = spoofed[0];
    assert_eq!(
        (
            e.program,
            e.ifindex,
            Ipv4Addr::from(e.src_be),
            e.sport,
            Ipv4Addr::from(e.dst_be),
            e.dport,
            e.proto,
            e.flags
        ),
        (
            PROGRAM_NAT_FROM_TUNNEL,
            t0_index,
            PEER_LINK,
            5555,
            CLIENT,
            9999,
            17,
            DROP_EVENT_IPV4 | DROP_EVENT_PORTS
        ),
        "the event's program, device and flow: {e:?}"
    );
    assert_eq!(e.len, 14 + 20 + 8 + 13, "the frame's length");

    monitor.set(false).expect("switch off");
    send_spoofed(&peer);
    assert_eq!(
        read_events(&mut monitor, Duration::from_millis(300)),
        [],
        "monitor switched off: no event"
    );
}
