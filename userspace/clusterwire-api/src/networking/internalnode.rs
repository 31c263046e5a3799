//! `InternalNode` (`in`, `inode`, cluster-scoped): one per node of the local cluster.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Ip, StatusCommon};

/// Desired state of a node on the internal fabric.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "InternalNode",
    status = "InternalNodeStatus",
    shortname = "in",
    shortname = "inode",
    category = "liqo",
    derive = "PartialEq",
    doc = "A node of the local cluster on the internal fabric (nodes <-> gateways).",
    printcolumn = r#"{"name":"Node IP Local","type":"string","jsonPath":".status.nodeIP.local"}"#,
    printcolumn = r#"{"name":"Node IP Remote","type":"string","jsonPath":".status.nodeIP.remote"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct InternalNodeSpec {
    /// The node's interfaces on the internal fabric.
    pub interface: InternalNodeInterface,
    /// clusterwire extension: the node's underlay address, the remote end of the Geneve
    /// tunnels gateways send to (one `collect_md` device per gateway serves every node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_address: Option<Ip>,
}

/// Interfaces of a node on the internal fabric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InternalNodeInterface {
    /// The per-node interface Liqo creates on every gateway. Unused by clusterwire (its
    /// gateways have one `collect_md` Geneve device for all nodes), kept for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<InternalNodeGatewayInterface>,
    /// The node's own interface.
    pub node: InternalNodeNodeInterface,
}

/// The gateway-side interface towards a node (Liqo compatibility).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InternalNodeGatewayInterface {
    /// Interface name.
    #[schemars(length(min = 1, max = 15))]
    pub name: String,
}

/// The node-side interface.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InternalNodeNodeInterface {
    /// The node's address in the internal CIDR.
    pub ip: Ip,
}

/// Observed state of a node on the internal fabric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InternalNodeStatus {
    /// Source addresses host-network pods of this node use towards pods.
    #[serde(default, rename = "nodeIP", skip_serializing_if = "Option::is_none")]
    pub node_ip: Option<InternalNodeIp>,
    /// Conditions and observed generation.
    #[serde(flatten)]
    pub common: StatusCommon,
}

/// Source addresses of a node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InternalNodeIp {
    /// Source address towards a pod on the same node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<Ip>,
    /// Source address towards a pod on another node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<Ip>,
}
