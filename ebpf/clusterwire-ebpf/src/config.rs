//! The load-time global `CW_CONFIG` (per-node constants), set by the loader with
//! `EbpfLoader::override_global("CW_CONFIG", ..)`.
use clusterwire_common::config::DatapathConfig;

/// Per-node constants; the loader overwrites this zero value in `.rodata` before loading.
#[unsafe(no_mangle)]
static CW_CONFIG: DatapathConfig = DatapathConfig::zeroed();

/// The configuration. The volatile read keeps the compiler from folding the zero initial value.
#[inline(always)]
pub fn get() -> DatapathConfig {
    // SAFETY: `CW_CONFIG` is a plain-old-data static that is only written by the loader before
    // the program runs; reading it through a valid pointer is sound.
    unsafe { core::ptr::read_volatile(&raw const CW_CONFIG) }
}
