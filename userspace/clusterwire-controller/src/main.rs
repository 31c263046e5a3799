//! `clusterwire-controller`: parses its configuration, rebuilds the IPAM from the
//! Configurations' statuses, the `InternalNode`s, the `InternalFabric`s and the IPs, then runs
//! the Configuration, `GatewayServer`, `GatewayClient`, `InternalNode` (per Node) and IP
//! controllers with a `/metrics` `/healthz` `/readyz` endpoint.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use clap::Parser;
use clusterwire_api::{
    common::REMOTE_CLUSTER_ID_LABEL,
    ipam::IP,
    networking::{
        Configuration, GatewayClient, GatewayServer, InternalFabric, InternalNode,
        WgGatewayClientTemplate, WgGatewayServerTemplate,
    },
};
use clusterwire_controller::{
    Context, ControllerConfig, Error, Events, configuration, gateway, http::Metrics,
    internalfabric, internalnode, ip, leader,
};
use clusterwire_ipam::{DEFAULT_EXTERNAL_CIDR, DEFAULT_INTERNAL_CIDR, Ipam};
use futures::StreamExt as _;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        coordination::v1::Lease,
        core::v1::{Node, ObjectReference, Pod, Secret, Service},
    },
    jiff::Timestamp,
};
use kube::{
    Api, Client, Resource,
    api::ListParams,
    runtime::{
        Controller,
        controller::{self, Action},
        events::{Recorder, Reporter},
        reflector::{ObjectRef, Store},
        watcher,
    },
};

/// `clusterwire-controller`: IPAM remaps and gateway objects for clusterwire.
#[derive(Debug, Parser)]
#[command(name = "clusterwire-controller", version)]
struct Args {
    /// Local pod CIDR(s), never handed out as a remap.
    #[arg(long, value_delimiter = ',', required = true)]
    pod_cidr: Vec<IpNet>,
    /// Local service CIDR(s), never handed out.
    #[arg(long, value_delimiter = ',', required = true)]
    service_cidr: Vec<IpNet>,
    /// Local external CIDR(s) (single-IP mappings; the first address is the unknown source).
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_EXTERNAL_CIDR)]
    external_cidr: Vec<IpNet>,
    /// Local internal CIDR(s) (node and gateway addresses on the fabric).
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_INTERNAL_CIDR)]
    internal_cidr: Vec<IpNet>,
    /// Other ranges no remap may use (node networks, load balancer ranges).
    #[arg(long, value_delimiter = ',')]
    reserved: Vec<IpNet>,
    /// IPv4 remap pools, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"
    )]
    pool_v4: Vec<Ipv4Net>,
    /// IPv6 remap pools, in order.
    #[arg(long, value_delimiter = ',', default_value = "fd00::/8")]
    pool_v6: Vec<Ipv6Net>,
    /// Serve /metrics, /healthz and /readyz here.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Elect a leader among the replicas over Lease `clusterwire-controller` (15 s lease,
    /// 10 s renew deadline, 2 s retry); only the leader reconciles.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Namespace of the leader Lease (in a pod: its own namespace, env `POD_NAMESPACE`).
    #[arg(long, env = "POD_NAMESPACE", default_value = "liqo")]
    lease_namespace: String,
    /// This replica's identity in the Lease (in a pod: its name, env `POD_NAME`).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Log filter (tracing directives).
    #[arg(long, default_value = "info")]
    log: String,
}

/// Validated configuration.
#[derive(Debug)]
struct Config {
    controller: ControllerConfig,
    metrics_addr: SocketAddr,
    /// Lease namespace and identity when electing a leader.
    election: Option<(String, String)>,
    log: String,
}

impl TryFrom<Args> for Config {
    type Error = anyhow::Error;

