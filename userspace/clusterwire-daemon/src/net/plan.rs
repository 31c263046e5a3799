//! What a route write does: the pure part of [`super::routes`], planned from the nexthop table,
//! the routes as they are and the routes wanted.
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{
    ROUTE_PROTOCOL, RouteReport, RouteSpec,
    nexthop::{Nexthop, NexthopKey},
};

/// The first id clusterwire gives a nexthop: our protocol number in the top byte, far above the
/// small ids other software counts up from.
const FIRST_ID: u32 = (ROUTE_PROTOCOL as u32) << 24;

/// The namespace's nexthops by id, all protocols (an id is unique across them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct NexthopTable {
    pub(super) entries: BTreeMap<u32, Nexthop>,
}

impl NexthopTable {
    /// From what a dump listed.
    pub(super) fn new(entries: impl IntoIterator<Item = Nexthop>) -> Self {
        Self {
            entries: entries.into_iter().map(|n| (n.id, n)).collect(),
        }
    }

    /// Where the nexthop `id` goes (whoever installed it).
    pub(super) fn key(&self, id: u32) -> Option<NexthopKey> {
        self.entries.get(&id).and_then(|n| n.key)
    }

    /// Our nexthops with a key, by id.
    fn ours(&self) -> impl Iterator<Item = (u32, NexthopKey)> + '_ {
        self.entries.values().filter_map(|n| match n.key {
            Some(key) if n.protocol == ROUTE_PROTOCOL => Some((n.id, key)),
            _ => None,
        })
    }

    /// The canonical (lowest) id of each key among our nexthops.
    pub(super) fn canonical(&self) -> BTreeMap<NexthopKey, u32> {
        let mut out = BTreeMap::new();
        for (id, key) in self.ours() {
            out.entry(key).or_insert(id);
        }
        out
    }
}

/// One of our routes as the kernel has it: what it means and, through a nexthop, which one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Installed {
    pub spec: RouteSpec,
    pub nhid: Option<u32>,
}

/// A route as written: the same wire form means nothing to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wire {
    Plain(RouteSpec),
    Nexthop {
        id: u32,
        src: Option<Ipv4Addr>,
        mtu: Option<u32>,
    },
}

impl Wire {
    pub(super) fn of(spec: RouteSpec, nhid: Option<u32>) -> Self {
        match nhid {
            Some(id) => Self::Nexthop {
                id,
                src: spec.src,
                mtu: spec.mtu,
            },
            None => Self::Plain(spec),
        }
    }
}

/// The nexthop a route needs: routes with a device and a gateway.
pub(super) fn key_of(spec: &RouteSpec) -> Option<NexthopKey> {
    match (spec.oif, spec.via) {
        (0, _) | (_, None) => None,
        (oif, Some(via)) => Some(NexthopKey {
            oif,
            via,
            onlink: spec.onlink,
        }),
    }
}

/// What a write does, in this order.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Plan {
    /// Nexthops to create.
    pub(super) create: Vec<(u32, NexthopKey)>,
    /// Nexthops to point elsewhere (every route using them follows).
    pub(super) replace: Vec<(u32, NexthopKey)>,
    /// Routes to add or replace.
    pub(super) write: Vec<(Ipv4Net, Wire)>,
    /// Routes to delete.
    pub(super) remove: Vec<(Ipv4Net, RouteSpec)>,
    /// Our nexthops to delete once no route uses them.
    pub(super) collect: Vec<u32>,
    /// Added and updated routes (removals are counted as they succeed).
    pub(super) report: RouteReport,
}

