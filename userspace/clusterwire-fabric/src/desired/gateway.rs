//! The desired state of one peering's gateway.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv4Addr},
};

use clusterwire_api::{
    common::{Cidr, GATEWAY_PORT_DEFAULT, MTU_DEFAULT},
    networking::{Configuration, InternalFabric},
};
use ipnet::{IpNet, Ipv4Net};

use super::{DesiredError, Skipped, Vni};
use crate::{
    node::NodeSummary,
    snapshot::{Key, Kind, Snapshot, remote_cluster_id},
};

/// Name of the WireGuard interface (the reference's).
pub const TUNNEL_INTERFACE: &str = "liqo-tunnel";
/// Persistent keepalive of the client, in seconds: keeps a NAT mapping on the path open (the
/// interval WireGuard's documentation recommends; the reference sets none).
pub const PERSISTENT_KEEPALIVE_SECS: u16 = 25;

/// The kinds that describe one peering: a gateway reads them from its own namespace (its
/// Kubernetes source watches only that one; its manifests source skips the others' objects).
pub const PEERING_KINDS: [Kind; 5] = [
    Kind::Configuration,
    Kind::GatewayServer,
    Kind::GatewayClient,
    Kind::PublicKey,
    Kind::InternalFabric,
];

/// Which end of the tunnel the gateway is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Listens; defined by a `GatewayServer`.
    Server,
    /// Dials; defined by a `GatewayClient`.
    Client,
}

impl Role {
    /// The kind of the gateway object.
    pub const fn kind(self) -> Kind {
        match self {
            Self::Server => Kind::GatewayServer,
            Self::Client => Kind::GatewayClient,
        }
    }

    /// This end's tunnel address: 169.254.18.1/30 (server) or 169.254.18.2/30 (client).
    pub fn tunnel_address(self) -> Ipv4Net {
        let host = match self {
            Self::Server => 1,
            Self::Client => 2,
        };
        Ipv4Net::new(Ipv4Addr::new(169, 254, 18, host), 30).unwrap_or_default()
    }

    /// The other end's tunnel address (where health check pings go).
    pub fn peer_tunnel_address(self) -> Ipv4Addr {
        match self {
            Self::Server => Self::Client,
            Self::Client => Self::Server,
        }
        .tunnel_address()
        .addr()
    }
}

/// Which gateway a daemon runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GatewayId {
    /// Server or client.
    pub role: Role,
    /// The `GatewayServer`/`GatewayClient` object.
    pub key: Key,
}

/// The WireGuard link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireGuard {
    /// Interface name, [`TUNNEL_INTERFACE`].
    pub interface: String,
    /// Link MTU: the gateway's `spec.mtu`, default 1340.
    pub mtu: u16,
    /// Address of this end ([`Role::tunnel_address`]).
    pub address: Ipv4Net,
    /// UDP port to listen on (server: `spec.endpoint.port`, default 51840; client: none).
    pub listen_port: Option<u16>,
    /// The one peer.
    pub peer: WireGuardPeer,
}

/// The remote gateway as a WireGuard peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireGuardPeer {
    /// Its public key, base64 of 32 bytes (from the `PublicKey` labelled with its cluster id).
    pub public_key: String,
    /// Where to send to (client only: the server's `spec.endpoint`).
    pub endpoint: Option<Endpoint>,
    /// Allowed source addresses: 0.0.0.0/0 (the NAT program does anti-spoofing).
    pub allowed_ips: Vec<Ipv4Net>,
    /// Persistent keepalive (client only), seconds.
    pub persistent_keepalive_secs: Option<u16>,
}

/// A server endpoint as the client's spec gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// IP addresses or DNS names, to try in order (names resolved by the daemon).
    pub addresses: Vec<String>,
    /// UDP port.
    pub port: u16,
}

/// Where the gateway sends traffic for a local pod CIDR.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeRoute {
    /// The node's name.
    pub node: String,
    /// The node's underlay address (the Geneve destination).
    pub address: Ipv4Addr,
}

