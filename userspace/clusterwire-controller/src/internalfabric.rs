//! The `InternalFabric` of a gateway, as the reference builds it: named after the remote cluster
//! id, in the gateway's namespace, labelled `liqo.io/remote-cluster-id`, owned by the gateway
//! (controller reference, so it goes with it), with
//! - `spec.gatewayIP`: the IP of the active gateway pod ([`crate::activepod`]), the Geneve
//!   destination of every node;
//! - `spec.interface.gateway.ip`: the gateway's address in the internal CIDR, allocated by the
//!   IPAM (owner `Gateway("<namespace>/<name>")`, the same pool as the `InternalNode`s) and
//!   restored from the existing `InternalFabric`s on start ([`restore`]);
//! - `spec.remoteCIDRs`: the remapped pod and external CIDRs of the Configuration with the same
//!   remote cluster id in the gateway's namespace (`status.remote.cidr.{pod,external}`);
//! - `spec.mtu`: the gateway's `spec.mtu`, 1340 by default.
//!
//! The node agents read it (`clusterwire_fabric::desired::agent`); its VNI is derived from its
//! namespace/name on both sides, so it is not written. The gateway reconcile calls [`ensure`]
//! on every change of the gateway's pods, so a failover reaches the nodes with one watch event.

use std::net::IpAddr;

use clusterwire_api::{
    common::{Cidr, Ip, MTU_DEFAULT, REMOTE_CLUSTER_ID_LABEL},
    networking::{Configuration, InternalFabric},
};
use clusterwire_ipam::{Family, InternalOwner, Ipam, IpamError};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Api, Resource, ResourceExt, api::ListParams};
use serde_json::json;

use crate::{Error, activepod::ActivePod, apply::ensure as apply, context::Context};

/// The IPAM owner of the gateway address of the `InternalFabric` `namespace/name`.
pub fn ipam_owner(namespace: &str, name: &str) -> InternalOwner {
    InternalOwner::Gateway(format!("{namespace}/{name}"))
}

/// Restores the gateway addresses the `InternalFabric`s record; the conflicting ones are
/// returned (those fabrics get a fresh address on their gateway's reconcile).
pub fn restore(ipam: &mut Ipam, fabrics: &[InternalFabric]) -> Vec<(String, IpamError)> {
    let mut problems = Vec::new();
    for fabric in fabrics {
        let namespace = fabric.namespace().unwrap_or_default();
        let name = fabric.name_any();
        let owner = ipam_owner(&namespace, &name);
        if let Err(e) = ipam.restore_internal(&owner, fabric.spec.interface.gateway.ip.0) {
            problems.push((format!("{namespace}/{name}"), e));
        }
    }
    problems
}

/// Frees the gateway address of the fabric of `cluster_id` in `namespace` (gateway deleted).
pub fn release(ipam: &mut Ipam, namespace: &str, cluster_id: &str) -> Vec<IpAddr> {
    ipam.release_internal(&ipam_owner(namespace, cluster_id))
}

/// What the fabric of one gateway is built from.
#[derive(Debug)]
pub struct Gateway<'a> {
    /// The gateway's namespace.
    pub namespace: &'a str,
    /// The remote cluster id (the fabric's name and label).
    pub cluster_id: &'a str,
    /// The gateway as owner.
    pub owner: &'a OwnerReference,
    /// The gateway's `spec.mtu`.
    pub mtu: Option<i32>,
    /// The active gateway pod.
    pub pod: &'a ActivePod,
}

/// The remapped remote CIDRs of the gateway's Configuration.
async fn remote_cidrs(ctx: &Context, gw: &Gateway<'_>) -> Result<Vec<Cidr>, Error> {
    let pending = |reason| Error::ConfigurationPending {
        cluster_id: gw.cluster_id.to_owned(),
        namespace: gw.namespace.to_owned(),
        reason,
    };
    let selector = format!("{REMOTE_CLUSTER_ID_LABEL}={}", gw.cluster_id);
    let list = Api::<Configuration>::namespaced(ctx.client.clone(), gw.namespace)
        .list(&ListParams::default().labels(&selector))
        .await?;
    if list.items.is_empty() {
        return Err(pending("none is labelled with it"));
    }
    let remapped = list
        .items
        .iter()
        .find_map(|c| c.status.as_ref().and_then(|s| s.remote.as_ref()))
        .ok_or_else(|| pending("its status has no remapped CIDRs yet"))?;
    let cidrs: Vec<Cidr> = remapped
        .cidr
        .pod
        .iter()
        .chain(&remapped.cidr.external)
        .copied()
        .collect();
    if cidrs.is_empty() {
        return Err(pending("its status has no remapped CIDRs yet"));
    }
    Ok(cidrs)
}

/// Makes sure the gateway's `InternalFabric` holds the active pod's IP, its internal address,
/// the remote CIDRs and the MTU. Returns whether it wrote.
pub async fn ensure(ctx: &Context, gw: &Gateway<'_>) -> Result<bool, Error> {
    let cidrs = remote_cidrs(ctx, gw).await?;
    let owner = ipam_owner(gw.namespace, gw.cluster_id);
    let address = ctx
        .ipam()
        .allocate_internal(&owner, Family::of_addr(gw.pod.ip))
        .map_err(Error::Ipam)?;
    let desired = json!({
        "apiVersion": InternalFabric::api_version(&()),
        "kind": InternalFabric::kind(&()),
        "metadata": {
            "name": gw.cluster_id,
            "namespace": gw.namespace,
            "labels": { REMOTE_CLUSTER_ID_LABEL: gw.cluster_id },
            "ownerReferences": [gw.owner],
        },
        "spec": {
            "mtu": gw.mtu.unwrap_or(MTU_DEFAULT),
            "remoteCIDRs": cidrs,
            "interface": { "gateway": { "ip": Ip(address) } },
            "gatewayIP": Ip(gw.pod.ip),
        },
    });
    let api: Api<InternalFabric> = Api::namespaced(ctx.client.clone(), gw.namespace);
    let (_, wrote) = apply(&api, gw.cluster_id, &desired).await?;
    if wrote {
        tracing::info!(
            fabric = %format!("{}/{}", gw.namespace, gw.cluster_id),
            gateway_ip = %gw.pod.ip,
            pod = %gw.pod.name,
            %address,
            "internal fabric updated"
        );
    }
    Ok(wrote)
}
