//! The desired state of one node's agent.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv4Addr},
};

use clusterwire_api::common::MTU_DEFAULT;
use ipnet::{IpNet, Ipv4Net};

use super::{Skipped, Vni, gateway::fabric_vni};
use crate::snapshot::{Key, Kind, Snapshot, remote_cluster_id};

/// The kinds [`agent`] reads: a source for an agent needs hold no other (the Kubernetes
/// source watches only these, the manifests source skips the other documents unparsed).
pub const KINDS: [Kind; 2] = [Kind::InternalNode, Kind::InternalFabric];

/// One gateway as the node sees it (from its `InternalFabric`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentGateway {
    /// The remote cluster the gateway serves (the fabric's label), if labelled.
    pub remote_cluster_id: Option<String>,
    /// The gateway pod's address: the Geneve destination (`spec.gatewayIP`).
    pub gateway_ip: Ipv4Addr,
    /// The gateway's internal-CIDR address (`spec.interface.gateway.ip`).
    pub gateway_internal_ip: Ipv4Addr,
    /// The gateway's VNI (`spec.vni`, else derived from the fabric's namespace/name).
    pub vni: Vni,
    /// MTU of routes through it (`spec.mtu`, default 1340).
    pub mtu: u16,
    /// Remote CIDRs (remapped pod and external) routed to it (`spec.remoteCIDRs`).
    pub remote_cidrs: BTreeSet<Ipv4Net>,
}

/// One route of the node's Geneve device (an entry of the Geneve route map).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AgentRoute {
    /// The gateway (its `InternalFabric`).
    pub gateway: Key,
    /// Geneve destination.
    pub gateway_ip: Ipv4Addr,
    /// VNI.
    pub vni: Vni,
    /// Route MTU.
    pub mtu: u16,
}

/// Everything one node's agent applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentDesired {
    /// The node.
    pub node: String,
    /// The node's internal-CIDR address for its Geneve device (`InternalNode`
    /// `spec.interface.node.ip`); `None` while the node has no `InternalNode`.
    pub internal_address: Option<Ipv4Addr>,
    /// Every gateway, by `InternalFabric` key.
    pub gateways: BTreeMap<Key, AgentGateway>,
    /// Remote CIDR -> gateway, the union over gateways (a CIDR claimed twice goes to the
    /// first gateway in key order; the other claim is skipped).
    pub routes: BTreeMap<Ipv4Net, AgentRoute>,
    /// (gateway pod IP, VNI) pairs whose Geneve packets the node decapsulates.
    pub decap_peers: BTreeSet<(Ipv4Addr, Vni)>,
    /// Objects left out.
    pub skipped: Vec<Skipped>,
}

fn v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}

/// The desired state of the agent on node `node`.
pub fn agent(snapshot: &Snapshot, node: &str) -> AgentDesired {
    let mut skipped = Vec::new();
    let node_key = Key::cluster(node);
    let internal_address = match snapshot.internal_nodes.get(&node_key) {
        None => None,
        Some(internal) => {
            let address = v4(internal.spec.interface.node.ip.0);
            if address.is_none() {
                skipped.push(Skipped {
                    kind: Kind::InternalNode,
                    key: node_key.clone(),
                    field: "spec.interface.node.ip".to_owned(),
                    reason: "IPv6 is not supported by the data plane yet".to_owned(),
                });
            }
            address
        }
    };

    let mut gateways = BTreeMap::new();
    let mut routes = BTreeMap::new();
    let mut decap_peers = BTreeSet::new();
    for (key, fabric) in &snapshot.internal_fabrics {
        let skip = |field: &str, reason: String| Skipped {
            kind: Kind::InternalFabric,
            key: key.clone(),
            field: field.to_owned(),
            reason,
        };
        let spec = &fabric.spec;
        let ipv6 = "IPv6 is not supported by the data plane yet".to_owned();
        let Some(gateway_ip) = v4(spec.gateway_ip.0) else {
            skipped.push(skip("spec.gatewayIP", ipv6));
            continue;
        };
        let Some(gateway_internal_ip) = v4(spec.interface.gateway.ip.0) else {
            skipped.push(skip("spec.interface.gateway.ip", ipv6));
            continue;
        };
        let Ok(mtu) = u16::try_from(spec.mtu.unwrap_or(MTU_DEFAULT)) else {
            skipped.push(skip("spec.mtu", "out of range".to_owned()));
            continue;
        };
        let vni = fabric_vni(key, fabric);
        let mut remote_cidrs = BTreeSet::new();
        for (i, cidr) in spec.remote_cidrs.iter().enumerate() {
            let field = format!("spec.remoteCIDRs[{i}]");
            let IpNet::V4(net) = cidr.0 else {
                skipped.push(skip(&field, ipv6.clone()));
                continue;
            };
            let net = net.trunc();
            if let Some(AgentRoute { gateway: other, .. }) = routes.get(&net) {
                skipped.push(skip(&field, format!("{net} is already routed to {other}")));
                continue;
            }
            remote_cidrs.insert(net);
            routes.insert(
                net,
                AgentRoute {
                    gateway: key.clone(),
                    gateway_ip,
                    vni,
                    mtu,
                },
            );
        }
        decap_peers.insert((gateway_ip, vni));
        gateways.insert(
            key.clone(),
            AgentGateway {
                remote_cluster_id: remote_cluster_id(&fabric.metadata).map(str::to_owned),
                gateway_ip,
                gateway_internal_ip,
                vni,
                mtu,
                remote_cidrs,
            },
        );
    }
    AgentDesired {
        node: node.to_owned(),
        internal_address,
        gateways,
        routes,
        decap_peers,
        skipped,
    }
}
