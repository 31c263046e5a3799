//! `cwctl info` and `cwctl info peer ID...`: what liqoctl's `info` shows of the network module,
//! read from one cluster (`--kubeconfig`, `--context`): the cluster id (identity ConfigMap) and,
//! per peer, its Configuration (remote CIDRs and their remaps, local CIDRs when given), its
//! gateway (server or client, endpoint, readiness) and its Connection (status, latency).
//!
//! Peers are keyed by the label `liqo.io/remote-cluster-id` of each object (an object without
//! it counts under its own name, which `cwctl network connect` sets to the peer id; a
//! Connection without it goes with the gateway its `spec.gatewayRef` names). `-o yaml|json`
//! prints the same data as the text; `--get a.b.c` prints one field of it.
#![expect(
    clippy::doc_markdown,
    reason = "doc comments are the --help text: kinds are spelled as users type them"
)]

use std::{
    collections::BTreeMap, fmt::Write as _, path::PathBuf, process::ExitCode, time::Duration,
};

use clusterwire_api::{
    common::REMOTE_CLUSTER_ID_LABEL,
    networking::{
        Configuration, Connection, GatewayClient, GatewayServer, configuration::ClusterConfig,
    },
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{Api, Resource, ResourceExt as _, api::ListParams};
use serde::Serialize;
use serde_json::Value;

use crate::{
    manifest::{CLUSTERWIRE_NAMESPACE, Format, dns_label},
    network::{
        cluster::{Access, Cluster, Shared},
        error::{NetworkError, Side},
        parse_duration,
    },
};

const EXIT_HELP: &str = "Exit status: 0 printed; 1 the cluster could not be read (API error, \
                         unreachable, CRDs or identity missing), no such peer, or --get names no \
                         field; 2 bad flags.";

/// `cwctl info`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_HELP)]
pub struct Args {
    #[command(subcommand)]
    verb: Option<Verb>,
    /// Kubeconfig of the cluster (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig (default: its current context).
    #[arg(long, global = true)]
    context: Option<String>,
    /// Namespace clusterwire is installed in (identity ConfigMap).
    #[arg(long, alias = "liqo-namespace", default_value = CLUSTERWIRE_NAMESPACE,
          value_parser = dns_label, global = true)]
    clusterwire_namespace: String,
    /// Print as YAML or JSON instead of text.
    #[arg(short, long, value_enum, global = true)]
    output: Option<Format>,
    /// Print one field, by its dot-separated path in the -o yaml output (e.g.
    /// peers.cl02.connection.latency; after `info peer ID`: connection.latency).
    #[arg(long, value_name = "PATH", global = true)]
    get: Option<String>,
    /// Give up after this long (e.g. 20s, 1m).
    #[arg(long, default_value = "20s", value_parser = parse_duration, global = true)]
    timeout: Duration,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Show the peers named (their Configuration, gateway and Connection).
    #[command(after_help = EXIT_HELP)]
    Peer {
        /// Remote cluster id(s); with one, the output is that peer alone.
        #[arg(required = true, value_parser = dns_label)]
        ids: Vec<String>,
    },
}

/// What `cwctl info` shows (the `-o yaml|json` shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    /// This cluster's id.
    #[serde(rename = "clusterID")]
    pub cluster_id: String,
    /// Where clusterwire is installed.
    pub namespace: String,
    /// The peers, by remote cluster id.
    pub peers: BTreeMap<String, Peer>,
}

/// One remote cluster as this cluster sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Peer {
    /// Its Configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<ConfigurationInfo>,
    /// The gateway towards it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayInfo>,
    /// The tunnel's Connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionInfo>,
    /// Anything odd (an expected object missing, several where one is expected).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Pod and external CIDRs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cidrs {
    /// Pod CIDRs.
    pub pod: Vec<String>,
    /// External CIDRs.
    pub external: Vec<String>,
}

