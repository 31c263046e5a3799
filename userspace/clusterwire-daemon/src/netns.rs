//! Entering a named network namespace (`/run/netns/<name>`, as `ip netns add` makes them).
//!
//! Call [`enter`] at the start of `main`, before any runtime or thread exists: threads created
//! afterwards inherit the namespace. Unlike `ip netns exec`, this does not remount `/sys`, so
//! the bpffs pins under `/sys/fs/bpf` stay visible.
use std::{fs::File, path::PathBuf};

/// Why the namespace could not be entered.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The namespace file could not be opened.
    #[error("network namespace {path}: cannot open it")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `setns` failed.
    #[error("network namespace {path}: setns failed")]
    Setns {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: nix::Error,
    },
}

/// Moves the calling thread into the network namespace `name`.
pub fn enter(name: &str) -> Result<(), NetnsError> {
    let path = PathBuf::from("/run/netns").join(name);
    let file = File::open(&path).map_err(|source| NetnsError::Open {
        path: path.clone(),
        source,
    })?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|source| NetnsError::Setns { path, source })
}

/// Gives the process a private `/var/run/wireguard` (a mount namespace of its own, mounts
/// propagating from the host but not back, and a tmpfs there), as a pod has its own `/var/run`:
/// several gateways on one host can then all call their device `liqo-tunnel`, whose userspace
/// UAPI socket lives in that directory. Call it after [`enter`], before any thread exists.
pub fn private_run() -> Result<(), NetnsError> {
    use nix::mount::{MsFlags, mount};
    let dir = PathBuf::from("/var/run/wireguard");
    std::fs::create_dir_all(&dir).map_err(|source| NetnsError::Open {
        path: dir.clone(),
        source,
    })?;
    let fail = |source| NetnsError::Setns {
        path: dir.clone(),
        source,
    };
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(fail)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(fail)?;
    mount(
        Some("tmpfs"),
        &dir,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0700"),
    )
    .map_err(fail)
}
