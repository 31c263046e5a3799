//! Probes for the kernel drivers clusterwire prefers: Geneve (`collect_md`) and WireGuard.
//!
//! Each probe creates a throw-away device in the caller's network namespace, reads it back,
//! checks that the kernel kept what was asked, and deletes it.
use std::fmt;

use rtnetlink::Handle;
use wireguard_control::Key;

use crate::{
    error::{EOPNOTSUPP, LinkError},
    geneve, wireguard,
};

const GENEVE_PROBE_LINK: &str = "cwprobe-gnv0";
const WIREGUARD_PROBE_LINK: &str = "cwprobe-wg0";

/// Whether the kernel can provide one kind of link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    /// The driver is there: a device was created, read back as configured, and deleted.
    Available {
        /// What was created and read back.
        detail: String,
    },
    /// The kernel has no such driver (built in or loadable); clusterwire uses its fallback.
    Unavailable {
        /// Why, in words.
        reason: String,
    },
}

impl Capability {
    /// Whether the driver is available.
    pub fn is_available(&self) -> bool {
        matches!(self, Self::Available { .. })
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Available { detail } => write!(f, "available ({detail})"),
            Self::Unavailable { reason } => write!(f, "unavailable ({reason})"),
        }
    }
}

/// What the running kernel offers clusterwire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelCapabilities {
    /// Kernel `collect_md` Geneve (else: eBPF-native Geneve).
    pub geneve: Capability,
    /// Kernel WireGuard (else: embedded userspace WireGuard).
    pub wireguard: Capability,
}

/// Probes Geneve and WireGuard in the caller's network namespace.
///
/// A missing driver is reported as [`Capability::Unavailable`]; any other failure (a device that
/// cannot be read back, a name already taken, no permission) is an error.
pub async fn probe_kernel(handle: &Handle) -> Result<KernelCapabilities, LinkError> {
    Ok(KernelCapabilities {
        geneve: probe_geneve(handle).await?,
        wireguard: probe_wireguard()?,
    })
}

async fn probe_geneve(handle: &Handle) -> Result<Capability, LinkError> {
    let port = geneve::DEFAULT_PORT;
    let ifindex = match geneve::create_collect_md(handle, GENEVE_PROBE_LINK, port).await {
        Ok(ifindex) => ifindex,
        Err(LinkError::Netlink {
            source: rtnetlink::Error::NetlinkError(e),
            ..
        }) if e.raw_code() == -EOPNOTSUPP => {
            return Ok(Capability::Unavailable {
                reason: "the kernel has no geneve driver: creating a geneve link returned \
                         EOPNOTSUPP"
                    .to_owned(),
            });
        }
        Err(e) => return Err(e),
    };
    let found = geneve::get(handle, GENEVE_PROBE_LINK).await;
    geneve::delete(handle, GENEVE_PROBE_LINK, ifindex).await?;
    let expected = geneve::GeneveLink {
        ifindex,
        collect_md: true,
        port: Some(port),
    };
    match found? {
        Some(link) if link == expected => Ok(Capability::Available {
            detail: format!("collect_md geneve link, UDP port {port}, read back"),
        }),
        other => Err(LinkError::Mismatch {
            link: GENEVE_PROBE_LINK.to_owned(),
            expected: format!("{expected:?}"),
            found: format!("{other:?}"),
        }),
    }
}

fn probe_wireguard() -> Result<Capability, LinkError> {
    let port = wireguard::DEFAULT_PORT;
    let private = Key::generate_private();
    match wireguard::create_kernel(WIREGUARD_PROBE_LINK, &private, port) {
        Ok(()) => {}
        Err(LinkError::WireGuard { source, .. }) if source.raw_os_error() == Some(EOPNOTSUPP) => {
            return Ok(Capability::Unavailable {
                reason: "the kernel has no wireguard driver: creating a wireguard link \
                         returned EOPNOTSUPP"
                    .to_owned(),
            });
        }
        Err(e) => return Err(e),
    }
    let found = wireguard::get_kernel(WIREGUARD_PROBE_LINK);
    wireguard::delete_kernel(WIREGUARD_PROBE_LINK)?;
    let expected = wireguard::WireGuardLink {
        listen_port: Some(port),
        public_key: Some(private.get_public().to_base64()),
    };
    let found = found?;
    if found == expected {
        Ok(Capability::Available {
            detail: format!("kernel wireguard device, listen port {port}, public key read back"),
        })
    } else {
        Err(LinkError::Mismatch {
            link: WIREGUARD_PROBE_LINK.to_owned(),
            expected: format!("{expected:?}"),
            found: format!("{found:?}"),
        })
    }
}
