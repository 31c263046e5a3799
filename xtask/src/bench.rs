//! `cargo xtask bench <suite>`: runs a benchmark suite and prints its figures.
//! (Filled in by issue 4.)

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The suite to run (`datapath`).
    pub suite: String,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("unknown benchmark suite {:?}", args.suite)
}
