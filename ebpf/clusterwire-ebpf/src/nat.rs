//! Stateless remap NAT on the tunnel link (replaces conntrack NETMAP rules).
//!
//! `cw_nat_to_tunnel` (TC egress, into the tunnel): destination remapped -> real
//! (`CW_REMAP_DST`), source local real -> external-CIDR address (`CW_IPMAP_EXIT`).
//! `cw_nat_from_tunnel` (TC ingress, out of the tunnel): source real -> remapped
//! (`CW_REMAP_SRC`; a miss means the source is outside the peer's announced CIDRs: dropped as
//! spoofed), destination external-CIDR address -> local real (`CW_IPMAP_ENTRY`).
//! Both then clamp the MSS of SYN/SYN-ACK segments. ICMP errors get their embedded header
//! translated the opposite way (see `icmp`); out of the tunnel, an ICMP error from a router the
//! peer never announced is accepted when it quotes a packet we sent to the peer's announced
//! CIDRs (see `icmp::from_unannounced_router`). Every fragment gets the L3 rewrite; TCP/UDP
//! checksums are fixed where the L4 header is present (first fragment).
//!
//! Verdicts, so that other TC programs on the same hook (a CNI's) keep working:
//! - `TC_ACT_UNSPEC` (= `TCX_NEXT`: the next program runs) for what is not ours: into the
//!   tunnel, anything not IPv4 and IPv4 that matched no table and needed no MSS clamp or ICMP
//!   translation; in both directions, ARP.
//! - `TC_ACT_OK` for what we rewrote, and out of the tunnel for every IPv4 packet that passed
//!   anti-spoofing (its source was judged against the peer's CIDRs: it is the tunnel's traffic).
//! - `TC_ACT_SHOT` with a counted reason: malformed IPv4, spoofed sources, and out of the tunnel
//!   anything not IPv4 or ARP (IPv6, VLAN-tagged frames, other ethertypes; the anti-spoofing
//!   check cannot judge them, so they must not get past it).
//! - BIG TCP (IPv4 total length 0 on a GSO TCP skb) is parsed with `skb->len` as the datagram's
//!   end, as the kernel does (`parse::ipv4`); the address rewrite and the pseudo-header checksum
//!   update do not depend on the length, so it is translated like any other packet.
use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_UNSPEC},
    btf_maps::{Array, HashMap, LpmTrie, lpm_trie::Key},
    macros::{btf_map, classifier},
    programs::TcContext,
};
use clusterwire_common::{
    drop::{DropReason, PROGRAM_NAT_FROM_TUNNEL, PROGRAM_NAT_TO_TUNNEL},
    nat::{
        FILTER_WORDS_PER_TABLE, FilterTable, IPMAP_MAX_ENTRIES, IpMapKey, IpMapValue,
        REMAP_MAX_ENTRIES, REMAP_PEER_BITS, RemapKey, RemapValue, filter_bit, ip_slot, prefix_slot,
    },
    stats::Event,
};

use crate::{
    config, csum, drop, icmp, mss,
    parse::{
        self, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_CSUM_OFF, IPV4_DST_OFF, IPV4_MIN_HLEN,
        IPV4_SRC_OFF, L3, TCP_CSUM_OFF, UDP_CSUM_OFF, Window,
    },
    stats,
};

/// Into the tunnel: remapped destination prefix -> the peer's real prefix.
#[btf_map]
static CW_REMAP_DST: LpmTrie<RemapKey, RemapValue, { REMAP_MAX_ENTRIES as usize }> = LpmTrie::new();

/// Out of the tunnel: the peer's real source prefix -> its locally remapped prefix. Also the
/// peer's announced CIDRs: a miss is a spoofed source.
#[btf_map]
static CW_REMAP_SRC: LpmTrie<RemapKey, RemapValue, { REMAP_MAX_ENTRIES as usize }> = LpmTrie::new();

/// Into the tunnel: local real address -> its external-CIDR address.
#[btf_map]
static CW_IPMAP_EXIT: HashMap<IpMapKey, IpMapValue, { IPMAP_MAX_ENTRIES as usize }> =
    HashMap::new();

/// Out of the tunnel: external-CIDR address -> local real address.
#[btf_map]
static CW_IPMAP_ENTRY: HashMap<IpMapKey, IpMapValue, { IPMAP_MAX_ENTRIES as usize }> =
    HashMap::new();

