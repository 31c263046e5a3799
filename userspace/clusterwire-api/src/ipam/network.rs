//! Network (`ipam.liqo.io/v1alpha1`): a CIDR to remap for a remote cluster.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Cidr, StatusCommon};

/// A remote CIDR the IPAM must map.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ipam.liqo.io",
    version = "v1alpha1",
    kind = "Network",
    namespaced,
    status = "NetworkStatus",
    category = "liqo",
    derive = "PartialEq",
    doc = "A remote CIDR and the CIDR the local IPAM mapped it to.",
    printcolumn = r#"{"name":"Desired CIDR","type":"string","jsonPath":".spec.cidr"}"#,
    printcolumn = r#"{"name":"Remapped CIDR","type":"string","jsonPath":".status.cidr"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    /// The desired (remote, real) CIDR.
    #[schemars(extend("x-kubernetes-validations" = [
        { "rule": "self == oldSelf", "message": "cidr is immutable" }
    ]))]
    pub cidr: Cidr,
}

/// The CIDR the IPAM chose.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStatus {
    /// The remapped CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<Cidr>,
    /// Conditions and observed generation.
    #[serde(flatten)]
    pub common: StatusCommon,
}
