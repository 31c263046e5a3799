//! `cargo xtask`: clusterwire's developer tasks. Each subcommand lives in its own module; this file
//! only parses the command line and dispatches.
#![forbid(unsafe_code)]

mod bench;
mod build_ebpf;
mod cmd;
mod crdgen;
mod lab;
mod lint;
mod selfcheck;
mod setup;
mod setup_kubectl;
mod test;
mod vm;

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
    /// The main job: build, bring up the local two-cluster lab and test it (needs root).
    Lab(lab::Args),
    /// The datapath self-check (needs root).
    Selfcheck,
    /// Check formatting (rustfmt) and lints (clippy -D warnings).
    Lint,
    /// Run every test tier and report which ran, failed, or could not run.
    Test(test::Args),
    /// Regenerate the CRD manifests in crds/ from the Rust types.
    Crdgen(crdgen::Args),
    /// Boot stock Debian kernels under qemu and run the VM tier (and datapath tier) inside.
    VmTest(vm::Args),
    /// Run a benchmark and print its figures (e.g. `cargo xtask bench datapath`).
    Bench(bench::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Setup(args) => setup::run(&args),
        Task::BuildEbpf(args) => build_ebpf::run(&args).map(|_| ()),
        Task::Lint => lint::run(),
        Task::Lab(args) => lab::run(&args),
        Task::Selfcheck => selfcheck::run(),
        Task::Test(args) => test::run(&args),
        Task::Crdgen(args) => crdgen::run(&args),
        Task::Bench(args) => bench::run(&args),
        Task::VmTest(args) => vm::run(&args),
    }
}
