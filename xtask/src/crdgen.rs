//! `cargo xtask crdgen`: writes crds/*.yaml from the Rust types in clusterwire-api.
//!
//! The generator is a binary of clusterwire-api (`clusterwire-crdgen`), so xtask stays free of
//! the Kubernetes crates; this task only runs it with the workspace's `crds/` directory.

use anyhow::Context as _;

use crate::cmd;

/// Arguments of `cargo xtask crdgen`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> anyhow::Result<()> {
    let out = cmd::workspace_root().join("crds");
    let mut cargo = cmd::host_cargo();
    cargo
        .args([
            "run",
            "--quiet",
            "-p",
            "clusterwire-api",
            "--bin",
            "clusterwire-crdgen",
            "--",
        ])
        .arg(&out);
    cmd::run(&mut cargo).with_context(|| {
        format!(
            "generating the CRDs into {} failed (does clusterwire-api build?)",
            out.display()
        )
    })?;
    Ok(())
}
