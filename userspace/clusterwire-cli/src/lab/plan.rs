//! The lab's addressing plan: every cluster, node, pod, gateway and peering with its namespace,
//! addresses and names, and how each cluster sees every other one (remaps from the IPAM).
//!
//! Pure data: nothing here touches the host, so the whole plan is checked by host unit tests.

use std::{collections::BTreeMap, fmt, net::Ipv4Addr};

use clusterwire_fabric::desired::Role;
use clusterwire_ipam::{Ipam, IpamConfig, RemoteCidrs};
use ipnet::{IpNet, Ipv4Net};

/// Prefix of every namespace, instance and host-visible name the lab creates.
pub const PREFIX: &str = "cwlab-";
/// The pod CIDR of every cluster.
pub const POD_CIDR: Ipv4Net = net(10, 0, 0, 0, 16);
/// The external CIDR of every cluster (reserved; its first address is the unknown source).
pub const EXTERNAL_CIDR: Ipv4Net = net(10, 70, 0, 0, 16);
/// The internal CIDR of every cluster (node and gateway Geneve addresses).
pub const INTERNAL_CIDR: Ipv4Net = net(10, 80, 0, 0, 16);
/// Where the per-cluster underlays live: cluster N uses 172.31.N.0/24.
pub const UNDERLAY_RANGE: Ipv4Net = net(172, 31, 0, 0, 16);
/// The WAN joining the clusters (benchmark range, RFC 2544).
pub const WAN: Ipv4Net = net(198, 18, 0, 0, 24);
/// The WAN namespace's own address (every node's default gateway).
pub const WAN_ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// WireGuard port of every gateway server (the reference's default).
pub const WIREGUARD_PORT: u16 = 51840;
/// First `NodePort` of a cluster's gateway servers.
pub const NODE_PORT_BASE: u16 = 31840;
/// Tunnel MTU (the reference's default).
pub const MTU: u16 = 1340;
/// Port of each gateway's metrics endpoint (on its pod address).
pub const METRICS_PORT: u16 = 9090;
/// Nodes per cluster.
pub const NODES: u8 = 2;
/// Application pods per node.
pub const PODS_PER_NODE: u8 = 2;

const fn net(o1: u8, o2: u8, o3: u8, o4: u8, len: u8) -> Ipv4Net {
    match Ipv4Net::new(Ipv4Addr::new(o1, o2, o3, o4), len) {
        Ok(prefix) => prefix,
        Err(_) => panic!("invalid constant prefix"),
    }
}

/// The WAN namespace.
pub fn wan_netns() -> String {
    format!("{PREFIX}wan")
}

/// A pod (application or gateway) in a node's pod CIDR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    /// Name inside the cluster: `n1-a`, or `gw-cl02` for a gateway pod.
    pub name: String,
    /// Its namespace: `cwlab-cl01-n1-a`.
    pub netns: String,
    /// Its address.
    pub address: Ipv4Addr,
    /// Interface name of its veth on the node side (point to point, routed by the node).
    pub node_veth: String,
}

/// A node: its namespace runs the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Short name inside the cluster: `n1`.
    pub short: String,
    /// Kubernetes node name: `cl01-n1`.
    pub name: String,
    /// Its namespace: `cwlab-cl01-n1`.
    pub netns: String,
    /// Address on the cluster underlay (`eth0`): the node's `InternalIP`.
    pub underlay: Ipv4Addr,
    /// Address on the WAN (`wan0`): the node's `ExternalIP`.
    pub wan: Ipv4Addr,
    /// Its pod CIDR (`10.0.<k>.0/24`).
    pub pod_cidr: Ipv4Net,
    /// The pods' default gateway: the node holds it (/32) on every pod veth.
    pub cni_address: Ipv4Addr,
    /// Application pods.
    pub pods: Vec<Pod>,
    /// The agent's instance name: `cwlab-cl01-n1`.
    pub instance: String,
}

