//! The host-only reconcile core of the clusterwire gateway and node agent: everything that is
//! pure logic, with no netlink, no BPF and no Kubernetes client.
//!
//! - [`health`]: the tunnel health check (wire format compatible with the reference, and the
//!   state machine behind `Connection.status`).
#![forbid(unsafe_code)]

pub mod health;