/// Lookup prefilter bitmaps (see `clusterwire_common::nat::NAT_FILTER_MAP`): an array lookup
/// (inlined by the verifier) that spares the trie or hash lookup of most misses.
#[btf_map]
static CW_NAT_FILTER: Array<u64, { (FilterTable::COUNT * FILTER_WORDS_PER_TABLE) as usize }> =
    Array::new();

/// Whether `table` may have an entry for the address in prefilter `slot`.
#[inline(always)]
fn may_match(table: FilterTable, slot: u32) -> bool {
    let (index, bit) = filter_bit(table, slot);
    CW_NAT_FILTER.get(index).is_some_and(|word| word & bit != 0)
}

/// Which way a packet crosses the tunnel link.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Into the tunnel (egress), towards the peer.
    ToTunnel,
    /// Out of the tunnel (ingress), from the peer.
    FromTunnel,
}

/// TC egress on the tunnel link: DNAT remapped -> real, IP-map SNAT, MSS clamp, tx counters.
#[classifier]
pub fn cw_nat_to_tunnel(ctx: TcContext) -> i32 {
    match try_nat(&ctx, Dir::ToTunnel) {
        Ok(action) => action,
        Err(reason) => drop::count(&ctx, PROGRAM_NAT_TO_TUNNEL, reason),
    }
}

/// TC ingress on the tunnel link: anti-spoofing and SNAT real -> remapped, IP-map DNAT, MSS
/// clamp, rx counters.
#[classifier]
pub fn cw_nat_from_tunnel(ctx: TcContext) -> i32 {
    match try_nat(&ctx, Dir::FromTunnel) {
        Ok(action) => action,
        Err(reason) => drop::count(&ctx, PROGRAM_NAT_FROM_TUNNEL, reason),
    }
}

/// Looks `addr` (raw) up in a remap trie; the translated address (raw) on a hit.
#[inline(always)]
fn remap(
    map: &LpmTrie<RemapKey, RemapValue, { REMAP_MAX_ENTRIES as usize }>,
    table: FilterTable,
    peer_id: u32,
    addr: u32,
) -> Option<u32> {
    if !may_match(table, prefix_slot(u32::from_be(addr))) {
        return None;
    }
    let key = Key::new(
        REMAP_PEER_BITS + 32,
        RemapKey {
            peer_id,
            addr_be: addr.to_ne_bytes(),
        },
    );
    let value = map.get(&key)?;
    Some(value.apply(u32::from_be(addr)).to_be())
}

/// Looks `addr` (raw) up in a single-IP map; the mapped address (raw) on a hit.
#[inline(always)]
fn ipmap(
    map: &HashMap<IpMapKey, IpMapValue, { IPMAP_MAX_ENTRIES as usize }>,
    table: FilterTable,
    addr: u32,
) -> Option<u32> {
    if !may_match(table, ip_slot(u32::from_be(addr))) {
        return None;
    }
    let key = IpMapKey {
        addr_be: addr.to_ne_bytes(),
    };
    let value = map.get_ptr(key)?;
    // SAFETY: the pointer comes from a successful lookup; the 4-byte value is copied at once.
    Some(u32::from_ne_bytes(unsafe { (*value).addr_be }))
}

/// The translation of a source address in direction `dir` (`None`: no entry).
#[inline(always)]
pub fn map_src(dir: Dir, peer_id: u32, addr: u32) -> Option<u32> {
    match dir {
        Dir::ToTunnel => ipmap(&CW_IPMAP_EXIT, FilterTable::IpmapExit, addr),
        Dir::FromTunnel => remap(&CW_REMAP_SRC, FilterTable::RemapSrc, peer_id, addr),
    }
}

/// The translation of a destination address in direction `dir` (`None`: no entry).
#[inline(always)]
pub fn map_dst(dir: Dir, peer_id: u32, addr: u32) -> Option<u32> {
    match dir {
        Dir::ToTunnel => remap(&CW_REMAP_DST, FilterTable::RemapDst, peer_id, addr),
        Dir::FromTunnel => ipmap(&CW_IPMAP_ENTRY, FilterTable::IpmapEntry, addr),
    }
}

