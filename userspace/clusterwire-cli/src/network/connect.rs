//! `cwctl network connect`, in the reference's order: identities and tenant namespaces, each
//! side's Configuration applied on the other and its remap waited for, the templates checked,
//! the GatewayServer on the remote cluster and its endpoint waited for, the GatewayClient on
//! the local cluster, the public keys exchanged (each gateway's key read from its Secret once
//! the controller wrote it), and with `--wait` both Connections Connected.
use std::collections::BTreeMap;

use clusterwire_api::common::Ip;
use clusterwire_api::{
    common::REMOTE_CLUSTER_ID_LABEL,
    ipam::Network,
    networking::{
        Configuration, Connection, GatewayClient, GatewayServer, WgGatewayClientTemplate,
        WgGatewayServerTemplate,
        connection::ConnectionStatusValue,
        gateway::{Protocol, ServiceType},
        gatewayclient::ClientEndpoint,
        gatewayserver::ServerEndpoint,
    },
};
use clusterwire_links::wireguard::PublicKey as WgPublicKey;
use ipnet::IpNet;
use k8s_openapi::{
    api::core::v1::{ObjectReference, Secret},
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{Resource, ResourceExt as _, api::ListParams};

use super::{
    ConnectArgs,
    cluster::{Cluster, Shared},
    error::{NetworkError, Side},
};
use crate::manifest::{
    create::{configuration_object, gateway_client_object, gateway_server_object},
    generate::public_key_object,
};

/// The API groups `connect` uses.
pub const NETWORKING_API: &str = "networking.liqo.io/v1beta1";
/// Default external CIDR (the reference's), used when a cluster publishes none.
const DEFAULT_EXTERNAL_CIDR: &str = "10.70.0.0/16";
/// Label of the `Network` objects holding a cluster's own CIDRs.
const NETWORK_TYPE_LABEL: &str = "ipam.liqo.io/network-type";
/// Secret key holding a gateway's raw 32-byte public key.
const SECRET_PUBLIC_KEY: &str = "publicKey";

/// A cluster's own CIDRs, as handed to its peer.
struct Cidrs {
    pod: Vec<IpNet>,
    external: Vec<IpNet>,
}

/// Identities, then the tenant namespaces; returns (local namespace, remote namespace).
pub async fn prepare(
    local: &mut Cluster,
    remote: &mut Cluster,
    namespace: Option<&String>,
    remote_namespace: Option<&String>,
    create: bool,
) -> Result<(String, String), NetworkError> {
    local.require_api(NETWORKING_API).await?;
    remote.require_api(NETWORKING_API).await?;
    local.identify().await?;
    remote.identify().await?;
    let mut namespaces = Vec::new();
    for (cluster, peer, given) in [
        (&*local, &remote.id, namespace),
        (&*remote, &local.id, remote_namespace),
    ] {
        let name = given
            .cloned()
            .unwrap_or_else(|| format!("liqo-tenant-{peer}"));
        if create && given.is_none() {
            let labels = BTreeMap::from([
                (REMOTE_CLUSTER_ID_LABEL.to_owned(), peer.clone()),
                ("liqo.io/tenant-namespace".to_owned(), "true".to_owned()),
            ]);
            let created = cluster.ensure_namespace(&name, labels).await?;
            let how = if created { "created" } else { "found" };
            cluster.say(&format!("Tenant namespace {name} {how}"));
        }
        namespaces.push(name);
    }
    let remote_ns = namespaces.pop().unwrap_or_default();
    let local_ns = namespaces.pop().unwrap_or_default();
    Ok((local_ns, remote_ns))
}

/// Runs `connect`.
pub async fn run(args: &ConnectArgs, progress: &Shared) -> Result<(), NetworkError> {
    check_flags(args)?;
    let (mut local, mut remote) = super::clusters(&args.clusters, progress).await?;
    let (local_ns, remote_ns) = prepare(
        &mut local,
        &mut remote,
        args.clusters.namespace.as_ref(),
        args.clusters.remote_namespace.as_ref(),
        true,
    )
    .await?;

    let sides = Sides {
        local: &local,
        remote: &remote,
        local_ns: &local_ns,
        remote_ns: &remote_ns,
    };
    configurations(args, &sides).await?;
    let (server, client) = gateways(args, &sides).await?;
    if !args.disable_sharing_keys {
        exchange_keys(&sides, &server, &client).await?;
    }
    if args.clusters.wait {
        connections(&sides).await?;
    }
    Ok(())
}

/// Both clusters and their namespaces for this peering.
struct Sides<'a> {
    local: &'a Cluster,
    remote: &'a Cluster,
    local_ns: &'a str,
    remote_ns: &'a str,
}

