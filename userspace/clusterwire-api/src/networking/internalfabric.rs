//! `InternalFabric` (`if`, `ifabric`): one per gateway, how nodes reach it.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Cidr, Ip, StatusCommon};

/// Desired state of a gateway on the internal fabric.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "InternalFabric",
    namespaced,
    status = "InternalFabricStatus",
    shortname = "if",
    shortname = "ifabric",
    category = "liqo",
    derive = "PartialEq",
    doc = "A gateway on the internal fabric: the remote CIDRs nodes route through it.",
    printcolumn = r#"{"name":"Gateway IP","type":"string","jsonPath":".spec.gatewayIP"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct InternalFabricSpec {
    /// MTU of the internal fabric (576..9000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 576, max = 9000))]
    pub mtu: Option<i32>,
    /// Remote (remapped) CIDRs routed through the gateway.
    #[serde(default, rename = "remoteCIDRs", skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub remote_cidrs: Vec<Cidr>,
    /// The interfaces of the fabric.
    pub interface: InternalFabricInterface,
    /// Address of the gateway pod (the Geneve tunnel endpoint on the node network).
    #[serde(rename = "gatewayIP")]
    pub gateway_ip: Ip,
    /// clusterwire extension: the 24-bit Geneve VNI identifying this gateway in each node's
    /// single `collect_md` Geneve device and in the eBPF maps keyed by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16_777_215))]
    pub vni: Option<u32>,
}

/// Interfaces of the fabric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InternalFabricInterface {
    /// The per-gateway interface Liqo creates on every node. Unused by clusterwire (one
    /// `collect_md` Geneve device per node), kept for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<InternalFabricNodeInterface>,
    /// The gateway's interface.
    pub gateway: InternalFabricGatewayInterface,
}

/// The node-side interface towards a gateway (Liqo compatibility).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InternalFabricNodeInterface {
    /// Interface name.
    #[schemars(length(min = 1, max = 15))]
    pub name: String,
}

/// The gateway-side interface.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InternalFabricGatewayInterface {
    /// The gateway's address in the internal CIDR.
    pub ip: Ip,
}

/// Observed state (clusterwire addition: Liqo's `InternalFabric` has no status).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InternalFabricStatus {
    /// Conditions and observed generation.
    #[serde(flatten)]
    pub common: StatusCommon,
}
