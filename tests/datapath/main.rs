//! Datapath tier: our eBPF programs run through `BPF_PROG_TEST_RUN` (aya `TestRun`). Needs root.

mod bigtcp;
mod fixture;
mod geneve;
mod icmp;
mod monitor;
mod mss;
mod nat;
mod pin;
mod probe;
mod random;
mod skb_states;
