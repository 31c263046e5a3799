//! What `cwctl inspect` reports about an instance, as JSON (`-o json`) or text.
use std::{fmt::Write as _, net::Ipv4Addr};

use ipnet::Ipv4Net;
use serde::{Serialize, Serializer};

/// Everything read from one instance's pins.
#[derive(Debug, Default, Serialize)]
pub struct InstanceReport {
    /// Instance name (its directory under the pin root).
    pub name: String,
    /// `gateway`, `node`, or `unknown (N)`; `None` when `CW_META` is not pinned.
    pub role: Option<String>,
    /// The peering a gateway serves.
    pub peer_id: Option<u32>,
    /// Layout version written in `CW_META` (0: its creator died before writing it).
    pub layout_version: Option<u32>,
    /// The pinned maps and whether each matches this build.
    pub layout: LayoutReport,
    /// The NAT tables (absent on nodes, which pin none).
    pub nat: Option<NatReport>,
    /// The Geneve tables.
    pub geneve: GeneveReport,
    /// Event counters, every slot, in slot order.
    pub events: Counters,
    /// Drops by reason, every reason, in slot order.
    pub drops: Counters,
    /// Packets and bytes of a gateway's peer.
    pub peer_stats: Option<PeerStatsReport>,
    /// The attached programs.
    pub attachments: Vec<AttachmentReport>,
    /// What could not be read, or does not match this build.
    pub problems: Vec<String>,
}

/// The pinned maps.
#[derive(Debug, Default, Serialize)]
pub struct LayoutReport {
    /// The layout version this build writes.
    pub expected_version: u32,
    /// Each pinned map.
    pub maps: Vec<MapCheck>,
}

/// One pinned map.
#[derive(Debug, Serialize)]
pub struct MapCheck {
    /// Map name.
    pub name: &'static str,
    /// Its kernel description.
    pub layout: String,
    /// Whether it is what this build creates for the role (`None`: role unknown).
    pub matches: Option<bool>,
}

/// The four NAT tables.
#[derive(Debug, Default, Serialize)]
pub struct NatReport {
    /// `CW_REMAP_DST`: into the tunnel, remapped destination -> the peer's real prefix.
    pub remap_dst: Vec<RemapReport>,
    /// `CW_REMAP_SRC`: out of the tunnel, the peer's real source -> remapped prefix.
    pub remap_src: Vec<RemapReport>,
    /// `CW_IPMAP_EXIT`: local source -> external-CIDR address.
    pub ipmap_exit: Vec<IpMapReport>,
    /// `CW_IPMAP_ENTRY`: external-CIDR destination -> local address.
    pub ipmap_entry: Vec<IpMapReport>,
}

/// A prefix remap.
#[derive(Debug, Serialize)]
pub struct RemapReport {
    /// The peering.
    pub peer_id: u32,
    /// Matched prefix.
    pub from: Ipv4Net,
    /// What it becomes.
    pub to: Ipv4Net,
}

/// A single-address mapping.
#[derive(Debug, Serialize)]
pub struct IpMapReport {
    /// Matched address.
    pub from: Ipv4Addr,
    /// What it becomes.
    pub to: Ipv4Addr,
}

/// The Geneve tables.
#[derive(Debug, Default, Serialize)]
pub struct GeneveReport {
    /// `CW_GENEVE_ROUTES`.
    pub routes: Vec<GeneveRouteReport>,
    /// `CW_GENEVE_PEERS` (without the per-peer marker entries).
    pub peers: Vec<GenevePeerReport>,
}

/// A tunnelled prefix.
#[derive(Debug, Serialize)]
pub struct GeneveRouteReport {
    /// The prefix.
    pub prefix: Ipv4Net,
    /// Outer destination.
    pub remote: Ipv4Addr,
    /// VNI.
    pub vni: u32,
    /// `native` or `redirect`.
    pub mode: String,
    /// The `collect_md` device (redirect) or egress device (native), if any.
    pub ifindex: Option<u32>,
    /// Inner destination MAC, when set.
    pub inner_dst_mac: Option<String>,
}

/// An accepted Geneve sender.
#[derive(Debug, Serialize)]
pub struct GenevePeerReport {
    /// Its address.
    pub remote: Ipv4Addr,
    /// The VNI accepted from it.
    pub vni: u32,
    /// The device whose ingress decapsulated frames enter (`None`: in place).
    pub deliver_to_ifindex: Option<u32>,
    /// Destination MAC written into delivered frames.
    pub dst_mac: Option<String>,
}

/// A gateway peer's traffic.
#[derive(Debug, Default, Serialize)]
pub struct PeerStatsReport {
    /// Packets out of the tunnel.
    pub rx_packets: u64,
    /// Bytes out of the tunnel.
    pub rx_bytes: u64,
    /// Packets into the tunnel.
    pub tx_packets: u64,
    /// Bytes into the tunnel.
    pub tx_bytes: u64,
}

