//! Types shared by clusterwire's eBPF programs and userspace.
//!
//! Every type here is `#[repr(C)]`, `Copy`, has explicit padding fields and a compile-time size
//! assertion, so the eBPF object's BTF, the kernel map layout and the userspace view agree byte
//! for byte. Multi-byte fields that hold packet data are in network byte order and say so in
//! their name (`addr_be`). With the `user` feature, each type implements `aya::Pod`.
#![no_std]

pub mod config;
pub mod csum;
pub mod drop;
pub mod geneve;
pub mod nat;
pub mod probe;
pub mod stats;

/// Implements `aya::Pod` for plain-old-data map types when building for userspace.
macro_rules! impl_pod {
    ($($t:ty),+ $(,)?) => {
        $(
            #[cfg(feature = "user")]
            // SAFETY: the type is `#[repr(C)]`, `Copy`, and has no implicit padding (checked by
            // a size assertion next to its definition), so every bit pattern is a valid value.
            unsafe impl aya::Pod for $t {}
        )+
    };
}
pub(crate) use impl_pod;
