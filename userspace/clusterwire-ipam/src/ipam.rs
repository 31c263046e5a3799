//! The IPAM itself: remote-cluster remaps, single-IP mappings and internal addresses.

use std::{collections::BTreeMap, net::IpAddr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::{
    ClusterMapping, Family, IpamConfig, IpamError, Remap, RemoteCidrs,
    addr::{host_mask, make_net, net_bounds},
    interval::IntervalSet,
    pool::{AddressPool, PoolPair, pools_by_family},
};

/// Who holds an internal-CIDR address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum InternalOwner {
    /// A node (by node name).
    Node(String),
    /// A gateway (by namespace/name).
    Gateway(String),
}

fn pick<T>(pair: &(Option<T>, Option<T>), family: Family) -> Option<&T> {
    match family {
        Family::V4 => pair.0.as_ref(),
        Family::V6 => pair.1.as_ref(),
    }
}

fn pick_mut<T>(pair: &mut (Option<T>, Option<T>), family: Family) -> Option<&mut T> {
    match family {
        Family::V4 => pair.0.as_mut(),
        Family::V6 => pair.1.as_mut(),
    }
}

/// The remapping IPAM of one cluster.
///
/// Every answer depends only on the configuration and the set of live allocations, never on the
/// history that led to it: remaps are the lowest free aligned block of the pools (first fit, pools
/// in configured order), addresses the lowest free address. So the same calls in the same order
/// give the same answers, and an IPAM rebuilt by restoring the recorded allocations (in any
/// order) answers every later call exactly like the one that made them.
#[derive(Debug, Clone)]
pub struct Ipam {
    config: IpamConfig,
    /// Per family: local ranges plus every live remap target and identity claim.
    occupied: (IntervalSet, IntervalSet),
    clusters: BTreeMap<String, ClusterMapping>,
    /// Single-IP mappings from the external CIDR: key -> (remapped address, local IP).
    external: PoolPair<String, IpAddr>,
    internal: PoolPair<InternalOwner, ()>,
}

impl Ipam {
    /// Builds the IPAM, validating the configuration.
    pub fn new(config: IpamConfig) -> Result<Self, IpamError> {
        let mut occupied = (IntervalSet::default(), IntervalSet::default());
        for range in config.local_ranges() {
            let (start, end) = net_bounds(&range.trunc());
            space_mut(&mut occupied, Family::of_net(range)).insert(start, end);
        }
        let pools = config
            .pools_v4
            .iter()
            .map(|p| IpNet::V4(*p))
            .chain(config.pools_v6.iter().map(|p| IpNet::V6(*p)));
        for pool in pools {
            if pool.trunc() != pool {
                return Err(IpamError::InvalidCidr {
                    cidr: pool,
                    reason: "remap pool has host bits set",
                });
            }
        }
        Ok(Self {
            external: pools_by_family(&config.external_cidrs)?,
            internal: pools_by_family(&config.internal_cidrs)?,
            config,
            occupied,
            clusters: BTreeMap::new(),
        })
    }

    /// The configuration the IPAM was built with.
    pub fn config(&self) -> &IpamConfig {
        &self.config
    }

    /// Decides and allocates how the local cluster sees `cluster`'s CIDRs. A remote CIDR is used
    /// unchanged when it overlaps no local range, no live allocation and no earlier CIDR of this
    /// request; otherwise it is remapped to the lowest free block of the same size in the pools.
    /// Asking again for the same CIDRs returns the existing mapping. On error nothing changes.
    pub fn map_cluster(
        &mut self,
        cluster: &str,
        remote: &RemoteCidrs,
    ) -> Result<ClusterMapping, IpamError> {
        if let Some(existing) = self.clusters.get(cluster) {
            if existing.sources() == *remote {
                return Ok(existing.clone());
            }
            return Err(IpamError::AlreadyMapped {
                cluster: cluster.to_owned(),
            });
        }
        let sources: Vec<IpNet> = remote.pod.iter().chain(&remote.external).copied().collect();
        for source in &sources {
            validate_source(source)?;
        }
        let mut targets: Vec<Option<IpNet>> = vec![None; sources.len()];
        let mut claimed: Vec<IpNet> = Vec::with_capacity(sources.len());
        // Identity first: a CIDR free of conflicts keeps its real addresses.
        for (source, target) in sources.iter().zip(&mut targets) {
            let (start, end) = net_bounds(source);
            let space = space_mut(&mut self.occupied, Family::of_net(source));
            if !space.overlaps(start, end) {
                space.insert(start, end);
                claimed.push(*source);
                *target = Some(*source);
            }
        }
        for (source, target) in sources.iter().zip(&mut targets) {
            if target.is_some() {
                continue;
            }
            match self.find_block(source) {
                Ok(block) => {
                    let (start, end) = net_bounds(&block);
                    space_mut(&mut self.occupied, Family::of_net(&block)).insert(start, end);
                    claimed.push(block);
                    *target = Some(block);
                }
                Err(err) => {
                    self.unclaim(&claimed);
                    return Err(err);
                }
            }
        }
        let remaps: Vec<Remap> = sources
            .iter()
            .zip(targets)
            .map(|(source, target)| {
                Remap::try_new(*source, target.expect("every source got a target"))
                    .expect("targets have the size of their source")
            })
            .collect();
        let (pod, external) = remaps.split_at(remote.pod.len());
        let mapping = ClusterMapping {
            pod: pod.to_vec(),
            external: external.to_vec(),
        };
        self.clusters.insert(cluster.to_owned(), mapping.clone());
        Ok(mapping)
    }

