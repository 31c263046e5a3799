//! Gateway template rendering, with the reference's semantics (Liqo's `RenderTemplate`):
//!
//! - every string value is a template over the data `.Spec`, `.Name`, `.Namespace`,
//!   `.GatewayUID`, `.ClusterID`, `.SecretName` ([`TemplateData`]); `{{ .Spec.Endpoint.Port }}`
//!   walks the gateway's spec, matching each field name case-insensitively (the reference's
//!   templates use Go field names, `LoadBalancerIP`, our JSON has `loadBalancerIP`);
//! - a rendered string that is a decimal integer becomes a number (`port: "{{ .Spec.Endpoint.Port }}"`
//!   gives `port: 51840`), except inside a map that has a `labels` or `annotations` key (object
//!   metadata), where every value stays a string;
//! - a key starting with `?` (`?nodePort: "{{ .Spec.Endpoint.NodePort }}"`) loses its `?` and is
//!   kept only when the value's first variable is set and the result is not empty or zero.
//!
//! Supported actions: `{{ .Path }}`, `{{ if .Path }}`, `{{ else }}`, `{{ end }}` (nestable). A
//! missing or null value renders as the empty string (Go prints `<no value>`/`<nil>`). Anything
//! else (functions, pipelines) is refused with [`TemplateError::Unsupported`], naming the action.

use serde::Serialize;
use serde_json::{Map, Value};

/// Why a template cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// An action is not closed, or `if`/`else`/`end` do not balance.
    #[error("syntax error in {text:?}: {reason}")]
    Syntax {
        /// The template string.
        text: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An action this renderer does not implement.
    #[error("unsupported action {{{{{action}}}}} (only .Path, if, else, end)")]
    Unsupported {
        /// The action's text.
        action: String,
    },
    /// A `?` key whose value is not a string with a variable.
    #[error("optional key {key:?} needs a string value containing a {{{{ .Variable }}}}")]
    Optional {
        /// The key.
        key: String,
    },
    /// The rendered template lacks a field the gateway needs.
    #[error("rendered template has no {field}")]
    Missing {
        /// The missing field.
        field: &'static str,
    },
    /// A rendered object is not a valid object of its kind.
    #[error("rendered {kind} is invalid: {source}")]
    Object {
        /// The kind (Deployment, Service, ...).
        kind: &'static str,
        /// The deserialization error.
        #[source]
        source: serde_json::Error,
    },
}

/// The variables a gateway template sees (names as in the reference).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TemplateData {
    /// The gateway's spec.
    pub spec: Value,
    /// The gateway's name.
    pub name: String,
    /// The gateway's namespace.
    pub namespace: String,
    /// The gateway's UID.
    #[serde(rename = "GatewayUID")]
    pub gateway_uid: String,
    /// The remote cluster id (label `liqo.io/remote-cluster-id`).
    #[serde(rename = "ClusterID")]
    pub cluster_id: String,
    /// The Secret holding the gateway's keys.
    pub secret_name: String,
}

/// Renders a template object with `data`.
pub fn render(template: &Map<String, Value>, data: &TemplateData) -> Result<Value, TemplateError> {
    let data = serde_json::to_value(data).unwrap_or(Value::Null);
    render_map(template, &data, false).map(Value::Object)
}

fn render_value(value: &Value, data: &Value, force_string: bool) -> Result<Value, TemplateError> {
    Ok(match value {
        Value::String(text) => {
            let rendered = render_str(text, data)?;
            match rendered.parse::<i64>() {
                Ok(n) if !force_string => Value::from(n),
                _ => Value::String(rendered),
            }
        }
        Value::Object(map) => Value::Object(render_map(map, data, force_string)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(v, data, force_string))
                .collect::<Result<_, _>>()?,
        ),
        Value::Null if force_string => Value::String(String::new()),
        Value::Bool(_) | Value::Number(_) if force_string => Value::String(value.to_string()),
        other => other.clone(),
    })
}

fn render_map(
    map: &Map<String, Value>,
    data: &Value,
    force_string: bool,
) -> Result<Map<String, Value>, TemplateError> {
    let force = force_string || map.contains_key("labels") || map.contains_key("annotations");
    let mut out = Map::new();
    for (key, value) in map {
        if let Some(bare) = key.strip_prefix('?') {
            let variable = value.as_str().and_then(first_variable);
            let Some(variable) = variable else {
                return Err(TemplateError::Optional { key: key.clone() });
            };
            if !truthy(&lookup(data, &variable)) {
                continue;
            }
            let rendered = render_value(value, data, force)?;
            if !is_zero(&rendered) {
                out.insert(bare.to_owned(), rendered);
            }
        } else {
            out.insert(key.clone(), render_value(value, data, force)?);
        }
    }
    Ok(out)
}

/// The path of the first `{{ .Path }}` in `text`.
fn first_variable(text: &str) -> Option<String> {
    let start = text.find("{{")? + 2;
    let end = text[start..].find("}}")? + start;
    let action = text[start..end].trim();
    let word = action.split_whitespace().find(|w| w.starts_with('.'))?;
    Some(word.to_owned())
}

