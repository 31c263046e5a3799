//! The Liqo manifests of each lab cluster, as the daemons read them with `--manifests DIR`:
//!
//! - `nodes.yaml`: core `Node` objects (`InternalIP` on the underlay, `ExternalIP` on the WAN,
//!   `spec.podCIDR`/`podCIDRs`) and one `InternalNode` per node (internal-CIDR address);
//! - `ips.yaml`: one `IP` per node mapping its internal address (the source of its
//!   host-network traffic toward remote pods) into the external CIDR (10.70.0.1, ...);
//! - `cluster.yaml`: the cluster-id `ConfigMap` (a kind the daemons ignore; kept for tooling);
//! - `tenant-<peer>.yaml`, per peer: the `Configuration` (remote CIDRs and their remaps from the
//!   IPAM in `status.remote.cidr`), the `GatewayServer` or `GatewayClient` (with
//!   `status.internalEndpoint`) and the peer's `PublicKey`;
//! - `fabric-<peer>.yaml`, per peer: the gateway's `InternalFabric` alone, so that with standby
//!   replicas the elected gateway can write its pod address into `spec.gatewayIP` (the
//!   controller's job on Kubernetes).
//!
//! Objects are built as JSON values and written as YAML; the host tests load every generated
//! directory through `clusterwire_fabric::manifests` and compute every daemon's desired state.

use std::{
    fs,
    net::{IpAddr, Ipv4Addr},
    path::Path,
};

use anyhow::Context as _;
use clusterwire_fabric::desired::Role;
use clusterwire_ipam::{Family, InternalOwner, Ipam};
use serde_json::{Value, json};

use super::{
    keys::Keys,
    plan::{self, Cluster, EXTERNAL_CIDR, Gateway, MTU, POD_CIDR, Plan, WIREGUARD_PORT},
};

const NETWORKING: &str = "networking.liqo.io/v1beta1";
const REMOTE_ID: &str = "liqo.io/remote-cluster-id";

/// One manifest file: its name in the cluster's directory and its objects.
#[derive(Debug, Clone)]
pub struct File {
    /// File name.
    pub name: String,
    /// The objects, written as one multi-document YAML file.
    pub objects: Vec<Value>,
}

impl File {
    /// The YAML text.
    pub fn yaml(&self) -> anyhow::Result<String> {
        let mut out = String::new();
        for object in &self.objects {
            if !out.is_empty() {
                out.push_str("---\n");
            }
            out.push_str(
                &serde_saphyr::to_string(object)
                    .with_context(|| format!("serializing an object of {}", self.name))?,
            );
        }
        Ok(out)
    }
}

/// Internal-CIDR addresses of one cluster's nodes and gateways (from the IPAM, nodes first).
struct Internal {
    ipam: Ipam,
}

impl Internal {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            ipam: Ipam::new(plan::ipam_config()).context("building the lab IPAM")?,
        })
    }

    /// An address of the external CIDR for `local` (an `IP` resource named `key`).
    fn external(&mut self, key: &str, local: Ipv4Addr) -> anyhow::Result<Ipv4Addr> {
        match self.ipam.allocate_ip(key, IpAddr::V4(local)) {
            Ok(IpAddr::V4(a)) => Ok(a),
            Ok(IpAddr::V6(a)) => anyhow::bail!("external address {a} for {key} is IPv6"),
            Err(e) => Err(e).with_context(|| format!("external address for {key}")),
        }
    }

    fn address(&mut self, owner: &InternalOwner) -> anyhow::Result<Ipv4Addr> {
        match self.ipam.allocate_internal(owner, Family::V4) {
            Ok(IpAddr::V4(a)) => Ok(a),
            Ok(IpAddr::V6(a)) => anyhow::bail!("internal address {a} for {owner:?} is IPv6"),
            Err(e) => Err(e).with_context(|| format!("internal address for {owner:?}")),
        }
    }
}

fn labels(peer: &str) -> Value {
    json!({ REMOTE_ID: peer })
}

/// Node name -> its internal-CIDR address.
type NodeAddresses = Vec<(String, Ipv4Addr)>;

