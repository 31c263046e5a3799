//! Address families and the `u128` view of addresses and CIDRs used by the interval sets.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

/// IP address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// Family of an address.
    pub fn of_addr(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }

    /// Family of a CIDR.
    pub fn of_net(net: &IpNet) -> Self {
        match net {
            IpNet::V4(_) => Self::V4,
            IpNet::V6(_) => Self::V6,
        }
    }

    /// Address width in bits (32 or 128).
    pub fn bits(self) -> u8 {
        match self {
            Self::V4 => 32,
            Self::V6 => 128,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        })
    }
}

/// An address as `u128` (IPv4 in the low 32 bits).
pub(crate) fn addr_to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address of `value` in `family` (IPv4 takes the low 32 bits, which callers keep in range).
pub(crate) fn u128_to_addr(family: Family, value: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(
            u32::try_from(value).expect("IPv4 values stay below 2^32"),
        )),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// First and last address of a CIDR, as `u128`.
pub(crate) fn net_bounds(net: &IpNet) -> (u128, u128) {
    (addr_to_u128(net.network()), addr_to_u128(net.broadcast()))
}

/// Host mask of a prefix (`2^(bits - prefix_len) - 1`).
pub(crate) fn host_mask(family: Family, prefix_len: u8) -> u128 {
    let host_bits = u32::from(family.bits() - prefix_len);
    if host_bits == 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    }
}

/// The CIDR of `family` starting at `start` with `prefix_len`.
pub(crate) fn make_net(family: Family, start: u128, prefix_len: u8) -> IpNet {
    match u128_to_addr(family, start) {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::new(a, prefix_len).expect("prefix fits IPv4")),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, prefix_len).expect("prefix fits IPv6")),
    }
}

/// A single address as a host CIDR (/32 or /128).
pub(crate) fn host_net(addr: IpAddr) -> IpNet {
    IpNet::from(addr)
}
