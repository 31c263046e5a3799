//! The `--manifests DIR` source: Liqo YAML files on disk instead of an API server.
//!
//! - [`load_files`] / [`load_dir`]: every `*.yaml`/`*.yml` file under DIR (subdirectories
//!   included, `DIR/status/` and hidden files excluded), multi-document, dispatched by
//!   `apiVersion`/`kind` into a [`Snapshot`]; each object is validated with the
//!   `clusterwire-api` CRD schemas (core Nodes by the fields the daemons read). A bad object is
//!   skipped and reported as a [`Problem`] naming the file, the object and the field; kinds a
//!   snapshot does not hold are listed in [`Loaded::ignored`].
//! - [`keep_last_good`]: an object that became invalid (or whose file no longer parses) keeps
//!   its previous good version, so the last good state stays applied.
//! - [`Source`]: polls DIR and yields a new [`Loaded`] only when some file changed, re-reading
//!   only the files whose stamp changed and updating its snapshot with their objects.
//! - [`write_status`]: writes an object with its status to `DIR/status/` atomically.

mod files;
mod filter;
mod json;
mod last_good;
mod load;
mod source;
mod status;

use std::{collections::BTreeMap, fmt, path::PathBuf};

use clusterwire_api::validation::Violations;

pub use filter::Filter;
pub use last_good::keep_last_good;
#[cfg(feature = "kubernetes")]
pub(crate) use load::to_object;
pub use load::{
    MANIFEST_EXTENSIONS, STATUS_DIR, list_dirs, list_files, load_dir, load_files, parse_file,
    parse_file_of,
};
pub use source::Source;
pub use status::{StatusError, status_path, write_status};

use crate::snapshot::{Key, Kind, Snapshot};

/// Why one object (or one whole file) was skipped.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Read(#[source] std::io::Error),
    /// The file is not YAML (no object of it is loaded).
    #[error("not valid YAML: {0}")]
    Yaml(#[source] serde_saphyr::Error),
    /// A document is not a mapping with string `apiVersion` and `kind`.
    #[error("not a Kubernetes object: apiVersion and kind are required")]
    NoTypeMeta,
    /// The object violates its schema.
    #[error("{0}")]
    Invalid(#[source] Violations),
    /// The object passed the schema but does not fit the Rust type.
    #[error("does not fit the {kind} type: {source}")]
    Type {
        /// The kind.
        kind: Kind,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// Another file already defines this object.
    #[error("already defined in {}", first.display())]
    Duplicate {
        /// The file whose definition is kept.
        first: PathBuf,
    },
}

/// A skipped object or file, with where it came from.
#[derive(Debug)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// The object, when the document could be identified (kind and namespace/name).
    pub object: Option<(Kind, Key)>,
    /// What is wrong.
    pub error: ManifestError,
}

impl Problem {
    /// The field paths the problem names (schema violations), e.g. `spec.mtu`.
    pub fn fields(&self) -> Vec<&str> {
        match &self.error {
            ManifestError::Invalid(v) => v.0.iter().map(|v| v.field.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file.display())?;
        if let Some((kind, key)) = &self.object {
            write!(f, "{kind} {key}: ")?;
        }
        write!(f, "{}", self.error)
    }
}

/// A document of a kind no snapshot holds (e.g. a Connection or a Deployment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// The file.
    pub file: PathBuf,
    /// Its `apiVersion`.
    pub api_version: String,
    /// Its `kind`.
    pub kind: String,
}

/// The result of loading a directory.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The good objects (and, after [`keep_last_good`], the last good version of bad ones).
    pub snapshot: Snapshot,
    /// The file each object of the snapshot comes from.
    pub origins: BTreeMap<(Kind, Key), PathBuf>,
    /// Skipped objects and files.
    pub problems: Vec<Problem>,
    /// Documents of kinds a snapshot does not hold.
    pub ignored: Vec<Ignored>,
    /// Objects whose current definition is bad and whose previous good version was kept.
    pub kept: Vec<(Kind, Key)>,
}

/// The directory itself cannot be listed.
#[derive(Debug, thiserror::Error)]
#[error("cannot list manifests directory {}: {source}", dir.display())]
pub struct SourceError {
    /// The directory.
    pub dir: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

#[cfg(test)]
mod source_tests;
#[cfg(test)]
mod tests;
