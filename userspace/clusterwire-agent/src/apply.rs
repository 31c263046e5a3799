//! Applying an [`AgentDesired`] to this node: kernel routes (remote CIDRs toward each gateway,
//! carrying the tunnel MTU), the Geneve route and peer maps, and the node's internal address.
//!
//! How a route reaches a gateway depends on the Geneve end (`clusterwire_daemon::geneve`):
//! through the kernel `collect_md` device, whose egress program sets the tunnel key, or, in
//! eBPF mode, out of the device the node uses to reach that gateway pod (the underlay, or the
//! pod's veth when the gateway runs on this node) with the same next hop, where
//! `cw_geneve_encap` encapsulates and `cw_geneve_decap` takes the gateway's answers.
//! Attachments are O(gateways), never O(pods).
//!
//! A **full** apply (at startup, periodically, and while something is missing) reads the maps
//! and the kernel's routes back, asks the kernel again how each gateway pod is reached and
//! repairs drift; an **incremental** one (on a change of the resources) writes only the
//! difference from what the last apply wrote ([`Written`]) and asks the kernel only about new
//! gateway pods.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
};

use anyhow::Context as _;
use clusterwire_daemon::{
    geneve::{GeneveEnd, GenevePath},
    net::{Net, RouteSpec},
};
use clusterwire_dataplane::{
    Instance,
    geneve::{Delivery, GeneveMaps, RouteTarget, Vni},
};
use clusterwire_fabric::desired::AgentDesired;
use ipnet::Ipv4Net;
use tracing::warn;

use crate::bypass::Bypass;

/// The node's applied state.
pub struct Node {
    pub net: Net,
    pub instance: Instance,
    pub geneve: GeneveMaps,
    pub end: GeneveEnd,
    pub bypass: Bypass,
    /// What the last successful apply wrote; `None` at startup and after a failed apply (the
    /// next apply is then a full one).
    written: Option<Written>,
}

/// The maps and routes as the last successful apply left them.
#[derive(Debug, Default)]
struct Written {
    tunnel: BTreeMap<Ipv4Net, RouteTarget>,
    peers: BTreeMap<(Ipv4Addr, Vni), Delivery>,
    routes: BTreeMap<Ipv4Net, RouteSpec>,
}

/// What one apply changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub routes: (usize, usize, usize),
    pub geneve_routes: (usize, usize, usize),
    pub peers: (usize, usize, usize),
    pub unreachable_gateways: Vec<Ipv4Addr>,
    /// The CNI-masquerade bypass was rewritten.
    pub bypass: bool,
    /// Why the CNI-masquerade bypass could not be applied (pod sources may be masqueraded).
    pub bypass_error: Option<String>,
}

impl Applied {
    pub fn changed(&self) -> bool {
        self.routes != (0, 0, 0)
            || self.geneve_routes != (0, 0, 0)
            || self.peers != (0, 0, 0)
            || self.bypass
    }
}

impl Node {
    pub fn new(net: Net, instance: Instance, geneve: GeneveMaps, end: GeneveEnd) -> Self {
        Self {
            net,
            instance,
            geneve,
            end,
            bypass: Bypass::default(),
            written: None,
        }
    }

    /// Whether the next apply must be a full one (nothing known to be written: startup, or
    /// the last apply failed).
    pub fn needs_full(&self) -> bool {
        self.written.is_none()
    }

    /// Applies `desired`: a full apply when `full` (or when nothing is known to be written),
    /// else an incremental one (see the module's doc).
    pub async fn apply(&mut self, desired: &AgentDesired, full: bool) -> anyhow::Result<Applied> {
        let last = self.written.take().filter(|_| !full);
        if last.is_none() {
            self.end.forget_paths();
        }
        if let Some(address) = desired.internal_address {
            let lo = self.net.link_index("lo").await?.context("no lo device")?;
            self.net
                .ensure_address(lo, Ipv4Net::new(address, 32)?)
                .await?;
        }
        let mut applied = Applied::default();
        // How each gateway pod is reached from here.
        let mut paths: BTreeMap<Ipv4Addr, GenevePath> = BTreeMap::new();
        let mut peers = BTreeMap::new();
        for gateway in desired.gateways.values() {
            let ip = gateway.gateway_ip;
            let vni = Vni::try_new(gateway.vni.get())?;
            let path = self
                .end
                .path(
                    &self.net,
                    &mut self.instance,
                    ip,
                    vni,
                    u32::from(gateway.mtu),
                    desired.internal_address,
                )
                .await?;
            let Some(path) = path else {
                warn!(gateway = %ip, "no route to the gateway pod; its CIDRs are not routed yet");
                applied.unreachable_gateways.push(ip);
                continue;
            };
            if path.decap_peer {
                peers.insert((ip, vni), Delivery::InPlace);
            }
            paths.insert(ip, path);
        }
        let mut routes = BTreeMap::new();
        let mut tunnel = BTreeMap::new();
        for (cidr, route) in &desired.routes {
            let Some(path) = paths.get(&route.gateway_ip) else {
                continue;
            };
            let mut spec = path.route;
            spec.mtu = Some(u32::from(route.mtu));
            routes.insert(*cidr, spec);
            let mut target = path.target;
            target.route.vni = Vni::try_new(route.vni.get())?;
            tunnel.insert(*cidr, target);
        }
        // Geneve maps before kernel routes: a packet routed toward the gateway always finds
        // its tunnel entry.
        let (r, p) = match &last {
            Some(last) => (
                self.geneve.update_routes(&last.tunnel, &tunnel)?,
                self.geneve.update_peers(&last.peers, &peers)?,
            ),
            None => (
                self.geneve.sync_routes(&tunnel)?,
                self.geneve.sync_peers(&peers)?,
            ),
        };
        applied.geneve_routes = (r.added, r.updated, r.removed);
        applied.peers = (p.added, p.updated, p.removed);
        // Untracked before routed: the CNI's masquerade never sees a packet to a remote CIDR.
        let remote: BTreeSet<Ipv4Net> = routes.keys().copied().collect();
        match self.bypass.sync(&remote, last.is_none()) {
            Ok(changed) => applied.bypass = changed,
            Err(e) => applied.bypass_error = Some(format!("{e:#}")),
        }
        let k = match &last {
            Some(last) => self.net.update_routes(&last.routes, &routes).await?,
            None => self.net.sync_routes(&routes).await?,
        };
        applied.routes = (k.added, k.updated, k.removed);
        self.written = Some(Written {
            tunnel,
            peers,
            routes,
        });
        Ok(applied)
    }
}
