//! Reading, parsing, validating and dispatching manifest files.

use std::{
    fs,
    net::IpAddr,
    path::{Path, PathBuf},
};

use clusterwire_api::validation::{ManifestValidator, Violation, Violations};
use ipnet::IpNet;
use serde_json::Value;

use super::{Filter, Ignored, Loaded, ManifestError, Problem, SourceError};
use crate::snapshot::{Key, Kind, Object, key_of};

/// File name extensions read as manifests.
pub const MANIFEST_EXTENSIONS: [&str; 2] = ["yaml", "yml"];
/// Subdirectory of DIR holding written statuses, never read as input.
pub const STATUS_DIR: &str = "status";

/// The manifest files under `dir`, sorted: `*.yaml`/`*.yml`, in subdirectories too, except
/// `dir/status/` and hidden entries (names starting with `.`, such as temporary files).
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let (_, mut files) = walk(dir)?;
    files.sort();
    Ok(files)
}

/// `dir` and the directories under it that [`list_files`] reads (not `dir/status/`, not hidden
/// ones): what a watcher of the manifests watches.
pub fn list_dirs(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    Ok(walk(dir)?.0)
}

/// The directories (`dir` first) and manifest files of the tree under `dir`, unsorted.
fn walk(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), SourceError> {
    let mut dirs = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = fs::read_dir(&current).map_err(|source| SourceError {
            dir: current.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| SourceError {
                dir: current.clone(),
                source,
            })?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            // Follows symlinks (a ConfigMap mount is made of them); only those cost a stat.
            let is_dir = match entry.file_type() {
                Ok(t) if !t.is_symlink() => t.is_dir(),
                _ => path.is_dir(),
            };
            if is_dir {
                if !(current == dir && name == STATUS_DIR) {
                    dirs.push(path.clone());
                    pending.push(path);
                }
            } else if path
                .extension()
                .is_some_and(|e| MANIFEST_EXTENSIONS.iter().any(|m| e == *m))
            {
                files.push(path);
            }
        }
    }
    Ok((dirs, files))
}

/// Loads every manifest file under `dir` (see [`list_files`]).
pub fn load_dir(dir: &Path, validator: &ManifestValidator) -> Result<Loaded, SourceError> {
    let files = list_files(dir)?;
    Ok(load_files(
        files.into_iter().map(|path| {
            let text = fs::read_to_string(&path);
            (path, text)
        }),
        validator,
    ))
}

/// Loads files already read (path, contents or read error), in the order given; an object
/// defined twice keeps its first definition.
pub fn load_files(
    files: impl IntoIterator<Item = (PathBuf, std::io::Result<String>)>,
    validator: &ManifestValidator,
) -> Loaded {
    let mut loaded = Loaded::default();
    for (file, text) in files {
        let text = match text {
            Ok(text) => text,
            Err(e) => {
                loaded.problems.push(Problem {
                    file,
                    object: None,
                    error: ManifestError::Read(e),
                });
                continue;
            }
        };
        let (objects, problems, ignored) = parse_file(&file, &text, validator);
        loaded.problems.extend(problems);
        loaded.ignored.extend(ignored);
        for object in objects {
            let id = (object.kind(), object.key());
            if let Some(first) = loaded.origins.get(&id) {
                loaded.problems.push(Problem {
                    file: file.clone(),
                    object: Some(id),
                    error: ManifestError::Duplicate {
                        first: first.clone(),
                    },
                });
                continue;
            }
            loaded.origins.insert(id, file.clone());
            loaded.snapshot.insert(object);
        }
    }
    loaded
}

/// Parses one file: its good objects, its problems, and its documents of other kinds.
pub fn parse_file(
    file: &Path,
    text: &str,
    validator: &ManifestValidator,
) -> (Vec<Object>, Vec<Problem>, Vec<Ignored>) {
    parse_file_of(file, text, validator, &Filter::default())
}

/// [`parse_file`] keeping only the documents `filter` keeps: the others are skipped before
/// they are validated or typed (neither objects nor problems nor ignored documents).
pub fn parse_file_of(
    file: &Path,
    text: &str,
    validator: &ManifestValidator,
    filter: &Filter,
) -> (Vec<Object>, Vec<Problem>, Vec<Ignored>) {
    let mut objects = Vec::new();
    let mut problems = Vec::new();
    let mut ignored = Vec::new();
    let parsed = super::json::documents(text).map_or_else(|| serde_saphyr::from_multiple(text), Ok);
    let documents: Vec<Value> = match parsed {
        Ok(documents) => documents,
        Err(e) => {
            problems.push(Problem {
                file: file.to_path_buf(),
                object: None,
                error: ManifestError::Yaml(e),
            });
            return (objects, problems, ignored);
        }
    };
    for document in documents {
        let type_meta = |name| document.get(name).and_then(Value::as_str);
        let (Some(api_version), Some(kind_name)) = (type_meta("apiVersion"), type_meta("kind"))
        else {
            problems.push(Problem {
                file: file.to_path_buf(),
                object: None,
                error: ManifestError::NoTypeMeta,
            });
            continue;
        };
        let Some(kind) = Kind::from_type(api_version, kind_name) else {
            ignored.push(Ignored {
                file: file.to_path_buf(),
                api_version: api_version.to_owned(),
                kind: kind_name.to_owned(),
            });
            continue;
        };
        let key = document_key(kind, &document);
        if !filter.keeps(kind, &key) {
            continue;
        }
        match to_object(kind, document, validator) {
            Ok(object) => objects.push(object),
            Err(error) => problems.push(Problem {
                file: file.to_path_buf(),
                object: Some((kind, key)),
                error,
            }),
        }
    }
    (objects, problems, ignored)
}

