//! `cwctl`: clusterwire's command-line tool. In wave 1 it has one command, `selfcheck`, the
//! datapath self-check that `cargo xtask selfcheck` runs as the project's main job until the
//! local two-cluster lab exists.
#![forbid(unsafe_code)]

mod selfcheck;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cwctl", version, about = "clusterwire command-line tool")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check that this machine can run clusterwire's data plane, and say how it would run it.
    Selfcheck(selfcheck::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Selfcheck(args) => selfcheck::run(&args.try_into()?),
    }
}
