//! `cwctl`: clusterwire's command-line tool: `selfcheck` (the datapath self-check that
//! `cargo xtask selfcheck` runs), `dataplane` (the instances pinned on this host) and `lab`
//! (simulated clusters joined by the real daemons, on this host), `generate` and `create` (the
//! reference's resource verbs, printing Liqo-compatible objects), `inspect` (the pinned
//! instances, read without their lock), `completion` (shell completion scripts), `network`
//! (connecting two clusters, Liqo's `liqoctl network`), `info` (this cluster's peers, Liqo's
//! `liqoctl info`).
#![forbid(unsafe_code)]

mod completion;
mod dataplane;
mod info;
mod inspect;
mod lab;
mod manifest;
mod monitor;
mod network;
mod selfcheck;
mod translate;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

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
    /// The datapath instances pinned on this host: list, destroy, kernel features.
    Dataplane(dataplane::Args),
    /// A local lab: simulated clusters with the same pod CIDR, joined by the real daemons.
    Lab(lab::Args),
    /// Print the datapath's drops (reason, device, flow) while it runs, like `cilium monitor`.
    Monitor(monitor::Args),
    /// Print what a cluster hands to its peer: its Configuration, a gateway's public key.
    Generate(manifest::generate::Args),
    /// Create a network resource: configuration, gateway server or client, public key.
    Create(manifest::create::Args),
    /// This host's datapath instances as pinned: tables decoded, counters, drops, attachments.
    Inspect(inspect::Args),
    /// Print the shell completion script for bash, zsh or fish.
    Completion(completion::Args),
    /// Connect two clusters, or remove their connection (needs both kubeconfigs).
    Network(network::Args),
    /// Show this cluster's id and its peers: Configuration, gateway, Connection.
    Info(info::Args),
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Network(args) => return Ok(network::run(args)),
        Command::Info(args) => return Ok(info::run(&args)),
        Command::Selfcheck(args) => selfcheck::run(&args.try_into()?)?,
        Command::Dataplane(args) => dataplane::run(&args)?,
        Command::Lab(args) => lab::run(args)?,
        Command::Monitor(args) => monitor::run(&args)?,
        Command::Generate(args) => manifest::generate::run(args)?,
        Command::Create(args) => manifest::create::run(args)?,
        Command::Inspect(args) => inspect::run(&args)?,
        Command::Completion(args) => {
            completion::run(&args, &mut Cli::command(), &mut std::io::stdout().lock())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
