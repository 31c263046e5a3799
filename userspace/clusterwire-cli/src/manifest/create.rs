//! `cwctl create configuration | gatewayserver | gatewayclient | publickey`: one object from
//! flags, printed with `-o yaml|json` or applied to a cluster (`--kubeconfig`, `--context`;
//! server-side apply, field manager `cwctl`).
#![expect(
    clippy::doc_markdown,
    reason = "doc comments are the --help text: kinds are spelled as users type them"
)]

use std::{net::IpAddr, path::PathBuf};

use clusterwire_api::{
    common::{CidrList, GATEWAY_PORT_DEFAULT, Ip, MTU_DEFAULT, MTU_MAX, MTU_MIN},
    networking::{
        Configuration, GatewayClient, GatewayServer,
        configuration::{ClusterConfig, ClusterConfigCidr, ConfigurationSpec},
        gateway::{Protocol, ServiceType},
        gatewayclient::{ClientEndpoint, GatewayClientSpec},
        gatewayserver::{GatewayServerSpec, ServerEndpoint},
    },
};
use clusterwire_links::wireguard::PublicKey as WgPublicKey;
use ipnet::IpNet;
use k8s_openapi::api::core::v1::ObjectReference;

use crate::network::cluster::Access;

use super::{
    CLUSTERWIRE_NAMESPACE, Format, ManifestError, dns_label, emit, generate::public_key_object,
    peer_labels,
};

/// The API version of every networking object and template.
const API_VERSION: &str = "networking.liqo.io/v1beta1";

/// `cwctl create`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Create a Configuration: the CIDRs of a remote cluster.
    Configuration(ConfigurationArgs),
    /// Create a GatewayServer: a gateway that the remote cluster's client connects to.
    Gatewayserver(GatewayServerArgs),
    /// Create a GatewayClient: a gateway that connects to the remote cluster's server.
    Gatewayclient(GatewayClientArgs),
    /// Create a PublicKey: the WireGuard public key of the remote cluster's gateway.
    Publickey(PublicKeyArgs),
}

/// What every `create` verb takes.
#[derive(Debug, clap::Args)]
struct Common {
    /// Name of the object.
    #[arg(value_parser = dns_label)]
    name: String,
    /// Namespace of the object.
    #[arg(short, long, default_value = "default", value_parser = dns_label)]
    namespace: String,
    /// The id of the remote cluster (the `liqo.io/remote-cluster-id` label).
    #[arg(long, required = true, value_parser = dns_label)]
    remote_cluster_id: String,
    /// Print the object in this format instead of applying it.
    #[arg(short, long, value_enum)]
    output: Option<Format>,
    /// Kubeconfig of the cluster to apply to (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long, conflicts_with = "output")]
    kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig (default: its current context).
    #[arg(long, conflicts_with = "output")]
    context: Option<String>,
}

impl Common {
    /// Where the object goes.
    fn target(&self) -> Target {
        Target {
            output: self.output,
            access: Access {
                kubeconfig: self.kubeconfig.clone(),
                context: self.context.clone(),
            },
        }
    }
}

/// Printed with `-o`, or applied to the cluster of `access`.
struct Target {
    output: Option<Format>,
    access: Access,
}

impl Target {
    fn deliver<K>(&self, kind: &'static str, object: &K) -> Result<(), ManifestError>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        match self.output {
            Some(format) => emit(kind, object, format),
            None => super::apply::apply(object, &self.access),
        }
    }
}

/// `cwctl create configuration`.
#[derive(Debug, clap::Args)]
pub struct ConfigurationArgs {
    #[command(flatten)]
    common: Common,
    /// The remote cluster's pod CIDR (repeat, or separate with commas, for several).
    #[arg(long, required = true, value_delimiter = ',')]
    pod_cidr: Vec<IpNet>,
    /// The remote cluster's external CIDR (repeat, or separate with commas, for several).
    #[arg(long, required = true, value_delimiter = ',')]
    external_cidr: Vec<IpNet>,
}

