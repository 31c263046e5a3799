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
//! `converge`: the daemons' convergence at scale (5,000 nodes, 1,000 peerings); see
//! `bench_converge.rs`.
use anyhow::bail;

use crate::cmd;

#[path = "bench_converge.rs"]
mod converge;

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The suite to run (`datapath`, `forward`).
    pub suite: String,
    /// Runs per measurement (`BPF_PROG_TEST_RUN` repeat; `datapath`).
    #[arg(long, default_value_t = 1_000_000)]
    pub repeat: u32,
    /// Fewer, shorter rounds (`forward`: 3 rounds of 0.5 s instead of 7 of 1 s).
    #[arg(long)]
    pub quick: bool,
    /// Paired rounds (`forward`; overrides the default and `--quick`).
    #[arg(long)]
    pub rounds: Option<u32>,
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
            let mut cargo = cmd::host_cargo();
            cargo.args([
                "bench",
                "-p",
                "clusterwire-tests",
                "--features",
                "tier-netns",
                "--bench",
                "forward",
            ]);
            if args.quick {
                cargo.env("CW_BENCH_QUICK", "1");
            }
            if let Some(rounds) = args.rounds {
                cargo.env("CW_BENCH_ROUNDS", rounds.to_string());
            }
            cmd::run(&mut cargo)
        }
        "converge" => converge::run(),
        other => bail!("unknown benchmark suite {other:?} (known: datapath, forward, converge)"),
    }
}
