//! Datapath tier: our eBPF programs run through `BPF_PROG_TEST_RUN` (aya `TestRun`). Needs root.

mod fixture;
mod geneve;
mod nat;
mod probe;
