//! Property tests of the remapping IPAM: no overlap, same-size remaps, reuse after release, and
//! identical answers after a rebuild from recorded statuses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use clusterwire_ipam::{ClusterMapping, Ipam, IpamConfig, IpamError, RemoteCidrs};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

/// A small world so that overlaps and exhaustion happen often: pools 10.0.0.0/13 and
/// 192.168.0.0/16 (IPv4) and `fd00::/42` (IPv6), local pod CIDRs inside the pools.
fn config(local_pod: IpNet) -> IpamConfig {
    let mut config = IpamConfig::new(vec![local_pod], vec!["10.96.0.0/12".parse().unwrap()]);
    config.pools_v4 = vec![
        "10.0.0.0/13".parse::<Ipv4Net>().unwrap(),
        "192.168.0.0/16".parse::<Ipv4Net>().unwrap(),
    ];
    config.pools_v6 = vec!["fd00::/42".parse::<Ipv6Net>().unwrap()];
    config.pod_cidrs.push("fd00:0:1::/48".parse().unwrap());
    config.external_cidrs = vec!["10.70.0.0/26".parse().unwrap()];
    config
}

fn cidr_v4() -> impl Strategy<Value = IpNet> {
    (
        prop::sample::select(vec![0x0a00_0000_u32, 0x0af3_0000, 0xc0a8_0000, 0x6440_0000]),
        0u32..0x0010_0000,
        14u8..=22,
    )
        .prop_map(|(base, offset, len)| {
            IpNet::V4(
                Ipv4Net::new(Ipv4Addr::from(base + offset), len)
                    .unwrap()
                    .trunc(),
            )
        })
}

/// IPv6 CIDRs around the local pod CIDR `fd00:0:1::/48` and inside the small IPv6 pool.
fn cidr_v6() -> impl Strategy<Value = IpNet> {
    (0u128..0x0004_0000, 44u8..=52).prop_map(|(offset, len)| {
        let addr = Ipv6Addr::from((0xfd00_u128 << 112) | (offset << 80));
        IpNet::V6(Ipv6Net::new(addr, len).unwrap().trunc())
    })
}

fn cidr() -> impl Strategy<Value = IpNet> {
    prop_oneof![3 => cidr_v4(), 1 => cidr_v6()]
}

#[derive(Debug, Clone)]
enum Op {
    Map(u8, Vec<IpNet>, Vec<IpNet>),
    Release(u8),
    AllocIp(u8, u8),
    ReleaseIp(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..12, prop::collection::vec(cidr(), 0..3), prop::collection::vec(cidr(), 0..2))
            .prop_map(|(c, pod, ext)| Op::Map(c, pod, ext)),
        2 => (0u8..12).prop_map(Op::Release),
        2 => (0u8..80, any::<u8>()).prop_map(|(k, host)| Op::AllocIp(k, host)),
        1 => (0u8..80).prop_map(Op::ReleaseIp),
    ]
}

fn local_pod() -> impl Strategy<Value = IpNet> {
    prop::sample::select(vec!["10.0.0.0/16", "10.2.0.0/15", "10.243.0.0/16"])
        .prop_map(|s| s.parse().unwrap())
}

/// Applies an op, returning a comparable rendering of the answer.
fn apply(ipam: &mut Ipam, op: &Op) -> String {
    match op {
        Op::Map(c, pod, external) => {
            let remote = RemoteCidrs {
                pod: pod.clone(),
                external: external.clone(),
            };
            format!("{:?}", ipam.map_cluster(&format!("c{c}"), &remote))
        }
        Op::Release(c) => format!("{:?}", ipam.release_cluster(&format!("c{c}"))),
        Op::AllocIp(k, host) => {
            let local = IpAddr::V4(Ipv4Addr::new(192, 0, 2, *host));
            format!("{:?}", ipam.allocate_ip(&format!("k{k}"), local))
        }
        Op::ReleaseIp(k) => format!("{:?}", ipam.release_ip(&format!("k{k}"))),
    }
}

