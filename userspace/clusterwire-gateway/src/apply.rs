//! Applying a [`GatewayDesired`]: the WireGuard peer, the NAT tables, the Geneve maps toward the
//! local nodes, and the kernel routes (remote CIDRs into the tunnel; local pod CIDRs toward
//! their nodes through the Geneve end, `clusterwire_daemon::geneve`). Every step is a diff, so
//! re-applying the same state writes nothing.
//!
//! Two kinds of apply: a **full** one (at startup and periodically) reads every table and the
//! kernel's routes back, asks the kernel again how each node is reached, and repairs any drift;
//! an **incremental** one (on a change of the resources) diffs the new desired state against
//! the one last written ([`Written`]) and writes only that, asking the kernel only about new
//! nodes. At 5,000 nodes a node joining costs two map entries and two routes instead of
//! 10,000 netlink requests and reading back 30,000 entries.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::{Ipv4Addr, SocketAddr},
};

use anyhow::Context as _;
use clusterwire_daemon::{
    geneve::GeneveEnd,
    net::{Net, RouteSpec},
};
use clusterwire_dataplane::{
    Instance, IpMapKind, NatTables, RemapKind,
    geneve::{Delivery, GeneveMaps, RouteTarget, Vni},
};
use clusterwire_fabric::desired::GatewayDesired;
use clusterwire_links::wireguard::{PeerConfig, PrivateKey, PublicKey, Tunnel, WireGuardConfig};
use ipnet::Ipv4Net;
use tracing::warn;

/// What one apply changed, per table (added, updated, removed).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub nat: [(usize, usize, usize); 4],
    pub geneve_routes: (usize, usize, usize),
    pub geneve_peers: (usize, usize, usize),
    pub routes: (usize, usize, usize),
}

impl Applied {
    pub fn changed(&self) -> bool {
        *self != Self::default()
    }
}

/// The parts of the gateway that `apply` changes.
pub struct Gateway {
    pub net: Net,
    pub tunnel: Tunnel,
    pub tunnel_index: u32,
    pub private_key: PrivateKey,
    pub nat: NatTables,
    pub geneve: GeneveMaps,
    /// Kernel Geneve device or eBPF-native encapsulation toward the nodes.
    pub end: GeneveEnd,
    /// CIDRs of a withdrawn peering, answered with ICMP net unreachable.
    pub unreachable: BTreeSet<Ipv4Net>,
    /// What the last successful apply wrote; `None` at startup and after a failed apply (the
    /// next apply is then a full one).
    pub written: Option<Written>,
}

/// Every table as the last successful apply left it: the base of an incremental apply.
#[derive(Debug, Default)]
pub struct Written {
    remap_dst: BTreeMap<Ipv4Net, Ipv4Net>,
    remap_src: BTreeMap<Ipv4Net, Ipv4Net>,
    ipmap_exit: BTreeMap<Ipv4Addr, Ipv4Addr>,
    ipmap_entry: BTreeMap<Ipv4Addr, Ipv4Addr>,
    tunnel: BTreeMap<Ipv4Net, RouteTarget>,
    peers: BTreeMap<(Ipv4Addr, Vni), Delivery>,
    routes: BTreeMap<Ipv4Net, RouteSpec>,
}

/// Resolves the client's endpoint (DNS names are resolved on every apply, so a moved server is
/// followed).
pub async fn resolve(desired: &GatewayDesired) -> anyhow::Result<Option<SocketAddr>> {
    let Some(endpoint) = &desired.wireguard.peer.endpoint else {
        return Ok(None);
    };
    for address in &endpoint.addresses {
        let target = format!("{address}:{}", endpoint.port);
        match tokio::net::lookup_host(&target).await {
            Ok(mut found) => {
                if let Some(addr) = found.find(SocketAddr::is_ipv4) {
                    return Ok(Some(addr));
                }
            }
            Err(e) => warn!("resolving the server endpoint {target}: {e}"),
        }
    }
    anyhow::bail!(
        "no IPv4 address for the server endpoint {:?}",
        endpoint.addresses
    )
}

/// The WireGuard configuration for `desired`.
pub fn wireguard_config(
    desired: &GatewayDesired,
    private_key: &PrivateKey,
    endpoint: Option<SocketAddr>,
) -> anyhow::Result<WireGuardConfig> {
    let peer = &desired.wireguard.peer;
    Ok(WireGuardConfig {
        private_key: private_key.clone(),
        listen_port: desired.wireguard.listen_port,
        peer: Some(PeerConfig {
            public_key: PublicKey::from_base64(&peer.public_key).context("the peer's PublicKey")?,
            endpoint,
            allowed_ips: peer.allowed_ips.iter().map(|n| (*n).into()).collect(),
            persistent_keepalive: peer.persistent_keepalive_secs,
        }),
    })
}

/// The state of a peering whose Configuration was deleted: no remap (so the tunnel NAT drops
/// everything but the peers' health check) and no route into the tunnel; WireGuard, the health
/// check and the routes toward the local nodes stay, ready for the Configuration to come back.
/// Returns the CIDRs that were routed into the tunnel: they become unreachable routes
/// ([`Gateway::unreachable`]), or packets toward them would loop between the node (which
/// still routes them to this gateway) and the gateway's default route.
pub fn withdraw(desired: &mut GatewayDesired) -> BTreeSet<Ipv4Net> {
    desired.remap_dst.clear();
    desired.remap_src.clear();
    std::mem::take(&mut desired.tunnel_routes)
}

fn triple(r: clusterwire_dataplane::SyncReport) -> (usize, usize, usize) {
    (r.added, r.updated, r.removed)
}

