//! `cwctl lab down`: removes everything the lab created, whatever state it is in (after a
//! crash, or a half-done `up`): the daemons named by the pid files, every namespace named with
//! the lab prefix, every bpffs instance named with it, and the state directory. Idempotent.

use std::{fs, path::Path};

use clusterwire_dataplane::{Instance, PIN_ROOT};

use super::{Paths, daemons, netns, plan::PREFIX};

/// What `down` removed and what it could not.
#[derive(Debug, Default)]
pub struct Report {
    /// Lines saying what was removed.
    pub removed: Vec<String>,
    /// Lines saying what could not be removed, and why.
    pub failed: Vec<String>,
}

/// Removes the lab. Never stops at the first failure: everything removable is removed.
pub fn down(paths: &Paths) -> Report {
    let mut report = Report::default();
    for stopped in daemons::stop_all(&paths.pids()) {
        report.removed.push(format!("daemon {stopped}"));
    }
    for ns in netns::list(PREFIX) {
        match netns::ip(&["netns", "del", &ns]) {
            Ok(_) => report.removed.push(format!("namespace {ns}")),
            Err(e) => report.failed.push(format!("namespace {ns}: {e:#}")),
        }
    }
    let pin_root = Path::new(PIN_ROOT);
    if let Ok(entries) = fs::read_dir(pin_root) {
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(PREFIX) {
                continue;
            }
            match Instance::destroy_by_name(pin_root, &name) {
                Ok(()) => report.removed.push(format!("bpffs instance {name}")),
                Err(e) => report.failed.push(format!(
                    "bpffs instance {name}: {e} (retry `cwctl dataplane destroy {name}`)"
                )),
            }
        }
    }
    if paths.root().exists() {
        match fs::remove_dir_all(paths.root()) {
            Ok(()) => report
                .removed
                .push(format!("state {}", paths.root().display())),
            Err(e) => report
                .failed
                .push(format!("state {}: {e}", paths.root().display())),
        }
    }
    report
}
