//! The controller's typed errors, each with a stable `kind` (metric label) and the condition
//! reason it is reported under.

use clusterwire_ipam::IpamError;

/// Everything a reconcile can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed.
    #[error("API request failed: {0}")]
    Kube(#[source] kube::Error),
    /// Adding or removing the finalizer, or the cleanup behind it, failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// The IPAM refused (e.g. remap pools exhausted).
    #[error("{0}")]
    Ipam(#[source] IpamError),
    /// The resource has no namespace or name (cannot happen for namespaced API objects).
    #[error("{kind} without a namespace or name")]
    Unnamed {
        /// Kind of the resource.
        kind: &'static str,
    },
    /// The gateway lacks the `liqo.io/remote-cluster-id` label.
    #[error("missing label {label}")]
    MissingClusterId {
        /// The label that is missing.
        label: &'static str,
    },
    /// The gateway's key Secret is unusable.
    #[error("secret {name}: {reason}")]
    Secret {
        /// The Secret's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The gateway names no template, or the template does not exist.
    #[error("template {reference}: {reason}")]
    TemplateMissing {
        /// `kind namespace/name` of the template (as far as known).
        reference: String,
        /// Why it is missing.
        reason: &'static str,
    },
    /// The template exists but cannot be rendered into valid objects.
    #[error("template {reference}: {source}")]
    TemplateInvalid {
        /// `kind namespace/name` of the template.
        reference: String,
        /// What is wrong.
        #[source]
        source: crate::template::TemplateError,
    },
    /// The gateway Service has no address yet (no load balancer ingress, no node, no cluster IP).
    #[error("service {service} has no address yet: {reason}")]
    EndpointPending {
        /// The Service's name.
        service: String,
        /// What is missing.
        reason: &'static str,
    },
    /// No gateway pod is active yet (none running, none labelled active among several, no
    /// pod IP yet), or more than one carries the active label.
    #[error("deployment {deployment}: {reason}")]
    GatewayPodPending {
        /// The gateway's Deployment.
        deployment: String,
        /// What is missing.
        reason: String,
    },
    /// The gateway's Configuration (same namespace, same remote cluster id) is missing or not
    /// remapped yet, so its `InternalFabric` has no remote CIDRs to route.
    #[error(
        "no remapped Configuration for cluster {cluster_id} in namespace {namespace}: {reason}"
    )]
    ConfigurationPending {
        /// The remote cluster id.
        cluster_id: String,
        /// The gateway's namespace.
        namespace: String,
        /// What is missing.
        reason: &'static str,
    },
    /// An IP resource names a Network: only the external CIDR is supported.
    #[error("spec.networkRef {network}: only the external CIDR (no networkRef) is supported")]
    NetworkRefUnsupported {
        /// `namespace/name` of the referenced Network.
        network: String,
    },
    /// Serializing an object failed (a bug, reported rather than panicking).
    #[error("serialize: {0}")]
    Serialize(#[source] serde_json::Error),
}

impl Error {
    /// A short stable name, for metric labels and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Finalizer(e) => match e.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(inner)
                | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner.kind(),
                _ => "finalizer",
            },
            Self::Ipam(e) => e.kind(),
            Self::Unnamed { .. } => "unnamed",
            Self::MissingClusterId { .. } => "missing_cluster_id",
            Self::Secret { .. } => "secret",
            Self::TemplateMissing { .. } => "template_missing",
            Self::TemplateInvalid { .. } => "template_invalid",
            Self::EndpointPending { .. } => "endpoint_pending",
            Self::GatewayPodPending { .. } => "gateway_pod_pending",
            Self::ConfigurationPending { .. } => "configuration_pending",
            Self::NetworkRefUnsupported { .. } => "network_ref_unsupported",
            Self::Serialize(_) => "serialize",
        }
    }

    /// The condition (and event) reason this error is reported under.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Ipam(IpamError::PoolsExhausted { .. }) => "PoolsExhausted",
            Self::Ipam(IpamError::NoPool { .. }) => "NoPool",
            Self::Ipam(IpamError::AddressesExhausted { .. }) => "AddressesExhausted",
            Self::Ipam(IpamError::InvalidCidr { .. }) => "InvalidCIDR",
            Self::Ipam(IpamError::KeyConflict { .. } | IpamError::RestoreConflict { .. }) => {
                "AddressConflict"
            }
            Self::Ipam(_) => "RemapFailed",
            Self::Kube(_) | Self::Finalizer(_) | Self::Unnamed { .. } | Self::Serialize(_) => {
                "ReconcileFailed"
            }
            Self::MissingClusterId { .. } => "MissingClusterID",
            Self::Secret { .. } => "SecretInvalid",
            Self::TemplateMissing { .. } => "TemplateNotFound",
            Self::TemplateInvalid { .. } => "TemplateInvalid",
            Self::EndpointPending { .. } => "EndpointPending",
            Self::GatewayPodPending { .. } => "GatewayPodPending",
            Self::ConfigurationPending { .. } => "ConfigurationPending",
            Self::NetworkRefUnsupported { .. } => "NetworkRefUnsupported",
        }
    }
}

impl Error {
    /// The error inside a finalizer's apply or cleanup, so its message and reason are the
    /// reconcile's own.
    pub fn from_finalizer(e: kube::runtime::finalizer::Error<Self>) -> Self {
        match e {
            kube::runtime::finalizer::Error::ApplyFailed(inner)
            | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner,
            other => Self::Finalizer(Box::new(other)),
        }
    }
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Self::Kube(e)
    }
}
