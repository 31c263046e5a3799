//! The difference between what is applied and what is desired, over ordered maps.

use std::collections::{BTreeMap, BTreeSet};

/// What to change to go from the current entries to the desired ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes<K, V> {
    /// Keys only in the desired state, with their values.
    pub add: BTreeMap<K, V>,
    /// Keys in both whose value differs, with the desired value.
    pub update: BTreeMap<K, V>,
    /// Keys only in the current state, with the value to remove.
    pub remove: BTreeMap<K, V>,
}

impl<K, V> Default for Changes<K, V> {
    fn default() -> Self {
        Self {
            add: BTreeMap::new(),
            update: BTreeMap::new(),
            remove: BTreeMap::new(),
        }
    }
}

impl<K, V> Changes<K, V> {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.update.is_empty() && self.remove.is_empty()
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.add.len() + self.update.len() + self.remove.len()
    }
}

/// The changes that turn `current` into `desired`. Apply `remove` before `add` when keys
/// may collide in a resource with a capacity (e.g. a full BPF map).
pub fn diff<K: Ord + Clone, V: PartialEq + Clone>(
    current: &BTreeMap<K, V>,
    desired: &BTreeMap<K, V>,
) -> Changes<K, V> {
    let mut changes = Changes::default();
    for (key, want) in desired {
        match current.get(key) {
            None => {
                changes.add.insert(key.clone(), want.clone());
            }
            Some(have) if have != want => {
                changes.update.insert(key.clone(), want.clone());
            }
            Some(_) => {}
        }
    }
    for (key, have) in current {
        if !desired.contains_key(key) {
            changes.remove.insert(key.clone(), have.clone());
        }
    }
    changes
}

/// What to change to go from the current members of a set to the desired ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetChanges<K> {
    /// Members only in the desired set.
    pub add: BTreeSet<K>,
    /// Members only in the current set.
    pub remove: BTreeSet<K>,
}

impl<K> SetChanges<K> {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// [`diff`] over sets.
pub fn diff_sets<K: Ord + Clone>(current: &BTreeSet<K>, desired: &BTreeSet<K>) -> SetChanges<K> {
    SetChanges {
        add: desired.difference(current).cloned().collect(),
        remove: current.difference(desired).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_update_remove_and_unchanged() {
        let current = BTreeMap::from([(1, "a"), (2, "b"), (3, "c")]);
        let desired = BTreeMap::from([(2, "b"), (3, "C"), (4, "d")]);
        let changes = diff(&current, &desired);
        assert_eq!(
            changes,
            Changes {
                add: BTreeMap::from([(4, "d")]),
                update: BTreeMap::from([(3, "C")]),
                remove: BTreeMap::from([(1, "a")]),
            }
        );
        assert_eq!(changes.len(), 3);
        assert!(diff(&desired, &desired).is_empty());
        let from_empty = diff(&BTreeMap::new(), &desired);
        assert_eq!((from_empty.add.len(), from_empty.len()), (3, 3));
        let to_empty = diff(&desired, &BTreeMap::new());
        assert_eq!(to_empty.remove, desired);
    }

    #[test]
    fn sets() {
        let current = BTreeSet::from(["a", "b"]);
        let desired = BTreeSet::from(["b", "c"]);
        let changes = diff_sets(&current, &desired);
        assert_eq!(
            changes,
            SetChanges {
                add: BTreeSet::from(["c"]),
                remove: BTreeSet::from(["a"])
            }
        );
        assert!(diff_sets(&current, &current).is_empty());
    }
}
