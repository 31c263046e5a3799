//! `cargo xtask lint`: rustfmt --check over the whole workspace (eBPF crates included) and clippy
//! with warnings denied over every host crate, all targets and features (tier tests included).
use crate::cmd;

pub fn run() -> anyhow::Result<()> {
    cmd::run(cmd::host_cargo().args(["fmt", "--all", "--", "--check"]))?;
    cmd::run(cmd::host_cargo().args([
        "clippy",
        "--workspace",
        "--exclude",
        "clusterwire-ebpf",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))
}