    /// Re-reserves a mapping recorded earlier (e.g. in a Configuration's status) after a
    /// restart. Fails, changing nothing, when a target overlaps a local range or another live
    /// allocation. Restoring the same mapping twice is a no-op.
    pub fn restore_cluster(
        &mut self,
        cluster: &str,
        mapping: &ClusterMapping,
    ) -> Result<(), IpamError> {
        if let Some(existing) = self.clusters.get(cluster) {
            if existing == mapping {
                return Ok(());
            }
            return Err(IpamError::AlreadyMapped {
                cluster: cluster.to_owned(),
            });
        }
        let mut claimed = Vec::new();
        for remap in mapping.iter() {
            let target = remap.target();
            let (start, end) = net_bounds(&target);
            let space = space_mut(&mut self.occupied, Family::of_net(&target));
            if space.overlaps(start, end) {
                self.unclaim(&claimed);
                return Err(IpamError::RestoreConflict {
                    what: if remap.is_identity() {
                        "identity mapping"
                    } else {
                        "remap"
                    },
                    address: target,
                    reason: "it overlaps a local range or another live allocation",
                });
            }
            space.insert(start, end);
            claimed.push(target);
        }
        self.clusters.insert(cluster.to_owned(), mapping.clone());
        Ok(())
    }

    /// Releases everything held for `cluster`, returning its mapping.
    pub fn release_cluster(&mut self, cluster: &str) -> Option<ClusterMapping> {
        let mapping = self.clusters.remove(cluster)?;
        let targets: Vec<IpNet> = mapping.iter().map(Remap::target).collect();
        self.unclaim(&targets);
        Some(mapping)
    }

    /// The live mapping of `cluster`.
    pub fn cluster(&self, cluster: &str) -> Option<&ClusterMapping> {
        self.clusters.get(cluster)
    }

