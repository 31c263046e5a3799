//! The pinned layout: which maps an instance of each [`Role`] pins, with their full kernel
//! description (type, key and value size, max entries, flags). A process adopting pins compares
//! every pinned map with this table and refuses, naming the path and both layouts, when they
//! differ, instead of running programs against maps they were not built for.
use std::{fmt, path::Path};

use aya::maps::{MapInfo, MapType};
use clusterwire_common::{
    drop::{DROPS_MAP, DropReason, MONITOR_EVENTS_MAP, MONITOR_MAP, MONITOR_RING_BYTES},
    geneve::{
        GENEVE_PEERS_MAP, GENEVE_PEERS_MAX, GENEVE_ROUTES_MAP, GENEVE_ROUTES_MAX, GenevePeer,
        GenevePeerKey, GeneveRoute, GeneveRouteKey,
    },
    meta::{InstanceMeta, META_MAP, ROLE_GATEWAY, ROLE_NODE},
    nat::{
        FILTER_WORDS_PER_TABLE, FilterTable, IPMAP_ENTRY_MAP, IPMAP_EXIT_MAP, IPMAP_MAX_ENTRIES,
        IpMapKey, IpMapValue, NAT_FILTER_MAP, REMAP_DST_MAP, REMAP_MAX_ENTRIES, REMAP_SRC_MAP,
        RemapKey, RemapValue,
    },
    stats::{EVENTS_MAP, Event, PEER_STATS_MAP, PEER_STATS_MAX, PeerStats},
};

use crate::error::LoadError;

/// What an instance does, which decides the maps it pins and their sizes, and the programs it
/// loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A peering's gateway: remap NAT and MSS clamping on the tunnel link, and the gateway end
    /// of Geneve. Every map at full size.
    Gateway,
    /// A node: the node end of Geneve only. The NAT maps are not pinned and are created with one
    /// entry (the object declares them, so they must exist, but a node never fills them).
    Node,
}

impl Role {
    /// The `ROLE_*` value stored in `CW_META`.
    pub const fn meta(self) -> u32 {
        match self {
            Self::Gateway => ROLE_GATEWAY,
            Self::Node => ROLE_NODE,
        }
    }

    /// The role of a `ROLE_*` value.
    pub const fn from_meta(role: u32) -> Option<Self> {
        match role {
            ROLE_GATEWAY => Some(Self::Gateway),
            ROLE_NODE => Some(Self::Node),
            _ => None,
        }
    }

    /// Stable lower-case name (logs, metrics, `cwctl`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Node => "node",
        }
    }

    /// The maps this role pins.
    pub fn pinned_maps(self) -> impl Iterator<Item = &'static MapSpec> {
        MAPS.iter().filter(move |m| m.entries(self).is_some())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A map as the kernel describes it: what must match between a pin and this build.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MapLayout {
    /// `BPF_MAP_TYPE_*`.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `BPF_F_*` creation flags.
    pub flags: u32,
}

impl fmt::Display for MapLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            map_type,
            key_size,
            value_size,
            max_entries,
            flags,
        } = self;
        write!(
            f,
            "{map_type:?} key {key_size} B, value {value_size} B, {max_entries} entries, flags {flags:#x}"
        )
    }
}

/// One map of the object and how each role sizes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MapSpec {
    /// Name in the object (and of the pin).
    pub name: &'static str,
    /// Kernel map type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Creation flags.
    pub flags: u32,
    /// Capacity in a gateway instance (`None`: not pinned there).
    pub gateway: Option<u32>,
    /// Capacity in a node instance (`None`: not pinned, created with one entry).
    pub node: Option<u32>,
}

impl MapSpec {
    /// Capacity for `role`, `None` when the role does not pin this map.
    pub const fn entries(&self, role: Role) -> Option<u32> {
        match role {
            Role::Gateway => self.gateway,
            Role::Node => self.node,
        }
    }

    /// The layout a `role` instance creates.
    pub const fn layout(&self, role: Role) -> MapLayout {
        MapLayout {
            map_type: self.map_type,
            key_size: self.key_size,
            value_size: self.value_size,
            max_entries: match self.entries(role) {
                Some(n) => n,
                None => 1,
            },
            flags: self.flags,
        }
    }
}

/// `BPF_F_NO_PREALLOC`, required by LPM tries.
const NO_PREALLOC: u32 = 1;

/// Size of an LPM trie key: the `u32` prefix length followed by the data.
const fn lpm<K>() -> u32 {
    lossless(4 + size_of::<K>())
}

#[expect(clippy::cast_possible_truncation, reason = "map types are a few bytes")]
const fn lossless(n: usize) -> u32 {
    n as u32
}

const fn spec<K, V>(
    name: &'static str,
    map_type: MapType,
    gateway: Option<u32>,
    node: Option<u32>,
) -> MapSpec {
    let (key_size, flags) = match map_type {
        MapType::LpmTrie => (lpm::<K>(), NO_PREALLOC),
        _ => (lossless(size_of::<K>()), 0),
    };
    MapSpec {
        name,
        map_type,
        key_size,
        value_size: lossless(size_of::<V>()),
        flags,
        gateway,
        node,
    }
}