/// Each side's CIDRs, applied on the other side as a Configuration, and its remap waited for.
async fn configurations(args: &ConnectArgs, sides: &Sides<'_>) -> Result<(), NetworkError> {
    let Sides {
        local,
        remote,
        local_ns,
        remote_ns,
    } = *sides;
    let local_cidrs = cidrs(local, &args.pod_cidr, &args.external_cidr, "pod-cidr").await?;
    let remote_cidrs = cidrs(
        remote,
        &args.remote_pod_cidr,
        &args.remote_external_cidr,
        "remote-pod-cidr",
    )
    .await?;
    for (cluster, ns, peer, peer_cidrs) in [
        (local, local_ns, &remote.id, remote_cidrs),
        (remote, remote_ns, &local.id, local_cidrs),
    ] {
        let object =
            configuration_object(peer, Some(ns), peer, peer_cidrs.pod, peer_cidrs.external);
        cluster.apply(&object).await?;
        cluster.say(&format!(
            "Network configuration correctly set up: Configuration {ns}/{peer}"
        ));
    }
    for (cluster, ns, peer) in [
        (local, local_ns, &remote.id),
        (remote, remote_ns, &local.id),
    ] {
        let remapped = cluster
            .wait_for::<Configuration, _>(ns, peer, "to be remapped", |c| {
                let cidr = &c.status.as_ref()?.remote.as_ref()?.cidr;
                (!cidr.pod.is_empty()).then(|| join(&cidr.pod))
            })
            .await?;
        cluster.say(&format!(
            "Configuration applied successfully: {peer}'s pods reached at {remapped}"
        ));
    }

    Ok(())
}

/// The templates checked, the GatewayServer on the remote cluster and its endpoint, then the
/// GatewayClient on the local cluster.
async fn gateways(
    args: &ConnectArgs,
    sides: &Sides<'_>,
) -> Result<(GatewayServer, GatewayClient), NetworkError> {
    let Sides {
        local,
        remote,
        local_ns,
        remote_ns,
    } = *sides;
    let server_template = (
        args.gw_server_template_name.clone(),
        args.gw_server_template_namespace
            .clone()
            .unwrap_or_else(|| remote.system_namespace.clone()),
    );
    let client_template = (
        args.gw_client_template_name.clone(),
        args.gw_client_template_namespace
            .clone()
            .unwrap_or_else(|| local.system_namespace.clone()),
    );
    if !args.skip_validation {
        check_template::<WgGatewayServerTemplate>(remote, &server_template, "gw-server-template")
            .await?;
        check_template::<WgGatewayClientTemplate>(local, &client_template, "gw-client-template")
            .await?;
    }

    // Gateway server on the remote cluster, then its endpoint.
    let endpoint = ServerEndpoint {
        port: Some(args.gw_server_service_port),
        ports: None,
        service_type: args.gw_server_service_type.into(),
        node_port: args.gw_server_service_nodeport,
        load_balancer_ip: args.gw_server_service_loadbalancerip.map(Ip),
    };
    let server = gateway_server_object(
        &local.id,
        remote_ns,
        &local.id,
        server_template,
        endpoint,
        args.mtu,
    );
    let server = remote.apply(&server).await?;
    remote.say(&format!(
        "Gateway server correctly set up: GatewayServer {remote_ns}/{}",
        local.id
    ));
    let (addresses, port) = remote
        .wait_for::<GatewayServer, _>(remote_ns, &local.id, "to publish its endpoint", |s| {
            let e = s.status.as_ref()?.endpoint.as_ref()?;
            (!e.addresses.is_empty()).then(|| (e.addresses.clone(), e.port))
        })
        .await?;
    let port = args
        .gw_client_port
        .or(port)
        .unwrap_or(args.gw_server_service_port);
    let addresses = args
        .gw_client_address
        .clone()
        .map_or(addresses, |a| vec![a]);
    remote.say(&format!(
        "Gateway server endpoint ready: {}:{port}",
        addresses.join(",")
    ));

    // Gateway client on the local cluster.
    let endpoint = ClientEndpoint {
        addresses,
        port: Some(port),
        ports: None,
        protocol: Some(Protocol::UDP),
    };
    let client = gateway_client_object(
        &remote.id,
        local_ns,
        &remote.id,
        client_template,
        endpoint,
        args.mtu,
    );
    let client = local.apply(&client).await?;
    local.say(&format!(
        "Gateway client correctly set up: GatewayClient {local_ns}/{}",
        remote.id
    ));

    Ok((server, client))
}

