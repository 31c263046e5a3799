//! Loads the datapath unpinned, fills its tables and runs its programs through
//! `BPF_PROG_TEST_RUN` (aya `TestRun`), returning the action and the output bytes.
//!
//! How `BPF_PROG_TEST_RUN` presents a packet to a TC program (`bpf_prog_test_run_skb`): the
//! input must be at least 14 bytes; the kernel runs `eth_type_trans` on it, so
//! `skb->protocol` is the ethertype found at bytes 12..14, then pushes the 14 bytes back, so
//! the program's `data` is the first input byte. The L3-device mode (`FLAG_L3_DEVICE`, packets
//! start at the IP header) is therefore tested by passing a bare IPv4 datagram: the programs
//! classify it by its version nibble and never read `skb->protocol` (which `test_run` derives
//! from bytes 12..13 of the datagram, i.e. part of its source address). The kernel also
//! refuses (EINVAL) an Ethernet frame of ethertype IPv4 with less than 20 bytes of IP header,
//! so truncated-header cases are fed in the L3 mode with a source address that does not look
//! like the IPv4 ethertype.
use aya::programs::{TestRun as _, TestRunOptions, TestRunResult};
use clusterwire_common::{
    config::DatapathConfig,
    drop::DropReason,
    nat::{NAT_FROM_TUNNEL_PROGRAM, NAT_TO_TUNNEL_PROGRAM},
    stats::{Event, PeerStats},
};
use clusterwire_dataplane::{Datapath, LoadOptions};

/// TC actions as `test_run` reports them (the program's `i32` as `u32`). Ours, handled: the
/// packet continues up or down the stack and later programs on the hook are skipped.
pub const TC_ACT_OK: u32 = 0;
/// Drop.
pub const TC_ACT_SHOT: u32 = 2;
/// Not ours: the next program on the hook runs (`TC_ACT_UNSPEC` = -1 = `TCX_NEXT`).
pub const TC_ACT_UNSPEC: u32 = u32::MAX;
/// Redirected (`bpf_redirect`, `bpf_redirect_neigh`).
pub const TC_ACT_REDIRECT: u32 = 7;

/// A verdict's name, for failure messages.
pub fn verdict_name(action: u32) -> String {
    match action {
        TC_ACT_OK => "TC_ACT_OK".to_owned(),
        TC_ACT_SHOT => "TC_ACT_SHOT".to_owned(),
        TC_ACT_UNSPEC => "TC_ACT_UNSPEC".to_owned(),
        TC_ACT_REDIRECT => "TC_ACT_REDIRECT".to_owned(),
        other => format!("{other}"),
    }
}

/// Room the output buffer has beyond the input (programs that grow packets).
const OUTPUT_SLACK: usize = 256;

/// A loaded, unpinned datapath to run packets through.
#[derive(Debug)]
pub struct Harness {
    datapath: Datapath,
}

impl Harness {
    /// Loads the datapath with `config` (panics with the loader's error chain on failure).
    pub fn new(config: DatapathConfig) -> Self {
        let datapath = Datapath::load(&config, &LoadOptions::unpinned())
            .unwrap_or_else(|e| panic!("loading the datapath failed: {}", chain(&e)));
        Self { datapath }
    }

    /// The datapath, to fill tables and read counters.
    pub fn datapath(&mut self) -> &mut Datapath {
        &mut self.datapath
    }

    /// Runs `program` once on `input`: (return value, output bytes).
    pub fn run(&mut self, program: &'static str, input: &[u8]) -> (u32, Vec<u8>) {
        self.run_with(program, input, &SkbIn::default())
    }

    /// Runs `program` once on `input` with the `__sk_buff` fields of `skb` set (`ctx_in`).
    pub fn run_with(&mut self, program: &'static str, input: &[u8], skb: &SkbIn) -> (u32, Vec<u8>) {
        let (result, mut output) = self.test_run_ctx(program, input, 1, Some(&skb.bytes()));
        output.truncate(result.data_size_out as usize);
        (result.return_value, output)
    }

