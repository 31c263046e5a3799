//! The `InternalNode` reconciler: one `InternalNode` per Node, named after it, holding the
//! node's address on the internal fabric (`spec.interface.node.ip`, allocated sequentially from
//! the internal CIDR, 10.80.0.0/16 by default, by the IPAM) and its underlay address
//! (`spec.nodeAddress`, clusterwire's addition: the node's `InternalIP`). Owned by the Node, so
//! it goes with it. The addresses are restored from the existing `InternalNode`s on start
//! ([`restore`]); the address of a deleted Node is freed by the next start's rebuild.

use std::{net::IpAddr, sync::Arc};

use clusterwire_api::{common::Ip, networking::InternalNode};
use clusterwire_ipam::{Family, InternalOwner, Ipam, IpamError};
use k8s_openapi::api::core::v1::Node;
use kube::{Api, Resource, ResourceExt, runtime::controller::Action};
use serde_json::json;

use crate::{Error, apply::ensure, context::Context};

/// Restores the internal addresses the `InternalNode`s record; the conflicting ones are
/// returned (those nodes get a fresh address on their reconcile).
pub fn restore(ipam: &mut Ipam, nodes: &[InternalNode]) -> Vec<(String, IpamError)> {
    let mut problems = Vec::new();
    for node in nodes {
        let name = node.name_any();
        let ip = node.spec.interface.node.ip.0;
        if let Err(e) = ipam.restore_internal(&InternalOwner::Node(name.clone()), ip) {
            problems.push((name, e));
        }
    }
    problems
}

fn internal_ip(node: &Node) -> Option<IpAddr> {
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .find(|a| a.type_ == "InternalIP")
        .and_then(|a| a.address.parse().ok())
}

/// Reconciles the `InternalNode` of one Node.
pub async fn reconcile(node: Arc<Node>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = node
        .metadata
        .name
        .clone()
        .ok_or(Error::Unnamed { kind: "Node" })?;
    let owner = InternalOwner::Node(name.clone());
    let allocated = ctx.ipam().allocate_internal(&owner, Family::V4);
    let ip = match allocated {
        Ok(ip) => ip,
        Err(e) => {
            let err = Error::Ipam(e);
            ctx.events
                .publish(&node.object_ref(&()), true, err.reason(), &err.to_string())
                .await;
            return Err(err);
        }
    };
    let mut spec = json!({ "interface": { "node": { "ip": Ip(ip) } } });
    if let Some(address) = internal_ip(&node) {
        spec["nodeAddress"] = json!(Ip(address));
    }
    let desired = json!({
        "apiVersion": InternalNode::api_version(&()),
        "kind": InternalNode::kind(&()),
        "metadata": {
            "name": name,
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Node", "name": name,
                "uid": node.metadata.uid.clone().unwrap_or_default(),
            }],
        },
        "spec": spec,
    });
    let api: Api<InternalNode> = Api::all(ctx.client.clone());
    let (_, wrote) = ensure(&api, &name, &desired).await?;
    if wrote {
        tracing::info!(node = %name, %ip, "internal address assigned");
    }
    ctx.succeeded(&format!("Node/{name}"));
    Ok(Action::await_change())
}

/// Retry with backoff after a failed reconcile.
#[expect(
    clippy::needless_pass_by_value,
    reason = "the signature kube-runtime's Controller::run takes"
)]
pub fn error_policy(node: Arc<Node>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = format!("Node/{}", node.name_any());
    let delay = ctx.backoff(&key);
    tracing::warn!(node = %key, kind = err.kind(), ?delay, "reconcile failed: {err}");
    Action::requeue(delay)
}
