//! Links, addresses and routes over rtnetlink, in the calling thread's network namespace.
//!
//! Routes a daemon owns carry clusterwire's route protocol number ([`ROUTE_PROTOCOL`]), so
//! [`Net::sync_routes`] finds its own routes in the kernel (no state file) and changes only the
//! difference: a restarted daemon converges without touching routes that are already right.
//! Routes through a gateway go through nexthop objects of the same protocol, written with
//! requests pipelined ([`routes`] says why and how).
mod nexthop;
mod plan;
mod routes;

use std::{collections::BTreeMap, net::Ipv4Addr, sync::Arc};

use futures::TryStreamExt as _;
use ipnet::Ipv4Net;
use rtnetlink::{
    Handle, LinkUnspec, LinkVeth, RouteMessageBuilder,
    packet_route::{
        address::AddressAttribute,
        link::{LinkAttribute, LinkMessage},
    },
    proto::ConnectionHandle,
    sys::protocols::NETLINK_ROUTE,
};

use self::{
    nexthop::NexthopMessage,
    routes::{NexthopState, parse_route},
};

/// Route protocol number marking clusterwire's routes (`ip route show proto 203`).
pub const ROUTE_PROTOCOL: u8 = 203;
/// Metric of clusterwire's routes: never equal to a connected or CNI route's (0), so adding ours
/// never replaces one of theirs for the same prefix (theirs wins where both exist).
pub const ROUTE_METRIC: u32 = 50;

const ENODEV: i32 = 19;
const EEXIST: i32 = 17;
const ESRCH: i32 = 3;
const ENETUNREACH: i32 = 101;

/// A netlink operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("{action} {target}: netlink error")]
pub struct NetError {
    /// What was being done.
    pub action: &'static str,
    /// On what (device name, prefix).
    pub target: String,
    /// Why.
    #[source]
    pub source: rtnetlink::Error,
}

fn code(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

/// Why the underlay device cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UnderlayError {
    /// No such device.
    #[error("no underlay device {0}")]
    NoDevice(String),
    /// The device has no IPv4 address.
    #[error("the underlay device {0} has no IPv4 address")]
    NoAddress(String),
    /// Asking the kernel failed.
    #[error(transparent)]
    Net(#[from] NetError),
}

/// One route: where a prefix goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// Output device; 0 for an unreachable route ([`RouteSpec::UNREACHABLE`]).
    pub oif: u32,
    /// Next hop, if not directly connected.
    pub via: Option<Ipv4Addr>,
    /// Preferred source address.
    pub src: Option<Ipv4Addr>,
    /// Path MTU carried by the route (senders get frag-needed above it).
    pub mtu: Option<u32>,
    /// The next hop is on the device without a connected route to it (`onlink`).
    pub onlink: bool,
}

impl RouteSpec {
    /// An unreachable route: the kernel drops what matches and answers ICMP net unreachable
    /// (for a prefix that must not fall through to a less specific route).
    pub const UNREACHABLE: Self = Self {
        oif: 0,
        via: None,
        src: None,
        mtu: None,
        onlink: false,
    };
}

/// What [`Net::sync_routes`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouteReport {
    /// Routes added.
    pub added: usize,
    /// Routes replaced.
    pub updated: usize,
    /// Routes removed.
    pub removed: usize,
}

/// An rtnetlink connection (and a second one for nexthop objects, which the rtnetlink crate
/// does not know). Clones share both and the nexthop table; route writes are serialized.
#[derive(Debug, Clone)]
pub struct Net {
    handle: Handle,
    nexthops: ConnectionHandle<NexthopMessage>,
    state: Arc<tokio::sync::Mutex<NexthopState>>,
}

