//! Client-side validation of manifests against the generated CRDs, as an apiserver would do
//! before accepting them: the `OpenAPI` v3 schema (types, formats, ranges, enums, required and
//! unknown fields) with the `jsonschema` crate, then the CEL rules (`x-kubernetes-validations`)
//! with kube's CEL evaluator (`kube::core::cel`, the `kube-cel` crate with the Kubernetes CEL
//! libraries such as `isIP`). Every violation names the field path it concerns.
//!
//! The `OpenAPI` subset Kubernetes uses differs from JSON Schema in a few places, translated
//! before compiling: `nullable: true` becomes a `null` type alternative; objects with
//! `properties` and without `x-kubernetes-preserve-unknown-fields` reject unknown fields (as
//! `kubectl apply` does with its default strict field validation); the formats the apiserver
//! checks and JSON Schema lacks (`cidr`, `byte`) are registered. The root accepts `apiVersion`,
//! `kind` and `metadata`, which CRD schemas leave implicit.

use std::{collections::BTreeMap, fmt};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::cel;
use serde_json::{Map, Value, json};

/// One reason a manifest is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Dotted path of the offending field (`spec.endpoint.port`), empty for the whole object.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Every reason a manifest is refused (never empty).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Violations(pub Vec<Violation>);

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, violation) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            violation.fmt(f)?;
        }
        Ok(())
    }
}

/// A CRD schema that cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The CRD has no `openAPIV3Schema`.
    #[error("CRD {crd} version {version} has no openAPIV3Schema")]
    Missing {
        /// CRD name.
        crd: String,
        /// Version name.
        version: String,
    },
    /// A YAML document is not a `CustomResourceDefinition`.
    #[error("not a CustomResourceDefinition: {message}")]
    Yaml {
        /// What the parser said.
        message: String,
    },
    /// The translated schema is not valid JSON Schema.
    #[error("CRD {crd} version {version}: invalid schema: {message}")]
    Invalid {
        /// CRD name.
        crd: String,
        /// Version name.
        version: String,
        /// What the compiler said.
        message: String,
    },
}

struct Compiled {
    /// The CEL rules (`x-kubernetes-validations`), compiled once: compiling them for every
    /// manifest cost more than the rest of the validation.
    rules: cel::CompiledSchema,
    json_schema: jsonschema::Validator,
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compiled").finish_non_exhaustive()
    }
}

/// Validates manifests of the kinds of a set of CRDs.
#[derive(Debug)]
pub struct ManifestValidator {
    /// (apiVersion, kind) -> compiled schema.
    kinds: BTreeMap<(String, String), Compiled>,
    cel: cel::Validator,
}

impl ManifestValidator {
    /// A validator for every CRD of this crate.
    pub fn for_api() -> Result<Self, SchemaError> {
        Self::new(&crate::crdgen::crds())
    }

