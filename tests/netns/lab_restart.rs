//! Every daemon of a cluster killed at once (issue 11): `kill -9` of cl01's two agents and its
//! gateway under UDP streams both ways across the peering, restarted a second later with the
//! same command lines (as `lab_faults.rs` does). Traffic must resume, the outage is measured,
//! and the Connection status must stay truthful: while datagrams are being lost, no Connection
//! may read `Connected` for longer than the health check can take to notice (5 missed pings at
//! 2 s: 10 s, plus the 500 ms status poll).
//!
//! Two things can make a status lie for a while: the killed gateway's status file keeps the
//! `Connected` it last wrote until the restarted process rewrites it (`Connecting` on its first
//! step), and the surviving peer (cl02's client) keeps `Connected` until 10 s pass without a
//! pong. Both are measured.

use std::{
    net::Ipv4Addr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crate::lab_kit::{
    Lab, StreamResult, UdpStream, assert_traffic_across, connection_status, daemon_log, lab_ok,
    sigkill_daemons, start_daemon, wait_until,
};

/// The health check's detection time (`INTERVAL` x `LOSS_THRESHOLD`), the status poll, and the
/// sampling period of this test.
const DETECTION: Duration = Duration::from_secs(10);
const STATUS_POLL: Duration = Duration::from_millis(500);
const SAMPLE: Duration = Duration::from_millis(50);

/// The time intervals (from `t0`) in which a stream lost datagrams.
fn loss_windows(r: &StreamResult, t0: Instant) -> Vec<(Duration, Duration)> {
    let offset = r.started.duration_since(t0);
    r.gaps()
        .into_iter()
        .map(|(first, last)| {
            (
                offset + Duration::from_millis(u64::from(first)),
                offset + Duration::from_millis(u64::from(last) + 1),
            )
        })
        .collect()
}

/// The longest stretch of consecutive samples reading `Connected` that fall inside a loss
/// window.
fn connected_while_losing(
    samples: &[(Duration, String)],
    windows: &[(Duration, Duration)],
) -> Duration {
    let losing = |t: Duration| windows.iter().any(|(a, b)| *a <= t && t < *b);
    let mut longest = Duration::ZERO;
    let mut since: Option<Duration> = None;
    for (t, value) in samples {
        if value == "Connected" && losing(*t) {
            let start = *since.get_or_insert(*t);
            longest = longest.max(t.saturating_sub(start) + SAMPLE);
        } else {
            since = None;
        }
    }
    longest
}

/// What a status said from `from` on, in order, without repeats.
fn story(samples: &[(Duration, String)], from: Duration) -> String {
    let mut seen: Vec<(Duration, &str)> = Vec::new();
    for (t, v) in samples.iter().filter(|(t, _)| *t >= from) {
        if seen.last().is_none_or(|(_, last)| last != v) {
            seen.push((*t, v));
        }
    }
    seen.iter()
        .map(|(t, v)| format!("{v} at {:.2} s", t.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What happened around the kill, times from `t0`.
struct Observed {
    t0: Instant,
    killed_at: Duration,
    all_dead: Duration,
    restarted_at: Duration,
    /// The daemons and their command lines.
    daemons: Vec<(&'static str, Vec<String>)>,
    streams: Vec<StreamResult>,
    /// Each Connection's status, every 50 ms.
    cl01: Vec<(Duration, String)>,
    cl02: Vec<(Duration, String)>,
}

/// Streams both ways for 16 s; 2 s in, `kill -9` of every daemon of cl01, restarted 1 s later;
/// waits until both Connections are Connected again.
fn kill_and_restart_cl01() -> Observed {
    let t0 = Instant::now();
    let run = Duration::from_secs(16);
    let remote = Ipv4Addr::new(10, 1, 2, 11);
    let streams = [
        UdpStream::start("cwlab-cl01-n1-a", "cwlab-cl02-n2-b", remote, 7700, run),
        UdpStream::start("cwlab-cl02-n1-a", "cwlab-cl01-n2-b", remote, 7701, run),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                samples.push((
                    t0.elapsed(),
                    connection_status("cl01", "cl02"),
                    connection_status("cl02", "cl01"),
                ));
                std::thread::sleep(SAMPLE);
            }
            samples
        })
    };

    std::thread::sleep(Duration::from_secs(2));
    let names = ["cwlab-cl01-n1", "cwlab-cl01-n2", "cwlab-cl01-gw-cl02"];
    let killed_at = t0.elapsed();
    let daemons: Vec<_> = names.into_iter().zip(sigkill_daemons(&names)).collect();
    let all_dead = t0.elapsed().saturating_sub(killed_at);
    std::thread::sleep(Duration::from_secs(1));
    let restarted_at = t0.elapsed();
    for (daemon, argv) in &daemons {
        start_daemon(daemon, argv);
    }
    let streams = streams.into_iter().map(UdpStream::finish).collect();
    wait_until(
        "both Connections Connected again",
        Duration::from_secs(20),
        || {
            connection_status("cl01", "cl02") == "Connected"
                && connection_status("cl02", "cl01") == "Connected"
        },
    );
    stop.store(true, Ordering::SeqCst);
    let samples = sampler.join().expect("status sampler");
    Observed {
        t0,
        killed_at,
        all_dead,
        restarted_at,
        daemons,
        streams,
        cl01: samples.iter().map(|(t, a, _)| (*t, a.clone())).collect(),
        cl02: samples.iter().map(|(t, _, b)| (*t, b.clone())).collect(),
    }
}

#[test]
fn lab_restart_of_every_daemon_of_a_cluster_at_once() {
    let _lab = Lab::claim();
    let up = lab_ok(&["up"]);
    assert!(up.contains("lab up in"), "{up}");
    assert_traffic_across("after up");

    let o = kill_and_restart_cl01();
    let windows: Vec<(Duration, Duration)> = o
        .streams
        .iter()
        .flat_map(|r| loss_windows(r, o.t0))
        .collect();
    let first_loss = windows.iter().map(|w| w.0).min().unwrap_or_default();
    let last_loss = windows.iter().map(|w| w.1).max().unwrap_or_default();
    let outage = last_loss.saturating_sub(first_loss);
    // Connected again: the first sample where both say Connected after cl01's said something
    // else.
    let reset = o
        .cl01
        .iter()
        .find(|(t, v)| *t > o.killed_at && v != "Connected")
        .map_or(o.killed_at, |(t, _)| *t);
    let connected_again = o
        .cl01
        .iter()
        .zip(&o.cl02)
        .find(|((t, a), (_, b))| *t > reset && a == "Connected" && b == "Connected")
        .map(|((t, _), _)| *t);
    let lying = [
        ("cl01", connected_while_losing(&o.cl01, &windows)),
        ("cl02", connected_while_losing(&o.cl02, &windows)),
    ];
    let bound = DETECTION + STATUS_POLL + SAMPLE;
    for (i, r) in o.streams.iter().enumerate() {
        println!(
            "stream {i}: {} sent, {} lost, longest gap {} ms",
            r.sent,
            r.lost.len(),
            r.longest_gap_ms()
        );
    }
    println!(
        "cl01's 3 daemons killed at {:.2} s (all dead {:?} later), restarted at {:.2} s; \
         datagrams lost from {:.2} s to {:.2} s (outage {} ms); both Connected again at {:?}\n\
         cl01 status: {}\ncl02 status: {}\nConnected while losing datagrams: cl01 {:?}, cl02 \
         {:?} (bound: {bound:?})",
        o.killed_at.as_secs_f64(),
        o.all_dead,
        o.restarted_at.as_secs_f64(),
        first_loss.as_secs_f64(),
        last_loss.as_secs_f64(),
        outage.as_millis(),
        connected_again.map(|t| format!("{:.2} s", t.as_secs_f64())),
        story(&o.cl01, o.killed_at),
        story(&o.cl02, o.killed_at),
        lying[0].1,
        lying[1].1,
    );

    // The kill of the gateway cuts the embedded WireGuard: there is an outage, and it ends.
    assert!(
        !windows.is_empty(),
        "no datagram lost: was anything killed?"
    );
    for (i, r) in o.streams.iter().enumerate() {
        let tail = r.sent.saturating_sub(3000);
        assert!(
            r.lost.iter().all(|s| *s < tail),
            "stream {i}: still losing in its last 3 s (gaps {:?})",
            r.gaps()
        );
    }
    assert!(outage < Duration::from_secs(10), "outage {outage:?}");
    // Truthful status.
    for (cluster, d) in lying {
        assert!(
            d <= bound,
            "{cluster}'s Connection said Connected for {d:?} while datagrams were lost"
        );
    }
    // The restarted gateway did not inherit "Connected": it said something else until its
    // first pong, then Connected.
    assert!(
        reset > o.restarted_at && connected_again.is_some(),
        "cl01's restarted gateway: {}",
        story(&o.cl01, o.killed_at)
    );
    // Every daemon adopted its pinned datapath.
    for (daemon, _) in &o.daemons {
        wait_until(
            &format!("{daemon} adopted its pinned datapath"),
            Duration::from_secs(10),
            || daemon_log(daemon).contains("adopted=true"),
        );
    }
    assert_traffic_across("after the restart");
}
