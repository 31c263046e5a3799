//! Reading the datapath's counters (sums over CPUs).
use aya::maps::{MapData, PerCpuArray};
use clusterwire_common::{
    drop::{DROPS_MAP, DropReason},
    stats::{EVENTS_MAP, Event, PEER_STATS_MAP, PEER_STATS_MAX, PeerStats},
};

use crate::{datapath::Datapath, error::MapError};

impl Datapath {
    fn per_cpu<V: aya::Pod>(
        &self,
        name: &'static str,
    ) -> Result<PerCpuArray<&MapData, V>, MapError> {
        let map = self.ebpf.map(name).ok_or(MapError::Missing(name))?;
        PerCpuArray::try_from(map).map_err(|source| MapError::Map { name, source })
    }

    fn sum_slot(&self, name: &'static str, index: u32) -> Result<u64, MapError> {
        let values = self
            .per_cpu::<u64>(name)?
            .get(&index, 0)
            .map_err(|source| MapError::Map { name, source })?;
        Ok(values.iter().sum())
    }

    /// Drops per reason, every reason listed (zeros included), in slot order.
    pub fn drop_counts(&self) -> Result<Vec<(DropReason, u64)>, MapError> {
        DropReason::ALL
            .iter()
            .map(|r| Ok((*r, self.sum_slot(DROPS_MAP, *r as u32)?)))
            .collect()
    }

    /// Drops for one reason.
    pub fn drop_count(&self, reason: DropReason) -> Result<u64, MapError> {
        self.sum_slot(DROPS_MAP, reason as u32)
    }

    /// Every event counter, in slot order.
    pub fn events(&self) -> Result<Vec<(Event, u64)>, MapError> {
        Event::ALL
            .iter()
            .map(|e| Ok((*e, self.sum_slot(EVENTS_MAP, *e as u32)?)))
            .collect()
    }

    /// One event counter.
    pub fn event_count(&self, event: Event) -> Result<u64, MapError> {
        self.sum_slot(EVENTS_MAP, event as u32)
    }

    /// Packet and byte counters of `peer_id`, summed over CPUs.
    pub fn peer_stats(&self, peer_id: u32) -> Result<PeerStats, MapError> {
        if peer_id >= PEER_STATS_MAX {
            return Err(MapError::PeerId(peer_id));
        }
        let values = self
            .per_cpu::<PeerStats>(PEER_STATS_MAP)?
            .get(&peer_id, 0)
            .map_err(|source| MapError::Map {
                name: PEER_STATS_MAP,
                source,
            })?;
        Ok(values
            .iter()
            .fold(PeerStats::default(), |acc, v| PeerStats {
                rx_packets: acc.rx_packets + v.rx_packets,
                rx_bytes: acc.rx_bytes + v.rx_bytes,
                tx_packets: acc.tx_packets + v.tx_packets,
                tx_bytes: acc.tx_bytes + v.tx_bytes,
            }))
    }
}
