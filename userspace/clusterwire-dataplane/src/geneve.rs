//! Typed handles for the Geneve maps: which destinations `cw_geneve_encap` tunnels (and how),
//! and which (peer, VNI) pairs `cw_geneve_decap` accepts; and attaching the two programs.
//!
//! Typical node setup: `GeneveMaps::take(datapath.ebpf_mut())`, one `set_route` per remote pod
//! CIDR towards the gateway, `allow_peer(gateway, vni, Delivery::InPlace)` for the return
//! traffic, then `attach_encap(datapath, "eth0")` and `attach_decap(datapath, "eth0")`.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
    num::NonZeroU32,
};

use aya::{
    Ebpf,
    maps::{HashMap, LpmTrie, MapData, MapError, lpm_trie::Key},
    programs::{
        ProgramError,
        tc::{self, SchedClassifierLinkId, TcAttachType, TcError},
    },
};
use clusterwire_common::geneve::{
    GENEVE_DECAP_PROGRAM, GENEVE_ENCAP_PROGRAM, GENEVE_PEERS_MAP, GENEVE_ROUTES_MAP, GeneveMode,
    GenevePeer, GenevePeerKey, GeneveRoute, GeneveRouteKey, VNI_MAX, VNI_PEER_MARKER,
};

use ipnet::Ipv4Net;

use crate::{
    Datapath,
    nat_tables::{Diff, SyncReport},
};

/// Why a Geneve map operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GeneveError {
    /// The object has no map of that name (or it was already taken).
    #[error("the eBPF object has no map {0}")]
    MissingMap(&'static str),
    /// A kernel map operation failed.
    #[error("Geneve map {map} operation failed")]
    Map {
        /// Which map.
        map: &'static str,
        /// Why.
        #[source]
        source: MapError,
    },
    /// A VNI above 24 bits.
    #[error("VNI {0} does not fit in 24 bits")]
    VniTooLarge(u32),
    /// A prefix length above 32.
    #[error("IPv4 prefix length {0} is above 32")]
    PrefixTooLong(u8),
    /// The loaded object lacks a Geneve program.
    #[error("the loaded datapath has no program {0}")]
    MissingProgram(&'static str),
    /// Adding the clsact qdisc failed.
    #[error("adding the clsact qdisc to {interface} failed")]
    Clsact {
        /// The interface.
        interface: String,
        /// Why.
        #[source]
        source: TcError,
    },
    /// Attaching a program failed.
    #[error("attaching {program} to {interface} failed")]
    Attach {
        /// The program.
        program: &'static str,
        /// The interface.
        interface: String,
        /// Why.
        #[source]
        source: ProgramError,
    },
    /// A route value with a mode byte no program version wrote.
    #[error("route for {0} has unknown mode {1}")]
    UnknownMode(Ipv4Addr, u8),
}

/// A Geneve virtual network identifier (24 bits), validated at construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vni(u32);

impl Vni {
    /// A VNI, if it fits in 24 bits.
    pub fn try_new(vni: u32) -> Result<Self, GeneveError> {
        if vni > VNI_MAX {
            return Err(GeneveError::VniTooLarge(vni));
        }
        Ok(Self(vni))
    }

    /// The VNI as a number.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// How packets to a prefix are tunnelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelMode {
    /// Tunnel key + redirect to this `collect_md` Geneve device, which encapsulates.
    Redirect {
        /// Interface index of the `collect_md` Geneve device.
        geneve_ifindex: NonZeroU32,
    },
    /// Encapsulated by `cw_geneve_encap` itself.
    Native {
        /// Egress device for `bpf_redirect_neigh` (outer Ethernet from the neighbour table), or
        /// `None` to continue on the device the program is attached to.
        egress_ifindex: Option<NonZeroU32>,
    },
}

/// Where packets to a prefix are tunnelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelRoute {
    /// Outer destination: the real IP of the gateway (or node) at the other end.
    pub remote: Ipv4Addr,
    /// VNI to put in the Geneve header.
    pub vni: Vni,
    /// Redirect or native.
    pub mode: TunnelMode,
}

impl TunnelRoute {
    /// A route that hands packets to a `collect_md` Geneve device with the tunnel key set: the
    /// setup the VM tier checks against the kernel's geneve driver.
    pub fn via_collect_md_device(remote: Ipv4Addr, vni: Vni, geneve_ifindex: NonZeroU32) -> Self {
        Self {
            remote,
            vni,
            mode: TunnelMode::Redirect { geneve_ifindex },
        }
    }

