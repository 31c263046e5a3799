//! Typed handles on the NAT tables: prefix remaps per peer and single-IP mappings.
use std::net::Ipv4Addr;

use aya::maps::{HashMap, LpmTrie, MapData, lpm_trie::Key};
use clusterwire_common::nat::{
    FilterTable, IPMAP_ENTRY_MAP, IPMAP_EXIT_MAP, IpMapKey, IpMapValue, NAT_FILTER_MAP,
    REMAP_DST_MAP, REMAP_PEER_BITS, REMAP_SRC_MAP, RemapKey, RemapValue,
};
use ipnet::Ipv4Net;

use crate::{
    datapath::Datapath,
    error::MapError,
    filter::{Filter, ip_slots, prefix_slots},
};

/// The table's map and the prefilter map, borrowed together.
fn two_maps<'a>(
    datapath: &'a mut Datapath,
    name: &'static str,
) -> Result<(&'a mut aya::maps::Map, &'a mut aya::maps::Map), MapError> {
    match datapath.ebpf.maps_disjoint_mut([name, NAT_FILTER_MAP]) {
        [Some(map), Some(filter)] => Ok((map, filter)),
        [None, _] => Err(MapError::Missing(name)),
        [_, None] => Err(MapError::Missing(NAT_FILTER_MAP)),
    }
}

/// One remap entry as read back from a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemapEntry {
    /// The peering.
    pub peer_id: u32,
    /// The matched prefix.
    pub from: Ipv4Net,
    /// The prefix it becomes (same length, host bits kept).
    pub to: Ipv4Net,
}

/// Which remap table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemapKind {
    /// Into the tunnel: remapped destination -> the peer's real prefix (`CW_REMAP_DST`).
    Dst,
    /// Out of the tunnel: the peer's real source -> remapped prefix (`CW_REMAP_SRC`); it also
    /// lists the peer's announced CIDRs (a source outside every entry is dropped as spoofed):
    /// announce a CIDR that is not remapped with an identity entry (`from == to`).
    Src,
}

impl RemapKind {
    const fn map(self) -> &'static str {
        match self {
            Self::Dst => REMAP_DST_MAP,
            Self::Src => REMAP_SRC_MAP,
        }
    }

    const fn filter(self) -> FilterTable {
        match self {
            Self::Dst => FilterTable::RemapDst,
            Self::Src => FilterTable::RemapSrc,
        }
    }
}

/// A remap LPM trie (and its lookup prefilter).
#[derive(Debug)]
pub struct RemapTable<'a> {
    name: &'static str,
    map: LpmTrie<&'a mut MapData, RemapKey, RemapValue>,
    filter: Filter<'a>,
}

fn key(peer_id: u32, net: Ipv4Net) -> Key<RemapKey> {
    Key::new(
        REMAP_PEER_BITS + u32::from(net.prefix_len()),
        RemapKey {
            peer_id,
            addr_be: net.network().octets(),
        },
    )
}

impl<'a> RemapTable<'a> {
    /// Opens the table of `kind`.
    pub fn open(datapath: &'a mut Datapath, kind: RemapKind) -> Result<Self, MapError> {
        let name = kind.map();
        let (map, filter) = two_maps(datapath, name)?;
        let map = LpmTrie::try_from(map).map_err(|source| MapError::Map { name, source })?;
        let filter = Filter::new(kind.filter(), filter)?;
        Ok(Self { name, map, filter })
    }

    /// Maps `from` to `to` for `peer_id` (host bits kept); the prefixes must be the same size.
    /// Replaces an entry for the same `from`.
    pub fn insert(&mut self, peer_id: u32, from: Ipv4Net, to: Ipv4Net) -> Result<(), MapError> {
        if from.prefix_len() != to.prefix_len() {
            return Err(MapError::SizeMismatch { from, to });
        }
        let value = RemapValue::new(to.network().octets(), to.prefix_len());
        self.filter.set(&prefix_slots(from))?;
        self.map
            .insert(&key(peer_id, from.trunc()), value, 0)
            .map_err(|source| MapError::Map {
                name: self.name,
                source,
            })
    }