/// Each gateway's key, read from its Secret, applied on the other side as a PublicKey.
async fn exchange_keys(
    sides: &Sides<'_>,
    server: &GatewayServer,
    client: &GatewayClient,
) -> Result<(), NetworkError> {
    let Sides {
        local,
        remote,
        local_ns,
        remote_ns,
    } = *sides;
    let server_key = gateway_key::<GatewayServer>(remote, remote_ns, &local.id, |s| {
        s.status.as_ref()?.secret_ref.clone()
    })
    .await?;
    apply_key(local, local_ns, &remote.id, &server_key, client).await?;
    let client_key = gateway_key::<GatewayClient>(local, local_ns, &remote.id, |c| {
        c.status.as_ref()?.secret_ref.clone()
    })
    .await?;
    apply_key(remote, remote_ns, &local.id, &client_key, server).await?;
    Ok(())
}

/// Both Connections Connected, server side first.
async fn connections(sides: &Sides<'_>) -> Result<(), NetworkError> {
    let Sides {
        local,
        remote,
        local_ns,
        remote_ns,
    } = *sides;
    for (cluster, ns, gateway) in [
        (remote, remote_ns, &local.id),
        (local, local_ns, &remote.id),
    ] {
        let name = clusterwire_fabric::connection::connection_name(gateway);
        cluster
            .wait_for::<Connection, _>(ns, &name, "to be Connected", |c| {
                (c.status.as_ref()?.value? == ConnectionStatusValue::Connected).then_some(())
            })
            .await?;
        cluster.say(&format!(
            "Connection is established: Connection {ns}/{name}"
        ));
    }
    Ok(())
}