    fn to_map_value(self, inner_dst_mac: Option<[u8; 6]>) -> GeneveRoute {
        let (mode, ifindex, inner_dst_mac) = match self.mode {
            TunnelMode::Redirect { geneve_ifindex } => {
                (GeneveMode::Redirect, geneve_ifindex.get(), [0; 6])
            }
            TunnelMode::Native { egress_ifindex } => (
                GeneveMode::Native,
                egress_ifindex.map_or(0, NonZeroU32::get),
                inner_dst_mac.unwrap_or([0; 6]),
            ),
        };
        GeneveRoute {
            remote_ipv4_be: self.remote.octets(),
            vni: self.vni.get(),
            ifindex,
            mode: mode as u8,
            _pad: 0,
            inner_dst_mac,
        }
    }

    /// The route and its inner destination MAC (native mode only).
    fn from_map_value(
        prefix: Ipv4Addr,
        value: GeneveRoute,
    ) -> Result<(Self, Option<[u8; 6]>), GeneveError> {
        let GeneveRoute {
            remote_ipv4_be,
            vni,
            ifindex,
            mode,
            _pad,
            inner_dst_mac,
        } = value;
        let mode = match (GeneveMode::from_u8(mode), NonZeroU32::new(ifindex)) {
            (Some(GeneveMode::Redirect), Some(geneve_ifindex)) => {
                TunnelMode::Redirect { geneve_ifindex }
            }
            (Some(GeneveMode::Native), egress_ifindex) => TunnelMode::Native { egress_ifindex },
            _ => return Err(GeneveError::UnknownMode(prefix, mode)),
        };
        let route = Self {
            remote: Ipv4Addr::from(remote_ipv4_be),
            vni: Vni::try_new(vni)?,
            mode,
        };
        Ok((route, (inner_dst_mac != [0; 6]).then_some(inner_dst_mac)))
    }
}

/// One entry of the route map, as [`GeneveMaps::routes`] lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteEntry {
    /// The tunnelled prefix.
    pub prefix: Ipv4Addr,
    /// Its length.
    pub len: u8,
    /// Where it goes.
    pub route: TunnelRoute,
    /// Inner destination MAC, when set with [`GeneveMaps::set_route_to_kernel_device`].
    pub inner_dst_mac: Option<[u8; 6]>,
}

/// What happens to a frame decapsulated from an accepted peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Continues up the stack of the device it arrived on (inner IPv4 only).
    InPlace,
    /// Enters this device's ingress, re-parsed from its inner Ethernet header.
    IngressOf {
        /// The receiving device.
        ifindex: NonZeroU32,
        /// Its MAC, written as the frame's destination so the kernel takes the frame as
        /// addressed to it; `None` keeps the inner frame's destination MAC.
        mac: Option<[u8; 6]>,
    },
}

/// The Geneve maps of a loaded object.
#[derive(Debug)]
pub struct GeneveMaps {
    routes: LpmTrie<MapData, GeneveRouteKey, GeneveRoute>,
    peers: HashMap<MapData, GenevePeerKey, GenevePeer>,
}

fn map_err(map: &'static str) -> impl Fn(MapError) -> GeneveError {
    move |source| GeneveError::Map { map, source }
}

impl GeneveMaps {
    /// Takes the Geneve maps out of a loaded object.
    pub fn take(ebpf: &mut Ebpf) -> Result<Self, GeneveError> {
        let routes = ebpf
            .take_map(GENEVE_ROUTES_MAP)
            .ok_or(GeneveError::MissingMap(GENEVE_ROUTES_MAP))?;
        let peers = ebpf
            .take_map(GENEVE_PEERS_MAP)
            .ok_or(GeneveError::MissingMap(GENEVE_PEERS_MAP))?;
        Ok(Self {
            routes: LpmTrie::try_from(routes).map_err(map_err(GENEVE_ROUTES_MAP))?,
            peers: HashMap::try_from(peers).map_err(map_err(GENEVE_PEERS_MAP))?,
        })
    }

    fn route_key(prefix: Ipv4Addr, len: u8) -> Result<Key<GeneveRouteKey>, GeneveError> {
        if len > 32 {
            return Err(GeneveError::PrefixTooLong(len));
        }
        // Host bits are cleared so that the same prefix always has the same key.
        let bits = u32::from(prefix) & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        Ok(Key::new(
            u32::from(len),
            GeneveRouteKey {
                addr_be: bits.to_be_bytes(),
            },
        ))
    }

    /// Tunnels packets to `prefix/len` along `route` (replacing any route for that prefix).
    pub fn set_route(
        &mut self,
        prefix: Ipv4Addr,
        len: u8,
        route: TunnelRoute,
    ) -> Result<(), GeneveError> {
        self.insert_route(prefix, len, route.to_map_value(None))
    }

