//! The datapath self-check: kernel prerequisites, our eBPF object through the verifier and
//! `BPF_PROG_TEST_RUN`, a pinned map for bpftool, and which Geneve and WireGuard implementations
//! this kernel allows.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail, ensure};
use aya::programs::{TestRun as _, TestRunOptions};
use clusterwire_common::{
    config::DatapathConfig,
    geneve::GENEVE_DEFAULT_PORT,
    probe::{PROBE_COUNTERS_MAP, ProbeCounter},
};
use clusterwire_dataplane::{Datapath, LoadOptions, probe::Probe};
use clusterwire_links::{Capability, KernelCapabilities};

/// Command-line arguments of `cwctl selfcheck`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// bpffs directory under which the check pins its map (removed afterwards unless --keep-pins).
    #[arg(long, default_value = "/sys/fs/bpf/clusterwire/selfcheck")]
    pin_dir: PathBuf,
    /// Leave the pinned map in place for inspection with bpftool.
    #[arg(long)]
    keep_pins: bool,
    /// Packets to push through `BPF_PROG_TEST_RUN` (1 to 10,000,000).
    #[arg(long, default_value_t = 100_000)]
    packets: u32,
}

/// Validated configuration of the self-check.
#[derive(Debug)]
pub struct Config {
    pin_dir: PathBuf,
    keep_pins: bool,
    packets: u32,
}

impl TryFrom<Args> for Config {
    type Error = anyhow::Error;

    fn try_from(args: Args) -> anyhow::Result<Self> {
        let Args {
            pin_dir,
            keep_pins,
            packets,
        } = args;
        ensure!(
            (1..=10_000_000).contains(&packets),
            "--packets must be 1 to 10000000, got {packets}"
        );
        ensure!(
            pin_dir.starts_with("/sys/fs/bpf/"),
            "--pin-dir must be below /sys/fs/bpf/, got {}",
            pin_dir.display()
        );
        Ok(Self {
            pin_dir,
            keep_pins,
            packets,
        })
    }
}

pub fn run(config: &Config) -> anyhow::Result<()> {
    check_kernel()?;
    let mut probe = run_probe(config.packets)?;
    check_datapath()?;
    crate::translate::check()?;
    report_features();
    pin_and_dump(&mut probe, config)?;
    report_links()?;
    println!("selfcheck       ok");
    Ok(())
}

/// Kernel release, BTF and bpffs.
fn check_kernel() -> anyhow::Result<()> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("kernel          {}", release.trim());
    ensure!(
        Path::new("/sys/kernel/btf/vmlinux").exists(),
        "the kernel exposes no BTF (/sys/kernel/btf/vmlinux): clusterwire needs CONFIG_DEBUG_INFO_BTF"
    );
    println!("kernel BTF      yes");
    ensure!(
        bpffs_mounted(),
        "no bpffs at /sys/fs/bpf: mount -t bpf bpf /sys/fs/bpf"
    );
    println!("bpffs           mounted at /sys/fs/bpf");
    Ok(())
}

/// Loads the probe and pushes `packets` frames through `BPF_PROG_TEST_RUN`.
fn run_probe(packets: u32) -> anyhow::Result<Probe> {
    let mut probe = Probe::load().context("loading the eBPF object (are you root?)")?;
    println!("eBPF object     loaded, verifier accepted cw_probe_count");
    let frame = ethernet_frame();
    let mut out = vec![0u8; frame.len()];
    let result = probe
        .program()?
        .test_run(TestRunOptions {
            data_in: Some(&frame),
            data_out: Some(&mut out),
            repeat: packets,
            ..TestRunOptions::default()
        })
        .context("BPF_PROG_TEST_RUN")?;
    let counted = probe.counter(ProbeCounter::Packets)?;
    ensure!(out == frame, "the probe changed the packet");
    ensure!(
        counted == u64::from(packets),
        "the probe counted {counted} packets, {packets} were run"
    );
    println!(
        "test_run        {} packets counted, {} ns/packet",
        counted,
        result.duration.as_nanos()
    );
    Ok(probe)
}

