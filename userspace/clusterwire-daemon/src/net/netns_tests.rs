//! Route writing against a real kernel: each test makes its own network namespace (an RAII
//! guard deletes it, also on panic) with a veth whose /16 holds every next hop. Needs root;
//! without it a test says SKIPPED (and fails when `CI` is set, as the other tiers do).
use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    process::Command,
    time::{Duration, Instant},
};

use ipnet::Ipv4Net;

use super::{Net, RouteReport, RouteSpec};

/// A named namespace (`ip netns add`), deleted on drop.
struct Ns(String);

impl Ns {
    fn new(tag: &str) -> Self {
        let name = format!("cwr-{tag}-{}", std::process::id());
        let _ = ip(&["netns", "del", &name]);
        ip(&["netns", "add", &name]).expect("ip netns add");
        let ns = Self(name);
        ns.ip(&["link", "add", "n0", "type", "veth", "peer", "name", "n1"]);
        ns.ip(&["link", "set", "n0", "up"]);
        ns.ip(&["link", "set", "n1", "up"]);
        ns.ip(&["addr", "add", "192.168.0.1/16", "dev", "n0"]);
        ns
    }

    /// `ip -n <ns> args`, which must succeed.
    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.0];
        all.extend_from_slice(args);
        ip(&all).unwrap_or_else(|e| panic!("ip {}: {e}", all.join(" ")))
    }

    /// Runs `f` on a thread inside the namespace, with a `Net` connected there.
    fn run<T: Send + 'static>(&self, f: impl AsyncFnOnce(Net) -> T + Send + 'static) -> T {
        let name = self.0.clone();
        std::thread::spawn(move || {
            crate::netns::enter(&name).expect("enter the namespace");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let net = Net::connect().expect("connect rtnetlink");
                f(net).await
            })
        })
        .join()
        .expect("test thread")
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn can_run(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: needs root and CI is set"
    );
    eprintln!("{test}: SKIPPED: not root");
    false
}

/// The next hop of node `i` (0-based), in n0's /16.
fn node_ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 168, 0, 11)) + i)
}

/// The gateway's routes at `nodes` nodes: each node's /27 pod CIDR and /32 internal address via
/// the node's IP, plus a tunnel route and an unreachable one (`2 * nodes + 2` routes).
fn gateway_routes(oif: u32, nodes: u32, mtu: u32) -> BTreeMap<Ipv4Net, RouteSpec> {
    let mut routes = BTreeMap::new();
    for i in 0..nodes {
        let via = RouteSpec {
            oif,
            via: Some(node_ip(i)),
            src: None,
            mtu: Some(mtu),
            onlink: false,
        };
        let pods = Ipv4Net::new(
            Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + 32 * i),
            27,
        )
        .expect("pod cidr");
        let internal = Ipv4Net::from(Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 80, 0, 0)) + i));
        routes.insert(pods, via);
        routes.insert(internal, via);
    }
    routes.insert(
        "10.200.0.0/16".parse().expect("prefix"),
        RouteSpec {
            oif,
            via: None,
            src: None,
            mtu: Some(mtu),
            onlink: false,
        },
    );
    routes.insert(
        "10.201.0.0/16".parse().expect("prefix"),
        RouteSpec::UNREACHABLE,
    );
    routes
}

/// `Net::update_routes` from no route to the gateway's 10,002 routes at 5,000 nodes, three
/// times in fresh namespaces. Run by hand:
/// `cargo test -p clusterwire-daemon --lib -- --ignored route_write_timing --nocapture`.
#[test]
#[ignore = "timing, prints figures; needs root"]
fn route_write_timing() {
    if !can_run("route_write_timing") {
        return;
    }
    for round in 0..3 {
        let ns = Ns::new(&format!("time{round}"));
        let (elapsed, count) = ns.run(async |net: Net| {
            let oif = net.link_index("n0").await.expect("index").expect("n0");
            let desired = gateway_routes(oif, 5_000, 1340);
            let start = Instant::now();
            net.update_routes(&BTreeMap::new(), &desired)
                .await
                .expect("update_routes");
            let elapsed = start.elapsed();
            let back = net.routes().await.expect("routes");
            assert_eq!(back, desired, "routes read back");
            (elapsed, back.len())
        });
        eprintln!(
            "round {round}: {count} routes written in {} ms",
            elapsed.as_millis()
        );
        assert!(elapsed < Duration::from_secs(30));
    }
}

