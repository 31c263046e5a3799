//! `networking.liqo.io/v1beta1` resources.

pub mod configuration;
pub mod connection;
pub mod gateway;
pub mod gatewayclient;
pub mod gatewayserver;
pub mod internalfabric;
pub mod internalnode;
pub mod publickey;
pub mod templates;

pub use configuration::Configuration;
pub use connection::Connection;
pub use gatewayclient::GatewayClient;
pub use gatewayserver::GatewayServer;
pub use internalfabric::InternalFabric;
pub use internalnode::InternalNode;
pub use publickey::PublicKey;
pub use templates::{WgGatewayClientTemplate, WgGatewayServerTemplate};
