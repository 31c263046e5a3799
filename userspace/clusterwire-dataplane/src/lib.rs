//! Loads clusterwire's eBPF object (embedded at build time), pins its maps under
//! `/sys/fs/bpf/clusterwire/<instance>/` and exposes typed handles to programs and maps.
#![forbid(unsafe_code)]

pub mod config;
pub mod counters;
pub mod datapath;
pub mod error;
mod filter;
pub mod geneve;
pub mod object;
pub mod probe;
pub mod tables;

pub use datapath::{Datapath, LoadOptions, PIN_ROOT};
pub use error::{ConfigError, LoadError, MapError};
pub use tables::{IpMapKind, IpMapTable, RemapEntry, RemapKind, RemapTable};