/// A Configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationInfo {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// This cluster's CIDRs, when the Configuration gives them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<Cidrs>,
    /// The remote cluster's real CIDRs (spec).
    pub remote: Cidrs,
    /// Where this cluster reaches them (status, written by the controller).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remapped: Option<Cidrs>,
    /// `Configured`, `Pending`, or the reason of a failed NetworkCIDRsConfigured condition.
    pub status: String,
    /// The condition's message when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A GatewayServer or GatewayClient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayInfo {
    /// `server` or `client`.
    pub role: &'static str,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Server: the published endpoint (status); client: the endpoint it dials (spec).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
    /// Server: its Service type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_type: Option<String>,
    /// Tunnel MTU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<i32>,
    /// `Ready`, `Pending`, or the reason of a failed Ready condition.
    pub status: String,
    /// The condition's message when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A gateway endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Addresses (IPs or names).
    pub addresses: Vec<String>,
    /// UDP port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Protocol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// A Connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionInfo {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `Server` or `Client`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `Connected`, `Connecting`, `Error`, or `Unknown` before the gateway wrote one.
    pub status: String,
    /// Round-trip latency as the gateway wrote it (`1.2ms`, `N/A`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<String>,
    /// When the latency was measured (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_timestamp: Option<String>,
}

