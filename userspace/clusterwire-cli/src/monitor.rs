//! `cwctl monitor`: switches the drop monitor of pinned instances on, prints one line per
//! dropped packet until interrupted, and switches it off again, like `cilium monitor --type drop`.
//!
//! SIGINT, SIGTERM and SIGHUP end it cleanly (the monitor is switched off). After SIGKILL the
//! switch stays on in bpffs: the programs keep writing events until the 64 KiB ring is full
//! (then only the counters move), the next `cwctl monitor` drains what is left before
//! printing, and `cwctl monitor --off` switches it off without reading.
use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, bail};
use clusterwire_common::drop::{
    DROP_EVENT_IPV4, DROP_EVENT_PORTS, DropEvent, MONITOR_EVENTS_MAP, MONITOR_MAP,
};
use clusterwire_dataplane::{DropMonitor, PIN_ROOT};
use nix::sys::signal::{SigSet, Signal};

/// How often the rings are read when they were empty. The 64 KiB ring holds about 1,300 events,
/// so this keeps up with bursts of about 25,000 drops/s per instance.
const POLL: Duration = Duration::from_millis(50);

/// What to monitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Dropped packets, with their reason.
    Drop,
}

/// Arguments of `cwctl monitor`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Instance to watch (repeatable); every pinned instance with a drop monitor by default.
    #[arg(long = "instance", value_name = "NAME")]
    instances: Vec<String>,
    /// Event type (only `drop` exists).
    #[arg(long = "type", value_enum, default_value = "drop")]
    kind: Kind,
    /// Exit after this many events (default: until interrupted).
    #[arg(long)]
    count: Option<u64>,
    /// Only switch the monitor off (after a `cwctl monitor` was killed) and exit.
    #[arg(long)]
    off: bool,
    /// Where instances are pinned.
    #[arg(long, default_value = PIN_ROOT)]
    pin_root: PathBuf,
}

/// One watched instance.
struct Watched {
    name: String,
    monitor: DropMonitor,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let Kind::Drop = args.kind;
    let names = instance_names(args)?;
    let mut watched = Vec::new();
    for name in names {
        let dir = args.pin_root.join(&name);
        let monitor = DropMonitor::open_pinned(&dir).with_context(|| {
            format!(
                "opening the drop monitor of instance {name} ({})",
                dir.display()
            )
        })?;
        watched.push(Watched { name, monitor });
    }
    if args.off {
        return switch_off(&mut watched);
    }
    // Signals are taken by a thread with sigwait, so that every way out switches the monitor
    // off; blocked here before that thread exists, so no other thread receives them.
    let stop = Arc::new(AtomicBool::new(false));
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    signals
        .thread_block()
        .context("blocking SIGINT/SIGTERM/SIGHUP")?;
    {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            if signals.wait().is_ok() {
                stop.store(true, Ordering::SeqCst);
            }
        });
    }
    for w in &mut watched {
        let stale = w.monitor.drain();
        if stale > 0 {
            eprintln!(
                "{}: discarded {stale} events left by an earlier monitor",
                w.name
            );
        }
        w.monitor
            .set(true)
            .with_context(|| format!("switching the drop monitor of {} on", w.name))?;
    }
    let list: Vec<_> = watched.iter().map(|w| w.name.as_str()).collect();
    eprintln!("watching drops on {} (Ctrl-C to stop)", list.join(", "));
    print_events(&mut watched, &stop, args.count);
    switch_off(&mut watched)
}

/// Prints events until `stop` is set or `count` events were printed.
fn print_events(watched: &mut [Watched], stop: &AtomicBool, count: Option<u64>) {
    let mut printed = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let mut any = false;
        for w in watched.iter_mut() {
            while let Some(event) = w.monitor.next_event() {
                any = true;
                println!("{}", line(&w.name, &event, SystemTime::now()));
                printed += 1;
                if count.is_some_and(|c| printed >= c) {
                    return;
                }
            }
        }
        if !any {
            std::thread::sleep(POLL);
        }
    }
}