/// `cwctl create gatewayserver`.
#[derive(Debug, clap::Args)]
pub struct GatewayServerArgs {
    #[command(flatten)]
    common: Common,
    /// Name of the gateway server template.
    #[arg(long, default_value = "wireguard-server", value_parser = dns_label)]
    template_name: String,
    /// Namespace of the gateway server template.
    #[arg(long, default_value = CLUSTERWIRE_NAMESPACE, value_parser = dns_label)]
    template_namespace: String,
    /// Type of the gateway service.
    #[arg(long, value_enum, default_value = "LoadBalancer")]
    service_type: ServiceTypeArg,
    /// Port of the gateway service (UDP).
    #[arg(long, default_value_t = GATEWAY_PORT_DEFAULT,
          value_parser = clap::value_parser!(i32).range(1..=65535))]
    port: i32,
    /// A fixed node port (NodePort or LoadBalancer services); omit it to let Kubernetes choose.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=65535))]
    node_port: Option<i32>,
    /// A fixed load balancer IP (LoadBalancer services; the provider must support it).
    #[arg(long)]
    load_balancer_ip: Option<IpAddr>,
    /// MTU of the tunnel (both sides must agree).
    #[arg(long, default_value_t = MTU_DEFAULT,
          value_parser = clap::value_parser!(i32).range(i64::from(MTU_MIN)..=i64::from(MTU_MAX)))]
    mtu: i32,
}

/// `cwctl create gatewayclient`.
#[derive(Debug, clap::Args)]
pub struct GatewayClientArgs {
    #[command(flatten)]
    common: Common,
    /// Name of the gateway client template.
    #[arg(long, default_value = "wireguard-client", value_parser = dns_label)]
    template_name: String,
    /// Namespace of the gateway client template.
    #[arg(long, default_value = CLUSTERWIRE_NAMESPACE, value_parser = dns_label)]
    template_namespace: String,
    /// Addresses (IPs or DNS names) of the remote gateway server (repeat, or separate with
    /// commas, for several).
    #[arg(long, required = true, value_delimiter = ',')]
    addresses: Vec<String>,
    /// Port of the remote gateway server.
    #[arg(long, required = true, value_parser = clap::value_parser!(i32).range(1..=65535))]
    port: i32,
    /// Transport protocol of the tunnel.
    #[arg(long, value_enum, default_value = "UDP")]
    protocol: ProtocolArg,
    /// MTU of the tunnel (both sides must agree).
    #[arg(long, default_value_t = MTU_DEFAULT,
          value_parser = clap::value_parser!(i32).range(i64::from(MTU_MIN)..=i64::from(MTU_MAX)))]
    mtu: i32,
}

/// `cwctl create publickey`.
#[derive(Debug, clap::Args)]
pub struct PublicKeyArgs {
    #[command(flatten)]
    common: Common,
    /// The remote gateway's WireGuard public key (base64 of 32 bytes).
    #[arg(long, required = true)]
    public_key: String,
}

/// The gateway service types, spelled as in the API (and liqoctl).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceTypeArg {
    #[value(name = "ClusterIP")]
    ClusterIp,
    #[value(name = "NodePort")]
    NodePort,
    #[value(name = "LoadBalancer")]
    LoadBalancer,
}

impl From<ServiceTypeArg> for ServiceType {
    fn from(arg: ServiceTypeArg) -> Self {
        match arg {
            ServiceTypeArg::ClusterIp => Self::ClusterIP,
            ServiceTypeArg::NodePort => Self::NodePort,
            ServiceTypeArg::LoadBalancer => Self::LoadBalancer,
        }
    }
}

/// The tunnel protocols, spelled as in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ProtocolArg {
    #[value(name = "UDP")]
    Udp,
    #[value(name = "TCP")]
    Tcp,
}

impl From<ProtocolArg> for Protocol {
    fn from(arg: ProtocolArg) -> Self {
        match arg {
            ProtocolArg::Udp => Self::UDP,
            ProtocolArg::Tcp => Self::TCP,
        }
    }
}

/// Runs `cwctl create`.
pub fn run(args: Args) -> Result<(), ManifestError> {
    match args.command {
        Command::Configuration(args) => {
            let target = args.common.target();
            target.deliver("Configuration", &configuration(args))
        }
        Command::Gatewayserver(args) => {
            let target = args.common.target();
            target.deliver("GatewayServer", &gateway_server(args)?)
        }
        Command::Gatewayclient(args) => {
            let target = args.common.target();
            target.deliver("GatewayClient", &gateway_client(args))
        }
        Command::Publickey(args) => {
            let target = args.common.target();
            target.deliver("PublicKey", &public_key(args)?)
        }
    }
}

/// A Configuration named `name` holding the CIDRs of the remote cluster `cluster_id`.
pub fn configuration_object(
    name: &str,
    namespace: Option<&str>,
    cluster_id: &str,
    pod: Vec<IpNet>,
    external: Vec<IpNet>,
) -> Configuration {
    let mut object = Configuration::new(
        name,
        ConfigurationSpec {
            local: None,
            remote: ClusterConfig {
                cidr: ClusterConfigCidr {
                    pod: CidrList::from(pod),
                    external: Some(CidrList::from(external)),
                },
            },
        },
    );
    object.metadata.namespace = namespace.map(str::to_owned);
    object.metadata.labels = Some(peer_labels(cluster_id, &[]));
    object
}

