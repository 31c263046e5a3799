//! clusterwire's test kit, shared by the test tiers: a packet builder, an independent checksum
//! oracle, and RAII guards for network namespaces. The tiers themselves are the test targets in
//! `datapath/`, `netns/` and `vm/`, run by `cargo xtask test`.

pub mod csum;
pub mod harness;
pub mod netns;
pub mod packet;
pub mod pcap;
pub mod testrun;
pub mod traffic;
