//! Values the unit tests of the route planner and writer share.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{
    ROUTE_PROTOCOL, RouteSpec,
    nexthop::{Nexthop, NexthopKey},
    plan::{Installed, key_of},
};

pub(super) fn net(s: &str) -> Ipv4Net {
    s.parse().expect("prefix")
}

/// A route through 192.168.0.`last` on `oif`, MTU 1340.
pub(super) fn via(oif: u32, last: u8) -> RouteSpec {
    RouteSpec {
        oif,
        via: Some(Ipv4Addr::new(192, 168, 0, last)),
        src: None,
        mtu: Some(1340),
        onlink: false,
    }
}

/// The nexthop key of [`via`].
pub(super) fn key(oif: u32, last: u8) -> NexthopKey {
    key_of(&via(oif, last)).expect("a key")
}

/// A nexthop of ours.
pub(super) fn ours(id: u32, key: NexthopKey) -> Nexthop {
    Nexthop {
        id,
        protocol: ROUTE_PROTOCOL,
        key: Some(key),
    }
}

pub(super) fn installed(spec: RouteSpec, nhid: Option<u32>) -> Installed {
    Installed { spec, nhid }
}