    /// Every live cluster mapping, by cluster id.
    pub fn clusters(&self) -> impl Iterator<Item = (&str, &ClusterMapping)> {
        self.clusters.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Maps the local IP `local` to an address of the external CIDR of its family, for the IP
    /// resource `key` (e.g. `namespace/name`). Idempotent for the same key and local IP. The
    /// first address of the external CIDR is never handed out.
    pub fn allocate_ip(&mut self, key: &str, local: IpAddr) -> Result<IpAddr, IpamError> {
        let family = Family::of_addr(local);
        let other = match family {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        };
        if let Some((_, existing)) =
            pick(&self.external, other).and_then(|pool| pool.get(&key.to_owned()))
        {
            return Err(key_conflict(key, existing, local));
        }
        let pool = pick_mut(&mut self.external, family).ok_or(IpamError::NoRange {
            what: "external",
            family,
        })?;
        pool.allocate(&key.to_owned(), local, |existing| {
            key_conflict(key, existing, local)
        })
    }

    /// Re-reserves a recorded IP mapping (`status.ip` of an IP resource).
    pub fn restore_ip(
        &mut self,
        key: &str,
        local: IpAddr,
        remapped: IpAddr,
    ) -> Result<(), IpamError> {
        let family = Family::of_addr(remapped);
        let pool = pick_mut(&mut self.external, family).ok_or(IpamError::NoRange {
            what: "external",
            family,
        })?;
        pool.restore("IP", &key.to_owned(), remapped, local)
    }

    /// Frees the address of the IP resource `key`.
    pub fn release_ip(&mut self, key: &str) -> Option<IpAddr> {
        let key = key.to_owned();
        [&mut self.external.0, &mut self.external.1]
            .into_iter()
            .flatten()
            .find_map(|pool| pool.release(&key))
    }

    /// The (remapped address, local IP) of the IP resource `key`.
    pub fn ip(&self, key: &str) -> Option<(IpAddr, IpAddr)> {
        let key = key.to_owned();
        [&self.external.0, &self.external.1]
            .into_iter()
            .flatten()
            .find_map(|pool| pool.get(&key))
    }

    /// Every single-IP mapping: (key, remapped address, local IP).
    pub fn ips(&self) -> impl Iterator<Item = (&str, IpAddr, IpAddr)> {
        [&self.external.0, &self.external.1]
            .into_iter()
            .flatten()
            .flat_map(AddressPool::iter)
            .map(|(k, addr, local)| (k.as_str(), addr, local))
    }

    /// The "unknown source" address: the first address of the external CIDR of `family`.
    pub fn unknown_source_address(&self, family: Family) -> Option<IpAddr> {
        pick(&self.external, family).map(|pool| pool.cidr().network())
    }

    /// An internal-CIDR address of `family` for a node or gateway (idempotent per owner).
    pub fn allocate_internal(
        &mut self,
        owner: &InternalOwner,
        family: Family,
    ) -> Result<IpAddr, IpamError> {
        let pool = pick_mut(&mut self.internal, family).ok_or(IpamError::NoRange {
            what: "internal",
            family,
        })?;
        pool.allocate(owner, (), |()| unreachable!("internal values are all ()"))
    }

    /// Re-reserves a recorded internal address (e.g. an `InternalNode`'s `spec.interface.node.ip`).
    pub fn restore_internal(
        &mut self,
        owner: &InternalOwner,
        addr: IpAddr,
    ) -> Result<(), IpamError> {
        let family = Family::of_addr(addr);
        let pool = pick_mut(&mut self.internal, family).ok_or(IpamError::NoRange {
            what: "internal",
            family,
        })?;
        pool.restore("internal address", owner, addr, ())
    }

    /// Frees every internal address of `owner` (one per family at most).
    pub fn release_internal(&mut self, owner: &InternalOwner) -> Vec<IpAddr> {
        [&mut self.internal.0, &mut self.internal.1]
            .into_iter()
            .flatten()
            .filter_map(|pool| pool.release(owner))
            .collect()
    }

    /// The internal address of `owner` in `family`.
    pub fn internal(&self, owner: &InternalOwner, family: Family) -> Option<IpAddr> {
        pick(&self.internal, family)
            .and_then(|pool| pool.get(owner))
            .map(|(addr, ())| addr)
    }

    /// The lowest free block of `source`'s size in the pools of its family.
    fn find_block(&self, source: &IpNet) -> Result<IpNet, IpamError> {
        let family = Family::of_net(source);
        let prefix_len = source.prefix_len();
        let pools: Vec<IpNet> = match family {
            Family::V4 => self.config.pools_v4.iter().map(|p| IpNet::V4(*p)).collect(),
            Family::V6 => self.config.pools_v6.iter().map(|p| IpNet::V6(*p)).collect(),
        };
        if pools.is_empty() {
            return Err(IpamError::NoPool {
                source_cidr: *source,
                family,
            });
        }
        let mask = host_mask(family, prefix_len);
        let space = space(&self.occupied, family);
        pools
            .iter()
            .filter(|pool| pool.prefix_len() <= prefix_len)
            .find_map(|pool| {
                let (lo, hi) = net_bounds(pool);
                space.first_free_aligned(lo, hi, mask)
            })
            .map(|start| make_net(family, start, prefix_len))
            .ok_or(IpamError::PoolsExhausted {
                source_cidr: *source,
                prefix_len,
                family,
            })
    }

    fn unclaim(&mut self, nets: &[IpNet]) {
        for net in nets {
            let (start, end) = net_bounds(net);
            let freed = space_mut(&mut self.occupied, Family::of_net(net)).remove(start, end);
            debug_assert!(freed, "{net} was claimed, so it is occupied");
        }
    }
}

fn space(occupied: &(IntervalSet, IntervalSet), family: Family) -> &IntervalSet {
    match family {
        Family::V4 => &occupied.0,
        Family::V6 => &occupied.1,
    }
}

fn space_mut(occupied: &mut (IntervalSet, IntervalSet), family: Family) -> &mut IntervalSet {
    match family {
        Family::V4 => &mut occupied.0,
        Family::V6 => &mut occupied.1,
    }
}

fn validate_source(source: &IpNet) -> Result<(), IpamError> {
    if source.trunc() != *source {
        return Err(IpamError::InvalidCidr {
            cidr: *source,
            reason: "host bits are set",
        });
    }
    if source.prefix_len() == 0 {
        return Err(IpamError::InvalidCidr {
            cidr: *source,
            reason: "a /0 covers the whole address family",
        });
    }
    Ok(())
}

fn key_conflict(key: &str, existing: IpAddr, requested: IpAddr) -> IpamError {
    IpamError::KeyConflict {
        key: key.to_owned(),
        existing,
        requested,
    }
}