impl Net {
    /// Opens the connections and spawns their drivers on the current tokio runtime.
    pub fn connect() -> std::io::Result<Self> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        let (connection, nexthops, _) =
            rtnetlink::proto::new_connection::<NexthopMessage>(NETLINK_ROUTE)?;
        tokio::spawn(connection);
        Ok(Self {
            handle,
            nexthops,
            state: Arc::default(),
        })
    }

    /// The rtnetlink handle (for link kinds this module does not cover).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The index of `name`, `None` if there is no such device.
    pub async fn link_index(&self, name: &str) -> Result<Option<u32>, NetError> {
        Ok(self.link(name).await?.map(|l| l.header.index))
    }

    async fn link(&self, name: &str) -> Result<Option<LinkMessage>, NetError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(link) => Ok(link),
            Err(e) if code(&e) == Some(ENODEV) => Ok(None),
            Err(source) => Err(NetError {
                action: "get link",
                target: name.to_owned(),
                source,
            }),
        }
    }

    /// The MAC address of `name`.
    pub async fn link_mac(&self, name: &str) -> Result<Option<[u8; 6]>, NetError> {
        Ok(self.link(name).await?.and_then(|l| {
            l.attributes.iter().find_map(|a| match a {
                LinkAttribute::Address(mac) => <[u8; 6]>::try_from(mac.as_slice()).ok(),
                _ => None,
            })
        }))
    }

    /// Creates the veth pair `name`/`peer` if `name` does not exist; returns `name`'s index.
    pub async fn ensure_veth(&self, name: &str, peer: &str) -> Result<u32, NetError> {
        if let Some(index) = self.link_index(name).await? {
            return Ok(index);
        }
        let err = |source| NetError {
            action: "create veth",
            target: name.to_owned(),
            source,
        };
        self.handle
            .link()
            .add(LinkVeth::new(name, peer).build())
            .execute()
            .await
            .map_err(err)?;
        self.link_index(name).await?.ok_or_else(|| NetError {
            action: "find created veth",
            target: name.to_owned(),
            source: rtnetlink::Error::RequestFailed,
        })
    }

    /// Sets the MTU (if given) and brings the device up.
    pub async fn set_up(&self, name: &str, mtu: Option<u32>) -> Result<(), NetError> {
        let mut message = LinkUnspec::new_with_name(name).up();
        if let Some(mtu) = mtu {
            message = message.mtu(mtu);
        }
        self.handle
            .link()
            .set(message.build())
            .execute()
            .await
            .map_err(|source| NetError {
                action: "set link up",
                target: name.to_owned(),
                source,
            })
    }

    /// Deletes the device `name` if it exists.
    pub async fn delete_link(&self, name: &str) -> Result<(), NetError> {
        if let Some(index) = self.link_index(name).await? {
            match self.handle.link().del(index).execute().await {
                Ok(()) => {}
                Err(e) if code(&e) == Some(ENODEV) => {}
                Err(source) => {
                    return Err(NetError {
                        action: "delete link",
                        target: name.to_owned(),
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Adds `address` to the device `index` (an address already there is fine).
    pub async fn ensure_address(&self, index: u32, address: Ipv4Net) -> Result<(), NetError> {
        match self
            .handle
            .address()
            .add(index, address.addr().into(), address.prefix_len())
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if code(&e) == Some(EEXIST) => Ok(()),
            Err(source) => Err(NetError {
                action: "add address",
                target: address.to_string(),
                source,
            }),
        }
    }

    /// Sets a permanent neighbour entry: `ip` on device `index` is `mac` (replacing one there).
    pub async fn set_neighbour(
        &self,
        index: u32,
        ip: Ipv4Addr,
        mac: [u8; 6],
    ) -> Result<(), NetError> {
        self.handle
            .neighbours()
            .add(index, ip.into())
            .link_layer_address(&mac)
            .replace()
            .execute()
            .await
            .map_err(|source| NetError {
                action: "set neighbour",
                target: format!("{ip} on index {index}"),
                source,
            })
    }

    /// The kernel's route to `dst` (a lookup, as `ip route get`): output device and next hop
    /// (`None` when `dst` is on-link).
    pub async fn route_to(
        &self,
        dst: Ipv4Addr,
    ) -> Result<Option<(u32, Option<Ipv4Addr>)>, NetError> {
        let message = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dst, 32)
            .build();
        let mut routes = self.handle.route().get(message).execute();
        match routes.try_next().await {
            Ok(Some(route)) => Ok(parse_route(&route, None).map(|(_, i)| (i.spec.oif, i.spec.via))),
            Ok(None) => Ok(None),
            Err(e) if matches!(code(&e), Some(ESRCH | ENETUNREACH)) => Ok(None),
            Err(source) => Err(NetError {
                action: "route get",
                target: dst.to_string(),
                source,
            }),
        }
    }

    /// The name of the device `index`.
    pub async fn link_name(&self, index: u32) -> Result<Option<String>, NetError> {
        let mut links = self.handle.link().get().match_index(index).execute();
        match links.try_next().await {
            Ok(link) => Ok(link.and_then(|l| {
                l.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(name) => Some(name),
                    _ => None,
                })
            })),
            Err(e) if code(&e) == Some(ENODEV) => Ok(None),
            Err(source) => Err(NetError {
                action: "get link",
                target: format!("index {index}"),
                source,
            }),
        }
    }

    /// The index and first IPv4 address of the underlay device `name` (the source of Geneve
    /// encapsulation), with a clear error when either is missing.
    pub async fn underlay(&self, name: &str) -> Result<(u32, Ipv4Addr), UnderlayError> {
        let index = self
            .link_index(name)
            .await?
            .ok_or_else(|| UnderlayError::NoDevice(name.to_owned()))?;
        let address = self
            .link_ipv4(index)
            .await?
            .ok_or_else(|| UnderlayError::NoAddress(name.to_owned()))?;
        Ok((index, address))
    }

    /// The first IPv4 address of the device `index`.
    pub async fn link_ipv4(&self, index: u32) -> Result<Option<Ipv4Addr>, NetError> {
        let mut addresses = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        loop {
            match addresses.try_next().await {
                Ok(Some(message)) => {
                    if let Some(addr) = message.attributes.iter().find_map(|a| match a {
                        AddressAttribute::Address(std::net::IpAddr::V4(a)) => Some(*a),
                        _ => None,
                    }) {
                        return Ok(Some(addr));
                    }
                }
                Ok(None) => return Ok(None),
                Err(source) => {
                    return Err(NetError {
                        action: "list addresses",
                        target: format!("index {index}"),
                        source,
                    });
                }
            }
        }
    }

    /// clusterwire's IPv4 routes in the main table; a route through a nexthop object is
    /// reported with that nexthop's device and gateway.
    pub async fn routes(&self) -> Result<BTreeMap<Ipv4Net, RouteSpec>, NetError> {
        self.read_routes().await
    }

    /// Makes clusterwire's routes exactly `desired`: reads them (and the nexthops) all back
    /// from the kernel, then adds and replaces first, then removes (and removes our nexthops no
    /// route uses any more). Repairs any drift (a route or nexthop deleted or changed by
    /// someone else, plain routes left by an older version).
    pub async fn sync_routes(
        &self,
        desired: &BTreeMap<Ipv4Net, RouteSpec>,
    ) -> Result<RouteReport, NetError> {
        self.sync(desired).await
    }

    /// Goes from `current` (clusterwire's routes as last synced: the caller vouches for it) to
    /// `desired` without reading the kernel's routes back: only the difference is written, in
    /// the order of [`Self::sync_routes`]. A route of `current` already gone is fine. Requests
    /// are pipelined; when some fail, the first failing one (in prefix order) is returned, the
    /// others logged, and nothing is removed.
    pub async fn update_routes(
        &self,
        current: &BTreeMap<Ipv4Net, RouteSpec>,
        desired: &BTreeMap<Ipv4Net, RouteSpec>,
    ) -> Result<RouteReport, NetError> {
        self.update(current, desired).await
    }
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod netns_tests;