/// One end of a peering: a gateway pod and its Liqo objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// The peer cluster.
    pub peer: String,
    /// Server or client.
    pub role: Role,
    /// Short name of the node the gateway pod runs on.
    pub node: String,
    /// The gateway pod.
    pub pod: Pod,
    /// Kubernetes namespace of its objects: `liqo-tenant-<peer>`.
    pub namespace: String,
    /// The GatewayServer/GatewayClient name (the peer's id, as liqoctl names it).
    pub name: String,
    /// Instance name: `cwlab-cl01-gw-cl02`.
    pub instance: String,
    /// A server's `NodePort` on its node's WAN address.
    pub node_port: Option<u16>,
    /// The standby replica (`up --standby`, client gateways only): a second gateway pod on
    /// the other node, electing the active one with the primary through a lease file.
    pub standby: Option<Replica>,
}

/// A further replica of a gateway: its own pod, node and daemon instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// Short name of the node the pod runs on.
    pub node: String,
    /// The pod.
    pub pod: Pod,
    /// Instance name: `cwlab-cl02-gw-cl01-b`.
    pub instance: String,
}

impl Gateway {
    /// `namespace/name`, the daemon's `--gateway`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The Connection status file the gateway writes, relative to the manifests directory.
    pub fn connection_file(&self) -> String {
        format!("status/connection-{}-gw-{}.yaml", self.namespace, self.name)
    }

    /// Every replica as (node, pod, instance): the primary, then the standby if any.
    pub fn replicas(&self) -> impl Iterator<Item = (&str, &Pod, &str)> {
        std::iter::once((self.node.as_str(), &self.pod, self.instance.as_str())).chain(
            self.standby
                .iter()
                .map(|r| (r.node.as_str(), &r.pod, r.instance.as_str())),
        )
    }

    /// The file holding its `InternalFabric`, relative to the manifests directory (its own
    /// file, so an elected gateway can rewrite `spec.gatewayIP` in it).
    pub fn fabric_file(&self) -> String {
        format!("fabric-{}.yaml", self.peer)
    }
}

/// One simulated cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// `cl01`.
    pub name: String,
    /// 1-based.
    pub index: u8,
    /// The namespace of its underlay bridge: `cwlab-cl01-net`.
    pub net_netns: String,
    /// Its underlay: `172.31.<index>.0/24`.
    pub underlay: Ipv4Net,
    /// Its nodes.
    pub nodes: Vec<Node>,
    /// One gateway per peer, in peer order.
    pub gateways: Vec<Gateway>,
}

impl Cluster {
    /// The node named `short`.
    pub fn node(&self, short: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.short == short)
    }

    /// The gateway toward `peer`.
    pub fn gateway(&self, peer: &str) -> Option<&Gateway> {
        self.gateways.iter().find(|g| g.peer == peer)
    }

    /// Every application pod, node by node.
    pub fn pods(&self) -> impl Iterator<Item = (&Node, &Pod)> {
        self.nodes
            .iter()
            .flat_map(|n| n.pods.iter().map(move |p| (n, p)))
    }

    /// Every namespace of this cluster (net, nodes, pods, gateway pods).
    #[cfg(test)]
    pub fn namespaces(&self) -> Vec<String> {
        let mut all = vec![self.net_netns.clone()];
        for node in &self.nodes {
            all.push(node.netns.clone());
            all.extend(node.pods.iter().map(|p| p.netns.clone()));
        }
        all.extend(
            self.gateways
                .iter()
                .flat_map(|g| g.replicas().map(|(_, pod, _)| pod.netns.clone())),
        );
        all
    }

    /// Every gateway pod on node `short`, with its gateway.
    pub fn gateway_pods_on<'a>(
        &'a self,
        short: &'a str,
    ) -> impl Iterator<Item = (&'a Gateway, &'a Pod)> + 'a {
        self.gateways.iter().flat_map(move |g| {
            g.replicas()
                .filter(move |(node, _, _)| *node == short)
                .map(move |(_, pod, _)| (g, pod))
        })
    }
}

