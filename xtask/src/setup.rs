//! `cargo xtask setup`: installs what building and testing clusterwire needs on a fresh
//! Debian/Ubuntu machine, idempotently. Where it cannot install (not root, no apt), it lists
//! exactly what is missing and fails.
use std::{fmt::Write as _, path::Path, process::Command};

use anyhow::{Context as _, bail};

use crate::{cmd, setup_kubectl};

/// Where `cargo xtask setup` installs bpf-linker (also named in .cargo/config.toml).
pub const TOOLS_ROOT: &str = "/opt/clusterwire/tools";
/// The bpf-linker release the build is measured with.
pub const BPF_LINKER_VERSION: &str = "0.13.0";
/// The LLVM major bpf-linker is built against; it must equal Debian rustc's LLVM major.
pub const BPF_LINKER_LLVM: u32 = 22;

/// The Debian rustc used for the eBPF crate (`rustup run /usr ...`).
pub const DEBIAN_RUSTC: &str = "/usr/bin/rustc";

/// Arguments of `cargo xtask setup`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only check and report what is missing; install nothing.
    #[arg(long)]
    pub check: bool,
}

/// One thing the project needs, with how to tell it is there.
struct Requirement {
    package: &'static str,
    why: &'static str,
    present: fn() -> bool,
}

fn glob_prefix(dir: &str, prefix: &str) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
    })
}

const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        package: "rustc-web",
        why: "Debian rustc 1.96 (LLVM 22) that builds the eBPF crate",
        present: || Path::new(DEBIAN_RUSTC).is_file(),
    },
    Requirement {
        package: "cargo-web",
        why: "Debian cargo paired with rustc-web",
        present: || Path::new("/usr/bin/cargo").is_file(),
    },
    Requirement {
        package: "libstd-rust-web-dev-bpf",
        why: "precompiled core for bpfel-unknown-none (no -Z build-std)",
        present: || glob_prefix("/usr/lib/rustlib/bpfel-unknown-none/lib", "libcore-"),
    },
    Requirement {
        package: "llvm-22-dev",
        why: "libLLVM 22 that bpf-linker links against",
        present: || Path::new("/usr/lib/llvm-22/lib/libLLVM.so").exists(),
    },
    Requirement {
        package: "bpftool",
        why: "BTF and pinned-map inspection",
        present: || cmd::exists("bpftool") || Path::new("/usr/sbin/bpftool").is_file(),
    },
    Requirement {
        package: "iproute2",
        why: "ip(8) for the netns and VM tiers",
        present: || Path::new("/usr/sbin/ip").is_file() || Path::new("/sbin/ip").is_file(),
    },
    Requirement {
        package: "iputils-ping",
        why: "ping for the netns tier",
        present: || cmd::exists("ping") || Path::new("/usr/bin/ping").is_file(),
    },
    Requirement {
        package: "nftables",
        why: "nft, the simulated CNI of `cwctl lab` (masquerade, NodePort DNAT in lab namespaces)",
        present: || cmd::exists("nft") || Path::new("/usr/sbin/nft").is_file(),
    },
    Requirement {
        package: "qemu-system-x86",
        why: "boots stock kernels for the VM tier",
        present: || cmd::exists("qemu-system-x86_64"),
    },
    Requirement {
        package: "busybox-static",
        why: "the VM tier's initramfs userland",
        present: || Path::new("/bin/busybox").is_file() || Path::new("/usr/bin/busybox").is_file(),
    },
    Requirement {
        package: "cpio",
        why: "packs the VM tier's initramfs",
        present: || cmd::exists("cpio"),
    },
    Requirement {
        package: "binutils",
        why: "strip, drops debug sections of the test binaries packed into the VM initramfs",
        present: || cmd::exists("strip"),
    },
    Requirement {
        package: "kmod",
        why: "modinfo, to order the VM kernel's modules",
        present: || cmd::exists("modinfo") || Path::new("/usr/sbin/modinfo").is_file(),
    },
    Requirement {
        package: "xz-utils",
        why: "unpacks .ko.xz modules and kernel images",
        present: || cmd::exists("xz"),
    },
    Requirement {
        package: "zstd",
        why: "unpacks zstd-compressed kernel images and modules",
        present: || cmd::exists("zstd"),
    },
    Requirement {
        package: "tshark",
        why: "independent Geneve decoder for the pcap oracle test",
        present: || cmd::exists("tshark"),
    },
    Requirement {
        package: "wireguard-tools",
        why: "wg(8), reads the embedded userspace WireGuard device in the netns tier",
        present: || cmd::exists("wg"),
    },
    Requirement {
        package: "wireguard-go",
        why: "the other userspace WireGuard in the netns tier's interop test",
        present: || cmd::exists("wireguard-go"),
    },
];