/// The ids of the nexthops of protocol 203 (`ip nexthop show proto 203`).
fn our_nexthops(ns: &Ns) -> Vec<String> {
    ns.ip(&["nexthop", "show", "proto", "203"])
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect()
}

fn report(added: usize, updated: usize, removed: usize) -> RouteReport {
    RouteReport {
        added,
        updated,
        removed,
    }
}

/// 10,000 routes through 5,000 gateways: written through 5,000 nexthops, read back equal, a
/// second sync writes nothing, a route and a nexthop deleted by hand are repaired, a node IP
/// change moves its routes through one nexthop replaced in place, and removing every route
/// leaves no nexthop of ours.
#[test]
fn many_routes_through_nexthops_round_trip_and_repair() {
    if !can_run("many_routes_through_nexthops_round_trip_and_repair") {
        return;
    }
    let ns = Ns::new("many");
    let oif: u32 = ns.run(async |net: Net| net.link_index("n0").await.expect("index").expect("n0"));
    let desired = gateway_routes(oif, 5_000, 1340);
    let want = desired.clone();
    let (first, again, back) = ns.run(async move |net: Net| {
        let first = net.sync_routes(&want).await.expect("first sync");
        let again = net.sync_routes(&want).await.expect("second sync");
        (first, again, net.routes().await.expect("routes"))
    });
    assert_eq!(first, report(10_002, 0, 0));
    assert_eq!(again, report(0, 0, 0), "a second sync must write nothing");
    assert_eq!(back, desired, "routes read back");
    assert_eq!(our_nexthops(&ns).len(), 5_000, "one nexthop per gateway");
    let shown = ns.ip(&["route", "show", "10.0.0.32/27"]);
    assert!(
        shown.contains("nhid ")
            && shown.contains("via 192.168.0.12 dev n0")
            && shown.contains("mtu 1340"),
        "10.0.0.32/27 through a nexthop to node 1: {shown}"
    );

    // Drift: a route deleted by hand, and a nexthop deleted by hand (the kernel takes its
    // routes with it).
    ns.ip(&[
        "route",
        "del",
        "10.0.0.64/27",
        "proto",
        "203",
        "metric",
        "50",
    ]);
    let victim = ns.ip(&["route", "show", "10.0.0.96/27"]);
    let nhid = victim
        .split_whitespace()
        .skip_while(|w| *w != "nhid")
        .nth(1)
        .expect("nhid of 10.0.0.96/27")
        .to_owned();
    ns.ip(&["nexthop", "del", "id", &nhid]);
    let want = desired.clone();
    let (repair, back) = ns.run(async move |net: Net| {
        let repair = net.sync_routes(&want).await.expect("repairing sync");
        (repair, net.routes().await.expect("routes"))
    });
    assert_eq!(
        repair,
        report(3, 0, 0),
        "one route by hand, two with their nexthop"
    );
    assert_eq!(back, desired, "routes after the repair");
    assert_eq!(our_nexthops(&ns).len(), 5_000);

    // Node 0's IP changes: its nexthop keeps its id and now points at the new IP.
    let before = ns.ip(&["route", "show", "10.0.0.0/27"]);
    let mut moved = desired.clone();
    for spec in moved.values_mut() {
        if spec.via == Some(node_ip(0)) {
            spec.via = Some(Ipv4Addr::new(192, 168, 200, 1));
        }
    }
    let (last, want) = (desired.clone(), moved.clone());
    let (change, back) = ns.run(async move |net: Net| {
        let change = net.update_routes(&last, &want).await.expect("via change");
        (change, net.routes().await.expect("routes"))
    });
    assert_eq!(change, report(0, 2, 0));
    assert_eq!(back, moved, "routes after the via change");
    let after = ns.ip(&["route", "show", "10.0.0.0/27"]);
    assert!(after.contains("via 192.168.200.1 dev n0"), "{after}");
    let nhid_of = |s: &str| {
        s.split_whitespace()
            .skip_while(|w| *w != "nhid")
            .nth(1)
            .map(str::to_owned)
    };
    assert_eq!(
        nhid_of(&before),
        nhid_of(&after),
        "replaced in place: {before} -> {after}"
    );
    assert_eq!(our_nexthops(&ns).len(), 5_000);

    // Everything removed: no route and no nexthop of ours left.
    let last = moved.clone();
    let (gone, back) = ns.run(async move |net: Net| {
        let gone = net
            .update_routes(&last, &BTreeMap::new())
            .await
            .expect("remove all");
        (gone, net.routes().await.expect("routes"))
    });
    assert_eq!(gone, report(0, 0, 10_002));
    assert!(back.is_empty(), "{} routes left", back.len());
    assert_eq!(our_nexthops(&ns), Vec::<String>::new(), "orphaned nexthops");
}

