//! Stateless remap NAT tables: prefix remaps per peer (LPM tries) and single-IP mappings
//! (hashes), plus the pure prefix arithmetic shared by the programs and userspace.
//!
//! Into the tunnel (`cw_nat_to_tunnel`): destination `CW_REMAP_DST` (remapped -> real), source
//! `CW_IPMAP_EXIT` (local real -> external-CIDR address). Out of the tunnel
//! (`cw_nat_from_tunnel`): source `CW_REMAP_SRC` (real -> remapped; a miss is a spoofed source),
//! destination `CW_IPMAP_ENTRY` (external-CIDR address -> local real). Host bits are kept.

/// Name of the into-the-tunnel destination remap LPM trie (remapped -> real).
pub const REMAP_DST_MAP: &str = "CW_REMAP_DST";
/// Name of the out-of-the-tunnel source remap LPM trie (real -> remapped, anti-spoofing).
pub const REMAP_SRC_MAP: &str = "CW_REMAP_SRC";
/// Name of the into-the-tunnel single-IP source map (local real -> external-CIDR address).
pub const IPMAP_EXIT_MAP: &str = "CW_IPMAP_EXIT";
/// Name of the out-of-the-tunnel single-IP destination map (external-CIDR address -> local real).
pub const IPMAP_ENTRY_MAP: &str = "CW_IPMAP_ENTRY";
/// Name of the into-the-tunnel NAT program (TC egress on the tunnel link).
pub const NAT_TO_TUNNEL_PROGRAM: &str = "cw_nat_to_tunnel";
/// Name of the out-of-the-tunnel NAT program (TC ingress on the tunnel link).
pub const NAT_FROM_TUNNEL_PROGRAM: &str = "cw_nat_from_tunnel";

/// Name of the lookup prefilter: a per-CPU-free array of 64-bit words, one 65536-bit bitmap per
/// table ([`FilterTable`]). A clear bit proves the table has no entry for the address, so the
/// programs skip the (much slower) trie or hash lookup; a set bit only means "look it up".
/// Maintained by the userspace table handles.
pub const NAT_FILTER_MAP: &str = "CW_NAT_FILTER";
/// 64-bit words per table bitmap (65536 bits).
pub const FILTER_WORDS_PER_TABLE: u32 = 1024;

/// Which table a prefilter bitmap belongs to (its index among the bitmaps).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilterTable {
    /// `CW_REMAP_DST`, slots by [`prefix_slot`].
    RemapDst = 0,
    /// `CW_REMAP_SRC`, slots by [`prefix_slot`].
    RemapSrc = 1,
    /// `CW_IPMAP_EXIT`, slots by [`ip_slot`].
    IpmapExit = 2,
    /// `CW_IPMAP_ENTRY`, slots by [`ip_slot`].
    IpmapEntry = 3,
}

impl FilterTable {
    /// Number of bitmaps.
    pub const COUNT: u32 = 4;
}

/// Prefilter slot of an address for the prefix tables: its top 16 bits (host order). A prefix
/// of length >= 16 covers one slot, a shorter one a range of slots.
#[inline]
pub const fn prefix_slot(addr: u32) -> u32 {
    addr >> 16
}

/// Prefilter slot of an address for the single-IP tables: a 16-bit fold (host order), so
/// mapped addresses of one /16 spread over the bitmap.
#[inline]
pub const fn ip_slot(addr: u32) -> u32 {
    (addr ^ (addr >> 16)) & 0xffff
}

/// Index of the word holding `slot` of `table`'s bitmap, and the bit within it.
#[inline]
pub const fn filter_bit(table: FilterTable, slot: u32) -> (u32, u64) {
    (
        table as u32 * FILTER_WORDS_PER_TABLE + ((slot & 0xffff) >> 6),
        1u64 << (slot & 63),
    )
}