fn configuration(args: ConfigurationArgs) -> Configuration {
    let ConfigurationArgs {
        common,
        pod_cidr,
        external_cidr,
    } = args;
    configuration_object(
        &common.name,
        Some(&common.namespace),
        &common.remote_cluster_id,
        pod_cidr,
        external_cidr,
    )
}

fn template_ref(kind: &str, name: String, namespace: String) -> ObjectReference {
    ObjectReference {
        api_version: Some(API_VERSION.to_owned()),
        kind: Some(kind.to_owned()),
        name: Some(name),
        namespace: Some(namespace),
        ..ObjectReference::default()
    }
}

fn gateway_server(args: GatewayServerArgs) -> Result<GatewayServer, ManifestError> {
    let GatewayServerArgs {
        common,
        template_name,
        template_namespace,
        service_type,
        port,
        node_port,
        load_balancer_ip,
        mtu,
    } = args;
    let service_type = ServiceType::from(service_type);
    if node_port.is_some() && service_type == ServiceType::ClusterIP {
        return Err(ManifestError::ServiceType {
            flag: "--node-port",
            needs: "NodePort or LoadBalancer",
        });
    }
    if load_balancer_ip.is_some() && service_type != ServiceType::LoadBalancer {
        return Err(ManifestError::ServiceType {
            flag: "--load-balancer-ip",
            needs: "LoadBalancer",
        });
    }
    let endpoint = ServerEndpoint {
        port: Some(port),
        ports: None,
        service_type,
        node_port,
        load_balancer_ip: load_balancer_ip.map(Ip),
    };
    Ok(gateway_server_object(
        &common.name,
        &common.namespace,
        &common.remote_cluster_id,
        (template_name, template_namespace),
        endpoint,
        mtu,
    ))
}

/// A GatewayServer `namespace/name` for the peer `remote_cluster_id`, rendered from the
/// `WgGatewayServerTemplate` `template` (name, namespace). The endpoint is taken as given
/// (callers check which fields their service type allows).
pub fn gateway_server_object(
    name: &str,
    namespace: &str,
    remote_cluster_id: &str,
    template: (String, String),
    endpoint: ServerEndpoint,
    mtu: i32,
) -> GatewayServer {
    let spec = GatewayServerSpec {
        server_template_ref: Some(template_ref(
            "WgGatewayServerTemplate",
            template.0,
            template.1,
        )),
        mtu: Some(mtu),
        endpoint,
        secret_ref: None,
    };
    let mut object = GatewayServer::new(name, spec);
    object.metadata.namespace = Some(namespace.to_owned());
    object.metadata.labels = Some(peer_labels(remote_cluster_id, &[]));
    object
}

fn gateway_client(args: GatewayClientArgs) -> GatewayClient {
    let GatewayClientArgs {
        common,
        template_name,
        template_namespace,
        addresses,
        port,
        protocol,
        mtu,
    } = args;
    let endpoint = ClientEndpoint {
        addresses,
        port: Some(port),
        ports: None,
        protocol: Some(protocol.into()),
    };
    gateway_client_object(
        &common.name,
        &common.namespace,
        &common.remote_cluster_id,
        (template_name, template_namespace),
        endpoint,
        mtu,
    )
}

/// A GatewayClient `namespace/name` dialing `endpoint` of the peer `remote_cluster_id`,
/// rendered from the `WgGatewayClientTemplate` `template` (name, namespace).
pub fn gateway_client_object(
    name: &str,
    namespace: &str,
    remote_cluster_id: &str,
    template: (String, String),
    endpoint: ClientEndpoint,
    mtu: i32,
) -> GatewayClient {
    let spec = GatewayClientSpec {
        client_template_ref: Some(template_ref(
            "WgGatewayClientTemplate",
            template.0,
            template.1,
        )),
        mtu: Some(mtu),
        endpoint,
        secret_ref: None,
    };
    let mut object = GatewayClient::new(name, spec);
    object.metadata.namespace = Some(namespace.to_owned());
    object.metadata.labels = Some(peer_labels(remote_cluster_id, &[]));
    object
}

fn public_key(
    args: PublicKeyArgs,
) -> Result<clusterwire_api::networking::PublicKey, ManifestError> {
    let PublicKeyArgs { common, public_key } = args;
    let key = WgPublicKey::from_base64(&public_key)?;
    Ok(public_key_object(
        &common.name,
        Some(&common.namespace),
        &common.remote_cluster_id,
        &key,
    ))
}
