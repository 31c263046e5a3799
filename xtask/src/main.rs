//! `cargo xtask`: clusterwire's developer tasks. Each subcommand lives in its own module; this file
//! only parses the command line and dispatches.
#![forbid(unsafe_code)]

mod build_ebpf;
mod cmd;
mod setup;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "clusterwire developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install everything a fresh Debian/Ubuntu machine needs (idempotent).
    Setup(setup::Args),
    /// Build the eBPF object (bpfel-unknown-none, with BTF) with Debian's rustc.
    BuildEbpf(build_ebpf::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Setup(args) => setup::run(&args),
        Task::BuildEbpf(args) => build_ebpf::run(&args).map(|_| ()),
    }
}
