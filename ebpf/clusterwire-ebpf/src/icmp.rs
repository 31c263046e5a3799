//! ICMP errors across the remap NAT (RFC 5508): the embedded packet is the reverse of the
//! packet that caused the error, so it is translated the opposite way of the outer header.
//!
//! An error travelling in direction `dir` quotes a packet that travelled the other way. The
//! outer destination is the quoted packet's source and gets the same translation: embedded
//! source = `map_dst(dir, ..)`; the outer source is the quoted destination: embedded
//! destination = `map_src(dir, ..)` (a miss leaves it as is; only the outer source is
//! anti-spoofing-checked). For example, out of the tunnel, a port-unreachable from the peer's
//! real 10.0.2.7 about our pod's packet (quoted `10.0.1.5 -> 10.0.2.7`) gets outer source
//! remapped to 10.50.2.7 and embedded destination remapped to 10.50.2.7 too.
//!
//! Rewritten: embedded addresses, embedded IPv4 checksum, embedded TCP/UDP checksum when it
//! is quoted (pseudo-header; UDP 0 stays 0) and the ICMP checksum, all incrementally, so a
//! quote truncated by the router is handled. Ports are never translated (address-only NAT).
//! Policy for a malformed or truncated embedded IPv4 header: if the error needs a rewrite
//! (outer or embedded) it is dropped as `IcmpInnerMalformed`; otherwise it passes untouched.
use aya_ebpf::programs::TcContext;
use clusterwire_common::{drop::DropReason, stats::Event};

use crate::{
    csum,
    nat::{self, Dir},
    parse::{self, IPPROTO_TCP, IPPROTO_UDP, IPV4_CSUM_OFF, IPV4_MIN_HLEN, IPV4_SRC_OFF},
    stats,
};

/// ICMP types that embed the offending packet.
const ICMP_DEST_UNREACH: u8 = 3;
/// Time exceeded.
const ICMP_TIME_EXCEEDED: u8 = 11;
/// Parameter problem.
const ICMP_PARAMETERPROB: u8 = 12;
/// ICMP header length (type, code, checksum, 4 bytes of rest-of-header).
const ICMP_HLEN: usize = 8;

/// Translates the embedded header of an ICMP error at `ip.l4` (first fragment) for direction
/// `dir`. `outer_changes` says whether the outer header will be rewritten.
#[inline(always)]
pub fn translate_error(
    ctx: &TcContext,
    ip: &parse::Ipv4,
    dir: Dir,
    peer_id: u32,
    outer_changes: bool,
) -> Result<(), DropReason> {
    let icmp = ip.l4;
    if !ip.has(icmp, ICMP_HLEN) {
        return Ok(());
    }
    let Some(word) = parse::u16_at(ctx, icmp) else {
        return Ok(());
    };
    let kind = word.to_ne_bytes()[0];
    if !matches!(
        kind,
        ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED | ICMP_PARAMETERPROB
    ) {
        return Ok(());
    }
    let inner = icmp + ICMP_HLEN;
    let malformed = if outer_changes {
        Err(DropReason::IcmpInnerMalformed)
    } else {
        Ok(())
    };
    let Some(p) = parse::at(ctx, inner, IPV4_MIN_HLEN).filter(|_| ip.has(inner, IPV4_MIN_HLEN))
    else {
        return malformed;
    };
    // SAFETY: `at` checked that 20 bytes at `p` are inside the packet.
    let (vihl, frag, proto, isrc, idst) = unsafe {
        (
            *(p as *const u8),
            u16::from_be(core::ptr::read_unaligned((p + 6) as *const u16)),
            *((p + 9) as *const u8),
            core::ptr::read_unaligned((p + IPV4_SRC_OFF) as *const u32),
            core::ptr::read_unaligned((p + IPV4_SRC_OFF + 4) as *const u32),
        )
    };
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < IPV4_MIN_HLEN || !ip.has(inner, ihl) {
        return malformed;
    }
    let new_src = nat::map_dst(dir, peer_id, isrc).unwrap_or(isrc);
    let new_dst = nat::map_src(dir, peer_id, idst).unwrap_or(idst);
    if new_src == isrc && new_dst == idst {
        return Ok(());
    }
    let addr_diff = csum::add(csum::diff4(isrc, new_src), csum::diff4(idst, new_dst));

    // Embedded IPv4 header.
    let icheck_off = inner + IPV4_CSUM_OFF;
    let icheck = parse::u16_at(ctx, icheck_off).ok_or(DropReason::RewriteFailed)?;
    let new_icheck = csum::apply(icheck, addr_diff);
    parse::put_u32(ctx, inner + IPV4_SRC_OFF, new_src)?;
    parse::put_u32(ctx, inner + IPV4_SRC_OFF + 4, new_dst)?;
    parse::put_u16(ctx, icheck_off, new_icheck)?;
    let mut icmp_diff = csum::add(addr_diff, csum::diff2(icheck, new_icheck));

    // Embedded TCP/UDP checksum, when quoted and the quoted packet carries the L4 header.
    if frag & 0x1fff == 0 {
        let l4_check = match proto {
            IPPROTO_TCP => Some((inner + ihl + parse::TCP_CSUM_OFF, false)),
            IPPROTO_UDP => Some((inner + ihl + parse::UDP_CSUM_OFF, true)),
            _ => None,
        };
        if let Some((off, udp)) = l4_check
            && ip.has(off, 2)
            && let Some(check) = parse::u16_at(ctx, off)
        {
            let new_check = if udp {
                csum::apply_udp(check, addr_diff)
            } else {
                csum::apply(check, addr_diff)
            };
            parse::put_u16(ctx, off, new_check)?;
            icmp_diff = csum::add(icmp_diff, csum::diff2(check, new_check));
        }
    }

    // ICMP checksum over everything changed inside the message.
    let check_off = icmp + 2;
    let check = parse::u16_at(ctx, check_off).ok_or(DropReason::RewriteFailed)?;
    parse::put_u16(ctx, check_off, csum::apply(check, icmp_diff))?;
    stats::event(Event::IcmpInnerRewritten);
    Ok(())
}
