//! Leader election on one host without an API server: an exclusive `flock` on a lease file,
//! held for the whole leadership.
//!
//! The kernel releases the lock the instant the holder's last descriptor of the file closes,
//! also when the holder dies of SIGKILL, so a standby blocked in `flock(LOCK_EX)` takes over at
//! once: no expiry to wait for, no polling. The holder writes its identity into the file for
//! operators (`cat FILE`); standbys read it to say whom they wait for. The file is never
//! truncated on open, replaced or removed (a lock is on the inode: a new file would be a second
//! lease). Files are opened close-on-exec (std's default), so a child process of the holder
//! never keeps the lock alive after it.

use std::{
    fs::{File, OpenOptions},
    io::{Read as _, Write as _},
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use nix::{
    errno::Errno,
    fcntl::{Flock, FlockArg},
};

/// What went wrong with a lease file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// It could not be opened (or created).
    #[error("opening lease file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `flock` failed for another reason than the lock being held.
    #[error("locking lease file {path}: {source}")]
    Lock {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Errno,
    },
    /// The holder's identity could not be written.
    #[error("writing the holder into lease file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The thread waiting for the lock could not be started or went away.
    #[error("waiting for lease file {path}: the waiting thread failed")]
    Waiter {
        /// The file.
        path: PathBuf,
    },
}

/// A candidate for the lease in one file.
#[derive(Debug, Clone)]
pub struct FileLease {
    path: PathBuf,
    identity: String,
}

/// The lease, held until dropped (or [`Held::release`]d).
#[derive(Debug)]
pub struct Held {
    lock: Flock<File>,
    path: PathBuf,
}

impl FileLease {
    /// Candidate `identity` for the lease in `path` (created on first use, mode 0644).
    pub fn new(path: impl Into<PathBuf>, identity: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            identity: identity.into(),
        }
    }

    /// The lease file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Takes the lease if nobody holds it; otherwise the holder written in the file.
    pub fn try_acquire(&self) -> Result<Result<Held, String>, FileError> {
        match lock(&self.path, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => self.held(lock).map(Ok),
            Err(FileError::Lock {
                source: Errno::EWOULDBLOCK,
                ..
            }) => Ok(Err(holder(&self.path))),
            Err(e) => Err(e),
        }
    }

    /// Takes the lease, waiting as long as another process holds it; `standby(holder)` is
    /// called once if it has to wait. The wait is a blocking `flock` on a thread of its own
    /// (not the runtime's blocking pool, which a runtime shutting down would wait for): it
    /// returns when the holder's descriptor closes, however the holder ended.
    pub async fn acquire(&self, standby: impl FnOnce(&str)) -> Result<Held, FileError> {
        match self.try_acquire()? {
            Ok(held) => return Ok(held),
            Err(holder) => standby(&holder),
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let path = self.path.clone();
        let waiter = || FileError::Waiter {
            path: self.path.clone(),
        };
        std::thread::Builder::new()
            .name("lease-file".to_owned())
            .spawn(move || {
                let _ = tx.send(lock(&path, FlockArg::LockExclusive));
            })
            .map_err(|_| waiter())?;
        let lock = rx.await.map_err(|_| waiter())??;
        self.held(lock)
    }

    /// Writes our identity into the locked file.
    fn held(&self, lock: Flock<File>) -> Result<Held, FileError> {
        let mut file: &File = &lock;
        let write = file
            .set_len(0)
            .and_then(|()| file.write_all(format!("{}\n", self.identity).as_bytes()))
            .and_then(|()| file.flush());
        write.map_err(|source| FileError::Write {
            path: self.path.clone(),
            source,
        })?;
        Ok(Held {
            lock,
            path: self.path.clone(),
        })
    }
}

impl Held {
    /// The lease file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives the lease up: clears the holder from the file, then unlocks (dropping does the
    /// same without clearing).
    pub fn release(self) {
        let file: &File = &self.lock;
        let _ = file.set_len(0);
    }
}

/// The holder written in lease file `path` (its first line), or a placeholder when it names
/// none (a holder that has just locked it and not yet written, or a file never used).
pub fn holder(path: &Path) -> String {
    let mut text = String::new();
    let _ = File::open(path).and_then(|mut f| f.read_to_string(&mut text));
    match text.lines().next().map(str::trim) {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => "an unnamed holder".to_owned(),
    }
}

/// Opens (creating, never truncating) and locks `path`; `EINTR` is retried.
fn lock(path: &Path, how: FlockArg) -> Result<Flock<File>, FileError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
        .map_err(|source| FileError::Open {
            path: path.to_owned(),
            source,
        })?;
    loop {
        match Flock::lock(file, how) {
            Ok(lock) => return Ok(lock),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, source)) => {
                return Err(FileError::Lock {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
}
