//! `cwctl lab`: simulated Kubernetes clusters on one Linux host, all on pod CIDR 10.0.0.0/16,
//! joined by clusterwire's real gateway and agent daemons (see `docs/lab.md`).
//!
//! Every cluster `clNN` (N = 1..3) has two nodes, two pods per node and one gateway pod per
//! peer, each a network namespace named `cwlab-...`; the clusters meet in the WAN namespace.
//!
//! ```text
//!                         cwlab-wan: br0 198.18.0.1/24 ("the internet")
//!              wan0 198.18.0.N1 |                       | wan0 198.18.0.N2
//!   +---------------------------+--+     +--------------+-----------------+
//!   | cwlab-clNN-n1 (agent)        |     | cwlab-clNN-n2 (agent)          |
//!   | nft: masquerade pod->outside,|     | nft: masquerade pod->outside   |
//!   |  NodePort 31840 -> gw:51840  |     | route 10.0.1.0/24 via .11      |
//!   | route 10.0.2.0/24 via .12    |     |                                |
//!   | pod veths, gw 10.0.1.1/32    |     | pod veths, gw 10.0.2.1/32      |
//!   |  +- n1-a 10.0.1.10           |     |  +- n2-a 10.0.2.10             |
//!   |  +- n1-b 10.0.1.11           |     |  +- n2-b 10.0.2.11             |
//!   |  +- gw-<peer> 10.0.1.10P     |     |  +- gw-<2nd peer> 10.0.2.10P   |
//!   | eth0 172.31.N.11             |     | eth0 172.31.N.12               |
//!   +--------------+---------------+     +---------------+----------------+
//!                  +--- cwlab-clNN-net: br0 (underlay 172.31.N.0/24) ---+
//! ```
//!
//! - Gateway pods: `gw-<peer>` at `10.0.<k>.(100 + peer number)`, the first on `n1`, the second
//!   (3 clusters) on `n2`. Peerings form a ring: cluster i serves cluster i+1 and the last
//!   serves the first (2 clusters: cl01 serves cl02; 3: cl01 -> cl02 -> cl03 -> cl01), so with 3
//!   clusters every cluster is server toward one peer and client toward the other.
//! - A server is exposed by a NodePort-like DNAT on its node (UDP 31840 on `wan0` -> the
//!   gateway pod's 51840); the client's `spec.endpoint` is that node's WAN address and port.
//! - The simulated CNI: routes between the nodes' pod CIDRs over the underlay, and the
//!   masquerade real CNIs do (pod sources to anything outside the cluster, whatever the device,
//!   so also to a peer's remapped CIDRs: the agents' CNI-masquerade bypass keeps pod sources).
//! - Remaps come from the remapping IPAM of each cluster: with pod CIDR 10.0.0.0/16,
//!   external 10.70.0.0/16 and internal 10.80.0.0/16 reserved, the first peer's pods are seen
//!   as 10.1.0.0/16 (its external CIDR as 10.2.0.0/16), the second peer's as 10.3.0.0/16.
//!
//! State lives in [`STATE_DIR`]: `lab.json` (the settings), `clusters/<cl>/manifests/` (what
//! the daemons read; their status files in `status/`), `clusters/<cl>/keys/` (private keys,
//! 0600), `logs/<instance>.log`, `pids/<instance>.pid`.
//!
//! Submodules: [`plan`] (addressing), [`keys`], [`manifests`], [`topology`], [`daemons`],
//! [`connections`] (status files, wait, table), [`probe`] (traffic in namespaces),
//! [`matrix`] (`lab test`), [`status`], [`down`].

pub mod connections;
pub mod daemons;
pub mod down;
pub mod keys;
pub mod manifests;
pub mod matrix;
pub mod netns;
pub mod plan;
pub mod probe;
pub mod status;
pub mod table;
pub mod topology;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use plan::{PREFIX, Plan};

/// Where the lab keeps its state.
pub const STATE_DIR: &str = "/run/clusterwire-lab";
/// How to clean up, appended to every failure of `up`.
const CLEANUP: &str = "clean up with `cwctl lab down`";

