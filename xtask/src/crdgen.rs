//! `cargo xtask crdgen`: writes crds/*.yaml from the Rust types in clusterwire-api.
//! (Filled in by issue 3.)

/// Arguments of `cargo xtask crdgen`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("crdgen is not implemented yet")
}
