//! Polling a manifests directory for changes.

use std::{collections::BTreeMap, fs, path::PathBuf};

use clusterwire_api::validation::ManifestValidator;

use super::{Loaded, SourceError, keep_last_good, list_files, load::fingerprint, load_files};

/// A manifests directory, re-read when its files change.
///
/// Call [`Source::poll`] periodically (e.g. from a `tokio::time::interval` tick): it reads
/// every manifest file, compares the contents with the previous poll, and only when something
/// changed (a file added, removed or edited) parses them and returns the new state, with the
/// last good version of objects that became bad ([`keep_last_good`]).
#[derive(Debug)]
pub struct Source {
    dir: PathBuf,
    validator: ManifestValidator,
    fingerprint: Option<BTreeMap<PathBuf, Option<u64>>>,
    current: Loaded,
}

impl Source {
    /// A source reading `dir`, validating with `validator` (e.g.
    /// `ManifestValidator::for_api()`). Nothing is read before the first poll.
    pub fn new(dir: impl Into<PathBuf>, validator: ManifestValidator) -> Self {
        Self {
            dir: dir.into(),
            validator,
            fingerprint: None,
            current: Loaded::default(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The state of the last poll that saw a change (empty before the first poll).
    pub fn current(&self) -> &Loaded {
        &self.current
    }

    /// Reads the directory; returns the new state if anything changed since the last poll
    /// (always on the first poll).
    pub fn poll(&mut self) -> Result<Option<&Loaded>, SourceError> {
        let files: Vec<_> = list_files(&self.dir)?
            .into_iter()
            .map(|path| {
                let text = fs::read_to_string(&path);
                (path, text)
            })
            .collect();
        let fingerprint = fingerprint(&files);
        if self.fingerprint.as_ref() == Some(&fingerprint) {
            return Ok(None);
        }
        self.fingerprint = Some(fingerprint);
        let next = load_files(files, &self.validator);
        self.current = keep_last_good(&self.current, next);
        Ok(Some(&self.current))
    }
}