/// Arguments of `cwctl lab`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: LabCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LabCommand {
    /// Create the clusters, start the daemons, wait until every Connection is Connected.
    Up(UpArgs),
    /// Traffic between every pod and a pod of each other cluster; a pass/fail matrix.
    Test {
        /// Run the checks between pods of the same cluster instead, on their real addresses:
        /// the simulated CNI only (works with `up --no-daemons`; for testing the topology).
        #[arg(long)]
        within_clusters: bool,
    },
    /// Every pod with its address as seen from each cluster; every Connection.
    Status {
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Run a command inside a lab pod (or node: `cl01/n1`) namespace.
    Exec {
        /// `CLUSTER/POD`, e.g. `cl01/n1-a`, `cl02/gw-cl01`, `cl01/n2`.
        target: String,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Remove everything the lab created (also after a crash or a half-done `up`).
    Down,
}

/// Output format of `lab status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WireGuardMode {
    Auto,
    Kernel,
    Userspace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum GeneveMode {
    Auto,
    Kernel,
    Ebpf,
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    /// Number of clusters.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    clusters: u8,
    /// WireGuard implementation of the gateways.
    #[arg(long, value_enum, default_value_t = WireGuardMode::Auto)]
    wireguard: WireGuardMode,
    /// Geneve implementation of agents and gateways.
    #[arg(long, value_enum, default_value_t = GeneveMode::Auto)]
    geneve: GeneveMode,
    /// Mixed implementations (needs the kernel's WireGuard and Geneve drivers): in odd-numbered
    /// clusters (cl01, cl03) the gateways use kernel WireGuard and eBPF Geneve and the agents
    /// kernel Geneve; in cl02 the gateways use embedded userspace WireGuard and kernel Geneve
    /// and the agents eBPF Geneve. The cl01-cl02 tunnel (and cl02-cl03) joins kernel WireGuard
    /// to userspace, and every node talks to its gateway across the two Geneve implementations.
    #[arg(long, conflicts_with_all = ["wireguard", "geneve"])]
    mixed: bool,
    /// A standby replica for every client gateway, on the other node: the two replicas elect
    /// the active one through a lease file, and the active one writes its pod address into its
    /// `InternalFabric` (`fabric-<peer>.yaml`), which the agents follow.
    #[arg(long)]
    standby: bool,
    /// Where `clusterwire-agent` and `clusterwire-gateway` are (default: cwctl's directory).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Build the topology and manifests only, start no daemon (for testing the topology).
    #[arg(long)]
    no_daemons: bool,
    /// Seconds to wait for every Connection to be Connected.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// What `up` was asked for, saved in `lab.json` for the other commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Number of clusters.
    pub clusters: u8,
    /// `--wireguard` of the gateways.
    pub wireguard: String,
    /// `--geneve` of agents and gateways.
    pub geneve: String,
    /// Mixed implementations per cluster (`up --mixed`), instead of `wireguard` and `geneve`.
    #[serde(default)]
    pub mixed: bool,
    /// Standby replicas of the client gateways (`up --standby`).
    #[serde(default)]
    pub standby: bool,
    /// Whether daemons were started.
    pub daemons: bool,
    /// Where the daemons' binaries are.
    pub bin_dir: PathBuf,
}

impl Settings {
    /// The lab's plan: `clusters` clusters, with standby replicas if asked for.
    pub fn plan(&self) -> Result<Plan, plan::PlanError> {
        let plan = Plan::new(self.clusters)?;
        Ok(if self.standby {
            plan.with_standby()
        } else {
            plan
        })
    }
}

/// The lab's files under its state directory.
#[derive(Debug, Clone)]
pub struct Paths {
    root: PathBuf,
}

impl Paths {
    /// Paths under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The state directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `lab.json`.
    pub fn settings(&self) -> PathBuf {
        self.root.join("lab.json")
    }

    /// `clusters/`.
    pub fn clusters(&self) -> PathBuf {
        self.root.join("clusters")
    }

    /// `clusters/<cluster>/manifests/`, the daemons' `--manifests`.
    pub fn manifests(&self, cluster: &str) -> PathBuf {
        self.clusters().join(cluster).join("manifests")
    }

    /// `clusters/<cluster>/leases/gw-<peer>.lease`: the lease file the replicas of a gateway
    /// elect the active one with (outside the manifests directory: it is no manifest).
    pub fn lease(&self, cluster: &str, peer: &str) -> PathBuf {
        self.clusters()
            .join(cluster)
            .join("leases")
            .join(format!("gw-{peer}.lease"))
    }

    /// `logs/`.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// `logs/<instance>.log`.
    pub fn log(&self, instance: &str) -> PathBuf {
        self.logs().join(format!("{instance}.log"))
    }

    /// `pids/`.
    pub fn pids(&self) -> PathBuf {
        self.root.join("pids")
    }

    /// `pids/<instance>.pid`.
    pub fn pid(&self, instance: &str) -> PathBuf {
        self.pids().join(format!("{instance}.pid"))
    }
}

fn mode_name<T: clap::ValueEnum>(mode: &T) -> String {
    mode.to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

/// Runs `cwctl lab`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let paths = Paths::new(STATE_DIR);
    match args.command {
        LabCommand::Up(up_args) => {
            require_root()?;
            up(&paths, &up_args)
        }
        LabCommand::Test { within_clusters } => {
            require_root()?;
            let (plan, _) = load(&paths)?;
            let scope = if within_clusters {
                matrix::Scope::WithinClusters
            } else {
                matrix::Scope::Peers
            };
            matrix::run(&plan, scope)
        }
        LabCommand::Status { output } => {
            let (plan, settings) = load(&paths)?;
            status::run(&plan, &settings, &paths, output == Output::Json)
        }
        LabCommand::Exec { target, command } => {
            require_root()?;
            let (plan, _) = load(&paths)?;
            exec(&plan, &target, &command)
        }
        LabCommand::Down => {
            require_root()?;
            let report = down::down(&paths);
            for line in &report.removed {
                println!("removed {line}");
            }
            if report.removed.is_empty() && report.failed.is_empty() {
                println!("nothing to remove: no lab here");
            }
            if !report.failed.is_empty() {
                bail!(
                    "could not remove:\n  {}\n(run `cwctl lab down` again once the cause is fixed)",
                    report.failed.join("\n  ")
                );
            }
            Ok(())
        }
    }
}

fn require_root() -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("cwctl lab needs root (it creates network namespaces and loads eBPF programs)");
    }
    Ok(())
}