/// Flag combinations the parser cannot check.
fn check_flags(args: &ConnectArgs) -> Result<(), NetworkError> {
    let service_type = ServiceType::from(args.gw_server_service_type);
    if args.gw_server_service_nodeport.is_some() && service_type == ServiceType::ClusterIP {
        return Err(NetworkError::Flags(
            "--gw-server-service-nodeport needs --gw-server-service-type NodePort or LoadBalancer",
        ));
    }
    if args.gw_server_service_loadbalancerip.is_some() && service_type != ServiceType::LoadBalancer
    {
        return Err(NetworkError::Flags(
            "--gw-server-service-loadbalancerip needs --gw-server-service-type LoadBalancer",
        ));
    }
    Ok(())
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A cluster's CIDRs: the flags, else its `Network` objects, else (external only) the default.
async fn cidrs(
    cluster: &Cluster,
    pod: &[IpNet],
    external: &[IpNet],
    pod_flag: &'static str,
) -> Result<Cidrs, NetworkError> {
    cluster.step("reading the network configuration");
    let pod = if pod.is_empty() {
        published(cluster, "pod-cidr").await?
    } else {
        pod.to_vec()
    };
    if pod.is_empty() {
        return Err(NetworkError::NoCidr {
            side: cluster.side,
            what: "pod CIDR",
            label: "pod-cidr",
            namespace: cluster.system_namespace.clone(),
            flag: pod_flag,
        });
    }
    let mut external = if external.is_empty() {
        published(cluster, "external-cidr").await?
    } else {
        external.to_vec()
    };
    if external.is_empty() {
        external = DEFAULT_EXTERNAL_CIDR.parse().into_iter().collect();
    }
    cluster.say(&format!(
        "Network configuration correctly retrieved: pod {}, external {}",
        join(&pod),
        join(&external)
    ));
    Ok(Cidrs { pod, external })
}

/// The CIDRs of the `Network` objects of type `kind` in the cluster's system namespace (none
/// when the ipam API is not served).
async fn published(cluster: &Cluster, kind: &str) -> Result<Vec<IpNet>, NetworkError> {
    let api = cluster.api::<Network>(&cluster.system_namespace);
    let params = ListParams::default().labels(&format!("{NETWORK_TYPE_LABEL}={kind}"));
    match api.list(&params).await {
        Ok(list) => Ok(list.items.iter().map(|n| n.spec.cidr.0).collect()),
        Err(e) if NetworkError::is_not_found(&e) => Ok(Vec::new()),
        Err(e) => Err(NetworkError::api(
            cluster.side,
            &cluster.url,
            "listing Networks",
            e,
        )),
    }
}

async fn check_template<K>(
    cluster: &Cluster,
    (name, namespace): &(String, String),
    flag: &'static str,
) -> Result<(), NetworkError>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    <K as Resource>::DynamicType: Default,
{
    let kind = K::kind(&Default::default()).into_owned();
    cluster.step(&format!("checking {kind} {namespace}/{name}"));
    if cluster.get::<K>(namespace, name).await?.is_none() {
        return Err(NetworkError::TemplateMissing {
            side: cluster.side,
            kind: match cluster.side {
                Side::Local => "WgGatewayClientTemplate",
                Side::Remote => "WgGatewayServerTemplate",
            },
            name: name.clone(),
            namespace: namespace.clone(),
            flag,
        });
    }
    cluster.say(&format!(
        "Gateway template \"{name}/{namespace}\" correctly checked"
    ));
    Ok(())
}

/// Waits for a gateway's `status.secretRef`, then reads its public key from that Secret.
async fn gateway_key<K>(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    secret_ref: impl Fn(&K) -> Option<ObjectReference>,
) -> Result<WgPublicKey, NetworkError>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    <K as Resource>::DynamicType: Default,
{
    let reference = cluster
        .wait_for::<K, _>(namespace, name, "to reference its key Secret", |g| {
            secret_ref(g).filter(|r| r.name.is_some())
        })
        .await?;
    let secret_ns = reference.namespace.unwrap_or_else(|| namespace.to_owned());
    let secret_name = reference.name.unwrap_or_default();
    let full = format!("{secret_ns}/{secret_name}");
    let bad = |problem| NetworkError::BadKey {
        side: cluster.side,
        secret: full.clone(),
        problem,
    };
    let secret = cluster
        .get::<Secret>(&secret_ns, &secret_name)
        .await?
        .ok_or_else(|| bad("does not exist"))?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(SECRET_PUBLIC_KEY))
        .ok_or_else(|| bad("has no publicKey"))?;
    let key: [u8; 32] = bytes
        .0
        .as_slice()
        .try_into()
        .map_err(|_| bad("publicKey is not 32 bytes"))?;
    cluster.say(&format!("Gateway public key read from Secret {full}"));
    Ok(WgPublicKey::from_bytes(key))
}

/// Applies the peer's key as PublicKey `namespace/peer`, owned by the local gateway (deleting
/// the gateway removes it).
async fn apply_key<G: Resource<DynamicType = ()>>(
    cluster: &Cluster,
    namespace: &str,
    peer: &str,
    key: &WgPublicKey,
    gateway: &G,
) -> Result<(), NetworkError> {
    let mut object = public_key_object(peer, Some(namespace), peer, key);
    if let Some(uid) = gateway.meta().uid.clone() {
        object.metadata.owner_references = Some(vec![OwnerReference {
            api_version: G::api_version(&()).into_owned(),
            kind: G::kind(&()).into_owned(),
            name: gateway.name_any(),
            uid,
            ..OwnerReference::default()
        }]);
    }
    cluster.apply(&object).await?;
    cluster.say(&format!(
        "Public key correctly created: PublicKey {namespace}/{peer}"
    ));
    Ok(())
}
