//! Drop accounting: every dropped packet has a [`DropReason`] counted in `CW_DROPS`.
use aya_ebpf::{bindings::TC_ACT_SHOT, btf_maps::PerCpuArray, macros::btf_map};
use clusterwire_common::drop::DropReason;

/// Per-CPU drop counters, indexed by [`DropReason`].
#[btf_map]
static CW_DROPS: PerCpuArray<u64, { DropReason::COUNT as usize }> = PerCpuArray::new();

/// Counts a drop for `reason` and returns `TC_ACT_SHOT`, for the entry points'
/// `Err(reason) => drop::count(reason)` arm.
#[inline(always)]
pub fn count(reason: DropReason) -> i32 {
    if let Some(slot) = CW_DROPS.get_ptr_mut(reason as u32) {
        // SAFETY: a per-CPU slot; only this CPU writes it while the program runs.
        unsafe { *slot += 1 };
    }
    TC_ACT_SHOT as i32
}
