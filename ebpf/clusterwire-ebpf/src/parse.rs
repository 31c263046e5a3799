//! Bounds-checked direct packet access and IPv4 parsing.
//!
//! Everything is addressed by offsets from `skb->data`; [`at`] turns an offset into a pointer
//! that has just been checked against `data_end`, pulling the bytes into the linear area first
//! when the packet is longer than its linear part. Keeping offsets (not pointers) across helper
//! calls is what keeps the verifier happy: helpers that change packet data invalidate pointers.
//!
//! Link layer: with `FLAG_L3_DEVICE` (WireGuard and other L3 devices) the packet starts at the
//! IP header and is classified by its version nibble, as WireGuard itself does; otherwise it
//! starts with an Ethernet header and only ethertype 0x0800 is IPv4. VLAN-tagged frames (tag in
//! the frame or, accelerated, in the skb metadata), ARP, IPv6 and everything else are not IPv4
//! here and pass untouched.
use aya_ebpf::programs::TcContext;
use clusterwire_common::drop::DropReason;

/// Ethernet header length.
pub const ETH_HLEN: usize = 14;
/// IPv4 ethertype.
pub const ETH_P_IP: u16 = 0x0800;
/// IPv4 minimum header length.
pub const IPV4_MIN_HLEN: usize = 20;
/// IP protocol numbers.
pub const IPPROTO_ICMP: u8 = 1;
/// TCP.
pub const IPPROTO_TCP: u8 = 6;
/// UDP.
pub const IPPROTO_UDP: u8 = 17;
/// Offset of the checksum in a TCP header.
pub const TCP_CSUM_OFF: usize = 16;
/// Offset of the checksum in a UDP header.
pub const UDP_CSUM_OFF: usize = 6;
/// Offset of the checksum in an IPv4 header.
pub const IPV4_CSUM_OFF: usize = 10;
/// Offset of the source address in an IPv4 header (the destination follows).
pub const IPV4_SRC_OFF: usize = 12;

/// Bytes pulled into the linear area at most when the headers are not linear: Ethernet, IPv4
/// with options, ICMP, an embedded IPv4 header with options and 20 bytes of its L4 header.
const PULL_MAX: usize = 192;

/// `skb->data`, loaded afresh. Volatile, so LLVM neither hoists it out of loops nor rebuilds
/// its zero extension with shifts (the verifier rejects `<<=` on a packet pointer).
#[inline(always)]
pub fn data(ctx: &TcContext) -> usize {
    // SAFETY: `ctx.skb.skb` is the program's context pointer, valid while it runs.
    unsafe { core::ptr::read_volatile(&raw const (*ctx.skb.skb).data) as usize }
}

/// `skb->data_end`, loaded afresh (see [`data`]).
#[inline(always)]
pub fn data_end(ctx: &TcContext) -> usize {
    // SAFETY: as in `data`.
    unsafe { core::ptr::read_volatile(&raw const (*ctx.skb.skb).data_end) as usize }
}

/// A pointer to packet bytes `off..off + len`, checked against `data_end` (pulling the bytes
/// into the linear area if the packet has them but its linear part is shorter); `None` when the
/// packet is shorter.
#[inline(always)]
pub fn at(ctx: &TcContext, off: usize, len: usize) -> Option<usize> {
    let p = data(ctx) + off;
    if p + len <= data_end(ctx) {
        return Some(p);
    }
    pull(ctx, off + len)?;
    let p = opaque(data(ctx) + off);
    if p + len <= data_end(ctx) {
        Some(p)
    } else {
        None
    }
}

/// `p` through a volatile stack slot: LLVM can no longer re-derive it (see [`at_opaque`]).
#[inline(always)]
fn opaque(p: usize) -> usize {
    let mut slot = p;
    // SAFETY: volatile accesses to a local.
    unsafe {
        core::ptr::write_volatile(&raw mut slot, p);
        core::ptr::read_volatile(&raw const slot)
    }
}

/// Same as [`at`], with the pointer passed through a volatile stack slot before the bound
/// check, so LLVM cannot re-derive it differently for the check and for the access (it does,
/// in unrolled loops, and the verifier then sees two unrelated packet pointers). Costs a
/// store and a load; use it where plain [`at`] is rejected.
#[inline(always)]
pub fn at_opaque(ctx: &TcContext, off: usize, len: usize) -> Option<usize> {
    let p = opaque(data(ctx) + off);
    if p + len <= data_end(ctx) {
        return Some(p);
    }
    at(ctx, off, len)
}

/// Makes the first `need` bytes linear if the packet has them. Cold path.
#[inline(never)]
fn pull(ctx: &TcContext, need: usize) -> Option<()> {
    let total = ctx.len() as usize;
    if need > total {
        return None;
    }
    let want = if total < PULL_MAX { total } else { PULL_MAX };
    let want = if need > want { need } else { want };
    #[expect(clippy::cast_possible_truncation, reason = "want <= skb->len, a u32")]
    ctx.pull_data(want as u32).ok()
}

/// Reads a byte at `off`.
///
/// Verifier trap: LLVM turns a one-byte bound check `p + 1 <= end` into `p < end`, which the
/// verifier does not accept as a range for `p` with a variable offset. So this checks the
/// two-byte window at `off` and falls back to `bpf_skb_load_bytes` for the packet's last byte.
/// Hot paths read 16-bit windows instead (`u16_at`).
#[inline(always)]
pub fn u8_at(ctx: &TcContext, off: usize) -> Option<u8> {
    let p = data(ctx) + off;
    if p + 2 <= data_end(ctx) {
        // SAFETY: two bytes at `p` are inside the packet (checked just above).
        return Some(unsafe { *(p as *const u8) });
    }
    ctx.load::<u8>(off).ok()
}

