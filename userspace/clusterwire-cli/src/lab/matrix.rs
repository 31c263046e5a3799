//! `cwctl lab test`: traffic from every pod to a pod of each other cluster, through the address
//! the source cluster knows it by (the remap), and a few deeper checks per ordered pair of
//! clusters. Prints a pass/fail matrix; fails when any check fails.
//!
//! Per source pod and peer cluster (the target is the next pod in the peer's pod order, so
//! half the pairs cross nodes): `ping`; TCP (and the server must see the source by the address
//! its own cluster knows it by); UDP (same check). Per ordered pair of clusters: a 10 MB TCP
//! transfer (DF set by Linux TCP, across the 1340-byte tunnel, checked by length and hash); an
//! ICMP port unreachable matched by the sender's socket; a traceroute-like TTL probe through
//! the gateways ending at the remapped destination; the node's host network reaching a pod.
//!
//! With [`Scope::WithinClusters`] (`lab test --within-clusters`) the same checks run between
//! pods of the same cluster on their real addresses: the simulated CNI alone, no tunnel, so
//! it works on a topology built with `lab up --no-daemons`.

use std::net::{Ipv4Addr, SocketAddrV4};

use anyhow::bail;

use super::{
    plan::{Cluster, MTU, Plan, Pod},
    probe::{self, CLOSED_PORT, Hop, TCP_PORT, UDP_PORT},
    table,
};

/// Which pairs of clusters the checks run between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every ordered pair of distinct clusters, through the remaps and tunnels.
    Peers,
    /// Each cluster with itself, on real addresses (the simulated CNI only).
    WithinClusters,
}

/// The address by which `local` reaches `address` of `remote` (itself when the same cluster).
fn reach(plan: &Plan, local: &str, remote: &str, address: Ipv4Addr) -> Option<Ipv4Addr> {
    if local == remote {
        Some(address)
    } else {
        plan.seen_from(local, remote, address)
    }
}

/// Bytes of the bulk transfer.
pub const BULK_BYTES: usize = 10 * 1024 * 1024;
/// Longest path a TTL probe follows.
const MAX_TTL: u8 = 8;

/// The result of one check: `Ok(detail)` or `Err(why)`.
pub type Check = Result<String, String>;

/// One row of the pod matrix.
#[derive(Debug, Clone)]
pub struct PodRow {
    /// `cl01/n1-a`.
    pub source: String,
    /// `cl02/n1-b`.
    pub target: String,
    /// The address the source used.
    pub address: Ipv4Addr,
    /// ping.
    pub ping: Check,
    /// TCP exchange.
    pub tcp: Check,
    /// UDP exchange.
    pub udp: Check,
}

/// One deeper check.
#[derive(Debug, Clone)]
pub struct ExtraRow {
    /// What.
    pub check: &'static str,
    /// From where.
    pub from: String,
    /// To what.
    pub to: String,
    /// Result.
    pub result: Check,
}

fn cell(check: &Check) -> String {
    match check {
        Ok(_) => "ok".to_owned(),
        Err(_) => "FAIL".to_owned(),
    }
}

/// The pod matrix as a table.
pub fn format_pods(rows: &[PodRow]) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.source.clone(),
                r.target.clone(),
                r.address.to_string(),
                cell(&r.ping),
                match &r.ping {
                    Ok(detail) if detail.ends_with(" ms") => detail.clone(),
                    _ => "-".to_owned(),
                },
                cell(&r.tcp),
                cell(&r.udp),
            ]
        })
        .collect();
    table::format(
        &["SOURCE", "TARGET", "VIA", "PING", "RTT", "TCP", "UDP"],
        &body,
    )
}

/// The deeper checks as a table.
pub fn format_extras(rows: &[ExtraRow]) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let (result, detail) = match &r.result {
                Ok(d) => ("ok", d.clone()),
                Err(e) => ("FAIL", e.clone()),
            };
            vec![
                r.check.to_owned(),
                r.from.clone(),
                r.to.clone(),
                result.to_owned(),
                detail,
            ]
        })
        .collect();
    table::format(&["CHECK", "FROM", "TO", "RESULT", "DETAIL"], &body)
}