/// Why `cwctl info` failed.
#[derive(Debug, thiserror::Error)]
enum InfoError {
    #[error(transparent)]
    Cluster(#[from] NetworkError),
    #[error("no peer {id} in this cluster ({})", list_known(.known))]
    NoPeer { id: String, known: Vec<String> },
    #[error("--get {path}: no field {missing:?} in {at} ({})", list_known(.known))]
    NoField {
        path: String,
        missing: String,
        at: String,
        known: Vec<String>,
    },
    #[error("printing as {0:?} failed: {1}")]
    Print(Format, String),
}

fn list_known(names: &[String]) -> String {
    if names.is_empty() {
        "it has none".to_owned()
    } else {
        format!("it has: {}", names.join(", "))
    }
}

/// Runs `cwctl info` and returns its exit status.
pub fn run(args: &Args) -> ExitCode {
    match execute(args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: info: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the typed output in a format (keeps the structs' field order).
type Render<'a> = Box<dyn Fn(Format) -> Result<String, InfoError> + 'a>;

fn execute(args: &Args) -> Result<String, InfoError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|_| NetworkError::Flags("cannot start the async runtime"))?;
    let info = runtime.block_on(async {
        let read = read(args);
        tokio::time::timeout(args.timeout, read)
            .await
            .unwrap_or_else(|_| {
                Err(NetworkError::TimedOut {
                    step: "reading the cluster".to_owned(),
                    after: args.timeout,
                })
            })
    })?;
    let json = |e: serde_json::Error| InfoError::Print(Format::Json, e.to_string());
    // What is printed: everything, one peer, or several by id (struct order kept for -o).
    let (value, typed): (Value, Render<'_>) = match &args.verb {
        None => (
            serde_json::to_value(&info).map_err(json)?,
            Box::new(|format| print(&info, format)),
        ),
        Some(Verb::Peer { ids }) => {
            let mut peers = BTreeMap::new();
            for id in ids {
                let peer = info.peers.get(id).ok_or_else(|| InfoError::NoPeer {
                    id: id.clone(),
                    known: info.peers.keys().cloned().collect(),
                })?;
                peers.insert(id.clone(), peer.clone());
            }
            if let [id] = ids.as_slice() {
                let peer = peers[id].clone();
                (
                    serde_json::to_value(&peer).map_err(json)?,
                    Box::new(move |format| print(&peer, format)),
                )
            } else {
                (
                    serde_json::to_value(&peers).map_err(json)?,
                    Box::new(move |format| print(&peers, format)),
                )
            }
        }
    };
    if let Some(path) = &args.get {
        let field = get(&value, path)?;
        return match (field, args.output) {
            (Value::String(text), None) => Ok(format!("{text}\n")),
            (Value::Number(_) | Value::Bool(_) | Value::Null, None) => Ok(format!("{field}\n")),
            (_, format) => print(field, format.unwrap_or(Format::Yaml)),
        };
    }
    match args.output {
        Some(format) => typed(format),
        None => Ok(match &args.verb {
            None => text(&info),
            Some(Verb::Peer { ids }) => ids
                .iter()
                .map(|id| peer_text(id, &info.peers[id]))
                .collect::<Vec<_>>()
                .join("\n"),
        }),
    }
}

fn print<T: Serialize>(value: &T, format: Format) -> Result<String, InfoError> {
    match format {
        Format::Yaml => serde_saphyr::to_string(value).map_err(|e| e.to_string()),
        Format::Json => serde_json::to_string_pretty(value)
            .map(|t| t + "\n")
            .map_err(|e| e.to_string()),
    }
    .map_err(|e| InfoError::Print(format, e))
}

/// The field at dot-separated `path` of `value` (array elements by index).
fn get<'a>(value: &'a Value, path: &str) -> Result<&'a Value, InfoError> {
    let mut at = value;
    let mut walked = Vec::new();
    for key in path.split('.') {
        let next = match at {
            Value::Object(map) => map.get(key),
            Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        let Some(next) = next else {
            let known = match at {
                Value::Object(map) => map.keys().cloned().collect(),
                Value::Array(items) => (0..items.len()).map(|i| i.to_string()).collect(),
                _ => Vec::new(),
            };
            return Err(InfoError::NoField {
                path: path.to_owned(),
                missing: key.to_owned(),
                at: if walked.is_empty() {
                    "the output".to_owned()
                } else {
                    walked.join(".")
                },
                known,
            });
        };
        walked.push(key);
        at = next;
    }
    Ok(at)
}

/// Reads the cluster.
async fn read(args: &Args) -> Result<Info, NetworkError> {
    let access = Access {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
    };
    let progress = Shared::default();
    let cluster = Cluster::connect(
        Side::Local,
        &access,
        &args.clusterwire_namespace,
        args.timeout,
        progress,
    )
    .await?;
    cluster.require_api("networking.liqo.io/v1beta1").await?;
    let cluster_id = cluster.read_identity().await?;
    let configurations = list::<Configuration>(&cluster).await?;
    let servers = list::<GatewayServer>(&cluster).await?;
    let clients = list::<GatewayClient>(&cluster).await?;
    let connections = list::<Connection>(&cluster).await?;
    Ok(assemble(
        cluster_id,
        args.clusterwire_namespace.clone(),
        &configurations,
        &servers,
        &clients,
        &connections,
    ))
}

/// Every `K` in every namespace.
async fn list<K>(cluster: &Cluster) -> Result<Vec<K>, NetworkError>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    <K as Resource>::DynamicType: Default,
{
    let kind = K::kind(&Default::default()).into_owned();
    let api: Api<K> = Api::all(cluster.client.clone());
    api.list(&ListParams::default())
        .await
        .map(|list| list.items)
        .map_err(|e| NetworkError::api(Side::Local, &cluster.url, format!("listing {kind}s"), e))
}

/// The peer an object belongs to: its `liqo.io/remote-cluster-id`, else its name.
fn peer_of<K: Resource>(object: &K) -> String {
    object
        .labels()
        .get(REMOTE_CLUSTER_ID_LABEL)
        .cloned()
        .unwrap_or_else(|| object.name_any())
}

/// The condition `type_`: (`ok_word` when true, else its reason or `Pending`; message when
/// false); `Pending` when absent and `done` is false.
fn condition_status(
    conditions: &[Condition],
    type_: &str,
    ok_word: &str,
    done: bool,
) -> (String, Option<String>) {
    match conditions.iter().find(|c| c.type_ == type_) {
        Some(c) if c.status == "True" => (ok_word.to_owned(), None),
        Some(c) => (
            if c.reason.is_empty() {
                "Pending".to_owned()
            } else {
                c.reason.clone()
            },
            Some(c.message.clone()).filter(|m| !m.is_empty()),
        ),
        None if done => (ok_word.to_owned(), None),
        None => ("Pending".to_owned(), None),
    }
}

fn strings<T: ToString>(items: &[T]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

fn cidrs(c: &ClusterConfig) -> Cidrs {
    Cidrs {
        pod: strings(&c.cidr.pod.0),
        external: c
            .cidr
            .external
            .as_ref()
            .map(|e| strings(&e.0))
            .unwrap_or_default(),
    }
}

fn configuration_info(conf: &Configuration) -> ConfigurationInfo {
    let status = conf.status.clone().unwrap_or_default();
    let remapped = status.remote.as_ref().map(|r| Cidrs {
        pod: strings(&r.cidr.pod),
        external: strings(&r.cidr.external),
    });
    let (state, message) = condition_status(
        &status.common.conditions,
        "NetworkCIDRsConfigured",
        "Configured",
        remapped.is_some(),
    );
    ConfigurationInfo {
        namespace: conf.namespace().unwrap_or_default(),
        name: conf.name_any(),
        local: conf.spec.local.as_ref().map(cidrs),
        remote: cidrs(&conf.spec.remote),
        remapped,
        status: state,
        message,
    }
}

fn server_info(server: &GatewayServer) -> GatewayInfo {
    let status = server.status.clone().unwrap_or_default();
    let (state, message) = condition_status(
        &status.common.conditions,
        "Ready",
        "Ready",
        status.endpoint.is_some(),
    );
    GatewayInfo {
        role: "server",
        namespace: server.namespace().unwrap_or_default(),
        name: server.name_any(),
        endpoint: status.endpoint.map(|e| Endpoint {
            addresses: e.addresses,
            port: e.port,
            protocol: e.protocol.map(|p| format!("{p:?}")),
        }),
        service_type: Some(format!("{:?}", server.spec.endpoint.service_type)),
        mtu: server.spec.mtu,
        status: state,
        message,
    }
}

fn client_info(client: &GatewayClient) -> GatewayInfo {
    let status = client.status.clone().unwrap_or_default();
    let (state, message) = condition_status(
        &status.common.conditions,
        "Ready",
        "Ready",
        status.secret_ref.is_some(),
    );
    let e = &client.spec.endpoint;
    GatewayInfo {
        role: "client",
        namespace: client.namespace().unwrap_or_default(),
        name: client.name_any(),
        endpoint: Some(Endpoint {
            addresses: e.addresses.clone(),
            port: e.port,
            protocol: e.protocol.map(|p| format!("{p:?}")),
        }),
        service_type: None,
        mtu: client.spec.mtu,
        status: state,
        message,
    }
}

fn connection_info(conn: &Connection) -> ConnectionInfo {
    let status = conn.status.clone().unwrap_or_default();
    let latency = status.latency.unwrap_or_default();
    ConnectionInfo {
        namespace: conn.namespace().unwrap_or_default(),
        name: conn.name_any(),
        type_: format!("{:?}", conn.spec.type_),
        status: status
            .value
            .map_or_else(|| "Unknown".to_owned(), |v| format!("{v:?}")),
        latency: latency.value,
        latency_timestamp: latency.timestamp.map(|t| t.0.to_string()),
    }
}

/// The peer of a Connection: its label, else the peer of the gateway its `gatewayRef` names,
/// else its name without `gw-`.
fn connection_peer(conn: &Connection, gateways: &[(String, GatewayInfo)]) -> String {
    let namespace = conn.namespace().unwrap_or_default();
    let gateway_ref = &conn.spec.gateway_ref;
    let kind_of = |g: &GatewayInfo| {
        if g.role == "server" {
            "GatewayServer"
        } else {
            "GatewayClient"
        }
    };
    conn.labels()
        .get(REMOTE_CLUSTER_ID_LABEL)
        .cloned()
        .or_else(|| {
            gateways
                .iter()
                .find(|(_, g)| {
                    gateway_ref.name.as_deref() == Some(g.name.as_str())
                        && gateway_ref.namespace.as_deref().unwrap_or(&namespace) == g.namespace
                        && gateway_ref.kind.as_deref().is_none_or(|k| k == kind_of(g))
                })
                .map(|(id, _)| id.clone())
        })
        .unwrap_or_else(|| {
            let name = conn.name_any();
            name.strip_prefix("gw-").unwrap_or(&name).to_owned()
        })
}

/// Puts `new` in `slot`, or warns that there are several (`what`, `name` of each).
fn place<T>(
    slot: &mut Option<T>,
    warnings: &mut Vec<String>,
    new: T,
    what: &str,
    name: impl Fn(&T) -> String,
) {
    match slot {
        Some(old) => warnings.push(format!("several {what}: {} and {}", name(old), name(&new))),
        None => *slot = Some(new),
    }
}

/// Builds [`Info`] from the objects read (pure, so unit-testable).
pub fn assemble(
    cluster_id: String,
    namespace: String,
    configurations: &[Configuration],
    servers: &[GatewayServer],
    clients: &[GatewayClient],
    connections: &[Connection],
) -> Info {
    let mut peers: BTreeMap<String, Peer> = BTreeMap::new();
    for conf in configurations {
        let peer = peers.entry(peer_of(conf)).or_default();
        place(
            &mut peer.configuration,
            &mut peer.warnings,
            configuration_info(conf),
            "Configurations",
            |c| format!("{}/{}", c.namespace, c.name),
        );
    }
    let gateways: Vec<(String, GatewayInfo)> = servers
        .iter()
        .map(|s| (peer_of(s), server_info(s)))
        .chain(clients.iter().map(|c| (peer_of(c), client_info(c))))
        .collect();
    for (id, gateway) in &gateways {
        let peer = peers.entry(id.clone()).or_default();
        place(
            &mut peer.gateway,
            &mut peer.warnings,
            gateway.clone(),
            "gateways",
            |g| format!("{} {}/{}", g.role, g.namespace, g.name),
        );
    }
    for conn in connections {
        let peer = peers.entry(connection_peer(conn, &gateways)).or_default();
        place(
            &mut peer.connection,
            &mut peer.warnings,
            connection_info(conn),
            "Connections",
            |c| format!("{}/{}", c.namespace, c.name),
        );
    }
    for peer in peers.values_mut() {
        for (missing, what) in [
            (peer.configuration.is_none(), "no Configuration"),
            (peer.gateway.is_none(), "no gateway"),
            (peer.connection.is_none(), "no Connection"),
        ] {
            if missing {
                peer.warnings.push(what.to_owned());
            }
        }
    }
    Info {
        cluster_id,
        namespace,
        peers,
    }
}

/// `cwctl info` as text.
fn text(info: &Info) -> String {
    let mut out = format!(
        "Local cluster\n  Cluster ID: {}\n  Namespace: {}\nPeers: {}\n",
        info.cluster_id,
        info.namespace,
        info.peers.len()
    );
    for (id, peer) in &info.peers {
        out.push('\n');
        out.push_str(&peer_text(id, peer));
    }
    out
}

/// `a, b` (or `-` when empty).
fn join(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

/// One peer as text.
fn peer_text(id: &str, peer: &Peer) -> String {
    let mut out = format!("Peer {id}\n");
    let status = |state: &str, message: &Option<String>| match message {
        Some(m) => format!("{state} ({m})"),
        None => state.to_owned(),
    };
    if let Some(c) = &peer.configuration {
        let _ = writeln!(out, "  Configuration {}/{}", c.namespace, c.name);
        let _ = writeln!(out, "    Status: {}", status(&c.status, &c.message));
        let remapped = c.remapped.clone().unwrap_or_default();
        for (what, real, mapped) in [
            ("pod", &c.remote.pod, &remapped.pod),
            ("external", &c.remote.external, &remapped.external),
        ] {
            let mapped = if c.remapped.is_none() {
                "(not remapped yet)".to_owned()
            } else if mapped == real {
                "(not remapped)".to_owned()
            } else {
                format!("-> remapped to {}", join(mapped))
            };
            let _ = writeln!(out, "    Remote {what} CIDR: {} {mapped}", join(real));
        }
        if let Some(local) = &c.local {
            let _ = writeln!(out, "    Local pod CIDR: {}", join(&local.pod));
            let _ = writeln!(out, "    Local external CIDR: {}", join(&local.external));
        }
    }
    if let Some(g) = &peer.gateway {
        let _ = writeln!(out, "  Gateway {} {}/{}", g.role, g.namespace, g.name);
        let _ = writeln!(out, "    Status: {}", status(&g.status, &g.message));
        let endpoint = g.endpoint.as_ref().map_or_else(
            || "(not published yet)".to_owned(),
            |e| {
                let port = e.port.map(|p| format!(":{p}")).unwrap_or_default();
                let protocol = e
                    .protocol
                    .as_ref()
                    .map(|p| format!("/{p}"))
                    .unwrap_or_default();
                format!("{}{port}{protocol}", join(&e.addresses))
            },
        );
        let _ = writeln!(out, "    Endpoint: {endpoint}");
        if let Some(t) = &g.service_type {
            let _ = writeln!(out, "    Service type: {t}");
        }
        if let Some(mtu) = g.mtu {
            let _ = writeln!(out, "    MTU: {mtu}");
        }
    }
    if let Some(c) = &peer.connection {
        let _ = writeln!(out, "  Connection {}/{}", c.namespace, c.name);
        let _ = writeln!(out, "    Status: {}", c.status);
        let _ = writeln!(
            out,
            "    Latency: {}",
            c.latency.as_deref().unwrap_or("N/A")
        );
    }
    for warning in &peer.warnings {
        let _ = writeln!(out, "  Warning: {warning}");
    }
    out
}