/// A peering: which cluster serves, which dials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peering {
    /// The cluster running the gateway server.
    pub server: String,
    /// The cluster running the gateway client.
    pub client: String,
}

/// How one cluster sees another: the remapped CIDRs from its IPAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// The peer's pod CIDR as seen locally.
    pub pod: Ipv4Net,
    /// The peer's external CIDR as seen locally.
    pub external: Ipv4Net,
}

/// A plan the IPAM refused (cannot happen with the fixed lab sizes; reported, not unwrapped).
#[derive(Debug, thiserror::Error)]
#[error("remapping {peer} in {cluster}: {source}")]
pub struct PlanError {
    cluster: String,
    peer: String,
    #[source]
    source: clusterwire_ipam::IpamError,
}

/// The whole lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The clusters, `cl01` first.
    pub clusters: Vec<Cluster>,
    /// The peerings.
    pub peerings: Vec<Peering>,
    /// `(local, remote)` -> how local sees remote.
    pub views: BTreeMap<(String, String), View>,
}

/// Name of cluster `index` (1-based).
pub fn cluster_name(index: u8) -> String {
    format!("cl{index:02}")
}

/// The peerings of `n` clusters: a ring, cluster i serving cluster i+1 (the last serving the
/// first). With 2 clusters that is the single peering cl01 (server) - cl02 (client); with 3,
/// every cluster is server toward its successor and client toward its predecessor.
pub fn ring(n: u8) -> Vec<Peering> {
    let mut peerings = Vec::new();
    for i in 1..=n {
        let j = i % n + 1;
        if i == j || (n == 2 && i == 2) {
            continue;
        }
        peerings.push(Peering {
            server: cluster_name(i),
            client: cluster_name(j),
        });
    }
    peerings
}

impl Plan {
    /// The plan of `clusters` clusters (2 or 3; any 2..=9 works).
    pub fn new(clusters: u8) -> Result<Self, PlanError> {
        let peerings = ring(clusters);
        let mut list = Vec::new();
        for index in 1..=clusters {
            list.push(build_cluster(index, &peerings));
        }
        // Server NodePorts, in gateway order per cluster.
        for cluster in &mut list {
            let mut next = NODE_PORT_BASE;
            for gateway in &mut cluster.gateways {
                if gateway.role == Role::Server {
                    gateway.node_port = Some(next);
                    next += 1;
                }
            }
        }
        let views = views(&list)?;
        Ok(Self {
            clusters: list,
            peerings,
            views,
        })
    }

    /// The cluster named `name`.
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// How `local` sees `remote`.
    pub fn view(&self, local: &str, remote: &str) -> Option<View> {
        self.views
            .get(&(local.to_owned(), remote.to_owned()))
            .copied()
    }

    /// The address by which cluster `local` reaches `address` of cluster `remote`: the host
    /// bits kept, the prefix swapped for the remapped one.
    pub fn seen_from(&self, local: &str, remote: &str, address: Ipv4Addr) -> Option<Ipv4Addr> {
        let view = self.view(local, remote)?;
        let (real, mapped) = if POD_CIDR.contains(&address) {
            (POD_CIDR, view.pod)
        } else if EXTERNAL_CIDR.contains(&address) {
            (EXTERNAL_CIDR, view.external)
        } else {
            return None;
        };
        let host = u32::from(address) & u32::from(real.hostmask());
        Some(Ipv4Addr::from(u32::from(mapped.network()) | host))
    }

    /// The server end of a client gateway (the peer cluster's server gateway toward us), with
    /// the node it runs on.
    pub fn server_of(&self, client_cluster: &str, gateway: &Gateway) -> Option<(&Node, &Gateway)> {
        let server_cluster = self.cluster(&gateway.peer)?;
        let server = server_cluster.gateway(client_cluster)?;
        let node = server_cluster.node(&server.node)?;
        Some((node, server))
    }