/// Every failure, one line each.
pub fn failures(pods: &[PodRow], extras: &[ExtraRow]) -> Vec<String> {
    let mut lines = Vec::new();
    for r in pods {
        for (what, check) in [("ping", &r.ping), ("tcp", &r.tcp), ("udp", &r.udp)] {
            if let Err(e) = check {
                lines.push(format!(
                    "{what} {} -> {} ({}): {e}",
                    r.source, r.target, r.address
                ));
            }
        }
    }
    for r in extras {
        if let Err(e) = &r.result {
            lines.push(format!("{} {} -> {}: {e}", r.check, r.from, r.to));
        }
    }
    lines
}

fn start_servers(plan: &Plan) -> anyhow::Result<()> {
    for cluster in &plan.clusters {
        for (_, pod) in cluster.pods() {
            probe::tcp_server(&pod.netns, TCP_PORT)?;
            probe::udp_server(&pod.netns, UDP_PORT)?;
        }
    }
    Ok(())
}

fn expect_seen(seen: Ipv4Addr, expected: Option<Ipv4Addr>) -> Check {
    match expected {
        Some(e) if e == seen => Ok(format!("seen as {seen}")),
        Some(e) => Err(format!("the server saw source {seen}, expected {e}")),
        None => Err("no remap for the source".to_owned()),
    }
}

/// The target of `index`-th source pod in `remote`: the next pod in its order.
fn target(remote: &Cluster, index: usize) -> &Pod {
    let pods: Vec<&Pod> = remote.pods().map(|(_, p)| p).collect();
    pods[(index + 1) % pods.len()]
}

fn pod_row(plan: &Plan, local: &Cluster, index: usize, pod: &Pod, remote: &Cluster) -> PodRow {
    let t = target(remote, index);
    let address =
        reach(plan, &local.name, &remote.name, t.address).unwrap_or(Ipv4Addr::UNSPECIFIED);
    let expected_source = reach(plan, &remote.name, &local.name, pod.address);
    let ping = probe::ping(&pod.netns, address)
        .map(|rtt| rtt.map_or_else(|| "replied".to_owned(), |ms| format!("{ms:.3} ms")))
        .map_err(|e| format!("{e:#}"));
    let tcp = match probe::tcp_send(
        &pod.netns,
        SocketAddrV4::new(address, TCP_PORT),
        b"hello over clusterwire",
    ) {
        Ok(outcome) => expect_seen(outcome.peer_seen, expected_source),
        Err(e) => Err(format!("{e:#}")),
    };
    let udp = match probe::udp_echo(&pod.netns, SocketAddrV4::new(address, UDP_PORT)) {
        Ok(seen) => expect_seen(seen, expected_source),
        Err(e) => Err(format!("{e:#}")),
    };
    PodRow {
        source: format!("{}/{}", local.name, pod.name),
        target: format!("{}/{}", remote.name, t.name),
        address,
        ping,
        tcp,
        udp,
    }
}

