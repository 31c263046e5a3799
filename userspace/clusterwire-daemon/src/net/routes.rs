//! Writing clusterwire's routes fast: through nexthop objects, with requests pipelined.
//!
//! The kernel hashes a route's `fib_info` by its protocol, scope, source, metric and device but
//! not by its gateway, so thousands of routes through distinct gateways on one device share one
//! hash bucket and every insert scans it (quadratic: 10,000 routes through 5,000 gateways took
//! ~1 s). A route through a nexthop object is hashed by the nexthop's id instead. So every
//! distinct next hop `(device, gateway, onlink)` of a route becomes one nexthop object of
//! protocol [`ROUTE_PROTOCOL`] and the route carries `RTA_NH_ID`; routes without a gateway and
//! unreachable routes stay plain. A kernel without nexthop objects gets plain routes.
//!
//! Invariant after a successful write: each of our routes with a gateway uses the nexthop of
//! its key with the lowest id (its canonical one), and every nexthop of our protocol is the
//! canonical one of some route. A write [`plan`]s creations, in-place replacements (a nexthop
//! whose every route moves to one new gateway keeps its id, and one request moves them all),
//! route writes, route removals and then the removal of nexthops no route uses any more.
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use futures::{StreamExt as _, TryStreamExt as _};
use ipnet::Ipv4Net;
use rtnetlink::{
    RouteMessageBuilder,
    packet_core::{
        NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
        NetlinkHeader, NetlinkMessage, NetlinkPayload,
    },
    packet_route::{
        AddressFamily,
        route::{
            RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteMetric, RouteProtocol,
            RouteScope, RouteType,
        },
    },
    proto::ConnectionHandle,
    sys::SocketAddr,
};
use tracing::warn;

use super::{
    ESRCH, Net, NetError, ROUTE_METRIC, ROUTE_PROTOCOL, RouteReport, RouteSpec, code,
    nexthop::{Nexthop, NexthopKey, NexthopMessage},
    plan::{Installed, NexthopTable, Plan, Wire, key_of, plan},
};

/// Requests kept in flight on one socket: enough to hide the round trips, few enough that the
/// answers (an error carries the request back) fit the socket's default receive buffer.
const WINDOW: usize = 64;
const ENOENT: i32 = 2;
const EOPNOTSUPP: i32 = 95;

/// Whether the kernel has nexthop objects, and what it holds (shared by every clone of a
/// [`Net`], behind one lock that also serializes route writes).
#[derive(Debug, Default)]
pub(super) struct NexthopState {
    /// `None` until the first dump answered; `Some(false)` when the kernel has no nexthops.
    supported: Option<bool>,
    /// Every nexthop of the namespace as last dumped and written; `None` when it may be stale
    /// (never dumped, or a write failed).
    table: Option<NexthopTable>,
}

fn route_message(net: Ipv4Net, wire: Wire) -> RouteMessage {
    let builder = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(net.network(), net.prefix_len())
        .protocol(RouteProtocol::from(ROUTE_PROTOCOL))
        .priority(ROUTE_METRIC);
    let (mut message, src, mtu) = match wire {
        Wire::Plain(spec) => {
            let mut builder = if spec.oif == 0 {
                builder.kind(RouteType::Unreachable)
            } else {
                builder.output_interface(spec.oif)
            };
            if let Some(via) = spec.via {
                builder = builder.gateway(via);
            }
            let mut message = builder.build();
            if spec.onlink {
                message.header.flags |= RouteFlags::Onlink;
            }
            (message, spec.src, spec.mtu)
        }
        Wire::Nexthop { id, src, mtu } => {
            let mut message = builder.build();
            message.attributes.push(RouteAttribute::NhId(id));
            (message, src, mtu)
        }
    };
    if let Some(src) = src {
        message
            .attributes
            .push(RouteAttribute::PrefSource(RouteAddress::Inet(src)));
    }
    if let Some(mtu) = mtu {
        message
            .attributes
            .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(mtu)]));
    }
    message
}

/// Deletes our route to `net` whatever its next hop (a gateway or a nexthop id in the request
/// would have to match the route's form): prefix, protocol, metric and type identify it.
fn delete_message(net: Ipv4Net, spec: RouteSpec) -> RouteMessage {
    let builder = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(net.network(), net.prefix_len())
        .protocol(RouteProtocol::from(ROUTE_PROTOCOL))
        .priority(ROUTE_METRIC)
        .scope(RouteScope::NoWhere);
    if spec.oif == 0 {
        builder.kind(RouteType::Unreachable).build()
    } else {
        builder.build()
    }
}

