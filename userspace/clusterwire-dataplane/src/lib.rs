//! Loads clusterwire's eBPF object (embedded at build time), pins its maps under
//! `/sys/fs/bpf/clusterwire/<instance>/` and exposes typed handles to programs and maps.
//!
//! A gateway serving one peering:
//!
//! ```no_run
//! use clusterwire_common::{config::{DatapathConfig, FLAG_L3_DEVICE}, nat::NAT_TO_TUNNEL_PROGRAM};
//! use clusterwire_dataplane::{Datapath, IpMapKind, LoadOptions, RemapKind};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = DatapathConfig {
//!     tunnel_mtu: 1340,          // MSS clamped to 1300
//!     peer_id: 7,                // key of the remap tables and per-peer counters
//!     flags: FLAG_L3_DEVICE,     // WireGuard: packets start at the IP header
//!     ..DatapathConfig::zeroed()
//! };
//! let mut dp = Datapath::load(&config, &LoadOptions::pinned("peer-7"))?;
//! // The peer's pods (real 10.0.0.0/16) are reached here as 10.50.0.0/16.
//! dp.remap(RemapKind::Dst)?.insert(7, "10.50.0.0/16".parse()?, "10.0.0.0/16".parse()?)?;
//! dp.remap(RemapKind::Src)?.insert(7, "10.0.0.0/16".parse()?, "10.50.0.0/16".parse()?)?;
//! // Announced but not remapped: identity entries (anything else from the peer is spoofed).
//! dp.remap(RemapKind::Src)?.insert(7, "169.254.18.2/32".parse()?, "169.254.18.2/32".parse()?)?;
//! dp.ipmap(IpMapKind::Exit)?.insert("192.168.1.10".parse()?, "10.70.0.5".parse()?)?;
//! dp.ipmap(IpMapKind::Entry)?.insert("10.70.0.5".parse()?, "192.168.1.10".parse()?)?;
//! let _egress = dp.program(NAT_TO_TUNNEL_PROGRAM)?; // attach: TC egress of the tunnel link
//! println!("{:?}", dp.drop_counts()?);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod attach;
pub mod config;
pub mod counters;
pub mod datapath;
pub mod error;
pub mod features;
mod filter;
pub mod geneve;
pub mod instance;
pub mod layout;
pub mod nat_tables;
pub mod object;
pub mod probe;
mod qdisc;
pub mod tables;

pub use attach::{AttachMode, AttachOutcome, Attachment, DeviceKind, Hook};
pub use datapath::{Datapath, LoadOptions, PIN_ROOT};
pub use error::{ConfigError, InstanceError, LoadError, MapError};
pub use instance::{Instance, InstanceSpec};
pub use layout::Role;
pub use nat_tables::{NatTables, SyncReport};
pub use tables::{IpMapKind, IpMapTable, RemapEntry, RemapKind, RemapTable};
