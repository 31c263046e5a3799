//! Connection (`conn`): tunnel health, written by the gateway.

use k8s_openapi::{api::core::v1::ObjectReference, apimachinery::pkg::apis::meta::v1::Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::StatusCommon;

/// Which side of the tunnel this cluster is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConnectionType {
    /// This cluster runs the gateway server.
    #[default]
    Server,
    /// This cluster runs the gateway client.
    Client,
}

/// Health of the tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConnectionStatusValue {
    /// The tunnel is up and the peer answers health checks.
    Connected,
    /// Waiting for the tunnel to come up.
    Connecting,
    /// The tunnel is down or failing.
    Error,
}

/// Desired state of a connection.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "Connection",
    namespaced,
    status = "ConnectionStatus",
    shortname = "conn",
    category = "liqo",
    derive = "PartialEq",
    derive = "Default",
    doc = "The state of the tunnel between this cluster and a remote one, written by the gateway.",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.value"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Latency","type":"string","priority":1,"jsonPath":".status.latency.value"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSpec {
    /// Type of the connection (Server or Client).
    #[serde(rename = "type")]
    pub type_: ConnectionType,
    /// The gateway (`GatewayServer` or `GatewayClient`) of this connection.
    pub gateway_ref: ObjectReference,
}

/// Latest measured latency to the peer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionLatency {
    /// Round-trip latency (e.g. `1.2ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// When it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Time>,
}

/// Observed state of a connection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionStatus {
    /// Health of the tunnel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<ConnectionStatusValue>,
    /// Latency to the peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<ConnectionLatency>,
    /// Conditions and observed generation.
    #[serde(flatten)]
    pub common: StatusCommon,
}