/// The plan and settings of the lab that is up.
pub fn load(paths: &Paths) -> anyhow::Result<(Plan, Settings)> {
    let file = paths.settings();
    let text = fs::read_to_string(&file).map_err(|e| {
        anyhow::anyhow!(
            "no lab is up ({}: {e}): run `cwctl lab up` first",
            file.display()
        )
    })?;
    let settings: Settings =
        serde_json::from_str(&text).with_context(|| format!("reading {}", file.display()))?;
    let plan = settings.plan()?;
    Ok((plan, settings))
}

fn up(paths: &Paths, args: &UpArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let leftovers = netns::list(PREFIX);
    if paths.root().exists() || !leftovers.is_empty() {
        bail!(
            "a lab is already up or was left behind ({}{}): run `cwctl lab down` first",
            paths.root().display(),
            if leftovers.is_empty() {
                String::new()
            } else {
                format!(", namespaces {}", leftovers.join(" "))
            }
        );
    }
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()
            .context("locating cwctl")?
            .parent()
            .map(Path::to_path_buf)
            .context("cwctl has no parent directory")?,
    };
    if !args.no_daemons {
        daemons::check_binaries(&bin_dir)?;
    }
    netns::run(Command::new("nft").arg("--version"))
        .context("nft is needed for the simulated CNI: install nftables (`cargo xtask setup`)")?;
    let settings = Settings {
        clusters: args.clusters,
        wireguard: mode_name(&args.wireguard),
        geneve: mode_name(&args.geneve),
        mixed: args.mixed,
        standby: args.standby,
        daemons: !args.no_daemons,
        bin_dir: bin_dir.clone(),
    };
    let plan = settings.plan()?;
    print!("{plan}");

    let result = (|| -> anyhow::Result<()> {
        fs::create_dir_all(paths.root())
            .with_context(|| format!("creating {}", paths.root().display()))?;
        fs::write(paths.settings(), serde_json::to_string_pretty(&settings)?)
            .with_context(|| format!("writing {}", paths.settings().display()))?;
        println!("[1/4] keys and manifests in {}", paths.clusters().display());
        let keys = keys::Keys::generate(&plan);
        keys.write(&paths.clusters())?;
        for cluster in &plan.clusters {
            let files = manifests::cluster_files(&plan, cluster, &keys)?;
            manifests::write(&paths.manifests(&cluster.name), &files)?;
        }
        println!("[2/4] namespaces, links and CNI rules");
        topology::build(&plan)?;
        if args.no_daemons {
            println!(
                "topology up without daemons (--no-daemons) in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        println!("[3/4] daemons from {}", bin_dir.display());
        let all = daemons::daemons(&plan, &settings, paths);
        let mut running = daemons::start(paths, &bin_dir, &all)?;
        println!(
            "[4/4] waiting for every Connection to be Connected (up to {} s)",
            args.timeout
        );
        let rows = connections::wait_connected(
            &plan,
            paths,
            &mut running,
            Duration::from_secs(args.timeout),
        )?;
        print!("{}", connections::format_rows(&rows));
        println!("lab up in {:.1} s", started.elapsed().as_secs_f64());
        println!(
            "next: `cwctl lab test`, `cwctl lab status`, `cwctl lab exec cl01/n1-a -- ping {}`; \
             `cwctl lab down` removes it",
            plan.seen_from("cl01", "cl02", std::net::Ipv4Addr::new(10, 0, 2, 11))
                .map_or_else(String::new, |a| a.to_string())
        );
        Ok(())
    })();
    result.map_err(|e| {
        if format!("{e:#}").contains(CLEANUP) {
            e
        } else {
            e.context(format!("cwctl lab up failed; {CLEANUP}"))
        }
    })
}

fn exec(plan: &Plan, target: &str, command: &[String]) -> anyhow::Result<()> {
    let ns = plan.netns_of(target).with_context(|| {
        let pods: Vec<String> = plan
            .clusters
            .iter()
            .flat_map(|c| {
                c.pods()
                    .map(|(_, p)| format!("{}/{}", c.name, p.name))
                    .chain(
                        c.gateways
                            .iter()
                            .flat_map(plan::Gateway::replicas)
                            .map(|(_, pod, _)| format!("{}/{}", c.name, pod.name)),
                    )
                    .collect::<Vec<_>>()
            })
            .collect();
        format!("no lab pod {target}; pods: {}", pods.join(" "))
    })?;
    let status = Command::new("ip")
        .args(["netns", "exec", &ns])
        .args(command)
        .status()
        .with_context(|| format!("running {command:?} in {ns}"))?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}
