//! clusterwire's TC programs. Entry points only dispatch; each concern lives in its own module.
#![no_std]
#![no_main]

mod config;
mod csum;
mod drop;
mod geneve;
mod icmp;
mod meta;
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

/// License of the object as the kernel sees it. The eBPF crates are `Apache-2.0 OR
/// GPL-2.0-only`; the object loaded into the kernel is taken under the GPL-2.0 option, so it
/// says "GPL": GPL-only helpers need a GPL-compatible string, and Apache-2.0 alone is not
/// GPL-2.0-compatible (the former "Dual MIT/GPL" named a license no crate declared).
#[unsafe(no_mangle)]
#[unsafe(link_section = "license")]
pub static LICENSE: [u8; 4] = *b"GPL\0";
