//! Event counters (`CW_EVENTS`) and per-peer packet/byte counters (`CW_PEER_STATS`).
use aya_ebpf::{btf_maps::PerCpuArray, macros::btf_map};
use clusterwire_common::stats::{Event, PEER_STATS_MAX, PeerStats};

/// Per-CPU event counters, indexed by [`Event`].
#[btf_map]
static CW_EVENTS: PerCpuArray<u64, { Event::COUNT as usize }> = PerCpuArray::new();

/// Per-CPU packet/byte counters, indexed by peer id (an array: its lookups are the cheapest).
#[btf_map]
static CW_PEER_STATS: PerCpuArray<PeerStats, { PEER_STATS_MAX as usize }> = PerCpuArray::new();

/// Counts one occurrence of `event`.
#[inline(always)]
pub fn event(event: Event) {
    if let Some(slot) = CW_EVENTS.get_ptr_mut(event as u32) {
        // SAFETY: a per-CPU slot; only this CPU writes it while the program runs.
        unsafe { *slot += 1 };
    }
}

/// The calling CPU's counters of `peer` (`None` for an id past the array; the loader rejects
/// such ids).
#[inline(always)]
fn peer(peer_id: u32) -> Option<*mut PeerStats> {
    CW_PEER_STATS.get_ptr_mut(peer_id)
}

/// Counts a packet of `bytes` received from `peer_id` (out of the tunnel).
#[inline(always)]
pub fn peer_rx(peer_id: u32, bytes: u32) {
    if let Some(p) = peer(peer_id) {
        // SAFETY: a per-CPU value; only this CPU writes it while the program runs.
        unsafe {
            (*p).rx_packets += 1;
            (*p).rx_bytes += u64::from(bytes);
        }
    }
}

/// Counts a packet of `bytes` sent to `peer_id` (into the tunnel).
#[inline(always)]
pub fn peer_tx(peer_id: u32, bytes: u32) {
    if let Some(p) = peer(peer_id) {
        // SAFETY: a per-CPU value; only this CPU writes it while the program runs.
        unsafe {
            (*p).tx_packets += 1;
            (*p).tx_bytes += u64::from(bytes);
        }
    }
}
