//! `GatewayServer` (`gws`, `gwserver`): a gateway that remote clients connect to.

use k8s_openapi::api::core::v1::{LocalObjectReference, ObjectReference};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::gateway::{EndpointStatus, InternalGatewayEndpoint, ServiceType};
use crate::common::{Ip, StatusCommon};

/// Desired state of a gateway server.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "GatewayServer",
    namespaced,
    status = "GatewayServerStatus",
    shortname = "gws",
    shortname = "gwserver",
    category = "liqo",
    derive = "PartialEq",
    derive = "Default",
    doc = "A gateway that remote gateway clients connect to.",
    printcolumn = r#"{"name":"Template Kind","type":"string","priority":1,"jsonPath":".spec.serverTemplateRef.kind"}"#,
    printcolumn = r#"{"name":"Template Name","type":"string","jsonPath":".spec.serverTemplateRef.name"}"#,
    printcolumn = r#"{"name":"Template Namespace","type":"string","priority":1,"jsonPath":".spec.serverTemplateRef.namespace"}"#,
    printcolumn = r#"{"name":"IP","type":"string","jsonPath":".status.endpoint.addresses[*]"}"#,
    printcolumn = r#"{"name":"Port","type":"string","jsonPath":".status.endpoint.port"}"#,
    printcolumn = r#"{"name":"Protocol","type":"string","priority":1,"jsonPath":".status.endpoint.protocol"}"#,
    printcolumn = r#"{"name":"MTU","type":"integer","priority":1,"jsonPath":".spec.mtu"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct GatewayServerSpec {
    /// The template (e.g. a `WgGatewayServerTemplate`) the gateway is rendered from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_template_ref: Option<ObjectReference>,
    /// MTU of the tunnel (576..9000; both sides must agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 576, max = 9000))]
    pub mtu: Option<i32>,
    /// How the server is exposed.
    #[serde(default)]
    pub endpoint: ServerEndpoint,
    /// The secret holding the gateway's keys; empty to let the operator create one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
}

/// How the gateway server is exposed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!(has(self.port) && has(self.ports))",
        "message": "port and ports are mutually exclusive: set only one of them"
    },
    {
        "rule": "!has(self.nodePort) || (has(self.serviceType) && self.serviceType != 'ClusterIP')",
        "message": "nodePort requires serviceType NodePort or LoadBalancer"
    },
    {
        "rule": "!has(self.loadBalancerIP) || (has(self.serviceType) && self.serviceType == 'LoadBalancer')",
        "message": "loadBalancerIP requires serviceType LoadBalancer"
    }
]))]
pub struct ServerEndpoint {
    /// Port of the gateway service (1..65535; liqoctl uses 51840).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// clusterwire extension, exclusive with `port`: several ports, one tunnel each, so that
    /// the traffic of one peer is spread over several gateway cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 8), inner(range(min = 1, max = 65535)))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub ports: Option<Vec<i32>>,
    /// Type of the gateway service.
    #[serde(default)]
    pub service_type: ServiceType,
    /// A fixed node port (`NodePort` and `LoadBalancer` services only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub node_port: Option<i32>,
    /// A fixed load balancer IP (`LoadBalancer` services only; the provider must support it).
    #[serde(
        default,
        rename = "loadBalancerIP",
        skip_serializing_if = "Option::is_none"
    )]
    pub load_balancer_ip: Option<Ip>,
}

/// Observed state of a gateway server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayServerStatus {
    /// The object rendered from the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ref: Option<ObjectReference>,
    /// Where remote clients reach the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointStatus>,
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
