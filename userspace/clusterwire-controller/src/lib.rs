//! clusterwire's Kubernetes controller (one active replica per cluster).
//!
//! - [`configuration`]: remote CIDRs of each Configuration remapped by the IPAM
//!   (`clusterwire-ipam`) into its status, condition `NetworkCIDRsConfigured`, released through
//!   a finalizer; the IPAM is rebuilt from the statuses on start.
//! - [`gateway`]: for each `GatewayServer` / `GatewayClient`, a WireGuard key pair generated
//!   once into Secret `gw-<name>`, the referenced template rendered ([`template`]) into the
//!   gateway's Deployment, Service and `ServiceAccount` (owned by the gateway), the RBAC
//!   bindings of that account ([`binding`]), the endpoint, secret reference and active pod
//!   ([`activepod`]) in its status, and its `InternalFabric` ([`internalfabric`]).
//! - [`internalnode`]: one `InternalNode` per Node, its internal-CIDR address from the IPAM.
//! - [`ip`]: each `IP` resource's address in the external CIDR.
//!
//! Reconcilers are plain async functions over a shared [`Context`]; `main.rs` wires them into
//! kube-runtime controllers. Every write is skipped when the object already holds what would
//! be written, so a re-sync of an unchanged state writes nothing.
#![forbid(unsafe_code)]

pub mod activepod;
pub mod apply;
pub mod binding;
pub mod config;
pub mod configuration;
pub mod context;
pub mod endpoint;
mod error;
pub mod gateway;
pub mod http;
pub mod internalfabric;
pub mod internalnode;
pub mod ip;
pub mod keys;
/// Leader election over a Lease: the crate shared with the gateways.
pub use clusterwire_election::lease as leader;
pub mod objects;
pub mod rbac;
pub mod status;
pub mod template;

pub use config::ControllerConfig;
pub use context::{Context, Events, Published};
pub use error::Error;
