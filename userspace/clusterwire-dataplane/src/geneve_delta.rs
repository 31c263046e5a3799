//! Incremental updates of the Geneve maps: from the state as last synced, which the caller
//! keeps, to a new desired state, touching only the difference and reading nothing back. The
//! full read-back ([`GeneveMaps::sync_routes`], [`GeneveMaps::sync_peers`]) stays for startup
//! and the periodic apply that repairs drift.
use std::{collections::BTreeMap, net::Ipv4Addr};

use aya::maps::MapError;
use ipnet::Ipv4Net;

use crate::{
    geneve::{Delivery, GeneveError, GeneveMaps, RouteTarget, Vni},
    nat_tables::{Diff, SyncReport},
};

impl GeneveMaps {
    /// Goes from `current` (the route map as last synced: the caller vouches for it) to
    /// `desired`; inserts and updates before removals, as [`Self::sync_routes`].
    pub fn update_routes(
        &mut self,
        current: &BTreeMap<Ipv4Net, RouteTarget>,
        desired: &BTreeMap<Ipv4Net, RouteTarget>,
    ) -> Result<SyncReport, GeneveError> {
        let current: BTreeMap<Ipv4Net, RouteTarget> =
            current.iter().map(|(net, t)| (net.trunc(), *t)).collect();
        let desired: BTreeMap<Ipv4Net, RouteTarget> =
            desired.iter().map(|(net, t)| (net.trunc(), *t)).collect();
        let diff = Diff::of(&current, &desired);
        for (net, target) in diff.upserts(&desired) {
            match target.inner_dst_mac {
                Some(mac) => self.set_route_to_kernel_device(
                    net.network(),
                    net.prefix_len(),
                    target.route,
                    mac,
                )?,
                None => self.set_route(net.network(), net.prefix_len(), target.route)?,
            }
        }
        for net in &diff.removed {
            match self.remove_route(net.network(), net.prefix_len()) {
                Ok(())
                | Err(GeneveError::Map {
                    source: MapError::KeyNotFound,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(diff.report())
    }

    /// Goes from `current` (the accepted peers as last synced) to `desired`, markers included
    /// as [`Self::sync_peers`] keeps them.
    pub fn update_peers(
        &mut self,
        current: &BTreeMap<(Ipv4Addr, Vni), Delivery>,
        desired: &BTreeMap<(Ipv4Addr, Vni), Delivery>,
    ) -> Result<SyncReport, GeneveError> {
        let diff = Diff::of(current, desired);
        for ((remote, vni), delivery) in diff.upserts(desired) {
            self.allow_peer(remote, vni, delivery)?;
        }
        for (remote, vni) in &diff.removed {
            self.remove_peer(*remote, *vni)?;
        }
        Ok(diff.report())
    }
}
