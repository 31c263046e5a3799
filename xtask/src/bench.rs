//! `cargo xtask bench <suite>`: runs a benchmark suite and prints its figures.
//!
//! `datapath`: the `datapath` bench target of `clusterwire-tests` (needs root), which times
//! the TC programs through `BPF_PROG_TEST_RUN`; see `tests/benches/datapath.rs` for how rewrite
//! paths are measured honestly despite the kernel rerunning the same buffer.
//!
//! `forward`: the `forward` bench target (needs root): a gateway namespace forwarding between
//! two namespaces with plain routing, the reference's nftables rules and clusterwire's
//! programs, in paired rounds; see `tests/benches/forward.rs`.
//!
//! `tunnel`: the `tunnel` bench target (needs root): WireGuard point to point with the embedded
//! userspace device, wireguard-go and the kernel's (when it has it), then the lab's pod-to-pod
//! path through the tunnel (`cwctl lab up`/`down`, release binaries built first); see
//! `tests/benches/tunnel.rs`.
//!
//! `converge`: the daemons' convergence at scale (5,000 nodes, 1,000 peerings); see
//! `bench_converge.rs`.
use std::path::Path;

use anyhow::bail;

use crate::cmd;

#[path = "bench_converge.rs"]
mod converge;

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The suite to run (`datapath`, `forward`, `tunnel`, `converge`).
    pub suite: String,
    /// Runs per measurement (`BPF_PROG_TEST_RUN` repeat; `datapath`).
    #[arg(long, default_value_t = 1_000_000)]
    pub repeat: u32,
    /// Fewer, shorter rounds (`forward`, `tunnel`: 3 rounds of 0.5 s instead of 7 of 1 s).
    #[arg(long)]
    pub quick: bool,
    /// Paired rounds (`forward`, `tunnel`; overrides the default and `--quick`).
    #[arg(long)]
    pub rounds: Option<u32>,
    /// Point to point only, no lab (`tunnel`).
    #[arg(long)]
    pub no_lab: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    match args.suite.as_str() {
        "datapath" => {
            if !cmd::is_root() {
                bail!("`cargo xtask bench datapath` loads eBPF programs: run it as root");
            }
            cmd::run(
                cmd::host_cargo()
                    .args([
                        "bench",
                        "-p",
                        "clusterwire-tests",
                        "--features",
                        "tier-datapath",
                        "--bench",
                        "datapath",
                    ])
                    .env("CW_BENCH_REPEAT", args.repeat.to_string()),
            )
        }
        "forward" => {
            if !cmd::is_root() {
                bail!(
                    "`cargo xtask bench forward` creates namespaces and loads eBPF programs: run it as root"
                );
            }
            cmd::run(&mut netns_bench("forward", args))
        }
        "tunnel" => tunnel(args),
        "converge" => converge::run(),
        other => {
            bail!("unknown benchmark suite {other:?} (known: datapath, forward, tunnel, converge)")
        }
    }
}

/// `cargo bench` of a `tier-netns` bench target, with the round settings.
fn netns_bench(target: &str, args: &Args) -> std::process::Command {
    let mut cargo = cmd::host_cargo();
    cargo.args([
        "bench",
        "-p",
        "clusterwire-tests",
        "--features",
        "tier-netns",
        "--bench",
        target,
    ]);
    if args.quick {
        cargo.env("CW_BENCH_QUICK", "1");
    }
    if let Some(rounds) = args.rounds {
        cargo.env("CW_BENCH_ROUNDS", rounds.to_string());
    }
    cargo
}

/// `tunnel`: refuses without root or while a lab is up, builds the lab's binaries in release,
/// runs the bench target with the `cwctl` it should use.
fn tunnel(args: &Args) -> anyhow::Result<()> {
    if !cmd::is_root() {
        bail!(
            "`cargo xtask bench tunnel` creates namespaces, WireGuard devices and the lab: run it as root"
        );
    }
    let mut cargo = netns_bench("tunnel", args);
    if args.no_lab {
        cargo.env("CW_TUNNEL_LAB", "0");
        return cmd::run(&mut cargo);
    }
    let lab_namespaces: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with("cwlab-"))
                .collect()
        })
        .unwrap_or_default();
    if Path::new("/run/clusterwire-lab").exists() || !lab_namespaces.is_empty() {
        bail!(
            "a lab is already up on this host (/run/clusterwire-lab, namespaces {lab_namespaces:?}) \
             and only one can exist: wait for it to go (or `cwctl lab down` if it is yours), or run \
             the point-to-point part alone with --no-lab"
        );
    }
    cmd::ensure_bpffs()?;
    cmd::build_lab_binaries(true)?;
    let target = cmd::workspace_root().join("target");
    let cwctl = ["release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join("cwctl"))
        .find(|path| path.is_file())
        .ok_or_else(|| anyhow::anyhow!("no cwctl in {}/{{release,debug}}", target.display()))?;
    println!(
        "tunnel: the lab runs {} and the daemons next to it",
        cwctl.display()
    );
    cargo.env("CW_CWCTL", &cwctl);
    cmd::run(&mut cargo)
}
