//! The self-check probe: a program that counts the packets it sees, used to prove that the
//! datapath tiers (`test_run`, netns, VM) really load, attach and run our programs.

/// Index of each counter slot in the probe's per-CPU counter array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeCounter {
    /// Packets the probe saw.
    Packets = 0,
    /// Bytes of those packets (skb length).
    Bytes = 1,
}

impl ProbeCounter {
    /// Number of slots in the counter array.
    pub const COUNT: u32 = 2;
}

/// Name of the probe's classifier program in the eBPF object.
pub const PROBE_PROGRAM: &str = "cw_probe_count";
/// Name of the probe's per-CPU counter map in the eBPF object.
pub const PROBE_COUNTERS_MAP: &str = "CW_PROBE_COUNTERS";
