//! IP (`ipam.liqo.io/v1alpha1`): maps one local IP into the external CIDR.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Cidr, Ip, StatusCommon};

/// A local IP to make reachable from remote clusters.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ipam.liqo.io",
    version = "v1alpha1",
    kind = "IP",
    plural = "ips",
    namespaced,
    status = "IPStatus",
    category = "liqo",
    derive = "PartialEq",
    doc = "Maps one local IP to an address of the external CIDR, reachable from remote clusters.",
    printcolumn = r#"{"name":"Local IP","type":"string","jsonPath":".spec.ip"}"#,
    printcolumn = r#"{"name":"Remapped IP","type":"string","jsonPath":".status.ip"}"#,
    printcolumn = r#"{"name":"Remapped IP CIDR","type":"string","jsonPath":".status.cidr"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct IPSpec {
    /// The local IP.
    #[schemars(extend("x-kubernetes-validations" = [
        { "rule": "isIP(self)", "message": "must be an IPv4 or IPv6 address" },
        { "rule": "self == oldSelf", "message": "ip is immutable" }
    ]))]
    pub ip: Ip,
    /// The Network whose CIDR the address comes from; empty for the external CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_ref: Option<ObjectReference>,
    /// Masquerade traffic from this IP on the nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masquerade: Option<bool>,
}

/// The address the local IP is mapped to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IPStatus {
    /// The remapped IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [
        { "rule": "isIP(self)", "message": "must be an IPv4 or IPv6 address" },
        { "rule": "self == oldSelf", "message": "ip is immutable" }
    ]))]
    pub ip: Option<Ip>,
    /// The CIDR the remapped IP belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [
        { "rule": "self == oldSelf", "message": "cidr is immutable" }
    ]))]
    pub cidr: Option<Cidr>,
    /// Conditions and observed generation.
    #[serde(flatten)]
    pub common: StatusCommon,
}
