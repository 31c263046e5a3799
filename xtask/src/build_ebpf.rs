//! `cargo xtask build-ebpf`: builds the eBPF object with Debian's rustc, the same way aya-build
//! does from the dataplane crate's build.rs, and checks that it carries BTF.
use std::{path::PathBuf, process::Command};

use anyhow::bail;

use crate::{cmd, setup};

/// The eBPF crate and its binary.
pub const EBPF_PACKAGE: &str = "clusterwire-ebpf";
/// The BPF target.
pub const EBPF_TARGET: &str = "bpfel-unknown-none";

/// Arguments of `cargo xtask build-ebpf`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Skip the `bpftool btf dump file` check of the built object.
    #[arg(long)]
    pub no_btf_check: bool,
}

/// Builds the object and returns its path.
pub fn run(args: &Args) -> anyhow::Result<PathBuf> {
    let root = cmd::workspace_root();
    let target_dir = root.join("target/ebpf");
    let mut build = Command::new("rustup");
    build
        .current_dir(&root)
        .args(["run", "/usr", "cargo", "build", "--release"])
        .args(["--package", EBPF_PACKAGE, "--bins", "--target", EBPF_TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        // Same flags as aya-build: the target-arch cfg aya-ebpf expects, debug info, and BTF
        // emitted by bpf-linker.
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            [
                "--cfg=bpf_target_arch=\"x86_64\"",
                "-Cdebuginfo=2",
                "-Clink-arg=--btf",
            ]
            .join("\x1f"),
        );
    // A parent `cargo run` leaves these behind; they would pin the child to rustup's toolchain.
    for var in [
        "RUSTC",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "RUSTDOC",
    ] {
        build.env_remove(var);
    }
    if !std::path::Path::new(setup::DEBIAN_RUSTC).is_file() {
        bail!(
            "{} is missing: run `cargo xtask setup` first",
            setup::DEBIAN_RUSTC
        );
    }
    cmd::run(&mut build)?;
    let object = target_dir
        .join(EBPF_TARGET)
        .join("release")
        .join(EBPF_PACKAGE);
    if !object.is_file() {
        bail!("the build succeeded but {} is missing", object.display());
    }
    if !args.no_btf_check {
        check_btf(&object)?;
    }
    println!("build-ebpf: {}", object.display());
    Ok(object)
}

/// Fails unless `bpftool btf dump file` reads the object's BTF and finds our programs and maps.
pub fn check_btf(object: &std::path::Path) -> anyhow::Result<()> {
    let dump = cmd::stdout(
        Command::new("bpftool")
            .args(["btf", "dump", "file"])
            .arg(object),
    )?;
    for needle in [
        "FUNC 'cw_probe_count'",
        "VAR 'CW_PROBE_COUNTERS'",
        "DATASEC '.maps'",
    ] {
        if !dump.contains(needle) {
            bail!("the BTF of {} has no {needle}", object.display());
        }
    }
    let types = dump.lines().filter(|l| l.starts_with('[')).count();
    println!("build-ebpf: BTF ok ({types} types)");
    Ok(())
}
