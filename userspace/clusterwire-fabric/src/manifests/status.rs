//! Writing statuses to `DIR/status/` in file mode.

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
};

use serde::Serialize;
use serde_json::Value;

use super::STATUS_DIR;

/// A status that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The object does not serialize.
    #[error("cannot serialize the object: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The object has no `kind` or no `metadata.name`.
    #[error("the object has no kind or no metadata.name")]
    Unnamed,
    /// YAML output failed.
    #[error("cannot write {kind} {name} as YAML: {source}")]
    Yaml {
        /// The kind.
        kind: String,
        /// The name.
        name: String,
        /// What the serializer said.
        #[source]
        source: serde_saphyr::SerializeError,
    },
    /// The file system refused.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `DIR/status/<kind>-<namespace>-<name>.yaml` (`<kind>-<name>.yaml` without a namespace),
/// the kind in lower case, e.g. `status/connection-liqo-tenant-cl02-gw-cl02.yaml`.
pub fn status_path(dir: &Path, kind: &str, namespace: Option<&str>, name: &str) -> PathBuf {
    let kind = kind.to_ascii_lowercase();
    let file = match namespace {
        Some(ns) if !ns.is_empty() => format!("{kind}-{ns}-{name}.yaml"),
        _ => format!("{kind}-{name}.yaml"),
    };
    dir.join(STATUS_DIR).join(file)
}

/// Writes `object` (a whole object with `apiVersion`, `kind`, `metadata` and `status`) as YAML
/// to its [`status_path`], atomically: a hidden temporary file in the same directory, synced,
/// then renamed over the target, so a reader sees the old or the new file, never a mix.
pub fn write_status<T: Serialize>(dir: &Path, object: &T) -> Result<PathBuf, StatusError> {
    let value = serde_json::to_value(object).map_err(StatusError::Serialize)?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let (Some(kind), Some(name)) = (
        text(value.get("kind")),
        text(value.pointer("/metadata/name")),
    ) else {
        return Err(StatusError::Unnamed);
    };
    let namespace = text(value.pointer("/metadata/namespace"));
    let yaml = serde_saphyr::to_string(&value).map_err(|source| StatusError::Yaml {
        kind: kind.clone(),
        name: name.clone(),
        source,
    })?;
    let path = status_path(dir, &kind, namespace.as_deref(), &name);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StatusError::Io { path, source }
    };
    let parent = dir.join(STATUS_DIR);
    fs::create_dir_all(&parent).map_err(io(&parent))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(yaml.as_bytes())?;
        file.sync_all()
    };
    if let Err(source) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(StatusError::Io { path: tmp, source });
    }
    fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(path)
}
