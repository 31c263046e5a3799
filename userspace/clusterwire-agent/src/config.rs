//! Command line of `clusterwire-agent`, validated once into a [`Config`].
use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::ensure;
use clusterwire_daemon::geneve::GeneveChoice;
use clusterwire_dataplane::AttachMode;

use crate::source::Origin;

/// `clusterwire-agent`: the node end of clusterwire's internal network.
#[derive(Debug, clap::Parser)]
#[command(name = "clusterwire-agent", version)]
pub struct Args {
    /// Directory of Liqo manifests (watched for changes); statuses go to DIR/status/.
    /// The alternative to --kubernetes.
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<PathBuf>,
    /// Read the resources from the API server (watches); the alternative to --manifests.
    #[arg(long)]
    pub kubernetes: bool,
    /// Kubeconfig file for --kubernetes (default: the in-cluster service account).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// This node's name (the `Node` and `InternalNode` objects).
    #[arg(long)]
    pub node: String,
    /// Enter this network namespace (/run/netns/NAME) first; for the local lab.
    #[arg(long)]
    pub netns: Option<String>,
    /// The node's underlay device (Geneve from gateways on other nodes arrives there).
    #[arg(long, default_value = "eth0")]
    pub underlay_dev: String,
    /// Geneve implementation: auto (kernel where the kernel has the geneve driver, else eBPF),
    /// kernel (a `collect_md` device, --geneve-dev) or ebpf.
    #[arg(long, default_value = "auto")]
    pub geneve: GeneveChoice,
    /// Name of the kernel Geneve device (kernel mode).
    #[arg(long, default_value = "cw0")]
    pub geneve_dev: String,
    /// Name of the pinned datapath instance (unique on the host).
    #[arg(long, default_value = "node")]
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
    pub node: String,
    pub netns: Option<String>,
    pub underlay_dev: String,
    pub geneve: GeneveChoice,
    pub geneve_dev: String,
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
            node,
            netns,
            underlay_dev,
            geneve,
            geneve_dev,
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
        ensure!(!node.is_empty(), "--node must not be empty");
        let origin = Origin::try_new(manifests, kubernetes, kubeconfig)?;
        Ok(Self {
            origin,
            node,
            netns,
            underlay_dev,
            geneve,
            geneve_dev,
            instance,
            attach,
            metrics_addr,
            poll: Duration::from_millis(poll_ms),
            log,
        })
    }
}
