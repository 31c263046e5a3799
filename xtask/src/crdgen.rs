//! `cargo xtask crdgen`: writes crds/*.yaml from the Rust types in clusterwire-api, and the same
//! files into deploy/base/crds/ (kustomize only loads files under the kustomization's root; a
//! host test checks both copies are identical and listed in deploy/base/crds/kustomization.yaml).
//!
//! The generator is a binary of clusterwire-api (`clusterwire-crdgen`), so xtask stays free of
//! the Kubernetes crates; this task only runs it with the workspace's `crds/` directory.

use anyhow::Context as _;

use crate::cmd;

/// Arguments of `cargo xtask crdgen`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> anyhow::Result<()> {
    let root = cmd::workspace_root();
    for out in [root.join("crds"), root.join("deploy/base/crds")] {
        generate(&out)?;
    }
    Ok(())
}

fn generate(out: &std::path::Path) -> anyhow::Result<()> {
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
        .arg(out);
    cmd::run(&mut cargo).with_context(|| {
        format!(
            "generating the CRDs into {} failed (does clusterwire-api build?)",
            out.display()
        )
    })?;
    Ok(())
}