    /// Every namespace of the lab (the WAN last).
    #[cfg(test)]
    pub fn namespaces(&self) -> Vec<String> {
        let mut all: Vec<String> = self.clusters.iter().flat_map(Cluster::namespaces).collect();
        all.push(wan_netns());
        all
    }

    /// A pod (or gateway pod) by `cluster/pod`, or a node by `cluster/node`: its namespace.
    pub fn netns_of(&self, target: &str) -> Option<String> {
        let (cluster, name) = target.split_once('/')?;
        let cluster = self.cluster(cluster)?;
        if let Some(node) = cluster.node(name) {
            return Some(node.netns.clone());
        }
        if let Some((_, pod)) = cluster.pods().find(|(_, p)| p.name == name) {
            return Some(pod.netns.clone());
        }
        cluster
            .gateways
            .iter()
            .flat_map(Gateway::replicas)
            .find(|(_, pod, _)| pod.name == name)
            .map(|(_, pod, _)| pod.netns.clone())
    }

    /// Gives every client gateway a standby replica on the other node, at
    /// 10.0.k.(150 + peer number), pod `gw-<peer>-b`.
    #[must_use]
    pub fn with_standby(mut self) -> Self {
        for cluster in &mut self.clusters {
            let name = cluster.name.clone();
            for gateway in &mut cluster.gateways {
                if gateway.role != Role::Client {
                    continue;
                }
                let primary: u8 = gateway.node[1..].parse().unwrap_or(1);
                let k = primary % NODES + 1;
                let peer_index: u8 = gateway.peer[2..].parse().unwrap_or(0);
                let pod_name = format!("gw-{}-b", gateway.peer);
                gateway.standby = Some(Replica {
                    node: format!("n{k}"),
                    pod: Pod {
                        netns: format!("{PREFIX}{name}-{pod_name}"),
                        address: Ipv4Addr::new(10, 0, k, 150 + peer_index),
                        node_veth: format!("veth-{pod_name}"),
                        name: pod_name.clone(),
                    },
                    instance: format!("{PREFIX}{name}-{pod_name}"),
                });
            }
        }
        self
    }
}

fn build_cluster(index: u8, peerings: &[Peering]) -> Cluster {
    let name = cluster_name(index);
    let mut nodes = Vec::new();
    for k in 1..=NODES {
        let short = format!("n{k}");
        let netns = format!("{PREFIX}{name}-{short}");
        let pod_cidr = net(10, 0, k, 0, 24);
        let pods = (0..PODS_PER_NODE)
            .map(|p| {
                let letter = char::from(b'a' + p);
                let pod_name = format!("{short}-{letter}");
                Pod {
                    netns: format!("{PREFIX}{name}-{pod_name}"),
                    address: Ipv4Addr::new(10, 0, k, 10 + p),
                    node_veth: format!("veth-{letter}"),
                    name: pod_name,
                }
            })
            .collect();
        nodes.push(Node {
            name: format!("{name}-{short}"),
            instance: format!("{PREFIX}{name}-{short}"),
            netns,
            underlay: Ipv4Addr::new(172, 31, index, 10 + k),
            wan: Ipv4Addr::new(198, 18, 0, index * 10 + k),
            pod_cidr,
            cni_address: Ipv4Addr::new(10, 0, k, 1),
            pods,
            short,
        });
    }
    let mut peers: Vec<(String, Role)> = peerings
        .iter()
        .filter_map(|p| {
            if p.server == name {
                Some((p.client.clone(), Role::Server))
            } else if p.client == name {
                Some((p.server.clone(), Role::Client))
            } else {
                None
            }
        })
        .collect();
    peers.sort();
    let gateways = peers
        .into_iter()
        .enumerate()
        .map(|(i, (peer, role))| {
            // Spread gateways over the nodes: the first on n1, the second on n2.
            let k = u8::try_from(i % usize::from(NODES)).unwrap_or(0) + 1;
            let peer_index: u8 = peer[2..].parse().unwrap_or(0);
            let pod_name = format!("gw-{peer}");
            Gateway {
                role,
                node: format!("n{k}"),
                pod: Pod {
                    netns: format!("{PREFIX}{name}-{pod_name}"),
                    address: Ipv4Addr::new(10, 0, k, 100 + peer_index),
                    node_veth: format!("veth-{pod_name}"),
                    name: pod_name.clone(),
                },
                namespace: format!("liqo-tenant-{peer}"),
                name: peer.clone(),
                instance: format!("{PREFIX}{name}-{pod_name}"),
                node_port: None,
                standby: None,
                peer,
            }
        })
        .collect();
    Cluster {
        net_netns: format!("{PREFIX}{name}-net"),
        underlay: net(172, 31, index, 0, 24),
        name,
        index,
        nodes,
        gateways,
    }
}

