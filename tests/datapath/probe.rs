//! The self-check probe through `test_run`: proves the object loads, the verifier accepts the
//! program, it runs, and its per-CPU counters are read back.
use aya::programs::{TestRun as _, TestRunOptions};
use clusterwire_common::probe::ProbeCounter;
use clusterwire_dataplane::probe::Probe;

/// A 60-byte Ethernet frame (the content does not matter to the probe).
fn frame() -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f
}

#[test]
fn probe_counts_every_run_and_passes_the_packet_unchanged() {
    let mut probe = Probe::load().expect("load the probe");
    let input = frame();
    let mut output = vec![0u8; input.len()];
    let program = probe.program().expect("probe program");
    let result = program
        .test_run(TestRunOptions {
            data_in: Some(&input),
            data_out: Some(&mut output),
            repeat: 7,
            ..TestRunOptions::default()
        })
        .expect("test_run");
    assert_eq!(result.return_value, 3, "the probe returns TC_ACT_PIPE (3)");
    assert_eq!(output, input, "the probe must not change the packet");
    assert_eq!(
        probe.counter(ProbeCounter::Packets).expect("read counter"),
        7
    );
    assert_eq!(
        probe.counter(ProbeCounter::Bytes).expect("read counter"),
        7 * 60
    );
}
