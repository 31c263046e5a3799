//! Geneve encapsulation and decapsulation through `test_run`: exact outer headers, checksums
//! recomputed here, round trips, every rejection with its counted drop reason, pass-through of
//! everything that is not ours, and an independent decode by tshark.
//!
//! What `test_run` cannot show: where a redirect goes (`bpf_redirect`, `bpf_redirect_neigh`
//! only record the target and return `TC_ACT_REDIRECT`) and the tunnel key a `collect_md` device
//! would use. The VM tier checks redirect mode against the kernel's geneve driver, using
//! `TunnelRoute::via_collect_md_device`.
use std::net::Ipv4Addr;

use clusterwire_common::{
    config::DatapathConfig,
    drop::DropReason,
    geneve::{GENEVE_DECAP_PROGRAM, GENEVE_ENCAP_PROGRAM},
    stats::Event,
};
use clusterwire_dataplane::geneve::GeneveMaps;
use clusterwire_tests::harness::{Harness, SkbIn, first_difference};

mod decap;
mod encap;
mod frames;
mod skb_states;
mod tshark;

use clusterwire_tests::harness::{TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, TC_ACT_UNSPEC};

/// The node side of the tunnel (encapsulates towards the gateway).
const NODE_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// The gateway side (decapsulates what the node sent).
const GATEWAY_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
/// Liqo's Geneve port.
const PORT: u16 = 6091;

/// One loaded datapath (the shared harness) configured as the host at `local`, with its Geneve
/// maps.
struct Host {
    harness: Harness,
    maps: GeneveMaps,
}

impl Host {
    fn new(local: Ipv4Addr, geneve_port: u16) -> Self {
        let mut harness = Harness::new(DatapathConfig {
            local_ipv4_be: u32::from_ne_bytes(local.octets()),
            geneve_port,
            ..DatapathConfig::zeroed()
        });
        let maps = GeneveMaps::take(harness.datapath().ebpf_mut()).expect("Geneve maps");
        Self { harness, maps }
    }

    fn encap(&mut self, input: &[u8]) -> (u32, Vec<u8>) {
        self.harness.run(GENEVE_ENCAP_PROGRAM, input)
    }

    fn encap_with(&mut self, input: &[u8], skb: &SkbIn) -> (u32, Vec<u8>) {
        self.harness.run_with(GENEVE_ENCAP_PROGRAM, input, skb)
    }

    fn decap(&mut self, input: &[u8]) -> (u32, Vec<u8>) {
        self.harness.run(GENEVE_DECAP_PROGRAM, input)
    }

    fn drops(&self, reason: DropReason) -> u64 {
        self.harness.drops(reason)
    }

    fn all_drops(&self) -> u64 {
        self.harness.total_drops()
    }

    fn events(&self, event: Event) -> u64 {
        self.harness.events(event)
    }
}

/// Asserts two frames are equal, naming the first differing byte.
#[track_caller]
fn assert_frame_eq(actual: &[u8], expected: &[u8], what: &str) {
    assert!(
        actual == expected,
        "{what}: {}\n actual:   {actual:02x?}\n expected: {expected:02x?}",
        first_difference(actual, expected)
    );
}