/// Everything one peering's gateway applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayDesired {
    /// The gateway.
    pub id: GatewayId,
    /// The remote cluster (its label).
    pub remote_cluster_id: String,
    /// The WireGuard link.
    pub wireguard: WireGuard,
    /// Where health check pings go.
    pub peer_tunnel_address: Ipv4Addr,
    /// This gateway's VNI toward the nodes (from its `InternalFabric`; `None` until one exists).
    pub vni: Option<Vni>,
    /// Into the tunnel (`RemapKind::Dst`): remapped prefix -> the peer's real prefix, only for
    /// CIDRs actually remapped.
    pub remap_dst: BTreeMap<Ipv4Net, Ipv4Net>,
    /// Out of the tunnel (`RemapKind::Src`): the peer's real prefix -> remapped prefix, with an
    /// identity entry for each announced CIDR that is not remapped (anti-spoofing).
    pub remap_src: BTreeMap<Ipv4Net, Ipv4Net>,
    /// Into the tunnel (`IpMapKind::Exit`): local IP -> its external-CIDR address (IP
    /// resources with a status).
    pub ipmap_exit: BTreeMap<Ipv4Addr, Ipv4Addr>,
    /// Out of the tunnel (`IpMapKind::Entry`): external-CIDR address -> local IP.
    pub ipmap_entry: BTreeMap<Ipv4Addr, Ipv4Addr>,
    /// Local pod CIDR -> node (from core Node objects), and each node's internal-CIDR address
    /// (its `InternalNode`, the source of its host-network traffic) -> that node.
    pub node_routes: BTreeMap<Ipv4Net, NodeRoute>,
    /// The peer's CIDRs as seen locally (remapped pod and external), routed into the tunnel.
    pub tunnel_routes: BTreeSet<Ipv4Net>,
    /// Shared objects left out.
    pub skipped: Vec<Skipped>,
}

/// Every gateway of the snapshot: servers then clients, each in key order.
pub fn gateway_ids(snapshot: &Snapshot) -> Vec<GatewayId> {
    let ids = |role: Role, keys: Vec<&Key>| {
        keys.into_iter()
            .map(move |key| GatewayId {
                role,
                key: key.clone(),
            })
            .collect::<Vec<_>>()
    };
    let mut all = ids(Role::Server, snapshot.gateway_servers.keys().collect());
    all.extend(ids(Role::Client, snapshot.gateway_clients.keys().collect()));
    all
}

/// What the gateway object says, independent of its role.
struct GatewayFacts {
    remote: String,
    mtu: u16,
    listen_port: Option<u16>,
    endpoint: Option<Endpoint>,
}

fn field_error(kind: Kind, key: &Key, field: &str, reason: impl Into<String>) -> DesiredError {
    DesiredError::Field {
        kind,
        key: key.clone(),
        field: field.to_owned(),
        reason: reason.into(),
    }
}

fn mtu(kind: Kind, key: &Key, mtu: Option<i32>) -> Result<u16, DesiredError> {
    u16::try_from(mtu.unwrap_or(MTU_DEFAULT))
        .map_err(|_| field_error(kind, key, "spec.mtu", "out of range"))
}

fn port(kind: Kind, key: &Key, field: &str, port: i32) -> Result<u16, DesiredError> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| field_error(kind, key, field, "must be a port in 1..65535"))
}

