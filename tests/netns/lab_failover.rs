//! Gateway failover (issue 11): `cwctl lab up --standby` gives cl02's client gateway toward
//! cl01 a standby replica on the other node. The replicas elect the active one through a lease
//! file; the active one writes its pod address into its `InternalFabric` (`fabric-cl01.yaml`),
//! which the agents follow. `kill -9` of the active replica under UDP streams both ways: the
//! standby takes over, the agents route to its pod, and traffic resumes within 2 s; the
//! Connection (now written by the standby) reads `Connected` again. The killed replica, started
//! again, waits as the standby and disturbs nothing.

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use crate::lab_kit::{
    Lab, STATE_DIR, UdpStream, assert_traffic_across, connection_status, daemon_log, lab_ok,
    routes, sigkill_daemons, start_daemon, wait_until,
};

const PRIMARY: &str = "cwlab-cl02-gw-cl01";
const STANDBY: &str = "cwlab-cl02-gw-cl01-b";
const PRIMARY_IP: &str = "10.0.1.101";
const STANDBY_IP: &str = "10.0.2.151";

/// The `spec.gatewayIP` of cl02's `InternalFabric` toward cl01 ("" while it is being replaced).
fn fabric_gateway_ip() -> String {
    let path = format!("{STATE_DIR}/clusters/cl02/manifests/fabric-cl01.yaml");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.trim().strip_prefix("gatewayIP: "))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_default()
}

#[test]
fn lab_client_gateway_failover_to_the_standby() {
    let _lab = Lab::claim();
    let up = lab_ok(&["up", "--standby"]);
    assert!(up.contains("standby gw-cl01-b on n2 at 10.0.2.151"), "{up}");
    assert_traffic_across("after up");

    // Exactly one replica leads; the lab starts the primary first, but either may win.
    let active_ip = fabric_gateway_ip();
    let (active, standby, standby_ip) = match active_ip.as_str() {
        PRIMARY_IP => (PRIMARY, STANDBY, STANDBY_IP),
        STANDBY_IP => (STANDBY, PRIMARY, PRIMARY_IP),
        other => panic!("InternalFabric gatewayIP {other:?}"),
    };
    println!("active replica {active} ({active_ip}), standby {standby}");

    let run = Duration::from_secs(10);
    let remote = Ipv4Addr::new(10, 1, 2, 11);
    let streams = [
        UdpStream::start("cwlab-cl01-n1-a", "cwlab-cl02-n2-b", remote, 7460, run),
        UdpStream::start("cwlab-cl02-n1-a", "cwlab-cl01-n2-b", remote, 7461, run),
    ];
    std::thread::sleep(Duration::from_secs(2));
    let argv = sigkill_daemons(&[active]);
    let killed = Instant::now();
    let followed = wait_until(
        "the standby writes its pod address into the InternalFabric",
        Duration::from_secs(5),
        || fabric_gateway_ip() == standby_ip,
    );
    // Both nodes route the peer's CIDRs toward the new active pod (the node holding it directly,
    // the other through its Geneve path to that pod).
    let routed = wait_until(
        "the agents stop routing to the killed replica",
        Duration::from_secs(5),
        || {
            ["cwlab-cl02-n1", "cwlab-cl02-n2"]
                .iter()
                .all(|ns| !routes(ns).contains(&format!("via {active_ip} ")))
        },
    );
    // The new active replica writes the Connection (`Connecting`, then `Connected` on the first
    // pong): the status file must be rewritten after the kill and read `Connected`.
    let status_file = format!(
        "{STATE_DIR}/clusters/cl02/manifests/status/connection-liqo-tenant-cl01-gw-cl01.yaml"
    );
    let killed_at = std::time::SystemTime::now() - killed.elapsed();
    wait_until(
        "the new active replica writes Connected",
        Duration::from_secs(20),
        || {
            std::fs::metadata(&status_file)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t > killed_at)
                && connection_status("cl02", "cl01") == "Connected"
        },
    );
    let connected = killed.elapsed();
    let results: Vec<_> = streams.into_iter().map(UdpStream::finish).collect();
    for (r, name) in results.iter().zip(["cl01 -> cl02", "cl02 -> cl01"]) {
        println!(
            "{name}: {} sent, {} lost, longest gap {} ms, gaps {:?}",
            r.sent,
            r.lost.len(),
            r.longest_gap_ms(),
            r.gaps()
        );
    }
    let outage = results
        .iter()
        .map(crate::lab_kit::StreamResult::longest_gap_ms)
        .max()
        .unwrap_or(0);
    println!(
        "failover {active} -> {standby}: InternalFabric updated {followed:?} after the kill, \
         agents rerouted {routed:?} later, longest outage {outage} ms; Connected {connected:?} \
         after the kill"
    );
    assert!(
        daemon_log(standby).contains("became active"),
        "{}",
        daemon_log(standby)
    );
    assert!(outage <= 2000, "outage {outage} ms (target: 2 s)");
    assert_traffic_across("after the failover");

    // The killed replica comes back as the standby: nothing changes.
    let logged = daemon_log(active).len();
    start_daemon(active, &argv[0]);
    wait_until(
        "the restarted replica waits as the standby",
        Duration::from_secs(10),
        || daemon_log(active)[logged..].contains("standby"),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        fabric_gateway_ip(),
        standby_ip,
        "the lease stays with the new active"
    );
    assert_traffic_across("with the old replica back as standby");
}