/// Core Nodes, then one `InternalNode` per node; and the nodes' internal addresses.
fn node_objects(
    cluster: &Cluster,
    internal: &mut Internal,
) -> anyhow::Result<(Vec<Value>, NodeAddresses)> {
    let mut nodes = Vec::new();
    let mut node_ips = Vec::new();
    let mut internal_nodes = Vec::new();
    for node in &cluster.nodes {
        nodes.push(json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": { "name": node.name },
            "spec": {
                "podCIDR": node.pod_cidr.to_string(),
                "podCIDRs": [node.pod_cidr.to_string()],
            },
            "status": { "addresses": [
                { "type": "InternalIP", "address": node.underlay.to_string() },
                { "type": "ExternalIP", "address": node.wan.to_string() },
                { "type": "Hostname", "address": node.name },
            ]},
        }));
        let ip = internal.address(&InternalOwner::Node(node.name.clone()))?;
        node_ips.push((node.name.clone(), ip));
        internal_nodes.push(json!({
            "apiVersion": NETWORKING,
            "kind": "InternalNode",
            "metadata": { "name": node.name },
            "spec": {
                "interface": { "node": { "ip": ip.to_string() } },
                "nodeAddress": node.underlay.to_string(),
            },
        }));
    }
    nodes.extend(internal_nodes);
    Ok((nodes, node_ips))
}

/// One `IP` resource per node, mapping the node's internal address (the source the agent
/// gives host-network traffic toward remote pods) to an address of the external CIDR, as the
/// controller would: the gateways SNAT it into the tunnel and DNAT the replies back, so a
/// remote pod can answer a node's host-network process.
fn node_ip_objects(
    node_ips: &[(String, Ipv4Addr)],
    internal: &mut Internal,
) -> anyhow::Result<Vec<Value>> {
    let mut ips = Vec::new();
    for (node, local) in node_ips {
        let name = format!("node-{node}");
        let external = internal.external(&format!("liqo/{name}"), *local)?;
        ips.push(json!({
            "apiVersion": "ipam.liqo.io/v1alpha1",
            "kind": "IP",
            "metadata": { "name": name, "namespace": "liqo" },
            "spec": { "ip": local.to_string() },
            "status": { "ip": external.to_string(), "cidr": EXTERNAL_CIDR.to_string() },
        }));
    }
    Ok(ips)
}

/// Every manifest file of `cluster`.
pub fn cluster_files(plan: &Plan, cluster: &Cluster, keys: &Keys) -> anyhow::Result<Vec<File>> {
    let mut internal = Internal::new()?;
    let (nodes, node_ips) = node_objects(cluster, &mut internal)?;
    let mut files = vec![
        File {
            name: "nodes.yaml".to_owned(),
            objects: nodes,
        },
        File {
            name: "ips.yaml".to_owned(),
            objects: node_ip_objects(&node_ips, &mut internal)?,
        },
        File {
            name: "cluster.yaml".to_owned(),
            objects: vec![json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "cluster-id",
                    "namespace": "liqo",
                    "labels": { "app.kubernetes.io/name": "clusterid-configmap" },
                },
                "data": { "CLUSTER_ID": cluster.name },
            })],
        },
    ];
    for gateway in &cluster.gateways {
        let peer = &gateway.peer;
        let ns = &gateway.namespace;
        let view = plan
            .view(&cluster.name, peer)
            .with_context(|| format!("no remap of {peer} in {}", cluster.name))?;
        let public = keys
            .public(peer, &cluster.name)
            .with_context(|| format!("no key for {peer}'s gateway toward {}", cluster.name))?;
        let gateway_internal = internal.address(&InternalOwner::Gateway(gateway.key()))?;
        let meta = json!({ "name": gateway.name, "namespace": ns, "labels": labels(peer) });
        let configuration = json!({
            "apiVersion": NETWORKING,
            "kind": "Configuration",
            "metadata": meta,
            "spec": {
                "local": { "cidr": {
                    "pod": [POD_CIDR.to_string()],
                    "external": [EXTERNAL_CIDR.to_string()],
                }},
                "remote": { "cidr": {
                    "pod": [POD_CIDR.to_string()],
                    "external": [EXTERNAL_CIDR.to_string()],
                }},
            },
            "status": { "remote": { "cidr": {
                "pod": [view.pod.to_string()],
                "external": [view.external.to_string()],
            }}},
        });
        let gateway_object = gateway_object(plan, cluster, gateway, &meta)?;
        let public_key = json!({
            "apiVersion": NETWORKING,
            "kind": "PublicKey",
            "metadata": {
                "name": gateway.name,
                "namespace": ns,
                "labels": {
                    REMOTE_ID: peer,
                    "networking.liqo.io/gateway-resource": "true",
                },
            },
            "spec": { "publicKey": public },
        });
        let fabric = json!({
            "apiVersion": NETWORKING,
            "kind": "InternalFabric",
            "metadata": meta,
            "spec": {
                "mtu": MTU,
                "remoteCIDRs": [view.pod.to_string(), view.external.to_string()],
                "interface": { "gateway": { "ip": gateway_internal.to_string() } },
                "gatewayIP": gateway.pod.address.to_string(),
            },
        });
        files.push(File {
            name: format!("tenant-{peer}.yaml"),
            objects: vec![configuration, gateway_object, public_key],
        });
        files.push(File {
            name: gateway.fabric_file(),
            objects: vec![fabric],
        });
    }
    Ok(files)
}

