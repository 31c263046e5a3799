//! Loads clusterwire's eBPF object (embedded at build time), pins its maps under
//! `/sys/fs/bpf/clusterwire/<instance>/` and exposes typed handles to programs and maps.
#![forbid(unsafe_code)]

pub mod geneve;
pub mod object;
pub mod probe;