    /// Runs `program` once through the raw syscall with test-run `flags` (see
    /// [`crate::testrun`]); the kernel's error as is (EINVAL: unsupported here).
    pub fn run_raw(
        &mut self,
        program: &'static str,
        input: &[u8],
        skb: &SkbIn,
        flags: u32,
    ) -> std::io::Result<(u32, Vec<u8>)> {
        use std::os::fd::AsFd as _;
        let prog = self
            .datapath
            .program(program)
            .unwrap_or_else(|e| panic!("program {program}: {e}"));
        let fd = prog
            .fd()
            .unwrap_or_else(|e| panic!("program {program} fd: {e}"));
        let run = crate::testrun::run(fd.as_fd(), input, Some(&skb.bytes()), flags)?;
        Ok((run.retval, run.output))
    }

    /// Runs `program` `repeat` times on `input`; the kernel's average ns per run.
    pub fn time(&mut self, program: &'static str, input: &[u8], repeat: u32) -> f64 {
        let (result, _) = self.test_run(program, input, repeat);
        // The kernel reports the mean duration of one run.
        #[expect(clippy::cast_precision_loss, reason = "nanoseconds of one run")]
        let ns = result.duration.as_nanos() as f64;
        ns
    }

    /// One `BPF_PROG_TEST_RUN` of `program` (`repeat` runs); the result and the output buffer.
    fn test_run(
        &mut self,
        program: &'static str,
        input: &[u8],
        repeat: u32,
    ) -> (TestRunResult, Vec<u8>) {
        self.test_run_ctx(program, input, repeat, None)
    }

    /// [`Harness::test_run`] with an optional `__sk_buff` as `ctx_in`.
    fn test_run_ctx(
        &mut self,
        program: &'static str,
        input: &[u8],
        repeat: u32,
        ctx_in: Option<&[u8]>,
    ) -> (TestRunResult, Vec<u8>) {
        let mut output = vec![0u8; input.len() + OUTPUT_SLACK];
        let result = self
            .datapath
            .program(program)
            .unwrap_or_else(|e| panic!("program {program}: {e}"))
            .test_run(TestRunOptions {
                data_in: Some(input),
                data_out: Some(&mut output),
                ctx_in,
                repeat,
                ..TestRunOptions::default()
            })
            .unwrap_or_else(|e| panic!("test_run of {program} failed: {}", chain(&e)));
        (result, output)
    }

    /// Runs the into-the-tunnel NAT program.
    pub fn to_tunnel(&mut self, input: &[u8]) -> (u32, Vec<u8>) {
        self.run(NAT_TO_TUNNEL_PROGRAM, input)
    }

    /// Runs the out-of-the-tunnel NAT program.
    pub fn from_tunnel(&mut self, input: &[u8]) -> (u32, Vec<u8>) {
        self.run(NAT_FROM_TUNNEL_PROGRAM, input)
    }

    /// Runs one NAT program (`to_tunnel` picks the direction), asserts that it handled the
    /// packet as ours (`TC_ACT_OK`, naming the drops counted otherwise) and returns the output.
    pub fn pass(&mut self, to_tunnel: bool, input: &[u8], what: &str) -> Vec<u8> {
        self.expect(to_tunnel, input, TC_ACT_OK, what)
    }

    /// Runs one NAT program, asserts that it left the packet to the next program on the hook
    /// (`TC_ACT_UNSPEC`: not ours) and returns the output.
    pub fn next(&mut self, to_tunnel: bool, input: &[u8], what: &str) -> Vec<u8> {
        self.expect(to_tunnel, input, TC_ACT_UNSPEC, what)
    }

    /// Runs one NAT program on a packet it must not drop and asserts the verdict the NAT rule
    /// gives: out of the tunnel `TC_ACT_OK` (it passed anti-spoofing); into the tunnel
    /// `TC_ACT_OK` when the program rewrote something, `TC_ACT_UNSPEC` (not ours) when the
    /// output is the input. Returns the output.
    pub fn through(&mut self, to_tunnel: bool, input: &[u8], what: &str) -> Vec<u8> {
        let (action, out) = if to_tunnel {
            self.to_tunnel(input)
        } else {
            self.from_tunnel(input)
        };
        let want = if to_tunnel && out == input {
            TC_ACT_UNSPEC
        } else {
            TC_ACT_OK
        };
        assert!(
            action == want,
            "{what}: expected {}, got {} (drops {})",
            verdict_name(want),
            verdict_name(action),
            self.total_drops()
        );
        out
    }