/// The `GatewayServer` or `GatewayClient` of `gateway`, with its status.
fn gateway_object(
    plan: &Plan,
    cluster: &Cluster,
    gateway: &Gateway,
    meta: &Value,
) -> anyhow::Result<Value> {
    let peer = &gateway.peer;
    let internal_endpoint = json!({
        "ip": gateway.pod.address.to_string(),
        "node": cluster.node(&gateway.node).map_or("", |n| n.name.as_str()),
    });
    Ok(match gateway.role {
        Role::Server => {
            let node = cluster
                .node(&gateway.node)
                .with_context(|| format!("gateway node {} missing", gateway.node))?;
            json!({
                "apiVersion": NETWORKING,
                "kind": "GatewayServer",
                "metadata": meta,
                "spec": {
                    "serverTemplateRef": {
                        "apiVersion": NETWORKING,
                        "kind": "WgGatewayServerTemplate",
                        "name": "wireguard-server",
                        "namespace": "liqo",
                    },
                    "mtu": MTU,
                    "endpoint": {
                        "port": WIREGUARD_PORT,
                        "serviceType": "NodePort",
                        "nodePort": gateway.node_port,
                    },
                },
                "status": {
                    "endpoint": {
                        "addresses": [node.wan.to_string()],
                        "port": gateway.node_port,
                        "protocol": "UDP",
                    },
                    "internalEndpoint": internal_endpoint,
                },
            })
        }
        Role::Client => {
            let (server_node, server) = plan
                .server_of(&cluster.name, gateway)
                .with_context(|| format!("no server in {peer} for {}", cluster.name))?;
            json!({
                "apiVersion": NETWORKING,
                "kind": "GatewayClient",
                "metadata": meta,
                "spec": {
                    "clientTemplateRef": {
                        "apiVersion": NETWORKING,
                        "kind": "WgGatewayClientTemplate",
                        "name": "wireguard-client",
                        "namespace": "liqo",
                    },
                    "mtu": MTU,
                    "endpoint": {
                        "addresses": [server_node.wan.to_string()],
                        "port": server.node_port,
                        "protocol": "UDP",
                    },
                },
                "status": { "internalEndpoint": internal_endpoint },
            })
        }
    })
}