pub fn run(args: &Args) -> anyhow::Result<()> {
    let missing: Vec<&Requirement> = REQUIREMENTS.iter().filter(|r| !(r.present)()).collect();
    let mut items: Vec<String> = missing
        .iter()
        .map(|r| format!("{} ({})", r.package, r.why))
        .collect();
    if !bpf_linker_ok() {
        items.push(format!(
            "bpf-linker {BPF_LINKER_VERSION} built with llvm-{BPF_LINKER_LLVM}, in {TOOLS_ROOT}/bin"
        ));
    }
    if !cmd::exists("rustup") {
        items.push("rustup (aya-build runs `rustup run /usr cargo`)".to_owned());
    }
    let kubectl_missing = setup_kubectl::missing();
    items.extend(kubectl_missing.clone());
    let cannot_install = if args.check {
        Some("--check given")
    } else if !cmd::is_root() {
        Some("not root")
    } else if !cmd::exists("apt-get") {
        Some("no apt-get: not Debian/Ubuntu")
    } else if !cmd::exists("rustup") {
        Some("rustup cannot be installed from the Debian archive")
    } else {
        None
    };
    if let (Some(why), false) = (cannot_install, items.is_empty()) {
        bail!("{}", missing_report(&items, why));
    }
    if !missing.is_empty() {
        install_packages(&missing)?;
    }
    check_rustc_llvm()?;
    check_rust_components()?;
    if bpf_linker_ok() {
        println!("setup: bpf-linker {BPF_LINKER_VERSION} already in {TOOLS_ROOT}/bin");
    } else {
        install_bpf_linker()?;
    }
    if kubectl_missing.is_some() {
        install_apt(setup_kubectl::PACKAGES)?;
        setup_kubectl::install()?;
    }
    println!("setup: everything clusterwire needs is installed");
    Ok(())
}

/// The message listing exactly what is missing and why it cannot be installed here.
fn missing_report(items: &[String], why: &str) -> String {
    let mut report = String::from("missing:\n");
    for item in items {
        let _ = writeln!(report, "  - {item}");
    }
    let _ = write!(
        report,
        "cannot install them here ({why}); install them, then run again"
    );
    report
}

fn install_packages(missing: &[&Requirement]) -> anyhow::Result<()> {
    let names: Vec<&str> = missing.iter().map(|r| r.package).collect();
    install_apt(&names)?;
    let still: Vec<&str> = missing
        .iter()
        .filter(|r| !(r.present)())
        .map(|r| r.package)
        .collect();
    if !still.is_empty() {
        bail!(
            "apt-get reported success but these are still missing: {}",
            still.join(" ")
        );
    }
    Ok(())
}

/// `apt-get update` and `apt-get install` of `names`.
fn install_apt(names: &[&str]) -> anyhow::Result<()> {
    println!("setup: installing {}", names.join(" "));
    let apt = |args: &[&str]| {
        let mut c = Command::new("apt-get");
        c.env("DEBIAN_FRONTEND", "noninteractive")
            .args(["-o", "DPkg::Lock::Timeout=600", "-q"])
            .args(args);
        c
    };
    cmd::run(&mut apt(&["update", "-qq"]))?;
    cmd::run(apt(&["install", "-y", "-qq", "--no-install-recommends"]).args(names))
}

