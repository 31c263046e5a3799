//! Per-node constants of the datapath, set once at load time as the global `CW_CONFIG`
//! (`EbpfLoader::override_global`), read by the programs with a volatile load.

/// Name of the load-time global holding a [`DatapathConfig`] in the eBPF object.
pub const CONFIG_GLOBAL: &str = "CW_CONFIG";

/// Packets start at the IPv4/IPv6 header instead of an Ethernet header: set this when the
/// programs are attached to an L3 device such as WireGuard (no link-layer header). The programs
/// then classify packets by the IP version nibble (the way WireGuard itself sets
/// `skb->protocol`), so IPv6 passes untouched. Clear for Ethernet devices (veth, labs, tests).
pub const FLAG_L3_DEVICE: u32 = 1 << 0;

/// Every flag bit the programs understand; the loader rejects others.
pub const FLAGS_KNOWN: u32 = FLAG_L3_DEVICE;

/// Smallest tunnel MTU for which MSS clamping is enabled (IPv4 minimum MTU); `tunnel_mtu` 0
/// disables clamping.
pub const MIN_TUNNEL_MTU: u32 = 576;

/// Bytes of IPv4 and TCP headers (without options) subtracted from the tunnel MTU to get the
/// clamped MSS.
pub const MSS_OVERHEAD: u32 = 40;

/// Per-node constants of the datapath.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[expect(
    clippy::pub_underscore_fields,
    reason = "explicit padding, public so the type can be built literally"
)]
pub struct DatapathConfig {
    /// MTU of the tunnel link; TCP MSS is clamped to `tunnel_mtu - 40`. 0 disables clamping.
    pub tunnel_mtu: u32,
    /// Identity of the peering this instance serves (key part of the remap tables and the
    /// per-peer counters).
    pub peer_id: u32,
    /// This host's underlay IPv4 address, network byte order in memory
    /// (`u32::from_ne_bytes(addr.octets())`); used by Geneve.
    pub local_ipv4_be: u32,
    /// Geneve UDP destination port, host byte order (6091 by default).
    pub geneve_port: u16,
    /// Explicit padding.
    pub _pad0: u16,
    /// `FLAG_*` bits.
    pub flags: u32,
}

const _: () = assert!(size_of::<DatapathConfig>() == 20);
crate::impl_pod!(DatapathConfig);

impl DatapathConfig {
    /// All zero: no clamping, peer 0, Ethernet device.
    pub const fn zeroed() -> Self {
        Self {
            tunnel_mtu: 0,
            peer_id: 0,
            local_ipv4_be: 0,
            geneve_port: 0,
            _pad0: 0,
            flags: 0,
        }
    }

    /// The MSS that SYN and SYN-ACK segments are clamped to, if clamping is enabled.
    pub const fn clamp_mss(&self) -> Option<u16> {
        if self.tunnel_mtu < MIN_TUNNEL_MTU || self.tunnel_mtu > 0xffff {
            return None;
        }
        #[expect(
            clippy::cast_possible_truncation,
            reason = "tunnel_mtu <= 0xffff checked above"
        )]
        Some((self.tunnel_mtu - MSS_OVERHEAD) as u16)
    }

    /// Whether packets start at the IP header ([`FLAG_L3_DEVICE`]).
    pub const fn l3_device(&self) -> bool {
        self.flags & FLAG_L3_DEVICE != 0
    }
}