/// A dumped route: prefix, meaning (its nexthop's device and gateway when it has one that
/// `table` knows) and nexthop id.
pub(super) fn parse_route(
    route: &RouteMessage,
    table: Option<&NexthopTable>,
) -> Option<(Ipv4Net, Installed)> {
    let mut dst = Ipv4Addr::UNSPECIFIED;
    let mut nhid = None;
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
            RouteAttribute::NhId(id) => nhid = Some(*id),
            RouteAttribute::Metrics(metrics) => {
                spec.mtu = metrics.iter().find_map(|m| match m {
                    RouteMetric::Mtu(mtu) => Some(*mtu),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    if let Some(key) = nhid.and_then(|id| table.and_then(|t| t.key(id))) {
        spec.oif = key.oif;
        spec.via = Some(key.via);
        spec.onlink = key.onlink;
    }
    let net = Ipv4Net::new(dst, route.header.destination_prefix_length).ok()?;
    Some((net, Installed { spec, nhid }))
}

/// Sends one nexthop request and collects what it answers.
async fn nexthop_request(
    handle: ConnectionHandle<NexthopMessage>,
    message: NexthopMessage,
    flags: u16,
) -> Result<Vec<NexthopMessage>, rtnetlink::Error> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | flags;
    let request = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
    let mut answers = handle
        .request(request, SocketAddr::new(0, 0))
        .map_err(|_| rtnetlink::Error::RequestFailed)?;
    let mut out = Vec::new();
    while let Some(answer) = answers.next().await {
        match answer.payload {
            NetlinkPayload::InnerMessage(m) => out.push(m),
            NetlinkPayload::Error(e) if e.code.is_some() => {
                return Err(rtnetlink::Error::NetlinkError(e));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A nexthop that could not be written, for the route that needed it (if any).
fn nexthop_error(net: Option<Ipv4Net>, key: NexthopKey, source: &rtnetlink::Error) -> NetError {
    let NexthopKey { oif, via, onlink } = key;
    let onlink = if onlink { " onlink" } else { "" };
    NetError {
        action: "add nexthop",
        target: match net {
            Some(net) => format!("{net} via {via} dev {oif}{onlink}"),
            None => format!("via {via} dev {oif}{onlink}"),
        },
        source: match source {
            rtnetlink::Error::NetlinkError(e) => rtnetlink::Error::NetlinkError(e.clone()),
            _ => rtnetlink::Error::RequestFailed,
        },
    }
}

/// The first of `errors` in plan order, the others logged.
fn first(mut errors: Vec<(usize, NetError)>) -> Result<(), NetError> {
    errors.sort_by_key(|(order, _)| *order);
    let mut errors = errors.into_iter().map(|(_, e)| e);
    let Some(first) = errors.next() else {
        return Ok(());
    };
    for (n, e) in errors.enumerate() {
        if n == 10 {
            warn!("and more route errors");
            break;
        }
        warn!("also failed: {e}");
    }
    Err(first)
}

impl Net {
    /// Dumps every nexthop, `None` when the kernel has no nexthop objects.
    async fn dump_nexthops(&self) -> Result<Option<NexthopTable>, NetError> {
        match nexthop_request(self.nexthops.clone(), NexthopMessage::dump(), NLM_F_DUMP).await {
            Ok(answers) => Ok(Some(NexthopTable::new(
                answers.iter().filter_map(NexthopMessage::nexthop),
            ))),
            Err(e) if code(&e) == Some(EOPNOTSUPP) => Ok(None),
            Err(source) => Err(NetError {
                action: "list nexthops",
                target: "all".to_owned(),
                source,
            }),
        }
    }

    /// Reads the nexthops into `state` again (unless the kernel has none).
    async fn refresh(&self, state: &mut NexthopState) -> Result<(), NetError> {
        if state.supported == Some(false) {
            return Ok(());
        }
        state.table = self.dump_nexthops().await?;
        if state.table.is_none() {
            warn!(
                "the kernel has no nexthop objects: writing plain routes (slower with many gateways)"
            );
        }
        state.supported = Some(state.table.is_some());
        Ok(())
    }

    /// Our routes in the main table, with their nexthop ids, read through `state`'s table.
    async fn installed(
        &self,
        state: &NexthopState,
    ) -> Result<BTreeMap<Ipv4Net, Installed>, NetError> {
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
            if let Some((net, installed)) = parse_route(&route, state.table.as_ref()) {
                out.insert(net, installed);
            }
        }
        Ok(out)
    }

    pub(super) async fn read_routes(&self) -> Result<BTreeMap<Ipv4Net, RouteSpec>, NetError> {
        let mut state = self.state.lock().await;
        self.refresh(&mut state).await?;
        Ok(self
            .installed(&state)
            .await?
            .into_iter()
            .map(|(net, i)| (net, i.spec))
            .collect())
    }

    pub(super) async fn sync(
        &self,
        desired: &BTreeMap<Ipv4Net, RouteSpec>,
    ) -> Result<RouteReport, NetError> {
        let mut state = self.state.lock().await;
        self.refresh(&mut state).await?;
        let current = self.installed(&state).await?;
        self.apply(&mut state, &current, desired).await
    }

    pub(super) async fn update(
        &self,
        current: &BTreeMap<Ipv4Net, RouteSpec>,
        desired: &BTreeMap<Ipv4Net, RouteSpec>,
    ) -> Result<RouteReport, NetError> {
        let mut state = self.state.lock().await;
        if state.table.is_none() {
            self.refresh(&mut state).await?;
        }
        // The caller vouches for `current`; by the invariant its routes with a gateway use the
        // canonical nexthops.
        let canonical = state
            .table
            .as_ref()
            .map(NexthopTable::canonical)
            .unwrap_or_default();
        let current = current
            .iter()
            .map(|(net, spec)| {
                let nhid = key_of(spec).and_then(|k| canonical.get(&k).copied());
                (*net, Installed { spec: *spec, nhid })
            })
            .collect();
        self.apply(&mut state, &current, desired).await
    }

    async fn apply(
        &self,
        state: &mut NexthopState,
        current: &BTreeMap<Ipv4Net, Installed>,
        desired: &BTreeMap<Ipv4Net, RouteSpec>,
    ) -> Result<RouteReport, NetError> {
        let result = self.apply_plan(state, current, desired).await;
        if result.is_err() {
            state.table = None;
        }
        result
    }

    async fn apply_plan(
        &self,
        state: &mut NexthopState,
        current: &BTreeMap<Ipv4Net, Installed>,
        desired: &BTreeMap<Ipv4Net, RouteSpec>,
    ) -> Result<RouteReport, NetError> {
        let mut plan = plan(state.table.as_ref(), current, desired);
        // Nexthops first: the routes written next refer to them.
        let Some(failed) = self.write_nexthops(state, &plan).await else {
            warn!(
                "the kernel refuses nexthop objects: writing plain routes (slower with many gateways)"
            );
            state.supported = Some(false);
            state.table = None;
            plan = self::plan(None, current, desired);
            self.write_routes(&mut plan, &BTreeMap::new()).await?;
            return self.remove_routes(&plan).await;
        };
        self.write_routes(&mut plan, &failed).await?;
        let report = self.remove_routes(&plan).await?;
        self.collect_nexthops(state, &plan).await?;
        Ok(report)
    }

    /// Creates and replaces the plan's nexthops; returns the failed ones, or `None` when the
    /// kernel refuses nexthop objects altogether.
    async fn write_nexthops(
        &self,
        state: &mut NexthopState,
        plan: &Plan,
    ) -> Option<BTreeMap<u32, (NexthopKey, rtnetlink::Error)>> {
        let nexthops = plan
            .create
            .iter()
            .map(|(id, key)| (*id, *key, NLM_F_CREATE | NLM_F_EXCL))
            .chain(
                plan.replace
                    .iter()
                    .map(|(id, key)| (*id, *key, NLM_F_CREATE | NLM_F_REPLACE)),
            );
        let results: Vec<_> = futures::stream::iter(nexthops)
            .map(|(id, key, flags)| {
                let handle = self.nexthops.clone();
                async move {
                    let message = NexthopMessage::new_nexthop(id, ROUTE_PROTOCOL, key);
                    let result = nexthop_request(handle, message, NLM_F_ACK | flags).await;
                    (id, key, result)
                }
            })
            .buffer_unordered(WINDOW)
            .collect()
            .await;
        let mut failed = BTreeMap::new();
        for (id, key, result) in results {
            match result {
                Ok(_) => {
                    if let Some(table) = state.table.as_mut() {
                        let protocol = ROUTE_PROTOCOL;
                        let key = Some(key);
                        table.entries.insert(id, Nexthop { id, protocol, key });
                    }
                }
                Err(e) if code(&e) == Some(EOPNOTSUPP) => return None,
                Err(source) => {
                    failed.insert(id, (key, source));
                }
            }
        }
        Some(failed)
    }

    /// Adds and replaces the plan's routes, except those through a nexthop in `failed` (each
    /// of those is an error of its own).
    async fn write_routes(
        &self,
        plan: &mut Plan,
        failed: &BTreeMap<u32, (NexthopKey, rtnetlink::Error)>,
    ) -> Result<(), NetError> {
        let mut errors = Vec::new();
        let mut with_routes = BTreeSet::new();
        for (order, (net, wire)) in plan.write.iter().enumerate() {
            if let Wire::Nexthop { id, .. } = wire
                && let Some((key, source)) = failed.get(id)
            {
                with_routes.insert(*id);
                errors.push((order + 1, nexthop_error(Some(*net), *key, source)));
            }
        }
        // A failed in-place replacement has no route to write.
        for (id, (key, source)) in failed {
            if !with_routes.contains(id) {
                errors.push((0, nexthop_error(None, *key, source)));
            }
        }
        plan.write.retain(
            |(_, wire)| !matches!(wire, Wire::Nexthop { id, .. } if failed.contains_key(id)),
        );
        let results: Vec<_> = futures::stream::iter(plan.write.iter().enumerate())
            .map(|(order, (net, wire))| {
                let request = self.handle.route().add(route_message(*net, *wire));
                let request = request.replace();
                async move { (order, *net, request.execute().await) }
            })
            .buffer_unordered(WINDOW)
            .collect()
            .await;
        for (order, net, result) in results {
            if let Err(source) = result {
                let target = net.to_string();
                let action = "add route";
                errors.push((
                    order + 1,
                    NetError {
                        action,
                        target,
                        source,
                    },
                ));
            }
        }
        first(errors)
    }

    /// Deletes the plan's routes (one already gone is fine); the report with the removals.
    async fn remove_routes(&self, plan: &Plan) -> Result<RouteReport, NetError> {
        let mut report = plan.report;
        let results: Vec<_> = futures::stream::iter(plan.remove.iter().enumerate())
            .map(|(order, (net, spec))| {
                let request = self.handle.route().del(delete_message(*net, *spec));
                async move { (order, *net, request.execute().await) }
            })
            .buffer_unordered(WINDOW)
            .collect()
            .await;
        let mut errors = Vec::new();
        for (order, net, result) in results {
            match result {
                Ok(()) => report.removed += 1,
                Err(e) if code(&e) == Some(ESRCH) => {}
                Err(source) => {
                    let target = net.to_string();
                    let action = "delete route";
                    errors.push((
                        order,
                        NetError {
                            action,
                            target,
                            source,
                        },
                    ));
                }
            }
        }
        first(errors)?;
        Ok(report)
    }

    /// Deletes our nexthops no route uses any more (one already gone is fine).
    async fn collect_nexthops(
        &self,
        state: &mut NexthopState,
        plan: &Plan,
    ) -> Result<(), NetError> {
        let results: Vec<_> = futures::stream::iter(plan.collect.iter().copied())
            .map(|id| {
                let handle = self.nexthops.clone();
                async move {
                    let message = NexthopMessage::del_nexthop(id);
                    (id, nexthop_request(handle, message, NLM_F_ACK).await)
                }
            })
            .buffer_unordered(WINDOW)
            .collect()
            .await;
        let mut errors = Vec::new();
        for (id, result) in results {
            match result {
                Err(source) if code(&source) != Some(ENOENT) => {
                    let target = format!("id {id}");
                    let action = "delete nexthop";
                    errors.push((
                        0,
                        NetError {
                            action,
                            target,
                            source,
                        },
                    ));
                }
                _ => {
                    if let Some(table) = state.table.as_mut() {
                        table.entries.remove(&id);
                    }
                }
            }
        }
        first(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::fixtures::{installed, key, net, ours, via};

    #[test]
    fn a_dumped_route_resolves_its_nexthop() {
        let table = NexthopTable::new([ours(
            7,
            NexthopKey {
                onlink: true,
                ..key(3, 11)
            },
        )]);
        let message = route_message(
            net("10.0.0.32/27"),
            Wire::Nexthop {
                id: 7,
                src: Some(Ipv4Addr::new(10, 9, 0, 1)),
                mtu: Some(1340),
            },
        );
        let (prefix, got) = parse_route(&message, Some(&table)).expect("parse");
        assert_eq!(prefix, net("10.0.0.32/27"));
        assert_eq!(
            got,
            installed(
                RouteSpec {
                    src: Some(Ipv4Addr::new(10, 9, 0, 1)),
                    onlink: true,
                    ..via(3, 11)
                },
                Some(7)
            )
        );
        // An unknown id keeps what the route itself says (nothing here).
        let (_, unknown) = parse_route(&message, None).expect("parse");
        assert_eq!(
            (unknown.spec.oif, unknown.spec.via, unknown.nhid),
            (0, None, Some(7))
        );
    }
}