/// Plain routes of protocol 203 (as an older version wrote them) are read, converted to
/// nexthops by a full sync, and a route whose gateway cannot be reached is reported with its
/// prefix while the others are written; nothing is removed then.
#[test]
fn plain_routes_are_converted_and_a_bad_gateway_names_its_route() {
    if !can_run("plain_routes_are_converted_and_a_bad_gateway_names_its_route") {
        return;
    }
    let ns = Ns::new("plain");
    for (prefix, via) in [
        ("10.0.0.0/27", "192.168.0.11"),
        ("10.0.0.32/27", "192.168.0.12"),
    ] {
        ns.ip(&[
            "route", "add", prefix, "via", via, "dev", "n0", "proto", "203", "metric", "50", "mtu",
            "1340",
        ]);
    }
    ns.ip(&[
        "route",
        "add",
        "10.9.0.0/24",
        "via",
        "192.168.0.13",
        "dev",
        "n0",
        "proto",
        "203",
        "metric",
        "50",
    ]);
    let oif: u32 = ns.run(async |net: Net| net.link_index("n0").await.expect("index").expect("n0"));
    let desired = gateway_routes(oif, 2, 1340);
    let want = desired.clone();
    let (read, sync, back) = ns.run(async move |net: Net| {
        let read = net.routes().await.expect("routes");
        let sync = net.sync_routes(&want).await.expect("sync");
        (read, sync, net.routes().await.expect("routes"))
    });
    let plain = |last| RouteSpec {
        oif,
        via: Some(Ipv4Addr::new(192, 168, 0, last)),
        src: None,
        mtu: Some(1340),
        onlink: false,
    };
    assert_eq!(
        read.get(&"10.0.0.0/27".parse().expect("prefix")),
        Some(&plain(11))
    );
    assert_eq!(
        read.get(&"10.9.0.0/24".parse().expect("prefix")),
        Some(&RouteSpec {
            mtu: None,
            ..plain(13)
        })
    );
    // Two plain routes rewritten through nexthops, two internal addresses and the tunnel and
    // unreachable routes added, 10.9.0.0/24 removed.
    assert_eq!(sync, report(4, 2, 1));
    assert_eq!(back, desired);
    assert!(ns.ip(&["route", "show", "10.0.0.0/27"]).contains("nhid "));
    assert_eq!(our_nexthops(&ns).len(), 2);

    let mut bad = desired.clone();
    bad.insert(
        "10.9.1.0/24".parse().expect("prefix"),
        RouteSpec {
            via: Some(Ipv4Addr::new(10, 99, 0, 1)),
            ..plain(0)
        },
    );
    bad.insert("10.9.2.0/24".parse().expect("prefix"), plain(14));
    bad.remove(&"10.201.0.0/16".parse().expect("prefix"));
    let (last, want) = (desired.clone(), bad.clone());
    let (error, back) = ns.run(async move |net: Net| {
        let error = net
            .update_routes(&last, &want)
            .await
            .expect_err("an unreachable gateway");
        (error, net.routes().await.expect("routes"))
    });
    assert_eq!(error.action, "add nexthop");
    assert!(
        error.target.starts_with("10.9.1.0/24 via 10.99.0.1"),
        "{}",
        error.target
    );
    assert_eq!(
        back.get(&"10.9.2.0/24".parse().expect("prefix")),
        Some(&plain(14)),
        "the good route is written"
    );
    assert!(
        back.contains_key(&"10.201.0.0/16".parse().expect("prefix")),
        "nothing removed after a failure"
    );
    assert!(!back.contains_key(&"10.9.1.0/24".parse().expect("prefix")));
}
