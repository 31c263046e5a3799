//! `cargo xtask selfcheck`: the datapath self-check. It mounts bpffs if needed and runs
//! `cwctl selfcheck`: kernel prerequisites, our eBPF object through the verifier and
//! `BPF_PROG_TEST_RUN`, real translations checked by recomputation, a pinned map dumped with
//! bpftool, and which Geneve and WireGuard implementations this kernel allows.
use anyhow::bail;

use crate::cmd;

pub fn run() -> anyhow::Result<()> {
    if !cmd::is_root() {
        bail!("the self-check loads eBPF programs and needs root");
    }
    cmd::ensure_bpffs()?;
    cmd::run(cmd::host_cargo().args([
        "run",
        "--quiet",
        "-p",
        "clusterwire-cli",
        "--bin",
        "cwctl",
        "--",
        "selfcheck",
    ]))
}