fn overlap(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The invariants every reachable state must satisfy.
fn check_invariants(ipam: &Ipam) {
    let locals: Vec<IpNet> = ipam.config().local_ranges().copied().collect();
    let live: Vec<(String, IpNet)> = ipam
        .clusters()
        .flat_map(|(id, m)| m.iter().map(move |r| (id.to_owned(), r.target())))
        .collect();
    for (id, mapping) in ipam.clusters() {
        for remap in mapping.iter() {
            assert_eq!(
                remap.source().prefix_len(),
                remap.target().prefix_len(),
                "{id}: remap {remap:?} changes the size"
            );
        }
    }
    for (i, (id, target)) in live.iter().enumerate() {
        for local in &locals {
            assert!(
                !overlap(target, local),
                "{id}: {target} overlaps local {local}"
            );
        }
        for (other_id, other) in &live[i + 1..] {
            assert!(
                !overlap(target, other),
                "{id}: {target} overlaps {other} of {other_id}"
            );
        }
    }
    let external = ipam.config().external_cidrs[0];
    let mut seen = std::collections::BTreeSet::new();
    for (key, addr, _) in ipam.ips() {
        assert!(external.contains(&addr), "{key}: {addr} outside {external}");
        assert_ne!(
            addr,
            external.network(),
            "{key}: got the unknown-source address"
        );
        assert!(seen.insert(addr), "{key}: {addr} handed out twice");
    }
}

/// Rebuilds an IPAM from the recorded state of `ipam` (as a controller does from Configuration
/// and IP statuses), restoring in the given order.
fn rebuild(ipam: &Ipam, order: &[usize]) -> Ipam {
    let mut rebuilt = Ipam::new(ipam.config().clone()).unwrap();
    let clusters: Vec<(String, ClusterMapping)> = ipam
        .clusters()
        .map(|(id, m)| (id.to_owned(), m.clone()))
        .collect();
    for &i in order.iter().filter(|&&i| i < clusters.len()) {
        let (id, mapping) = &clusters[i];
        rebuilt
            .restore_cluster(id, mapping)
            .unwrap_or_else(|e| panic!("restoring {id} failed: {e}"));
    }
    for (id, mapping) in &clusters {
        rebuilt.restore_cluster(id, mapping).unwrap();
    }
    let ips: Vec<(String, IpAddr, IpAddr)> = ipam
        .ips()
        .map(|(k, addr, local)| (k.to_owned(), addr, local))
        .collect();
    for (key, addr, local) in ips.iter().rev() {
        rebuilt.restore_ip(key, *local, *addr).unwrap();
    }
    rebuilt
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn live_allocations_never_overlap(pod in local_pod(), ops in prop::collection::vec(op(), 1..60)) {
        let mut ipam = Ipam::new(config(pod)).unwrap();
        for op in &ops {
            apply(&mut ipam, op);
            check_invariants(&ipam);
        }
    }

    #[test]
    fn rebuild_from_statuses_gives_the_same_answers(
        pod in local_pod(),
        ops in prop::collection::vec(op(), 1..60),
        next in prop::collection::vec(op(), 1..20),
        order in Just((0..12).collect::<Vec<usize>>()).prop_shuffle(),
    ) {
        let mut original = Ipam::new(config(pod)).unwrap();
        for op in &ops {
            apply(&mut original, op);
        }
        let mut rebuilt = rebuild(&original, &order);
        let live_a: Vec<_> = original.clusters().map(|(k, v)| (k.to_owned(), v.clone())).collect();
        let live_b: Vec<_> = rebuilt.clusters().map(|(k, v)| (k.to_owned(), v.clone())).collect();
        prop_assert_eq!(live_a, live_b);
        for op in &next {
            let a = apply(&mut original, op);
            let b = apply(&mut rebuilt, op);
            prop_assert_eq!(a, b, "answers differ after rebuild for {:?}", op);
        }
    }

    #[test]
    fn release_then_allocate_reuses_space(pod in local_pod(), len in 16u8..=20) {
        // Fill the pools with one-CIDR peers of one size until exhaustion.
        let mut ipam = Ipam::new(config(pod)).unwrap();
        let source: IpNet = IpNet::V4(Ipv4Net::new(Ipv4Addr::new(10, 96, 0, 0), len).unwrap());
        let request = RemoteCidrs { pod: vec![source], external: vec![] };
        let mut peers = 0u32;
        let err = loop {
            match ipam.map_cluster(&format!("p{peers}"), &request) {
                Ok(m) => prop_assert_eq!(m.pod[0].target().prefix_len(), len),
                Err(e) => break e,
            }
            peers += 1;
            prop_assert!(peers < 10_000, "the pools never ran out: allocations must overlap");
        };
        prop_assert!(matches!(err, IpamError::PoolsExhausted { .. }), "unexpected {:?}", err);
        prop_assert!(peers > 0);
        let victim = format!("p{}", peers / 2);
        let freed = ipam.release_cluster(&victim).unwrap().pod[0].target();
        let again = ipam.map_cluster("new", &request).unwrap();
        prop_assert_eq!(again.pod[0].target(), freed, "the only free block must be reused");
    }
}