enum Token<'a> {
    Text(&'a str),
    Print(&'a str),
    If(&'a str),
    Else,
    End,
}

fn tokenize(text: &str) -> Result<Vec<Token<'_>>, TemplateError> {
    let mut tokens = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            tokens.push(Token::Text(&rest[..open]));
        }
        let Some(close) = rest[open..].find("}}") else {
            return Err(TemplateError::Syntax {
                text: text.to_owned(),
                reason: "unclosed {{",
            });
        };
        let action = rest[open + 2..open + close].trim();
        let mut words = action.split_whitespace();
        tokens.push(match (words.next(), words.next(), words.next()) {
            (Some(path), None, None) if path.starts_with('.') => Token::Print(path),
            (Some("if"), Some(path), None) if path.starts_with('.') => Token::If(path),
            (Some("else"), None, None) => Token::Else,
            (Some("end"), None, None) => Token::End,
            _ => {
                return Err(TemplateError::Unsupported {
                    action: action.to_owned(),
                });
            }
        });
        rest = &rest[open + close + 2..];
    }
    if !rest.is_empty() {
        tokens.push(Token::Text(rest));
    }
    Ok(tokens)
}

fn render_str(text: &str, data: &Value) -> Result<String, TemplateError> {
    let tokens = tokenize(text)?;
    let mut out = String::new();
    // Per open `if`: (whether its branch is taken, whether an `else` was seen).
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let syntax = |reason| TemplateError::Syntax {
        text: text.to_owned(),
        reason,
    };
    for token in tokens {
        let active = stack.iter().all(|(taken, _)| *taken);
        match token {
            Token::Text(t) if active => out.push_str(t),
            Token::Print(path) if active => out.push_str(&print(&lookup(data, path))),
            Token::Text(_) | Token::Print(_) => {}
            Token::If(path) => stack.push((truthy(&lookup(data, path)), false)),
            Token::Else => match stack.last_mut() {
                Some((taken, seen @ false)) => {
                    *taken = !*taken;
                    *seen = true;
                }
                _ => return Err(syntax("else without if")),
            },
            Token::End => {
                stack.pop().ok_or_else(|| syntax("end without if"))?;
            }
        }
    }
    if stack.is_empty() {
        Ok(out)
    } else {
        Err(syntax("if without end"))
    }
}

/// The value at `.A.B.C`, each name matched exactly or else case-insensitively.
fn lookup(data: &Value, path: &str) -> Value {
    let mut current = data;
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        let Value::Object(map) = current else {
            return Value::Null;
        };
        let found = map.get(segment).or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(segment))
                .map(|(_, v)| v)
        });
        match found {
            Some(v) => current = v,
            None => return Value::Null,
        }
    }
    current.clone()
}

/// Go's `%v` for scalars and lists (`[a b]`); objects print as JSON.
fn print(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(print).collect::<Vec<_>>().join(" ")
        ),
        other => other.to_string(),
    }
}

fn truthy(value: &Value) -> bool {
    !is_zero(value)
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{TemplateData, TemplateError, render};

    fn data() -> TemplateData {
        TemplateData {
            spec: json!({"endpoint": {"port": 51840, "serviceType": "NodePort"}, "mtu": 1340}),
            name: "cl02".into(),
            namespace: "liqo-tenant-cl02".into(),
            gateway_uid: "uid-1".into(),
            cluster_id: "cl02".into(),
            secret_name: "gw-cl02".into(),
        }
    }

    fn run(template: Value) -> Result<Value, TemplateError> {
        let Value::Object(map) = template else {
            panic!("object")
        };
        render(&map, &data())
    }

    #[test]
    fn variables_numbers_and_optional_keys() {
        let out = run(json!({
            "metadata": {"name": "gw-{{ .Name }}", "labels": {"port": "{{ .Spec.Endpoint.Port }}"}},
            "spec": {
                "port": "{{ .Spec.Endpoint.Port }}",
                "mtu": "{{ .Spec.MTU }}",
                "?nodePort": "{{ .Spec.Endpoint.NodePort }}",
                "?type": "{{ .Spec.Endpoint.ServiceType }}",
                "mode": "{{ if .Spec.Endpoint.NodePort }}fixed{{ else }}any{{ end }}",
                "args": ["--uid={{ .GatewayUID }}", "--id={{.ClusterID}}"]
            }
        }))
        .expect("renders");
        assert_eq!(
            out,
            json!({
                "metadata": {"name": "gw-cl02", "labels": {"port": "51840"}},
                "spec": {"port": 51840, "mtu": 1340, "type": "NodePort", "mode": "any",
                         "args": ["--uid=uid-1", "--id=cl02"]}
            })
        );
    }

    #[test]
    fn refuses_what_it_cannot_render() {
        assert!(matches!(
            run(json!({"a": "{{ .Name"})),
            Err(TemplateError::Syntax { .. })
        ));
        assert!(matches!(
            run(json!({"a": "{{ len .Spec }}"})),
            Err(TemplateError::Unsupported { .. })
        ));
        assert!(matches!(
            run(json!({"?a": "fixed"})),
            Err(TemplateError::Optional { .. })
        ));
        assert!(matches!(
            run(json!({"a": "{{ end }}"})),
            Err(TemplateError::Syntax { .. })
        ));
        assert!(matches!(
            run(json!({"a": "{{ if .Name }}x"})),
            Err(TemplateError::Syntax { .. })
        ));
    }
}
