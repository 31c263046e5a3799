//! The drop monitor of an instance: the switch `CW_MONITOR` and the ring buffer
//! `CW_MONITOR_EVENTS` (both pinned with the instance, for both roles).
//!
//! While the switch is on, every program of the instance writes a [`DropEvent`] for each packet
//! it drops (reason, program, device, addresses, ports, protocol); while it is off (the default,
//! and what a freshly created instance has) a drop costs one extra array read and nothing is
//! written. The switch lives in bpffs, not in the reader: a reader that dies without switching
//! it off (SIGKILL) leaves it on, and the programs keep writing events until the ring is full
//! (then they stop, and drops are still counted in `CW_DROPS`); the next reader drains what is
//! left and switches it off when it exits. [`DropMonitor::set`]`(false)` switches it off.
//!
//! One reader at a time: the ring buffer has one consumer position, shared by every process
//! that maps it, so two readers would split the events between them.
use std::path::Path;

use aya::maps::{Array, Map, MapData, RingBuf};
use clusterwire_common::drop::{DropEvent, MONITOR_DROPS, MONITOR_EVENTS_MAP, MONITOR_MAP};

use crate::{datapath::Datapath, error::MapError};

/// Reads and switches the drop monitor of one instance (pinned) or of a loaded [`Datapath`].
pub struct DropMonitor {
    switch: Array<MapData, u32>,
    events: RingBuf<MapData>,
}

impl std::fmt::Debug for DropMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropMonitor").finish_non_exhaustive()
    }
}

fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> MapError {
    move |source| MapError::Map { name, source }
}

impl DropMonitor {
    /// Opens the monitor maps pinned in `dir` (an instance directory,
    /// `/sys/fs/bpf/clusterwire/<instance>`). Does not take the instance lock: the monitor
    /// only reads events and flips the switch, which the owner never writes.
    pub fn open_pinned(dir: &Path) -> Result<Self, MapError> {
        let open = |name: &'static str| {
            let data = MapData::from_pin(dir.join(name)).map_err(map_err(name))?;
            Map::from_map_data(data).map_err(map_err(name))
        };
        Self::from_maps(open(MONITOR_MAP)?, open(MONITOR_EVENTS_MAP)?)
    }

    /// Takes the monitor maps out of a loaded datapath (tests and benchmarks on unpinned
    /// objects; the datapath's other maps and programs stay usable).
    pub fn take(datapath: &mut Datapath) -> Result<Self, MapError> {
        let switch = datapath
            .ebpf
            .take_map(MONITOR_MAP)
            .ok_or(MapError::Missing(MONITOR_MAP))?;
        let events = datapath
            .ebpf
            .take_map(MONITOR_EVENTS_MAP)
            .ok_or(MapError::Missing(MONITOR_EVENTS_MAP))?;
        Self::from_maps(switch, events)
    }

    fn from_maps(switch: Map, events: Map) -> Result<Self, MapError> {
        Ok(Self {
            switch: Array::try_from(switch).map_err(map_err(MONITOR_MAP))?,
            events: RingBuf::try_from(events).map_err(map_err(MONITOR_EVENTS_MAP))?,
        })
    }

    /// Switches drop events on or off.
    pub fn set(&mut self, on: bool) -> Result<(), MapError> {
        let bits = if on { MONITOR_DROPS } else { 0 };
        self.switch.set(0, bits, 0).map_err(map_err(MONITOR_MAP))
    }

    /// Whether drop events are on.
    pub fn is_on(&self) -> Result<bool, MapError> {
        let bits = self.switch.get(&0, 0).map_err(map_err(MONITOR_MAP))?;
        Ok(bits & MONITOR_DROPS != 0)
    }

    /// The next event waiting in the ring, if any (never blocks). Records of another size
    /// (another build's programs) are skipped.
    pub fn next_event(&mut self) -> Option<DropEvent> {
        loop {
            let item = self.events.next()?;
            if let Some(event) = parse(&item) {
                return Some(event);
            }
        }
    }

    /// Discards every waiting event; returns how many there were.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while self.events.next().is_some() {
            n += 1;
        }
        n
    }
}

/// A [`DropEvent`] from its bytes as the programs wrote them.
fn parse(bytes: &[u8]) -> Option<DropEvent> {
    let bytes: &[u8; size_of::<DropEvent>()] = bytes.try_into().ok()?;
    let u16_at = |o: usize| u16::from_ne_bytes([bytes[o], bytes[o + 1]]);
    let u32_at =
        |o: usize| u32::from_ne_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let addr_at = |o: usize| [bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]];
    Some(DropEvent {
        ktime_ns: u64::from(u32_at(0)) | (u64::from(u32_at(4)) << 32),
        reason: u32_at(8),
        ifindex: u32_at(12),
        len: u32_at(16),
        src_be: addr_at(20),
        dst_be: addr_at(24),
        sport: u16_at(28),
        dport: u16_at(30),
        proto: bytes[32],
        program: bytes[33],
        flags: bytes[34],
        _pad0: bytes[35],
        _pad1: u32_at(36),
    })
}

#[cfg(test)]
mod tests {
    use clusterwire_common::drop::{DROP_EVENT_IPV4, DropEvent};

    #[test]
    fn an_event_is_read_field_by_field_in_repr_c_order() {
        let mut bytes = [0u8; 40];
        bytes[0..8].copy_from_slice(&0x0102_0304_0506_0708_u64.to_ne_bytes());
        bytes[8..12].copy_from_slice(&7u32.to_ne_bytes());
        bytes[12..16].copy_from_slice(&3u32.to_ne_bytes());
        bytes[16..20].copy_from_slice(&60u32.to_ne_bytes());
        bytes[20..24].copy_from_slice(&[10, 0, 0, 1]);
        bytes[24..28].copy_from_slice(&[10, 0, 0, 2]);
        bytes[28..30].copy_from_slice(&1234u16.to_ne_bytes());
        bytes[30..32].copy_from_slice(&80u16.to_ne_bytes());
        bytes[32] = 6;
        bytes[33] = 1;
        bytes[34] = DROP_EVENT_IPV4;
        let event = super::parse(&bytes).expect("40 bytes");
        assert_eq!(
            event,
            DropEvent {
                ktime_ns: 0x0102_0304_0506_0708,
                reason: 7,
                ifindex: 3,
                len: 60,
                src_be: [10, 0, 0, 1],
                dst_be: [10, 0, 0, 2],
                sport: 1234,
                dport: 80,
                proto: 6,
                program: 1,
                flags: DROP_EVENT_IPV4,
                _pad0: 0,
                _pad1: 0,
            }
        );
        assert_eq!(super::parse(&bytes[..39]), None);
    }
}
