//! Geneve encapsulation and decapsulation through `test_run`: exact outer headers, checksums
//! recomputed here, round trips, every rejection with its counted drop reason, pass-through of
//! everything that is not ours, and an independent decode by tshark.
//!
//! What `test_run` cannot show: where a redirect goes (`bpf_redirect`, `bpf_redirect_neigh`
//! only record the target and return `TC_ACT_REDIRECT`) and the tunnel key a `collect_md` device
//! would use. The VM tier checks redirect mode against the kernel's geneve driver, using
//! `TunnelRoute::via_collect_md_device`.
use std::net::Ipv4Addr;

use aya::{
    Ebpf, EbpfLoader,
    maps::PerCpuArray,
    programs::{SchedClassifier, TestRun as _, TestRunOptions},
};
use clusterwire_common::{
    config::{CONFIG_GLOBAL, DatapathConfig},
    drop::{DROPS_MAP, DropReason},
    geneve::{GENEVE_DECAP_PROGRAM, GENEVE_ENCAP_PROGRAM},
    stats::{EVENTS_MAP, Event},
};
use clusterwire_dataplane::{geneve::GeneveMaps, object::OBJECT};

mod decap;
mod encap;
mod frames;
mod tshark;

/// `TC_ACT_OK`.
const TC_ACT_OK: u32 = 0;
/// `TC_ACT_SHOT`.
const TC_ACT_SHOT: u32 = 2;
/// `TC_ACT_REDIRECT`.
const TC_ACT_REDIRECT: u32 = 7;

/// The node side of the tunnel (encapsulates towards the gateway).
const NODE_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// The gateway side (decapsulates what the node sent).
const GATEWAY_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
/// Liqo's Geneve port.
const PORT: u16 = 6091;

/// One loaded object with the Geneve programs and maps, configured as the host at `local`.
struct Host {
    ebpf: Ebpf,
    maps: GeneveMaps,
}

impl Host {
    fn new(local: Ipv4Addr, geneve_port: u16) -> Self {
        let config = DatapathConfig {
            local_ipv4_be: u32::from_ne_bytes(local.octets()),
            geneve_port,
            ..DatapathConfig::zeroed()
        };
        let mut ebpf = EbpfLoader::new()
            .override_global(CONFIG_GLOBAL, &config, true)
            .load(OBJECT)
            .expect("load the eBPF object (root needed)");
        for name in [GENEVE_ENCAP_PROGRAM, GENEVE_DECAP_PROGRAM] {
            let program: &mut SchedClassifier = ebpf
                .program_mut(name)
                .unwrap_or_else(|| panic!("object has no program {name}"))
                .try_into()
                .expect("a classifier");
            program
                .load()
                .unwrap_or_else(|e| panic!("verifier rejected {name}: {e:?}"));
        }
        let maps = GeneveMaps::take(&mut ebpf).expect("Geneve maps");
        Self { ebpf, maps }
    }

    /// Runs `program` once on `input`; returns the action and the output frame.
    fn run(&mut self, program: &str, input: &[u8]) -> (u32, Vec<u8>) {
        let program: &mut SchedClassifier = self
            .ebpf
            .program_mut(program)
            .expect("program")
            .try_into()
            .expect("a classifier");
        let mut output = vec![0u8; input.len() + 512];
        let result = program
            .test_run(TestRunOptions {
                data_in: Some(input),
                data_out: Some(&mut output),
                ..TestRunOptions::default()
            })
            .expect("test_run");
        output.truncate(result.data_size_out as usize);
        (result.return_value, output)
    }

    fn encap(&mut self, input: &[u8]) -> (u32, Vec<u8>) {
        self.run(GENEVE_ENCAP_PROGRAM, input)
    }

    fn decap(&mut self, input: &[u8]) -> (u32, Vec<u8>) {
        self.run(GENEVE_DECAP_PROGRAM, input)
    }

    fn drops(&self, reason: DropReason) -> u64 {
        let map = self.ebpf.map(DROPS_MAP).expect("drop counters");
        let counters: PerCpuArray<_, u64> = PerCpuArray::try_from(map).expect("per-CPU array");
        counters
            .get(&(reason as u32), 0)
            .expect("read")
            .iter()
            .sum()
    }

    fn all_drops(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.drops(*r)).sum()
    }

    fn events(&self, event: Event) -> u64 {
        let map = self.ebpf.map(EVENTS_MAP).expect("event counters");
        let counters: PerCpuArray<_, u64> = PerCpuArray::try_from(map).expect("per-CPU array");
        counters.get(&(event as u32), 0).expect("read").iter().sum()
    }
}

/// Asserts two frames are equal, naming the first differing byte.
#[track_caller]
fn assert_frame_eq(actual: &[u8], expected: &[u8], what: &str) {
    if let Some(i) = actual.iter().zip(expected).position(|(a, e)| a != e) {
        panic!(
            "{what}: byte {i} is {:#04x}, expected {:#04x}\n actual:   {actual:02x?}\n expected: {expected:02x?}",
            actual[i], expected[i]
        );
    }
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: length differs\n actual:   {actual:02x?}\n expected: {expected:02x?}"
    );
}
