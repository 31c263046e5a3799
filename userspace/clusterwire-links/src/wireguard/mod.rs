//! The WireGuard device of a gateway: the kernel's where it has the driver, otherwise an
//! embedded userspace device (gotatun, in this process), with one configuration path for both.
//!
//! A gateway daemon does, in its network namespace:
//!
//! ```no_run
//! # async fn gateway(handle: &rtnetlink::Handle) -> Result<(), Box<dyn std::error::Error>> {
//! use clusterwire_links::wireguard::{
//!     self, InterfaceSettings, Mode, PeerConfig, PrivateKey, PublicKey, Role, WireGuardConfig,
//! };
//!
//! let config = WireGuardConfig {
//!     private_key: PrivateKey::from_file("/etc/wireguard/keys/privateKey".as_ref())?,
//!     listen_port: Some(wireguard::DEFAULT_PORT), // server; None for a client
//!     peer: Some(PeerConfig {
//!         public_key: "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=".parse::<PublicKey>()?,
//!         endpoint: None, // a client: Some(resolved server endpoint)
//!         allowed_ips: vec!["0.0.0.0/0".parse()?],
//!         persistent_keepalive: None,
//!     }),
//! };
//! let mut tunnel = wireguard::create("liqo-tunnel", Mode::Auto, &config)?;
//! println!("wireguard: {} ({})", tunnel.implementation(), tunnel.reason());
//! tunnel
//!     .set_up_interface(handle, &InterfaceSettings::for_role(Role::Server))
//!     .await?;
//! // Later: tunnel.apply(&new_config)? (re-resolved endpoint, new peer key);
//! // tunnel.stats()? for the metrics and the Connection status.
//! # Ok(())
//! # }
//! ```
use wireguard_control::{Backend, Device, DeviceUpdate, Key};

use self::config::interface;
use crate::error::LinkError;

mod config;
mod embedded;
mod error;
mod interface;
mod key;
mod tunnel;

pub use config::{
    PeerConfig, PeerStats, TunnelStats, UAPI_DIR, WireGuardConfig, configure, read_stats,
    uapi_socket,
};
pub use error::WireGuardError;
pub use interface::{DEFAULT_MTU, InterfaceSettings, Role, link_index, set_up_interface};
pub use key::{KEY_LEN, KeyError, PrivateKey, PublicKey};
pub use tunnel::{Implementation, Mode, Tunnel, UnknownMode, create};

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

/// Creates (or updates) a kernel WireGuard device with a private key and listen port (the
/// capability probe's primitive; gateways use [`create`]).
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

fn wg(op: &'static str, name: &str, source: std::io::Error) -> LinkError {
    LinkError::WireGuard {
        op,
        link: name.to_owned(),
        source,
    }
}