/// Writes `cluster`'s files into `dir` (created; `dir/status/` too, for the gateways).
pub fn write(dir: &Path, files: &[File]) -> anyhow::Result<()> {
    let status = dir.join(clusterwire_fabric::manifests::STATUS_DIR);
    fs::create_dir_all(&status).with_context(|| format!("creating {}", status.display()))?;
    for file in files {
        let path = dir.join(&file.name);
        fs::write(&path, file.yaml()?).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clusterwire_api::validation::ManifestValidator;
    use clusterwire_fabric::{
        desired::{self, GatewayId},
        manifests::Source,
        snapshot::Key,
    };

    use super::*;

    fn generated(clusters: u8, tag: &str) -> (Plan, std::path::PathBuf) {
        let plan = Plan::new(clusters).expect("plan");
        let keys = Keys::generate(&plan);
        let root =
            std::env::temp_dir().join(format!("cwlab-manifests-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for cluster in &plan.clusters {
            let files = cluster_files(&plan, cluster, &keys).expect("files");
            write(&root.join(&cluster.name), &files).expect("write");
        }
        (plan, root)
    }

    fn check_loads_and_yields_desired_states(clusters: u8) {
        let (plan, root) = generated(clusters, &clusters.to_string());
        for cluster in &plan.clusters {
            let dir = root.join(&cluster.name);
            let validator = ManifestValidator::for_api().expect("validator");
            let mut source = Source::new(&dir, validator);
            let loaded = source.poll().expect("list").expect("first poll loads");
            let problems: Vec<String> = loaded.problems.iter().map(ToString::to_string).collect();
            assert!(problems.is_empty(), "{}: {problems:#?}", cluster.name);
            let snapshot = &loaded.snapshot;
            assert_eq!(
                desired::gateway_ids(snapshot).len(),
                cluster.gateways.len(),
                "{}",
                cluster.name
            );
            for gateway in &cluster.gateways {
                let id = GatewayId {
                    role: gateway.role,
                    key: Key::new(gateway.namespace.clone(), gateway.name.clone()),
                };
                let want = desired::gateway(snapshot, &id)
                    .unwrap_or_else(|e| panic!("{} {}: {e}", cluster.name, gateway.key()));
                let view = plan.view(&cluster.name, &gateway.peer).expect("view");
                assert!(want.skipped.is_empty(), "{:?}", want.skipped);
                assert_eq!(want.remote_cluster_id, gateway.peer);
                assert_eq!(want.wireguard.mtu, MTU);
                assert_eq!(want.remap_dst.get(&view.pod), Some(&POD_CIDR));
                assert_eq!(want.remap_src.get(&POD_CIDR), Some(&view.pod));
                // Each node's pod CIDR and its internal address (host-network replies).
                assert_eq!(want.node_routes.len(), 2 * cluster.nodes.len());
                assert!(want.vni.is_some());
                // Every node's internal address is mapped into the external CIDR.
                assert_eq!(want.ipmap_exit.len(), cluster.nodes.len());
                assert!(want.ipmap_exit.values().all(|a| EXTERNAL_CIDR.contains(a)));
                assert_eq!(
                    want.wireguard.peer.public_key,
                    Keys::public_of_loaded(&root, &plan, &gateway.peer, &cluster.name)
                );
                match gateway.role {
                    Role::Server => {
                        assert_eq!(want.wireguard.listen_port, Some(WIREGUARD_PORT));
                    }
                    Role::Client => {
                        let (node, server) = plan.server_of(&cluster.name, gateway).expect("srv");
                        let endpoint = want.wireguard.peer.endpoint.expect("client endpoint");
                        assert_eq!(endpoint.addresses, vec![node.wan.to_string()]);
                        assert_eq!(Some(endpoint.port), server.node_port);
                    }
                }
            }
            for node in &cluster.nodes {
                let want = desired::agent(snapshot, &node.name);
                assert!(want.skipped.is_empty(), "{:?}", want.skipped);
                assert!(want.internal_address.is_some(), "{}", node.name);
                assert_eq!(want.gateways.len(), cluster.gateways.len());
                assert_eq!(want.routes.len(), 2 * cluster.gateways.len());
                for gateway in &cluster.gateways {
                    let view = plan.view(&cluster.name, &gateway.peer).expect("view");
                    let route = want
                        .routes
                        .get(&view.pod)
                        .expect("route to the peer's pods");
                    assert_eq!(route.gateway_ip, gateway.pod.address);
                    assert_eq!(route.mtu, MTU);
                }
            }
        }
        fs::remove_dir_all(&root).expect("cleanup");
    }

    impl Keys {
        /// The public key written into `cluster`'s `PublicKey` for `peer` (read back from the
        /// generated file, not from the key store: proves the file carries it).
        fn public_of_loaded(root: &Path, _plan: &Plan, cluster: &str, peer: &str) -> String {
            let text = fs::read_to_string(root.join(peer).join(format!("tenant-{cluster}.yaml")))
                .expect("tenant file");
            text.lines()
                .find_map(|l| l.trim().strip_prefix("publicKey: "))
                .expect("publicKey line")
                .trim_matches('"')
                .to_owned()
        }
    }

    #[test]
    fn two_cluster_manifests_load_cleanly_and_yield_every_desired_state() {
        check_loads_and_yields_desired_states(2);
    }

    #[test]
    fn three_cluster_manifests_load_cleanly_and_yield_every_desired_state() {
        check_loads_and_yields_desired_states(3);
    }

    #[test]
    fn client_dials_the_servers_node_port_and_public_keys_cross() {
        let plan = Plan::new(2).expect("plan");
        let keys = Keys::generate(&plan);
        let cl02 = plan.cluster("cl02").expect("cl02");
        let files = cluster_files(&plan, cl02, &keys).expect("files");
        let tenant = files
            .iter()
            .find(|f| f.name == "tenant-cl01.yaml")
            .expect("tenant file");
        let client = &tenant.objects[1];
        assert_eq!(client["kind"], "GatewayClient");
        assert_eq!(client["spec"]["endpoint"]["addresses"][0], "198.18.0.11");
        assert_eq!(client["spec"]["endpoint"]["port"], 31840);
        assert_eq!(client["status"]["internalEndpoint"]["ip"], "10.0.1.101");
        assert_eq!(client["status"]["internalEndpoint"]["node"], "cl02-n1");
        // cl02's PublicKey for cl01 carries cl01's gateway key.
        assert_eq!(
            tenant.objects[2]["spec"]["publicKey"].as_str(),
            keys.public("cl01", "cl02").as_deref()
        );
        assert_eq!(tenant.objects.len(), 3);
        let fabric = files
            .iter()
            .find(|f| f.name == "fabric-cl01.yaml")
            .expect("fabric file");
        assert_eq!(fabric.objects.len(), 1, "the InternalFabric alone");
        assert_eq!(fabric.objects[0]["kind"], "InternalFabric");
        assert_eq!(fabric.objects[0]["spec"]["gatewayIP"], "10.0.1.101");
        assert_eq!(
            tenant.objects[0]["status"]["remote"]["cidr"]["pod"][0],
            "10.1.0.0/16"
        );
    }
}
