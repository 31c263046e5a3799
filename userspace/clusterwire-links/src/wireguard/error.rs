//! Errors of the WireGuard link: creating either implementation, configuring it, reading it.
use std::{io, path::PathBuf};

use super::{Implementation, key::KeyError};
use crate::error::LinkError;

/// A WireGuard link operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WireGuardError {
    /// The private key cannot be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A link-level operation (name check, rtnetlink) failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// `--wireguard kernel` was asked for, and the kernel has no WireGuard driver.
    #[error(
        "kernel WireGuard was requested for {link:?}, but the kernel has no wireguard driver \
         (creating the link returned EOPNOTSUPP); use the userspace or auto mode"
    )]
    KernelUnavailable {
        /// The device's name.
        link: String,
    },
    /// Creating the kernel WireGuard link failed for another reason than a missing driver.
    #[error("creating the kernel WireGuard link {link:?} failed")]
    KernelCreate {
        /// The device's name.
        link: String,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// Applying a configuration through wireguard-control failed.
    #[error("configuring {implementation} WireGuard device {link:?} failed")]
    Configure {
        /// The device's name.
        link: String,
        /// Which implementation was configured.
        implementation: Implementation,
        /// The error from netlink or the UAPI socket.
        #[source]
        source: io::Error,
    },
    /// Reading a device's configuration and counters through wireguard-control failed.
    #[error("reading {implementation} WireGuard device {link:?} failed")]
    Read {
        /// The device's name.
        link: String,
        /// Which implementation was read.
        implementation: Implementation,
        /// The error from netlink or the UAPI socket.
        #[source]
        source: io::Error,
    },
    /// No userspace device serves this name's UAPI socket. (wireguard-control would start
    /// `wireguard-go` in this case; clusterwire never runs an external binary.)
    #[error("no userspace WireGuard device answers on {path:?}")]
    NoUapiSocket {
        /// The socket path.
        path: PathBuf,
        /// Why connecting failed.
        #[source]
        source: io::Error,
    },
    /// Another userspace WireGuard device on this host already serves the name. The socket
    /// directory is shared by every network namespace, so names must be unique per host.
    #[error(
        "a userspace WireGuard device already answers on {path:?}: interface names of userspace \
         devices must be unique on the host, across network namespaces"
    )]
    NameInUse {
        /// The socket path.
        path: PathBuf,
    },
    /// Preparing the UAPI socket (its directory, the socket, the name file) failed.
    #[error("setting up the UAPI socket {path:?} failed")]
    Uapi {
        /// The path being created.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The embedded device's thread or async runtime could not be started.
    #[error("starting the embedded WireGuard runtime for {link:?} failed")]
    Runtime {
        /// The device's name.
        link: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The embedded device (its TUN device) could not be created.
    #[error("creating the embedded userspace WireGuard device {link:?} failed")]
    Embedded {
        /// The device's name.
        link: String,
        /// gotatun's error.
        #[source]
        source: gotatun::device::Error,
    },
    /// The embedded device's thread ended before saying whether it started.
    #[error("the embedded WireGuard device {link:?} stopped while starting")]
    EmbeddedGone {
        /// The device's name.
        link: String,
    },
}

impl WireGuardError {
    /// A short, stable name of the error's kind, for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Key(_) => "key",
            Self::Link(_) => "link",
            Self::KernelUnavailable { .. } => "kernel_unavailable",
            Self::KernelCreate { .. } => "kernel_create",
            Self::Configure { .. } => "configure",
            Self::Read { .. } => "read",
            Self::NoUapiSocket { .. } => "no_uapi_socket",
            Self::NameInUse { .. } => "name_in_use",
            Self::Uapi { .. } => "uapi",
            Self::Runtime { .. } => "runtime",
            Self::Embedded { .. } | Self::EmbeddedGone { .. } => "embedded",
        }
    }
}