    /// A validator for CRDs given as YAML documents (e.g. the files under `crds/`).
    pub fn from_yaml<'a>(docs: impl IntoIterator<Item = &'a str>) -> Result<Self, SchemaError> {
        let crds = docs
            .into_iter()
            .map(|doc| {
                serde_saphyr::from_str::<CustomResourceDefinition>(doc).map_err(|e| {
                    SchemaError::Yaml {
                        message: e.to_string(),
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(&crds)
    }

    /// A validator for the given CRDs (every served version).
    pub fn new(crds: &[CustomResourceDefinition]) -> Result<Self, SchemaError> {
        let mut kinds = BTreeMap::new();
        for crd in crds {
            let crd_name = crd.metadata.name.clone().unwrap_or_default();
            for version in &crd.spec.versions {
                let schema = version
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .ok_or_else(|| SchemaError::Missing {
                        crd: crd_name.clone(),
                        version: version.name.clone(),
                    })?;
                let openapi = serde_json::to_value(schema).expect("a schema serializes to JSON");
                let mut translated = to_json_schema(&openapi);
                allow_root_fields(&mut translated);
                let json_schema = jsonschema::draft4::options()
                    .should_validate_formats(true)
                    .with_format("cidr", |s: &str| s.parse::<ipnet::IpNet>().is_ok())
                    .with_format("ipv4", |s: &str| s.parse::<std::net::Ipv4Addr>().is_ok())
                    .with_format("ipv6", |s: &str| s.parse::<std::net::Ipv6Addr>().is_ok())
                    .with_format("byte", is_base64)
                    .build(&translated)
                    .map_err(|e| SchemaError::Invalid {
                        crd: crd_name.clone(),
                        version: version.name.clone(),
                        message: e.to_string(),
                    })?;
                let api_version = format!("{}/{}", crd.spec.group, version.name);
                kinds.insert(
                    (api_version, crd.spec.names.kind.clone()),
                    Compiled {
                        rules: cel::compile_schema(&openapi),
                        json_schema,
                    },
                );
            }
        }
        Ok(Self {
            kinds,
            cel: cel::Validator::new(),
        })
    }

    /// Validates a manifest being created.
    pub fn validate(&self, manifest: &Value) -> Result<(), Violations> {
        self.check(manifest, None)
    }

    /// Validates an update of `old` to `manifest` (also runs the `oldSelf` transition rules).
    pub fn validate_update(&self, manifest: &Value, old: &Value) -> Result<(), Violations> {
        self.check(manifest, Some(old))
    }

    fn check(&self, manifest: &Value, old: Option<&Value>) -> Result<(), Violations> {
        let field_str = |name: &str| manifest.get(name).and_then(Value::as_str);
        let (Some(api_version), Some(kind)) = (field_str("apiVersion"), field_str("kind")) else {
            return Err(one("", "apiVersion and kind are required"));
        };
        let Some(compiled) = self.kinds.get(&(api_version.to_owned(), kind.to_owned())) else {
            return Err(one(
                "kind",
                &format!("unknown kind {kind} in {api_version}"),
            ));
        };
        let has_name = ["name", "generateName"]
            .iter()
            .any(|k| manifest.pointer(&format!("/metadata/{k}")).is_some());
        let mut violations = Vec::new();
        if !has_name {
            violations.push(violation(
                "metadata.name",
                "Required value: name or generateName is required",
            ));
        }
        violations.extend(
            compiled
                .json_schema
                .iter_errors(manifest)
                .map(|e| Violation {
                    field: dotted(e.instance_path().as_str()),
                    message: e.to_string(),
                }),
        );
        if violations.is_empty()
            && let Err(errors) = self.cel.validate_compiled(&compiled.rules, manifest, old)
        {
            violations.extend(errors.into_vec().into_iter().map(|e| Violation {
                field: e.field_path.clone(),
                message: e.message.clone(),
            }));
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Violations(violations))
        }
    }
}

fn violation(field: &str, message: &str) -> Violation {
    Violation {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

fn one(field: &str, message: &str) -> Violations {
    Violations(vec![violation(field, message)])
}

/// `/spec/endpoint/addresses/0` -> `spec.endpoint.addresses[0]`.
fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.bytes().all(|b| b.is_ascii_digit()) && !segment.is_empty() {
            out.push('[');
            out.push_str(&segment);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

/// Base64 as the apiserver's `byte` format accepts it (standard alphabet, padded).
fn is_base64(s: &str) -> bool {
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return false;
    }
    let body = s.trim_end_matches('=');
    bytes.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Translates a Kubernetes structural schema node into JSON Schema (draft 4).
fn to_json_schema(node: &Value) -> Value {
    let Value::Object(map) = node else {
        return node.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let translated = match key.as_str() {
            "properties" | "patternProperties" => Value::Object(
                value
                    .as_object()
                    .map(|props| {
                        props
                            .iter()
                            .map(|(k, v)| (k.clone(), to_json_schema(v)))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            "items" | "additionalProperties" | "not" => to_json_schema(value),
            "allOf" | "anyOf" | "oneOf" => Value::Array(
                value
                    .as_array()
                    .map(|list| list.iter().map(to_json_schema).collect())
                    .unwrap_or_default(),
            ),
            k if k.starts_with("x-kubernetes-") || k == "nullable" => continue,
            _ => value.clone(),
        };
        out.insert(key.clone(), translated);
    }
    if map.get("nullable") == Some(&Value::Bool(true))
        && let Some(Value::String(ty)) = map.get("type")
    {
        out.insert("type".into(), json!([ty, "null"]));
    }
    let preserves = map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if map.contains_key("properties") && !preserves && !map.contains_key("additionalProperties") {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// Lets the root carry `apiVersion`, `kind` and `metadata`.
fn allow_root_fields(schema: &mut Value) {
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props
            .entry("apiVersion")
            .or_insert_with(|| json!({ "type": "string" }));
        props
            .entry("kind")
            .or_insert_with(|| json!({ "type": "string" }));
        props
            .entry("metadata")
            .or_insert_with(|| json!({ "type": "object" }));
    }
}
