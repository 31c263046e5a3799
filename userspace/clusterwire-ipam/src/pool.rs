//! Single-address allocation inside one CIDR (external CIDR for IP mappings, internal CIDR for
//! node and gateway addresses). The first address of the CIDR is never handed out: in the
//! external CIDR it is the "unknown source" address, in the internal CIDR the network address.

use std::{collections::BTreeMap, net::IpAddr};

use ipnet::IpNet;

use crate::{
    Family, IpamError,
    addr::{addr_to_u128, host_net, net_bounds, u128_to_addr},
    interval::IntervalSet,
};

/// Addresses of one CIDR, each held by a key `K`, with the value `V` recorded beside it.
#[derive(Debug, Clone)]
pub(crate) struct AddressPool<K, V> {
    cidr: IpNet,
    family: Family,
    start: u128,
    end: u128,
    used: IntervalSet,
    owners: BTreeMap<K, (u128, V)>,
}

impl<K: Ord + Clone, V: Copy + PartialEq> AddressPool<K, V> {
    /// A pool over `cidr`; fails if the CIDR has no address besides its first.
    pub(crate) fn new(cidr: IpNet) -> Result<Self, IpamError> {
        let cidr = cidr.trunc();
        let (start, end) = net_bounds(&cidr);
        if start == end {
            return Err(IpamError::InvalidCidr {
                cidr,
                reason: "needs at least two addresses (the first one is reserved)",
            });
        }
        Ok(Self {
            cidr,
            family: Family::of_net(&cidr),
            start,
            end,
            used: IntervalSet::default(),
            owners: BTreeMap::new(),
        })
    }

    pub(crate) fn cidr(&self) -> IpNet {
        self.cidr
    }

    /// The lowest free address for `key`, or the one it already holds. `conflict` builds the
    /// error when `key` holds an address recorded with another value.
    pub(crate) fn allocate(
        &mut self,
        key: &K,
        value: V,
        conflict: impl FnOnce(V) -> IpamError,
    ) -> Result<IpAddr, IpamError> {
        if let Some(&(addr, existing)) = self.owners.get(key) {
            if existing != value {
                return Err(conflict(existing));
            }
            return Ok(u128_to_addr(self.family, addr));
        }
        let addr = self
            .used
            .first_free_aligned(self.start + 1, self.end, 0)
            .ok_or(IpamError::AddressesExhausted { cidr: self.cidr })?;
        self.used.insert(addr, addr);
        self.owners.insert(key.clone(), (addr, value));
        Ok(u128_to_addr(self.family, addr))
    }

    /// Re-reserves a recorded address for `key` (idempotent for the same key and address).
    pub(crate) fn restore(
        &mut self,
        what: &'static str,
        key: &K,
        addr: IpAddr,
        value: V,
    ) -> Result<(), IpamError> {
        let conflict = |reason| IpamError::RestoreConflict {
            what,
            address: host_net(addr),
            reason,
        };
        if !self.cidr.contains(&addr) {
            return Err(conflict("not inside the range it is allocated from"));
        }
        let raw = addr_to_u128(addr);
        if raw == self.start {
            return Err(conflict("the first address of the range is reserved"));
        }
        if let Some(&(held, existing)) = self.owners.get(key) {
            if held == raw && existing == value {
                return Ok(());
            }
            return Err(conflict("the key already holds another address"));
        }
        if self.used.overlaps(raw, raw) {
            return Err(conflict("the address is held by another key"));
        }
        self.used.insert(raw, raw);
        self.owners.insert(key.clone(), (raw, value));
        Ok(())
    }

    /// Frees the address of `key`, returning it.
    pub(crate) fn release(&mut self, key: &K) -> Option<IpAddr> {
        let (addr, _) = self.owners.remove(key)?;
        let freed = self.used.remove(addr, addr);
        debug_assert!(freed, "an owned address is always marked used");
        Some(u128_to_addr(self.family, addr))
    }

    /// The address `key` holds.
    pub(crate) fn get(&self, key: &K) -> Option<(IpAddr, V)> {
        self.owners
            .get(key)
            .map(|&(addr, value)| (u128_to_addr(self.family, addr), value))
    }

    /// Every (key, address, value), by key.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, IpAddr, V)> {
        self.owners
            .iter()
            .map(|(k, &(addr, value))| (k, u128_to_addr(self.family, addr), value))
    }
}

/// The IPv4 and IPv6 pools of one kind (either may be absent).
pub(crate) type PoolPair<K, V> = (Option<AddressPool<K, V>>, Option<AddressPool<K, V>>);

/// One pool per family, chosen from a list of CIDRs (the first CIDR of each family wins).
pub(crate) fn pools_by_family<K: Ord + Clone, V: Copy + PartialEq>(
    cidrs: &[IpNet],
) -> Result<PoolPair<K, V>, IpamError> {
    let mut v4 = None;
    let mut v6 = None;
    for cidr in cidrs {
        let slot = match Family::of_net(cidr) {
            Family::V4 => &mut v4,
            Family::V6 => &mut v6,
        };
        if slot.is_none() {
            *slot = Some(AddressPool::new(*cidr)?);
        }
    }
    Ok((v4, v6))
}

#[cfg(test)]
mod tests {
    use super::AddressPool;
    use crate::IpamError;

    #[test]
    fn never_hands_out_the_first_address() {
        let mut pool: AddressPool<u32, ()> =
            AddressPool::new("10.70.0.0/30".parse().unwrap()).unwrap();
        let conflict = |()| unreachable!("values are equal");
        let got: Vec<String> = (0..3)
            .map(|k| pool.allocate(&k, (), conflict).unwrap().to_string())
            .collect();
        assert_eq!(got, ["10.70.0.1", "10.70.0.2", "10.70.0.3"]);
        assert_eq!(
            pool.allocate(&9, (), conflict),
            Err(IpamError::AddressesExhausted {
                cidr: "10.70.0.0/30".parse().unwrap()
            })
        );
        assert_eq!(pool.release(&1).unwrap().to_string(), "10.70.0.2");
        assert_eq!(
            pool.allocate(&9, (), conflict).unwrap().to_string(),
            "10.70.0.2",
            "a released address must be reused"
        );
        assert!(
            pool.restore("IP", &7, "10.70.0.0".parse().unwrap(), ())
                .is_err(),
            "restoring the first address must fail"
        );
    }
}
