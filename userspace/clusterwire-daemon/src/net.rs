//! Links, addresses and routes over rtnetlink, in the calling thread's network namespace.
//!
//! Routes a daemon owns carry clusterwire's route protocol number ([`ROUTE_PROTOCOL`]), so
//! [`Net::sync_routes`] finds its own routes in the kernel (no state file) and changes only the
//! difference: a restarted daemon converges without touching routes that are already right.
use std::{collections::BTreeMap, net::Ipv4Addr};

use futures::TryStreamExt as _;
use ipnet::Ipv4Net;
use rtnetlink::{
    Handle, LinkUnspec, LinkVeth, RouteMessageBuilder,
    packet_route::{
        AddressFamily,
        address::AddressAttribute,
        link::{LinkAttribute, LinkMessage},
        route::{
            RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteMetric, RouteProtocol,
            RouteType,
        },
    },
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

/// An rtnetlink connection.
#[derive(Debug, Clone)]
pub struct Net {
    handle: Handle,
}

impl Net {
    /// Opens a connection and spawns its driver on the current tokio runtime.
    pub fn connect() -> std::io::Result<Self> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        Ok(Self { handle })
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
            Ok(Some(route)) => Ok(parse_route(&route).map(|(_, spec)| (spec.oif, spec.via))),
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

    /// clusterwire's IPv4 routes in the main table.
    pub async fn routes(&self) -> Result<BTreeMap<Ipv4Net, RouteSpec>, NetError> {
        let message = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let mut stream = self.handle.route().get(message).execute();
        let mut out = BTreeMap::new();
        loop {
            let route = match stream.try_next().await {
                Ok(Some(route)) => route,
                Ok(None) => break,
                Err(source) => {
                    return Err(NetError {
                        action: "list routes",
                        target: "main table".to_owned(),
                        source,
                    });
                }
            };
            if u8::from(route.header.protocol) != ROUTE_PROTOCOL
                || route.header.address_family != AddressFamily::Inet
            {
                continue;
            }
            if let Some((net, spec)) = parse_route(&route) {
                out.insert(net, spec);
            }
        }
        Ok(out)
    }

    /// Makes clusterwire's routes exactly `desired`: reads them all back from the kernel, then
    /// adds and replaces first, then removes. Repairs any drift (a route deleted or changed by
    /// someone else).
    pub async fn sync_routes(
        &self,
        desired: &BTreeMap<Ipv4Net, RouteSpec>,
    ) -> Result<RouteReport, NetError> {
        let current = self.routes().await?;
        self.update_routes(&current, desired).await
    }

    /// Goes from `current` (clusterwire's routes as last synced: the caller vouches for it) to
    /// `desired` without reading the kernel's routes back: only the difference is written, in
    /// the order of [`Self::sync_routes`]. A route of `current` already gone is fine.
    pub async fn update_routes(
        &self,
        current: &BTreeMap<Ipv4Net, RouteSpec>,
        desired: &BTreeMap<Ipv4Net, RouteSpec>,
    ) -> Result<RouteReport, NetError> {
        let mut report = RouteReport::default();
        for (net, spec) in desired {
            match current.get(net) {
                Some(have) if have == spec => continue,
                Some(_) => report.updated += 1,
                None => report.added += 1,
            }
            self.handle
                .route()
                .add(route_message(*net, *spec))
                .replace()
                .execute()
                .await
                .map_err(|source| NetError {
                    action: "add route",
                    target: net.to_string(),
                    source,
                })?;
        }
        for (net, spec) in current {
            if desired.contains_key(net) {
                continue;
            }
            match self
                .handle
                .route()
                .del(route_message(*net, *spec))
                .execute()
                .await
            {
                Ok(()) => report.removed += 1,
                Err(e) if code(&e) == Some(ESRCH) => {}
                Err(source) => {
                    return Err(NetError {
                        action: "delete route",
                        target: net.to_string(),
                        source,
                    });
                }
            }
        }
        Ok(report)
    }
}

fn route_message(net: Ipv4Net, spec: RouteSpec) -> RouteMessage {
    let mut builder = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(net.network(), net.prefix_len())
        .protocol(RouteProtocol::from(ROUTE_PROTOCOL))
        .priority(ROUTE_METRIC);
    builder = if spec.oif == 0 {
        builder.kind(RouteType::Unreachable)
    } else {
        builder.output_interface(spec.oif)
    };
    if let Some(via) = spec.via {
        builder = builder.gateway(via);
    }
    if let Some(src) = spec.src {
        builder = builder.pref_source(src);
    }
    let mut message = builder.build();
    if spec.onlink {
        message.header.flags |= RouteFlags::Onlink;
    }
    if let Some(mtu) = spec.mtu {
        message
            .attributes
            .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(mtu)]));
    }
    message
}

fn parse_route(route: &RouteMessage) -> Option<(Ipv4Net, RouteSpec)> {
    let mut dst = Ipv4Addr::UNSPECIFIED;
    let mut spec = RouteSpec {
        onlink: route.header.flags.contains(RouteFlags::Onlink),
        ..RouteSpec::UNREACHABLE
    };
    for attribute in &route.attributes {
        match attribute {
            RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = *a,
            RouteAttribute::Oif(i) => spec.oif = *i,
            RouteAttribute::Gateway(RouteAddress::Inet(a)) => spec.via = Some(*a),
            RouteAttribute::PrefSource(RouteAddress::Inet(a)) => spec.src = Some(*a),
            RouteAttribute::Metrics(metrics) => {
                spec.mtu = metrics.iter().find_map(|m| match m {
                    RouteMetric::Mtu(mtu) => Some(*mtu),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    let net = Ipv4Net::new(dst, route.header.destination_prefix_length).ok()?;
    Some((net, spec))
}