/// The key a document names, read leniently (it may be invalid).
fn document_key(kind: Kind, document: &Value) -> Key {
    let text = |name| {
        document
            .get("metadata")
            .and_then(|m| m.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let meta = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        name: text("name"),
        namespace: text("namespace"),
        ..Default::default()
    };
    key_of(kind, &meta)
}

/// Validates a document of `kind` (the CRD schema, or the fields the daemons read of a core
/// Node) and types it; shared with the Kubernetes source, so both accept the same objects.
pub(crate) fn to_object(
    kind: Kind,
    document: Value,
    validator: &ManifestValidator,
) -> Result<Object, ManifestError> {
    if kind == Kind::Node {
        check_node(&document).map_err(ManifestError::Invalid)?;
    } else {
        validator
            .validate(&document)
            .map_err(ManifestError::Invalid)?;
    }
    let typed = |e| ManifestError::Type { kind, source: e };
    Ok(match kind {
        Kind::Configuration => {
            Object::Configuration(serde_json::from_value(document).map_err(typed)?)
        }
        Kind::GatewayServer => {
            Object::GatewayServer(serde_json::from_value(document).map_err(typed)?)
        }
        Kind::GatewayClient => {
            Object::GatewayClient(serde_json::from_value(document).map_err(typed)?)
        }
        Kind::PublicKey => Object::PublicKey(serde_json::from_value(document).map_err(typed)?),
        Kind::InternalNode => {
            Object::InternalNode(serde_json::from_value(document).map_err(typed)?)
        }
        Kind::InternalFabric => {
            Object::InternalFabric(serde_json::from_value(document).map_err(typed)?)
        }
        Kind::Ip => Object::Ip(serde_json::from_value(document).map_err(typed)?),
        Kind::Node => Object::Node(serde_json::from_value(document).map_err(typed)?),
    })
}

/// Core Nodes have no CRD schema here: check the fields the daemons read (name, addresses,
/// pod CIDRs), naming each bad field.
fn check_node(document: &Value) -> Result<(), Violations> {
    let mut violations = Vec::new();
    let mut bad = |field: String, message: &str| {
        violations.push(Violation {
            field,
            message: message.to_owned(),
        });
    };
    if document
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_none()
    {
        bad(
            "metadata.name".to_owned(),
            "Required value: name is required",
        );
    }
    let cidr_ok = |v: &Value| v.as_str().is_some_and(|s| s.parse::<IpNet>().is_ok());
    if let Some(cidr) = document.pointer("/spec/podCIDR")
        && !cidr_ok(cidr)
    {
        bad(
            "spec.podCIDR".to_owned(),
            "must be a CIDR such as 10.0.1.0/24",
        );
    }
    match document.pointer("/spec/podCIDRs") {
        None => {}
        Some(Value::Array(cidrs)) => {
            for (i, cidr) in cidrs.iter().enumerate() {
                if !cidr_ok(cidr) {
                    bad(
                        format!("spec.podCIDRs[{i}]"),
                        "must be a CIDR such as 10.0.1.0/24",
                    );
                }
            }
        }
        Some(_) => bad("spec.podCIDRs".to_owned(), "must be a list of CIDRs"),
    }
    match document.pointer("/status/addresses") {
        None => {}
        Some(Value::Array(addresses)) => {
            for (i, address) in addresses.iter().enumerate() {
                let kind = address.get("type").and_then(Value::as_str);
                if kind.is_none() {
                    bad(
                        format!("status.addresses[{i}].type"),
                        "Required value: an address type such as InternalIP",
                    );
                }
                let text = address.get("address").and_then(Value::as_str);
                let is_ip_kind = matches!(kind, Some("InternalIP" | "ExternalIP"));
                match text {
                    None => bad(
                        format!("status.addresses[{i}].address"),
                        "Required value: an address",
                    ),
                    Some(t) if is_ip_kind && t.parse::<IpAddr>().is_err() => bad(
                        format!("status.addresses[{i}].address"),
                        "must be an IPv4 or IPv6 address",
                    ),
                    Some(_) => {}
                }
            }
        }
        Some(_) => bad(
            "status.addresses".to_owned(),
            "must be a list of {type, address}",
        ),
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Violations(violations))
    }
}