    /// Removes the entry for exactly `from`.
    pub fn remove(&mut self, peer_id: u32, from: Ipv4Net) -> Result<(), MapError> {
        self.map
            .remove(&key(peer_id, from.trunc()))
            .map_err(|source| MapError::Map {
                name: self.name,
                source,
            })?;
        let remaining: Vec<_> = self
            .entries()?
            .iter()
            .map(|e| prefix_slots(e.from))
            .collect();
        self.filter.rebuild(&prefix_slots(from), &remaining)
    }

    /// Every entry, in the trie's order.
    pub fn entries(&self) -> Result<Vec<RemapEntry>, MapError> {
        let mut out = Vec::new();
        for item in &self.map {
            let (k, v) = item.map_err(|source| MapError::Map {
                name: self.name,
                source,
            })?;
            let data = k.data();
            let len =
                u8::try_from(k.prefix_len().saturating_sub(REMAP_PEER_BITS).min(32)).unwrap_or(32);
            let (Ok(from), Ok(to)) = (
                Ipv4Net::new(Ipv4Addr::from(data.addr_be), len),
                Ipv4Net::new(Ipv4Addr::from(v.prefix_be), v.prefix_len.min(32)),
            ) else {
                continue;
            };
            out.push(RemapEntry {
                peer_id: data.peer_id,
                from,
                to,
            });
        }
        Ok(out)
    }
}

/// Which single-IP table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpMapKind {
    /// Into the tunnel: local real source -> external-CIDR address (`CW_IPMAP_EXIT`).
    Exit,
    /// Out of the tunnel: external-CIDR destination -> local real address (`CW_IPMAP_ENTRY`).
    Entry,
}

/// A single-IP mapping table (and its lookup prefilter).
#[derive(Debug)]
pub struct IpMapTable<'a> {
    name: &'static str,
    map: HashMap<&'a mut MapData, IpMapKey, IpMapValue>,
    filter: Filter<'a>,
}

impl<'a> IpMapTable<'a> {
    /// Opens the table of `kind`.
    pub fn open(datapath: &'a mut Datapath, kind: IpMapKind) -> Result<Self, MapError> {
        let (name, table) = match kind {
            IpMapKind::Exit => (IPMAP_EXIT_MAP, FilterTable::IpmapExit),
            IpMapKind::Entry => (IPMAP_ENTRY_MAP, FilterTable::IpmapEntry),
        };
        let (map, filter) = two_maps(datapath, name)?;
        let map = HashMap::try_from(map).map_err(|source| MapError::Map { name, source })?;
        let filter = Filter::new(table, filter)?;
        Ok(Self { name, map, filter })
    }

    /// Maps `from` to `to` (replacing an entry for `from`).
    pub fn insert(&mut self, from: Ipv4Addr, to: Ipv4Addr) -> Result<(), MapError> {
        let key = IpMapKey {
            addr_be: from.octets(),
        };
        let value = IpMapValue {
            addr_be: to.octets(),
        };
        self.filter.set(&ip_slots(from))?;
        self.map
            .insert(key, value, 0)
            .map_err(|source| MapError::Map {
                name: self.name,
                source,
            })
    }

    /// Removes the mapping of `from`.
    pub fn remove(&mut self, from: Ipv4Addr) -> Result<(), MapError> {
        let key = IpMapKey {
            addr_be: from.octets(),
        };
        self.map.remove(&key).map_err(|source| MapError::Map {
            name: self.name,
            source,
        })?;
        let remaining: Vec<_> = self.entries()?.iter().map(|(a, _)| ip_slots(*a)).collect();
        self.filter.rebuild(&ip_slots(from), &remaining)
    }

    /// Every mapping.
    pub fn entries(&self) -> Result<Vec<(Ipv4Addr, Ipv4Addr)>, MapError> {
        self.map
            .iter()
            .map(|item| {
                item.map(|(k, v)| (Ipv4Addr::from(k.addr_be), Ipv4Addr::from(v.addr_be)))
                    .map_err(|source| MapError::Map {
                        name: self.name,
                        source,
                    })
            })
            .collect()
    }
}

impl Datapath {
    /// The remap table of `kind`.
    pub fn remap(&mut self, kind: RemapKind) -> Result<RemapTable<'_>, MapError> {
        RemapTable::open(self, kind)
    }

    /// The single-IP table of `kind`.
    pub fn ipmap(&mut self, kind: IpMapKind) -> Result<IpMapTable<'_>, MapError> {
        IpMapTable::open(self, kind)
    }
}
