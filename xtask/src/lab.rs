//! `cargo xtask lab`: the project's main job. Builds `cwctl` and the daemons, then runs
//! `cwctl lab up` (two simulated clusters with the same pod CIDR, joined by clusterwire) and
//! `cwctl lab test` (the cross-cluster pass/fail matrix). The lab stays up for exploring;
//! `cwctl lab down` removes it.
use anyhow::bail;

use crate::cmd;

/// Arguments of `cargo xtask lab`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Arguments passed to `cwctl lab up` (e.g. `--clusters 3`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub up: Vec<String>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    if !cmd::is_root() {
        bail!("the lab creates network namespaces and loads eBPF programs: run it as root");
    }
    cmd::ensure_bpffs()?;
    cmd::build_lab_binaries(true)?;
    let cwctl = std::path::Path::new("target/release/cwctl");
    cmd::run(
        std::process::Command::new(cwctl)
            .args(["lab", "up"])
            .args(&args.up),
    )?;
    cmd::run(std::process::Command::new(cwctl).args(["lab", "test"]))?;
    println!(
        "lab: up and tested. Explore it with `{0} lab status` and `{0} lab exec cl01/n1-a -- ping 10.1.2.11`; remove it with `{0} lab down`.",
        cwctl.display()
    );
    Ok(())
}