/// The IPAM configuration of every lab cluster: pod CIDR 10.0.0.0/16, the default external and
/// internal CIDRs, and the lab's underlays and WAN reserved so no remap lands on them.
pub fn ipam_config() -> IpamConfig {
    let mut config = IpamConfig::new(vec![IpNet::V4(POD_CIDR)], Vec::new());
    config.external_cidrs = vec![IpNet::V4(EXTERNAL_CIDR)];
    config.internal_cidrs = vec![IpNet::V4(INTERNAL_CIDR)];
    config.reserved = vec![IpNet::V4(UNDERLAY_RANGE), IpNet::V4(WAN)];
    config
}

fn views(clusters: &[Cluster]) -> Result<BTreeMap<(String, String), View>, PlanError> {
    let mut views = BTreeMap::new();
    for local in clusters {
        let err = |peer: &str| {
            let cluster = local.name.clone();
            let peer = peer.to_owned();
            move |source| PlanError {
                cluster,
                peer,
                source,
            }
        };
        let mut ipam = Ipam::new(ipam_config()).map_err(err(""))?;
        for gateway in &local.gateways {
            let remote = RemoteCidrs {
                pod: vec![IpNet::V4(POD_CIDR)],
                external: vec![IpNet::V4(EXTERNAL_CIDR)],
            };
            let mapping = ipam
                .map_cluster(&gateway.peer, &remote)
                .map_err(err(&gateway.peer))?;
            let v4 = |n: IpNet| match n {
                IpNet::V4(n) => n,
                IpNet::V6(_) => unreachable!("IPv4 in, IPv4 out"),
            };
            views.insert(
                (local.name.clone(), gateway.peer.clone()),
                View {
                    pod: v4(mapping.pod[0].target()),
                    external: v4(mapping.external[0].target()),
                },
            );
        }
    }
    Ok(views)
}

