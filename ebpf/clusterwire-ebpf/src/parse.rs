//! Bounds-checked direct packet access, the protocol constants, and IPv4 parsing.
//!
//! This module is the only place that turns packet offsets into pointers. Everything is
//! addressed by offsets from `skb->data`; [`Window::get`] checks `N` bytes at an offset against
//! `data_end` (pulling them into the linear area first when the packet is longer than its linear
//! part) and then reads or writes fields at constant offsets inside the window, with the bound
//! checked at compile time; [`load`] and [`store`] do the same for one value at a variable
//! offset. Keeping offsets (not pointers) across helper calls is what keeps the verifier happy:
//! helpers that change packet data invalidate pointers, and a `Window` must not be used after
//! such a call (take a new one).
//!
//! Link layer: with `FLAG_L3_DEVICE` (WireGuard and other L3 devices) the packet starts at the
//! IP header and is classified by its version nibble, as WireGuard itself does; otherwise it
//! starts with an Ethernet header and only ethertype 0x0800 is IPv4. VLAN-tagged frames (tag in
//! the frame or, accelerated, in the skb metadata), ARP, IPv6 and everything else are not IPv4
//! here.
//!
//! BIG TCP: an IPv4 total length of 0 is the kernel's marker of a GSO TCP packet longer than
//! 64 KiB (`iph_totlen`); such a header is valid only on a GSO skb (`gso_size != 0`) carrying
//! TCP, and its datagram then ends at `skb->len`. [`ipv4`] applies exactly that rule, and every
//! program uses it (the NAT parses with it; the encapsulation checks the inner header with
//! [`big_tcp_ok`]), so a `tot_len` 0 packet is either valid everywhere or malformed everywhere.
use aya_ebpf::programs::TcContext;
use clusterwire_common::drop::DropReason;

pub use clusterwire_common::geneve::{ETH_HEADER_LEN as ETH_HLEN, UDP_HEADER_LEN as UDP_HLEN};

/// IPv4 ethertype.
pub const ETH_P_IP: u16 = 0x0800;
/// ARP ethertype.
pub const ETH_P_ARP: u16 = 0x0806;
/// Offset of the ethertype in an Ethernet header.
pub const ETH_TYPE_OFF: usize = 12;
/// IPv4 minimum header length.
pub const IPV4_MIN_HLEN: usize = 20;
/// ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// TCP.
pub const IPPROTO_TCP: u8 = 6;
/// UDP.
pub const IPPROTO_UDP: u8 = 17;
/// Offset of the checksum in a TCP header.
pub const TCP_CSUM_OFF: usize = 16;
/// Offset of the checksum in a UDP header.
pub const UDP_CSUM_OFF: usize = 6;
/// Offset of the total length in an IPv4 header.
pub const IPV4_TOT_LEN_OFF: usize = 2;
/// Offset of the flags and fragment offset in an IPv4 header.
pub const IPV4_FRAG_OFF: usize = 6;
/// Offset of the protocol in an IPv4 header.
pub const IPV4_PROTO_OFF: usize = 9;
/// Offset of the checksum in an IPv4 header.
pub const IPV4_CSUM_OFF: usize = 10;
/// Offset of the source address in an IPv4 header.
pub const IPV4_SRC_OFF: usize = 12;
/// Offset of the destination address in an IPv4 header.
pub const IPV4_DST_OFF: usize = 16;
/// Fragment offset bits of the IPv4 flags/offset field.
pub const IPV4_OFFSET_MASK: u16 = 0x1fff;
/// More-fragments and offset bits: the packet is a fragment.
pub const IPV4_FRAGMENT_MASK: u16 = 0x3fff;

/// Bytes pulled into the linear area at most when the headers are not linear: Ethernet, IPv4
/// with options, ICMP, an embedded IPv4 header with options and 20 bytes of its L4 header.
const PULL_MAX: usize = 192;

/// The program's `__sk_buff`.
#[inline(always)]
fn skb(ctx: &TcContext) -> *const aya_ebpf::bindings::__sk_buff {
    ctx.skb.skb
}

/// `skb->data`, loaded afresh. Volatile, so LLVM neither hoists it out of loops nor rebuilds
/// its zero extension with shifts (the verifier rejects `<<=` on a packet pointer).
#[inline(always)]
fn data(ctx: &TcContext) -> usize {
    // SAFETY: `skb(ctx)` is the program's context pointer, valid while it runs.
    unsafe { core::ptr::read_volatile(&raw const (*skb(ctx)).data) as usize }
}

