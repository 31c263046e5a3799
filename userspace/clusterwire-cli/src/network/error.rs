//! Why a `cwctl network` verb failed, and the exit status that tells the kinds apart.
use std::{fmt, path::PathBuf, time::Duration};

/// Exit status: a step failed (API error, unreachable cluster, missing CRDs or identity).
pub const EXIT_FAILED: u8 = 1;
/// Exit status: `--timeout` elapsed before the verb finished.
pub const EXIT_TIMED_OUT: u8 = 3;
/// Exit status: the user did not confirm a destructive verb.
pub const EXIT_REFUSED: u8 = 4;

/// Which of the two clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `--kubeconfig` / `--context`: the gateway client's cluster.
    Local,
    /// `--remote-kubeconfig` / `--remote-context`: the gateway server's cluster.
    Remote,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::Remote => "remote",
        })
    }
}

/// Why a `cwctl network` verb failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The kubeconfig could not be read or has no such context.
    #[error("({side}) kubeconfig {}: {source}", path.as_ref().map_or_else(|| "(default)".to_owned(), |p| p.display().to_string()))]
    Kubeconfig {
        /// Which cluster.
        side: Side,
        /// The file given, if any.
        path: Option<PathBuf>,
        /// What kube said.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The client could not be built from the kubeconfig.
    #[error("({side}) cannot build a Kubernetes client: {source}")]
    Client {
        /// Which cluster.
        side: Side,
        /// What kube said.
        #[source]
        source: kube::Error,
    },
    /// The API server did not answer.
    #[error("({side}) cannot reach the API server at {url}: {detail}")]
    Unreachable {
        /// Which cluster.
        side: Side,
        /// The server URL of the kubeconfig.
        url: String,
        /// The transport error and its causes.
        detail: String,
        /// The transport error.
        #[source]
        source: kube::Error,
    },
    /// clusterwire's API group is not served.
    #[error(
        "({side}) the API {group_version} is not served: the clusterwire (or Liqo) CRDs are not \
         installed in this cluster (kubectl apply -k deploy/base)"
    )]
    MissingApi {
        /// Which cluster.
        side: Side,
        /// The group/version.
        group_version: &'static str,
    },
    /// No cluster identity ConfigMap.
    #[error(
        "({side}) no cluster identity: no ConfigMap labelled \
         app.kubernetes.io/name=clusterid-configmap with a CLUSTER_ID in namespace {namespace} \
         (set --{flag_prefix}clusterwire-namespace to where clusterwire is installed)"
    )]
    NoClusterId {
        /// Which cluster.
        side: Side,
        /// The namespace searched.
        namespace: String,
        /// `""` or `"remote-"`.
        flag_prefix: &'static str,
    },
    /// A cluster's CIDR is neither given nor published in the cluster.
    #[error(
        "({side}) the {what} is unknown: no Network labelled ipam.liqo.io/network-type={label} in \
         namespace {namespace}; give it with --{flag}"
    )]
    NoCidr {
        /// Which cluster.
        side: Side,
        /// `pod CIDR` or `external CIDR`.
        what: &'static str,
        /// The Network type label value.
        label: &'static str,
        /// The namespace searched.
        namespace: String,
        /// The flag that gives it.
        flag: &'static str,
    },
    /// A gateway template is missing.
    #[error(
        "({side}) {kind} {namespace}/{name} does not exist (choose another with \
         --{flag}-name/--{flag}-namespace, or --skip-validation)"
    )]
    TemplateMissing {
        /// Which cluster.
        side: Side,
        /// The template kind.
        kind: &'static str,
        /// Its name.
        name: String,
        /// Its namespace.
        namespace: String,
        /// `gw-server-template` or `gw-client-template`.
        flag: &'static str,
    },
    /// A request was refused by the API server.
    #[error("({side}) {action}: {detail}")]
    Api {
        /// Which cluster.
        side: Side,
        /// What was being done.
        action: String,
        /// The server's answer, short.
        detail: String,
        /// What the server answered.
        #[source]
        source: kube::Error,
    },
    /// A gateway's key Secret has no usable public key.
    #[error("({side}) Secret {secret}: {problem}")]
    BadKey {
        /// Which cluster.
        side: Side,
        /// `namespace/name`.
        secret: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// Two flags that do not go together.
    #[error("{0}")]
    Flags(&'static str),
    /// `--timeout` elapsed.
    #[error("timed out after {after:?} while {step}")]
    TimedOut {
        /// The step in progress.
        step: String,
        /// The timeout.
        after: Duration,
    },
    /// The user did not confirm.
    #[error("{verb} not confirmed: nothing was changed (pass --yes to skip the question)")]
    Refused {
        /// The verb.
        verb: &'static str,
    },
}

impl NetworkError {
    /// The exit status of this failure.
    pub const fn exit_code(&self) -> u8 {
        match self {
            Self::TimedOut { .. } => EXIT_TIMED_OUT,
            Self::Refused { .. } => EXIT_REFUSED,
            _ => EXIT_FAILED,
        }
    }

    /// An API error, or [`Self::Unreachable`] when the request never got an answer.
    pub fn api(side: Side, url: &str, action: impl Into<String>, source: kube::Error) -> Self {
        match &source {
            kube::Error::HyperError(_) | kube::Error::Service(_) => Self::Unreachable {
                side,
                url: url.to_owned(),
                detail: chain(&source),
                source,
            },
            kube::Error::Api(status) => Self::Api {
                side,
                action: action.into(),
                detail: format!("{} {}: {}", status.code, status.reason, status.message),
                source,
            },
            other => Self::Api {
                side,
                action: action.into(),
                detail: chain(other),
                source,
            },
        }
    }

    /// Whether this is a 404 from the API server.
    pub fn is_not_found(source: &kube::Error) -> bool {
        matches!(source, kube::Error::Api(status) if status.code == 404)
    }
}

/// An error and its causes, `: `-separated.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = e.source();
    }
    text
}
