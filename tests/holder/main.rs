//! `cw-test-gateway`: a stand-in for a gateway daemon for the netns tier's restart tests. It
//! enters a network namespace (with `setns`, so /sys/fs/bpf stays visible), opens or adopts a
//! gateway instance, syncs its remap tables, attaches the tunnel NAT hook, prints one `ready`
//! line and then waits to be killed.
//!
//! Arguments are `key=value`: `netns`, `instance`, `pin_root`, `device`, `peer`, `mtu`,
//! `mode` (`auto` | `tcx` | `netlink`), and repeatable `dst=FROM,TO` / `src=FROM,TO` remaps.
use std::{collections::BTreeMap, fs::File, io::Write as _, path::PathBuf};

use anyhow::{Context as _, bail};
use clusterwire_dataplane::{AttachMode, Hook, Instance, InstanceSpec, NatTables, RemapKind};
use ipnet::Ipv4Net;
use nix::sched::{CloneFlags, setns};

fn main() -> anyhow::Result<()> {
    let mut netns = None;
    let mut spec = InstanceSpec::gateway("", 0, "");
    let mut device = String::new();
    let mut remaps: BTreeMap<&str, BTreeMap<Ipv4Net, Ipv4Net>> = BTreeMap::new();
    let args: Vec<String> = std::env::args().skip(1).collect();
    for arg in &args {
        let (key, value) = arg.split_once('=').context("arguments are key=value")?;
        match key {
            "netns" => netns = Some(value.to_owned()),
            "instance" => value.clone_into(&mut spec.name),
            "pin_root" => spec.pin_root = PathBuf::from(value),
            "device" => value.clone_into(&mut device),
            "peer" => spec.peer_id = value.parse()?,
            "mtu" => spec.tunnel_mtu = value.parse()?,
            "mode" => {
                spec.attach_mode = match value {
                    "auto" => AttachMode::Auto,
                    "tcx" => AttachMode::Tcx,
                    "netlink" => AttachMode::Netlink,
                    other => bail!("mode {other}: auto, tcx or netlink"),
                }
            }
            "dst" | "src" => {
                let (from, to) = value.split_once(',').context("FROM,TO")?;
                remaps
                    .entry(if key == "dst" { "dst" } else { "src" })
                    .or_default()
                    .insert(from.parse()?, to.parse()?);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if let Some(netns) = netns {
        let path = format!("/run/netns/{netns}");
        let file = File::open(&path).with_context(|| format!("open {path}"))?;
        setns(&file, CloneFlags::CLONE_NEWNET).with_context(|| format!("setns {path}"))?;
    }
    spec.tunnel_device = Some(device.clone());
    let mut instance = Instance::open(spec).context("open the instance")?;
    let mut tables = NatTables::take(instance.datapath_mut()).context("NAT tables")?;
    let empty = BTreeMap::new();
    for (kind, name) in [(RemapKind::Dst, "dst"), (RemapKind::Src, "src")] {
        tables
            .sync_remaps(kind, remaps.get(name).unwrap_or(&empty))
            .with_context(|| format!("sync {name}"))?;
    }
    let outcomes = instance
        .attach(Hook::TunnelNat, &device)
        .context("attach")?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "ready adopted={} programs_kept={} outcomes={outcomes:?}",
        instance.adopted(),
        instance.programs_kept()
    )?;
    out.flush()?;
    drop(out);
    loop {
        std::thread::park();
    }
}
