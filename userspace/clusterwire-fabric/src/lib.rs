//! The host-only reconcile core of the clusterwire gateway and node agent: everything that is
//! pure logic, with no netlink, no BPF and no Kubernetes client.
//!
//! - [`health`]: the tunnel health check (wire format compatible with the reference, and the
//!   state machine behind `Connection.status`);
//! - [`snapshot`]: the typed resources one daemon reads, keyed by namespace/name;
//! - [`manifests`]: the `--manifests DIR` source (load, validate, keep the last good state,
//!   poll for changes, write statuses);
//! - [`desired`]: pure functions from a snapshot to the gateway's and the agent's desired state,
//!   and the diff helper that turns it into changes;
//! - [`connection`]: the Connection `gw-<name>` and its status from the health tracker.
#![forbid(unsafe_code)]

pub mod connection;
pub mod desired;
pub mod health;
pub mod manifests;
pub mod snapshot;
