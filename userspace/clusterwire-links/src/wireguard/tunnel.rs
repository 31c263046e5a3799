//! The gateway's WireGuard link, whichever implementation provides it.
use std::{fmt, str::FromStr};

use rtnetlink::Handle;
use wireguard_control::{Backend, DeviceUpdate};

use super::{
    config::{self, TunnelStats, WireGuardConfig},
    embedded::EmbeddedDevice,
    error::WireGuardError,
    interface::{self, InterfaceSettings},
};
use crate::error::{EOPNOTSUPP, LinkError};

/// Which implementation to use (`--wireguard auto|kernel|userspace`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The kernel's where it has a WireGuard driver, otherwise the embedded userspace device.
    #[default]
    Auto,
    /// The kernel's, or fail.
    Kernel,
    /// The embedded userspace device, even where the kernel has a driver.
    Userspace,
}

impl Mode {
    /// The flag value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Kernel => "kernel",
            Self::Userspace => "userspace",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `--wireguard` value that is none of `auto`, `kernel`, `userspace`.
#[derive(Debug, thiserror::Error)]
#[error("unknown WireGuard mode {0:?}: expected auto, kernel or userspace")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(Self::Auto),
            "kernel" => Ok(Self::Kernel),
            "userspace" => Ok(Self::Userspace),
            other => Err(UnknownMode(other.to_owned())),
        }
    }
}

/// The implementation a [`Tunnel`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Implementation {
    /// The kernel's WireGuard driver, configured over generic netlink.
    Kernel,
    /// A userspace device (the embedded one), configured over its UAPI socket.
    Userspace,
}

impl Implementation {
    /// `kernel` or `userspace`: for logs, the metric label and the status.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Kernel => "kernel",
            Self::Userspace => "userspace",
        }
    }

    pub(crate) const fn backend(self) -> Backend {
        match self {
            Self::Kernel => Backend::Kernel,
            Self::Userspace => Backend::Userspace,
        }
    }
}

impl fmt::Display for Implementation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A gateway's WireGuard device, kernel or embedded userspace, created and configured.
///
/// Dropping it stops an embedded device (its TUN device and UAPI socket go away with it; the drop
/// waits up to about two seconds for the device thread) and leaves a kernel link in place, for
/// the next process to adopt through [`create`]; [`delete`] removes either.
///
/// A kernel link is reached over netlink from the calling thread's network namespace: call
/// [`apply`], [`stats`] and [`delete`] from the namespace the tunnel was created in (a gateway
/// lives in one). The embedded device is reached over its UAPI socket, from anywhere on the host.
///
/// [`apply`]: Tunnel::apply
/// [`stats`]: Tunnel::stats
/// [`delete`]: Tunnel::delete
#[derive(Debug)]
pub struct Tunnel {
    name: String,
    implementation: Implementation,
    reason: &'static str,
    embedded: Option<EmbeddedDevice>,
}

/// Creates (or adopts, for an existing kernel link) the WireGuard device `name` in the caller's
/// network namespace and applies `config` to it.
///
/// - [`Mode::Kernel`]: a kernel link, or [`WireGuardError::KernelUnavailable`].
/// - [`Mode::Userspace`]: the embedded device (TUN device `name`, UAPI socket
///   `/var/run/wireguard/<name>.sock`; the name must be unique on the host).
/// - [`Mode::Auto`]: tries to create the kernel link, which is the capability probe itself
///   (see `probe_kernel`); where the kernel answers `EOPNOTSUPP` (no driver), the embedded device.
///   Any other failure is returned, not papered over.
///
/// Blocking (netlink and UAPI round trips, a thread start): from async code, call it from
/// `spawn_blocking`.
pub fn create(name: &str, mode: Mode, config: &WireGuardConfig) -> Result<Tunnel, WireGuardError> {
    let mut tunnel = match mode {
        Mode::Kernel => match create_kernel_link(name)? {
            KernelLink::Created => Tunnel::kernel(name, "requested with --wireguard kernel"),
            KernelLink::NoDriver => {
                return Err(WireGuardError::KernelUnavailable {
                    link: name.to_owned(),
                });
            }
        },
        Mode::Userspace => Tunnel::userspace(name, "requested with --wireguard userspace")?,
        Mode::Auto => match create_kernel_link(name)? {
            KernelLink::Created => Tunnel::kernel(name, "auto: the kernel has a wireguard driver"),
            KernelLink::NoDriver => Tunnel::userspace(
                name,
                "auto: the kernel has no wireguard driver (EOPNOTSUPP)",
            )?,
        },
    };
    tunnel.apply(config)?;
    Ok(tunnel)
}