fn extras(plan: &Plan, local: &Cluster, remote: &Cluster) -> Vec<ExtraRow> {
    let pods: Vec<&Pod> = local.pods().map(|(_, p)| p).collect();
    let remote_pods: Vec<&Pod> = remote.pods().map(|(_, p)| p).collect();
    let (Some(first), Some(last)) = (pods.first(), remote_pods.last()) else {
        return Vec::new();
    };
    let seen = |p: &Pod| {
        reach(plan, &local.name, &remote.name, p.address).unwrap_or(Ipv4Addr::UNSPECIFIED)
    };
    let name = |c: &Cluster, p: &Pod| format!("{}/{}", c.name, p.name);
    let mut rows = Vec::new();

    let dst = seen(last);
    let bulk = probe::pattern(BULK_BYTES);
    let through_tunnel = local.name != remote.name;
    let result = match probe::tcp_send(&first.netns, SocketAddrV4::new(dst, TCP_PORT), &bulk) {
        Ok(o) => bulk_result(&o, through_tunnel),
        Err(e) => Err(format!("{e:#}")),
    };
    rows.push(ExtraRow {
        check: "tcp-10MB",
        from: name(local, first),
        to: format!("{} {dst}", name(remote, last)),
        result,
    });

    let result = probe::port_unreachable(&first.netns, SocketAddrV4::new(dst, CLOSED_PORT))
        .map(|()| format!("ICMP port unreachable from {dst}:{CLOSED_PORT}"))
        .map_err(|e| format!("{e:#}"));
    rows.push(ExtraRow {
        check: "icmp-unreach",
        from: name(local, first),
        to: format!("{} {dst}", name(remote, last)),
        result,
    });

    let result = match probe::trace(&first.netns, dst, MAX_TTL) {
        Ok(hops) => {
            let path: Vec<String> = hops.iter().map(ToString::to_string).collect();
            let path = path.join(" > ");
            match hops.last() {
                Some(Hop::Destination(a)) if *a == dst && hops.len() > 1 => Ok(path),
                _ => Err(format!("did not reach {dst}: {path}")),
            }
        }
        Err(e) => Err(format!("{e:#}")),
    };
    rows.push(ExtraRow {
        check: "traceroute",
        from: name(local, first),
        to: format!("{} {dst}", name(remote, last)),
        result,
    });

    if let Some(node) = local.nodes.first() {
        let result = probe::tcp_send(&node.netns, SocketAddrV4::new(dst, TCP_PORT), b"host")
            .map(|o| format!("seen as {}", o.peer_seen))
            .map_err(|e| format!("{e:#}"));
        rows.push(ExtraRow {
            check: "host-network",
            from: format!("{}/{} (node)", local.name, node.short),
            to: format!("{} {dst}", name(remote, last)),
            result,
        });
    }
    rows
}

/// The ordered pairs of clusters of a scope.
fn pairs(plan: &Plan, scope: Scope) -> Vec<(&Cluster, &Cluster)> {
    let mut all = Vec::new();
    for local in &plan.clusters {
        for remote in &plan.clusters {
            let same = local.name == remote.name;
            if same == (scope == Scope::WithinClusters) {
                all.push((local, remote));
            }
        }
    }
    all
}

/// The largest MSS a connection through the tunnel may have: the clamp of the gateways (route
/// MTU 1340 - 40).
pub const CLAMPED_MSS: u32 = MTU as u32 - 40;

/// The bulk transfer's verdict: the content arrived intact (checked by the probe) and, through
/// a tunnel, the MSS the handshake settled on fits the tunnel (the gateways clamp SYNs).
fn bulk_result(o: &probe::TcpOutcome, through_tunnel: bool) -> Check {
    #[expect(clippy::cast_precision_loss, reason = "a rate for humans")]
    let mb = o.sent as f64 / 1e6;
    let mss = o.mss.map_or_else(|| "?".to_owned(), |m| m.to_string());
    let detail = format!(
        "{mb:.1} MB intact in {:.2} s ({:.0} MB/s), MSS {mss}",
        o.seconds,
        mb / o.seconds
    );
    match o.mss {
        Some(m) if through_tunnel && m > CLAMPED_MSS => Err(format!(
            "{detail}: the MSS is not clamped to {CLAMPED_MSS} for the {MTU}-byte tunnel"
        )),
        _ => Ok(detail),
    }
}