/// Loads every datapath program (NAT, Geneve), so the verifier of this kernel sees them all.
fn check_datapath() -> anyhow::Result<()> {
    let datapath = Datapath::load(
        &DatapathConfig {
            tunnel_mtu: 1340,
            peer_id: 1,
            geneve_port: GENEVE_DEFAULT_PORT,
            ..DatapathConfig::zeroed()
        },
        &LoadOptions::unpinned(),
    )
    .context("loading the datapath programs")?;
    let mut programs: Vec<&str> = datapath.ebpf().programs().map(|(name, _)| name).collect();
    programs.sort_unstable();
    println!("datapath        verifier accepted {}", programs.join(", "));
    Ok(())
}

/// The kernel features the datapath uses that this kernel lacks.
fn report_features() {
    let missing = clusterwire_dataplane::features::missing();
    if missing.is_empty() {
        println!(
            "kernel features all present (TCX, bpf_check_mtu, encap flags, 44-byte tunnel key)"
        );
    }
    for f in missing {
        println!(
            "kernel features MISSING {} (since {}.{}): {}",
            f.name, f.since.0, f.since.1, f.used_for
        );
    }
}

/// Pins the probe's counters and shows them through bpftool, as an operator would.
fn pin_and_dump(probe: &mut Probe, config: &Config) -> anyhow::Result<()> {
    let pin = config.pin_dir.join(PROBE_COUNTERS_MAP);
    std::fs::create_dir_all(&config.pin_dir)
        .with_context(|| format!("create {}", config.pin_dir.display()))?;
    let _ = std::fs::remove_file(&pin);
    probe.pin_counters(&pin)?;
    println!("pinned map      {}", pin.display());
    match Command::new("bpftool")
        .args(["map", "dump", "pinned"])
        .arg(&pin)
        .output()
    {
        Ok(o) if o.status.success() => {
            let dump = String::from_utf8_lossy(&o.stdout);
            println!("bpftool map dump pinned {}:", pin.display());
            for line in dump.lines().take(12) {
                println!("    {line}");
            }
        }
        Ok(o) => bail!(
            "bpftool could not dump {}: {}",
            pin.display(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => println!("bpftool         not run ({e}); install it to inspect pinned maps"),
    }
    if !config.keep_pins {
        std::fs::remove_file(&pin).with_context(|| format!("unpin {}", pin.display()))?;
        let _ = std::fs::remove_dir(&config.pin_dir);
    }
    Ok(())
}

/// Which Geneve and WireGuard implementations this kernel allows.
fn report_links() -> anyhow::Result<()> {
    let caps = probe_links()?;
    println!("kernel geneve   {}", caps.geneve);
    println!("kernel wireguard {}", caps.wireguard);
    // Wave 1 has the link managers and the datapath; the gateway and node agent that choose
    // between these modes arrive with wave 2.
    println!(
        "internal net    {}",
        if caps.geneve.is_available() {
            "collect_md Geneve device, eBPF sets the tunnel key (redirect mode)"
        } else {
            "eBPF-native Geneve encapsulation (no kernel Geneve)"
        }
    );
    println!(
        "external net    {}",
        if matches!(caps.wireguard, Capability::Available { .. }) {
            "kernel WireGuard"
        } else {
            "embedded userspace WireGuard (no kernel WireGuard; the gateway arrives in wave 2)"
        }
    );
    Ok(())
}

fn bpffs_mounted() -> bool {
    // /proc/mounts: "<source> <mount point> <fs type> ...".
    std::fs::read_to_string("/proc/mounts").is_ok_and(|m| {
        m.lines().any(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            fields.get(1..3) == Some(&["/sys/fs/bpf", "bpf"][..])
        })
    })
}

/// Probes the link drivers in a private network namespace, so nothing is left behind in the
/// host's.
fn probe_links() -> anyhow::Result<KernelCapabilities> {
    std::thread::spawn(|| -> anyhow::Result<KernelCapabilities> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .context("unshare(CLONE_NEWNET) for the link probe")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let (connection, handle, _) = rtnetlink::new_connection().context("rtnetlink")?;
            tokio::spawn(connection);
            Ok(clusterwire_links::probe_kernel(&handle).await?)
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the link probe thread panicked"))?
}

/// A minimal Ethernet + IPv4 frame.
fn ethernet_frame() -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f
}