    fn try_from(args: Args) -> anyhow::Result<Self> {
        let Args {
            pod_cidr,
            service_cidr,
            external_cidr,
            internal_cidr,
            reserved,
            pool_v4,
            pool_v6,
            metrics_addr,
            leader_elect,
            lease_namespace,
            identity,
            log,
        } = args;
        let controller = ControllerConfig {
            pod_cidrs: pod_cidr,
            service_cidrs: service_cidr,
            external_cidrs: external_cidr,
            internal_cidrs: internal_cidr,
            reserved,
            pools_v4: pool_v4,
            pools_v6: pool_v6,
        };
        controller.ipam().context("invalid IPAM configuration")?;
        let election = if leader_elect {
            let identity = identity
                .filter(|i| !i.is_empty())
                .context("--identity (or env POD_NAME) is needed with --leader-elect")?;
            Some((lease_namespace, identity))
        } else {
            None
        };
        Ok(Self {
            controller,
            metrics_addr,
            election,
            log,
        })
    }
}

fn now() -> Timestamp {
    Timestamp::now()
}

/// The gateways (in `store`) whose template reference names `template`.
fn referencing<K, T>(
    store: &Store<K>,
    template: &T,
    reference: impl Fn(&K) -> Option<&ObjectReference>,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone,
    T: Resource<DynamicType = ()>,
{
    let meta = template.meta();
    store
        .state()
        .iter()
        .filter(|gw| {
            reference(gw).is_some_and(|r| {
                r.name == meta.name
                    && r.namespace.as_ref().or(gw.meta().namespace.as_ref())
                        == meta.namespace.as_ref()
            })
        })
        .map(|gw| ObjectRef::from_obj(gw.as_ref()))
        .collect()
}

/// The gateways (in `store`) in the namespace of `object` serving the remote cluster its
/// `liqo.io/remote-cluster-id` label names: a gateway pod or Configuration changed.
fn same_peer<K, T>(store: &Store<K>, object: &T) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone,
    T: Resource<DynamicType = ()>,
{
    let meta = object.meta();
    let cluster = |m: &kube::api::ObjectMeta| {
        m.labels
            .as_ref()
            .and_then(|l| l.get(REMOTE_CLUSTER_ID_LABEL))
            .cloned()
    };
    let Some(peer) = cluster(meta) else {
        return Vec::new();
    };
    store
        .state()
        .iter()
        .filter(|gw| {
            gw.meta().namespace == meta.namespace && cluster(gw.meta()).as_ref() == Some(&peer)
        })
        .map(|gw| ObjectRef::from_obj(gw.as_ref()))
        .collect()
}

fn record<K: Resource>(
    metrics: &Metrics,
    name: &'static str,
    result: Result<(ObjectRef<K>, Action), controller::Error<Error, watcher::Error>>,
) {
    match result {
        Ok(_) => metrics.count(name, "ok"),
        Err(controller::Error::ReconcilerFailed(e, _)) => metrics.count(name, e.kind()),
        Err(e) => {
            metrics.count(name, "controller");
            tracing::warn!(controller = name, "{e}");
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::try_from(Args::parse())?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&config.log).context("--log")?)
        .init();
    let client = Client::try_default().await.context("Kubernetes client")?;
    let metrics = Arc::new(Metrics::default());
    let server = tokio::spawn(clusterwire_controller::http::serve(
        config.metrics_addr,
        Arc::clone(&metrics),
    ));
    let result = match config.election.clone() {
        None => {
            metrics.set_leader(true);
            run(client, &config, &metrics).await
        }
        Some((namespace, identity)) => {
            let (led, leading) = tokio::sync::oneshot::channel();
            let api: Api<Lease> = Api::namespaced(client.clone(), &namespace);
            let election =
                leader::lead(api, LEASE.to_owned(), identity, leader::TIMING, move || {
                    let _ = led.send(());
                });
            tokio::pin!(election);
            tokio::select! {
                () = &mut election => Err(anyhow::anyhow!("leader election ended before leading")),
                Ok(()) = leading => {
                    metrics.set_leader(true);
                    tokio::select! {
                        // Losing the lease ends the process; its replacement starts as a candidate.
                        () = &mut election => Err(anyhow::anyhow!("lost the leader lease {namespace}/{LEASE}")),
                        result = run(client, &config, &metrics) => result,
                    }
                }
            }
        }
    };
    server.abort();
    result
}

/// The name of the leader Lease.
const LEASE: &str = "clusterwire-controller";

/// A recorded allocation the rebuild could not restore: the object, and why.
type NotRestored = (ObjectReference, String);

/// The IPAM with every remap, internal address and IP mapping the resources record, before any
/// reconcile, so nothing is handed out twice; and the objects whose record was refused (they
/// get a fresh allocation on their reconcile, and a warning event).
async fn rebuild_ipam(
    client: &Client,
    config: &Config,
) -> anyhow::Result<(Ipam, Vec<NotRestored>)> {
    let mut ipam = config.controller.ipam()?;
    let mut refused: Vec<NotRestored> = Vec::new();
    let confs = restore_kind(
        client,
        &mut ipam,
        &mut refused,
        Records {
            kind: "Configurations",
            what: "remap",
            restore: configuration::restore,
            key: |c: &Configuration| configuration::key(c).ok(),
        },
    )
    .await?;
    let nodes = restore_kind(
        client,
        &mut ipam,
        &mut refused,
        Records {
            kind: "InternalNodes",
            what: "internal address",
            restore: internalnode::restore,
            key: |n: &InternalNode| n.metadata.name.clone(),
        },
    )
    .await?;
    let fabrics = restore_kind(
        client,
        &mut ipam,
        &mut refused,
        Records {
            kind: "InternalFabrics",
            what: "gateway internal address",
            restore: internalfabric::restore,
            key: |f: &InternalFabric| {
                Some(format!(
                    "{}/{}",
                    f.metadata.namespace.as_deref().unwrap_or_default(),
                    f.metadata.name.as_deref().unwrap_or_default()
                ))
            },
        },
    )
    .await?;
    let ips = restore_kind(
        client,
        &mut ipam,
        &mut refused,
        Records {
            kind: "IPs",
            what: "IP address",
            restore: ip::restore,
            key: |i: &IP| ip::key(i).ok(),
        },
    )
    .await?;
    tracing::info!(
        clusters = ipam.clusters().count(),
        configurations = confs,
        nodes,
        fabrics,
        ips,
        "IPAM rebuilt from Configuration statuses, InternalNodes, InternalFabrics and IPs"
    );
    Ok((ipam, refused))
}

/// How one kind's records go back into the IPAM.
struct Records<R, F> {
    /// The kind, plural, for messages.
    kind: &'static str,
    /// What the record is, for messages and events.
    what: &'static str,
    /// Restores the records into the IPAM; returns the refused keys and why.
    restore: R,
    /// The key `restore` reports an object by.
    key: F,
}

/// Lists every object of kind `K` and restores their records; a refused record is logged and
/// noted for a warning event on its object. Returns how many objects were listed.
async fn restore_kind<K, R, F>(
    client: &Client,
    ipam: &mut Ipam,
    refused: &mut Vec<NotRestored>,
    how: Records<R, F>,
) -> anyhow::Result<usize>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    R: FnOnce(&mut Ipam, &[K]) -> Vec<(String, clusterwire_ipam::IpamError)>,
    F: Fn(&K) -> Option<String>,
{
    let list = Api::<K>::all(client.clone())
        .list(&ListParams::default())
        .await
        .with_context(|| format!("listing {}", how.kind))?;
    for (key, problem) in (how.restore)(ipam, &list.items) {
        if let Some(object) = list
            .items
            .iter()
            .find(|o| (how.key)(o).as_deref() == Some(key.as_str()))
        {
            let message = format!("{} not restored, assigned afresh: {problem}", how.what);
            tracing::warn!(object = ?object.meta().name, "{message}");
            refused.push((object.object_ref(&()), message));
        }
    }
    Ok(list.items.len())
}

/// The `GatewayServer` controller: the gateways, their objects, pods, Configurations and
/// templates.
async fn run_servers(client: Client, ctx: Arc<Context>, metrics: &Metrics) {
    let owned = watcher::Config::default().labels(REMOTE_CLUSTER_ID_LABEL);
    let servers = Controller::new(
        Api::<GatewayServer>::all(client.clone()),
        watcher::Config::default(),
    );
    let store = servers.store();
    let (pods, confs) = (store.clone(), store.clone());
    servers
        .owns(Api::<Deployment>::all(client.clone()), owned.clone())
        .owns(Api::<Service>::all(client.clone()), owned.clone())
        .owns(Api::<Secret>::all(client.clone()), owned.clone())
        .owns(Api::<InternalFabric>::all(client.clone()), owned.clone())
        .watches(Api::<Pod>::all(client.clone()), owned.clone(), move |p| {
            same_peer(&pods, &p)
        })
        .watches(
            Api::<Configuration>::all(client.clone()),
            owned.clone(),
            move |c| same_peer(&confs, &c),
        )
        .watches(
            Api::<WgGatewayServerTemplate>::all(client.clone()),
            watcher::Config::default(),
            move |t| {
                referencing(&store, &t, |g: &GatewayServer| {
                    g.spec.server_template_ref.as_ref()
                })
            },
        )
        .shutdown_on_signal()
        .run(gateway::reconcile_server, gateway::error_policy, ctx)
        .for_each(|r| async { record(metrics, "gatewayserver", r) })
        .await;
}

/// The `GatewayClient` controller: as [`run_servers`], without a Service.
async fn run_clients(client: Client, ctx: Arc<Context>, metrics: &Metrics) {
    let owned = watcher::Config::default().labels(REMOTE_CLUSTER_ID_LABEL);
    let clients = Controller::new(
        Api::<GatewayClient>::all(client.clone()),
        watcher::Config::default(),
    );
    let store = clients.store();
    let (pods, confs) = (store.clone(), store.clone());
    clients
        .owns(Api::<Deployment>::all(client.clone()), owned.clone())
        .owns(Api::<Secret>::all(client.clone()), owned.clone())
        .owns(Api::<InternalFabric>::all(client.clone()), owned.clone())
        .watches(Api::<Pod>::all(client.clone()), owned.clone(), move |p| {
            same_peer(&pods, &p)
        })
        .watches(
            Api::<Configuration>::all(client.clone()),
            owned.clone(),
            move |c| same_peer(&confs, &c),
        )
        .watches(
            Api::<WgGatewayClientTemplate>::all(client.clone()),
            watcher::Config::default(),
            move |t| {
                referencing(&store, &t, |g: &GatewayClient| {
                    g.spec.client_template_ref.as_ref()
                })
            },
        )
        .shutdown_on_signal()
        .run(gateway::reconcile_client, gateway::error_policy, ctx)
        .for_each(|r| async { record(metrics, "gatewayclient", r) })
        .await;
}

/// Rebuilds the IPAM (as the leader: no other replica allocates any more) and runs the
/// controllers until a shutdown signal.
async fn run(client: Client, config: &Config, metrics: &Arc<Metrics>) -> anyhow::Result<()> {
    let (ipam, refused) = rebuild_ipam(&client, config).await?;

    let reporter = Reporter {
        controller: "clusterwire-controller".to_owned(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let events = Events::Recorder(Recorder::new(client.clone(), reporter));
    let ctx = Arc::new(Context::new(client.clone(), ipam, events, now));
    for (object, note) in &refused {
        ctx.events.publish(object, true, "NotRestored", note).await;
    }
    let conf = Controller::new(
        Api::<Configuration>::all(client.clone()),
        watcher::Config::default(),
    )
    .shutdown_on_signal()
    .run(
        configuration::reconcile,
        configuration::error_policy,
        Arc::clone(&ctx),
    )
    .for_each(|r| async { record(metrics, "configuration", r) });

    let servers = run_servers(client.clone(), Arc::clone(&ctx), metrics);
    let clients = run_clients(client.clone(), Arc::clone(&ctx), metrics);

    let nodes = Controller::new(Api::<Node>::all(client.clone()), watcher::Config::default())
        .owns(
            Api::<InternalNode>::all(client.clone()),
            watcher::Config::default(),
        )
        .shutdown_on_signal()
        .run(
            internalnode::reconcile,
            internalnode::error_policy,
            Arc::clone(&ctx),
        )
        .for_each(|r| async { record(metrics, "internalnode", r) });

    let ips = Controller::new(Api::<IP>::all(client.clone()), watcher::Config::default())
        .shutdown_on_signal()
        .run(ip::reconcile, ip::error_policy, Arc::clone(&ctx))
        .for_each(|r| async { record(metrics, "ip", r) });

    metrics.set_ready(true);
    tokio::join!(conf, servers, clients, nodes, ips);
    tracing::info!("stopped");
    Ok(())
}
