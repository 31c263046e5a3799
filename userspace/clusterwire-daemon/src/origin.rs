//! Where a daemon's resources come from: `--manifests DIR` or the API server (`--kubernetes`,
//! in-cluster configuration or `--kubeconfig`), and the Kubernetes client for the latter.
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

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
