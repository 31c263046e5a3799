//! Reading one instance's pins into an [`InstanceReport`], without the instance lock: every
//! map is opened by its pin (`BPF_OBJ_GET`) and only looked up, never written, so a running
//! daemon is not disturbed and a stopped one is not needed.
//!
//! A part that cannot be read (a pin missing or of another layout, a failed lookup) becomes a
//! problem in the report; the rest is still read.
use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use aya::{
    maps::{Array, HashMap, LpmTrie, Map, MapData, PerCpuArray},
    programs::{ProgramInfo, links::PinnedLink, loaded_programs},
};
use clusterwire_common::{
    drop::{DROPS_MAP, DropReason, PROGRAM_NAMES},
    geneve::{
        GENEVE_PEERS_MAP, GENEVE_ROUTES_MAP, GeneveMode, GenevePeer, GenevePeerKey, GeneveRoute,
        GeneveRouteKey, VNI_PEER_MARKER,
    },
    meta::{InstanceMeta, LAYOUT_VERSION, META_MAP},
    nat::{
        IPMAP_ENTRY_MAP, IPMAP_EXIT_MAP, IpMapKey, IpMapValue, REMAP_DST_MAP, REMAP_PEER_BITS,
        REMAP_SRC_MAP, RemapKey, RemapValue,
    },
    probe::PROBE_PROGRAM,
    stats::{EVENTS_MAP, Event, PEER_STATS_MAP, PEER_STATS_MAX, PeerStats},
};
use clusterwire_dataplane::{
    AttachMode, Role,
    attach::{self, Attachment},
    layout::{self, MAPS},
};

use super::report::{
    AttachmentReport, Counters, GenevePeerReport, GeneveReport, GeneveRouteReport, InstanceReport,
    IpMapReport, LayoutReport, MapCheck, NatReport, PeerStatsReport, RemapReport,
};

/// Why a part of an instance could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening the pin or reading the map failed.
    #[error("{path}: {source}")]
    Map {
        /// The pin.
        path: PathBuf,
        /// What aya said.
        #[source]
        source: aya::maps::MapError,
    },
    /// The pin's kernel description could not be read.
    #[error(transparent)]
    Layout(#[from] clusterwire_dataplane::LoadError),
    /// An entry that no build of clusterwire writes.
    #[error("{map}: undecodable entry: {what}")]
    Entry {
        /// The map.
        map: &'static str,
        /// What is wrong with it.
        what: String,
    },
}

/// Opens the map pinned as `name` in `dir`; `None` when nothing is pinned there.
fn open(dir: &Path, name: &str) -> Result<Option<Map>, ReadError> {
    let path = dir.join(name);
    if !path.exists() {
        return Ok(None);
    }
    let err = |source| ReadError::Map {
        path: path.clone(),
        source,
    };
    let data = MapData::from_pin(&path).map_err(err)?;
    Map::from_map_data(data).map(Some).map_err(err)
}

/// Converts an aya map error on the pin `name` of `dir`.
fn map_err(dir: &Path, name: &str) -> impl Fn(aya::maps::MapError) -> ReadError {
    let path = dir.join(name);
    move |source| ReadError::Map {
        path: path.clone(),
        source,
    }
}

/// Keeps the value of `result`, or records its error in `problems`.
fn keep<T>(problems: &mut Vec<String>, result: Result<T, ReadError>) -> Option<T> {
    result.map_err(|e| problems.push(e.to_string())).ok()
}

