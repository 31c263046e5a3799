//! Internet checksum arithmetic (from `clusterwire_common::csum`, tested on the host) and
//! wrappers of the kernel's `bpf_l4_csum_replace`.
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

pub use clusterwire_common::csum::{add, apply, apply_udp, diff2, diff4};

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
