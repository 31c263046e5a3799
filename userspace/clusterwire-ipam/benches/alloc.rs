//! Allocation cost at scale: remapping a peer's CIDRs when 1,000 peers are already mapped, and a
//! single-IP mapping when 10,000 are already live. Target: well under 50 us per allocation.

use std::{
    hint::black_box,
    net::{IpAddr, Ipv4Addr},
};

use clusterwire_ipam::{Ipam, IpamConfig, RemoteCidrs};
use criterion::{Criterion, criterion_group, criterion_main};

const PEERS: u32 = 1_000;
const IPS: u32 = 10_000;

fn base() -> Ipam {
    let mut config = IpamConfig::new(
        vec!["10.243.0.0/16".parse().unwrap()],
        vec!["10.96.0.0/12".parse().unwrap()],
    );
    // A /14 external CIDR so that 10,000 single-IP mappings fit with room to spare.
    config.external_cidrs = vec!["10.68.0.0/14".parse().unwrap()];
    Ipam::new(config).unwrap()
}

/// Every peer announces the same pod (/20) and external (/22) CIDRs, all overlapping the local
/// pod CIDR, so every one of them needs two remaps: the worst case for the IPAM.
fn peer_request() -> RemoteCidrs {
    RemoteCidrs {
        pod: vec!["10.243.0.0/20".parse().unwrap()],
        external: vec!["10.243.16.0/22".parse().unwrap()],
    }
}

fn with_peers() -> Ipam {
    let mut ipam = base();
    let request = peer_request();
    for i in 0..PEERS {
        ipam.map_cluster(&format!("peer-{i}"), &request)
            .expect("1,000 peers fit in the default pools");
    }
    ipam
}

fn with_ips() -> Ipam {
    let mut ipam = base();
    for i in 0..IPS {
        let local = IpAddr::V4(Ipv4Addr::from(0xc000_0000 + i));
        ipam.allocate_ip(&format!("ns/ip-{i}"), local).unwrap();
    }
    ipam
}

fn bench(c: &mut Criterion) {
    let request = peer_request();
    let mut peers = with_peers();
    c.bench_function("remap peer (2 CIDRs) at 1000 peers: map+release", |b| {
        b.iter(|| {
            let mapping = peers
                .map_cluster("bench-peer", black_box(&request))
                .unwrap();
            black_box(&mapping);
            peers.release_cluster("bench-peer").unwrap();
        });
    });
    // Fragmented: release every other peer so the first-fit search walks holes of other sizes.
    let mut fragmented = with_peers();
    for i in (0..PEERS).step_by(2) {
        fragmented.release_cluster(&format!("peer-{i}")).unwrap();
    }
    let big = RemoteCidrs {
        pod: vec!["10.243.0.0/16".parse().unwrap()],
        external: vec![],
    };
    c.bench_function("remap /16 at 500 fragmented peers: map+release", |b| {
        b.iter(|| {
            black_box(
                fragmented
                    .map_cluster("bench-peer", black_box(&big))
                    .unwrap(),
            );
            fragmented.release_cluster("bench-peer").unwrap();
        });
    });
    let mut ips = with_ips();
    let local = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    c.bench_function("single IP at 10000 mappings: allocate+release", |b| {
        b.iter(|| {
            black_box(ips.allocate_ip("ns/bench", black_box(local)).unwrap());
            ips.release_ip("ns/bench").unwrap();
        });
    });
    // Fragmented: every other mapping released, then allocation takes the lowest hole.
    let mut holes = with_ips();
    for i in (0..IPS).step_by(2) {
        holes.release_ip(&format!("ns/ip-{i}")).unwrap();
    }
    c.bench_function(
        "single IP at 5000 fragmented mappings: allocate+release",
        |b| {
            b.iter(|| {
                black_box(holes.allocate_ip("ns/bench", black_box(local)).unwrap());
                holes.release_ip("ns/bench").unwrap();
            });
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