/// Reads everything about the instance pinned in `dir`.
pub fn instance(dir: &Path, name: &str) -> InstanceReport {
    let mut problems = Vec::new();
    let meta = keep(&mut problems, meta(dir)).flatten();
    let role = meta.and_then(|m| Role::from_meta(m.role));
    let peer_id = meta.map(|m| m.peer_id);
    let layout = layout_report(dir, role, &mut problems);
    let nat = (role != Some(Role::Node))
        .then(|| keep(&mut problems, nat(dir)))
        .flatten();
    let geneve = keep(&mut problems, geneve(dir)).unwrap_or_default();
    let events = Event::ALL.map(|e| (e.kind(), e as u32));
    let events = keep(&mut problems, counters(dir, EVENTS_MAP, &events)).unwrap_or_default();
    let drops = DropReason::ALL.map(|r| (r.kind(), r as u32));
    let drops = keep(&mut problems, counters(dir, DROPS_MAP, &drops)).unwrap_or_default();
    let peer_stats = match (role, peer_id) {
        (Some(Role::Gateway), Some(peer)) => keep(&mut problems, peer_stats(dir, peer)).flatten(),
        _ => None,
    };
    InstanceReport {
        name: name.to_owned(),
        role: meta
            .map(|m| role.map_or_else(|| format!("unknown ({})", m.role), |r| r.name().to_owned())),
        peer_id,
        layout_version: meta.map(|m| m.layout_version),
        layout,
        nat,
        geneve,
        events,
        drops,
        peer_stats,
        attachments: attach::attachments(dir).iter().map(attachment).collect(),
        problems,
    }
}

fn nat(dir: &Path) -> Result<NatReport, ReadError> {
    Ok(NatReport {
        remap_dst: remaps(dir, REMAP_DST_MAP)?,
        remap_src: remaps(dir, REMAP_SRC_MAP)?,
        ipmap_exit: ipmaps(dir, IPMAP_EXIT_MAP)?,
        ipmap_entry: ipmaps(dir, IPMAP_ENTRY_MAP)?,
    })
}

fn meta(dir: &Path) -> Result<Option<InstanceMeta>, ReadError> {
    let Some(map) = open(dir, META_MAP)? else {
        return Ok(None);
    };
    let err = map_err(dir, META_MAP);
    let array: Array<MapData, InstanceMeta> = Array::try_from(map).map_err(&err)?;
    array.get(&0, 0).map(Some).map_err(err)
}

/// Every map of the layout table: pinned or not, and whether it matches this build.
fn layout_report(dir: &Path, role: Option<Role>, problems: &mut Vec<String>) -> LayoutReport {
    let maps = MAPS
        .iter()
        .filter_map(|spec| {
            let found = match layout::pinned_layout(&dir.join(spec.name)) {
                Ok(found) => found?,
                Err(e) => {
                    problems.push(e.to_string());
                    return None;
                }
            };
            let matches = role.map(|r| spec.layout(r) == found);
            if matches == Some(false) {
                problems.push(format!(
                    "{}: pinned as {found}, this build expects {}",
                    dir.join(spec.name).display(),
                    role.map_or_else(String::new, |r| spec.layout(r).to_string())
                ));
            }
            Some(MapCheck {
                name: spec.name,
                layout: found.to_string(),
                matches,
            })
        })
        .collect();
    LayoutReport {
        expected_version: LAYOUT_VERSION,
        maps,
    }
}

fn remaps(dir: &Path, name: &'static str) -> Result<Vec<RemapReport>, ReadError> {
    let Some(map) = open(dir, name)? else {
        return Ok(Vec::new());
    };
    let err = map_err(dir, name);
    let trie: LpmTrie<MapData, RemapKey, RemapValue> = LpmTrie::try_from(map).map_err(&err)?;
    let mut out = Vec::new();
    for item in &trie {
        let (key, value) = item.map_err(&err)?;
        let len = key.prefix_len().checked_sub(REMAP_PEER_BITS);
        let from = len.and_then(|l| net(key.data().addr_be, l));
        let to = net(value.prefix_be, u32::from(value.prefix_len));
        let (Some(from), Some(to)) = (from, to) else {
            return Err(ReadError::Entry {
                map: name,
                what: format!("key {key:?}, value {value:?}", key = key.data()),
            });
        };
        out.push(RemapReport {
            peer_id: key.data().peer_id,
            from,
            to,
        });
    }
    out.sort_by_key(|r| (r.peer_id, r.from));
    Ok(out)
}