    /// Like [`Self::set_route`] for a native route whose far end is the kernel's geneve
    /// driver: the inner frame's destination MAC becomes `device_mac` (that device drops
    /// frames not addressed to it, like any Ethernet device). Redirect routes ignore it: the
    /// kernel resolves the MAC over the Geneve device itself.
    pub fn set_route_to_kernel_device(
        &mut self,
        prefix: Ipv4Addr,
        len: u8,
        route: TunnelRoute,
        device_mac: [u8; 6],
    ) -> Result<(), GeneveError> {
        self.insert_route(prefix, len, route.to_map_value(Some(device_mac)))
    }

    fn insert_route(
        &mut self,
        prefix: Ipv4Addr,
        len: u8,
        value: GeneveRoute,
    ) -> Result<(), GeneveError> {
        let key = Self::route_key(prefix, len)?;
        self.routes
            .insert(&key, value, 0)
            .map_err(map_err(GENEVE_ROUTES_MAP))
    }

    /// Stops tunnelling `prefix/len`.
    pub fn remove_route(&mut self, prefix: Ipv4Addr, len: u8) -> Result<(), GeneveError> {
        let key = Self::route_key(prefix, len)?;
        self.routes.remove(&key).map_err(map_err(GENEVE_ROUTES_MAP))
    }

    /// Every route.
    pub fn routes(&self) -> Result<Vec<RouteEntry>, GeneveError> {
        let mut out = Vec::new();
        for entry in &self.routes {
            let (key, value) = entry.map_err(map_err(GENEVE_ROUTES_MAP))?;
            let prefix = Ipv4Addr::from(key.data().addr_be);
            #[expect(clippy::cast_possible_truncation, reason = "the trie rejects > 32")]
            let len = key.prefix_len() as u8;
            let (route, inner_dst_mac) = TunnelRoute::from_map_value(prefix, value)?;
            out.push(RouteEntry {
                prefix,
                len,
                route,
                inner_dst_mac,
            });
        }
        Ok(out)
    }

    /// Accepts Geneve from `remote` with `vni`, delivered as `delivery`.
    pub fn allow_peer(
        &mut self,
        remote: Ipv4Addr,
        vni: Vni,
        delivery: Delivery,
    ) -> Result<(), GeneveError> {
        let remote_ipv4_be = remote.octets();
        let value = peer_value(delivery);
        let marker = GenevePeerKey {
            remote_ipv4_be,
            vni: VNI_PEER_MARKER,
        };
        // The marker first: a packet never sees the VNI entry without its peer being known.
        self.peers
            .insert(marker, GenevePeer::default(), 0)
            .map_err(map_err(GENEVE_PEERS_MAP))?;
        self.peers
            .insert(
                GenevePeerKey {
                    remote_ipv4_be,
                    vni: vni.get(),
                },
                value,
                0,
            )
            .map_err(map_err(GENEVE_PEERS_MAP))
    }

    /// Stops accepting `vni` from `remote`; forgets the peer when it has no VNI left.
    pub fn remove_peer(&mut self, remote: Ipv4Addr, vni: Vni) -> Result<(), GeneveError> {
        let remote_ipv4_be = remote.octets();
        match self.peers.remove(&GenevePeerKey {
            remote_ipv4_be,
            vni: vni.get(),
        }) {
            Ok(()) | Err(MapError::KeyNotFound) => {}
            Err(source) => return Err(map_err(GENEVE_PEERS_MAP)(source)),
        }
        if self.peer_vnis(remote)?.is_empty() {
            let marker = GenevePeerKey {
                remote_ipv4_be,
                vni: VNI_PEER_MARKER,
            };
            match self.peers.remove(&marker) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(source) => return Err(map_err(GENEVE_PEERS_MAP)(source)),
            }
        }
        Ok(())
    }

    /// The VNIs accepted from `remote`.
    pub fn peer_vnis(&self, remote: Ipv4Addr) -> Result<BTreeSet<Vni>, GeneveError> {
        let remote_ipv4_be = remote.octets();
        let mut vnis = BTreeSet::new();
        for key in self.peers.keys() {
            let key = key.map_err(map_err(GENEVE_PEERS_MAP))?;
            if key.remote_ipv4_be == remote_ipv4_be && key.vni != VNI_PEER_MARKER {
                vnis.insert(Vni::try_new(key.vni)?);
            }
        }
        Ok(vnis)
    }
}

/// Where a prefix is tunnelled, as [`GeneveMaps::sync_routes`] takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteTarget {
    /// Where it goes.
    pub route: TunnelRoute,
    /// Inner destination MAC (native routes to a kernel geneve device), else `None`.
    pub inner_dst_mac: Option<[u8; 6]>,
}

