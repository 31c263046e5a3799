//! Command line of `clusterwire-gateway`, validated once into a [`Config`].
use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context as _, ensure};
use clusterwire_daemon::geneve::GeneveChoice;
use clusterwire_dataplane::AttachMode;
use clusterwire_fabric::{
    desired::{GatewayId, Role},
    snapshot::Key,
};
use clusterwire_links::wireguard::Mode;

use crate::source::Origin;

/// `clusterwire-gateway`: one peering's gateway.
#[derive(Debug, clap::Parser)]
#[command(name = "clusterwire-gateway", version)]
pub struct Args {
    /// Directory of Liqo manifests (watched for changes); statuses go to DIR/status/.
    /// The alternative to --kubernetes.
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<PathBuf>,
    /// Read the resources from the API server (watches in the gateway's namespace) and apply
    /// the Connection there; the alternative to --manifests.
    #[arg(long)]
    pub kubernetes: bool,
    /// Kubeconfig file for --kubernetes (default: the in-cluster service account).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The `GatewayServer` or `GatewayClient` this process serves, as NAMESPACE/NAME.
    #[arg(long)]
    pub gateway: String,
    /// Server (`GatewayServer`, listens) or client (`GatewayClient`, dials).
    #[arg(long, value_parser = ["server", "client"])]
    pub role: String,
    /// The WireGuard private key (the Secret mount: raw 32 bytes or base64), owner-only.
    #[arg(long)]
    pub private_key: PathBuf,
    /// WireGuard implementation: kernel where the kernel has it, else embedded userspace.
    #[arg(long, default_value = "auto")]
    pub wireguard: Mode,
    /// Geneve implementation: auto (kernel where the kernel has the geneve driver, else eBPF),
    /// kernel (a `collect_md` device, --geneve-dev) or ebpf.
    #[arg(long, default_value = "auto")]
    pub geneve: GeneveChoice,
    /// Name of the kernel Geneve device (kernel mode).
    #[arg(long, default_value = "cw-geneve")]
    pub geneve_dev: String,
    /// Enter this network namespace (/run/netns/NAME) first, with a private /var/run; for the
    /// local lab, where gateway "pods" are namespaces of one host.
    #[arg(long)]
    pub netns: Option<String>,
    /// The pod's device toward its node (Geneve to and from the nodes).
    #[arg(long, default_value = "eth0")]
    pub underlay_dev: String,
    /// Name of the pinned datapath instance (unique on the host).
    #[arg(long, default_value = "gateway")]
    pub instance: String,
    /// TC attachment: auto (TCX on 6.6+), tcx or netlink.
    #[arg(long, default_value = "auto")]
    pub attach: AttachMode,
    /// Serve /metrics, /healthz and /readyz here.
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// How often the manifests (or the watches' events) are checked for changes, in milliseconds (50-60000).
    #[arg(long, default_value_t = 500)]
    pub poll_ms: u64,
    /// Log filter (tracing directives).
    #[arg(long, default_value = "info")]
    pub log: String,
}

/// Validated configuration.
#[derive(Debug)]
pub struct Config {
    pub origin: Origin,
    pub id: GatewayId,
    pub private_key: PathBuf,
    pub wireguard: Mode,
    pub geneve: GeneveChoice,
    pub geneve_dev: String,
    pub netns: Option<String>,
    pub underlay_dev: String,
    pub instance: String,
    pub attach: AttachMode,
    pub metrics_addr: Option<SocketAddr>,
    pub poll: Duration,
    pub log: String,
}

impl TryFrom<Args> for Config {
    type Error = anyhow::Error;

    fn try_from(args: Args) -> anyhow::Result<Self> {
        let Args {
            manifests,
            kubernetes,
            kubeconfig,
            gateway,
            role,
            private_key,
            wireguard,
            geneve,
            geneve_dev,
            netns,
            underlay_dev,
            instance,
            attach,
            metrics_addr,
            poll_ms,
            log,
        } = args;
        ensure!(
            (50..=60_000).contains(&poll_ms),
            "--poll-ms must be 50 to 60000, got {poll_ms}"
        );
        let origin = Origin::try_new(manifests, kubernetes, kubeconfig)?;
        let (namespace, name) = gateway
            .split_once('/')
            .filter(|(ns, n)| !ns.is_empty() && !n.is_empty() && !n.contains('/'))
            .with_context(|| format!("--gateway {gateway:?}: expected NAMESPACE/NAME"))?;
        let role = if role == "server" {
            Role::Server
        } else {
            Role::Client
        };
        Ok(Self {
            origin,
            id: GatewayId {
                role,
                key: Key::new(namespace, name),
            },
            private_key,
            wireguard,
            geneve,
            geneve_dev,
            netns,
            underlay_dev,
            instance,
            attach,
            metrics_addr,
            poll: Duration::from_millis(poll_ms),
            log,
        })
    }
}
