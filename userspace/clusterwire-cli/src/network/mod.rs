//! `cwctl network connect | disconnect | reset`: the reference's (liqoctl's) two-cluster verbs.
//! The local cluster (`--kubeconfig`) gets the gateway client, the remote one
//! (`--remote-kubeconfig`) the gateway server; the objects are the ones `cwctl create` prints.
//!
//! Each step prints one line prefixed `(local)` or `(remote)`. A failure says what this run
//! created and left in place. Exit status: 0 done, 1 failed, 2 bad flags, 3 timed out, 4 not
//! confirmed.
#![expect(
    clippy::doc_markdown,
    reason = "doc comments are the --help text: kinds are spelled as users type them"
)]

pub mod cluster;
mod connect;
pub mod error;
mod teardown;

use std::{
    cell::RefCell, io::BufRead as _, net::IpAddr, path::PathBuf, process::ExitCode, rc::Rc,
    time::Duration,
};

use clusterwire_api::common::{GATEWAY_PORT_DEFAULT, MTU_DEFAULT, MTU_MAX, MTU_MIN};
use ipnet::IpNet;

use self::{
    cluster::{Access, Cluster, Progress, Shared},
    error::{NetworkError, Side},
};
use crate::manifest::{CLUSTERWIRE_NAMESPACE, create::ServiceTypeArg, dns_label};

const EXIT_HELP: &str = "Exit status: 0 done; 1 a step failed (API error, unreachable cluster, \
                         CRDs or identity missing); 2 bad flags; 3 --timeout elapsed; 4 not \
                         confirmed (disconnect and reset ask unless --yes).";

/// `cwctl network`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Connect two clusters: exchange Configurations, gateway server on the remote cluster,
    /// gateway client on the local one, exchange public keys.
    #[command(after_help = EXIT_HELP)]
    Connect(Box<ConnectArgs>),
    /// Remove the gateways between two clusters (asks for confirmation).
    #[command(after_help = EXIT_HELP)]
    Disconnect(TeardownArgs),
    /// Remove the gateways and the Configurations between two clusters (asks for
    /// confirmation).
    #[command(after_help = EXIT_HELP)]
    Reset(TeardownArgs),
}

/// The two clusters, shared by every verb.
#[derive(Debug, clap::Args)]
struct Clusters {
    /// Kubeconfig of the local cluster (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Context of the local kubeconfig (default: its current context).
    #[arg(long)]
    context: Option<String>,
    /// Kubeconfig of the remote cluster (the gateway server's).
    #[arg(long, required = true)]
    remote_kubeconfig: PathBuf,
    /// Context of the remote kubeconfig (default: its current context).
    #[arg(long)]
    remote_context: Option<String>,
    /// Namespace of the local objects (default: the tenant namespace liqo-tenant-<remote id>).
    #[arg(short, long, value_parser = dns_label)]
    namespace: Option<String>,
    /// Namespace of the remote objects (default: the tenant namespace liqo-tenant-<local id>).
    #[arg(long, value_parser = dns_label)]
    remote_namespace: Option<String>,
    /// Namespace clusterwire is installed in, locally (identity ConfigMap, templates).
    #[arg(long, alias = "liqo-namespace", default_value = CLUSTERWIRE_NAMESPACE,
          value_parser = dns_label)]
    clusterwire_namespace: String,
    /// Namespace clusterwire is installed in, on the remote cluster.
    #[arg(long, alias = "remote-liqo-namespace", default_value = CLUSTERWIRE_NAMESPACE,
          value_parser = dns_label)]
    remote_clusterwire_namespace: String,
    /// Give up after this long (e.g. 90s, 2m).
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    timeout: Duration,
    /// Wait for completion: connect waits for both Connections to be Connected, disconnect and
    /// reset for the objects to be gone.
    #[arg(long)]
    wait: bool,
}

/// `cwctl network connect`.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    clusters: Clusters,
    /// Skip checking that the gateway templates exist.
    #[arg(long)]
    skip_validation: bool,
    /// Name of the gateway server template (on the remote cluster).
    #[arg(long, default_value = "wireguard-server", value_parser = dns_label)]
    gw_server_template_name: String,
    /// Namespace of the gateway server template (default: --remote-clusterwire-namespace).
    #[arg(long, value_parser = dns_label)]
    gw_server_template_namespace: Option<String>,
    /// Type of the gateway server's Service.
    #[arg(long, value_enum, default_value = "LoadBalancer")]
    gw_server_service_type: ServiceTypeArg,
    /// Port of the gateway server's Service (UDP).
    #[arg(long, default_value_t = GATEWAY_PORT_DEFAULT,
          value_parser = clap::value_parser!(i32).range(1..=65535))]
    gw_server_service_port: i32,
    /// A fixed node port of the gateway server's Service (NodePort or LoadBalancer).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=65535))]
    gw_server_service_nodeport: Option<i32>,
    /// A fixed load balancer IP of the gateway server's Service (LoadBalancer).
    #[arg(long)]
    gw_server_service_loadbalancerip: Option<IpAddr>,
    /// Name of the gateway client template (on the local cluster).
    #[arg(long, default_value = "wireguard-client", value_parser = dns_label)]
    gw_client_template_name: String,
    /// Namespace of the gateway client template (default: --clusterwire-namespace).
    #[arg(long, value_parser = dns_label)]
    gw_client_template_namespace: Option<String>,
    /// Address the client dials instead of the one the gateway server publishes.
    #[arg(long)]
    gw_client_address: Option<String>,
    /// Port the client dials instead of the one the gateway server publishes.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=65535))]
    gw_client_port: Option<i32>,
    /// MTU of the tunnel, both sides.
    #[arg(long, default_value_t = MTU_DEFAULT,
          value_parser = clap::value_parser!(i32).range(i64::from(MTU_MIN)..=i64::from(MTU_MAX)))]
    mtu: i32,
    /// Do not exchange the gateways' public keys (apply PublicKeys yourself).
    #[arg(long)]
    disable_sharing_keys: bool,
    /// The local cluster's pod CIDR, instead of its Network labelled
    /// ipam.liqo.io/network-type=pod-cidr (clusterwire addition).
    #[arg(long, value_delimiter = ',')]
    pod_cidr: Vec<IpNet>,
    /// The local cluster's external CIDR, instead of its Network (default 10.70.0.0/16 when
    /// neither is there; clusterwire addition).
    #[arg(long, value_delimiter = ',')]
    external_cidr: Vec<IpNet>,
    /// The remote cluster's pod CIDR (clusterwire addition).
    #[arg(long, value_delimiter = ',')]
    remote_pod_cidr: Vec<IpNet>,
    /// The remote cluster's external CIDR (clusterwire addition).
    #[arg(long, value_delimiter = ',')]
    remote_external_cidr: Vec<IpNet>,
}