/// Runs the whole matrix and prints it.
pub fn run(plan: &Plan, scope: Scope) -> anyhow::Result<()> {
    start_servers(plan)?;
    match scope {
        Scope::Peers => println!("pod to pod, through each cluster's remapped view of the other:"),
        Scope::WithinClusters => println!("pod to pod within each cluster (the simulated CNI):"),
    }
    let pairs = pairs(plan, scope);
    let mut pod_rows = Vec::new();
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for (local, remote) in &pairs {
            for (index, (_, pod)) in local.pods().enumerate() {
                handles.push(s.spawn(move || pod_row(plan, local, index, pod, remote)));
            }
        }
        for handle in handles {
            if let Ok(row) = handle.join() {
                pod_rows.push(row);
            }
        }
    });
    print!("{}", format_pods(&pod_rows));
    println!("\nper pair of clusters:");
    let mut extra_rows = Vec::new();
    for (local, remote) in &pairs {
        extra_rows.extend(extras(plan, local, remote));
    }
    print!("{}", format_extras(&extra_rows));
    let failed = failures(&pod_rows, &extra_rows);
    if failed.is_empty() {
        println!(
            "\nall {} checks passed",
            pod_rows.len() * 3 + extra_rows.len()
        );
        return Ok(());
    }
    println!("\nfailures:");
    for line in &failed {
        println!("  {line}");
    }
    bail!(
        "{} of {} checks failed (see above; daemon logs in {}/logs; the lab stays up, \
         `cwctl lab down` removes it)",
        failed.len(),
        pod_rows.len() * 3 + extra_rows.len(),
        super::STATE_DIR
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_through_the_tunnel_needs_a_clamped_mss() {
        let outcome = |mss| probe::TcpOutcome {
            peer_seen: Ipv4Addr::new(10, 1, 1, 10),
            sent: 10_000_000,
            seconds: 2.0,
            mss,
        };
        assert_eq!(
            bulk_result(&outcome(Some(1288)), true),
            Ok("10.0 MB intact in 2.00 s (5 MB/s), MSS 1288".to_owned())
        );
        assert!(bulk_result(&outcome(Some(1448)), true).is_err());
        assert!(bulk_result(&outcome(Some(1448)), false).is_ok());
        assert!(bulk_result(&outcome(None), true).is_ok());
    }

    #[test]
    fn scopes_pick_the_pairs() {
        let plan = Plan::new(3).expect("plan");
        let names = |scope| {
            pairs(&plan, scope)
                .iter()
                .map(|(l, r)| format!("{}>{}", l.name, r.name))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            names(Scope::Peers),
            "cl01>cl02 cl01>cl03 cl02>cl01 cl02>cl03 cl03>cl01 cl03>cl02"
        );
        assert_eq!(
            names(Scope::WithinClusters),
            "cl01>cl01 cl02>cl02 cl03>cl03"
        );
        assert_eq!(
            reach(&plan, "cl02", "cl02", Ipv4Addr::new(10, 0, 1, 10)),
            Some(Ipv4Addr::new(10, 0, 1, 10))
        );
    }

    #[test]
    fn targets_rotate_so_half_the_pairs_cross_nodes() {
        let plan = Plan::new(2).expect("plan");
        let cl02 = plan.cluster("cl02").expect("cl02");
        let names: Vec<&str> = (0..4).map(|i| target(cl02, i).name.as_str()).collect();
        assert_eq!(names, ["n1-b", "n2-a", "n2-b", "n1-a"]);
    }

    #[test]
    fn matrix_and_failures_are_printed() {
        let rows = vec![PodRow {
            source: "cl01/n1-a".into(),
            target: "cl02/n1-b".into(),
            address: Ipv4Addr::new(10, 1, 1, 11),
            ping: Ok("0.420 ms".into()),
            tcp: Err("TCP connect to 10.1.1.11:7000: timed out".into()),
            udp: Ok("seen as 10.1.1.10".into()),
        }];
        assert_eq!(
            format_pods(&rows),
            "SOURCE     TARGET     VIA        PING  RTT       TCP   UDP\n\
             cl01/n1-a  cl02/n1-b  10.1.1.11  ok    0.420 ms  FAIL  ok\n"
        );
        let extras = vec![ExtraRow {
            check: "traceroute",
            from: "cl01/n1-a".into(),
            to: "cl02/n2-b 10.1.2.11".into(),
            result: Ok("10.0.1.1 > 10.0.1.102 > 10.1.2.11*".into()),
        }];
        assert!(format_extras(&extras).contains("traceroute  cl01/n1-a  cl02/n2-b 10.1.2.11  ok"));
        assert_eq!(
            failures(&rows, &extras),
            vec![
                "tcp cl01/n1-a -> cl02/n1-b (10.1.1.11): TCP connect to 10.1.1.11:7000: \
                 timed out"
                    .to_owned()
            ]
        );
        assert!(expect_seen(Ipv4Addr::new(1, 2, 3, 4), None).is_err());
    }
}
