//! The file lease: one holder at a time; a standby blocked on the lock takes over the moment
//! the holder's descriptor closes, also when the holder process is killed with SIGKILL (a child
//! process: this test binary re-run as a holder). No root needed.

use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use clusterwire_election::{Election, FileLease, file::holder};

/// Set in the child: the lease file it holds.
const CHILD_LEASE: &str = "CW_ELECTION_TEST_CHILD_LEASE";

fn lease_path(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cw-election-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("gateway.lease")
}

/// Not a test of its own: the holder process of
/// [`a_standby_takes_over_at_once_when_the_holder_is_killed`] (does nothing otherwise).
#[test]
fn child_holder() {
    let Ok(path) = std::env::var(CHILD_LEASE) else {
        return;
    };
    let held = FileLease::new(path, "child-replica")
        .try_acquire()
        .expect("lease file")
        .expect("the lease is free");
    println!("holding");
    std::thread::sleep(Duration::from_mins(1));
    drop(held);
}

#[tokio::test]
async fn the_second_candidate_waits_until_the_first_lets_go() {
    let path = lease_path("in-process");
    let first = FileLease::new(&path, "replica-a")
        .try_acquire()
        .expect("lease file")
        .expect("free");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "replica-a\n");
    let second = FileLease::new(&path, "replica-b");
    assert_eq!(
        second.try_acquire().expect("lease file").err().as_deref(),
        Some("replica-a"),
        "held: the holder is named"
    );
    let (standby_tx, standby_rx) = std::sync::mpsc::channel();
    let waiting = tokio::spawn(async move {
        Election::File(second)
            .acquire(move |holder| standby_tx.send(holder.to_owned()).expect("send"))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the standby must wait while the lock is held"
    );
    assert_eq!(standby_rx.try_recv().as_deref(), Ok("replica-a"));
    let released = Instant::now();
    drop(first);
    let leadership = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("takes over after the close")
        .expect("task")
        .expect("lease file");
    assert!(
        released.elapsed() < Duration::from_secs(1),
        "no polling delay"
    );
    assert_eq!(holder(&path), "replica-b");
    leadership.release().await;
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "",
        "released: no holder"
    );
    assert!(
        FileLease::new(&path, "replica-c")
            .try_acquire()
            .expect("lease file")
            .is_ok(),
        "free after release"
    );
    std::fs::remove_dir_all(path.parent().expect("dir")).expect("clean up");
}

#[tokio::test]
async fn a_standby_takes_over_at_once_when_the_holder_is_killed() {
    let path = lease_path("killed");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_holder", "--nocapture", "--test-threads=1"])
        .env(CHILD_LEASE, &path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the holder process");
    let stdout = child.stdout.take().expect("stdout");
    let holding = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("holding"));
    assert!(holding, "the child never held the lease");
    assert_eq!(holder(&path), "child-replica");

    let standby = FileLease::new(&path, "replica-b");
    let waiting = tokio::spawn(async move { standby.acquire(|_| {}).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the standby must wait while the child holds the lock"
    );

    let killed = Instant::now();
    child.kill().expect("SIGKILL");
    let held = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("takes over after SIGKILL")
        .expect("task")
        .expect("lease file");
    assert!(
        killed.elapsed() < Duration::from_secs(1),
        "the kernel releases the lock at once, took {:?}",
        killed.elapsed()
    );
    child.wait().expect("reap");
    assert_eq!(holder(&path), "replica-b");
    drop(held);
    std::fs::remove_dir_all(path.parent().expect("dir")).expect("clean up");
}
