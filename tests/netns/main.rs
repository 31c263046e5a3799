//! Netns tier: real links and real traffic between network namespaces the tests create. Needs
//! root. Every namespace is an RAII guard, deleted even when a test panics.
mod conntrack;
mod geneve;
mod gso;
mod lab;
mod lab_abuse;
mod lab_failover;
mod lab_faults;
mod lab_kit;
mod lab_restart;
mod lifecycle;
mod monitor;
mod remap;
mod wireguard;

use aya::programs::{TcAttachType, tc};
use clusterwire_common::probe::ProbeCounter;
use clusterwire_dataplane::probe::Probe;
use clusterwire_tests::netns::{NetNs, veth_pair};

/// ICMP echo on the wire with ping's default 56 data bytes: 14 Ethernet + 20 IPv4 + 8 ICMP + 56.
const ECHO_FRAME_LEN: u64 = 98;

#[test]
fn probe_attached_to_a_veth_counts_exactly_the_packets_sent() {
    let a = NetNs::new("a");
    let b = NetNs::new("b");
    let (va, vb) = veth_pair(&a, "cw0", &b, "cw0");
    a.ip(&["addr", "add", "10.250.0.1/24", "dev", "cw0"]);
    b.ip(&["addr", "add", "10.250.0.2/24", "dev", "cw0"]);
    // Static neighbours: no ARP, so the only packets on a's ingress are the echo requests.
    a.ip(&[
        "neigh",
        "replace",
        "10.250.0.2",
        "lladdr",
        &vb.mac,
        "dev",
        "cw0",
        "nud",
        "permanent",
    ]);
    b.ip(&[
        "neigh",
        "replace",
        "10.250.0.1",
        "lladdr",
        &va.mac,
        "dev",
        "cw0",
        "nud",
        "permanent",
    ]);

    let mut probe = Probe::load().expect("load the probe");
    a.enter(|| {
        // An "already exists" error only means another program set up clsact first.
        let _ = tc::qdisc_add_clsact("cw0");
        let program = probe.program().expect("probe program");
        program
            .attach("cw0", TcAttachType::Ingress)
            .expect("attach the probe to cw0 ingress");
    });

    let sent = 5;
    let ping = b.exec(
        "ping",
        &[
            "-c",
            &sent.to_string(),
            "-i",
            "0.05",
            "-W",
            "2",
            "10.250.0.1",
        ],
    );
    assert!(
        ping.status.success(),
        "ping failed: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    assert_eq!(
        probe.counter(ProbeCounter::Packets).expect("read counter"),
        sent,
        "a's ingress saw exactly the echo requests"
    );
    assert_eq!(
        probe.counter(ProbeCounter::Bytes).expect("read counter"),
        sent * ECHO_FRAME_LEN
    );
}

#[test]
fn kernel_capability_probe_gives_a_clear_result_here() {
    let caps = lab_kit::probe_kernel("caps").expect("the probe reports capabilities, not an error");
    println!("geneve: {}\nwireguard: {}", caps.geneve, caps.wireguard);
    for (what, cap) in [("geneve", &caps.geneve), ("wireguard", &caps.wireguard)] {
        if let clusterwire_links::Capability::Unavailable { reason } = cap {
            assert!(
                reason.contains(what) && reason.contains("EOPNOTSUPP"),
                "{what}: {reason}"
            );
        }
    }
}
