//! clusterwire's datapath, owned across process lifetimes: loads the embedded eBPF object,
//! pins its maps and attachments under `/sys/fs/bpf/clusterwire/<instance>/`, adopts what an
//! earlier process left there, and exposes owned table handles that apply only differences.
//!
//! A gateway serving one peering (see `docs/architecture.md` for the design):
//!
//! ```no_run
//! use std::collections::BTreeMap;
//!
//! use clusterwire_dataplane::{Hook, Instance, InstanceSpec, NatTables, RemapKind};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Creates the instance, or adopts the pinned one (lock, layout and identity checks).
//! let spec = InstanceSpec {
//!     tunnel_mtu: 1340, // MSS clamped to 1300
//!     ..InstanceSpec::gateway("peer-7", 7, "liqo-tunnel") // L3 device: IP parsing
//! };
//! let mut instance = Instance::open(spec)?;
//! // TCX links (6.6+) or netlink filters, created or swapped atomically; pinned.
//! instance.attach(Hook::TunnelNat, "liqo-tunnel")?;
//! instance.attach(Hook::GeneveEncap, "eth0")?;
//! instance.attach(Hook::GeneveDecap, "eth0")?;
//! // The peer's pods (real 10.0.0.0/16) are reached here as 10.50.0.0/16.
//! let mut nat = NatTables::take(instance.datapath_mut())?;
//! let report = nat.sync_remaps(
//!     RemapKind::Dst,
//!     &BTreeMap::from([("10.50.0.0/16".parse()?, "10.0.0.0/16".parse()?)]),
//! )?;
//! println!("{report:?}; drops: {:?}", instance.datapath().drop_counts()?);
//! // The process may now exit or be killed: the programs keep running, and the next
//! // `Instance::open` of "peer-7" adopts them. `Instance::destroy` removes everything.
//! # Ok(())
//! # }
//! ```
//!
//! [`Datapath::load`] with [`LoadOptions::unpinned`] and the borrowed handles
//! ([`Datapath::remap`], [`Datapath::ipmap`]) serve `BPF_PROG_TEST_RUN` tests and benchmarks.
#![forbid(unsafe_code)]

pub mod attach;
pub mod config;
pub mod counters;
pub mod datapath;
pub mod error;
pub mod features;
mod filter;
pub mod geneve;
mod geneve_delta;
pub mod identity;
pub mod instance;
pub mod layout;
pub mod monitor;
pub mod nat_tables;
pub mod object;
pub mod probe;
mod programs;
mod qdisc;
pub mod tables;

pub use attach::{AttachMode, AttachOutcome, Attachment, DeviceKind, Hook};
pub use datapath::{Datapath, LoadOptions, PIN_ROOT};
pub use error::{ConfigError, InstanceError, LoadError, MapError};
pub use identity::ProgramIdentity;
pub use instance::{Instance, InstanceSpec};
pub use layout::Role;
pub use monitor::DropMonitor;
pub use nat_tables::{NatTables, SyncReport};
pub use tables::{IpMapKind, IpMapTable, RemapEntry, RemapKind, RemapTable};
