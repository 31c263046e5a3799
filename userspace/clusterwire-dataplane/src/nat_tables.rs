//! Owned handles on a gateway instance's NAT tables, for watch-driven updates: `sync` a table
//! to a desired state and only the difference is written.
//!
//! The lookup prefilter `CW_NAT_FILTER` is kept exact incrementally: a per-slot reference count
//! (built once from the tables when the handles are taken) says which bits are still needed, so
//! a removal never re-reads the maps. Bits are set before an entry is inserted and cleared after
//! the last entry needing them is removed, so a program never skips a lookup that could hit.
use std::{collections::BTreeMap, net::Ipv4Addr, ops::RangeInclusive};

use aya::maps::{Array, HashMap, LpmTrie, MapData, lpm_trie::Key};
use clusterwire_common::nat::{
    FILTER_WORDS_PER_TABLE, FilterTable, IPMAP_ENTRY_MAP, IPMAP_EXIT_MAP, IpMapKey, IpMapValue,
    NAT_FILTER_MAP, REMAP_DST_MAP, REMAP_PEER_BITS, REMAP_SRC_MAP, RemapKey, RemapValue,
};
use ipnet::Ipv4Net;

use crate::{
    Datapath, IpMapKind, RemapKind,
    error::MapError,
    filter::{ip_slots, prefix_slots},
};

/// What a `sync` changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Entries inserted.
    pub added: usize,
    /// Entries whose value changed.
    pub updated: usize,
    /// Entries removed.
    pub removed: usize,
}

impl SyncReport {
    /// Whether nothing had to change.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Slots covered by the 65,536-slot prefilter of one table, counted.
#[derive(Debug)]
struct SlotRefs {
    table: FilterTable,
    refs: Vec<u32>,
    /// The words as written in the map.
    words: Vec<u64>,
}

const SLOTS: usize = 65_536;

/// Every prefilter bitmap, in index order.
const TABLES: [FilterTable; 4] = [
    FilterTable::RemapDst,
    FilterTable::RemapSrc,
    FilterTable::IpmapExit,
    FilterTable::IpmapEntry,
];

impl SlotRefs {
    fn new(table: FilterTable) -> Self {
        Self {
            table,
            refs: vec![0; SLOTS],
            words: vec![0; FILTER_WORDS_PER_TABLE as usize],
        }
    }

    fn add(&mut self, slots: &RangeInclusive<u32>, delta: i32) {
        for slot in slots.clone() {
            let r = &mut self.refs[slot as usize];
            *r = r.saturating_add_signed(delta);
        }
    }

    fn word_bits(&self, word: u32) -> u64 {
        let base = word as usize * 64;
        self.refs[base..base + 64]
            .iter()
            .enumerate()
            .fold(0, |acc, (i, r)| if *r > 0 { acc | (1 << i) } else { acc })
    }

    /// Writes the words covering `slots` whose bits changed.
    fn flush(
        &mut self,
        filter: &mut Array<MapData, u64>,
        slots: &RangeInclusive<u32>,
    ) -> Result<(), MapError> {
        for word in (slots.start() >> 6)..=(slots.end() >> 6) {
            self.flush_word(filter, word)?;
        }
        Ok(())
    }