/// Reads a 16-bit word at `off`, raw (as stored: network order in memory).
#[inline(always)]
pub fn u16_at(ctx: &TcContext, off: usize) -> Option<u16> {
    let p = at(ctx, off, 2)?;
    // SAFETY: `at` checked that two bytes at `p` are inside the packet.
    Some(unsafe { core::ptr::read_unaligned(p as *const u16) })
}

/// Reads a 32-bit word at `off`, raw.
#[inline(always)]
pub fn u32_at(ctx: &TcContext, off: usize) -> Option<u32> {
    let p = at(ctx, off, 4)?;
    // SAFETY: `at` checked that four bytes at `p` are inside the packet.
    Some(unsafe { core::ptr::read_unaligned(p as *const u32) })
}

/// Writes a raw 16-bit word at `off`.
#[inline(always)]
pub fn put_u16(ctx: &TcContext, off: usize, v: u16) -> Result<(), DropReason> {
    let p = at(ctx, off, 2).ok_or(DropReason::RewriteFailed)?;
    // SAFETY: `at` checked that two bytes at `p` are inside the (writable) packet.
    unsafe { core::ptr::write_unaligned(p as *mut u16, v) };
    Ok(())
}

/// Writes a raw 32-bit word at `off`.
#[inline(always)]
pub fn put_u32(ctx: &TcContext, off: usize, v: u32) -> Result<(), DropReason> {
    let p = at(ctx, off, 4).ok_or(DropReason::RewriteFailed)?;
    // SAFETY: `at` checked that four bytes at `p` are inside the (writable) packet.
    unsafe { core::ptr::write_unaligned(p as *mut u32, v) };
    Ok(())
}

/// Offset of the IPv4 header, or `None` when the packet is not IPv4 (pass it untouched).
#[inline(always)]
pub fn ipv4_offset(ctx: &TcContext, l3_device: bool) -> Option<usize> {
    if l3_device {
        // First two bytes (a 20-byte header is needed anyway): version nibble.
        let v = u16_at(ctx, 0)?.to_ne_bytes()[0];
        if v >> 4 == 4 { Some(0) } else { None }
    } else {
        // A VLAN tag the NIC or veth moved into the skb metadata: tagged, so not ours.
        // SAFETY: `ctx.skb.skb` is the program's context pointer, valid while it runs.
        if unsafe { (*ctx.skb.skb).vlan_present } != 0 {
            return None;
        }
        let ethertype = u16_at(ctx, 12)?;
        if u16::from_be(ethertype) == ETH_P_IP {
            Some(ETH_HLEN)
        } else {
            None
        }
    }
}

/// A parsed IPv4 header. Addresses are raw (network order in memory).
#[derive(Clone, Copy)]
pub struct Ipv4 {
    /// Offset of the IPv4 header.
    pub l3: usize,
    /// Offset of the L4 header (`l3 + IHL * 4`).
    pub l4: usize,
    /// Offset one past the end of the datagram's bytes present in the packet
    /// (`min(l3 + total length, skb->len)`; link-layer padding excluded).
    pub end: usize,
    /// Protocol.
    pub proto: u8,
    /// Fragment offset (in 8-byte units) is 0: the L4 header, if any, is in this packet.
    pub first_fragment: bool,
    /// Source address, raw.
    pub src: u32,
    /// Destination address, raw.
    pub dst: u32,
}

/// Parses the IPv4 header at `l3`. Malformed headers (shorter than 20 bytes, IHL < 5, header
/// not fully present, total length smaller than the header or larger than the packet) are
/// `Err(Ipv4Malformed)`: they cannot be checked or rewritten safely.
#[inline(always)]
pub fn ipv4(ctx: &TcContext, l3: usize) -> Result<Ipv4, DropReason> {
    let p = at(ctx, l3, IPV4_MIN_HLEN).ok_or(DropReason::Ipv4Malformed)?;
    // SAFETY: `at` checked that 20 bytes at `p` are inside the packet.
    let (vihl, tot_len, frag, proto, src, dst) = unsafe {
        (
            *(p as *const u8),
            u16::from_be(core::ptr::read_unaligned((p + 2) as *const u16)),
            u16::from_be(core::ptr::read_unaligned((p + 6) as *const u16)),
            *((p + 9) as *const u8),
            core::ptr::read_unaligned((p + 12) as *const u32),
            core::ptr::read_unaligned((p + 16) as *const u32),
        )
    };
    let hlen = usize::from(vihl & 0x0f) * 4;
    let tot_len = usize::from(tot_len);
    if vihl >> 4 != 4 || hlen < IPV4_MIN_HLEN || tot_len < hlen {
        return Err(DropReason::Ipv4Malformed);
    }
    let pkt_len = ctx.len() as usize;
    if l3 + tot_len > pkt_len {
        return Err(DropReason::Ipv4Malformed);
    }
    // Options must be present too.
    if hlen > IPV4_MIN_HLEN {
        at(ctx, l3, hlen).ok_or(DropReason::Ipv4Malformed)?;
    }
    let offset = frag & 0x1fff;
    Ok(Ipv4 {
        l3,
        l4: l3 + hlen,
        end: l3 + tot_len,
        proto,
        first_fragment: offset == 0,
        src,
        dst,
    })
}

impl Ipv4 {
    /// Whether `len` bytes at `off` lie inside the datagram (not in link-layer padding).
    #[inline(always)]
    pub fn has(&self, off: usize, len: usize) -> bool {
        off + len <= self.end
    }
}
