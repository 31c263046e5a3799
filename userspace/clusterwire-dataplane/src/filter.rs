//! Maintenance of the lookup prefilter `CW_NAT_FILTER` (one 65536-bit bitmap per NAT table, see
//! `clusterwire_common::nat::NAT_FILTER_MAP`). Bits are set before an entry is inserted and
//! cleared after it is removed (when no remaining entry needs them), so the programs never skip
//! a lookup that could hit.
use std::{collections::BTreeMap, net::Ipv4Addr, ops::RangeInclusive};

use aya::maps::{Array, MapData};
use clusterwire_common::nat::{
    FILTER_WORDS_PER_TABLE, FilterTable, NAT_FILTER_MAP, ip_slot, prefix_slot,
};
use ipnet::Ipv4Net;

use crate::error::MapError;

/// Prefilter slots covered by a prefix.
pub(crate) fn prefix_slots(net: Ipv4Net) -> RangeInclusive<u32> {
    prefix_slot(u32::from(net.network()))..=prefix_slot(u32::from(net.broadcast()))
}

/// The prefilter slot of a single address.
pub(crate) fn ip_slots(addr: Ipv4Addr) -> RangeInclusive<u32> {
    let s = ip_slot(u32::from(addr));
    s..=s
}

/// The bits of `slots` that fall in word `word` (0..1024) of a bitmap.
fn bits_in_word(slots: &RangeInclusive<u32>, word: u32) -> u64 {
    let (lo, hi) = (word * 64, word * 64 + 63);
    let (a, b) = ((*slots.start()).max(lo), (*slots.end()).min(hi));
    if a > b {
        return 0;
    }
    let width = b - a + 1;
    let ones = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    ones << (a - lo)
}

fn words(slots: &RangeInclusive<u32>) -> RangeInclusive<u32> {
    (slots.start() >> 6)..=(slots.end() >> 6)
}

/// A handle on one table's bitmap.
pub(crate) struct Filter<'a> {
    table: FilterTable,
    map: Array<&'a mut MapData, u64>,
}

impl std::fmt::Debug for Filter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl<'a> Filter<'a> {
    pub(crate) fn new(table: FilterTable, map: &'a mut aya::maps::Map) -> Result<Self, MapError> {
        let map = Array::try_from(map).map_err(|source| MapError::Map {
            name: NAT_FILTER_MAP,
            source,
        })?;
        Ok(Self { table, map })
    }

    fn index(&self, word: u32) -> u32 {
        self.table as u32 * FILTER_WORDS_PER_TABLE + word
    }

    fn err(source: aya::maps::MapError) -> MapError {
        MapError::Map {
            name: NAT_FILTER_MAP,
            source,
        }
    }

    /// Sets the bits of `slots`.
    pub(crate) fn set(&mut self, slots: &RangeInclusive<u32>) -> Result<(), MapError> {
        for word in words(slots) {
            let index = self.index(word);
            let old = self.map.get(&index, 0).map_err(Self::err)?;
            let new = old | bits_in_word(slots, word);
            if new != old {
                self.map.set(index, new, 0).map_err(Self::err)?;
            }
        }
        Ok(())
    }

    /// Recomputes the words covering `removed` from the slots of the `remaining` entries.
    pub(crate) fn rebuild(
        &mut self,
        removed: &RangeInclusive<u32>,
        remaining: &[RangeInclusive<u32>],
    ) -> Result<(), MapError> {
        let mut fresh: BTreeMap<u32, u64> = words(removed).map(|w| (w, 0)).collect();
        for slots in remaining {
            for word in words(slots) {
                if let Some(bits) = fresh.get_mut(&word) {
                    *bits |= bits_in_word(slots, word);
                }
            }
        }
        for (word, bits) in fresh {
            let index = self.index(word);
            if self.map.get(&index, 0).map_err(Self::err)? != bits {
                self.map.set(index, bits, 0).map_err(Self::err)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{bits_in_word, prefix_slots};

    #[test]
    fn bits_of_ranges() {
        assert_eq!(bits_in_word(&(0..=0), 0), 1);
        assert_eq!(bits_in_word(&(63..=64), 0), 1 << 63);
        assert_eq!(bits_in_word(&(63..=64), 1), 1);
        assert_eq!(bits_in_word(&(0..=65535), 7), u64::MAX);
        assert_eq!(bits_in_word(&(10..=12), 1), 0);
        assert_eq!(prefix_slots("10.0.0.0/8".parse().unwrap()), 0x0a00..=0x0aff);
        assert_eq!(
            prefix_slots("10.50.9.0/24".parse().unwrap()),
            0x0a32..=0x0a32
        );
    }
}
