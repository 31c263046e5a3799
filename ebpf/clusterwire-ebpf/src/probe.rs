//! The self-check probe program: counts packets and bytes, never changes or drops a packet.
use aya_ebpf::{
    bindings::TC_ACT_PIPE, btf_maps::PerCpuArray, macros::btf_map, macros::classifier,
    programs::TcContext,
};
use clusterwire_common::probe::ProbeCounter;

#[btf_map]
static CW_PROBE_COUNTERS: PerCpuArray<u64, { ProbeCounter::COUNT as usize }> = PerCpuArray::new();

#[classifier]
pub fn cw_probe_count(ctx: TcContext) -> i32 {
    bump(ProbeCounter::Packets, 1);
    bump(ProbeCounter::Bytes, u64::from(ctx.len()));
    TC_ACT_PIPE
}

#[inline(always)]
fn bump(counter: ProbeCounter, by: u64) {
    if let Some(slot) = CW_PROBE_COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe { *slot += by };
    }
}
