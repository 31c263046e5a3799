//! Incremental updates of the Geneve maps: from the state as last synced, which the caller
//! keeps, to a new desired state, touching only the difference and reading nothing back. The
//! full read-back ([`GeneveMaps::sync_routes`], [`GeneveMaps::sync_peers`]) stays for startup
//! and the periodic apply that repairs drift.
use std::{collections::BTreeMap, net::Ipv4Addr};

use ipnet::Ipv4Net;

use crate::{
    geneve::{Delivery, GeneveError, GeneveMaps, RouteTarget, Vni, peer_value, route_values},
    nat_tables::SyncReport,
};

impl GeneveMaps {
    /// Goes from `current` (the route map as last synced: the caller vouches for it) to
    /// `desired`; inserts and updates before removals, as [`Self::sync_routes`].
    pub fn update_routes(
        &mut self,
        current: &BTreeMap<Ipv4Net, RouteTarget>,
        desired: &BTreeMap<Ipv4Net, RouteTarget>,
    ) -> Result<SyncReport, GeneveError> {
        self.write_route_diff(&route_values(current), &route_values(desired))
    }

    /// Goes from `current` (the accepted peers as last synced) to `desired`, markers included
    /// as [`Self::sync_peers`] keeps them.
    pub fn update_peers(
        &mut self,
        current: &BTreeMap<(Ipv4Addr, Vni), Delivery>,
        desired: &BTreeMap<(Ipv4Addr, Vni), Delivery>,
    ) -> Result<SyncReport, GeneveError> {
        let current = current.iter().map(|(k, d)| (*k, peer_value(*d))).collect();
        self.write_peer_diff(&current, desired)
    }
}