impl Gateway {
    /// Drops the WireGuard peer and adds it again: its session is gone, so the next packet
    /// starts a new handshake at once. A client does this when the server stops answering
    /// (e.g. it restarted and lost the session, which WireGuard alone notices only after
    /// 15 s).
    pub async fn reset_peer(&mut self, desired: &GatewayDesired) -> anyhow::Result<()> {
        let endpoint = resolve(desired).await?;
        let config = wireguard_config(desired, &self.private_key, endpoint)?;
        self.tunnel
            .apply(&WireGuardConfig {
                peer: None,
                ..config.clone()
            })
            .context("removing the WireGuard peer")?;
        self.tunnel
            .apply(&config)
            .context("adding the WireGuard peer again")?;
        Ok(())
    }

    /// Applies `desired`: a full apply when `full` (or when nothing is known to be written),
    /// else an incremental one (see the module's doc).
    pub async fn apply(
        &mut self,
        instance: &mut Instance,
        desired: &GatewayDesired,
        full: bool,
    ) -> anyhow::Result<Applied> {
        // Whatever happens below, what is written is known again only once it succeeded.
        let last = self.written.take().filter(|_| !full);
        if last.is_none() {
            self.end.forget_paths();
        }
        let endpoint = resolve(desired).await?;
        let config = wireguard_config(desired, &self.private_key, endpoint)?;
        self.tunnel
            .apply(&config)
            .context("configuring WireGuard")?;
        let want = self.want(instance, desired).await?;
        let applied = match &last {
            Some(last) => self.update(last, &want).await?,
            None => self.sync(&want).await?,
        };
        self.written = Some(want);
        Ok(applied)
    }

    /// The tables `desired` asks for, with the path toward each node.
    async fn want(
        &mut self,
        instance: &mut Instance,
        desired: &GatewayDesired,
    ) -> anyhow::Result<Written> {
        // The peer gateway's own tunnel address is announced implicitly (the health check
        // comes from it): an identity entry, or anti-spoofing would drop its pongs.
        let mut remap_src = desired.remap_src.clone();
        let peer = Ipv4Net::from(desired.peer_tunnel_address);
        remap_src.insert(peer, peer);
        let mtu = u32::from(desired.wireguard.mtu);
        let mut routes = BTreeMap::new();
        for cidr in &desired.tunnel_routes {
            routes.insert(
                *cidr,
                RouteSpec {
                    oif: self.tunnel_index,
                    via: None,
                    src: None,
                    mtu: Some(mtu),
                    onlink: false,
                },
            );
        }
        let mut tunnel = BTreeMap::new();
        let mut peers = BTreeMap::new();
        if let Some(vni) = desired.vni {
            let vni = Vni::try_new(vni.get())?;
            for (cidr, node) in &desired.node_routes {
                let path = self
                    .end
                    .path(&self.net, instance, node.address, vni, mtu, None)
                    .await?;
                let Some(path) = path else {
                    warn!(node = %node.node, address = %node.address, "no route to the node");
                    continue;
                };
                routes.insert(*cidr, path.route);
                tunnel.insert(*cidr, path.target);
                if path.decap_peer {
                    peers.insert((node.address, vni), Delivery::InPlace);
                }
            }
        } else {
            warn!("no VNI (no InternalFabric for this gateway): nodes are not reached");
        }
        for cidr in &self.unreachable {
            routes.entry(*cidr).or_insert(RouteSpec::UNREACHABLE);
        }
        Ok(Written {
            remap_dst: desired.remap_dst.clone(),
            remap_src,
            ipmap_exit: desired.ipmap_exit.clone(),
            ipmap_entry: desired.ipmap_entry.clone(),
            tunnel,
            peers,
            routes,
        })
    }

    /// Full apply: every table and the kernel's routes read back and made exactly `want`.
    async fn sync(&mut self, want: &Written) -> anyhow::Result<Applied> {
        // NAT tables first: a route into the tunnel never exists before its translation.
        let mut applied = Applied {
            nat: [
                triple(self.nat.sync_remaps(RemapKind::Dst, &want.remap_dst)?),
                triple(self.nat.sync_remaps(RemapKind::Src, &want.remap_src)?),
                triple(self.nat.sync_ipmap(IpMapKind::Exit, &want.ipmap_exit)?),
                triple(self.nat.sync_ipmap(IpMapKind::Entry, &want.ipmap_entry)?),
            ],
            ..Applied::default()
        };
        applied.geneve_routes = triple(self.geneve.sync_routes(&want.tunnel)?);
        applied.geneve_peers = triple(self.geneve.sync_peers(&want.peers)?);
        let r = self.net.sync_routes(&want.routes).await?;
        applied.routes = (r.added, r.updated, r.removed);
        Ok(applied)
    }

    /// Incremental apply: only the difference between `last` and `want` is written, in the
    /// order of [`Self::sync`].
    async fn update(&mut self, last: &Written, want: &Written) -> anyhow::Result<Applied> {
        let nat = &mut self.nat;
        let mut applied = Applied {
            nat: [
                triple(nat.update_remaps(RemapKind::Dst, &last.remap_dst, &want.remap_dst)?),
                triple(nat.update_remaps(RemapKind::Src, &last.remap_src, &want.remap_src)?),
                triple(nat.update_ipmap(IpMapKind::Exit, &last.ipmap_exit, &want.ipmap_exit)?),
                triple(nat.update_ipmap(IpMapKind::Entry, &last.ipmap_entry, &want.ipmap_entry)?),
            ],
            ..Applied::default()
        };
        applied.geneve_routes = triple(self.geneve.update_routes(&last.tunnel, &want.tunnel)?);
        applied.geneve_peers = triple(self.geneve.update_peers(&last.peers, &want.peers)?);
        let r = self.net.update_routes(&last.routes, &want.routes).await?;
        applied.routes = (r.added, r.updated, r.removed);
        Ok(applied)
    }
}