/// `cwctl network disconnect` and `reset`.
#[derive(Debug, clap::Args)]
pub struct TeardownArgs {
    #[command(flatten)]
    clusters: Clusters,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    yes: bool,
}

/// Parses `90`, `90s`, `1500ms`, `2m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number with s, m, h or ms"))?;
    let seconds = |factor: u64| Duration::from_secs(n.saturating_mul(factor));
    match unit {
        "" | "s" => Ok(seconds(1)),
        "m" => Ok(seconds(60)),
        "h" => Ok(seconds(3600)),
        "ms" => Ok(Duration::from_millis(n)),
        _ => Err(format!("{text:?}: unknown unit {unit:?} (s, m, h or ms)")),
    }
}

/// Asks whether to go on with `verb`; anything but y/yes (or end of input) is a refusal.
fn confirm(verb: &'static str) -> Result<(), NetworkError> {
    eprint!(
        "{verb} is a potentially destructive command.\nAre you sure you want to continue? [y/N] "
    );
    let mut answer = String::new();
    let read = std::io::stdin().lock().read_line(&mut answer);
    eprintln!();
    match (read, answer.trim().to_ascii_lowercase().as_str()) {
        (Ok(n), "y" | "yes") if n > 0 => Ok(()),
        _ => Err(NetworkError::Refused { verb }),
    }
}

/// The two clusters, connected (nothing contacted yet).
async fn clusters(args: &Clusters, progress: &Shared) -> Result<(Cluster, Cluster), NetworkError> {
    let local = Access {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
    };
    let remote = Access {
        kubeconfig: Some(args.remote_kubeconfig.clone()),
        context: args.remote_context.clone(),
    };
    Ok((
        Cluster::connect(
            Side::Local,
            &local,
            &args.clusterwire_namespace,
            args.timeout,
            progress.clone(),
        )
        .await?,
        Cluster::connect(
            Side::Remote,
            &remote,
            &args.remote_clusterwire_namespace,
            args.timeout,
            progress.clone(),
        )
        .await?,
    ))
}

/// Runs a `cwctl network` verb and returns its exit status.
pub fn run(args: Args) -> ExitCode {
    let progress: Shared = Rc::new(RefCell::new(Progress::default()));
    let (name, result) = match args.verb {
        Verb::Connect(args) => (
            "connect",
            execute(&args.clusters, &progress, |p| connect::run(&args, p)),
        ),
        Verb::Disconnect(args) => ("disconnect", teardown_verb(&args, false, &progress)),
        Verb::Reset(args) => ("reset", teardown_verb(&args, true, &progress)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {name}: {e}");
            let created = &progress.borrow().created;
            if !created.is_empty() {
                eprintln!("created by this run and left in place:");
                for object in created {
                    eprintln!("  {object}");
                }
                eprintln!(
                    "run `cwctl network connect` again to finish, or `cwctl network reset` to \
                     remove them"
                );
            }
            ExitCode::from(e.exit_code())
        }
    }
}

fn teardown_verb(args: &TeardownArgs, reset: bool, progress: &Shared) -> Result<(), NetworkError> {
    let verb = if reset { "reset" } else { "disconnect" };
    if !args.yes {
        confirm(verb)?;
    }
    execute(&args.clusters, progress, |p| {
        teardown::run(&args.clusters, reset, p)
    })
}

/// Runs `verb` on a single-threaded runtime under `--timeout`.
fn execute<'a, F, Fut>(args: &Clusters, progress: &'a Shared, verb: F) -> Result<(), NetworkError>
where
    F: FnOnce(&'a Shared) -> Fut,
    Fut: Future<Output = Result<(), NetworkError>> + 'a,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|_| NetworkError::Flags("cannot start the async runtime"))?;
    let started = std::time::Instant::now();
    let timeout = args.timeout;
    let outcome =
        runtime.block_on(async move { tokio::time::timeout(timeout, verb(progress)).await });
    match outcome {
        Ok(result) => {
            result?;
            println!("done in {:.1} s", started.elapsed().as_secs_f64());
            Ok(())
        }
        Err(_) => Err(NetworkError::TimedOut {
            step: progress.borrow().step.clone(),
            after: args.timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse_duration;

    #[test]
    fn durations_parse_like_liqoctl_flags() {
        assert_eq!(parse_duration("120s"), Ok(Duration::from_mins(2)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_mins(2)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("2 minutes").is_err());
        assert!(parse_duration("s").is_err());
    }
}
