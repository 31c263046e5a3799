//! Event counters (`CW_EVENTS`) and per-peer packet/byte counters (`CW_PEER_STATS`).
use aya_ebpf::{
    bindings::BPF_NOEXIST,
    btf_maps::{PerCpuArray, PerCpuHashMap},
    macros::btf_map,
};
use clusterwire_common::stats::{Event, PeerStats};

/// Maximum number of peers with counters.
const PEER_STATS_MAX: usize = 1024;

/// Per-CPU event counters, indexed by [`Event`].
#[btf_map]
static CW_EVENTS: PerCpuArray<u64, { Event::COUNT as usize }> = PerCpuArray::new();

/// Per-CPU packet/byte counters per peer id.
#[btf_map]
static CW_PEER_STATS: PerCpuHashMap<u32, PeerStats, PEER_STATS_MAX> = PerCpuHashMap::new();

/// Counts one occurrence of `event`.
#[inline(always)]
pub fn event(event: Event) {
    if let Some(slot) = CW_EVENTS.get_ptr_mut(event as u32) {
        // SAFETY: a per-CPU slot; only this CPU writes it while the program runs.
        unsafe { *slot += 1 };
    }
}

/// The calling CPU's counters of `peer`, created on first use.
#[inline(always)]
fn peer(peer_id: u32) -> Option<*mut PeerStats> {
    if let Some(p) = CW_PEER_STATS.get_ptr_mut(peer_id) {
        return Some(p);
    }
    // Another CPU may create it concurrently: ignore EEXIST and look up again.
    let _ = CW_PEER_STATS.insert(peer_id, PeerStats::default(), u64::from(BPF_NOEXIST));
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