    fn flush_word(&mut self, filter: &mut Array<MapData, u64>, word: u32) -> Result<(), MapError> {
        let bits = self.word_bits(word);
        if self.words[word as usize] != bits {
            let index = self.table as u32 * FILTER_WORDS_PER_TABLE + word;
            filter.set(index, bits, 0).map_err(|source| MapError::Map {
                name: NAT_FILTER_MAP,
                source,
            })?;
            self.words[word as usize] = bits;
        }
        Ok(())
    }
}

/// The NAT tables of a gateway instance, owned (taken out of the [`Datapath`]).
pub struct NatTables {
    peer_id: u32,
    remap_dst: LpmTrie<MapData, RemapKey, RemapValue>,
    remap_src: LpmTrie<MapData, RemapKey, RemapValue>,
    ipmap_exit: HashMap<MapData, IpMapKey, IpMapValue>,
    ipmap_entry: HashMap<MapData, IpMapKey, IpMapValue>,
    filter: Array<MapData, u64>,
    refs: [SlotRefs; 4],
}

impl std::fmt::Debug for NatTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatTables")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

fn take<T>(
    datapath: &mut Datapath,
    name: &'static str,
    convert: impl FnOnce(aya::maps::Map) -> Result<T, aya::maps::MapError>,
) -> Result<T, MapError> {
    let map = datapath
        .ebpf_mut()
        .take_map(name)
        .ok_or(MapError::Missing(name))?;
    convert(map).map_err(|source| MapError::Map { name, source })
}

fn remap_key(peer_id: u32, net: Ipv4Net) -> Key<RemapKey> {
    Key::new(
        REMAP_PEER_BITS + u32::from(net.prefix_len()),
        RemapKey {
            peer_id,
            addr_be: net.network().octets(),
        },
    )
}

const fn table_index(table: FilterTable) -> usize {
    table as usize
}

const fn remap_filter(kind: RemapKind) -> FilterTable {
    match kind {
        RemapKind::Dst => FilterTable::RemapDst,
        RemapKind::Src => FilterTable::RemapSrc,
    }
}

const fn ipmap_filter(kind: IpMapKind) -> FilterTable {
    match kind {
        IpMapKind::Exit => FilterTable::IpmapExit,
        IpMapKind::Entry => FilterTable::IpmapEntry,
    }
}

impl NatTables {
    /// Takes the NAT maps out of `datapath` (a gateway's), reads them once to count which
    /// prefilter slots their entries need, and makes the prefilter exact (bits left by a process
    /// that died between two writes are repaired).
    pub fn take(datapath: &mut Datapath) -> Result<Self, MapError> {
        let peer_id = datapath.config().peer_id;
        let mut tables = Self {
            peer_id,
            remap_dst: take(datapath, REMAP_DST_MAP, LpmTrie::try_from)?,
            remap_src: take(datapath, REMAP_SRC_MAP, LpmTrie::try_from)?,
            ipmap_exit: take(datapath, IPMAP_EXIT_MAP, HashMap::try_from)?,
            ipmap_entry: take(datapath, IPMAP_ENTRY_MAP, HashMap::try_from)?,
            filter: take(datapath, NAT_FILTER_MAP, Array::try_from)?,
            refs: TABLES.map(SlotRefs::new),
        };
        for table in TABLES {
            for word in 0..FILTER_WORDS_PER_TABLE {
                let index = table as u32 * FILTER_WORDS_PER_TABLE + word;
                let bits = tables
                    .filter
                    .get(&index, 0)
                    .map_err(|source| MapError::Map {
                        name: NAT_FILTER_MAP,
                        source,
                    })?;
                tables.refs[table_index(table)].words[word as usize] = bits;
            }
        }
        for kind in [RemapKind::Dst, RemapKind::Src] {
            let entries = tables.all_remaps(kind)?;
            let refs = &mut tables.refs[table_index(remap_filter(kind))];
            for (_, from, _) in entries {
                refs.add(&prefix_slots(from), 1);
            }
        }
        for kind in [IpMapKind::Exit, IpMapKind::Entry] {
            let entries = tables.ipmaps(kind)?;
            let refs = &mut tables.refs[table_index(ipmap_filter(kind))];
            for from in entries.keys() {
                refs.add(&ip_slots(*from), 1);
            }
        }
        for refs in &mut tables.refs {
            for word in 0..FILTER_WORDS_PER_TABLE {
                refs.flush_word(&mut tables.filter, word)?;
            }
        }
        Ok(tables)
    }

    /// The peering these tables serve.
    pub fn peer_id(&self) -> u32 {
        self.peer_id
    }

    fn remap_map(&self, kind: RemapKind) -> &LpmTrie<MapData, RemapKey, RemapValue> {
        match kind {
            RemapKind::Dst => &self.remap_dst,
            RemapKind::Src => &self.remap_src,
        }
    }

    fn all_remaps(&self, kind: RemapKind) -> Result<Vec<(u32, Ipv4Net, Ipv4Net)>, MapError> {
        let name = match kind {
            RemapKind::Dst => REMAP_DST_MAP,
            RemapKind::Src => REMAP_SRC_MAP,
        };
        let mut out = Vec::new();
        for item in self.remap_map(kind) {
            let (k, v) = item.map_err(|source| MapError::Map { name, source })?;
            let data = k.data();
            let len =
                u8::try_from(k.prefix_len().saturating_sub(REMAP_PEER_BITS).min(32)).unwrap_or(32);
            if let (Ok(from), Ok(to)) = (
                Ipv4Net::new(Ipv4Addr::from(data.addr_be), len),
                Ipv4Net::new(Ipv4Addr::from(v.prefix_be), v.prefix_len.min(32)),
            ) {
                out.push((data.peer_id, from, to));
            }
        }
        Ok(out)
    }

    /// This peering's entries of a remap table (`from -> to`).
    pub fn remaps(&self, kind: RemapKind) -> Result<BTreeMap<Ipv4Net, Ipv4Net>, MapError> {
        Ok(self
            .all_remaps(kind)?
            .into_iter()
            .filter(|(peer, ..)| *peer == self.peer_id)
            .map(|(_, from, to)| (from, to))
            .collect())
    }