fn facts(snapshot: &Snapshot, id: &GatewayId) -> Result<GatewayFacts, DesiredError> {
    let kind = id.role.kind();
    let key = &id.key;
    let missing = || DesiredError::NoGateway {
        kind,
        key: key.clone(),
    };
    let no_label = || DesiredError::NoRemoteClusterId {
        kind,
        key: key.clone(),
    };
    match id.role {
        Role::Server => {
            let server = snapshot.gateway_servers.get(key).ok_or_else(missing)?;
            let remote = remote_cluster_id(&server.metadata).ok_or_else(no_label)?;
            let endpoint = &server.spec.endpoint;
            let (field, listen) = match (&endpoint.port, &endpoint.ports) {
                (Some(p), _) => ("spec.endpoint.port", *p),
                (None, Some(ports)) if !ports.is_empty() => ("spec.endpoint.ports[0]", ports[0]),
                _ => ("spec.endpoint.port", GATEWAY_PORT_DEFAULT),
            };
            Ok(GatewayFacts {
                remote: remote.to_owned(),
                mtu: mtu(kind, key, server.spec.mtu)?,
                listen_port: Some(port(kind, key, field, listen)?),
                endpoint: None,
            })
        }
        Role::Client => {
            let client = snapshot.gateway_clients.get(key).ok_or_else(missing)?;
            let remote = remote_cluster_id(&client.metadata).ok_or_else(no_label)?;
            let endpoint = &client.spec.endpoint;
            let (field, dial) = match (&endpoint.port, &endpoint.ports) {
                (Some(p), _) => ("spec.endpoint.port", *p),
                (None, Some(ports)) if !ports.is_empty() => ("spec.endpoint.ports[0]", ports[0]),
                _ => return Err(field_error(kind, key, "spec.endpoint.port", "required")),
            };
            if endpoint.addresses.is_empty() {
                return Err(field_error(
                    kind,
                    key,
                    "spec.endpoint.addresses",
                    "required",
                ));
            }
            Ok(GatewayFacts {
                remote: remote.to_owned(),
                mtu: mtu(kind, key, client.spec.mtu)?,
                listen_port: None,
                endpoint: Some(Endpoint {
                    addresses: endpoint.addresses.clone(),
                    port: port(kind, key, field, dial)?,
                }),
            })
        }
    }
}

/// The desired state of the gateway `id`.
pub fn gateway(snapshot: &Snapshot, id: &GatewayId) -> Result<GatewayDesired, DesiredError> {
    let facts = facts(snapshot, id)?;
    let namespace = id.key.namespace.as_str();
    let missing = |kind| DesiredError::Missing {
        kind,
        remote_cluster_id: facts.remote.clone(),
        gateway: id.key.clone(),
    };
    let (_, public_key) = snapshot
        .public_key_for(namespace, &facts.remote)
        .ok_or_else(|| missing(Kind::PublicKey))?;
    let (conf_key, conf) = snapshot
        .configuration_for(namespace, &facts.remote)
        .ok_or_else(|| missing(Kind::Configuration))?;

    let mut remap_dst = BTreeMap::new();
    let mut remap_src = BTreeMap::new();
    let mut tunnel_routes = BTreeSet::new();
    for (real, remapped) in remaps(conf_key, conf)? {
        if real != remapped {
            remap_dst.insert(remapped, real);
        }
        remap_src.insert(real, remapped);
        tunnel_routes.insert(remapped);
    }

    let mut skipped = Vec::new();
    let (ipmap_exit, ipmap_entry) = ip_maps(snapshot, &mut skipped);
    let node_routes = node_routes(snapshot, &mut skipped);
    let vni =
        fabric_of(snapshot, &id.key, &facts.remote).map(|(key, fabric)| fabric_vni(key, fabric));
    let client = id.role == Role::Client;
    Ok(GatewayDesired {
        id: id.clone(),
        remote_cluster_id: facts.remote,
        wireguard: WireGuard {
            interface: TUNNEL_INTERFACE.to_owned(),
            mtu: facts.mtu,
            address: id.role.tunnel_address(),
            listen_port: facts.listen_port,
            peer: WireGuardPeer {
                public_key: public_key.spec.public_key.clone(),
                endpoint: facts.endpoint,
                allowed_ips: vec![Ipv4Net::default()],
                persistent_keepalive_secs: client.then_some(PERSISTENT_KEEPALIVE_SECS),
            },
        },
        peer_tunnel_address: id.role.peer_tunnel_address(),
        vni,
        remap_dst,
        remap_src,
        ipmap_exit,
        ipmap_entry,
        node_routes,
        tunnel_routes,
        skipped,
    })
}

