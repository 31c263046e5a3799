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
//!
//! Out of the tunnel, an error from a router the peer never announced (PMTUD's
//! fragmentation-needed, traceroute's time-exceeded from inside the peer's network) has an
//! outer source that misses `CW_REMAP_SRC`. It is accepted when the packet it quotes was sent by
//! us to the peer's announced CIDRs (the quoted destination hits `CW_REMAP_SRC` of this peer):
//! its outer source becomes the remapped quoted destination, as the kernel's NAT presents such
//! errors, and the quote is translated as usual. Anything else from an unannounced source stays
//! a spoofed source.
use aya_ebpf::programs::TcContext;
use clusterwire_common::{drop::DropReason, stats::Event};

use crate::{
    csum,
    nat::{self, Dir},
    parse::{
        self, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_CSUM_OFF, IPV4_DST_OFF, IPV4_FRAG_OFF,
        IPV4_MIN_HLEN, IPV4_OFFSET_MASK, IPV4_PROTO_OFF, IPV4_SRC_OFF, TCP_CSUM_OFF, UDP_CSUM_OFF,
        Window,
    },
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
/// Offset of the checksum in an ICMP header.
const ICMP_CSUM_OFF: usize = 2;

/// The embedded (quoted) IPv4 header of an ICMP error.
struct Quote {
    /// Offset of the embedded IPv4 header.
    at: usize,
    /// Its header length.
    ihl: usize,
    /// Flags and fragment offset, host order.
    frag: u16,
    /// Protocol.
    proto: u8,
    /// Source, raw.
    src: u32,
    /// Destination, raw.
    dst: u32,
}

/// What an ICMP message at `ip.l4` quotes.
enum Quoted {
    /// Not an error that embeds a packet (or too short to tell): nothing to translate.
    NotAnError,
    /// An error whose embedded IPv4 header is truncated or malformed.
    Malformed,
    /// An error and its embedded header.
    Header(Quote),
}

/// Reads the embedded header of the ICMP message of `ip` (an ICMP first fragment).
#[inline(always)]
fn quoted(ctx: &TcContext, ip: &parse::Ipv4) -> Quoted {
    let icmp = ip.l4;
    if !ip.has(icmp, ICMP_HLEN) {
        return Quoted::NotAnError;
    }
    let Some([kind, _code]) = parse::load::<[u8; 2]>(ctx, icmp) else {
        return Quoted::NotAnError;
    };
    if !matches!(
        kind,
        ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED | ICMP_PARAMETERPROB
    ) {
        return Quoted::NotAnError;
    }
    let at = icmp + ICMP_HLEN;
    let Some(h) = Window::<IPV4_MIN_HLEN>::get(ctx, at).filter(|_| ip.has(at, IPV4_MIN_HLEN))
    else {
        return Quoted::Malformed;
    };
    let vihl = h.read::<u8, 0>();
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < IPV4_MIN_HLEN || !ip.has(at, ihl) {
        return Quoted::Malformed;
    }
    Quoted::Header(Quote {
        at,
        ihl,
        frag: h.be16::<IPV4_FRAG_OFF>(),
        proto: h.read::<u8, IPV4_PROTO_OFF>(),
        src: h.read::<u32, IPV4_SRC_OFF>(),
        dst: h.read::<u32, IPV4_DST_OFF>(),
    })
}

/// Out of the tunnel, for a packet whose outer source is not announced by the peer: if it is
/// an ICMP error quoting a packet we sent to the peer's announced CIDRs, the outer source to
/// use (the remapped quoted destination); `None` otherwise (a spoofed source).
#[inline(always)]
pub fn from_unannounced_router(ctx: &TcContext, ip: &parse::Ipv4, peer_id: u32) -> Option<u32> {
    if ip.proto != IPPROTO_ICMP || !ip.first_fragment {
        return None;
    }
    match quoted(ctx, ip) {
        Quoted::Header(q) => nat::map_src(Dir::FromTunnel, peer_id, q.dst),
        Quoted::NotAnError | Quoted::Malformed => None,
    }
}

/// Translates the embedded header of an ICMP error at `ip.l4` (first fragment) for direction
/// `dir`. `outer_changes` says whether the outer header will be rewritten. Returns whether the
/// embedded header was rewritten.
#[inline(always)]
pub fn translate_error(
    ctx: &TcContext,
    ip: &parse::Ipv4,
    dir: Dir,
    peer_id: u32,
    outer_changes: bool,
) -> Result<bool, DropReason> {
    let q = match quoted(ctx, ip) {
        Quoted::Header(q) => q,
        Quoted::NotAnError => return Ok(false),
        Quoted::Malformed if outer_changes => return Err(DropReason::IcmpInnerMalformed),
        Quoted::Malformed => return Ok(false),
    };
    let new_src = nat::map_dst(dir, peer_id, q.src).unwrap_or(q.src);
    let new_dst = nat::map_src(dir, peer_id, q.dst).unwrap_or(q.dst);
    if new_src == q.src && new_dst == q.dst {
        return Ok(false);
    }
    let addr_diff = csum::add(csum::diff4(q.src, new_src), csum::diff4(q.dst, new_dst));

    // Embedded IPv4 header.
    let h = Window::<IPV4_MIN_HLEN>::get(ctx, q.at).ok_or(DropReason::RewriteFailed)?;
    let icheck = h.read::<u16, IPV4_CSUM_OFF>();
    let new_icheck = csum::apply(icheck, addr_diff);
    h.write::<u32, IPV4_SRC_OFF>(new_src);
    h.write::<u32, IPV4_DST_OFF>(new_dst);
    h.write::<u16, IPV4_CSUM_OFF>(new_icheck);
    let mut icmp_diff = csum::add(addr_diff, csum::diff2(icheck, new_icheck));

    // Embedded TCP/UDP checksum, when quoted and the quoted packet carries the L4 header.
    if q.frag & IPV4_OFFSET_MASK == 0 {
        let l4_check = match q.proto {
            IPPROTO_TCP => Some((q.at + q.ihl + TCP_CSUM_OFF, false)),
            IPPROTO_UDP => Some((q.at + q.ihl + UDP_CSUM_OFF, true)),
            _ => None,
        };
        if let Some((off, udp)) = l4_check
            && ip.has(off, 2)
            && let Some(check) = parse::load::<u16>(ctx, off)
        {
            let new_check = if udp {
                csum::apply_udp(check, addr_diff)
            } else {
                csum::apply(check, addr_diff)
            };
            parse::store(ctx, off, new_check)?;
            icmp_diff = csum::add(icmp_diff, csum::diff2(check, new_check));
        }
    }

    // ICMP checksum over everything changed inside the message.
    let check_off = ip.l4 + ICMP_CSUM_OFF;
    let check = parse::load::<u16>(ctx, check_off).ok_or(DropReason::RewriteFailed)?;
    parse::store(ctx, check_off, csum::apply(check, icmp_diff))?;
    stats::event(Event::IcmpInnerRewritten);
    Ok(true)
}
