//! Where the gateway's resources come from (`--manifests DIR` or the API server with
//! `--kubernetes`), and where its Connection goes (`DIR/status/` or server-side apply).
use clusterwire_api::networking::Connection;
use clusterwire_api::validation::ManifestValidator;
pub use clusterwire_daemon::origin::{Origin, client};
use clusterwire_fabric::{
    desired::{GatewayId, Role},
    kubernetes, manifests,
    snapshot::Snapshot,
};
use tracing::warn;

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
    /// Opens `origin` for gateway `id`.
    pub async fn open(origin: &Origin, id: &GatewayId) -> anyhow::Result<Self> {
        let validator = ManifestValidator::for_api()?;
        Ok(match origin {
            Origin::Manifests(dir) => Self::Manifests(manifests::Source::new(dir, validator)),
            Origin::Kubernetes { kubeconfig } => {
                let client = client(kubeconfig.as_deref()).await?;
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
