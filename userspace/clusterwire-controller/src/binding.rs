//! The RBAC bindings of a gateway's `ServiceAccount` (the one its pod template names), so that
//! `clusterwire-gateway --kubernetes` may read its resources:
//! - `RoleBinding` `gw-<name>` in the gateway's namespace to the `ClusterRole`
//!   [`GATEWAY_ROLE`] (its namespace's kinds, its Connection, its Lease and pod label), owned
//!   by the gateway (controller reference, so it goes with it);
//! - `ClusterRoleBinding` `clusterwire-gateway:<namespace>:<name>` to the `ClusterRole`
//!   [`GATEWAY_CLUSTER_ROLE`] (`InternalNode`s and Nodes). A cluster-scoped object cannot be
//!   owned by a namespaced one, so it carries the gateway's labels and is deleted by the
//!   gateway's finalizer ([`remove`]).
//!
//! Creating a binding needs `bind` on the two `ClusterRole`s (granted by name in the
//! controller's `ClusterRole`), not their permissions.

use k8s_openapi::{
    api::rbac::v1::{ClusterRoleBinding, RoleBinding},
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{Api, Client, api::DeleteParams};
use serde_json::{Map, Value, json};

use crate::{Error, apply::ensure, objects::resource_name};

/// The `ClusterRole` bound in the gateway's namespace.
pub const GATEWAY_ROLE: &str = "clusterwire-gateway";
/// The `ClusterRole` bound cluster-wide.
pub const GATEWAY_CLUSTER_ROLE: &str = "clusterwire-gateway-cluster";

/// The name of a gateway's `ClusterRoleBinding`.
pub fn cluster_binding_name(namespace: &str, gateway: &str) -> String {
    format!("{GATEWAY_ROLE}:{namespace}:{gateway}")
}

/// The gateway whose `ServiceAccount` is bound.
#[derive(Debug)]
pub struct Subject<'a> {
    /// The gateway's namespace.
    pub namespace: &'a str,
    /// The gateway's name.
    pub gateway: &'a str,
    /// The `ServiceAccount` its pod runs as.
    pub service_account: &'a str,
    /// The gateway as owner (of the namespaced binding).
    pub owner: &'a OwnerReference,
    /// Labels both bindings carry (the remote cluster id).
    pub labels: &'a Map<String, Value>,
}

fn binding(kind: &str, metadata: &Value, role: &str, subject: &Subject<'_>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role,
        },
        "subjects": [{
            "kind": "ServiceAccount",
            "name": subject.service_account,
            "namespace": subject.namespace,
        }],
    })
}

/// The namespaced binding and the cluster-wide one, as applied.
pub fn desired(subject: &Subject<'_>) -> ((String, Value), (String, Value)) {
    let name = resource_name(subject.gateway);
    let namespaced = binding(
        "RoleBinding",
        &json!({
            "name": name,
            "namespace": subject.namespace,
            "labels": subject.labels,
            "ownerReferences": [subject.owner],
        }),
        GATEWAY_ROLE,
        subject,
    );
    let cluster_name = cluster_binding_name(subject.namespace, subject.gateway);
    let cluster = binding(
        "ClusterRoleBinding",
        &json!({ "name": cluster_name, "labels": subject.labels }),
        GATEWAY_CLUSTER_ROLE,
        subject,
    );
    ((name, namespaced), (cluster_name, cluster))
}

/// Makes sure both bindings exist as [`desired`]; returns whether it wrote.
pub async fn ensure_bindings(client: &Client, subject: &Subject<'_>) -> Result<bool, Error> {
    let ((name, namespaced), (cluster_name, cluster)) = desired(subject);
    let (_, a) = ensure(
        &Api::<RoleBinding>::namespaced(client.clone(), subject.namespace),
        &name,
        &namespaced,
    )
    .await?;
    let (_, b) = ensure(
        &Api::<ClusterRoleBinding>::all(client.clone()),
        &cluster_name,
        &cluster,
    )
    .await?;
    Ok(a || b)
}

/// Deletes the gateway's `ClusterRoleBinding` (already gone is fine).
pub async fn remove(client: &Client, namespace: &str, gateway: &str) -> Result<(), Error> {
    let name = cluster_binding_name(namespace, gateway);
    match Api::<ClusterRoleBinding>::all(client.clone())
        .delete(&name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}