impl Tunnel {
    fn kernel(name: &str, reason: &'static str) -> Self {
        Self {
            name: name.to_owned(),
            implementation: Implementation::Kernel,
            reason,
            embedded: None,
        }
    }

    fn userspace(name: &str, reason: &'static str) -> Result<Self, WireGuardError> {
        let embedded = EmbeddedDevice::start(name)?;
        Ok(Self {
            name: embedded.name().to_owned(),
            implementation: Implementation::Userspace,
            reason,
            embedded: Some(embedded),
        })
    }

    /// The device's interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which implementation provides the device.
    pub fn implementation(&self) -> Implementation {
        self.implementation
    }

    /// Why this implementation was chosen, in words (for the gateway's log line).
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// Applies a new configuration (a changed peer key, a re-resolved endpoint) as a diff: what
    /// did not change is not written, so the current session survives.
    pub fn apply(&mut self, config: &WireGuardConfig) -> Result<(), WireGuardError> {
        config::configure(&self.name, self.implementation, config)
    }

    /// The device's public key, port and peer counters, read back from the implementation.
    pub fn stats(&self) -> Result<TunnelStats, WireGuardError> {
        config::read_stats(&self.name, self.implementation)
    }

    /// Sets the MTU, adds the tunnel address and brings the device up (see
    /// [`interface::set_up_interface`]); returns its interface index.
    pub async fn set_up_interface(
        &self,
        handle: &Handle,
        settings: &InterfaceSettings,
    ) -> Result<u32, LinkError> {
        interface::set_up_interface(handle, &self.name, settings).await
    }

    /// Removes the device: deletes a kernel link; stops an embedded device.
    pub fn delete(mut self) -> Result<(), WireGuardError> {
        match self.embedded.take() {
            Some(embedded) => {
                drop(embedded);
                Ok(())
            }
            None => super::delete_kernel(&self.name).map_err(WireGuardError::from),
        }
    }
}

enum KernelLink {
    Created,
    NoDriver,
}

/// Creates the kernel WireGuard link (keeping an existing one), or says the kernel has no driver.
fn create_kernel_link(name: &str) -> Result<KernelLink, WireGuardError> {
    let iface = config::interface(name)?;
    match DeviceUpdate::new().apply(&iface, Backend::Kernel) {
        Ok(()) => Ok(KernelLink::Created),
        Err(source) if source.raw_os_error() == Some(EOPNOTSUPP) => Ok(KernelLink::NoDriver),
        Err(source) => Err(WireGuardError::KernelCreate {
            link: name.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::{Implementation, Mode};

    #[test]
    fn modes_parse_from_the_flag_values_and_print_back() {
        for mode in [Mode::Auto, Mode::Kernel, Mode::Userspace] {
            assert_eq!(mode.as_str().parse::<Mode>().expect("parse"), mode);
            assert_eq!(mode.to_string(), mode.as_str());
        }
        let error = "wireguard-go".parse::<Mode>().expect_err("unknown");
        assert!(error.to_string().contains("auto, kernel or userspace"));
        assert_eq!(Mode::default(), Mode::Auto);
        assert_eq!(Implementation::Userspace.to_string(), "userspace");
    }
}
