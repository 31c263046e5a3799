//! Link management for clusterwire: the `collect_md` Geneve device a node or gateway uses for
//! the internal network, the WireGuard device of a gateway (the kernel's, or an embedded
//! userspace device where the kernel has no driver: [`wireguard`]), and probes that tell whether
//! the running kernel has these drivers at all.
//!
//! A missing driver is a *capability result* ([`Capability::Unavailable`]), not an error: on such
//! kernels clusterwire falls back to eBPF-native Geneve and userspace WireGuard. Errors
//! ([`LinkError`], [`wireguard::WireGuardError`]) are reserved for things that should have worked
//! and did not.
#![forbid(unsafe_code)]

mod capability;
mod error;
pub mod geneve;
pub mod wireguard;

pub use capability::{Capability, KernelCapabilities, probe_kernel};
pub use error::LinkError;
