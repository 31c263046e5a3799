//! Waking the daemons when their `--manifests` directory changes (inotify), so a change is
//! applied at once instead of at the next poll. The poll stays: it is what reads the changes
//! (`manifests::Source::poll` compares every file's stamp), and it catches what inotify cannot
//! see (a file changed through another mount, a watch that could not be added).
//!
//! Watched: the directory and its subdirectories except `status/` (written by the daemons
//! themselves) and hidden ones (a `ConfigMap` mount swaps its `..data` symlink in the top
//! directory, which is watched). A new subdirectory is watched after the event that shows it.

use std::{
    io,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use clusterwire_fabric::manifests::list_dirs;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::sync::Notify;
use tracing::warn;

/// What changes wake the daemon: any entry created, removed, renamed, written or re-linked.
const EVENTS: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_CLOSE_WRITE)
    .union(AddWatchFlags::IN_MODIFY)
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF);

/// An inotify instance on a manifests directory tree, read by a thread of its own (blocked in
/// `read`, waking the daemon's task through a [`Notify`]).
#[derive(Debug)]
pub struct DirWatch {
    woken: Arc<Notify>,
    watched: Arc<AtomicUsize>,
}

impl DirWatch {
    /// Watches `dir` and its subdirectories. An error (no inotify, too many watches) leaves
    /// the daemon on its poll alone, which the caller logs.
    pub fn new(dir: &Path) -> io::Result<Self> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC)?;
        let mut watched = Vec::new();
        add_new_directories(&inotify, dir, &mut watched)?;
        let woken = Arc::new(Notify::new());
        let count = Arc::new(AtomicUsize::new(watched.len()));
        let (dir, wake, counted) = (dir.to_path_buf(), woken.clone(), count.clone());
        std::thread::Builder::new()
            .name("manifests-watch".to_owned())
            .spawn(move || {
                loop {
                    let events = match inotify.read_events() {
                        Ok(events) => events,
                        Err(nix::errno::Errno::EINTR) => continue,
                        Err(e) => {
                            warn!("watching the manifests directory: {e}; polling only");
                            return;
                        }
                    };
                    if events
                        .iter()
                        .any(|e| e.mask.contains(AddWatchFlags::IN_ISDIR))
                    {
                        if let Err(e) = add_new_directories(&inotify, &dir, &mut watched) {
                            warn!("watching new manifest directories: {e}; they are polled");
                        }
                        counted.store(watched.len(), Ordering::Relaxed);
                    }
                    wake.notify_one();
                }
            })?;
        Ok(Self {
            woken,
            watched: count,
        })
    }

    /// Waits for the next change (changes since the last call wake it at once; a burst of
    /// them wakes it once or a few times, not once per event).
    pub async fn changed(&self) {
        self.woken.notified().await;
    }

    /// How many directories are watched.
    pub fn directories(&self) -> usize {
        self.watched.load(Ordering::Relaxed)
    }
}

/// Watches the manifests directory `dir` if there is one (file mode), logging why not if it
/// cannot: the daemon then relies on its poll alone.
pub fn manifests(dir: Option<&Path>) -> Option<DirWatch> {
    let dir = dir?;
    match DirWatch::new(dir) {
        Ok(watch) => Some(watch),
        Err(e) => {
            warn!(
                "cannot watch {} ({e}): changes are seen at the next poll",
                dir.display()
            );
            None
        }
    }
}

/// Waits for the next change under `watch`; never, without one.
pub async fn changed(watch: Option<&DirWatch>) {
    match watch {
        Some(watch) => watch.changed().await,
        None => std::future::pending().await,
    }
}

/// Adds a watch on every directory of the tree under `dir` not in `watched` yet.
fn add_new_directories(
    inotify: &Inotify,
    dir: &Path,
    watched: &mut Vec<PathBuf>,
) -> io::Result<()> {
    for dir in list_dirs(dir).map_err(|e| e.source)? {
        if watched.contains(&dir) {
            continue;
        }
        inotify.add_watch(&dir, EVENTS)?;
        watched.push(dir);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn wakes(watch: &DirWatch) -> bool {
        tokio::time::timeout(Duration::from_millis(500), watch.changed())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn wakes_on_changes_in_the_tree_but_not_on_statuses() {
        let dir = std::env::temp_dir().join(format!("cw-dirwatch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("status")).unwrap();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join(".hidden")).unwrap();
        let watch = DirWatch::new(&dir).unwrap();
        assert_eq!(watch.directories(), 2, "the directory and sub/");

        assert!(!wakes(&watch).await, "nothing changed yet");
        std::fs::write(dir.join("status/gw.yaml"), "x").unwrap();
        std::fs::write(dir.join(".hidden/x.yaml"), "x").unwrap();
        assert!(
            !wakes(&watch).await,
            "statuses and hidden directories are not watched"
        );

        std::fs::write(dir.join("a.yaml"), "x").unwrap();
        assert!(wakes(&watch).await, "a file written");
        std::fs::write(dir.join("sub/b.yaml"), "x").unwrap();
        assert!(wakes(&watch).await, "a file written in a subdirectory");
        std::fs::rename(dir.join("a.yaml"), dir.join("c.yaml")).unwrap();
        assert!(wakes(&watch).await, "a rename");

        std::fs::create_dir(dir.join("new")).unwrap();
        assert!(wakes(&watch).await, "a new directory");
        assert_eq!(watch.directories(), 3);
        std::fs::write(dir.join("new/d.yaml"), "x").unwrap();
        assert!(wakes(&watch).await, "a file in the new directory");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
