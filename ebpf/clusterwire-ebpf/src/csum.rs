//! Internet checksum arithmetic (RFC 1071 sums, RFC 1624 incremental updates) and wrappers of
//! the kernel's `bpf_l4_csum_replace`.
//!
//! Values are "raw": 16/32-bit words loaded from packet memory in native order
//! (`u32::from_ne_bytes(bytes)`); one's-complement sums are byte-order independent, so the
//! result stored back the same way is correct.
//!
//! Which tool for which checksum: the outer TCP/UDP checksum may be `CHECKSUM_PARTIAL` (only
//! the pseudo-header seed is in the packet) or covered by `CHECKSUM_COMPLETE`, which only the
//! kernel helper knows about, so it is always updated with `bpf_l4_csum_replace` (pseudo-header
//! changes with `BPF_F_PSEUDO_HDR`, UDP with `BPF_F_MARK_MANGLED_0` so 0 stays 0). The IPv4
//! header checksum and everything inside an ICMP message (the ICMP checksum, an embedded IPv4
//! header and embedded TCP/UDP checksums) are updated here with direct writes; each update
//! compensates exactly the bytes it changes, so a `CHECKSUM_COMPLETE` sum stays valid.
use aya_ebpf::{
    bindings::{BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR},
    programs::TcContext,
};
use clusterwire_common::drop::DropReason;

/// One's-complement 32-bit addition (end-around carry).
#[inline(always)]
pub fn add(a: u32, b: u32) -> u32 {
    let (sum, carry) = a.overflowing_add(b);
    sum.wrapping_add(u32::from(carry))
}

/// Folds a 32-bit one's-complement sum to 16 bits.
#[inline(always)]
pub fn fold(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    #[expect(
        clippy::cast_possible_truncation,
        reason = "folded twice, fits in 16 bits"
    )]
    let folded = s as u16;
    folded
}

/// The sum difference of replacing the 32-bit word `from` with `to` (`~from + to`).
#[inline(always)]
pub fn diff4(from: u32, to: u32) -> u32 {
    add(!from, to)
}

/// The sum difference of replacing the 16-bit word `from` with `to`.
#[inline(always)]
pub fn diff2(from: u16, to: u16) -> u32 {
    add(u32::from(!from), u32::from(to))
}

/// A checksum field (raw) after the covered data changed by `diff` (RFC 1624 eqn. 3:
/// `HC' = ~(~HC + ~m + m')`).
#[inline(always)]
pub fn apply(check: u16, diff: u32) -> u16 {
    !fold(add(u32::from(!check), diff))
}

/// Same as [`apply`] for a UDP checksum: 0 (no checksum) stays 0, and a result of 0 is sent as
/// `0xffff` (RFC 768).
#[inline(always)]
pub fn apply_udp(check: u16, diff: u32) -> u16 {
    if check == 0 {
        return 0;
    }
    match apply(check, diff) {
        0 => 0xffff,
        c => c,
    }
}

/// Updates the outer TCP/UDP checksum at packet offset `off` for a pseudo-header change of
/// `diff` (addresses), with the kernel helper (see the module docs). Invalidates packet pointers.
#[inline(always)]
pub fn l4_pseudo(ctx: &TcContext, off: usize, diff: u32, udp: bool) -> Result<(), DropReason> {
    let mangled = if udp { BPF_F_MARK_MANGLED_0 } else { 0 };
    // Size 0: `to` is a checksum difference, `from` must be 0.
    ctx.l4_csum_replace(
        off,
        0,
        u64::from(diff),
        u64::from(BPF_F_PSEUDO_HDR | mangled),
    )
    .map_err(|_| DropReason::CsumHelperFailed)
}

/// Updates the outer TCP checksum at packet offset `off` for a 16-bit word of the segment that
/// changed from `from` to `to` (raw values as if the word were 2-byte aligned in the segment:
/// swap the bytes of both for a word at an odd offset). Invalidates packet pointers.
#[inline(always)]
pub fn l4_replace2(ctx: &TcContext, off: usize, from: u16, to: u16) -> Result<(), DropReason> {
    ctx.l4_csum_replace(off, u64::from(from), u64::from(to), 2)
        .map_err(|_| DropReason::CsumHelperFailed)
}
