//! `cargo xtask test`: runs every test tier and says which ran, which failed and which could not
//! run and why. No tier is skipped silently; with `--require-all` (implied when `CI` is set) a
//! tier that cannot run fails the command.
//!
//! Tiers: `lint` (fmt --check, clippy -D warnings), `host` (unit, property and drift tests),
//! `datapath` (`BPF_PROG_TEST_RUN`, root), `netns` (real links between namespaces, root), `vm`
//! (stock Debian kernels under qemu).
use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::bail;

use crate::{cmd, lint, setup, vm};

/// A test tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tier {
    /// cargo fmt --check and cargo clippy -D warnings.
    Lint,
    /// Host unit, property and drift tests (`cargo test --workspace`).
    Host,
    /// eBPF programs through `BPF_PROG_TEST_RUN` (needs root).
    Datapath,
    /// Real links and traffic between network namespaces (needs root).
    Netns,
    /// Stock Debian kernels under qemu (kernel Geneve and WireGuard, verifier matrix).
    Vm,
}

const ALL: [Tier; 5] = [
    Tier::Lint,
    Tier::Host,
    Tier::Datapath,
    Tier::Netns,
    Tier::Vm,
];

impl Tier {
    fn name(self) -> &'static str {
        match self {
            Self::Lint => "lint",
            Self::Host => "host",
            Self::Datapath => "datapath",
            Self::Netns => "netns",
            Self::Vm => "vm",
        }
    }
}

/// Arguments of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run only these tiers (repeatable; default: all).
    #[arg(long = "tier", value_enum)]
    pub tiers: Vec<Tier>,
    /// Fail when a tier cannot run here (default when the CI variable is set).
    #[arg(long)]
    pub require_all: bool,
    /// Options of the VM tier.
    #[command(flatten)]
    pub vm: vm::Args,
}

enum Outcome {
    Passed(String),
    Failed(String),
    NotRun(String),
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let tiers: &[Tier] = if args.tiers.is_empty() {
        &ALL
    } else {
        &args.tiers
    };
    let require_all = args.require_all || std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let mut results = Vec::new();
    for &tier in tiers {
        let started = Instant::now();
        let outcome = if let Some(reason) = precondition(tier) {
            Outcome::NotRun(reason)
        } else {
            println!("\n==> tier {}", tier.name());
            match run_tier(tier, args) {
                Ok(detail) => Outcome::Passed(detail),
                Err(e) => Outcome::Failed(format!("{e:#}")),
            }
        };
        results.push((tier, outcome, started.elapsed()));
    }
    report(&results, require_all)
}

/// Why a tier cannot run here, if it cannot.
fn precondition(tier: Tier) -> Option<String> {
    let toolchain = Path::new(setup::DEBIAN_RUSTC).is_file()
        && Path::new(&format!("{}/bin/bpf-linker", setup::TOOLS_ROOT)).is_file();
    if !toolchain {
        return Some("the eBPF toolchain is not installed: run `cargo xtask setup`".into());
    }
    match tier {
        Tier::Datapath | Tier::Netns if !cmd::is_root() => {
            Some("needs root (BPF program loading, test_run, netns)".into())
        }
        Tier::Netns if !cmd::exists("ping") => {
            Some("ping is missing: run `cargo xtask setup`".into())
        }
        Tier::Vm if !cmd::exists("qemu-system-x86_64") => {
            Some("qemu-system-x86_64 is missing: run `cargo xtask setup`".into())
        }
        Tier::Lint | Tier::Host | Tier::Datapath | Tier::Netns | Tier::Vm => None,
    }
}

fn run_tier(tier: Tier, args: &Args) -> anyhow::Result<String> {
    match tier {
        Tier::Lint => lint::run().map(|()| "fmt and clippy clean".into()),
        Tier::Host => {
            cmd::run(cmd::host_cargo().args([
                "test",
                "--workspace",
                "--exclude",
                "clusterwire-ebpf",
            ]))?;
            Ok("cargo test --workspace".into())
        }
        Tier::Datapath | Tier::Netns => {
            cmd::ensure_bpffs()?;
            let name = tier.name();
            if tier == Tier::Netns {
                // The lab tests run the real cwctl, gateway and agent binaries.
                cmd::build_lab_binaries(false)?;
            }
            cmd::run(cmd::host_cargo().args([
                "test",
                "-p",
                "clusterwire-tests",
                "--features",
                &format!("tier-{name}"),
                "--test",
                name,
            ]))?;
            Ok(format!("tests/{name}"))
        }
        Tier::Vm => {
            let outcomes = vm::run_matrix(&args.vm)?;
            let lines: Vec<String> = outcomes.iter().map(vm::summary).collect();
            for line in &lines {
                println!("{line}");
            }
            if outcomes.iter().all(|o| o.passed) {
                Ok(outcomes
                    .iter()
                    .map(|o| o.release.clone().unwrap_or_else(|| o.label.clone()))
                    .collect::<Vec<_>>()
                    .join(", "))
            } else {
                bail!("{}", lines.join("; "))
            }
        }
    }
}

fn report(results: &[(Tier, Outcome, Duration)], require_all: bool) -> anyhow::Result<()> {
    println!("\nclusterwire test tiers:");
    let (mut passed, mut failed, mut not_run) = (0, 0, 0);
    for (tier, outcome, elapsed) in results {
        let secs = elapsed.as_secs_f64();
        match outcome {
            Outcome::Passed(detail) => {
                passed += 1;
                println!("  {:<9} passed   {secs:>6.1} s  {detail}", tier.name());
            }
            Outcome::Failed(why) => {
                failed += 1;
                println!("  {:<9} FAILED   {secs:>6.1} s  {why}", tier.name());
            }
            Outcome::NotRun(why) => {
                not_run += 1;
                println!("  {:<9} NOT RUN           {why}", tier.name());
            }
        }
    }
    println!("tiers passed {passed}, failed {failed}, not run {not_run}");
    if failed > 0 {
        bail!("{failed} test tier(s) failed");
    }
    if not_run > 0 && require_all {
        bail!(
            "{not_run} test tier(s) could not run, and every tier must run here (CI or --require-all)"
        );
    }
    Ok(())
}
