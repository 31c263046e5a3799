use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
    path::Path,
};

use clusterwire_api::validation::ManifestValidator;
use ipnet::Ipv4Net;

use super::*;
use crate::{
    manifests::load_dir,
    snapshot::{Key, Kind, Snapshot},
};

/// The `cl01` fixture: client toward cl02, server toward cl03, two nodes, two IPs.
fn cl01() -> Snapshot {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cl01");
    let validator = ManifestValidator::for_api().unwrap();
    let loaded = load_dir(&dir, &validator).unwrap();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    loaded.snapshot
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn nets<const N: usize>(pairs: [(&str, &str); N]) -> BTreeMap<Ipv4Net, Ipv4Net> {
    pairs.into_iter().map(|(a, b)| (net(a), net(b))).collect()
}

fn node_routes() -> BTreeMap<Ipv4Net, NodeRoute> {
    BTreeMap::from([
        (
            net("10.0.0.0/24"),
            NodeRoute {
                node: "cl01-n1".to_owned(),
                address: ip("172.18.0.2"),
            },
        ),
        (
            net("10.0.1.0/24"),
            NodeRoute {
                node: "cl01-n2".to_owned(),
                address: ip("172.18.0.3"),
            },
        ),
        // The nodes' internal addresses (InternalNode), for host-network replies.
        (
            net("10.80.0.1/32"),
            NodeRoute {
                node: "cl01-n1".to_owned(),
                address: ip("172.18.0.2"),
            },
        ),
        (
            net("10.80.0.2/32"),
            NodeRoute {
                node: "cl01-n2".to_owned(),
                address: ip("172.18.0.3"),
            },
        ),
    ])
}

fn client_id() -> GatewayId {
    GatewayId {
        role: Role::Client,
        key: Key::new("liqo-tenant-cl02", "cl02"),
    }
}

#[test]
fn client_gateway() {
    let desired = gateway(&cl01(), &client_id()).unwrap();
    assert_eq!(
        desired,
        GatewayDesired {
            id: client_id(),
            remote_cluster_id: "cl02".to_owned(),
            wireguard: WireGuard {
                interface: "liqo-tunnel".to_owned(),
                mtu: 1340,
                address: net("169.254.18.2/30"),
                listen_port: None,
                peer: WireGuardPeer {
                    public_key: "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=".to_owned(),
                    endpoint: Some(Endpoint {
                        addresses: vec!["172.19.0.9".to_owned()],
                        port: 32701
                    }),
                    allowed_ips: vec![net("0.0.0.0/0")],
                    persistent_keepalive_secs: Some(25),
                },
            },
            peer_tunnel_address: ip("169.254.18.1"),
            vni: Vni::try_new(4242),
            remap_dst: nets([
                ("10.1.0.0/16", "10.0.0.0/16"),
                ("10.2.0.0/16", "10.70.0.0/16")
            ]),
            remap_src: nets([
                ("10.0.0.0/16", "10.1.0.0/16"),
                ("10.70.0.0/16", "10.2.0.0/16"),
                ("172.20.0.0/24", "172.20.0.0/24"),
            ]),
            ipmap_exit: BTreeMap::from([(ip("10.96.0.1"), ip("10.70.0.1"))]),
            ipmap_entry: BTreeMap::from([(ip("10.70.0.1"), ip("10.96.0.1"))]),
            node_routes: node_routes(),
            tunnel_routes: BTreeSet::from([
                net("10.1.0.0/16"),
                net("10.2.0.0/16"),
                net("172.20.0.0/24")
            ]),
            skipped: vec![],
        }
    );
}

#[test]
fn server_gateway() {
    let id = GatewayId {
        role: Role::Server,
        key: Key::new("liqo-tenant-cl03", "cl03"),
    };
    let desired = gateway(&cl01(), &id).unwrap();
    assert_eq!(
        desired.wireguard,
        WireGuard {
            interface: "liqo-tunnel".to_owned(),
            mtu: 1400,
            address: net("169.254.18.1/30"),
            listen_port: Some(51841),
            peer: WireGuardPeer {
                public_key: "ISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0A=".to_owned(),
                endpoint: None,
                allowed_ips: vec![net("0.0.0.0/0")],
                persistent_keepalive_secs: None,
            },
        }
    );
    assert_eq!(desired.remote_cluster_id, "cl03");
    assert_eq!(desired.peer_tunnel_address, ip("169.254.18.2"));
    assert_eq!(
        desired.vni.map(Vni::get),
        Some(3_176_718),
        "derived: no spec.vni"
    );
    assert_eq!(
        desired.remap_dst,
        nets([
            ("10.3.0.0/16", "10.0.0.0/16"),
            ("10.4.0.0/16", "10.70.0.0/16")
        ])
    );
    assert_eq!(
        desired.remap_src,
        nets([
            ("10.0.0.0/16", "10.3.0.0/16"),
            ("10.70.0.0/16", "10.4.0.0/16")
        ])
    );
    assert_eq!(desired.node_routes, node_routes());
}

#[test]
fn every_gateway_of_the_snapshot() {
    assert_eq!(
        gateway_ids(&cl01()),
        [
            GatewayId {
                role: Role::Server,
                key: Key::new("liqo-tenant-cl03", "cl03")
            },
            client_id()
        ]
    );
}

#[test]
fn server_port_defaults_to_51840() {
    let mut snapshot = cl01();
    let key = Key::new("liqo-tenant-cl03", "cl03");
    snapshot
        .gateway_servers
        .get_mut(&key)
        .unwrap()
        .spec
        .endpoint
        .port = None;
    let id = GatewayId {
        role: Role::Server,
        key,
    };
    assert_eq!(
        gateway(&snapshot, &id).unwrap().wireguard.listen_port,
        Some(51840)
    );
}

#[test]
fn gateway_errors_name_the_object_and_field() {
    let snapshot = cl01();
    let conf_key = Key::new("liqo-tenant-cl02", "cl02");
    let error = |snapshot: &Snapshot| gateway(snapshot, &client_id()).unwrap_err().to_string();

    let mut no_status = snapshot.clone();
    no_status.configurations.get_mut(&conf_key).unwrap().status = None;
    assert_eq!(
        error(&no_status),
        "Configuration liqo-tenant-cl02/cl02: status.remote.cidr.pod: \
         0 remapped CIDRs for 2 in spec.remote.cidr.pod (not remapped yet?)"
    );

    let mut wrong_size = snapshot.clone();
    let status = wrong_size.configurations.get_mut(&conf_key).unwrap();
    let remote = status.status.as_mut().unwrap().remote.as_mut().unwrap();
    remote.cidr.external[0] = "10.2.0.0/24".parse().unwrap();
    assert_eq!(
        error(&wrong_size),
        "Configuration liqo-tenant-cl02/cl02: status.remote.cidr.external[0]: \
         10.2.0.0/24 is not the size of 10.70.0.0/16"
    );

    let mut no_key = snapshot.clone();
    no_key.public_keys.clear();
    assert_eq!(
        error(&no_key),
        "no PublicKey labelled liqo.io/remote-cluster-id=cl02 (for liqo-tenant-cl02/cl02)"
    );
    assert_eq!(
        gateway(&no_key, &client_id()).unwrap_err(),
        DesiredError::Missing {
            kind: Kind::PublicKey,
            remote_cluster_id: "cl02".to_owned(),
            gateway: Key::new("liqo-tenant-cl02", "cl02"),
        }
    );

    let mut no_label = snapshot.clone();
    no_label
        .gateway_clients
        .get_mut(&conf_key)
        .unwrap()
        .metadata
        .labels = None;
    assert_eq!(
        error(&no_label),
        "GatewayClient liqo-tenant-cl02/cl02: metadata.labels: no liqo.io/remote-cluster-id label"
    );

    let wrong_role = GatewayId {
        role: Role::Server,
        key: conf_key,
    };
    assert_eq!(
        gateway(&snapshot, &wrong_role).unwrap_err().to_string(),
        "GatewayServer liqo-tenant-cl02/cl02 not found"
    );
}

#[test]
fn bad_shared_objects_are_skipped_not_fatal() {
    let mut snapshot = cl01();
    // Node cl01-n2 claims n1's pod CIDR and loses its address; a second IP reuses 10.70.0.1.
    let n2 = snapshot.nodes.get_mut(&Key::cluster("cl01-n2")).unwrap();
    n2.spec.as_mut().unwrap().pod_cidrs = Some(vec!["10.0.0.0/24".to_owned()]);
    let mut dup = snapshot.ips[&Key::new("liqo", "api-server")].clone();
    dup.metadata.name = Some("b-dup".to_owned());
    dup.spec.ip = clusterwire_api::common::Ip("10.96.0.9".parse().unwrap());
    snapshot.ips.insert(Key::new("liqo", "b-dup"), dup);
    let desired = gateway(&snapshot, &client_id()).unwrap();
    let skipped: Vec<_> = desired.skipped.iter().map(ToString::to_string).collect();
    assert_eq!(
        skipped,
        [
            "IP liqo/b-dup: status.ip: address already mapped by another IP",
            "Node cl01-n2: spec.podCIDRs[0]: 10.0.0.0/24 is already node cl01-n1's",
        ]
    );
    assert_eq!(desired.ipmap_exit.len(), 1);
    // cl01-n1's pod CIDR and the internal addresses of both nodes (cl01-n2's pod CIDR is the
    // skipped duplicate).
    assert_eq!(desired.node_routes.len(), 3);
}

#[test]
fn agent_routes_every_gateway() {
    let desired = agent(&cl01(), "cl01-n2");
    let cl02 = Key::new("liqo-tenant-cl02", "cl02");
    let cl03 = Key::new("liqo-tenant-cl03", "cl03");
    let vni02 = Vni::try_new(4242).unwrap();
    let vni03 = Vni::derive(&cl03);
    let route = |gateway: &Key, gateway_ip, vni, mtu| AgentRoute {
        gateway: gateway.clone(),
        gateway_ip: ip(gateway_ip),
        vni,
        mtu,
    };
    assert_eq!(
        desired,
        AgentDesired {
            node: "cl01-n2".to_owned(),
            internal_address: Some(ip("10.80.0.2")),
            gateways: BTreeMap::from([
                (
                    cl02.clone(),
                    AgentGateway {
                        remote_cluster_id: Some("cl02".to_owned()),
                        gateway_ip: ip("10.0.0.7"),
                        gateway_internal_ip: ip("10.80.0.3"),
                        vni: vni02,
                        mtu: 1340,
                        remote_cidrs: BTreeSet::from([
                            net("10.1.0.0/16"),
                            net("10.2.0.0/16"),
                            net("172.20.0.0/24")
                        ]),
                    }
                ),
                (
                    cl03.clone(),
                    AgentGateway {
                        remote_cluster_id: Some("cl03".to_owned()),
                        gateway_ip: ip("10.0.1.9"),
                        gateway_internal_ip: ip("10.80.0.4"),
                        vni: vni03,
                        mtu: 1400,
                        remote_cidrs: BTreeSet::from([net("10.3.0.0/16"), net("10.4.0.0/16")]),
                    }
                ),
            ]),
            routes: BTreeMap::from([
                (net("10.1.0.0/16"), route(&cl02, "10.0.0.7", vni02, 1340)),
                (net("10.2.0.0/16"), route(&cl02, "10.0.0.7", vni02, 1340)),
                (net("172.20.0.0/24"), route(&cl02, "10.0.0.7", vni02, 1340)),
                (net("10.3.0.0/16"), route(&cl03, "10.0.1.9", vni03, 1400)),
                (net("10.4.0.0/16"), route(&cl03, "10.0.1.9", vni03, 1400)),
            ]),
            decap_peers: BTreeSet::from([(ip("10.0.0.7"), vni02), (ip("10.0.1.9"), vni03)]),
            skipped: vec![],
        }
    );
}

#[test]
fn agent_follows_a_gateway_ip_change_as_a_small_diff() {
    let before = agent(&cl01(), "cl01-n1");
    let mut snapshot = cl01();
    let cl02 = Key::new("liqo-tenant-cl02", "cl02");
    snapshot
        .internal_fabrics
        .get_mut(&cl02)
        .unwrap()
        .spec
        .gateway_ip = clusterwire_api::common::Ip("10.0.1.20".parse().unwrap());
    let after = agent(&snapshot, "cl01-n1");
    let routes = diff(&before.routes, &after.routes);
    assert!(routes.add.is_empty() && routes.remove.is_empty());
    assert_eq!(
        routes.update.keys().copied().collect::<Vec<_>>(),
        [net("10.1.0.0/16"), net("10.2.0.0/16"), net("172.20.0.0/24")]
    );
    assert!(
        routes
            .update
            .values()
            .all(|r| r.gateway_ip == ip("10.0.1.20"))
    );
    let peers = diff_sets(&before.decap_peers, &after.decap_peers);
    let vni = Vni::try_new(4242).unwrap();
    assert_eq!(
        peers.add.into_iter().collect::<Vec<_>>(),
        [(ip("10.0.1.20"), vni)]
    );
    assert_eq!(
        peers.remove.into_iter().collect::<Vec<_>>(),
        [(ip("10.0.0.7"), vni)]
    );
}

#[test]
fn agent_skips_conflicting_routes_and_tolerates_a_missing_internal_node() {
    let mut snapshot = cl01();
    let cl03 = Key::new("liqo-tenant-cl03", "cl03");
    snapshot
        .internal_fabrics
        .get_mut(&cl03)
        .unwrap()
        .spec
        .remote_cidrs
        .push("10.1.0.0/16".parse().unwrap());
    let desired = agent(&snapshot, "unknown-node");
    assert_eq!(desired.internal_address, None);
    let skipped: Vec<_> = desired.skipped.iter().map(ToString::to_string).collect();
    assert_eq!(
        skipped,
        [
            "InternalFabric liqo-tenant-cl03/cl03: spec.remoteCIDRs[2]: \
          10.1.0.0/16 is already routed to liqo-tenant-cl02/cl02"
        ]
    );
    assert_eq!(desired.routes[&net("10.1.0.0/16")].gateway.name, "cl02");
}