fn net(addr_be: [u8; 4], len: u32) -> Option<ipnet::Ipv4Net> {
    ipnet::Ipv4Net::new(Ipv4Addr::from(addr_be), u8::try_from(len).ok()?).ok()
}

fn ipmaps(dir: &Path, name: &'static str) -> Result<Vec<IpMapReport>, ReadError> {
    let Some(map) = open(dir, name)? else {
        return Ok(Vec::new());
    };
    let err = map_err(dir, name);
    let hash: HashMap<MapData, IpMapKey, IpMapValue> = HashMap::try_from(map).map_err(&err)?;
    let mut out = hash
        .iter()
        .map(|item| {
            item.map(|(k, v)| IpMapReport {
                from: Ipv4Addr::from(k.addr_be),
                to: Ipv4Addr::from(v.addr_be),
            })
            .map_err(&err)
        })
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by_key(|e| e.from);
    Ok(out)
}

fn geneve(dir: &Path) -> Result<GeneveReport, ReadError> {
    let mut report = GeneveReport::default();
    if let Some(map) = open(dir, GENEVE_ROUTES_MAP)? {
        let err = map_err(dir, GENEVE_ROUTES_MAP);
        let trie: LpmTrie<MapData, GeneveRouteKey, GeneveRoute> =
            LpmTrie::try_from(map).map_err(&err)?;
        for item in &trie {
            let (key, value) = item.map_err(&err)?;
            let prefix =
                net(key.data().addr_be, key.prefix_len()).ok_or_else(|| ReadError::Entry {
                    map: GENEVE_ROUTES_MAP,
                    what: format!("prefix length {}", key.prefix_len()),
                })?;
            report.routes.push(route(prefix, value));
        }
        report.routes.sort_by_key(|r| r.prefix);
    }
    if let Some(map) = open(dir, GENEVE_PEERS_MAP)? {
        let err = map_err(dir, GENEVE_PEERS_MAP);
        let hash: HashMap<MapData, GenevePeerKey, GenevePeer> =
            HashMap::try_from(map).map_err(&err)?;
        for item in &hash {
            let (key, value) = item.map_err(&err)?;
            // The marker entry of each peer only says "this address is a peer".
            if key.vni == VNI_PEER_MARKER {
                continue;
            }
            report.peers.push(GenevePeerReport {
                remote: Ipv4Addr::from(key.remote_ipv4_be),
                vni: key.vni,
                deliver_to_ifindex: (value.ifindex != 0).then_some(value.ifindex),
                dst_mac: mac(value.dst_mac),
            });
        }
        report.peers.sort_by_key(|p| (p.remote, p.vni));
    }
    Ok(report)
}

fn route(prefix: ipnet::Ipv4Net, value: GeneveRoute) -> GeneveRouteReport {
    let GeneveRoute {
        remote_ipv4_be,
        vni,
        ifindex,
        mode,
        _pad,
        inner_dst_mac,
    } = value;
    let mode = match GeneveMode::from_u8(mode) {
        Some(GeneveMode::Redirect) => "redirect".to_owned(),
        Some(GeneveMode::Native) => "native".to_owned(),
        None => format!("unknown ({mode})"),
    };
    GeneveRouteReport {
        prefix,
        remote: Ipv4Addr::from(remote_ipv4_be),
        vni,
        mode,
        ifindex: (ifindex != 0).then_some(ifindex),
        inner_dst_mac: mac(inner_dst_mac),
    }
}

fn mac(bytes: [u8; 6]) -> Option<String> {
    (bytes != [0; 6]).then(|| {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    })
}

