//! A set of disjoint, coalesced, inclusive `u128` intervals kept in a `BTreeMap` (start -> end).
//!
//! Both address families are handled as `u128` (IPv4 addresses use the low 32 bits), so one
//! structure serves IPv4 and IPv6. Adjacent and overlapping inserts are merged, which keeps the
//! map small when allocations are packed first-fit: searching for a free block jumps over a whole
//! run of neighbouring allocations in one `O(log n)` step.

use std::collections::BTreeMap;

/// Disjoint, non-adjacent inclusive intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IntervalSet {
    map: BTreeMap<u128, u128>,
}

impl IntervalSet {
    /// Whether any address in `[start, end]` is in the set.
    pub(crate) fn overlaps(&self, start: u128, end: u128) -> bool {
        self.map
            .range(..=end)
            .next_back()
            .is_some_and(|(_, &last)| last >= start)
    }

    /// Whether every address in `[start, end]` is in the set.
    #[cfg(test)]
    pub(crate) fn contains_range(&self, start: u128, end: u128) -> bool {
        self.map
            .range(..=start)
            .next_back()
            .is_some_and(|(_, &last)| last >= end)
    }

    /// Adds `[start, end]`, merging with overlapping or adjacent intervals (union semantics).
    pub(crate) fn insert(&mut self, start: u128, end: u128) {
        debug_assert!(start <= end, "interval [{start}, {end}] is reversed");
        let (mut lo, mut hi) = (start, end);
        if let Some((&prev_start, &prev_end)) = self.map.range(..=start).next_back()
            && prev_end.saturating_add(1) >= start
        {
            lo = prev_start;
            hi = hi.max(prev_end);
            self.map.remove(&prev_start);
        }
        while let Some((&next_start, &next_end)) = self.map.range(lo..).next() {
            if next_start > hi.saturating_add(1) {
                break;
            }
            hi = hi.max(next_end);
            self.map.remove(&next_start);
        }
        self.map.insert(lo, hi);
    }

    /// Removes `[start, end]`, which must lie inside one interval of the set (it was inserted as
    /// an exclusive allocation). Returns false, changing nothing, when it does not.
    pub(crate) fn remove(&mut self, start: u128, end: u128) -> bool {
        let Some((&cur_start, &cur_end)) = self.map.range(..=start).next_back() else {
            return false;
        };
        if cur_end < end {
            return false;
        }
        self.map.remove(&cur_start);
        if cur_start < start {
            self.map.insert(cur_start, start - 1);
        }
        if end < cur_end {
            self.map.insert(end + 1, cur_end);
        }
        true
    }

    /// The lowest block of `mask + 1` addresses aligned on `mask + 1` (mask = `2^k - 1`) that lies
    /// inside `[lo, hi]` and does not overlap the set.
    pub(crate) fn first_free_aligned(&self, lo: u128, hi: u128, mask: u128) -> Option<u128> {
        let mut candidate = align_up(lo, mask)?;
        loop {
            let end = candidate.checked_add(mask)?;
            if end > hi {
                return None;
            }
            match self.map.range(..=end).next_back() {
                Some((_, &busy_end)) if busy_end >= candidate => {
                    candidate = align_up(busy_end.checked_add(1)?, mask)?;
                }
                _ => return Some(candidate),
            }
        }
    }

    /// Number of stored (coalesced) intervals.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// Rounds `value` up to the next multiple of `mask + 1`.
fn align_up(value: u128, mask: u128) -> Option<u128> {
    Some(value.checked_add(mask)? & !mask)
}

#[cfg(test)]
mod tests {
    use super::IntervalSet;

    #[test]
    fn insert_coalesces_adjacent_and_overlapping() {
        let mut set = IntervalSet::default();
        set.insert(10, 19);
        set.insert(30, 39);
        assert_eq!(set.len(), 2, "disjoint intervals must stay separate");
        set.insert(20, 29);
        assert_eq!(set.len(), 1, "[20,29] bridges [10,19] and [30,39]");
        assert!(
            set.contains_range(10, 39),
            "the merged interval must cover 10..=39"
        );
        set.insert(0, 100);
        assert_eq!(set.len(), 1);
        assert!(set.contains_range(0, 100));
    }

    #[test]
    fn remove_splits() {
        let mut set = IntervalSet::default();
        set.insert(0, 99);
        assert!(set.remove(40, 49));
        assert!(set.overlaps(39, 39) && set.overlaps(50, 50));
        assert!(!set.overlaps(40, 49), "40..=49 must be free after removal");
        assert!(!set.remove(40, 41), "removing a free range must fail");
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn first_free_aligned_skips_busy_blocks() {
        let mut set = IntervalSet::default();
        set.insert(0, 255); // block 0 busy
        set.insert(300, 300); // touches block 256..=511
        assert_eq!(set.first_free_aligned(0, 1023, 255), Some(512));
        assert_eq!(set.first_free_aligned(0, 511, 255), None);
        assert_eq!(set.first_free_aligned(0, 1023, 0), Some(256));
        assert_eq!(
            set.first_free_aligned(u128::MAX - 1, u128::MAX, 1),
            Some(u128::MAX - 1),
            "the last aligned pair of the space is free"
        );
        assert_eq!(
            set.first_free_aligned(u128::MAX, u128::MAX, 1),
            None,
            "aligning past the end of the space must not wrap"
        );
    }
}
