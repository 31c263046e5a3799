//! Where the agent's resources come from: `--manifests DIR` or the API server (`--kubernetes`).
use clusterwire_api::validation::ManifestValidator;
pub use clusterwire_daemon::origin::{Origin, client};
use clusterwire_fabric::{kubernetes, manifests, snapshot::Snapshot};
use tracing::warn;

/// The agent's source of resources.
pub enum Source {
    /// The manifests directory, polled.
    Manifests(manifests::Source),
    /// The API server, watched.
    Kubernetes(kubernetes::Source),
}

impl Source {
    /// Opens `origin`.
    pub async fn open(origin: &Origin) -> anyhow::Result<Self> {
        let validator = ManifestValidator::for_api()?;
        Ok(match origin {
            Origin::Manifests(dir) => Self::Manifests(manifests::Source::new(dir, validator).only(
                manifests::Filter::default().kinds(&clusterwire_fabric::desired::AGENT_KINDS),
            )),
            Origin::Kubernetes { kubeconfig } => {
                let client = client(kubeconfig.as_deref()).await?;
                Self::Kubernetes(kubernetes::Source::new(
                    &client,
                    &kubernetes::Scope::agent(),
                    validator,
                ))
            }
        })
    }

    /// Takes what changed (logging skipped objects and read or watch errors); whether the
    /// snapshot changed.
    pub fn poll(&mut self) -> bool {
        match self {
            Self::Manifests(source) => clusterwire_daemon::manifests::poll(source),
            Self::Kubernetes(source) => {
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
    /// manifests are complete from the first poll). Nothing is applied before.
    pub fn synced(&self) -> bool {
        match self {
            Self::Manifests(_) => true,
            Self::Kubernetes(source) => source.synced(),
        }
    }

    /// The manifests directory (file mode).
    pub fn manifests_dir(&self) -> Option<&std::path::Path> {
        match self {
            Self::Manifests(source) => Some(source.dir()),
            Self::Kubernetes(_) => None,
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> &Snapshot {
        match self {
            Self::Manifests(source) => &source.current().snapshot,
            Self::Kubernetes(source) => source.snapshot(),
        }
    }
}
