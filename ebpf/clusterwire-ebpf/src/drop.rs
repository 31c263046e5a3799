//! Drop accounting: every dropped packet has a [`DropReason`] counted in `CW_DROPS`, and, while
//! the drop monitor is switched on (`CW_MONITOR`), is reported as a [`DropEvent`] to the ring
//! buffer `CW_MONITOR_EVENTS` (what `cwctl monitor` prints).
//!
//! Cost when the monitor is off: one array lookup (inlined by the verifier) per drop; packets
//! that are not dropped never read the switch.
use aya_ebpf::{
    bindings::TC_ACT_SHOT,
    btf_maps::{Array, PerCpuArray, RingBuf},
    helpers::bpf_ktime_get_ns,
    macros::btf_map,
    programs::TcContext,
};
use clusterwire_common::drop::{
    DROP_EVENT_IPV4, DROP_EVENT_PORTS, DropEvent, DropReason, MONITOR_DROPS, MONITOR_RING_BYTES,
    PROGRAM_NAT_FROM_TUNNEL, PROGRAM_NAT_TO_TUNNEL,
};

use crate::{
    config,
    parse::{
        self, IPPROTO_TCP, IPPROTO_UDP, IPV4_DST_OFF, IPV4_FRAG_OFF, IPV4_MIN_HLEN,
        IPV4_OFFSET_MASK, IPV4_PROTO_OFF, IPV4_SRC_OFF, L3, Window,
    },
};

/// Per-CPU drop counters, indexed by [`DropReason`].
#[btf_map]
static CW_DROPS: PerCpuArray<u64, { DropReason::COUNT as usize }> = PerCpuArray::new();

/// The monitor switch: `MONITOR_*` bits in slot 0, 0 by default.
#[btf_map]
static CW_MONITOR: Array<u32, 1> = Array::new();

/// Drop events for `cwctl monitor`, written only while `CW_MONITOR` has `MONITOR_DROPS`.
#[btf_map]
static CW_MONITOR_EVENTS: RingBuf<DropEvent, { MONITOR_RING_BYTES as usize }> = RingBuf::new();

/// Counts a drop for `reason` by `program` (`PROGRAM_*`), reports it if the monitor is on, and
/// returns `TC_ACT_SHOT`, for the entry points' `Err(reason) => drop::count(..)` arm.
#[inline(always)]
pub fn count(ctx: &TcContext, program: u8, reason: DropReason) -> i32 {
    if let Some(slot) = CW_DROPS.get_ptr_mut(reason as u32) {
        // SAFETY: a per-CPU slot; only this CPU writes it while the program runs.
        unsafe { *slot += 1 };
    }
    if CW_MONITOR
        .get(0)
        .is_some_and(|bits| bits & MONITOR_DROPS != 0)
    {
        report(ctx, program, reason);
    }
    TC_ACT_SHOT as i32
}

/// Writes a [`DropEvent`] for the packet as it is now. Lost (silently: the drop is still
/// counted) when the ring buffer is full. Cold path, kept out of line.
#[inline(never)]
fn report(ctx: &TcContext, program: u8, reason: DropReason) {
    let Some(mut entry) = CW_MONITOR_EVENTS.reserve(0) else {
        return;
    };
    let mut event = DropEvent {
        // SAFETY: a helper without arguments.
        ktime_ns: unsafe { bpf_ktime_get_ns() },
        reason: reason as u32,
        ifindex: parse::ifindex(ctx),
        len: ctx.len(),
        program,
        ..DropEvent::default()
    };
    // The NAT programs run on the tunnel device, which may be L3; Geneve only on Ethernet.
    let l3_device = (program == PROGRAM_NAT_TO_TUNNEL || program == PROGRAM_NAT_FROM_TUNNEL)
        && config::get().l3_device();
    describe(ctx, l3_device, &mut event);
    entry.write(event);
    entry.submit(0);
}

/// Fills the addresses, protocol and ports of `event` from the packet, as far as it has them.
#[inline(always)]
fn describe(ctx: &TcContext, l3_device: bool, event: &mut DropEvent) {
    let L3::Ipv4(l3) = parse::l3(ctx, l3_device) else {
        return;
    };
    let Some(h) = Window::<IPV4_MIN_HLEN>::get(ctx, l3) else {
        return;
    };
    let ihl = usize::from(h.read::<u8, 0>() & 0x0f) * 4;
    let first_fragment = h.be16::<IPV4_FRAG_OFF>() & IPV4_OFFSET_MASK == 0;
    event.proto = h.read::<u8, IPV4_PROTO_OFF>();
    event.src_be = h.read::<[u8; 4], IPV4_SRC_OFF>();
    event.dst_be = h.read::<[u8; 4], IPV4_DST_OFF>();
    event.flags = DROP_EVENT_IPV4;
    if first_fragment
        && ihl >= IPV4_MIN_HLEN
        && (event.proto == IPPROTO_TCP || event.proto == IPPROTO_UDP)
        && let Some(ports) = parse::load::<[u16; 2]>(ctx, l3 + ihl)
    {
        event.sport = u16::from_be(ports[0]);
        event.dport = u16::from_be(ports[1]);
        event.flags |= DROP_EVENT_PORTS;
    }
}