/// The verdicts of the NAT programs (see the module docs).
#[inline(always)]
fn try_nat(ctx: &TcContext, dir: Dir) -> Result<i32, DropReason> {
    let cfg = config::get();
    match dir {
        Dir::ToTunnel => stats::peer_tx(cfg.peer_id, ctx.len()),
        Dir::FromTunnel => stats::peer_rx(cfg.peer_id, ctx.len()),
    }
    let l3 = match parse::l3(ctx, cfg.l3_device()) {
        L3::Ipv4(l3) => l3,
        // ARP keeps the tunnel link's neighbours working; it is not routed traffic.
        L3::Arp => return Ok(TC_ACT_UNSPEC),
        L3::Other if dir == Dir::FromTunnel => return Err(DropReason::NonIpv4FromTunnel),
        L3::Other => return Ok(TC_ACT_UNSPEC),
    };
    let ip = parse::ipv4(ctx, l3)?;

    let src = match (map_src(dir, cfg.peer_id, ip.src), dir) {
        (Some(a), _) => a,
        (None, Dir::FromTunnel) => {
            let a = icmp::from_unannounced_router(ctx, &ip, cfg.peer_id)
                .ok_or(DropReason::SpoofedSource)?;
            stats::event(Event::IcmpErrorFromRouter);
            a
        }
        (None, Dir::ToTunnel) => ip.src,
    };
    let dst = map_dst(dir, cfg.peer_id, ip.dst).unwrap_or(ip.dst);
    let changed = src != ip.src || dst != ip.dst;
    // Out of the tunnel every IPv4 packet that gets here passed anti-spoofing: it is ours.
    let mut owned = changed || dir == Dir::FromTunnel;

    if ip.proto == IPPROTO_ICMP && ip.first_fragment {
        owned |= icmp::translate_error(ctx, &ip, dir, cfg.peer_id, changed)?;
    }
    if changed {
        rewrite(ctx, &ip, src, dst)?;
        let (src_event, dst_event) = match dir {
            Dir::ToTunnel => (Event::IpmapSnat, Event::NatDstRewritten),
            Dir::FromTunnel => (Event::NatSrcRewritten, Event::IpmapDnat),
        };
        if src != ip.src {
            stats::event(src_event);
        }
        if dst != ip.dst {
            stats::event(dst_event);
        }
    }
    if let Some(mss) = cfg.clamp_mss()
        && ip.proto == IPPROTO_TCP
        && ip.first_fragment
    {
        owned |= mss::clamp(ctx, &ip, mss)?;
    }
    Ok(if owned { TC_ACT_OK } else { TC_ACT_UNSPEC })
}

/// Writes the new addresses (raw) and fixes the IPv4 header checksum and, where the L4 header
/// is present, the TCP/UDP checksum. A first fragment whose TCP/UDP header is cut before its
/// checksum is refused (`L4Truncated`): it cannot be rewritten correctly.
#[inline(always)]
fn rewrite(ctx: &TcContext, ip: &parse::Ipv4, src: u32, dst: u32) -> Result<(), DropReason> {
    let l4_csum = if ip.first_fragment {
        match ip.proto {
            IPPROTO_TCP => Some((ip.l4 + TCP_CSUM_OFF, false)),
            // The whole UDP header must be there, not only its checksum.
            IPPROTO_UDP => Some((ip.l4 + UDP_CSUM_OFF, true)),
            _ => None,
        }
    } else {
        stats::event(Event::FragmentL3Only);
        None
    };
    if let Some((off, _)) = l4_csum
        && !(ip.has(off, 2) && parse::load::<u16>(ctx, off).is_some())
    {
        return Err(DropReason::L4Truncated);
    }
    let diff = csum::add(csum::diff4(ip.src, src), csum::diff4(ip.dst, dst));
    // One bound check for the fixed header, then plain writes.
    let h = Window::<IPV4_MIN_HLEN>::get(ctx, ip.l3).ok_or(DropReason::RewriteFailed)?;
    let check = h.read::<u16, IPV4_CSUM_OFF>();
    if src != ip.src {
        h.write::<u32, IPV4_SRC_OFF>(src);
    }
    if dst != ip.dst {
        h.write::<u32, IPV4_DST_OFF>(dst);
    }
    h.write::<u16, IPV4_CSUM_OFF>(csum::apply(check, diff));
    if let Some((off, udp)) = l4_csum {
        csum::l4_pseudo(ctx, off, diff, udp)?;
    }
    Ok(())
}
