//! `GatewayClient` (`gwc`, `gwclient`): a gateway that dials a remote gateway server.

use k8s_openapi::api::core::v1::{LocalObjectReference, ObjectReference};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::gateway::{InternalGatewayEndpoint, Protocol};
use crate::common::StatusCommon;

/// Desired state of a gateway client.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "GatewayClient",
    namespaced,
    status = "GatewayClientStatus",
    shortname = "gwc",
    shortname = "gwclient",
    category = "liqo",
    derive = "PartialEq",
    derive = "Default",
    doc = "A gateway that connects to a remote gateway server.",
    printcolumn = r#"{"name":"Template Kind","type":"string","priority":1,"jsonPath":".spec.clientTemplateRef.kind"}"#,
    printcolumn = r#"{"name":"Template Name","type":"string","jsonPath":".spec.clientTemplateRef.name"}"#,
    printcolumn = r#"{"name":"Template Namespace","type":"string","priority":1,"jsonPath":".spec.clientTemplateRef.namespace"}"#,
    printcolumn = r#"{"name":"IP","type":"string","jsonPath":".spec.endpoint.addresses[*]"}"#,
    printcolumn = r#"{"name":"Port","type":"string","jsonPath":".spec.endpoint.port"}"#,
    printcolumn = r#"{"name":"Protocol","type":"string","priority":1,"jsonPath":".spec.endpoint.protocol"}"#,
    printcolumn = r#"{"name":"MTU","type":"integer","priority":1,"jsonPath":".spec.mtu"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct GatewayClientSpec {
    /// The template (e.g. a `WgGatewayClientTemplate`) the gateway is rendered from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_template_ref: Option<ObjectReference>,
    /// MTU of the tunnel (576..9000; both sides must agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 576, max = 9000))]
    pub mtu: Option<i32>,
    /// The remote gateway server to connect to.
    pub endpoint: ClientEndpoint,
    /// The secret holding the gateway's keys; empty to let the operator create one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
}

/// The remote gateway server a client dials.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!(has(self.port) && has(self.ports))",
        "message": "port and ports are mutually exclusive: set only one of them"
    },
    {
        "rule": "has(self.port) || has(self.ports)",
        "message": "one of port or ports is required"
    }
]))]
pub struct ClientEndpoint {
    /// Addresses of the remote server (IP addresses or DNS names), tried in order.
    #[schemars(length(min = 1, max = 16), inner(length(min = 1, max = 253)))]
    pub addresses: Vec<String>,
    /// Port of the remote server (1..65535).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// clusterwire extension, exclusive with `port`: every port of a server listening on
    /// several ports (one tunnel each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 8), inner(range(min = 1, max = 65535)))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub ports: Option<Vec<i32>>,
    /// Transport protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
}

/// Observed state of a gateway client.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayClientStatus {
    /// The object rendered from the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ref: Option<ObjectReference>,
    /// The secret holding the gateway's keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ObjectReference>,
    /// The gateway's endpoint on the internal network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_endpoint: Option<InternalGatewayEndpoint>,
    /// Conditions and observed generation.
    #[serde(flatten)]
    pub common: StatusCommon,
}
