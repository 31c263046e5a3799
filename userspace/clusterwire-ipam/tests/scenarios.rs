//! Worked scenarios of the remapping IPAM with exact expected answers.

use std::net::IpAddr;

use clusterwire_ipam::{
    ClusterMapping, Family, InternalOwner, Ipam, IpamConfig, IpamError, Remap, RemoteCidrs,
};
use ipnet::{IpNet, Ipv4Net};

fn net(s: &str) -> IpNet {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Local pod 10.243.0.0/16 (the same as the seed example's remote), services 10.96.0.0/12.
fn ipam() -> Ipam {
    Ipam::new(IpamConfig::new(
        vec![net("10.243.0.0/16")],
        vec![net("10.96.0.0/12")],
    ))
    .unwrap()
}

fn remote(pod: &[&str], external: &[&str]) -> RemoteCidrs {
    RemoteCidrs {
        pod: pod.iter().map(|s| net(s)).collect(),
        external: external.iter().map(|s| net(s)).collect(),
    }
}

fn targets(mapping: &ClusterMapping) -> Vec<String> {
    mapping.iter().map(|r| r.target().to_string()).collect()
}

#[test]
fn overlapping_cidrs_are_remapped_to_lowest_free_block_of_same_size() {
    let mut ipam = ipam();
    // Seed 004's Configuration: the peer has the same pod CIDR and external CIDR as we do.
    let first = ipam
        .map_cluster("cl02", &remote(&["10.243.0.0/16"], &["10.70.0.0/16"]))
        .unwrap();
    assert_eq!(targets(&first), ["10.0.0.0/16", "10.1.0.0/16"]);
    // A second peer with the same CIDRs gets the next blocks.
    let second = ipam
        .map_cluster("cl03", &remote(&["10.243.0.0/16"], &["10.70.0.0/16"]))
        .unwrap();
    assert_eq!(targets(&second), ["10.2.0.0/16", "10.3.0.0/16"]);
    // A free CIDR is kept as is; a later peer overlapping it is remapped.
    let kept = ipam
        .map_cluster("cl04", &remote(&["100.64.0.0/16"], &[]))
        .unwrap();
    assert!(
        kept.pod[0].is_identity(),
        "a non-overlapping CIDR keeps its addresses"
    );
    let inside = ipam
        .map_cluster("cl05", &remote(&["100.64.128.0/17"], &[]))
        .unwrap();
    assert_eq!(targets(&inside), ["10.4.0.0/17"]);
    // Same request again: same answer; different request: refused.
    assert_eq!(
        ipam.map_cluster("cl02", &remote(&["10.243.0.0/16"], &["10.70.0.0/16"]))
            .unwrap(),
        first
    );
    assert!(matches!(
        ipam.map_cluster("cl02", &remote(&["10.244.0.0/16"], &[])),
        Err(IpamError::AlreadyMapped { .. })
    ));
    // Release then allocate reuses the lowest block.
    ipam.release_cluster("cl02").unwrap();
    let reused = ipam
        .map_cluster("cl06", &remote(&["10.243.0.0/24"], &[]))
        .unwrap();
    assert_eq!(targets(&reused), ["10.0.0.0/24"]);
}

#[test]
fn remaps_skip_local_ranges_and_move_to_next_pool() {
    let mut config = IpamConfig::new(vec![net("10.0.0.0/9")], vec![]);
    config.reserved = vec![net("10.128.0.0/9")];
    let mut ipam = Ipam::new(config).unwrap();
    let m = ipam
        .map_cluster("peer", &remote(&["10.0.0.0/16"], &["10.200.0.0/16"]))
        .unwrap();
    assert_eq!(
        targets(&m),
        ["172.16.0.0/16", "172.17.0.0/16"],
        "10.0.0.0/8 is fully local, so the second pool must be used"
    );
}

#[test]
fn exhaustion_is_a_typed_error_and_changes_nothing() {
    let mut config = IpamConfig::new(vec![net("10.243.0.0/16")], vec![]);
    config.pools_v4 = vec!["192.168.0.0/23".parse::<Ipv4Net>().unwrap()];
    let mut ipam = Ipam::new(config).unwrap();
    ipam.map_cluster("a", &remote(&["10.243.0.0/24"], &[]))
        .unwrap();
    let err = ipam
        .map_cluster("b", &remote(&["10.243.0.0/24", "10.243.1.0/24"], &[]))
        .unwrap_err();
    assert_eq!(
        err,
        IpamError::PoolsExhausted {
            source_cidr: net("10.243.1.0/24"),
            prefix_len: 24,
            family: Family::V4
        }
    );
    assert!(ipam.cluster("b").is_none());
    // Nothing of the failed request stayed reserved: a single /24 still fits.
    let kept = ipam
        .map_cluster("c", &remote(&["10.243.0.0/24"], &[]))
        .unwrap();
    assert_eq!(targets(&kept), ["192.168.1.0/24"]);
    assert!(matches!(
        ipam.map_cluster("d", &remote(&["10.1.2.0/16"], &[])),
        Err(IpamError::InvalidCidr { .. })
    ));
}

#[test]
fn ipv6_cidrs_are_remapped_from_ipv6_pools() {
    let mut ipam = Ipam::new(IpamConfig::new(
        vec![net("10.243.0.0/16"), net("fd00:10:243::/56")],
        vec![],
    ))
    .unwrap();
    let m = ipam
        .map_cluster("v6", &remote(&["10.243.0.0/16", "fd00:10:243::/56"], &[]))
        .unwrap();
    assert_eq!(targets(&m), ["10.0.0.0/16", "fd00::/56"]);
    let mut no_v6 = IpamConfig::new(vec![net("fd00::/64")], vec![]);
    no_v6.pools_v6.clear();
    let mut ipam = Ipam::new(no_v6).unwrap();
    assert!(matches!(
        ipam.map_cluster("v6", &remote(&["fd00::/64"], &[])),
        Err(IpamError::NoPool {
            family: Family::V6,
            ..
        })
    ));
}

#[test]
fn single_ip_mappings_skip_the_unknown_source_address() {
    let mut ipam = ipam();
    assert_eq!(
        ipam.unknown_source_address(Family::V4),
        Some(ip("10.70.0.0"))
    );
    assert_eq!(
        ipam.allocate_ip("ns/a", ip("192.0.2.10")).unwrap(),
        ip("10.70.0.1")
    );
    assert_eq!(
        ipam.allocate_ip("ns/b", ip("192.0.2.11")).unwrap(),
        ip("10.70.0.2")
    );
    assert_eq!(
        ipam.allocate_ip("ns/a", ip("192.0.2.10")).unwrap(),
        ip("10.70.0.1"),
        "allocation must be idempotent per key"
    );
    assert!(matches!(
        ipam.allocate_ip("ns/a", ip("192.0.2.99")),
        Err(IpamError::KeyConflict { .. })
    ));
    assert!(matches!(
        ipam.allocate_ip("ns/v6", ip("2001:db8::1")),
        Err(IpamError::NoRange {
            what: "external",
            family: Family::V6
        })
    ));
    assert_eq!(ipam.release_ip("ns/a"), Some(ip("10.70.0.1")));
    assert_eq!(
        ipam.allocate_ip("ns/c", ip("192.0.2.12")).unwrap(),
        ip("10.70.0.1")
    );
    assert!(matches!(
        ipam.restore_ip("ns/d", ip("192.0.2.13"), ip("10.70.0.0")),
        Err(IpamError::RestoreConflict { .. })
    ));
}

#[test]
fn internal_addresses_for_nodes_and_gateways() {
    let mut ipam = ipam();
    let node = InternalOwner::Node("worker-1".into());
    let gw = InternalOwner::Gateway("liqo-tenant-cl02/gw-cl02".into());
    assert_eq!(
        ipam.allocate_internal(&node, Family::V4).unwrap(),
        ip("10.80.0.1")
    );
    assert_eq!(
        ipam.allocate_internal(&gw, Family::V4).unwrap(),
        ip("10.80.0.2")
    );
    assert_eq!(
        ipam.allocate_internal(&node, Family::V4).unwrap(),
        ip("10.80.0.1")
    );
    assert_eq!(ipam.release_internal(&node), vec![ip("10.80.0.1")]);
    assert_eq!(ipam.internal(&gw, Family::V4), Some(ip("10.80.0.2")));
    let mut rebuilt = self::ipam();
    rebuilt.restore_internal(&gw, ip("10.80.0.2")).unwrap();
    assert_eq!(
        rebuilt.allocate_internal(&node, Family::V4).unwrap(),
        ip("10.80.0.1")
    );
}

#[test]
fn restore_refuses_conflicting_records() {
    let mut ipam = ipam();
    let local_overlap = ClusterMapping {
        pod: vec![Remap::try_new(net("10.243.0.0/16"), net("10.243.0.0/16")).unwrap()],
        external: vec![],
    };
    assert!(matches!(
        ipam.restore_cluster("x", &local_overlap),
        Err(IpamError::RestoreConflict {
            what: "identity mapping",
            ..
        })
    ));
    let ok = ClusterMapping {
        pod: vec![Remap::try_new(net("10.243.0.0/16"), net("10.5.0.0/16")).unwrap()],
        external: vec![],
    };
    ipam.restore_cluster("a", &ok).unwrap();
    ipam.restore_cluster("a", &ok).unwrap();
    assert!(matches!(
        ipam.restore_cluster("b", &ok),
        Err(IpamError::RestoreConflict { what: "remap", .. })
    ));
}