/// The VNI of a fabric: its `spec.vni`, else [`Vni::derive`].
pub(super) fn fabric_vni(key: &Key, fabric: &InternalFabric) -> Vni {
    fabric
        .spec
        .vni
        .and_then(Vni::try_new)
        .unwrap_or_else(|| Vni::derive(key))
}

/// The gateway's `InternalFabric`: the one with the gateway's namespace/name, else the one
/// labelled with its remote cluster id in its namespace.
fn fabric_of<'a>(
    snapshot: &'a Snapshot,
    gateway: &Key,
    remote: &str,
) -> Option<(&'a Key, &'a InternalFabric)> {
    snapshot
        .internal_fabrics
        .get_key_value(gateway)
        .or_else(|| {
            snapshot.internal_fabrics.iter().find(|(k, f)| {
                k.namespace == gateway.namespace && remote_cluster_id(&f.metadata) == Some(remote)
            })
        })
        .map(|(k, f)| (k, &**f))
}

/// (real, remapped) pairs of a Configuration, pod CIDRs then external ones.
fn remaps(key: &Key, conf: &Configuration) -> Result<Vec<(Ipv4Net, Ipv4Net)>, DesiredError> {
    let remote = &conf.spec.remote.cidr;
    let status = conf.status.as_ref().and_then(|s| s.remote.as_ref());
    let lists = [
        (
            "pod",
            remote.pod.0.as_slice(),
            status.map(|s| s.cidr.pod.as_slice()),
        ),
        (
            "external",
            remote.external.as_ref().map_or(&[][..], |e| e.0.as_slice()),
            status.map(|s| s.cidr.external.as_slice()),
        ),
    ];
    let mut pairs = Vec::new();
    for (name, real, remapped) in lists {
        if real.is_empty() {
            continue;
        }
        let error = |field: String, reason: String| DesiredError::Field {
            kind: Kind::Configuration,
            key: key.clone(),
            field,
            reason,
        };
        let remapped = remapped.unwrap_or_default();
        if remapped.len() != real.len() {
            return Err(error(
                format!("status.remote.cidr.{name}"),
                format!(
                    "{} remapped CIDRs for {} in spec.remote.cidr.{name} (not remapped yet?)",
                    remapped.len(),
                    real.len()
                ),
            ));
        }
        for (i, (r, m)) in real.iter().zip(remapped).enumerate() {
            let r = v4(*r).ok_or_else(|| {
                error(
                    format!("spec.remote.cidr.{name}[{i}]"),
                    "IPv6 is not supported by the data plane yet".to_owned(),
                )
            })?;
            let m = v4(*m).ok_or_else(|| {
                error(
                    format!("status.remote.cidr.{name}[{i}]"),
                    "IPv6 is not supported by the data plane yet".to_owned(),
                )
            })?;
            if r.prefix_len() != m.prefix_len() {
                return Err(error(
                    format!("status.remote.cidr.{name}[{i}]"),
                    format!("{m} is not the size of {r}"),
                ));
            }
            pairs.push((r, m));
        }
    }
    Ok(pairs)
}

fn v4(cidr: Cidr) -> Option<Ipv4Net> {
    match cidr.0 {
        IpNet::V4(net) => Some(net.trunc()),
        IpNet::V6(_) => None,
    }
}

