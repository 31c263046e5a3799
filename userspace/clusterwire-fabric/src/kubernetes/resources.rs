//! The API resources behind the snapshot's kinds, and the scope a daemon watches.

use clusterwire_api::{
    ipam::IP,
    networking::{
        Configuration, GatewayClient, GatewayServer, InternalFabric, InternalNode, PublicKey,
    },
};
use k8s_openapi::api::core::v1::Node;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject},
};

use crate::snapshot::Kind;

/// Group, version, kind and plural of `kind` (from the `clusterwire-api` types, so the plural
/// is the CRD's, e.g. `publickeies` as Liqo spells it).
pub fn api_resource(kind: Kind) -> ApiResource {
    match kind {
        Kind::Configuration => ApiResource::erase::<Configuration>(&()),
        Kind::GatewayServer => ApiResource::erase::<GatewayServer>(&()),
        Kind::GatewayClient => ApiResource::erase::<GatewayClient>(&()),
        Kind::PublicKey => ApiResource::erase::<PublicKey>(&()),
        Kind::InternalNode => ApiResource::erase::<InternalNode>(&()),
        Kind::InternalFabric => ApiResource::erase::<InternalFabric>(&()),
        Kind::Ip => ApiResource::erase::<IP>(&()),
        Kind::Node => ApiResource::erase::<Node>(&()),
    }
}

/// What one daemon watches: these kinds, the namespaced ones in `namespace` only (or in every
/// namespace), the cluster-scoped ones cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The kinds watched (the others stay empty in the snapshot).
    pub kinds: Vec<Kind>,
    /// The namespace of the namespaced kinds; `None` for every namespace.
    pub namespace: Option<String>,
}

impl Scope {
    /// A gateway: every kind `desired::gateway` reads, the namespaced ones in the gateway's
    /// own namespace (where its `clusterwire-gateway` Role is bound).
    pub fn gateway(namespace: impl Into<String>) -> Self {
        Self {
            kinds: Kind::ALL.to_vec(),
            namespace: Some(namespace.into()),
        }
    }

    /// An agent: what `desired::agent` reads, `InternalNode` (cluster-scoped) and
    /// `InternalFabric` in every namespace.
    pub fn agent() -> Self {
        Self {
            kinds: crate::desired::AGENT_KINDS.to_vec(),
            namespace: None,
        }
    }

    /// The dynamic API of `kind` in this scope.
    pub fn api(&self, client: Client, kind: Kind) -> Api<DynamicObject> {
        let resource = api_resource(kind);
        match &self.namespace {
            Some(namespace) if kind.namespaced() => {
                Api::namespaced_with(client, namespace, &resource)
            }
            _ => Api::all_with(client, &resource),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_match_the_snapshot_kinds() {
        for kind in Kind::ALL {
            let resource = api_resource(kind);
            assert_eq!(resource.api_version, kind.api_version(), "{kind}");
            assert_eq!(resource.kind, kind.name(), "{kind}");
        }
        assert_eq!(api_resource(Kind::PublicKey).plural, "publickeies");
        assert_eq!(api_resource(Kind::Ip).plural, "ips");
        assert_eq!(api_resource(Kind::Node).plural, "nodes");
    }
}