/// Capacity of each remap trie.
pub const REMAP_MAX_ENTRIES: u32 = 4096;
/// Capacity of each single-IP map.
pub const IPMAP_MAX_ENTRIES: u32 = 65536;
/// Bits of a remap key that hold the peer id; they are always part of the matched prefix.
pub const REMAP_PEER_BITS: u32 = 32;

/// Data of a remap LPM key (the trie key is `{ prefix_len: u32, data: RemapKey }`). The prefix
/// length counts the 32 peer bits plus the address prefix bits.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RemapKey {
    /// The peering the entry belongs to (always fully matched).
    pub peer_id: u32,
    /// The address (prefix base) matched, network byte order.
    pub addr_be: [u8; 4],
}

const _: () = assert!(size_of::<RemapKey>() == 8);
crate::impl_pod!(RemapKey);

/// Target of a remap entry: the matched address keeps its host bits under this prefix.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[expect(
    clippy::pub_underscore_fields,
    reason = "explicit padding, public so the type can be built literally"
)]
pub struct RemapValue {
    /// Base of the target prefix, network byte order.
    pub prefix_be: [u8; 4],
    /// Length of both the matched and the target prefix (0..=32).
    pub prefix_len: u8,
    /// Explicit padding.
    pub _pad: [u8; 3],
}

const _: () = assert!(size_of::<RemapValue>() == 8);
crate::impl_pod!(RemapValue);

/// Key of a single-IP map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpMapKey {
    /// The address matched, network byte order.
    pub addr_be: [u8; 4],
}

const _: () = assert!(size_of::<IpMapKey>() == 4);
crate::impl_pod!(IpMapKey);

/// Value of a single-IP map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpMapValue {
    /// The address it becomes, network byte order.
    pub addr_be: [u8; 4],
}

const _: () = assert!(size_of::<IpMapValue>() == 4);
crate::impl_pod!(IpMapValue);

/// Network mask of a prefix length, host order; lengths above 32 count as 32.
#[inline]
pub const fn mask(prefix_len: u8) -> u32 {
    if prefix_len == 0 {
        0
    } else if prefix_len >= 32 {
        u32::MAX
    } else {
        u32::MAX << (32 - prefix_len as u32)
    }
}

impl RemapValue {
    /// A value mapping onto `prefix_be`/`prefix_len` (host bits of `prefix_be` are cleared).
    pub const fn new(prefix_be: [u8; 4], prefix_len: u8) -> Self {
        let base = u32::from_be_bytes(prefix_be) & mask(prefix_len);
        Self {
            prefix_be: base.to_be_bytes(),
            prefix_len,
            _pad: [0; 3],
        }
    }

    /// `addr` (host order) moved under the target prefix, host bits kept.
    #[inline]
    pub const fn apply(&self, addr: u32) -> u32 {
        let m = mask(self.prefix_len);
        (u32::from_be_bytes(self.prefix_be) & m) | (addr & !m)
    }
}

#[cfg(test)]
mod tests {
    use super::{RemapValue, mask};

    #[test]
    fn masks() {
        assert_eq!(mask(0), 0);
        assert_eq!(mask(8), 0xff00_0000);
        assert_eq!(mask(31), 0xffff_fffe);
        assert_eq!(mask(32), u32::MAX);
        assert_eq!(mask(40), u32::MAX);
    }

    #[test]
    fn apply_keeps_host_bits() {
        let v = RemapValue::new([10, 50, 0, 0], 16);
        assert_eq!(
            v.apply(u32::from_be_bytes([10, 0, 2, 7])),
            u32::from_be_bytes([10, 50, 2, 7])
        );
        let host = RemapValue::new([192, 168, 1, 10], 32);
        assert_eq!(
            host.apply(u32::from_be_bytes([10, 0, 0, 1])),
            u32::from_be_bytes([192, 168, 1, 10])
        );
        let all = RemapValue::new([1, 2, 3, 4], 0);
        assert_eq!(all.prefix_be, [0; 4]);
        assert_eq!(all.apply(0xdead_beef), 0xdead_beef);
    }
}
