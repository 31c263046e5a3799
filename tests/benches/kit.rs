//! What the `forward` and `tunnel` benches share: threads entered into a network namespace by
//! name (a namespace of the bench's own or the lab's `cwlab-*`), TCP bulk and 1-byte
//! request/response generators on std sockets, the round settings and the medians.
use std::{
    fs::File,
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream},
    sync::mpsc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use nix::sched::{CloneFlags, setns};

/// Runs `f` on a new thread that has entered the network namespace `/run/netns/<ns>`.
pub fn spawn_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns into {path}: {e}"));
        f()
    })
}

/// Like [`spawn_in`], waiting for the result.
pub fn enter<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    spawn_in(ns, f)
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Rounds and seconds per sample: `CW_BENCH_ROUNDS` (default 7), `CW_BENCH_SECONDS` (default
/// 1.0), `CW_BENCH_QUICK=1` (3 rounds of 0.5 s).
pub fn settings() -> (usize, f64) {
    let quick = std::env::var("CW_BENCH_QUICK").is_ok_and(|v| v == "1");
    let rounds =
        env_f64("CW_BENCH_ROUNDS").map_or(if quick { 3 } else { 7 }, |r| (r as usize).max(1));
    let secs = env_f64("CW_BENCH_SECONDS").unwrap_or(if quick { 0.5 } else { 1.0 });
    (rounds, secs)
}

fn env_f64(key: &str) -> Option<f64> {
    std::env::var(key).ok().and_then(|v| v.parse().ok())
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    }
}

/// The median of the per-round ratios `num[i] / den[i]`.
pub fn median_ratio(num: &[f64], den: &[f64]) -> f64 {
    median(num.iter().zip(den).map(|(n, d)| n / d).collect())
}

/// The p50 and p99 of `samples`, which it sorts.
pub fn percentiles(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    (at(0.50), at(0.99))
}

/// What a bulk transfer delivered.
#[derive(Debug, Clone, Copy)]
pub struct Bulk {
    /// Bytes the server read.
    pub bytes: u64,
    /// From the first connect to the last close, in seconds.
    pub secs: f64,
}

impl Bulk {
    pub fn gbps(self) -> f64 {
        self.bytes as f64 * 8.0 / self.secs / 1e9
    }
}

/// Bulk TCP, `streams` connections from `client_ns` to `dst` for `secs`; the server listens on
/// `dst`'s port in `server_ns`. `start` runs once the server listens, just before the clients
/// connect (a CPU or counter sample); its result comes back with the figure.
pub fn tcp_bulk<S>(
    server_ns: &str,
    client_ns: &str,
    dst: SocketAddrV4,
    streams: usize,
    secs: f64,
    start: impl FnOnce() -> S,
) -> (Bulk, S) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = spawn_in(server_ns, move || {
        let listener =
            TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, dst.port())).expect("bind");
        ready_tx.send(()).expect("ready");
        let readers: Vec<_> = (0..streams)
            .map(|_| {
                let (mut s, _) = listener.accept().expect("accept");
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 256 << 10];
                    let mut total = 0u64;
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break total,
                            Ok(n) => total += n as u64,
                        }
                    }
                })
            })
            .collect();
        readers
            .into_iter()
            .map(|r| r.join().expect("reader"))
            .sum::<u64>()
    });
    ready_rx.recv().expect("server ready");
    let sample = start();
    let begin = Instant::now();
    let end = begin + Duration::from_secs_f64(secs);
    let writers: Vec<_> = (0..streams)
        .map(|_| {
            spawn_in(client_ns, move || {
                let mut s = TcpStream::connect(dst).expect("connect");
                let buf = vec![0x5au8; 128 << 10];
                while Instant::now() < end {
                    s.write_all(&buf).expect("write");
                }
                s.shutdown(std::net::Shutdown::Write).expect("shutdown");
                // Wait for the server's close so that the time covers delivery.
                let _ = s.read(&mut [0u8; 1]);
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let bytes = server.join().expect("server");
    let bulk = Bulk {
        bytes,
        secs: begin.elapsed().as_secs_f64(),
    };
    (bulk, sample)
}

/// 1-byte request/response on one TCP connection from `client_ns` to `dst` for `secs` (the
/// server echoes on `dst`'s port in `server_ns`): (p50 µs, p99 µs) of the round trips.
pub fn tcp_rr(server_ns: &str, client_ns: &str, dst: SocketAddrV4, secs: f64) -> (f64, f64) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = spawn_in(server_ns, move || {
        let listener =
            TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, dst.port())).expect("bind");
        ready_tx.send(()).expect("ready");
        let (mut s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let mut b = [0u8; 1];
        while let Ok(1) = s.read(&mut b) {
            s.write_all(&b).expect("echo");
        }
    });
    ready_rx.recv().expect("server ready");
    let mut rtts = enter(client_ns, move || {
        let mut s = TcpStream::connect(dst).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        let mut rtts = Vec::with_capacity(1 << 20);
        let mut b = [1u8; 1];
        // A few warm-up round trips.
        for _ in 0..100 {
            s.write_all(&b).expect("write");
            s.read_exact(&mut b).expect("read");
        }
        let end = Instant::now() + Duration::from_secs_f64(secs);
        while Instant::now() < end {
            let t0 = Instant::now();
            s.write_all(&b).expect("write");
            s.read_exact(&mut b).expect("read");
            rtts.push(t0.elapsed().as_nanos() as f64 / 1000.0);
        }
        rtts
    });
    server.join().expect("server");
    percentiles(&mut rtts)
}