/// Single-IP maps from every IP resource with a status.
fn ip_maps(
    snapshot: &Snapshot,
    skipped: &mut Vec<Skipped>,
) -> (BTreeMap<Ipv4Addr, Ipv4Addr>, BTreeMap<Ipv4Addr, Ipv4Addr>) {
    let mut exit = BTreeMap::new();
    let mut entry = BTreeMap::new();
    for (key, ip) in &snapshot.ips {
        let Some(mapped) = ip.status.as_ref().and_then(|s| s.ip) else {
            continue;
        };
        let skip = |field: &str, reason: &str| Skipped {
            kind: Kind::Ip,
            key: key.clone(),
            field: field.to_owned(),
            reason: reason.to_owned(),
        };
        let (IpAddr::V4(local), IpAddr::V4(mapped)) = (ip.spec.ip.0, mapped.0) else {
            skipped.push(skip("", "IPv6 is not supported by the data plane yet"));
            continue;
        };
        if entry.contains_key(&mapped) {
            skipped.push(skip("status.ip", "address already mapped by another IP"));
            continue;
        }
        if exit.contains_key(&local) {
            skipped.push(skip("spec.ip", "address already mapped by another IP"));
            continue;
        }
        exit.insert(local, mapped);
        entry.insert(mapped, local);
    }
    (exit, entry)
}

/// The node's IPv4 underlay address: its first IPv4 `InternalIP`, else its `InternalNode`'s
/// `spec.nodeAddress`.
pub(super) fn node_address(snapshot: &Snapshot, key: &Key, node: &NodeSummary) -> Option<Ipv4Addr> {
    let from_status = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse::<Ipv4Addr>().ok());
    from_status.or_else(|| {
        snapshot
            .internal_nodes
            .get(key)
            .and_then(|n| n.spec.node_address)
            .and_then(|ip| match ip.0 {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
    })
}

/// Local pod CIDR -> node, from core Nodes (`spec.podCIDRs`, else `spec.podCIDR`; IPv6 CIDRs
/// of dual-stack nodes are left out).
fn node_routes(snapshot: &Snapshot, skipped: &mut Vec<Skipped>) -> BTreeMap<Ipv4Net, NodeRoute> {
    let mut routes = BTreeMap::new();
    for (key, node) in &snapshot.nodes {
        let skip = |field: &str, reason: String| Skipped {
            kind: Kind::Node,
            key: key.clone(),
            field: field.to_owned(),
            reason,
        };
        let spec = node.spec.as_ref();
        let (field, cidrs): (&str, Vec<&String>) = match spec
            .and_then(|s| s.pod_cidrs.as_ref())
            .filter(|c| !c.is_empty())
        {
            Some(list) => ("spec.podCIDRs", list.iter().collect()),
            None => (
                "spec.podCIDR",
                spec.and_then(|s| s.pod_cidr.as_ref()).into_iter().collect(),
            ),
        };
        if cidrs.is_empty() {
            continue;
        }
        let Some(address) = node_address(snapshot, key, node) else {
            skipped.push(skip(
                "status.addresses",
                "no IPv4 InternalIP address".to_owned(),
            ));
            continue;
        };
        // The node's internal-CIDR address (its InternalNode): host-network traffic from the
        // node leaves with it as source, and the replies must go back to that node.
        if let Some(internal) = snapshot
            .internal_nodes
            .get(&Key::cluster(key.name.clone()))
            .and_then(|i| match i.spec.interface.node.ip.0 {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            })
        {
            routes.insert(
                Ipv4Net::from(internal),
                NodeRoute {
                    node: key.name.clone(),
                    address,
                },
            );
        }
        for (i, text) in cidrs.into_iter().enumerate() {
            let field = if field == "spec.podCIDRs" {
                format!("spec.podCIDRs[{i}]")
            } else {
                field.to_owned()
            };
            match text.parse::<IpNet>() {
                Ok(IpNet::V4(net)) => {
                    let net = net.trunc();
                    if let Some(other) = routes.get(&net) {
                        let NodeRoute { node: other, .. } = other;
                        skipped.push(skip(&field, format!("{net} is already node {other}'s")));
                        continue;
                    }
                    routes.insert(
                        net,
                        NodeRoute {
                            node: key.name.clone(),
                            address,
                        },
                    );
                }
                Ok(IpNet::V6(_)) => {}
                Err(_) => skipped.push(skip(&field, format!("{text:?} is not a CIDR"))),
            }
        }
    }
    routes
}
