//! Where the gateway's resources come from (`--manifests DIR` or the API server with
//! `--kubernetes`), and where its Connection goes (`DIR/status/` or server-side apply).
use anyhow::Context as _;
use clusterwire_api::networking::Connection;
use clusterwire_api::validation::ManifestValidator;
pub use clusterwire_daemon::origin::{Origin, client};
use clusterwire_fabric::{
    desired::{GatewayId, Role},
    kubernetes, manifests,
    snapshot::Snapshot,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use tracing::warn;

/// `connection` owned by its `GatewayServer` or `GatewayClient` (`spec.gatewayRef`), so it is
/// deleted with it; only when the gateway's UID is known (Kubernetes mode). The owner is the
/// controller reference, without `blockOwnerDeletion` (which would need the gateway's
/// `finalizers` permission).
pub fn owned_by_gateway(mut connection: Connection) -> Connection {
    let gateway = &connection.spec.gateway_ref;
    if let (Some(api_version), Some(kind), Some(name), Some(uid)) = (
        &gateway.api_version,
        &gateway.kind,
        &gateway.name,
        &gateway.uid,
    ) {
        connection.metadata.owner_references = Some(vec![OwnerReference {
            api_version: api_version.clone(),
            kind: kind.clone(),
            name: name.clone(),
            uid: uid.clone(),
            controller: Some(true),
            block_owner_deletion: None,
        }]);
    }
    connection
}

/// The API client of Kubernetes mode (`None` in file mode): one for the watches, the
/// Connection and the election.
pub async fn kubernetes_client(origin: &Origin) -> anyhow::Result<Option<kube::Client>> {
    match origin {
        Origin::Manifests(_) => Ok(None),
        Origin::Kubernetes { kubeconfig } => Ok(Some(client(kubeconfig.as_deref()).await?)),
    }
}

/// The gateway's source of resources and its status writer.
pub enum Source {
    /// The manifests directory, polled; statuses to `DIR/status/`.
    Manifests(manifests::Source),
    /// The API server, watched in the gateway's namespace (and cluster-scoped kinds); the
    /// Connection by server-side apply.
    Kubernetes {
        /// The watches.
        source: Box<kubernetes::Source>,
        /// The Connection writer.
        writer: kubernetes::ConnectionWriter,
    },
}

impl Source {
    /// Opens `origin` for gateway `id`; `client` is the API client in Kubernetes mode (see
    /// [`kubernetes_client`]).
    pub fn open(
        origin: &Origin,
        id: &GatewayId,
        client: Option<&kube::Client>,
    ) -> anyhow::Result<Self> {
        let validator = ManifestValidator::for_api()?;
        Ok(match origin {
            Origin::Manifests(dir) => Self::Manifests(manifests::Source::new(dir, validator).only(
                manifests::Filter::default().namespace(
                    id.key.namespace.clone(),
                    &clusterwire_fabric::desired::PEERING_KINDS,
                ),
            )),
            Origin::Kubernetes { .. } => {
                let client = client
                    .context("Kubernetes mode without a Kubernetes client")?
                    .clone();
                let namespace = &id.key.namespace;
                let scope = kubernetes::Scope::gateway(namespace.clone());
                Self::Kubernetes {
                    source: Box::new(kubernetes::Source::new(&client, &scope, validator)),
                    writer: kubernetes::ConnectionWriter::new(client, namespace),
                }
            }
        })
    }

    /// Takes what changed (logging skipped objects and read or watch errors); whether the
    /// snapshot changed.
    pub fn poll(&mut self) -> bool {
        match self {
            Self::Manifests(source) => clusterwire_daemon::manifests::poll(source),
            Self::Kubernetes { source, .. } => {
                let update = source.poll();
                for problem in &update.problems {
                    warn!("skipped: {problem}");
                }
                for error in &update.errors {
                    warn!("watching the API server: {error}; keeping the applied state");
                }
                update.changed
            }
        }
    }

    /// Whether the snapshot is complete: the API server's first lists have all arrived (the
    /// manifests are complete from the first poll).
    pub fn synced(&self) -> bool {
        match self {
            Self::Manifests(_) => true,
            Self::Kubernetes { source, .. } => source.synced(),
        }
    }

    /// The manifests directory (file mode).
    pub fn manifests_dir(&self) -> Option<&std::path::Path> {
        match self {
            Self::Manifests(source) => Some(source.dir()),
            Self::Kubernetes { .. } => None,
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> &Snapshot {
        match self {
            Self::Manifests(source) => &source.current().snapshot,
            Self::Kubernetes { source, .. } => source.snapshot(),
        }
    }

    /// The UID of the gateway object, for the Connection's `spec.gatewayRef` (Kubernetes mode;
    /// file mode writes none, as before).
    pub fn gateway_uid(&self, id: &GatewayId) -> Option<String> {
        let Self::Kubernetes { source, .. } = self else {
            return None;
        };
        let snapshot = source.snapshot();
        match id.role {
            Role::Server => snapshot.gateway_servers.get(&id.key)?.metadata.uid.clone(),
            Role::Client => snapshot.gateway_clients.get(&id.key)?.metadata.uid.clone(),
        }
    }

    /// Writes the Connection: to `DIR/status/`, or applied to the API server (only what
    /// changed since the last write).
    pub async fn write_status(&mut self, connection: &Connection) -> anyhow::Result<()> {
        match self {
            Self::Manifests(source) => {
                manifests::write_status(source.dir(), connection)?;
            }
            Self::Kubernetes { writer, .. } => {
                writer.write(connection).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clusterwire_fabric::{
        connection::connection,
        desired::{GatewayId, Role},
        snapshot::Key,
    };
    use serde_json::json;

    use super::owned_by_gateway;

    #[test]
    fn the_connection_is_owned_by_its_gateway_when_its_uid_is_known() {
        let id = GatewayId {
            role: Role::Client,
            key: Key::new("liqo-tenant-cl01", "cl01"),
        };
        let owned = owned_by_gateway(connection(&id, "cl01", Some("8f0e-uid")));
        assert_eq!(
            serde_json::to_value(&owned.metadata.owner_references).expect("json"),
            json!([{"apiVersion": "networking.liqo.io/v1beta1", "kind": "GatewayClient",
                    "name": "cl01", "uid": "8f0e-uid", "controller": true}])
        );
        let file_mode = owned_by_gateway(connection(&id, "cl01", None));
        assert_eq!(
            file_mode.metadata.owner_references, None,
            "no UID, no owner"
        );
    }
}
