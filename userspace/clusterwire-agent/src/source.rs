//! Where the agent's resources come from: `--manifests DIR` or the API server (`--kubernetes`).
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clusterwire_api::validation::ManifestValidator;
use clusterwire_fabric::{kubernetes, manifests, snapshot::Snapshot};
use tracing::warn;

/// The source chosen on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `--manifests DIR`.
    Manifests(PathBuf),
    /// `--kubernetes`, in-cluster configuration or `--kubeconfig FILE`.
    Kubernetes { kubeconfig: Option<PathBuf> },
}

impl Origin {
    /// Exactly one of `--manifests DIR` and `--kubernetes`; `--kubeconfig` only with the
    /// latter.
    pub fn try_new(
        manifests: Option<PathBuf>,
        kubernetes: bool,
        kubeconfig: Option<PathBuf>,
    ) -> anyhow::Result<Self> {
        match (manifests, kubernetes, kubeconfig) {
            (Some(_), true, _) => {
                bail!("--manifests DIR and --kubernetes are alternatives: give one of them")
            }
            (None, false, _) => {
                bail!("give --manifests DIR (file mode) or --kubernetes (read the API server)")
            }
            (Some(_), false, Some(_)) => bail!("--kubeconfig goes with --kubernetes"),
            (Some(dir), false, None) => {
                if !dir.is_dir() {
                    bail!("--manifests {} is not a directory", dir.display());
                }
                Ok(Self::Manifests(dir))
            }
            (None, true, kubeconfig) => Ok(Self::Kubernetes { kubeconfig }),
        }
    }
}

/// A Kubernetes client: from `kubeconfig` (its current context), else the in-cluster
/// configuration (the pod's service account).
pub async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading --kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("--kubeconfig {}", path.display()))?
        }
        None => kube::Config::incluster()
            .context("in-cluster Kubernetes configuration (not in a pod? use --kubeconfig)")?,
    };
    kube::Client::try_from(config).context("building the Kubernetes client")
}

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
            Origin::Manifests(dir) => Self::Manifests(manifests::Source::new(dir, validator)),
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

    /// The current snapshot.
    pub fn snapshot(&self) -> &Snapshot {
        match self {
            Self::Manifests(source) => &source.current().snapshot,
            Self::Kubernetes(source) => source.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_source() {
        let dir = std::env::temp_dir();
        let error = |m: Option<PathBuf>, k, c: Option<PathBuf>| {
            Origin::try_new(m, k, c).expect_err("refused").to_string()
        };
        assert_eq!(
            error(None, false, None),
            "give --manifests DIR (file mode) or --kubernetes (read the API server)"
        );
        assert_eq!(
            error(Some(dir.clone()), true, None),
            "--manifests DIR and --kubernetes are alternatives: give one of them"
        );
        assert_eq!(
            error(Some(dir.clone()), false, Some("k".into())),
            "--kubeconfig goes with --kubernetes"
        );
        assert!(
            error(Some("/nonexistent/dir".into()), false, None).ends_with("is not a directory")
        );
        assert_eq!(
            Origin::try_new(Some(dir.clone()), false, None).expect("file mode"),
            Origin::Manifests(dir)
        );
        assert_eq!(
            Origin::try_new(None, true, Some("/k".into())).expect("kubernetes"),
            Origin::Kubernetes {
                kubeconfig: Some("/k".into())
            }
        );
    }
}
