//! Code generation options of the eBPF object. bpf-linker does the code generation (LTO), so
//! they are linker arguments.
//!
//! `+allows-misaligned-mem-access` (LLVM 22): packet fields are read and written with
//! `read_unaligned`/`write_unaligned` (an IPv4 header after a 14-byte Ethernet header is not
//! 4-byte aligned); without the feature LLVM splits every such 16/32-bit access into byte loads,
//! shifts and stack spills. The kernels we support run on x86_64, whose verifier accepts
//! misaligned packet access (no strict alignment) and whose JIT emits plain loads for it.
fn main() {
    println!("cargo:rustc-link-arg=--cpu-features=+allows-misaligned-mem-access");
    println!("cargo:rerun-if-changed=build.rs");
}
