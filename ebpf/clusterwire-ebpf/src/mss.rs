//! TCP MSS clamping of SYN and SYN-ACK segments, both directions through the tunnel: an MSS
//! option larger than `tunnel_mtu - 40` is lowered to it, never raised.
//!
//! The option walk is bounded (at most 40 option bytes, one step per option) and stops at EOL,
//! at the end of the header (data offset), at the end of the packet, and at any malformed
//! option (length < 2, running past the header, or an MSS option whose length is not 4): a
//! malformed list is left untouched.
use aya_ebpf::programs::TcContext;
use clusterwire_common::{drop::DropReason, stats::Event};

use crate::{csum, parse, stats};

/// TCP flag SYN.
const TCP_SYN: u8 = 0x02;
/// Option kinds.
const OPT_EOL: u8 = 0;
/// No-operation (1 byte).
const OPT_NOP: u8 = 1;
/// Maximum segment size (kind 2, length 4).
const OPT_MSS: u8 = 2;
/// Most option bytes a TCP header can hold (60 - 20).
const MAX_OPT_BYTES: usize = 40;

/// Clamps the MSS option of a SYN/SYN-ACK at `ip.l4`; returns whether it was lowered.
#[inline(always)]
pub fn clamp(ctx: &TcContext, ip: &parse::Ipv4, mss: u16) -> Result<bool, DropReason> {
    let l4 = ip.l4;
    if !ip.has(l4, 20) {
        return Ok(false);
    }
    // Data offset and flags, read as one 16-bit window (see `parse::u8_at`).
    let Some(word) = parse::u16_at(ctx, l4 + 12) else {
        return Ok(false);
    };
    let [doff, flags] = word.to_ne_bytes();
    if flags & TCP_SYN == 0 {
        return Ok(false);
    }
    let hlen = usize::from(doff >> 4) * 4;
    if hlen <= 20 || !ip.has(l4, hlen) {
        return Ok(false);
    }
    let Some(opt) = find_mss(ctx, l4, hlen) else {
        return Ok(false);
    };
    let Some(raw) = parse::u16_at(ctx, l4 + opt) else {
        return Ok(false);
    };
    if u16::from_be(raw) <= mss {
        return Ok(false);
    }
    let new = mss.to_be();
    parse::put_u16(ctx, l4 + opt, new)?;
    // The checksum sums 16-bit words aligned to the TCP header: a value at an odd offset
    // contributes with its bytes swapped.
    let (from, to) = if opt & 1 == 1 {
        (raw.swap_bytes(), new.swap_bytes())
    } else {
        (raw, new)
    };
    csum::l4_replace2(ctx, l4 + parse::TCP_CSUM_OFF, from, to)?;
    stats::event(Event::MssClamped);
    Ok(true)
}

/// Offset (from the TCP header) of the MSS option's value, if the option list is well formed up
/// to it. Each step reads the 16-bit window (kind, length) at `i`: when even that is past the
/// packet, `i` is its last byte, where no MSS option can start.
#[inline(always)]
fn find_mss(ctx: &TcContext, l4: usize, hlen: usize) -> Option<usize> {
    // Verifier trap (6.1): LLVM knows `i < hlen <= 60` and drops the `& 0x3f` below as
    // redundant, but the 6.1 verifier cannot bound `i` from a register-to-register compare, so
    // the packet offset looks unbounded. An opaque `hlen` keeps the mask in the code.
    // SAFETY: a volatile read of a local.
    let hlen = unsafe { core::ptr::read_volatile(&raw const hlen) };
    let mut i = 20usize;
    for _ in 0..MAX_OPT_BYTES {
        if i >= hlen {
            return None;
        }
        let [kind, len] = parse::u16_at(ctx, l4 + (i & 0x3f))?.to_ne_bytes();
        match kind {
            OPT_EOL => return None,
            OPT_NOP => i += 1,
            _ => {
                let len = usize::from(len);
                if len < 2 || i + len > hlen {
                    return None;
                }
                if kind == OPT_MSS {
                    return if len == 4 { Some(i + 2) } else { None };
                }
                i += len;
            }
        }
    }
    None
}
