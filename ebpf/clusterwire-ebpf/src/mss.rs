//! TCP MSS clamping of SYN and SYN-ACK segments, both directions through the tunnel: an MSS
//! option larger than `tunnel_mtu - 40` is lowered to it, never raised.
//!
//! The option walk is bounded (at most 40 option bytes, one step per option) and stops at EOL,
//! at the end of the header (data offset), at the end of the packet, and at any malformed
//! option (length < 2, running past the header, or an MSS option whose length is not 4): a
//! malformed list is left untouched.
use aya_ebpf::programs::TcContext;
use clusterwire_common::{drop::DropReason, stats::Event};

use crate::{
    csum,
    parse::{self, TCP_CSUM_OFF, Window},
    stats,
};

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
    let Some([doff, flags]) = parse::load::<[u8; 2]>(ctx, l4 + 12) else {
        return Ok(false);
    };
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
    // `opt <= 58`; the mask states it to the 6.1 verifier (see `find_mss`).
    let opt = opt & 0x3f;
    let Some(raw) = parse::load::<u16>(ctx, l4 + opt) else {
        return Ok(false);
    };
    if u16::from_be(raw) <= mss {
        return Ok(false);
    }
    let new = mss.to_be();
    parse::store(ctx, l4 + opt, new)?;
    // The checksum sums 16-bit words aligned to the TCP header: a value at an odd offset
    // contributes with its bytes swapped.
    let (from, to) = if opt & 1 == 1 {
        (raw.swap_bytes(), new.swap_bytes())
    } else {
        (raw, new)
    };
    csum::l4_replace2(ctx, l4 + TCP_CSUM_OFF, from, to)?;
    stats::event(Event::MssClamped);
    Ok(true)
}

/// Offset (from the TCP header) of the MSS option's value, if the option list is well formed up
/// to it.
///
/// Verifier-friendly shape: the loop runs over byte positions (a counter the verifier knows
/// exactly in every iteration), not over options. `next` (where the next option starts) only
/// decides whether a position is read; it never becomes a packet offset, so the verifier does
/// not need its exact value and prunes the paths. `next` lives behind volatile accesses so
/// LLVM cannot turn the loop back into "jump to `next`". Walking options with `i += len` instead
/// makes `i` part of every packet offset: the 6.1 verifier then explores each path separately
/// and gives up after a million instructions. Each read is the 16-bit window (kind, length):
/// when even that is past the packet, the position is the packet's last byte, where no MSS
/// option can start.
#[inline(always)]
fn find_mss(ctx: &TcContext, l4: usize, hlen: usize) -> Option<usize> {
    let mut next = 20usize;
    for pos in 20..20 + MAX_OPT_BYTES {
        if pos >= hlen {
            return None;
        }
        // SAFETY: a volatile read of a local.
        if unsafe { core::ptr::read_volatile(&raw const next) } != pos {
            continue;
        }
        let w = Window::<2>::get_opaque(ctx, l4 + pos)?;
        let [kind, len] = w.read::<[u8; 2], 0>();
        match kind {
            OPT_EOL => return None,
            // SAFETY: a volatile write of a local.
            OPT_NOP => unsafe { core::ptr::write_volatile(&raw mut next, pos + 1) },
            _ => {
                let len = usize::from(len);
                if len < 2 || pos + len > hlen {
                    return None;
                }
                if kind == OPT_MSS {
                    return if len == 4 { Some(pos + 2) } else { None };
                }
                // SAFETY: a volatile write of a local.
                unsafe { core::ptr::write_volatile(&raw mut next, pos + len) };
            }
        }
    }
    None
}