    /// Runs one NAT program and asserts the exact verdict `want` (naming the drops counted when
    /// it differs); returns the output.
    pub fn expect(&mut self, to_tunnel: bool, input: &[u8], want: u32, what: &str) -> Vec<u8> {
        let (action, out) = if to_tunnel {
            self.to_tunnel(input)
        } else {
            self.from_tunnel(input)
        };
        if action != want {
            let drops: Vec<_> = self
                .datapath
                .drop_counts()
                .expect("read CW_DROPS")
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(reason, n)| format!("{}={n}", reason.kind()))
                .collect();
            panic!(
                "{what}: expected {}, got {} (drops: {})",
                verdict_name(want),
                verdict_name(action),
                drops.join(" ")
            );
        }
        out
    }

    /// Drops counted for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.datapath.drop_count(reason).expect("read CW_DROPS")
    }

    /// Total drops over every reason.
    pub fn total_drops(&self) -> u64 {
        self.datapath
            .drop_counts()
            .expect("read CW_DROPS")
            .iter()
            .map(|(_, n)| n)
            .sum()
    }

    /// Occurrences of `event`.
    pub fn events(&self, event: Event) -> u64 {
        self.datapath.event_count(event).expect("read CW_EVENTS")
    }

    /// Every event counter as `(name, count)`, for failure messages and comparisons.
    pub fn all_events(&self) -> Vec<(&'static str, u64)> {
        self.datapath
            .events()
            .expect("read CW_EVENTS")
            .into_iter()
            .map(|(e, n)| (e.kind(), n))
            .collect()
    }

    /// Counters of `peer_id`.
    pub fn peer(&self, peer_id: u32) -> PeerStats {
        self.datapath
            .peer_stats(peer_id)
            .expect("read CW_PEER_STATS")
    }
}

/// The `__sk_buff` fields `BPF_PROG_TEST_RUN` lets a test set (`ctx_in`); every other field
/// must stay zero. `gso_size` non-zero makes the skb a GSO packet (`skb_is_gso`), though its
/// `gso_type` stays 0: the kernel's `test_run` cannot set it.
#[derive(Clone, Copy, Debug, Default)]
pub struct SkbIn {
    /// `ifindex`: the device the skb is on (0: loopback of the caller's network namespace).
    pub ifindex: u32,
    /// `gso_segs`.
    pub gso_segs: u32,
    /// `gso_size`.
    pub gso_size: u32,
    /// `data_end`: with `BPF_F_TEST_SKB_NON_LINEAR`, the size of the linear part (0: not set).
    pub data_end: u32,
}

impl SkbIn {
    /// Offsets in `struct __sk_buff` (uapi/linux/bpf.h, stable ABI).
    const IFINDEX_OFF: usize = 40;
    const DATA_END_OFF: usize = 80;
    const GSO_SEGS_OFF: usize = 164;
    const GSO_SIZE_OFF: usize = 176;
    /// Bytes of `struct __sk_buff` up to and including `hwtstamp`.
    const LEN: usize = 192;

    /// The `__sk_buff` image.
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; Self::LEN];
        b[Self::IFINDEX_OFF..Self::IFINDEX_OFF + 4].copy_from_slice(&self.ifindex.to_ne_bytes());
        b[Self::GSO_SEGS_OFF..Self::GSO_SEGS_OFF + 4].copy_from_slice(&self.gso_segs.to_ne_bytes());
        b[Self::GSO_SIZE_OFF..Self::GSO_SIZE_OFF + 4].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[Self::DATA_END_OFF..Self::DATA_END_OFF + 4].copy_from_slice(&self.data_end.to_ne_bytes());
        b
    }
}

/// An error and its sources on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Hex dump helper for failure messages: the first differing offset of two buffers.
pub fn first_difference(got: &[u8], want: &[u8]) -> String {
    match got.iter().zip(want).position(|(a, b)| a != b) {
        Some(i) => format!(
            "first difference at byte {i}: got {:#04x}, want {:#04x} (lengths {} and {})",
            got[i],
            want[i],
            got.len(),
            want.len()
        ),
        None if got.len() == want.len() => "identical".to_owned(),
        None => format!("lengths differ: got {}, want {}", got.len(), want.len()),
    }
}
