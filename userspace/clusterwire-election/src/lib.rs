//! Leader election for clusterwire's replicated components, so one replica acts at a time:
//! over a Kubernetes Lease ([`lease`]: the reference's timing, a pure decision tested with a
//! controllable clock), or, on one host without an API server, over an exclusive `flock` on a
//! lease file ([`file`]: released by the kernel the instant the holder dies). [`Election`] is
//! the one interface a daemon uses for both: wait to lead, hold, give up.
#![forbid(unsafe_code)]

pub mod file;
pub mod lease;

pub use file::{FileError, FileLease};
pub use lease::{LeaseElection, Lost};

/// One candidate, of either kind.
#[derive(Debug, Clone)]
pub enum Election {
    /// A Kubernetes Lease.
    Lease(Box<LeaseElection>),
    /// A lease file on this host.
    File(FileLease),
}

/// Leadership won by an [`Election`]; given up when dropped (a file lease) or when the
/// renewals stop (a Lease, which then runs out).
#[derive(Debug)]
pub enum Leadership {
    /// Holding the Lease (renewed by [`Leadership::hold`]).
    Lease(Box<LeaseElection>),
    /// Holding the file lock.
    File(file::Held),
}

impl Election {
    /// The identity this candidate leads as.
    pub fn identity(&self) -> &str {
        match self {
            Self::Lease(election) => election.identity(),
            Self::File(lease) => lease.identity(),
        }
    }

    /// Waits until this candidate leads. `standby(holder)` is called when it has to wait, and
    /// again when the Lease's holder changes.
    pub async fn acquire(self, mut standby: impl FnMut(&str)) -> Result<Leadership, FileError> {
        match self {
            Self::Lease(election) => {
                election.acquire(&mut standby).await;
                Ok(Leadership::Lease(election))
            }
            Self::File(lease) => {
                let held = lease.acquire(standby).await?;
                tracing::info!(
                    lease = %lease.path().display(),
                    identity = %lease.identity(),
                    "became leader"
                );
                Ok(Leadership::File(held))
            }
        }
    }
}

impl Leadership {
    /// Keeps leading; returns when leadership is lost. A Lease is renewed until another
    /// holder takes it or the renew deadline passes; a file lock cannot be lost while this
    /// process lives, so for a file this never returns.
    pub async fn hold(&self) -> Lost {
        match self {
            Self::Lease(election) => election.hold().await,
            Self::File(_) => std::future::pending().await,
        }
    }

    /// Gives leadership up on a clean stop, so a standby takes over at once: a Lease is
    /// released (no holder), a file lock closed. Errors are logged: the Lease then runs out.
    pub async fn release(self) {
        match self {
            Self::Lease(election) => match election.release().await {
                Ok(true) => tracing::info!(lease = %election.name(), "released the lease"),
                Ok(false) => {}
                Err(e) => tracing::warn!(lease = %election.name(), "releasing the lease: {e}"),
            },
            Self::File(held) => held.release(),
        }
    }
}
