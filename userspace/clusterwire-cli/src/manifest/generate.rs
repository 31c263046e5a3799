//! `cwctl generate configuration | publickey`: the objects a cluster hands to its peer.
//!
//! The reference reads the local cluster's id, CIDRs and gateway keys from the cluster; until
//! cwctl has a Kubernetes client they are given with flags (`--cluster-id`, `--pod-cidr`,
//! `--external-cidr`, `--public-key` or `--private-key-file`).
#![expect(
    clippy::doc_markdown,
    reason = "doc comments are the --help text: kinds are spelled as users type them"
)]

use std::path::PathBuf;

use clusterwire_api::{
    common::GATEWAY_RESOURCE_LABEL,
    networking::{Configuration, PublicKey, publickey::PublicKeySpec},
};
use clusterwire_links::wireguard::{PrivateKey, PublicKey as WgPublicKey};
use ipnet::IpNet;

use super::{Format, ManifestError, dns_label, emit, peer_labels};

/// `cwctl generate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print the Configuration of this cluster, to apply on the peer cluster.
    Configuration(ConfigurationArgs),
    /// Print the PublicKey of one of this cluster's gateways, to apply on the peer cluster.
    Publickey(PublicKeyArgs),
}

/// `cwctl generate configuration`.
#[derive(Debug, clap::Args)]
pub struct ConfigurationArgs {
    /// This cluster's id (the object's name and its `liqo.io/remote-cluster-id` label on the
    /// peer). clusterwire addition: the reference reads it from the cluster.
    #[arg(long, value_parser = dns_label)]
    cluster_id: Option<String>,
    /// This cluster's pod CIDR (repeat for several). clusterwire addition.
    #[arg(long, value_delimiter = ',')]
    pod_cidr: Vec<IpNet>,
    /// This cluster's external CIDR (repeat for several). clusterwire addition.
    #[arg(long, value_delimiter = ',')]
    external_cidr: Vec<IpNet>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "yaml")]
    output: Format,
}

/// `cwctl generate publickey`.
#[derive(Debug, clap::Args)]
pub struct PublicKeyArgs {
    /// Type of the gateway whose key is printed (selects its Secret in the cluster).
    #[arg(long, value_enum)]
    gateway_type: Option<GatewayType>,
    /// Name of the gateway whose key is printed (selects its Secret in the cluster).
    #[arg(long, value_parser = dns_label)]
    gateway_name: Option<String>,
    /// Namespace of the gateway.
    #[arg(short, long, default_value = "default", value_parser = dns_label)]
    namespace: String,
    /// This cluster's id (the object's name and label). clusterwire addition.
    #[arg(long, value_parser = dns_label)]
    cluster_id: Option<String>,
    /// The gateway's WireGuard public key (base64). clusterwire addition.
    #[arg(long, conflicts_with = "private_key_file")]
    public_key: Option<String>,
    /// The gateway's private key file (32 raw bytes or base64, owner-only); only its public
    /// half is printed. clusterwire addition.
    #[arg(long)]
    private_key_file: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "yaml")]
    output: Format,
}

/// A gateway's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GatewayType {
    /// A `GatewayServer`.
    Server,
    /// A `GatewayClient`.
    Client,
}

/// Runs `cwctl generate`.
pub fn run(args: Args) -> Result<(), ManifestError> {
    match args.command {
        Command::Configuration(args) => {
            let output = args.output;
            emit("Configuration", &configuration(args)?, output)
        }
        Command::Publickey(args) => {
            let output = args.output;
            emit("PublicKey", &public_key(args)?, output)
        }
    }
}

/// The Configuration describing this cluster, named and labelled with its id.
pub fn configuration(args: ConfigurationArgs) -> Result<Configuration, ManifestError> {
    let ConfigurationArgs {
        cluster_id,
        pod_cidr,
        external_cidr,
        output: _,
    } = args;
    let flags = "--cluster-id, --pod-cidr and --external-cidr";
    let cluster_id = cluster_id.ok_or(ManifestError::NeedsCluster {
        what: "this cluster's id",
        flags,
    })?;
    if pod_cidr.is_empty() || external_cidr.is_empty() {
        return Err(ManifestError::NeedsCluster {
            what: "this cluster's pod and external CIDRs",
            flags,
        });
    }
    Ok(super::create::configuration_object(
        &cluster_id,
        None,
        &cluster_id,
        pod_cidr,
        external_cidr,
    ))
}

/// The `PublicKey` of one of this cluster's gateways, named and labelled with its id.
pub fn public_key(args: PublicKeyArgs) -> Result<PublicKey, ManifestError> {
    let PublicKeyArgs {
        gateway_type: _,
        gateway_name: _,
        namespace: _,
        cluster_id,
        public_key,
        private_key_file,
        output: _,
    } = args;
    let key = match (public_key, private_key_file) {
        (Some(text), _) => WgPublicKey::from_base64(&text)?,
        (None, Some(path)) => PrivateKey::from_file(&path)?.public_key(),
        (None, None) => {
            return Err(ManifestError::NeedsCluster {
                what: "the gateway's public key (from its Secret)",
                flags: "--public-key or --private-key-file",
            });
        }
    };
    let cluster_id = cluster_id.ok_or(ManifestError::NeedsCluster {
        what: "this cluster's id",
        flags: "--cluster-id",
    })?;
    Ok(public_key_object(&cluster_id, None, &cluster_id, &key))
}

/// A `PublicKey` object named `name`, for the peer `cluster_id`.
pub fn public_key_object(
    name: &str,
    namespace: Option<&str>,
    cluster_id: &str,
    key: &WgPublicKey,
) -> PublicKey {
    let mut object = PublicKey::new(
        name,
        PublicKeySpec {
            public_key: key.to_base64(),
        },
    );
    object.metadata.namespace = namespace.map(str::to_owned);
    object.metadata.labels = Some(peer_labels(cluster_id, &[(GATEWAY_RESOURCE_LABEL, "true")]));
    object
}