/// rustfmt and clippy come with rustup's toolchain; they cannot be installed from Debian's
/// archive for it, so only report them.
fn check_rust_components() -> anyhow::Result<()> {
    let missing: Vec<&str> = [("fmt", "rustfmt"), ("clippy", "clippy")]
        .into_iter()
        .filter(|(sub, _)| {
            !cmd::host_cargo()
                .args([*sub, "--version"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|(_, component)| component)
        .collect();
    if !missing.is_empty() {
        bail!(
            "rustup components missing for the lint tier: {}; run `rustup component add {}`",
            missing.join(", "),
            missing.join(" ")
        );
    }
    Ok(())
}

/// The LLVM major version of Debian's rustc, from `rustc -vV`.
fn check_rustc_llvm() -> anyhow::Result<()> {
    let version = cmd::stdout(Command::new(DEBIAN_RUSTC).arg("-vV"))?;
    let major = parse_llvm_major(&version)
        .with_context(|| format!("`{DEBIAN_RUSTC} -vV` printed no LLVM version:\n{version}"))?;
    if major != BPF_LINKER_LLVM {
        bail!(
            "LLVM mismatch: Debian's rustc ({DEBIAN_RUSTC}) uses LLVM {major}, but bpf-linker is \
             built with the llvm-{BPF_LINKER_LLVM} feature; objects would not link. Update \
             BPF_LINKER_LLVM (and the llvm-N-dev package) in xtask/src/setup.rs to {major}."
        );
    }
    Ok(())
}

pub(crate) fn parse_llvm_major(rustc_vv: &str) -> Option<u32> {
    rustc_vv
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version:"))
        .and_then(|v| v.trim().split('.').next())
        .and_then(|m| m.parse().ok())
}

fn bpf_linker_ok() -> bool {
    Command::new(format!("{TOOLS_ROOT}/bin/bpf-linker"))
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION))
}

fn install_bpf_linker() -> anyhow::Result<()> {
    println!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM {BPF_LINKER_LLVM} (1-2 min)"
    );
    let llvm = format!("/usr/lib/llvm-{BPF_LINKER_LLVM}");
    let mut c = cmd::host_cargo();
    // Outside the workspace, so its .cargo/config.toml does not apply to the install.
    c.current_dir(std::env::temp_dir())
        .env("LLVM_PREFIX", &llvm)
        .env(format!("LLVM_SYS_{BPF_LINKER_LLVM}1_PREFIX"), &llvm)
        .args([
            "install",
            "bpf-linker",
            "--version",
            BPF_LINKER_VERSION,
            "--locked",
        ])
        .args(["--no-default-features", "--features"])
        .arg(format!("llvm-{BPF_LINKER_LLVM}"))
        .args(["--root", TOOLS_ROOT]);
    cmd::run(&mut c)?;
    if !bpf_linker_ok() {
        bail!(
            "bpf-linker was installed but `{TOOLS_ROOT}/bin/bpf-linker --version` does not report {BPF_LINKER_VERSION}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_llvm_major;

    #[test]
    fn the_missing_report_lists_every_item_and_the_reason() {
        let items = vec![
            "tshark (pcap oracle)".to_owned(),
            "rustup (aya-build)".to_owned(),
        ];
        assert_eq!(
            super::missing_report(&items, "not root"),
            "missing:\n  - tshark (pcap oracle)\n  - rustup (aya-build)\n\
             cannot install them here (not root); install them, then run again"
        );
    }

    #[test]
    fn reads_the_llvm_major_of_rustc() {
        let out = "rustc 1.96.0 (ac68faa20 2026-05-25)\nbinary: rustc\nrelease: 1.96.0\nLLVM version: 22.1.8\n";
        assert_eq!(parse_llvm_major(out), Some(22));
        assert_eq!(parse_llvm_major("rustc 1.0\n"), None);
    }
}