/// Every map an instance may pin, in the order they are checked.
pub const MAPS: &[MapSpec] = &[
    spec::<u32, InstanceMeta>(META_MAP, MapType::Array, Some(1), Some(1)),
    spec::<RemapKey, RemapValue>(
        REMAP_DST_MAP,
        MapType::LpmTrie,
        Some(REMAP_MAX_ENTRIES),
        None,
    ),
    spec::<RemapKey, RemapValue>(
        REMAP_SRC_MAP,
        MapType::LpmTrie,
        Some(REMAP_MAX_ENTRIES),
        None,
    ),
    spec::<IpMapKey, IpMapValue>(IPMAP_EXIT_MAP, MapType::Hash, Some(IPMAP_MAX_ENTRIES), None),
    spec::<IpMapKey, IpMapValue>(
        IPMAP_ENTRY_MAP,
        MapType::Hash,
        Some(IPMAP_MAX_ENTRIES),
        None,
    ),
    spec::<u32, u64>(
        NAT_FILTER_MAP,
        MapType::Array,
        Some(FilterTable::COUNT * FILTER_WORDS_PER_TABLE),
        None,
    ),
    spec::<u32, u64>(
        DROPS_MAP,
        MapType::PerCpuArray,
        Some(DropReason::COUNT),
        Some(DropReason::COUNT),
    ),
    spec::<u32, u32>(MONITOR_MAP, MapType::Array, Some(1), Some(1)),
    spec::<(), ()>(
        MONITOR_EVENTS_MAP,
        MapType::RingBuf,
        Some(MONITOR_RING_BYTES),
        Some(MONITOR_RING_BYTES),
    ),
    spec::<u32, u64>(
        EVENTS_MAP,
        MapType::PerCpuArray,
        Some(Event::COUNT),
        Some(Event::COUNT),
    ),
    spec::<u32, PeerStats>(
        PEER_STATS_MAP,
        MapType::PerCpuArray,
        Some(PEER_STATS_MAX),
        Some(PEER_STATS_MAX),
    ),
    spec::<GeneveRouteKey, GeneveRoute>(
        GENEVE_ROUTES_MAP,
        MapType::LpmTrie,
        Some(GENEVE_ROUTES_MAX),
        Some(GENEVE_ROUTES_MAX),
    ),
    spec::<GenevePeerKey, GenevePeer>(
        GENEVE_PEERS_MAP,
        MapType::Hash,
        Some(GENEVE_PEERS_MAX),
        Some(GENEVE_PEERS_MAX),
    ),
];

/// The spec of the map called `name`.
pub fn map_spec(name: &str) -> Option<&'static MapSpec> {
    MAPS.iter().find(|m| m.name == name)
}

/// The layout of the map pinned at `path`, `None` when nothing is pinned there.
pub fn pinned_layout(path: &Path) -> Result<Option<MapLayout>, LoadError> {
    if !path.exists() {
        return Ok(None);
    }
    let err = |source| LoadError::PinInfo {
        path: path.to_owned(),
        source,
    };
    let info = MapInfo::from_pin(path).map_err(err)?;
    Ok(Some(MapLayout {
        map_type: info.map_type().map_err(err)?,
        key_size: info.key_size(),
        value_size: info.value_size(),
        max_entries: info.max_entries(),
        flags: info.map_flags(),
    }))
}

/// Fails when a map is pinned at `path` with another layout than `expected`.
pub fn check_pin(path: &Path, expected: MapLayout) -> Result<(), LoadError> {
    match pinned_layout(path)? {
        Some(found) if found != expected => Err(LoadError::IncompatiblePin {
            path: path.to_owned(),
            found,
            expected,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::{MAPS, Role};

    #[test]
    fn a_node_pins_no_nat_map_and_a_gateway_pins_all() {
        let node: Vec<_> = Role::Node.pinned_maps().map(|m| m.name).collect();
        assert_eq!(
            node,
            [
                "CW_META",
                "CW_DROPS",
                "CW_MONITOR",
                "CW_MONITOR_EVENTS",
                "CW_EVENTS",
                "CW_PEER_STATS",
                "CW_GENEVE_ROUTES",
                "CW_GENEVE_PEERS"
            ]
        );
        assert_eq!(Role::Gateway.pinned_maps().count(), MAPS.len());
        for role in [Role::Gateway, Role::Node] {
            assert_eq!(Role::from_meta(role.meta()), Some(role));
        }
        assert_eq!(Role::from_meta(0), None);
    }

    #[test]
    fn lpm_tries_are_no_prealloc_with_the_prefix_in_the_key() {
        let remap = super::map_spec("CW_REMAP_DST").expect("listed");
        assert_eq!((remap.key_size, remap.value_size, remap.flags), (12, 8, 1));
        let layout = remap.layout(Role::Node);
        assert_eq!(layout.max_entries, 1, "a node creates the NAT maps tiny");
    }
}
