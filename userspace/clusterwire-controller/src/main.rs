//! `clusterwire-controller`: parses its configuration, rebuilds the IPAM from the
//! Configurations' statuses, then runs the Configuration, `GatewayServer` and `GatewayClient`
//! controllers with a `/metrics` `/healthz` `/readyz` endpoint.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use clap::Parser;
use clusterwire_api::{
    common::REMOTE_CLUSTER_ID_LABEL,
    networking::{
        Configuration, GatewayClient, GatewayServer, WgGatewayClientTemplate,
        WgGatewayServerTemplate,
    },
};
use clusterwire_controller::{
    Context, ControllerConfig, Error, Events, configuration, gateway, http::Metrics,
};
use clusterwire_ipam::{DEFAULT_EXTERNAL_CIDR, DEFAULT_INTERNAL_CIDR};
use futures::StreamExt as _;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        core::v1::{ObjectReference, Secret, Service},
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
    /// Log filter (tracing directives).
    #[arg(long, default_value = "info")]
    log: String,
}

/// Validated configuration.
#[derive(Debug)]
struct Config {
    controller: ControllerConfig,
    metrics_addr: SocketAddr,
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
        Ok(Self {
            controller,
            metrics_addr,
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

    // Rebuild the IPAM before any reconcile, so no remap is handed out twice.
    let mut ipam = config.controller.ipam()?;
    let existing = Api::<Configuration>::all(client.clone())
        .list(&ListParams::default())
        .await
        .context("listing Configurations")?;
    for (key, problem) in configuration::restore(&mut ipam, &existing.items) {
        tracing::warn!(configuration = %key, "status not restored, remapped afresh: {problem}");
    }
    tracing::info!(
        clusters = ipam.clusters().count(),
        "IPAM rebuilt from Configuration statuses"
    );

    let reporter = Reporter {
        controller: "clusterwire-controller".to_owned(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let events = Events::Recorder(Recorder::new(client.clone(), reporter));
    let ctx = Arc::new(Context::new(client.clone(), ipam, events, now));
    let owned = watcher::Config::default().labels(REMOTE_CLUSTER_ID_LABEL);

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
    .for_each(|r| async { record(&metrics, "configuration", r) });

    let servers = Controller::new(
        Api::<GatewayServer>::all(client.clone()),
        watcher::Config::default(),
    );
    let store = servers.store();
    let servers = servers
        .owns(Api::<Deployment>::all(client.clone()), owned.clone())
        .owns(Api::<Service>::all(client.clone()), owned.clone())
        .owns(Api::<Secret>::all(client.clone()), owned.clone())
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
        .run(
            gateway::reconcile_server,
            gateway::error_policy,
            Arc::clone(&ctx),
        )
        .for_each(|r| async { record(&metrics, "gatewayserver", r) });

    let clients = Controller::new(
        Api::<GatewayClient>::all(client.clone()),
        watcher::Config::default(),
    );
    let store = clients.store();
    let clients = clients
        .owns(Api::<Deployment>::all(client.clone()), owned.clone())
        .owns(Api::<Secret>::all(client.clone()), owned)
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
        .run(
            gateway::reconcile_client,
            gateway::error_policy,
            Arc::clone(&ctx),
        )
        .for_each(|r| async { record(&metrics, "gatewayclient", r) });

    metrics.set_ready(true);
    metrics.set_leader(true);
    tokio::join!(conf, servers, clients);
    server.abort();
    tracing::info!("stopped");
    Ok(())
}
