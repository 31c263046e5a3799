//! The tunnel device as a network interface: MTU, the /30 tunnel address, up. The same rtnetlink
//! calls serve both implementations, since the embedded device's TUN is an ordinary netdev.
use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt as _;
use ipnet::Ipv4Net;
use rtnetlink::{Handle, LinkUnspec};

use crate::error::{LinkError, check_name};

/// The tunnel MTU of clusterwire (and Liqo) gateways: room for WireGuard's 60 bytes of IPv4
/// overhead and Geneve inside common 1500-byte paths.
pub const DEFAULT_MTU: u32 = 1340;

/// Which end of a peering a gateway is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Listens (GatewayServer): 169.254.18.1/30.
    Server,
    /// Dials the server (GatewayClient): 169.254.18.2/30.
    Client,
}

impl Role {
    /// The tunnel address of this end, as the reference assigns it.
    pub const fn tunnel_address(self) -> Ipv4Net {
        let host = match self {
            Self::Server => 1,
            Self::Client => 2,
        };
        Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 18, host), 30)
    }

    /// The other end's tunnel address.
    pub const fn peer_address(self) -> Ipv4Addr {
        match self {
            Self::Server => Role::Client.tunnel_address().addr(),
            Self::Client => Role::Server.tunnel_address().addr(),
        }
    }
}

/// What the tunnel interface is set to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceSettings {
    /// The interface MTU (the gateway's `spec.mtu`, default [`DEFAULT_MTU`]).
    pub mtu: u32,
    /// The interface address with its prefix.
    pub address: Ipv4Net,
}

impl InterfaceSettings {
    /// The reference's settings for this end: MTU 1340 and its /30 address.
    pub const fn for_role(role: Role) -> Self {
        Self {
            mtu: DEFAULT_MTU,
            address: role.tunnel_address(),
        }
    }
}

/// Sets the MTU of the link `name`, adds its address (replacing an identical one, so this can be
/// re-run) and brings it up. Returns its interface index. `handle` must belong to the link's
/// network namespace.
pub async fn set_up_interface(
    handle: &Handle,
    name: &str,
    settings: &InterfaceSettings,
) -> Result<u32, LinkError> {
    let InterfaceSettings { mtu, address } = *settings;
    let index = link_index(handle, name).await?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).mtu(mtu).build())
        .execute()
        .await
        .map_err(|source| netlink("set mtu", name, source))?;
    handle
        .address()
        .add(index, IpAddr::V4(address.addr()), address.prefix_len())
        .replace()
        .execute()
        .await
        .map_err(|source| netlink("add address", name, source))?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|source| netlink("set up", name, source))?;
    Ok(index)
}

/// The interface index of the link `name`.
pub async fn link_index(handle: &Handle, name: &str) -> Result<u32, LinkError> {
    check_name(name)?;
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(Some(message)) => Ok(message.header.index),
        Ok(None) => Err(LinkError::Mismatch {
            link: name.to_owned(),
            expected: "a link".to_owned(),
            found: "no link".to_owned(),
        }),
        Err(source) => Err(netlink("get", name, source)),
    }
}

fn netlink(op: &'static str, name: &str, source: rtnetlink::Error) -> LinkError {
    LinkError::Netlink {
        op,
        link: name.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::{DEFAULT_MTU, InterfaceSettings, Role};

    #[test]
    fn the_two_ends_take_the_reference_addresses() {
        let server = InterfaceSettings::for_role(Role::Server);
        assert_eq!(server.address.to_string(), "169.254.18.1/30");
        assert_eq!(server.mtu, DEFAULT_MTU);
        assert_eq!(Role::Client.tunnel_address().to_string(), "169.254.18.2/30");
        assert_eq!(Role::Server.peer_address(), Ipv4Addr::new(169, 254, 18, 2));
        assert_eq!(Role::Client.peer_address(), Ipv4Addr::new(169, 254, 18, 1));
        assert_eq!(
            Role::Server.tunnel_address().network(),
            Role::Client.tunnel_address().network()
        );
    }
}
