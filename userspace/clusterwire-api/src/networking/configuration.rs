//! Configuration (`conf`): one remote cluster's real CIDRs, and how this cluster remaps them.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Cidr, CidrList, StatusCommon};

/// Desired state: the remote cluster's real CIDRs (and optionally the local ones).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "Configuration",
    namespaced,
    status = "ConfigurationStatus",
    shortname = "conf",
    category = "liqo",
    derive = "PartialEq",
    derive = "Default",
    doc = "The network configuration of a pair of clusters: the remote cluster's real pod and external CIDRs, and how the local cluster remaps them.",
    printcolumn = r#"{"name":"Desired Pod CIDR","type":"string","jsonPath":".spec.remote.cidr.pod"}"#,
    printcolumn = r#"{"name":"Remapped Pod CIDR","type":"string","jsonPath":".status.remote.cidr.pod"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Desired External CIDR","type":"string","priority":1,"jsonPath":".spec.remote.cidr.external"}"#,
    printcolumn = r#"{"name":"Remapped External CIDR","type":"string","priority":1,"jsonPath":".status.remote.cidr.external"}"#,
    printcolumn = r#"{"name":"ClusterID","type":"string","priority":1,"jsonPath":".metadata.labels.liqo\\.io/remote-cluster-id"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationSpec {
    /// Network configuration of the local cluster (where the resource is created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<ClusterConfig>,
    /// Network configuration of the remote cluster.
    pub remote: ClusterConfig,
}

/// The CIDRs of one cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConfig {
    /// CIDRs of the cluster.
    pub cidr: ClusterConfigCidr,
}

/// Pod and external CIDRs; each field takes one CIDR or a list of CIDRs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConfigCidr {
    /// Pod CIDR(s) of the cluster: one CIDR or a list.
    pub pod: CidrList,
    /// External CIDR(s) of the cluster: one CIDR or a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<CidrList>,
}

/// Observed state: how the local cluster sees the remote cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationStatus {
    /// The remote cluster's CIDRs as remapped locally (same order as in the spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemappedConfig>,
    /// Conditions and observed generation.
    #[serde(flatten)]
    pub common: StatusCommon,
}

/// Remapped CIDRs of the remote cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemappedConfig {
    /// Remapped CIDRs.
    pub cidr: RemappedCidr,
}

/// Remapped pod and external CIDRs (always lists).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemappedCidr {
    /// Remapped pod CIDRs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub pod: Vec<Cidr>,
    /// Remapped external CIDRs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub external: Vec<Cidr>,
}
