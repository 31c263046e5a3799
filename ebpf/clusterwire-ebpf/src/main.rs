//! clusterwire's TC programs. Entry points only dispatch; each concern lives in its own module.
#![no_std]
#![no_main]

mod config;
mod csum;
mod drop;
mod geneve;
mod icmp;
mod mss;
mod nat;
mod parse;
mod probe;
mod stats;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable panic path, so this is never reached at run time.
    loop {}
}

/// License of the object: GPL-compatible, so GPL-only helpers are available.
#[unsafe(no_mangle)]
#[unsafe(link_section = "license")]
pub static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
