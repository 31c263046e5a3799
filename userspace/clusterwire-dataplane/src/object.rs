//! The eBPF object built by `build.rs` (aya-build), embedded in the binary.

/// Bytes of the `clusterwire-ebpf` ELF object, with BTF.
pub static OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/clusterwire-ebpf"));
