//! Telling which manifest files changed without reading them, and reading and parsing the
//! ones that did.

use std::{
    fs,
    hash::{Hash as _, Hasher as _},
    io,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use clusterwire_api::validation::ManifestValidator;

use super::{Filter, Ignored, ManifestError, Problem, load::parse_file_of};
use crate::snapshot::Object;

/// How recent a file's timestamps may be, when it is read, for its stamp to be trusted: a
/// rewrite of the same size within one tick of the file system's clock (coarse on many kernels
/// and file systems: jiffies, or 2 s on FAT) leaves the stamp unchanged, so a file read that
/// soon after a write is read again at the next poll, and compared by content, until a read
/// happens late enough (as git treats "racily clean" index entries).
const RACY: Duration = Duration::from_secs(2);

/// What identifies one version of a file without reading it: device and inode (a rename over
/// the file replaces the inode), size, and modification and change times in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The stamp of `path` (symlinks followed, as a `ConfigMap` mount needs); `None` if it
    /// cannot be read, so the file is read (and its error reported) at every poll.
    pub(super) fn of(path: &Path) -> Option<Self> {
        let meta = fs::metadata(path).ok()?;
        Some(Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }

    /// Whether a write after `now` could still leave the stamp unchanged: the file's times
    /// are within [`RACY`] of `now` (or in the future).
    pub(super) fn racy(&self, now: SystemTime) -> bool {
        let nanos = |(secs, nsec): (i64, i64)| i128::from(secs) * 1_000_000_000 + i128::from(nsec);
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX));
        let window = i128::try_from(RACY.as_nanos()).unwrap_or(i128::MAX);
        nanos(self.mtime).max(nanos(self.ctime)) > now - window
    }
}

/// The version of a file last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Version {
    /// Its stamp when read (`None`: unknown, read again at the next poll).
    pub(super) stamp: Option<Stamp>,
    /// The hash of its contents, `None` if it could not be read.
    pub(super) hash: Option<u64>,
    /// Whether the stamp was too recent when the file was read to vouch for its contents.
    pub(super) racy: bool,
}

impl Version {
    /// Whether the file may have changed since, given its stamp now: a missing or different
    /// stamp, or one that was too recent to be trusted when the file was read.
    pub(super) fn stale(&self, now: Option<Stamp>) -> bool {
        match (self.stamp, now) {
            (Some(then), Some(now)) => then != now || self.racy,
            _ => true,
        }
    }
}

/// A file to read: its path, its stamp before reading, and the version read last (`None` for
/// a file not seen before).
pub(super) struct Candidate {
    pub(super) path: PathBuf,
    pub(super) stamp: Option<Stamp>,
    pub(super) known: Option<Version>,
}

/// One file parsed.
#[derive(Debug, Default)]
pub(super) struct Parsed {
    /// Good objects, in document order.
    pub(super) objects: Vec<Object>,
    /// Problems (no duplicates: those depend on the other files).
    pub(super) problems: Vec<Problem>,
    /// Documents of other kinds.
    pub(super) ignored: Vec<Ignored>,
}

/// What reading a candidate found.
pub(super) struct Read {
    pub(super) path: PathBuf,
    pub(super) version: Version,
    /// `None` when the contents are those already known (only the stamp changed).
    pub(super) parsed: Option<Parsed>,
}

/// Reads `candidates` (stamped at `at`, before reading), parses those whose contents changed,
/// and hands each result to `each` in the order of `candidates`, one file at a time: files are
/// not all held parsed at once.
///
/// On this thread only: objects parsed on worker threads live in the workers' malloc arenas,
/// which glibc does not give back while any of their memory is in use, and a daemon keeps its
/// objects for as long as they are defined. Measured at 5,000 nodes and 1,000 peerings (the
/// gateway of `cargo xtask bench converge`): two workers held 7 MB of RSS for good (54.4 MB
/// against 47.8 MB), for a first poll of about 0.3 s of CPU.
pub(super) fn read(
    candidates: Vec<Candidate>,
    at: SystemTime,
    validator: &ManifestValidator,
    filter: &Filter,
    mut each: impl FnMut(Read),
) {
    for candidate in candidates {
        each(read_one(candidate, at, validator, filter));
    }
}

fn read_one(
    candidate: Candidate,
    at: SystemTime,
    validator: &ManifestValidator,
    filter: &Filter,
) -> Read {
    let Candidate { path, stamp, known } = candidate;
    let text = fs::read(&path).and_then(|bytes| {
        String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    });
    let hash = text.as_ref().ok().map(|text| {
        let mut hasher = std::hash::DefaultHasher::new();
        text.hash(&mut hasher);
        hasher.finish()
    });
    let version = Version {
        stamp,
        hash,
        racy: stamp.is_none_or(|s| s.racy(at)),
    };
    if known.is_some_and(|known| known.hash == hash) {
        return Read {
            path,
            version,
            parsed: None,
        };
    }
    let parsed = match text {
        Ok(text) => {
            let (objects, problems, ignored) = parse_file_of(&path, &text, validator, filter);
            Parsed {
                objects,
                problems,
                ignored,
            }
        }
        Err(e) => Parsed {
            problems: vec![Problem {
                file: path.clone(),
                object: None,
                error: ManifestError::Read(e),
            }],
            ..Parsed::default()
        },
    };
    Read {
        path,
        version,
        parsed: Some(parsed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_times_are_racy() {
        let stamp = |secs| Stamp {
            dev: 1,
            ino: 2,
            len: 3,
            mtime: (secs, 500),
            ctime: (secs, 500),
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert!(stamp(999).racy(now), "written a second ago");
        assert!(stamp(2_000).racy(now), "in the future");
        assert!(!stamp(990).racy(now), "old enough");
        let version = |secs| Version {
            stamp: Some(stamp(secs)),
            hash: Some(7),
            racy: stamp(secs).racy(now),
        };
        let old = version(990);
        assert!(!old.stale(Some(stamp(990))));
        assert!(old.stale(Some(stamp(991))), "another stamp");
        assert!(old.stale(None), "no stamp now");
        assert!(
            version(999).stale(Some(stamp(999))),
            "same stamp, but read too soon after the write to vouch for the contents"
        );
    }
}
