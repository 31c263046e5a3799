//! What a snapshot keeps of a core Node: its metadata, pod CIDRs and addresses, under the
//! field names of `k8s_openapi`'s `Node` (so code reads `node.spec`/`node.status` either way).
//! A full `Node` is 1,552 bytes of mostly empty fields; this is about 450, which is 5.5 MB at
//! 5,000 nodes.

use k8s_openapi::{
    api::core::v1::{Node, NodeAddress, NodeSpec, NodeStatus},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};

/// The parts of a core Node the daemons read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeSummary {
    /// The Node's metadata.
    pub metadata: ObjectMeta,
    /// `spec.podCIDR` and `spec.podCIDRs`.
    pub spec: Option<NodeSpecSummary>,
    /// `status.addresses`.
    pub status: Option<NodeStatusSummary>,
}

/// `spec.podCIDR` and `spec.podCIDRs` of a Node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSpecSummary {
    /// `spec.podCIDR`.
    pub pod_cidr: Option<String>,
    /// `spec.podCIDRs`.
    pub pod_cidrs: Option<Vec<String>>,
}

/// `status.addresses` of a Node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeStatusSummary {
    /// `status.addresses`.
    pub addresses: Option<Vec<NodeAddress>>,
}

impl From<Node> for NodeSummary {
    fn from(node: Node) -> Self {
        Self {
            metadata: node.metadata,
            spec: node.spec.map(|s| NodeSpecSummary {
                pod_cidr: s.pod_cidr,
                pod_cidrs: s.pod_cidrs,
            }),
            status: node.status.map(|s| NodeStatusSummary {
                addresses: s.addresses,
            }),
        }
    }
}

impl From<NodeSummary> for Node {
    /// A Node with only the summarized fields set.
    fn from(node: NodeSummary) -> Self {
        Self {
            metadata: node.metadata,
            spec: node.spec.map(|s| NodeSpec {
                pod_cidr: s.pod_cidr,
                pod_cidrs: s.pod_cidrs,
                ..NodeSpec::default()
            }),
            status: node.status.map(|s| NodeStatus {
                addresses: s.addresses,
                ..NodeStatus::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_metadata_pod_cidrs_and_addresses_and_drops_the_rest() {
        let address = NodeAddress {
            address: "192.168.0.10".to_owned(),
            type_: "InternalIP".to_owned(),
        };
        let node = Node {
            metadata: ObjectMeta {
                name: Some("n1".to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                pod_cidr: Some("10.0.0.0/24".to_owned()),
                pod_cidrs: Some(vec!["10.0.0.0/24".to_owned()]),
                unschedulable: Some(true),
                ..NodeSpec::default()
            }),
            status: Some(NodeStatus {
                addresses: Some(vec![address.clone()]),
                phase: Some("Running".to_owned()),
                ..NodeStatus::default()
            }),
        };
        let summary = NodeSummary::from(node.clone());
        assert!(std::mem::size_of::<NodeSummary>() * 3 < std::mem::size_of::<Node>());
        let back = Node::from(summary.clone());
        let mut expected = node;
        if let Some(spec) = expected.spec.as_mut() {
            spec.unschedulable = None;
        }
        if let Some(status) = expected.status.as_mut() {
            status.phase = None;
        }
        assert_eq!(back, expected);
        assert_eq!(NodeSummary::from(back), summary);
    }
}
