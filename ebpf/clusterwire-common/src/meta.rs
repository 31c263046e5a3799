//! Identity of a pinned instance: the one-entry array `CW_META`, written by the loader when it
//! creates an instance and checked by every later process that adopts the pinned state.
//!
//! `bpftool map dump pinned /sys/fs/bpf/clusterwire/<instance>/CW_META` shows which layout,
//! role and peering the pins belong to.

/// Name of the one-entry array holding the [`InstanceMeta`] of an instance.
pub const META_MAP: &str = "CW_META";

/// Version of the pinned layout (map names, types, key/value sizes, flags and role sizes, link
/// pin names). Bumped whenever a change makes pins of the previous version unusable; a process
/// finding pins of another version refuses to adopt them and names both versions.
///
/// Version 1 was wave 1's loader, which pinned maps only and wrote no `CW_META`; version 2 had
/// Geneve maps of 4,096 routes and 8,192 peers (a gateway of more than 2,047 nodes overflowed).
pub const LAYOUT_VERSION: u32 = 3;

/// `InstanceMeta::role` of a gateway instance (NAT and Geneve maps).
pub const ROLE_GATEWAY: u32 = 1;
/// `InstanceMeta::role` of a node instance (Geneve maps only; NAT maps sized to one entry).
pub const ROLE_NODE: u32 = 2;

/// What a pin directory holds.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[expect(
    clippy::pub_underscore_fields,
    reason = "explicit padding, public so the type can be built literally"
)]
pub struct InstanceMeta {
    /// [`LAYOUT_VERSION`] of the process that created the instance.
    pub layout_version: u32,
    /// `ROLE_*`.
    pub role: u32,
    /// The peering a gateway instance serves (0 on nodes).
    pub peer_id: u32,
    /// Explicit padding.
    pub _pad: u32,
}

const _: () = assert!(size_of::<InstanceMeta>() == 16);
crate::impl_pod!(InstanceMeta);
