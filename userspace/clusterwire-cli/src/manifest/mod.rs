//! `cwctl generate` and `cwctl create`: the reference's (liqoctl's) resource verbs, building
//! `clusterwire-api` objects, printed with `-o yaml|json`; without `-o`, `create` applies the
//! object to the cluster of `--kubeconfig`/`--context` (server-side apply, [`apply`]). What
//! `generate` would read from the cluster is given with flags instead (clusterwire additions,
//! named in each verb's help).

pub mod apply;
pub mod create;
pub mod generate;

use serde::Serialize;

/// Namespace the deployment (`deploy/`) installs clusterwire and its gateway templates into.
pub const CLUSTERWIRE_NAMESPACE: &str = "clusterwire";

/// How to print an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// YAML, as `kubectl apply -f` reads it.
    Yaml,
    /// JSON.
    Json,
}

/// Why a `generate` or `create` command failed.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Applying the object to the cluster failed.
    #[error(transparent)]
    Apply(Box<crate::network::error::NetworkError>),
    /// The runtime for the Kubernetes client could not start.
    #[error("starting the Kubernetes client's runtime failed")]
    Runtime(#[source] std::io::Error),
    /// A value the reference reads from the cluster was not given as a flag.
    #[error(
        "{what} is read from the cluster by the reference, which needs --kubeconfig support \
         that cwctl does not have yet; give it with {flags}"
    )]
    NeedsCluster {
        /// What is missing.
        what: &'static str,
        /// The flags that give it.
        flags: &'static str,
    },
    /// Two flags that only make sense together, or exclude each other.
    #[error("{flag} needs --service-type {needs}")]
    ServiceType {
        /// The flag given.
        flag: &'static str,
        /// The service types it works with.
        needs: &'static str,
    },
    /// A key that is not a WireGuard key.
    #[error(transparent)]
    Key(#[from] clusterwire_links::wireguard::KeyError),
    /// The object could not be serialized.
    #[error("printing the {kind} as {format:?} failed: {message}")]
    Print {
        /// Kind of the object.
        kind: &'static str,
        /// The output format.
        format: Format,
        /// The serializer's message.
        message: String,
    },
}

/// Prints `object` (a `kind`) in `format` on stdout.
pub fn emit<T: Serialize>(
    kind: &'static str,
    object: &T,
    format: Format,
) -> Result<(), ManifestError> {
    print!("{}", render(kind, object, format)?);
    Ok(())
}

/// The text of `object` in `format`, ending with a newline.
pub fn render<T: Serialize>(
    kind: &'static str,
    object: &T,
    format: Format,
) -> Result<String, ManifestError> {
    let print = |message: String| ManifestError::Print {
        kind,
        format,
        message,
    };
    match format {
        Format::Yaml => serde_saphyr::to_string(object).map_err(|e| print(e.to_string())),
        Format::Json => serde_json::to_string_pretty(object)
            .map(|text| text + "\n")
            .map_err(|e| print(e.to_string())),
    }
}

/// Labels of a per-peer object: `liqo.io/remote-cluster-id`, plus `extra`.
fn peer_labels(
    cluster_id: &str,
    extra: &[(&str, &str)],
) -> std::collections::BTreeMap<String, String> {
    std::iter::once((clusterwire_api::common::REMOTE_CLUSTER_ID_LABEL, cluster_id))
        .chain(extra.iter().copied())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A name that is not a valid Kubernetes object name and label value.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0:?} is not a valid name: 1 to 63 lowercase letters, digits and '-', starting and ending \
     with a letter or digit"
)]
pub struct InvalidName(String);

/// Parses a cluster id or object name: an RFC 1123 label, which is both a valid object name and
/// a valid label value (cluster ids are used as both).
pub fn dns_label(text: &str) -> Result<String, InvalidName> {
    let ok = (1..=63).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if ok {
        Ok(text.to_owned())
    } else {
        Err(InvalidName(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::dns_label;

    #[test]
    fn names_are_rfc1123_labels() {
        for good in ["cl01", "a", "my-cluster-2"] {
            assert!(dns_label(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "Cl01", "a_b", "a.b", &"x".repeat(64)] {
            assert!(dns_label(bad).is_err(), "{bad}");
        }
    }
}