    /// Makes this peering's entries of a remap table exactly `desired` (`from -> to`, same
    /// prefix lengths, host bits of `from` ignored). Validates everything before the first
    /// write; inserts and updates come before removals, so a prefix that stays is never missing.
    /// Entries of other peerings are left alone. Reads the table back first.
    pub fn sync_remaps(
        &mut self,
        kind: RemapKind,
        desired: &BTreeMap<Ipv4Net, Ipv4Net>,
    ) -> Result<SyncReport, MapError> {
        let desired = validated_remaps(desired)?;
        let current = self.remaps(kind)?;
        self.write_remaps(kind, &current, &desired)
    }

    /// Like [`Self::sync_remaps`], from `current`, the entries as last synced (the caller
    /// vouches for them: they are not read back), so only the difference is touched.
    pub fn update_remaps(
        &mut self,
        kind: RemapKind,
        current: &BTreeMap<Ipv4Net, Ipv4Net>,
        desired: &BTreeMap<Ipv4Net, Ipv4Net>,
    ) -> Result<SyncReport, MapError> {
        let desired = validated_remaps(desired)?;
        let current: BTreeMap<Ipv4Net, Ipv4Net> = current
            .iter()
            .map(|(from, to)| (from.trunc(), to.trunc()))
            .collect();
        self.write_remaps(kind, &current, &desired)
    }

    fn write_remaps(
        &mut self,
        kind: RemapKind,
        current: &BTreeMap<Ipv4Net, Ipv4Net>,
        desired: &BTreeMap<Ipv4Net, Ipv4Net>,
    ) -> Result<SyncReport, MapError> {
        let diff = Diff::of(current, desired);
        let name = match kind {
            RemapKind::Dst => REMAP_DST_MAP,
            RemapKind::Src => REMAP_SRC_MAP,
        };
        let refs = &mut self.refs[table_index(remap_filter(kind))];
        let map = match kind {
            RemapKind::Dst => &mut self.remap_dst,
            RemapKind::Src => &mut self.remap_src,
        };
        for (from, to) in diff.upserts(desired) {
            if !current.contains_key(&from) {
                refs.add(&prefix_slots(from), 1);
                refs.flush(&mut self.filter, &prefix_slots(from))?;
            }
            let value = RemapValue::new(to.network().octets(), to.prefix_len());
            map.insert(&remap_key(self.peer_id, from), value, 0)
                .map_err(|source| MapError::Map { name, source })?;
        }
        for from in &diff.removed {
            match map.remove(&remap_key(self.peer_id, *from)) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                Err(source) => return Err(MapError::Map { name, source }),
            }
            refs.add(&prefix_slots(*from), -1);
            refs.flush(&mut self.filter, &prefix_slots(*from))?;
        }
        Ok(diff.report())
    }

    fn ipmap_map(&self, kind: IpMapKind) -> &HashMap<MapData, IpMapKey, IpMapValue> {
        match kind {
            IpMapKind::Exit => &self.ipmap_exit,
            IpMapKind::Entry => &self.ipmap_entry,
        }
    }

    /// The entries of a single-IP table (`from -> to`).
    pub fn ipmaps(&self, kind: IpMapKind) -> Result<BTreeMap<Ipv4Addr, Ipv4Addr>, MapError> {
        let name = match kind {
            IpMapKind::Exit => IPMAP_EXIT_MAP,
            IpMapKind::Entry => IPMAP_ENTRY_MAP,
        };
        self.ipmap_map(kind)
            .iter()
            .map(|item| {
                item.map(|(k, v)| (Ipv4Addr::from(k.addr_be), Ipv4Addr::from(v.addr_be)))
                    .map_err(|source| MapError::Map { name, source })
            })
            .collect()
    }

    /// Makes a single-IP table exactly `desired`. Reads the table back first.
    pub fn sync_ipmap(
        &mut self,
        kind: IpMapKind,
        desired: &BTreeMap<Ipv4Addr, Ipv4Addr>,
    ) -> Result<SyncReport, MapError> {
        let current = self.ipmaps(kind)?;
        self.update_ipmap(kind, &current, desired)
    }