impl fmt::Display for Plan {
    /// The addressing plan as `cwctl lab up` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "pod CIDR {POD_CIDR} in every cluster; WAN {WAN} (router {WAN_ROUTER})"
        )?;
        for c in &self.clusters {
            writeln!(f, "{}: underlay {}", c.name, c.underlay)?;
            for n in &c.nodes {
                let pods: Vec<String> = n
                    .pods
                    .iter()
                    .map(|p| format!("{} {}", p.name, p.address))
                    .collect();
                writeln!(
                    f,
                    "  node {} underlay {} wan {} pods {} ({})",
                    n.name,
                    n.underlay,
                    n.wan,
                    n.pod_cidr,
                    pods.join(", ")
                )?;
            }
            for g in &c.gateways {
                let role = role_name(g.role);
                let view = self.view(&c.name, &g.peer);
                write!(
                    f,
                    "  gateway {} ({role} for {}) on {} at {}",
                    g.pod.name, g.peer, g.node, g.pod.address
                )?;
                if let Some(port) = g.node_port {
                    write!(f, ", NodePort {port}")?;
                }
                if let Some(v) = view {
                    write!(f, "; sees {} pods as {}", g.peer, v.pod)?;
                }
                if let Some(r) = &g.standby {
                    write!(
                        f,
                        "; standby {} on {} at {}",
                        r.pod.name, r.node, r.pod.address
                    )?;
                }
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

/// `server` / `client`.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Server => "server",
        Role::Client => "client",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_clusters_one_peering_cl01_serves() {
        let plan = Plan::new(2).expect("plan");
        assert_eq!(
            plan.peerings,
            vec![Peering {
                server: "cl01".into(),
                client: "cl02".into()
            }]
        );
        let cl01 = plan.cluster("cl01").expect("cl01");
        assert_eq!(cl01.gateways.len(), 1);
        let gw = &cl01.gateways[0];
        assert_eq!(gw.role, Role::Server);
        assert_eq!(gw.key(), "liqo-tenant-cl02/cl02");
        assert_eq!(gw.instance, "cwlab-cl01-gw-cl02");
        assert_eq!(gw.pod.address, Ipv4Addr::new(10, 0, 1, 102));
        assert_eq!(gw.node_port, Some(31840));
        assert_eq!(
            gw.connection_file(),
            "status/connection-liqo-tenant-cl02-gw-cl02.yaml"
        );
        let cl02 = plan.cluster("cl02").expect("cl02");
        assert_eq!(cl02.gateways[0].role, Role::Client);
        assert_eq!(cl02.gateways[0].pod.address, Ipv4Addr::new(10, 0, 1, 101));
        let (node, server) = plan.server_of("cl02", &cl02.gateways[0]).expect("server");
        assert_eq!(node.wan, Ipv4Addr::new(198, 18, 0, 11));
        assert_eq!(server.node_port, Some(31840));
    }

    #[test]
    fn three_clusters_ring_each_serves_one_and_dials_one() {
        let plan = Plan::new(3).expect("plan");
        assert_eq!(plan.peerings.len(), 3);
        for c in &plan.clusters {
            let roles: Vec<Role> = c.gateways.iter().map(|g| g.role).collect();
            assert_eq!(c.gateways.len(), 2, "{}", c.name);
            assert!(roles.contains(&Role::Server) && roles.contains(&Role::Client));
            // Gateways spread over both nodes.
            assert_eq!(c.gateways[0].node, "n1");
            assert_eq!(c.gateways[1].node, "n2");
        }
        let cl01 = plan.cluster("cl01").expect("cl01");
        assert_eq!(cl01.gateway("cl02").map(|g| g.role), Some(Role::Server));
        assert_eq!(cl01.gateway("cl03").map(|g| g.role), Some(Role::Client));
        assert_eq!(
            cl01.gateway("cl03").map(|g| g.pod.address),
            Some(Ipv4Addr::new(10, 0, 2, 103))
        );
    }

    #[test]
    fn standby_replicas_go_to_client_gateways_on_the_other_node() {
        let plan = Plan::new(3).expect("plan").with_standby();
        for c in &plan.clusters {
            for g in &c.gateways {
                match (g.role, &g.standby) {
                    (Role::Server, None) => {}
                    (Role::Client, Some(r)) => {
                        assert_ne!(r.node, g.node, "{}", r.instance);
                        assert_eq!(r.pod.name, format!("{}-b", g.pod.name));
                        assert_eq!(r.instance, format!("{}-b", g.instance));
                        assert!(r.pod.node_veth.len() <= 15, "{}", r.pod.node_veth);
                    }
                    other => panic!("{}: {other:?}", g.instance),
                }
            }
        }
        let cl02 = plan.cluster("cl02").expect("cl02");
        let client = cl02.gateway("cl01").expect("client");
        let replicas: Vec<(&str, Ipv4Addr)> = client
            .replicas()
            .map(|(node, pod, _)| (node, pod.address))
            .collect();
        assert_eq!(
            replicas,
            [
                ("n1", Ipv4Addr::new(10, 0, 1, 101)),
                ("n2", Ipv4Addr::new(10, 0, 2, 151))
            ]
        );
        assert_eq!(client.fabric_file(), "fabric-cl01.yaml");
        assert_eq!(
            plan.netns_of("cl02/gw-cl01-b").as_deref(),
            Some("cwlab-cl02-gw-cl01-b")
        );
        let on_n2: Vec<&str> = cl02
            .gateway_pods_on("n2")
            .map(|(_, pod)| pod.name.as_str())
            .collect();
        assert_eq!(on_n2, ["gw-cl01-b", "gw-cl03"]);
    }

    #[test]
    fn addresses_are_unique_and_names_fit() {
        let plan = Plan::new(3).expect("plan").with_standby();
        let mut names = plan.namespaces();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "namespace names collide");
        assert!(names.iter().all(|n| n.starts_with(PREFIX)));
        for c in &plan.clusters {
            let mut addrs: Vec<Ipv4Addr> = c.pods().map(|(_, p)| p.address).collect();
            addrs.extend(
                c.gateways
                    .iter()
                    .flat_map(|g| g.replicas().map(|(_, pod, _)| pod.address)),
            );
            addrs.extend(c.nodes.iter().map(|n| n.cni_address));
            let len = addrs.len();
            addrs.sort();
            addrs.dedup();
            assert_eq!(addrs.len(), len, "{}: pod addresses collide", c.name);
            for node in &c.nodes {
                assert!(c.underlay.contains(&node.underlay));
                assert!(WAN.contains(&node.wan) && node.wan != WAN_ROUTER);
                assert!(POD_CIDR.contains(&node.pod_cidr.network()));
                for p in &node.pods {
                    assert!(node.pod_cidr.contains(&p.address));
                    assert!(p.node_veth.len() <= 15);
                }
            }
            for g in &c.gateways {
                assert!(g.pod.node_veth.len() <= 15, "{}", g.pod.node_veth);
                let node = c.node(&g.node).expect("gateway node");
                assert!(node.pod_cidr.contains(&g.pod.address));
            }
        }
    }

    #[test]
    fn remaps_come_from_the_ipam_and_keep_host_bits() {
        let plan = Plan::new(3).expect("plan");
        let cl01_sees_cl02 = plan.view("cl01", "cl02").expect("view");
        assert_eq!(cl01_sees_cl02.pod, net(10, 1, 0, 0, 16));
        assert_eq!(cl01_sees_cl02.external, net(10, 2, 0, 0, 16));
        let cl01_sees_cl03 = plan.view("cl01", "cl03").expect("view");
        assert_eq!(cl01_sees_cl03.pod, net(10, 3, 0, 0, 16));
        assert_eq!(
            plan.seen_from("cl01", "cl03", Ipv4Addr::new(10, 0, 2, 11)),
            Some(Ipv4Addr::new(10, 3, 2, 11))
        );
        assert_eq!(
            plan.seen_from("cl01", "cl01", Ipv4Addr::new(10, 0, 2, 11)),
            None
        );
        // Nothing remapped onto a local or lab range.
        for view in plan.views.values() {
            for r in [view.pod, view.external] {
                for local in [POD_CIDR, EXTERNAL_CIDR, INTERNAL_CIDR, UNDERLAY_RANGE, WAN] {
                    assert!(!r.contains(&local.network()) && !local.contains(&r.network()));
                }
            }
        }
    }

    #[test]
    fn targets_resolve_to_namespaces() {
        let plan = Plan::new(2).expect("plan");
        assert_eq!(
            plan.netns_of("cl02/n2-b").as_deref(),
            Some("cwlab-cl02-n2-b")
        );
        assert_eq!(plan.netns_of("cl01/n1").as_deref(), Some("cwlab-cl01-n1"));
        assert_eq!(
            plan.netns_of("cl01/gw-cl02").as_deref(),
            Some("cwlab-cl01-gw-cl02")
        );
        assert_eq!(plan.netns_of("cl03/n1-a"), None);
        assert_eq!(plan.netns_of("nonsense"), None);
    }
}