/// `skb->data_end`, loaded afresh (see [`data`]).
#[inline(always)]
fn data_end(ctx: &TcContext) -> usize {
    // SAFETY: as in `data`.
    unsafe { core::ptr::read_volatile(&raw const (*skb(ctx)).data_end) as usize }
}

/// `skb->vlan_present`: a VLAN tag the NIC or veth moved into the skb metadata.
#[inline(always)]
fn vlan_present(ctx: &TcContext) -> bool {
    // SAFETY: as in `data`.
    unsafe { (*skb(ctx)).vlan_present != 0 }
}

/// `skb->gso_size`: non-zero for a GSO super-packet.
#[inline(always)]
pub fn gso_size(ctx: &TcContext) -> u32 {
    // SAFETY: as in `data`.
    unsafe { (*skb(ctx)).gso_size }
}

/// `skb->ifindex`: the device the program runs on.
#[inline(always)]
pub fn ifindex(ctx: &TcContext) -> u32 {
    // SAFETY: as in `data`.
    unsafe { (*skb(ctx)).ifindex }
}

/// `skb->hash` as the stack left it (0: not computed). Read, never recomputed.
#[inline(always)]
pub fn skb_hash(ctx: &TcContext) -> u32 {
    // SAFETY: as in `data`.
    unsafe { (*skb(ctx)).hash }
}

