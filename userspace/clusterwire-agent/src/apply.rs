//! Applying an [`AgentDesired`] to this node: kernel routes (remote CIDRs toward each gateway,
//! carrying the tunnel MTU), the Geneve route and peer maps, and the attachments.
//!
//! In eBPF mode there is no extra device: the route to a remote CIDR goes out of the device the
//! node uses to reach that gateway pod (the underlay, or the pod's veth when the gateway runs on
//! this node), with the same next hop; `cw_geneve_encap` on that device's egress encapsulates to
//! the gateway pod IP, and `cw_geneve_decap` on its ingress (and on the underlay, where gateways
//! of other nodes answer) decapsulates what the gateway sends back. Attachments are O(gateways),
//! never O(pods).
use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
};

use anyhow::Context as _;
use clusterwire_daemon::net::{Net, RouteSpec};
use clusterwire_dataplane::{
    Hook, Instance,
    geneve::{Delivery, GeneveMaps, RouteTarget, TunnelMode, TunnelRoute, Vni},
};
use clusterwire_fabric::desired::AgentDesired;
use ipnet::Ipv4Net;
use tracing::{info, warn};

/// The node's applied state.
pub struct Node {
    pub net: Net,
    pub instance: Instance,
    pub geneve: GeneveMaps,
    pub underlay: String,
    attached: BTreeSet<String>,
}

/// What one apply changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub routes: (usize, usize, usize),
    pub geneve_routes: (usize, usize, usize),
    pub peers: (usize, usize, usize),
    pub unreachable_gateways: Vec<Ipv4Addr>,
}

impl Applied {
    pub fn changed(&self) -> bool {
        self.routes != (0, 0, 0) || self.geneve_routes != (0, 0, 0) || self.peers != (0, 0, 0)
    }
}

impl Node {
    pub fn new(net: Net, instance: Instance, geneve: GeneveMaps, underlay: String) -> Self {
        Self {
            net,
            instance,
            geneve,
            underlay,
            attached: BTreeSet::new(),
        }
    }

    /// Attaches encapsulation and decapsulation to `device` once.
    fn attach(&mut self, device: &str) -> anyhow::Result<()> {
        if self.attached.contains(device) {
            return Ok(());
        }
        for hook in [Hook::GeneveEncap, Hook::GeneveDecap] {
            self.instance
                .attach(hook, device)
                .with_context(|| format!("attaching {hook} to {device}"))?;
        }
        info!(device, "Geneve programs attached");
        self.attached.insert(device.to_owned());
        Ok(())
    }

    pub async fn apply(&mut self, desired: &AgentDesired) -> anyhow::Result<Applied> {
        let underlay = self.underlay.clone();
        self.attach(&underlay)?;
        if let Some(address) = desired.internal_address {
            let lo = self.net.link_index("lo").await?.context("no lo device")?;
            self.net
                .ensure_address(lo, Ipv4Net::new(address, 32)?)
                .await?;
        }
        let mut applied = Applied::default();
        // Where each gateway pod is reached from here.
        let mut paths: BTreeMap<Ipv4Addr, (u32, Ipv4Addr)> = BTreeMap::new();
        let mut peers = BTreeMap::new();
        for gateway in desired.gateways.values() {
            let ip = gateway.gateway_ip;
            let Some((oif, via)) = self.net.route_to(ip).await? else {
                warn!(gateway = %ip, "no route to the gateway pod; its CIDRs are not routed yet");
                applied.unreachable_gateways.push(ip);
                continue;
            };
            let device = self
                .net
                .link_name(oif)
                .await?
                .with_context(|| format!("device {oif} toward gateway {ip}"))?;
            self.attach(&device)?;
            paths.insert(ip, (oif, via.unwrap_or(ip)));
            let vni = Vni::try_new(gateway.vni.get())?;
            peers.insert((ip, vni), Delivery::InPlace);
        }
        let mut routes = BTreeMap::new();
        let mut tunnel = BTreeMap::new();
        for (cidr, route) in &desired.routes {
            let Some((oif, via)) = paths.get(&route.gateway_ip) else {
                continue;
            };
            routes.insert(
                *cidr,
                RouteSpec {
                    oif: *oif,
                    via: Some(*via),
                    src: desired.internal_address,
                    mtu: Some(u32::from(route.mtu)),
                },
            );
            tunnel.insert(
                *cidr,
                RouteTarget {
                    route: TunnelRoute {
                        remote: route.gateway_ip,
                        vni: Vni::try_new(route.vni.get())?,
                        mode: TunnelMode::Native {
                            egress_ifindex: None,
                        },
                    },
                    inner_dst_mac: None,
                },
            );
        }
        // Geneve maps before kernel routes: a packet routed toward the gateway always finds
        // its tunnel entry.
        let r = self.geneve.sync_routes(&tunnel)?;
        applied.geneve_routes = (r.added, r.updated, r.removed);
        let p = self.geneve.sync_peers(&peers)?;
        applied.peers = (p.added, p.updated, p.removed);
        let k = self.net.sync_routes(&routes).await?;
        applied.routes = (k.added, k.updated, k.removed);
        Ok(applied)
    }
}
