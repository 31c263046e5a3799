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

use crate::{ha::Ha, source::Origin};

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
    /// Kubernetes mode, several replicas: elect the active one over the Lease
    /// NAME.NAMESPACE.server|client.connections.liqo.io in the gateway's namespace (15 s lease,
    /// 10 s renew deadline, 2 s retry); the active one labels its pod
    /// networking.liqo.io/active=true, the others stand by; losing the Lease exits non-zero.
    #[arg(long)]
    pub leader_elect: bool,
    /// This replica's pod name: its identity in the election and the pod it labels
    /// (--leader-elect); in file mode the identity written into the lease file (default: the
    /// --instance name).
    #[arg(long, env = "POD_NAME", value_name = "NAME")]
    pub pod_name: Option<String>,
    /// File mode, several replicas on one host: the active one holds an exclusive lock on this
    /// file (created if missing, with its directory), the others wait for it.
    #[arg(long, value_name = "PATH")]
    pub lease_file: Option<PathBuf>,
    /// With --lease-file: on becoming active, write this replica's pod address (that of
    /// --underlay-dev) into `spec.gatewayIP` of the `InternalFabric` in this manifest file (the
    /// file holds exactly that one object), which the agents follow.
    #[arg(long, value_name = "PATH")]
    pub fabric_file: Option<PathBuf>,
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
    /// Replicas and how the active one is elected; `None`: the only replica, always active.
    pub ha: Option<Ha>,
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
            leader_elect,
            pod_name,
            lease_file,
            fabric_file,
        } = args;
        ensure!(
            (50..=60_000).contains(&poll_ms),
            "--poll-ms must be 50 to 60000, got {poll_ms}"
        );
        let origin = Origin::try_new(manifests, kubernetes, kubeconfig)?;
        let ha = ha(
            &origin,
            leader_elect,
            pod_name,
            lease_file,
            fabric_file,
            &instance,
        )?;
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
            ha,
        })
    }
}

/// The replica flags: `--leader-elect` only with `--kubernetes` (and a pod name),
/// `--lease-file` only with `--manifests`, `--fabric-file` only with `--lease-file`.
fn ha(
    origin: &Origin,
    leader_elect: bool,
    pod_name: Option<String>,
    lease_file: Option<PathBuf>,
    fabric_file: Option<PathBuf>,
    instance: &str,
) -> anyhow::Result<Option<Ha>> {
    let kubernetes = matches!(origin, Origin::Kubernetes { .. });
    ensure!(
        !leader_elect || kubernetes,
        "--leader-elect goes with --kubernetes (file mode elects with --lease-file PATH)"
    );
    ensure!(
        lease_file.is_none() || !kubernetes,
        "--lease-file goes with --manifests (Kubernetes mode elects with --leader-elect)"
    );
    ensure!(
        fabric_file.is_none() || lease_file.is_some(),
        "--fabric-file goes with --lease-file (only the elected replica rewrites it)"
    );
    let pod_name = pod_name.filter(|n| !n.is_empty());
    Ok(if leader_elect {
        let pod = pod_name.context(
            "--leader-elect needs the pod's name: --pod-name NAME or env POD_NAME \
             (the downward API's metadata.name)",
        )?;
        Some(Ha::Lease { pod })
    } else {
        lease_file.map(|lease| Ha::File {
            lease,
            identity: pod_name.unwrap_or_else(|| instance.to_owned()),
            fabric: fabric_file,
        })
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::{Args, Config};
    use crate::ha::Ha;

    fn parse(extra: &[&str]) -> anyhow::Result<Config> {
        let mut argv = vec![
            "clusterwire-gateway",
            "--gateway",
            "liqo-tenant-cl01/cl01",
            "--role",
            "client",
            "--private-key",
            "/k",
            "--instance",
            "gw-a",
        ];
        argv.extend(extra);
        Config::try_from(Args::try_parse_from(argv)?)
    }

    fn refused(extra: &[&str]) -> String {
        parse(extra).expect_err("refused").to_string()
    }

    #[test]
    fn without_replica_flags_the_gateway_is_the_only_replica() {
        let dir = std::env::temp_dir();
        let dir = dir.to_str().expect("utf-8");
        assert_eq!(parse(&["--manifests", dir]).expect("file mode").ha, None);
        assert_eq!(parse(&["--kubernetes"]).expect("kubernetes").ha, None);
    }

    #[test]
    fn leader_election_goes_with_kubernetes_and_a_pod_name() {
        let dir = std::env::temp_dir();
        let dir = dir.to_str().expect("utf-8");
        assert_eq!(
            parse(&["--kubernetes", "--leader-elect", "--pod-name", "gw-cl01-x"])
                .expect("valid")
                .ha,
            Some(Ha::Lease {
                pod: "gw-cl01-x".into()
            })
        );
        assert_eq!(
            refused(&["--manifests", dir, "--leader-elect", "--pod-name", "p"]),
            "--leader-elect goes with --kubernetes (file mode elects with --lease-file PATH)"
        );
        if std::env::var_os("POD_NAME").is_none() {
            assert!(
                refused(&["--kubernetes", "--leader-elect"])
                    .starts_with("--leader-elect needs the pod's name")
            );
        }
    }

    #[test]
    fn the_lease_file_goes_with_manifests_and_the_fabric_file_with_the_lease_file() {
        let dir = std::env::temp_dir();
        let dir = dir.to_str().expect("utf-8");
        assert_eq!(
            refused(&["--kubernetes", "--lease-file", "/run/l"]),
            "--lease-file goes with --manifests (Kubernetes mode elects with --leader-elect)"
        );
        assert_eq!(
            refused(&["--manifests", dir, "--fabric-file", "/m/fabric.yaml"]),
            "--fabric-file goes with --lease-file (only the elected replica rewrites it)"
        );
        assert_eq!(
            refused(&["--kubernetes", "--fabric-file", "/m/fabric.yaml"]),
            "--fabric-file goes with --lease-file (only the elected replica rewrites it)"
        );
        let file = |extra: &[&str]| {
            let mut argv = vec!["--manifests", dir, "--lease-file", "/run/l"];
            argv.extend(extra);
            parse(&argv).expect("valid").ha
        };
        let identity = std::env::var("POD_NAME").unwrap_or_else(|_| "gw-a".into());
        assert_eq!(
            file(&["--fabric-file", "/m/fabric.yaml"]),
            Some(Ha::File {
                lease: "/run/l".into(),
                identity,
                fabric: Some("/m/fabric.yaml".into()),
            }),
            "identity: the pod name, else the instance"
        );
        assert_eq!(
            file(&["--pod-name", "replica-b"]),
            Some(Ha::File {
                lease: "/run/l".into(),
                identity: "replica-b".into(),
                fabric: None,
            })
        );
    }
}