impl GeneveMaps {
    /// Makes the route map exactly `desired` (prefixes with host bits ignored). Inserts and
    /// updates come before removals.
    pub fn sync_routes(
        &mut self,
        desired: &BTreeMap<Ipv4Net, RouteTarget>,
    ) -> Result<SyncReport, GeneveError> {
        let desired = route_values(desired);
        let mut current = BTreeMap::new();
        for entry in &self.routes {
            let (key, value) = entry.map_err(map_err(GENEVE_ROUTES_MAP))?;
            #[expect(clippy::cast_possible_truncation, reason = "the trie rejects > 32")]
            let len = key.prefix_len() as u8;
            let net = Ipv4Net::new(Ipv4Addr::from(key.data().addr_be), len)
                .map_err(|_| GeneveError::PrefixTooLong(len))?;
            current.insert(net, value);
        }
        self.write_route_diff(&current, &desired)
    }

    /// Writes the difference between two states of the route map (map values, prefixes
    /// truncated): inserts and updates before removals; removing an entry already gone is not
    /// an error. Shared by [`Self::sync_routes`] and [`Self::update_routes`].
    pub(crate) fn write_route_diff(
        &mut self,
        current: &BTreeMap<Ipv4Net, GeneveRoute>,
        desired: &BTreeMap<Ipv4Net, GeneveRoute>,
    ) -> Result<SyncReport, GeneveError> {
        let diff = Diff::of(current, desired);
        for (net, value) in diff.upserts(desired) {
            self.insert_route(net.network(), net.prefix_len(), value)?;
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

    /// Makes the accepted peers exactly `desired` (`(remote, VNI) -> delivery`), markers
    /// included: a peer's marker is written before its first VNI and removed after its last.
    pub fn sync_peers(
        &mut self,
        desired: &BTreeMap<(Ipv4Addr, Vni), Delivery>,
    ) -> Result<SyncReport, GeneveError> {
        let mut current = BTreeMap::new();
        for entry in &self.peers {
            let (key, value) = entry.map_err(map_err(GENEVE_PEERS_MAP))?;
            if key.vni != VNI_PEER_MARKER {
                current.insert(
                    (Ipv4Addr::from(key.remote_ipv4_be), Vni::try_new(key.vni)?),
                    value,
                );
            }
        }
        self.write_peer_diff(&current, desired)
    }

    /// Writes the difference between the accepted peers `current` (map values) and `desired`,
    /// markers included (see [`Self::allow_peer`], [`Self::remove_peer`]). Shared by
    /// [`Self::sync_peers`] and [`Self::update_peers`].
    pub(crate) fn write_peer_diff(
        &mut self,
        current: &BTreeMap<(Ipv4Addr, Vni), GenevePeer>,
        desired: &BTreeMap<(Ipv4Addr, Vni), Delivery>,
    ) -> Result<SyncReport, GeneveError> {
        let desired_values: BTreeMap<(Ipv4Addr, Vni), GenevePeer> =
            desired.iter().map(|(k, d)| (*k, peer_value(*d))).collect();
        let diff = Diff::of(current, &desired_values);
        for ((remote, vni), delivery) in diff
            .upserts(&desired_values)
            .filter_map(|(k, _)| desired.get(&k).map(|d| (k, *d)))
        {
            self.allow_peer(remote, vni, delivery)?;
        }
        for (remote, vni) in &diff.removed {
            self.remove_peer(*remote, *vni)?;
        }
        Ok(diff.report())
    }
}

/// The route map's values for `targets`, prefixes truncated (host bits ignored).
pub(crate) fn route_values(
    targets: &BTreeMap<Ipv4Net, RouteTarget>,
) -> BTreeMap<Ipv4Net, GeneveRoute> {
    targets
        .iter()
        .map(|(net, t)| (net.trunc(), t.route.to_map_value(t.inner_dst_mac)))
        .collect()
}

pub(crate) fn peer_value(delivery: Delivery) -> GenevePeer {
    match delivery {
        Delivery::InPlace => GenevePeer::default(),
        Delivery::IngressOf { ifindex, mac } => GenevePeer {
            ifindex: ifindex.get(),
            dst_mac: mac.unwrap_or([0; 6]),
            ..GenevePeer::default()
        },
    }
}

/// Attaches `cw_geneve_encap` to the egress of `interface` (adding a clsact qdisc if needed).
/// The link lives as long as the datapath's program.
pub fn attach_encap(
    datapath: &mut Datapath,
    interface: &str,
) -> Result<SchedClassifierLinkId, GeneveError> {
    attach(
        datapath,
        GENEVE_ENCAP_PROGRAM,
        interface,
        TcAttachType::Egress,
    )
}

/// Attaches `cw_geneve_decap` to the ingress of `interface` (adding a clsact qdisc if needed).
pub fn attach_decap(
    datapath: &mut Datapath,
    interface: &str,
) -> Result<SchedClassifierLinkId, GeneveError> {
    attach(
        datapath,
        GENEVE_DECAP_PROGRAM,
        interface,
        TcAttachType::Ingress,
    )
}

fn attach(
    datapath: &mut Datapath,
    program: &'static str,
    interface: &str,
    direction: TcAttachType,
) -> Result<SchedClassifierLinkId, GeneveError> {
    // Kernels with TCX (6.6+) do not need the qdisc; on older ones an existing one is fine.
    match tc::qdisc_add_clsact(interface) {
        Ok(()) => {}
        Err(TcError::NetlinkError(e))
            if e.raw_os_error() == Some(nix::errno::Errno::EEXIST as i32) => {}
        Err(source) => {
            return Err(GeneveError::Clsact {
                interface: interface.to_owned(),
                source,
            });
        }
    }
    let classifier = datapath
        .program(program)
        .map_err(|_| GeneveError::MissingProgram(program))?;
    classifier
        .attach(interface, direction)
        .map_err(|source| GeneveError::Attach {
            program,
            interface: interface.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::{net::Ipv4Addr, num::NonZeroU32};

    use clusterwire_common::geneve::GeneveRoute;

    use super::{GeneveError, GeneveMaps, TunnelMode, TunnelRoute, Vni};

    #[test]
    fn vni_is_24_bits() {
        assert_eq!(Vni::try_new(0xff_ffff).map(Vni::get).ok(), Some(0xff_ffff));
        assert!(matches!(
            Vni::try_new(0x100_0000),
            Err(GeneveError::VniTooLarge(0x100_0000))
        ));
    }

    #[test]
    fn route_keys_drop_host_bits_and_reject_long_prefixes() {
        let key = GeneveMaps::route_key(Ipv4Addr::new(10, 70, 3, 9), 16).expect("valid");
        assert_eq!(key.prefix_len(), 16);
        assert_eq!(key.data().addr_be, [10, 70, 0, 0]);
        let all = GeneveMaps::route_key(Ipv4Addr::new(10, 70, 3, 9), 0).expect("valid");
        assert_eq!(all.data().addr_be, [0, 0, 0, 0]);
        let host = GeneveMaps::route_key(Ipv4Addr::new(10, 70, 3, 9), 32).expect("valid");
        assert_eq!(host.data().addr_be, [10, 70, 3, 9]);
        assert!(matches!(
            GeneveMaps::route_key(Ipv4Addr::UNSPECIFIED, 33),
            Err(GeneveError::PrefixTooLong(33))
        ));
    }

    #[test]
    fn routes_round_trip_through_the_map_value() {
        let vni = Vni::try_new(0x12_3456).expect("vni");
        let remote = Ipv4Addr::new(192, 0, 2, 200);
        let redirect =
            TunnelRoute::via_collect_md_device(remote, vni, NonZeroU32::new(9).expect("nonzero"));
        let value = redirect.to_map_value(Some([2; 6]));
        assert_eq!(
            value,
            GeneveRoute {
                remote_ipv4_be: [192, 0, 2, 200],
                vni: 0x12_3456,
                ifindex: 9,
                mode: 1,
                _pad: 0,
                inner_dst_mac: [0; 6],
            }
        );
        let prefix = Ipv4Addr::new(10, 70, 0, 0);
        assert_eq!(
            TunnelRoute::from_map_value(prefix, value).expect("valid"),
            (redirect, None),
            "a redirect route carries no inner MAC"
        );
        for (egress_ifindex, inner_dst_mac) in [(None, None), (NonZeroU32::new(3), Some([2; 6]))] {
            let native = TunnelRoute {
                remote,
                vni,
                mode: TunnelMode::Native { egress_ifindex },
            };
            let value = native.to_map_value(inner_dst_mac);
            assert_eq!(value.mode, 2);
            assert_eq!(value.inner_dst_mac, inner_dst_mac.unwrap_or([0; 6]));
            assert_eq!(
                TunnelRoute::from_map_value(prefix, value).expect("valid"),
                (native, inner_dst_mac)
            );
        }
        let bad = GeneveRoute { mode: 7, ..value };
        assert!(matches!(
            TunnelRoute::from_map_value(prefix, bad),
            Err(GeneveError::UnknownMode(_, 7))
        ));
    }
}
