//! Geneve (RFC 8926) between nodes and gateways: the map types of `cw_geneve_encap` and
//! `cw_geneve_decap`, and the wire constants both sides (and the tests) agree on.
//!
//! Wire format produced by the eBPF-native encapsulation, identical to what the Linux geneve
//! driver sends from a `collect_md` device given the same tunnel key (`BPF_F_ZERO_CSUM_TX |
//! BPF_F_DONT_FRAGMENT`, TTL 64):
//!
//! ```text
//! outer Ethernet (kept from the original frame, or rewritten by bpf_redirect_neigh)
//! outer IPv4     20 bytes, no options, DF, ID 0, TTL 64, TOS copied from the inner header,
//!                src = DatapathConfig.local_ipv4_be, dst = GeneveRoute.remote_ipv4_be
//! UDP            8 bytes, sport = skb->hash, or flow_hash() of the inner 5-tuple when the
//!                skb has none, folded into 49152..=65535, dport = geneve_port,
//!                checksum 0 (allowed for IPv4, keeps GSO and checksum offload working)
//! Geneve         8 bytes, ver 0, no options, O = C = 0, protocol 0x6558, VNI
//! inner Ethernet the original frame, unchanged
//! ```

/// Name of the encapsulating classifier in the eBPF object.
pub const GENEVE_ENCAP_PROGRAM: &str = "cw_geneve_encap";
/// Name of the decapsulating classifier in the eBPF object.
pub const GENEVE_DECAP_PROGRAM: &str = "cw_geneve_decap";
/// Name of the LPM map of tunnelled destinations ([`GeneveRouteKey`] -> [`GeneveRoute`]).
pub const GENEVE_ROUTES_MAP: &str = "CW_GENEVE_ROUTES";
/// Name of the hash map of accepted peers ([`GenevePeerKey`] -> [`GenevePeer`]).
pub const GENEVE_PEERS_MAP: &str = "CW_GENEVE_PEERS";

/// Capacity of [`GENEVE_ROUTES_MAP`]: a gateway holds two routes per node of its cluster (pod
/// CIDR and internal address), so 32,768 nodes. An LPM trie allocates its entries on demand.
pub const GENEVE_ROUTES_MAX: u32 = 65_536;
/// Capacity of [`GENEVE_PEERS_MAP`] (one entry per peer and VNI, plus one marker per peer): a
/// gateway accepts every node of its cluster, so 16,384 nodes.
pub const GENEVE_PEERS_MAX: u32 = 32_768;

/// The Geneve UDP port Liqo uses (not the IANA 6081).
pub const GENEVE_DEFAULT_PORT: u16 = 6091;
/// Geneve protocol type of an inner Ethernet frame (Transparent Ethernet Bridging).
pub const GENEVE_PROTO_TEB: u16 = 0x6558;
/// Length of the fixed Geneve header.
pub const GENEVE_HEADER_LEN: usize = 8;
/// Length of the outer IPv4 header the encapsulation writes (no options).
pub const OUTER_IPV4_LEN: usize = 20;
/// Length of a UDP header.
pub const UDP_HEADER_LEN: usize = 8;
/// Length of an Ethernet header without VLAN tags.
pub const ETH_HEADER_LEN: usize = 14;
/// Bytes the encapsulation inserts after the outer Ethernet header: IPv4 + UDP + Geneve + the
/// inner Ethernet header.
pub const GENEVE_ENCAP_OVERHEAD: usize =
    OUTER_IPV4_LEN + UDP_HEADER_LEN + GENEVE_HEADER_LEN + ETH_HEADER_LEN;
/// TTL of the outer IPv4 header.
pub const OUTER_TTL: u8 = 64;
/// Largest VNI (24 bits).
pub const VNI_MAX: u32 = 0x00ff_ffff;
/// First UDP source port of the range the flow hash is folded into (IANA dynamic ports).
pub const SOURCE_PORT_MIN: u16 = 49152;
/// Number of source ports in the range (`SOURCE_PORT_MIN..=65535`).
pub const SOURCE_PORT_COUNT: u32 = 16384;
/// The [`GenevePeerKey::vni`] of a peer's marker entry: it makes a known peer with an unknown VNI
/// tell apart from an unknown peer. It is above [`VNI_MAX`], so no packet can match it.
pub const VNI_PEER_MARKER: u32 = u32::MAX;

/// Folds a 32-bit flow hash into the UDP source port range, uniformly (multiply-shift).
#[inline]
#[must_use]
pub const fn source_port(hash: u32) -> u16 {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "(hash * 16384) >> 32 < 16384, so the sum stays below 65536"
    )]
    let offset = ((hash as u64 * SOURCE_PORT_COUNT as u64) >> 32) as u16;
    SOURCE_PORT_MIN + offset
}

/// A cheap, well-mixed hash of an inner 5-tuple, for the outer UDP source port when the skb
/// carries no hash. Addresses and ports are raw: the bytes as they are in the packet, loaded
/// as native-endian words (`u32::from_ne_bytes(addr.octets())`; `ports` is the 4 bytes of source
/// and destination port). Not cryptographic: it only spreads flows over source ports (ECMP, RSS).
#[inline]
#[must_use]
pub const fn flow_hash(src: u32, dst: u32, proto: u8, ports: u32) -> u32 {
    let mut h = src ^ dst.rotate_left(16) ^ ports.rotate_left(8) ^ proto as u32;
    h = h.wrapping_mul(0x9e37_79b1);
    h ^= h >> 15;
    h = h.wrapping_mul(0x85eb_ca77);
    h ^= h >> 13;
    h
}

