//! The Kubernetes source (feature `kubernetes`): the same snapshot as `--manifests DIR`, filled
//! from the API server, and the Connection status written back with server-side apply.
//!
//! - [`Scope`]: which kinds a daemon watches, and in which namespace ([`Scope::gateway`],
//!   [`Scope::agent`]);
//! - [`Source`]: one kube-runtime watcher per kind (list, then watch; re-list after a
//!   desync), every object validated with the same schema check as a manifest file and typed
//!   into a [`Snapshot`](crate::snapshot::Snapshot); a bad object is reported and its last good
//!   version kept. [`Source::poll`] drains what arrived and says whether the snapshot changed,
//!   like [`manifests::Source::poll`](crate::manifests::Source::poll);
//! - [`ConnectionWriter`]: the Connection `gw-<name>` created or updated and its status
//!   written, under field manager [`GATEWAY_FIELD_MANAGER`], only when they differ from what
//!   it last wrote.
//!
//! No TLS stack is chosen here: the daemon builds the `kube::Client`.

mod resources;
mod source;
mod status;

use std::fmt;

pub use resources::{Scope, api_resource};
pub use source::{Source, Update};
pub use status::{ConnectionWriter, GATEWAY_FIELD_MANAGER, WriteError};

use crate::{
    manifests::ManifestError,
    snapshot::{Key, Kind},
};

/// An object the API server holds that the daemons cannot use: it is skipped (its last good
/// version, if any, stays in the snapshot).
#[derive(Debug)]
pub struct Problem {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace/name.
    pub key: Key,
    /// What is wrong (the schema violations name the fields).
    pub error: ManifestError,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind, self.key, self.error)
    }
}
