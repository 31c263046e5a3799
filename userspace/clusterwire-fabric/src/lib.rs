//! The host-only reconcile core of the clusterwire gateway and node agent: everything that is
//! pure logic, with no netlink, no BPF and (without the `kubernetes` feature) no Kubernetes
//! client.
//!
//! - [`health`]: the tunnel health check (wire format compatible with the reference, and the
//!   state machine behind `Connection.status`);
//! - [`snapshot`]: the typed resources one daemon reads, keyed by namespace/name;
//! - [`manifests`]: the `--manifests DIR` source (load, validate, keep the last good state,
//!   poll for changes, write statuses);
//! - [`desired`]: pure functions from a snapshot to the gateway's and the agent's desired state,
//!   and the diff helper that turns it into changes;
//! - [`connection`]: the Connection `gw-<name>` and its status from the health tracker;
//! - `kubernetes` (feature `kubernetes`): the same snapshot from API server watches, and the
//!   Connection written with server-side apply.
//!
//! A gateway daemon in file mode, in outline (the agent is the same with [`desired::agent`]):
//!
//! ```no_run
//! use clusterwire_api::validation::ManifestValidator;
//! use clusterwire_fabric::{
//!     desired::{self, GatewayId, Role},
//!     manifests::Source,
//!     snapshot::Key,
//! };
//!
//! let mut source = Source::new("/etc/clusterwire/manifests", ManifestValidator::for_api()?);
//! let id = GatewayId { role: Role::Client, key: Key::new("liqo-tenant-cl02", "cl02") };
//! let mut applied_routes = Default::default();
//! // Every tick of a timer:
//! if let Some(loaded) = source.poll()? {
//!     for problem in &loaded.problems {
//!         eprintln!("skipped: {problem}"); // file, object, field
//!     }
//!     match desired::gateway(&loaded.snapshot, &id) {
//!         Ok(want) => {
//!             let changes = desired::diff(&applied_routes, &want.node_routes);
//!             // ... apply changes.remove, changes.add, changes.update to the route map ...
//!             applied_routes = want.node_routes;
//!         }
//!         Err(e) => eprintln!("keeping the applied state: {e}"),
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod connection;
pub mod desired;
pub mod health;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
pub mod manifests;
pub mod node;
pub mod snapshot;
