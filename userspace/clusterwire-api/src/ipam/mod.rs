//! `ipam.liqo.io/v1alpha1` resources.

pub mod ip;
pub mod network;

pub use ip::IP;
pub use network::Network;
