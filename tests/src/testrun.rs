//! `BPF_PROG_TEST_RUN` through the raw `bpf(2)` syscall, for the flags aya's `TestRun` cannot
//! set (it only knows `BPF_F_TEST_XDP_LIVE_FRAMES`): the skb states newer kernels can build.
//!
//! What `bpf_prog_test_run_skb` (`net/bpf/test_run.c`) offers a TC program, by kernel:
//! - every kernel we test (6.1, 6.12, 6.18): a linear skb built from `data_in` (at most a page
//!   minus headroom and `skb_shared_info`: `bpf_test_init` refuses more with EINVAL, so a
//!   large input never becomes paged), `ip_summed` `CHECKSUM_NONE`, and from `ctx_in` only
//!   `mark`, `priority`, `ingress_ifindex`, `ifindex`, `cb`, `tstamp`, `wire_len`,
//!   `gso_segs`, `gso_size` and `hwtstamp` (every other field must be zero). No `gso_type`.
//! - [`BPF_F_TEST_SKB_CHECKSUM_COMPLETE`] (Linux 6.11, "bpf: add `CHECKSUM_COMPLETE` to bpf
//!   test progs"): the kernel sets `skb->csum` to the sum of the packet from the network header and
//!   `ip_summed = CHECKSUM_COMPLETE` before the run, recomputes the sum after it and fails the
//!   run with EBADMSG when `skb->csum` no longer matches the packet. 6.1 refuses the flag
//!   (EINVAL: `test.flags` must be 0 for skb programs); 6.12 and 6.18 have it.
//! - [`BPF_F_TEST_SKB_NON_LINEAR`] ("bpf: Craft non-linear skbs in `BPF_PROG_TEST_RUN`"): the
//!   linear part is `ctx.data_end` bytes (at least `ETH_HLEN`), the rest of `data_in` goes to
//!   page frags. Not in 6.1, 6.12 or 6.18 (all refuse the flag with EINVAL); probed at run time, so a
//!   later kernel runs these cases.
use std::{io, os::fd::AsRawFd as _, os::fd::BorrowedFd};

/// Apply `CHECKSUM_COMPLETE` to the skb and validate it after the run (EBADMSG when stale).
pub const BPF_F_TEST_SKB_CHECKSUM_COMPLETE: u32 = 1 << 2;
/// Build a non-linear skb whose linear part is `ctx.data_end` bytes.
pub const BPF_F_TEST_SKB_NON_LINEAR: u32 = 1 << 3;

/// `BPF_PROG_TEST_RUN`.
const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// The `test` member of `union bpf_attr` (uapi/linux/bpf.h), 80 bytes.
#[repr(C)]
#[derive(Default)]
struct TestAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    pad: u32,
}

const _: () = assert!(size_of::<TestAttr>() == 80);

/// What one run returned.
#[derive(Debug)]
pub struct RawRun {
    /// The program's return value.
    pub retval: u32,
    /// The packet after the run (`data_size_out` bytes).
    pub output: Vec<u8>,
}

/// One run of the program `prog` on `data_in` with `ctx_in` (an `__sk_buff` image) and
/// `flags`. The kernel's error (EINVAL: a flag or ctx field this kernel does not know; EBADMSG:
/// `CHECKSUM_COMPLETE` validation failed) is returned as is.
pub fn run(
    prog: BorrowedFd<'_>,
    data_in: &[u8],
    ctx_in: Option<&[u8]>,
    flags: u32,
) -> io::Result<RawRun> {
    let mut output = vec![0u8; data_in.len() + 256];
    let len = |n: usize| u32::try_from(n).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
    let mut attr = TestAttr {
        prog_fd: u32::try_from(prog.as_raw_fd()).map_err(|_| io::ErrorKind::InvalidInput)?,
        data_size_in: len(data_in.len())?,
        data_size_out: len(output.len())?,
        data_in: data_in.as_ptr() as u64,
        data_out: output.as_mut_ptr() as u64,
        repeat: 1,
        flags,
        ..TestAttr::default()
    };
    if let Some(ctx) = ctx_in {
        attr.ctx_in = ctx.as_ptr() as u64;
        attr.ctx_size_in = len(ctx.len())?;
    }
    // SAFETY: `attr` is a valid `bpf_attr.test` of the size passed; the buffers it points to
    // (`data_in`, `output`, `ctx_in`) outlive the call and `output` is writable for
    // `data_size_out` bytes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &raw mut attr,
            size_of::<TestAttr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    output.truncate(attr.data_size_out as usize);
    Ok(RawRun {
        retval: attr.retval,
        output,
    })
}