/// How a matched packet is tunnelled ([`GeneveRoute::mode`]).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneveMode {
    /// Set the tunnel key (remote IP, VNI) and redirect to a `collect_md` Geneve device, which
    /// encapsulates.
    Redirect = 1,
    /// Encapsulate in eBPF, then redirect to the egress device through the neighbour table
    /// (`bpf_redirect_neigh`), or continue on the current device when `ifindex` is 0.
    Native = 2,
}

impl GeneveMode {
    /// The mode stored in a route, if it is a known one.
    #[must_use]
    pub const fn from_u8(raw: u8) -> Option<Self> {
        match raw {
            1 => Some(Self::Redirect),
            2 => Some(Self::Native),
            _ => None,
        }
    }
}

/// Key of [`GENEVE_ROUTES_MAP`] (inside the LPM trie's `{ prefix_len, data }` key): the inner
/// destination address.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneveRouteKey {
    /// Inner IPv4 destination, network byte order.
    pub addr_be: [u8; 4],
}
const _: () = assert!(size_of::<GeneveRouteKey>() == 4);

/// Value of [`GENEVE_ROUTES_MAP`]: where packets to the prefix are tunnelled.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[expect(
    clippy::pub_underscore_fields,
    reason = "explicit padding, public so the type can be built literally"
)]
pub struct GeneveRoute {
    /// Outer destination (the gateway's or node's real IP), network byte order.
    pub remote_ipv4_be: [u8; 4],
    /// Virtual network identifier (24 bits, host byte order).
    pub vni: u32,
    /// Redirect mode: the `collect_md` Geneve device. Native mode: the egress device for
    /// `bpf_redirect_neigh`, or 0 to let the packet continue on the device the program runs on.
    pub ifindex: u32,
    /// A [`GeneveMode`] as `u8`.
    pub mode: u8,
    /// Explicit padding, zero.
    pub _pad: u8,
    /// Native mode: destination MAC written into the inner Ethernet header, so that a Linux
    /// geneve device at the other end (which checks it like any Ethernet device) accepts the
    /// frame; all zero keeps the original frame's destination MAC (a clusterwire peer does not
    /// care). Ignored in redirect mode, where the kernel resolves it over the Geneve device.
    pub inner_dst_mac: [u8; 6],
}
const _: () = assert!(size_of::<GeneveRoute>() == 20);

/// Key of [`GENEVE_PEERS_MAP`]: a peer's outer source address and the VNI it may use.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GenevePeerKey {
    /// Outer IPv4 source of the peer, network byte order.
    pub remote_ipv4_be: [u8; 4],
    /// VNI (24 bits), or [`VNI_PEER_MARKER`] for the peer's marker entry.
    pub vni: u32,
}
const _: () = assert!(size_of::<GenevePeerKey>() == 8);

/// Value of [`GENEVE_PEERS_MAP`]: what to do with a decapsulated packet from this peer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[expect(
    clippy::pub_underscore_fields,
    reason = "explicit padding, public so the type can be built literally"
)]
pub struct GenevePeer {
    /// 0: the inner frame continues up the stack of the device it arrived on (`TC_ACT_OK`).
    /// Otherwise: redirected to the ingress of this device (`bpf_redirect` with
    /// `BPF_F_INGRESS`), where the kernel re-parses the inner Ethernet header, as a Geneve
    /// netdev would deliver it (policy routing by input interface keeps working).
    pub ifindex: u32,
    /// Reserved, zero.
    pub flags: u32,
    /// With a redirect: the destination MAC written into the delivered frame (that device's
    /// own MAC, so the kernel takes the frame as addressed to it); all zero keeps the inner
    /// frame's destination MAC.
    pub dst_mac: [u8; 6],
    /// Explicit padding, zero.
    pub _pad: [u8; 2],
}
const _: () = assert!(size_of::<GenevePeer>() == 16);

crate::impl_pod!(GeneveRouteKey, GeneveRoute, GenevePeerKey, GenevePeer);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_hash_separates_flows_and_is_deterministic() {
        let a = u32::from_ne_bytes([10, 0, 1, 5]);
        let b = u32::from_ne_bytes([10, 70, 3, 9]);
        let ports = |s: u16, d: u16| {
            let (s, d) = (s.to_be_bytes(), d.to_be_bytes());
            u32::from_ne_bytes([s[0], s[1], d[0], d[1]])
        };
        let mut seen = [0u16; 64];
        for (i, sport) in (30000..30064).enumerate() {
            seen[i] = source_port(flow_hash(a, b, 17, ports(sport, 5201)));
            assert_eq!(
                seen[i],
                source_port(flow_hash(a, b, 17, ports(sport, 5201)))
            );
        }
        seen.sort_unstable();
        let distinct = 1 + seen.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(distinct >= 60, "64 flows on {distinct} ports");
        assert_ne!(
            flow_hash(a, b, 17, 0),
            flow_hash(a, b, 6, 0),
            "protocol counts"
        );
        assert_ne!(
            flow_hash(a, b, 17, 0),
            flow_hash(b, a, 17, 0),
            "direction counts"
        );
    }

    #[test]
    fn source_port_covers_the_range_ends() {
        assert_eq!(source_port(0), 49152);
        assert_eq!(source_port(u32::MAX), 65535);
        assert_eq!(source_port(0x8000_0000), 49152 + 8192);
    }
}