/// The per-CPU counter array `name`, summed over CPUs, for every `(name, slot)`.
fn counters(
    dir: &Path,
    name: &'static str,
    slots: &[(&'static str, u32)],
) -> Result<Counters, ReadError> {
    let Some(map) = open(dir, name)? else {
        return Ok(Counters::default());
    };
    let err = map_err(dir, name);
    let array: PerCpuArray<MapData, u64> = PerCpuArray::try_from(map).map_err(&err)?;
    let values = slots
        .iter()
        .map(|(kind, slot)| Ok((*kind, array.get(slot, 0).map_err(&err)?.iter().sum())))
        .collect::<Result<_, ReadError>>()?;
    Ok(Counters(values))
}

fn peer_stats(dir: &Path, peer_id: u32) -> Result<Option<PeerStatsReport>, ReadError> {
    if peer_id >= PEER_STATS_MAX {
        return Ok(None);
    }
    let Some(map) = open(dir, PEER_STATS_MAP)? else {
        return Ok(None);
    };
    let err = map_err(dir, PEER_STATS_MAP);
    let array: PerCpuArray<MapData, PeerStats> = PerCpuArray::try_from(map).map_err(&err)?;
    let sum =
        array
            .get(&peer_id, 0)
            .map_err(&err)?
            .iter()
            .fold(PeerStatsReport::default(), |acc, v| PeerStatsReport {
                rx_packets: acc.rx_packets + v.rx_packets,
                rx_bytes: acc.rx_bytes + v.rx_bytes,
                tx_packets: acc.tx_packets + v.tx_packets,
                tx_bytes: acc.tx_bytes + v.tx_bytes,
            });
    Ok(Some(sum))
}

/// An attachment with the program it runs (asked from the kernel through the pin) and whether
/// its device still exists in this network namespace.
fn attachment(a: &Attachment) -> AttachmentReport {
    let program = match a.mode {
        AttachMode::Tcx => PinnedLink::from_pin(&a.pin)
            .ok()
            .and_then(|link| aya::programs::links::FdLink::from(link).info().ok())
            .and_then(|info| {
                let id = info.program_id();
                loaded_programs()
                    .filter_map(Result::ok)
                    .find(|p| p.id() == id)
            }),
        AttachMode::Netlink | AttachMode::Auto => ProgramInfo::from_pin(&a.pin).ok(),
    };
    AttachmentReport {
        device: a.device.clone(),
        direction: attach::direction_name(a.direction),
        mode: match a.mode {
            AttachMode::Tcx => "tcx",
            AttachMode::Netlink | AttachMode::Auto => "netlink",
        },
        program: program
            .as_ref()
            .map(|p| full_name(p.name_as_str().unwrap_or("?"))),
        program_id: program.as_ref().map(ProgramInfo::id),
        device_in_netns: attach::device(&a.device).is_ok(),
    }
}

/// The kernel keeps 15 bytes of a program's name: give back the full name of ours.
fn full_name(kernel: &str) -> String {
    PROGRAM_NAMES
        .iter()
        .chain(std::iter::once(&PROBE_PROGRAM))
        .find(|full| !kernel.is_empty() && full.starts_with(kernel))
        .map_or_else(|| kernel.to_owned(), |full| (*full).to_owned())
}

#[cfg(test)]
mod tests {
    use super::{full_name, mac, net};

    #[test]
    fn truncated_program_names_are_completed() {
        assert_eq!(full_name("cw_nat_from_tun"), "cw_nat_from_tunnel");
        assert_eq!(full_name("cw_geneve_encap"), "cw_geneve_encap");
        assert_eq!(full_name("other"), "other");
        assert_eq!(full_name(""), "");
    }

    #[test]
    fn macs_and_prefixes_decode() {
        assert_eq!(mac([0; 6]), None);
        assert_eq!(
            mac([2, 0, 0, 0, 0xab, 1]).as_deref(),
            Some("02:00:00:00:ab:01")
        );
        assert_eq!(net([10, 1, 0, 0], 16), "10.1.0.0/16".parse().ok());
        assert_eq!(net([10, 1, 0, 0], 33), None);
    }
}
