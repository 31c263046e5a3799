//! Shared by the integration tests: the committed CRD files and a validator built from them.

use std::path::PathBuf;

/// `<workspace>/crds`.
pub fn crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../crds")
}

/// `(file name, text)` of every YAML file under `crds/`, sorted by name.
pub fn committed_crds() -> Vec<(String, String)> {
    let dir = crds_dir();
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (name, text)
        })
        .collect();
    files.sort();
    files
}

/// A validator built from the committed CRD files (what `kubectl apply -f crds/` installs).
#[cfg(feature = "validation")]
pub fn validator() -> clusterwire_api::validation::ManifestValidator {
    let files = committed_crds();
    clusterwire_api::validation::ManifestValidator::from_yaml(
        files.iter().map(|(_, text)| text.as_str()),
    )
    .unwrap_or_else(|e| panic!("the committed CRDs must compile into a validator: {e}"))
}
