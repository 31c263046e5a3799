//! Builds `clusterwire-ebpf` for bpfel-unknown-none with Debian's rustc (`rustup run /usr`) and
//! puts the object in `OUT_DIR`, from where `src/object.rs` embeds it.
use std::path::Path;

fn main() -> Result<(), String> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?;
    let workspace = Path::new(&manifest_dir).join("../..");
    // aya-build watches the program crate; the shared types crate must be watched too.
    let common_dir = workspace.join("ebpf/clusterwire-common");
    println!("cargo:rerun-if-changed={}", common_dir.display());
    let ebpf_dir = workspace.join("ebpf/clusterwire-ebpf");
    let ebpf_dir = ebpf_dir.to_str().ok_or("non-UTF-8 workspace path")?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "clusterwire-ebpf",
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom("/usr"),
    )
    .map_err(|e| format!("building the eBPF object failed (run `cargo xtask setup` first): {e:#}"))
}
