//! TEMPORARY stand-ins for the shared drop counters, events, config and packet access, until
//! the shared modules land. Replaced, not kept.
use aya_ebpf::{bindings::TC_ACT_SHOT, programs::TcContext};

#[derive(Clone, Copy)]
pub enum DropReason {
    GeneveMalformed,
    GeneveUnknownPeer,
    GeneveUnknownVni,
    GeneveEncapFailed,
    GeneveDecapFailed,
    GeneveRedirectFailed,
}

#[derive(Clone, Copy)]
pub enum Event {
    GeneveEncap,
    GeneveDecap,
}

pub struct Config {
    pub local_ipv4_be: u32,
    pub geneve_port: u16,
}

#[unsafe(no_mangle)]
static CW_GENEVE_TMP_LOCAL: u32 = 0;

#[inline(always)]
pub fn config() -> Config {
    // SAFETY: a plain read of a load-time global.
    let local = unsafe { core::ptr::read_volatile(&raw const CW_GENEVE_TMP_LOCAL) };
    Config {
        local_ipv4_be: local,
        geneve_port: 6091,
    }
}

#[inline(always)]
pub fn drop_packet(_reason: DropReason) -> i32 {
    TC_ACT_SHOT as i32
}

#[inline(always)]
pub fn count_event(_event: Event) {}

/// A pointer to packet bytes `off..off + len`, once they are directly readable (pulled into the
/// linear area if needed); `None` when the packet is shorter. The bound is checked on the
/// returned pointer itself, so the verifier accepts accesses through it even for a variable
/// `off`.
#[inline(always)]
pub fn at(ctx: &TcContext, off: usize, len: usize) -> Option<usize> {
    let p = ctx.data() + off;
    if p + len <= ctx.data_end() {
        return Some(p);
    }
    let need = off + len;
    if need > ctx.len() as usize {
        return None;
    }
    #[expect(clippy::cast_possible_truncation, reason = "need <= skb len, a u32")]
    ctx.pull_data(need as u32).ok()?;
    let p = ctx.data() + off;
    if p + len > ctx.data_end() {
        return None;
    }
    Some(p)
}