/// From `current` to `desired`, through nexthops when `table` is given (plain routes otherwise).
pub(super) fn plan(
    table: Option<&NexthopTable>,
    current: &BTreeMap<Ipv4Net, Installed>,
    desired: &BTreeMap<Ipv4Net, RouteSpec>,
) -> Plan {
    let mut plan = Plan::default();
    let mut ids = BTreeMap::new();
    if let Some(table) = table {
        let existing = table.canonical();
        let keys: BTreeSet<NexthopKey> = desired.values().filter_map(key_of).collect();
        for key in &keys {
            if let Some(id) = existing.get(key) {
                ids.insert(*key, *id);
            }
        }
        // Which keys the routes now on each of our nexthops will want.
        let mut moves: BTreeMap<u32, BTreeSet<Option<NexthopKey>>> = BTreeMap::new();
        for (net, have) in current {
            if let Some(id) = have.nhid {
                moves
                    .entry(id)
                    .or_default()
                    .insert(desired.get(net).and_then(key_of));
            }
        }
        for (id, old) in table.ours() {
            let Some(wanted) = moves.get(&id) else {
                continue;
            };
            if keys.contains(&old) || wanted.len() != 1 {
                continue;
            }
            if let Some(Some(new)) = wanted.first()
                && !ids.contains_key(new)
            {
                ids.insert(*new, id);
                plan.replace.push((id, *new));
            }
        }
        let mut free = (FIRST_ID..=u32::MAX).filter(|id| !table.entries.contains_key(id));
        for key in keys {
            if let std::collections::btree_map::Entry::Vacant(slot) = ids.entry(key) {
                let id = free.next().expect("a free nexthop id");
                slot.insert(id);
                plan.create.push((id, key));
            }
        }
        let used: BTreeSet<u32> = ids.values().copied().collect();
        plan.collect = table
            .ours()
            .map(|(id, _)| id)
            .filter(|id| !used.contains(id))
            .collect();
    }
    for (net, spec) in desired {
        let want = Wire::of(*spec, key_of(spec).and_then(|k| ids.get(&k).copied()));
        match current.get(net) {
            None => plan.report.added += 1,
            Some(have) => {
                let same_wire = Wire::of(have.spec, have.nhid) == want;
                if have.spec == *spec && same_wire {
                    continue;
                }
                plan.report.updated += 1;
                if same_wire {
                    continue; // moved by its nexthop's replacement
                }
            }
        }
        plan.write.push((*net, want));
    }
    for (net, have) in current {
        if !desired.contains_key(net) {
            plan.remove.push((*net, have.spec));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::fixtures::{installed, key, net, ours, via};

    #[test]
    fn first_write_creates_one_nexthop_per_gateway_in_key_order() {
        let table = NexthopTable::new([Nexthop {
            id: FIRST_ID,
            protocol: 4,
            key: None,
        }]);
        let desired = BTreeMap::from([
            (net("10.0.0.0/27"), via(3, 12)),
            (net("10.0.0.32/27"), via(3, 11)),
            (net("10.80.0.1/32"), via(3, 11)),
            (
                net("10.200.0.0/16"),
                RouteSpec {
                    via: None,
                    ..via(3, 0)
                },
            ),
            (net("10.201.0.0/16"), RouteSpec::UNREACHABLE),
        ]);
        let plan = plan(Some(&table), &BTreeMap::new(), &desired);
        // FIRST_ID belongs to someone else.
        let (a, b) = (FIRST_ID + 1, FIRST_ID + 2);
        assert_eq!(plan.create, vec![(a, key(3, 11)), (b, key(3, 12))]);
        assert!(plan.replace.is_empty() && plan.collect.is_empty() && plan.remove.is_empty());
        let nh = |id| Wire::Nexthop {
            id,
            src: None,
            mtu: Some(1340),
        };
        assert_eq!(
            plan.write,
            vec![
                (net("10.0.0.0/27"), nh(b)),
                (net("10.0.0.32/27"), nh(a)),
                (net("10.80.0.1/32"), nh(a)),
                (
                    net("10.200.0.0/16"),
                    Wire::Plain(RouteSpec {
                        via: None,
                        ..via(3, 0)
                    })
                ),
                (net("10.201.0.0/16"), Wire::Plain(RouteSpec::UNREACHABLE)),
            ]
        );
        assert_eq!(
            plan.report,
            RouteReport {
                added: 5,
                updated: 0,
                removed: 0
            }
        );
    }

    #[test]
    fn without_nexthops_everything_is_plain() {
        let desired = BTreeMap::from([(net("10.0.0.0/27"), via(3, 12))]);
        let plan = plan(None, &BTreeMap::new(), &desired);
        assert_eq!(
            plan.write,
            vec![(net("10.0.0.0/27"), Wire::Plain(via(3, 12)))]
        );
        assert!(plan.create.is_empty());
        // A route already plain and equal is left alone.
        let current = BTreeMap::from([(net("10.0.0.0/27"), installed(via(3, 12), None))]);
        assert_eq!(super::plan(None, &current, &desired), Plan::default());
    }

    #[test]
    fn a_settled_state_writes_nothing() {
        let table = NexthopTable::new([ours(7, key(3, 11))]);
        let desired = BTreeMap::from([
            (net("10.0.0.0/27"), via(3, 11)),
            (net("10.80.0.1/32"), via(3, 11)),
        ]);
        let current = desired
            .iter()
            .map(|(n, s)| (*n, installed(*s, Some(7))))
            .collect();
        assert_eq!(plan(Some(&table), &current, &desired), Plan::default());
    }

    /// A node's IP changes: its nexthop is pointed at the new IP and both its routes follow
    /// without being written; they count as updated.
    #[test]
    fn a_gateway_change_replaces_the_nexthop_in_place() {
        let table = NexthopTable::new([ours(7, key(3, 11)), ours(8, key(3, 12))]);
        let current = BTreeMap::from([
            (net("10.0.0.0/27"), installed(via(3, 11), Some(7))),
            (net("10.80.0.1/32"), installed(via(3, 11), Some(7))),
            (net("10.0.0.32/27"), installed(via(3, 12), Some(8))),
        ]);
        let mut desired: BTreeMap<_, _> = current.iter().map(|(n, i)| (*n, i.spec)).collect();
        desired.insert(net("10.0.0.0/27"), via(3, 21));
        desired.insert(net("10.80.0.1/32"), via(3, 21));
        let plan = plan(Some(&table), &current, &desired);
        assert_eq!(plan.replace, vec![(7, key(3, 21))]);
        assert!(plan.create.is_empty() && plan.write.is_empty() && plan.collect.is_empty());
        assert_eq!(
            plan.report,
            RouteReport {
                added: 0,
                updated: 2,
                removed: 0
            }
        );
    }

    /// Routes of one nexthop going to two new gateways (or one of them removed and the other
    /// moved) do not reuse it: new nexthops, routes written, the old one collected.
    #[test]
    fn a_split_nexthop_is_not_replaced_in_place() {
        let table = NexthopTable::new([ours(7, key(3, 11))]);
        let current = BTreeMap::from([
            (net("10.0.0.0/27"), installed(via(3, 11), Some(7))),
            (net("10.80.0.1/32"), installed(via(3, 11), Some(7))),
        ]);
        let desired = BTreeMap::from([
            (net("10.0.0.0/27"), via(3, 21)),
            (net("10.80.0.1/32"), via(3, 22)),
        ]);
        let split = plan(Some(&table), &current, &desired);
        assert!(split.replace.is_empty());
        assert_eq!(
            split.create,
            vec![(FIRST_ID, key(3, 21)), (FIRST_ID + 1, key(3, 22))]
        );
        assert_eq!(split.write.len(), 2);
        assert_eq!(split.collect, vec![7]);

        let desired = BTreeMap::from([(net("10.0.0.0/27"), via(3, 21))]);
        let partly_removed = plan(Some(&table), &current, &desired);
        assert!(partly_removed.replace.is_empty());
        assert_eq!(partly_removed.create, vec![(FIRST_ID, key(3, 21))]);
        assert_eq!(
            partly_removed.remove,
            vec![(net("10.80.0.1/32"), via(3, 11))]
        );
        assert_eq!(partly_removed.collect, vec![7]);
    }

    /// Plain routes left by an older version, a route on a duplicate nexthop and a foreign
    /// nexthop: rewritten onto the canonical ones, duplicates collected, foreign ones kept.
    #[test]
    fn a_full_sync_moves_routes_onto_canonical_nexthops() {
        let foreign = Nexthop {
            id: 3,
            protocol: 4,
            key: Some(key(3, 11)),
        };
        let table = NexthopTable::new([foreign, ours(7, key(3, 11)), ours(9, key(3, 11))]);
        let current = BTreeMap::from([
            (net("10.0.0.0/27"), installed(via(3, 11), None)),
            (net("10.80.0.1/32"), installed(via(3, 11), Some(9))),
            (net("10.80.0.2/32"), installed(via(3, 11), Some(7))),
        ]);
        let desired = current.iter().map(|(n, i)| (*n, i.spec)).collect();
        let plan = plan(Some(&table), &current, &desired);
        let nh7 = Wire::Nexthop {
            id: 7,
            src: None,
            mtu: Some(1340),
        };
        assert_eq!(
            plan.write,
            vec![(net("10.0.0.0/27"), nh7), (net("10.80.0.1/32"), nh7)]
        );
        assert_eq!(plan.collect, vec![9]);
        assert!(plan.create.is_empty() && plan.replace.is_empty());
        assert_eq!(
            plan.report,
            RouteReport {
                added: 0,
                updated: 2,
                removed: 0
            }
        );
    }

    #[test]
    fn removing_every_route_collects_every_nexthop() {
        let table = NexthopTable::new([ours(7, key(3, 11)), ours(8, key(4, 11))]);
        let current = BTreeMap::from([
            (net("10.0.0.0/27"), installed(via(3, 11), Some(7))),
            (net("10.0.0.32/27"), installed(via(4, 11), Some(8))),
            (
                net("10.201.0.0/16"),
                installed(RouteSpec::UNREACHABLE, None),
            ),
        ]);
        let plan = plan(Some(&table), &current, &BTreeMap::new());
        assert_eq!(plan.remove.len(), 3);
        assert_eq!(plan.collect, vec![7, 8]);
        assert!(plan.write.is_empty());
    }
}
