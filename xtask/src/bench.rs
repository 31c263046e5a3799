//! `cargo xtask bench <suite>`: runs a benchmark suite and prints its figures.
//!
//! `datapath`: the `datapath` bench target of `clusterwire-tests` (needs root), which times
//! the TC programs through `BPF_PROG_TEST_RUN`; see `tests/benches/datapath.rs` for how rewrite
//! paths are measured honestly despite the kernel rerunning the same buffer.
use anyhow::bail;

use crate::cmd;

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The suite to run (`datapath`).
    pub suite: String,
    /// Runs per measurement (`BPF_PROG_TEST_RUN` repeat).
    #[arg(long, default_value_t = 1_000_000)]
    pub repeat: u32,
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
        other => bail!("unknown benchmark suite {other:?} (known: datapath)"),
    }
}