/// An attached program.
#[derive(Debug, Serialize)]
pub struct AttachmentReport {
    /// Device name.
    pub device: String,
    /// `ingress` or `egress`.
    pub direction: &'static str,
    /// `tcx` or `netlink`.
    pub mode: &'static str,
    /// The program the link or filter runs (`None`: the kernel could not say).
    pub program: Option<String>,
    /// Its kernel id.
    pub program_id: Option<u32>,
    /// Whether a device of that name exists in the network namespace `cwctl` runs in (a
    /// gateway's devices are in its pod's namespace: run `cwctl` there to check them).
    pub device_in_netns: bool,
}

/// Named counters in slot order, printed as a JSON object in that order.
#[derive(Debug, Default)]
pub struct Counters(pub Vec<(&'static str, u64)>);

impl Serialize for Counters {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().copied())
    }
}

/// The whole of `cwctl inspect -o json`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Where instances are pinned.
    pub pin_root: String,
    /// Each instance, by name.
    pub instances: Vec<InstanceReport>,
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// The text form: one block per instance; zero counters are left out.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    if report.instances.is_empty() {
        let _ = writeln!(out, "no instances under {}", report.pin_root);
    }
    for i in &report.instances {
        instance_text(&mut out, i);
    }
    out
}

fn instance_text(out: &mut String, i: &InstanceReport) {
    let _ = writeln!(
        out,
        "{}: role {}, peer {}, layout {} (this build: {})",
        i.name,
        or_dash(i.role.as_deref()),
        or_dash(i.peer_id),
        or_dash(i.layout_version),
        i.layout.expected_version
    );
    let _ = writeln!(out, "  maps: {} pinned", i.layout.maps.len());
    if let Some(nat) = &i.nat {
        for (name, entries) in [("remap dst", &nat.remap_dst), ("remap src", &nat.remap_src)] {
            let _ = writeln!(out, "  {name}: {} entries", entries.len());
            for r in entries {
                let _ = writeln!(out, "    peer {:<5} {:<18} -> {}", r.peer_id, r.from, r.to);
            }
        }
        for (name, entries) in [
            ("ipmap exit", &nat.ipmap_exit),
            ("ipmap entry", &nat.ipmap_entry),
        ] {
            let _ = writeln!(out, "  {name}: {} entries", entries.len());
            for r in entries {
                let _ = writeln!(out, "    {:<15} -> {}", r.from, r.to);
            }
        }
    }
    let _ = writeln!(out, "  geneve routes: {} entries", i.geneve.routes.len());
    for r in &i.geneve.routes {
        let _ = writeln!(
            out,
            "    {:<18} -> {} vni {} {} ifindex {} mac {}",
            r.prefix,
            r.remote,
            r.vni,
            r.mode,
            or_dash(r.ifindex),
            or_dash(r.inner_dst_mac.as_deref())
        );
    }
    let _ = writeln!(out, "  geneve peers: {} entries", i.geneve.peers.len());
    for p in &i.geneve.peers {
        let deliver = p.deliver_to_ifindex.map_or_else(
            || "in place".to_owned(),
            |x| format!("ingress of ifindex {x}"),
        );
        let _ = writeln!(out, "    {} vni {} -> {deliver}", p.remote, p.vni);
    }
    for (title, counters) in [("events", &i.events), ("drops", &i.drops)] {
        let nonzero: Vec<_> = counters.0.iter().filter(|(_, n)| *n != 0).collect();
        if nonzero.is_empty() {
            let _ = writeln!(out, "  {title}: none");
        } else {
            let _ = writeln!(out, "  {title}:");
            for (name, n) in nonzero {
                let _ = writeln!(out, "    {name:<24} {n}");
            }
        }
    }
    if let Some(s) = &i.peer_stats {
        let _ = writeln!(
            out,
            "  peer traffic: rx {} packets {} bytes, tx {} packets {} bytes",
            s.rx_packets, s.rx_bytes, s.tx_packets, s.tx_bytes
        );
    }
    let _ = writeln!(out, "  attachments: {}", i.attachments.len());
    for a in &i.attachments {
        let _ = writeln!(
            out,
            "    {:<12} {:<8} {:<8} {} (id {}){}",
            a.device,
            a.direction,
            a.mode,
            or_dash(a.program.as_deref()),
            or_dash(a.program_id),
            if a.device_in_netns {
                ""
            } else {
                " (device not in this network namespace)"
            }
        );
    }
    for p in &i.problems {
        let _ = writeln!(out, "  problem: {p}");
    }
}