    /// Like [`Self::sync_ipmap`], from `current`, the entries as last synced (the caller
    /// vouches for them: they are not read back), so only the difference is touched.
    pub fn update_ipmap(
        &mut self,
        kind: IpMapKind,
        current: &BTreeMap<Ipv4Addr, Ipv4Addr>,
        desired: &BTreeMap<Ipv4Addr, Ipv4Addr>,
    ) -> Result<SyncReport, MapError> {
        let diff = Diff::of(current, desired);
        let name = match kind {
            IpMapKind::Exit => IPMAP_EXIT_MAP,
            IpMapKind::Entry => IPMAP_ENTRY_MAP,
        };
        let refs = &mut self.refs[table_index(ipmap_filter(kind))];
        let map = match kind {
            IpMapKind::Exit => &mut self.ipmap_exit,
            IpMapKind::Entry => &mut self.ipmap_entry,
        };
        for (from, to) in diff.upserts(desired) {
            if !current.contains_key(&from) {
                refs.add(&ip_slots(from), 1);
                refs.flush(&mut self.filter, &ip_slots(from))?;
            }
            let key = IpMapKey {
                addr_be: from.octets(),
            };
            map.insert(
                key,
                IpMapValue {
                    addr_be: to.octets(),
                },
                0,
            )
            .map_err(|source| MapError::Map { name, source })?;
        }
        for from in &diff.removed {
            match map.remove(&IpMapKey {
                addr_be: from.octets(),
            }) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                Err(source) => return Err(MapError::Map { name, source }),
            }
            refs.add(&ip_slots(*from), -1);
            refs.flush(&mut self.filter, &ip_slots(*from))?;
        }
        Ok(diff.report())
    }

    /// The prefilter words of `table` as last written (for tests and `cwctl inspect`).
    pub fn filter_words(&self, table: FilterTable) -> &[u64] {
        &self.refs[table_index(table)].words
    }
}

/// Checks that every remap keeps its prefix length; host bits cleared.
fn validated_remaps(
    desired: &BTreeMap<Ipv4Net, Ipv4Net>,
) -> Result<BTreeMap<Ipv4Net, Ipv4Net>, MapError> {
    desired
        .iter()
        .map(|(from, to)| {
            if from.prefix_len() == to.prefix_len() {
                Ok((from.trunc(), to.trunc()))
            } else {
                Err(MapError::SizeMismatch {
                    from: *from,
                    to: *to,
                })
            }
        })
        .collect()
}

/// The difference between two ordered maps.
#[derive(Debug)]
pub(crate) struct Diff<K> {
    pub(crate) added: Vec<K>,
    pub(crate) updated: Vec<K>,
    pub(crate) removed: Vec<K>,
}

impl<K: Ord + Copy> Diff<K> {
    pub(crate) fn of<V: PartialEq>(current: &BTreeMap<K, V>, desired: &BTreeMap<K, V>) -> Self {
        let mut diff = Self {
            added: Vec::new(),
            updated: Vec::new(),
            removed: Vec::new(),
        };
        for (k, v) in desired {
            match current.get(k) {
                None => diff.added.push(*k),
                Some(old) if old != v => diff.updated.push(*k),
                Some(_) => {}
            }
        }
        diff.removed = current
            .keys()
            .filter(|k| !desired.contains_key(k))
            .copied()
            .collect();
        diff
    }

    /// Added and updated keys with their desired values.
    pub(crate) fn upserts<'a, V: Copy>(
        &'a self,
        desired: &'a BTreeMap<K, V>,
    ) -> impl Iterator<Item = (K, V)> + 'a {
        self.added
            .iter()
            .chain(&self.updated)
            .filter_map(|k| desired.get(k).map(|v| (*k, *v)))
    }

    pub(crate) fn report(&self) -> SyncReport {
        SyncReport {
            added: self.added.len(),
            updated: self.updated.len(),
            removed: self.removed.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clusterwire_common::nat::FilterTable;

    use super::{Diff, SlotRefs, SyncReport};

    #[test]
    fn diff_lists_added_updated_and_removed_keys() {
        let current = BTreeMap::from([(1, 'a'), (2, 'b'), (3, 'c')]);
        let desired = BTreeMap::from([(2, 'b'), (3, 'x'), (4, 'd')]);
        let diff = Diff::of(&current, &desired);
        assert_eq!(diff.added, [4]);
        assert_eq!(diff.updated, [3]);
        assert_eq!(diff.removed, [1]);
        let upserts: Vec<_> = diff.upserts(&desired).collect();
        assert_eq!(upserts, [(4, 'd'), (3, 'x')]);
        assert_eq!(
            diff.report(),
            SyncReport {
                added: 1,
                updated: 1,
                removed: 1
            }
        );
        assert!(Diff::of(&desired, &desired).report().is_empty());
    }

    #[test]
    fn slot_refs_keep_a_bit_until_the_last_entry_needing_it_goes() {
        let mut refs = SlotRefs::new(FilterTable::RemapDst);
        refs.add(&(0x0a00..=0x0aff), 1); // 10.0.0.0/8
        refs.add(&(0x0a32..=0x0a32), 1); // 10.50.0.0/16
        assert_eq!(refs.word_bits(0x0a32 >> 6), u64::MAX);
        refs.add(&(0x0a00..=0x0aff), -1);
        assert_eq!(refs.word_bits(0x0a32 >> 6), 1 << (0x0a32 & 63));
        refs.add(&(0x0a32..=0x0a32), -1);
        assert_eq!(refs.word_bits(0x0a32 >> 6), 0);
    }
}