/// Address of packet bytes `off..off + len`, checked against `data_end` (pulling the bytes
/// into the linear area if the packet has them but its linear part is shorter); `None` when the
/// packet is shorter.
#[inline(always)]
fn at(ctx: &TcContext, off: usize, len: usize) -> Option<usize> {
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

/// `p` through a volatile stack slot: LLVM can no longer re-derive it (see [`Window::get_opaque`]).
#[inline(always)]
fn opaque(p: usize) -> usize {
    let mut slot = p;
    // SAFETY: volatile accesses to a local.
    unsafe {
        core::ptr::write_volatile(&raw mut slot, p);
        core::ptr::read_volatile(&raw const slot)
    }
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

/// `N` packet bytes checked against `data_end`: fields at constant offsets inside it are read
/// and written without further checks (the bound is a compile-time assertion). Valid until the
/// next helper call that changes packet data.
#[derive(Clone, Copy)]
pub struct Window<const N: usize> {
    addr: usize,
}

impl<const N: usize> Window<N> {
    /// The `N` bytes at packet offset `off`, if the packet has them.
    #[inline(always)]
    pub fn get(ctx: &TcContext, off: usize) -> Option<Self> {
        at(ctx, off, N).map(|addr| Self { addr })
    }

    /// Same as [`Window::get`], with the address passed through a volatile stack slot before
    /// the bound check, so LLVM cannot re-derive it differently for the check and for the access
    /// (it does, in unrolled loops, and the verifier then sees two unrelated packet pointers).
    /// Costs a store and a load; use it where plain `get` is rejected.
    #[inline(always)]
    pub fn get_opaque(ctx: &TcContext, off: usize) -> Option<Self> {
        let addr = opaque(data(ctx) + off);
        if addr + N <= data_end(ctx) {
            return Some(Self { addr });
        }
        Self::get(ctx, off)
    }

    /// The `T` at offset `OFF` of the window, as stored (raw: network order for multi-byte
    /// fields).
    #[inline(always)]
    pub fn read<T: Copy, const OFF: usize>(self) -> T {
        const { assert!(OFF + size_of::<T>() <= N) };
        // SAFETY: the window's N bytes were checked against `data_end` when it was made, and
        // OFF + size_of::<T>() <= N; unaligned accesses are allowed.
        unsafe { core::ptr::read_unaligned((self.addr + OFF) as *const T) }
    }

    /// Writes `v` (raw) at offset `OFF` of the window.
    #[inline(always)]
    pub fn write<T: Copy, const OFF: usize>(self, v: T) {
        const { assert!(OFF + size_of::<T>() <= N) };
        // SAFETY: as in `read`; TC programs may write packet data.
        unsafe { core::ptr::write_unaligned((self.addr + OFF) as *mut T, v) }
    }

    /// A big-endian 16-bit field at `OFF`, in host order.
    #[inline(always)]
    pub fn be16<const OFF: usize>(self) -> u16 {
        u16::from_be(self.read::<u16, OFF>())
    }
}

/// Reads the `T` at packet offset `off` (raw), if the packet has it.
#[inline(always)]
pub fn load<T: Copy>(ctx: &TcContext, off: usize) -> Option<T> {
    let addr = at(ctx, off, size_of::<T>())?;
    // SAFETY: `at` checked that size_of::<T>() bytes at `addr` are inside the packet.
    Some(unsafe { core::ptr::read_unaligned(addr as *const T) })
}

/// Writes `v` (raw) at packet offset `off`; `RewriteFailed` if the packet is shorter.
#[inline(always)]
pub fn store<T: Copy>(ctx: &TcContext, off: usize, v: T) -> Result<(), DropReason> {
    let addr = at(ctx, off, size_of::<T>()).ok_or(DropReason::RewriteFailed)?;
    // SAFETY: `at` checked that size_of::<T>() bytes at `addr` are inside the (writable) packet.
    unsafe { core::ptr::write_unaligned(addr as *mut T, v) };
    Ok(())
}

/// What the link layer says a packet is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum L3 {
    /// IPv4, with its header at this offset.
    Ipv4(usize),
    /// ARP (Ethernet devices only): link-layer control, not routed traffic.
    Arp,
    /// Anything else: IPv6, VLAN-tagged, other ethertypes, too short to tell.
    Other,
}

/// Classifies the packet by its link layer (see the module docs).
#[inline(always)]
pub fn l3(ctx: &TcContext, l3_device: bool) -> L3 {
    if l3_device {
        // First two bytes (a 20-byte header is needed anyway): version nibble.
        return match load::<[u8; 2]>(ctx, 0) {
            Some([v, _]) if v >> 4 == 4 => L3::Ipv4(0),
            _ => L3::Other,
        };
    }
    // A VLAN tag in the skb metadata: tagged, so not ours.
    if vlan_present(ctx) {
        return L3::Other;
    }
    match load::<u16>(ctx, ETH_TYPE_OFF).map(u16::from_be) {
        Some(ETH_P_IP) => L3::Ipv4(ETH_HLEN),
        Some(ETH_P_ARP) => L3::Arp,
        _ => L3::Other,
    }
}

/// Whether an IPv4 total length of 0 is BIG TCP's marker here: a GSO skb carrying TCP.
#[inline(always)]
pub fn big_tcp_ok(ctx: &TcContext, proto: u8) -> bool {
    proto == IPPROTO_TCP && gso_size(ctx) != 0
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
/// not fully present, total length smaller than the header or larger than the packet, or 0
/// outside BIG TCP) are `Err(Ipv4Malformed)`: they cannot be checked or rewritten safely.
#[inline(always)]
pub fn ipv4(ctx: &TcContext, l3: usize) -> Result<Ipv4, DropReason> {
    let h = Window::<IPV4_MIN_HLEN>::get(ctx, l3).ok_or(DropReason::Ipv4Malformed)?;
    let vihl = h.read::<u8, 0>();
    let tot_len = usize::from(h.be16::<IPV4_TOT_LEN_OFF>());
    let frag = h.be16::<IPV4_FRAG_OFF>();
    let proto = h.read::<u8, IPV4_PROTO_OFF>();
    let src = h.read::<u32, IPV4_SRC_OFF>();
    let dst = h.read::<u32, IPV4_DST_OFF>();
    let hlen = usize::from(vihl & 0x0f) * 4;
    let pkt_len = ctx.len() as usize;
    // BIG TCP: the datagram runs to the end of the skb (see the module docs).
    let tot_len = if tot_len == 0 && big_tcp_ok(ctx, proto) {
        pkt_len.saturating_sub(l3)
    } else {
        tot_len
    };
    if vihl >> 4 != 4 || hlen < IPV4_MIN_HLEN || tot_len < hlen {
        return Err(DropReason::Ipv4Malformed);
    }
    if l3 + tot_len > pkt_len {
        return Err(DropReason::Ipv4Malformed);
    }
    // Options must be present too.
    if hlen > IPV4_MIN_HLEN {
        at(ctx, l3, hlen).ok_or(DropReason::Ipv4Malformed)?;
    }
    Ok(Ipv4 {
        l3,
        l4: l3 + hlen,
        end: l3 + tot_len,
        proto,
        first_fragment: frag & IPV4_OFFSET_MASK == 0,
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