fn switch_off(watched: &mut [Watched]) -> anyhow::Result<()> {
    for w in watched {
        w.monitor
            .set(false)
            .with_context(|| format!("switching the drop monitor of {} off", w.name))?;
    }
    Ok(())
}

/// The instances named, or every instance directory that pins the monitor maps.
fn instance_names(args: &Args) -> anyhow::Result<Vec<String>> {
    if !args.instances.is_empty() {
        return Ok(args.instances.clone());
    }
    let entries = std::fs::read_dir(&args.pin_root)
        .with_context(|| format!("reading {}", args.pin_root.display()))?;
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| has_monitor(&e.path()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if names.is_empty() {
        bail!(
            "no instance with a drop monitor under {} (instances pinned by an older build have none)",
            args.pin_root.display()
        );
    }
    Ok(names)
}

fn has_monitor(dir: &Path) -> bool {
    dir.join(MONITOR_MAP).exists() && dir.join(MONITOR_EVENTS_MAP).exists()
}

/// One output line: time (UTC, when read), instance, reason, program, device, flow, protocol.
pub fn line(instance: &str, e: &DropEvent, now: SystemTime) -> String {
    let reason = e.drop_reason().map_or("unknown", |r| r.kind());
    let flow = if e.flags & DROP_EVENT_IPV4 == 0 {
        "non-IPv4".to_owned()
    } else {
        let (src, dst) = (
            std::net::Ipv4Addr::from(e.src_be),
            std::net::Ipv4Addr::from(e.dst_be),
        );
        if e.flags & DROP_EVENT_PORTS == 0 {
            format!("{src} -> {dst} {}", proto_name(e.proto))
        } else {
            format!(
                "{src}:{} -> {dst}:{} {}",
                e.sport,
                e.dport,
                proto_name(e.proto)
            )
        }
    };
    format!(
        "{} {instance} drop ({reason}) {} ifindex {} {flow} len {}",
        clock(now),
        e.program_name(),
        e.ifindex,
        e.len
    )
}

fn proto_name(proto: u8) -> String {
    match proto {
        1 => "icmp".to_owned(),
        6 => "tcp".to_owned(),
        17 => "udp".to_owned(),
        p => format!("proto {p}"),
    }
}

/// `HH:MM:SS.mmm` UTC.
fn clock(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use clusterwire_common::drop::{
        DROP_EVENT_IPV4, DROP_EVENT_PORTS, DropEvent, DropReason, PROGRAM_NAT_FROM_TUNNEL,
    };

    #[test]
    fn a_line_names_time_instance_reason_program_device_flow_and_protocol() {
        let e = DropEvent {
            reason: DropReason::SpoofedSource as u32,
            ifindex: 5,
            len: 60,
            src_be: [10, 1, 0, 1],
            dst_be: [10, 0, 1, 5],
            sport: 43210,
            dport: 8080,
            proto: 6,
            program: PROGRAM_NAT_FROM_TUNNEL,
            flags: DROP_EVENT_IPV4 | DROP_EVENT_PORTS,
            ..DropEvent::default()
        };
        let at = UNIX_EPOCH + Duration::from_millis(((8 * 3600 + 5 * 60 + 7) * 1000) + 42);
        assert_eq!(
            super::line("gw-a", &e, at),
            "08:05:07.042 gw-a drop (spoofed_source) cw_nat_from_tunnel ifindex 5 \
             10.1.0.1:43210 -> 10.0.1.5:8080 tcp len 60"
        );
        let v6 = DropEvent {
            reason: DropReason::NonIpv4FromTunnel as u32,
            ..DropEvent::default()
        };
        assert!(
            super::line("gw-a", &v6, at)
                .contains("(non_ipv4_from_tunnel) cw_nat_to_tunnel ifindex 0 non-IPv4")
        );
    }
}
