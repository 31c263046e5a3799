//! The kernel WireGuard device of a gateway, configured through wireguard-control.
use wireguard_control::{Backend, Device, DeviceUpdate, InterfaceName, Key};

use crate::error::{LinkError, check_name};

/// WireGuard's listen port on clusterwire gateways (and Liqo's).
pub const DEFAULT_PORT: u16 = 51840;

/// A WireGuard device as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireGuardLink {
    /// The device's listen port.
    pub listen_port: Option<u16>,
    /// The device's public key (base64).
    pub public_key: Option<String>,
}

/// Creates (or updates) a kernel WireGuard device with a private key and listen port.
///
/// Fails with an I/O error of raw code `EOPNOTSUPP` where the kernel has no WireGuard driver.
pub fn create_kernel(name: &str, private_key: &Key, listen_port: u16) -> Result<(), LinkError> {
    let iface = interface(name)?;
    DeviceUpdate::new()
        .set_private_key(private_key.clone())
        .set_listen_port(listen_port)
        .apply(&iface, Backend::Kernel)
        .map_err(|source| wg("create", name, source))
}

/// Reads a kernel WireGuard device back.
pub fn get_kernel(name: &str) -> Result<WireGuardLink, LinkError> {
    let device = Device::get(&interface(name)?, Backend::Kernel)
        .map_err(|source| wg("get", name, source))?;
    Ok(WireGuardLink {
        listen_port: device.listen_port,
        public_key: device.public_key.map(|key| key.to_base64()),
    })
}

/// Deletes a kernel WireGuard device.
pub fn delete_kernel(name: &str) -> Result<(), LinkError> {
    let device = Device::get(&interface(name)?, Backend::Kernel)
        .map_err(|source| wg("get", name, source))?;
    device.delete().map_err(|source| wg("delete", name, source))
}

fn interface(name: &str) -> Result<InterfaceName, LinkError> {
    check_name(name)?;
    name.parse()
        .map_err(|_| LinkError::InvalidName(name.to_owned()))
}

fn wg(op: &'static str, name: &str, source: std::io::Error) -> LinkError {
    LinkError::WireGuard {
        op,
        link: name.to_owned(),
        source,
    }
}
