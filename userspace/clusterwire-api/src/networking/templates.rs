//! `WgGatewayServerTemplate` (`wggst`, `wgst`) and `WgGatewayClientTemplate` (`wggct`, `wgct`):
//! objects (Deployment, Service, ...) rendered for each gateway.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Kind of the object a template renders.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateObjectKind {
    /// API version of the rendered object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the rendered object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A free-form object template (kept as written; variables such as `{{ .Name }}` are rendered
/// per gateway, and keys starting with `?` are kept only when they render non-empty).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FreeForm(pub serde_json::Map<String, serde_json::Value>);

impl JsonSchema for FreeForm {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FreeForm".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
    }
}

/// A template for a WireGuard gateway server.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "WgGatewayServerTemplate",
    namespaced,
    shortname = "wggst",
    shortname = "wgst",
    category = "liqo",
    derive = "PartialEq",
    derive = "Default",
    doc = "A template for a WireGuard gateway server."
)]
#[serde(rename_all = "camelCase")]
pub struct WgGatewayServerTemplateSpec {
    /// Kind of the rendered object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_kind: Option<TemplateObjectKind>,
    /// The object template.
    #[serde(default)]
    pub template: FreeForm,
}

/// A template for a WireGuard gateway client.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "WgGatewayClientTemplate",
    namespaced,
    shortname = "wggct",
    shortname = "wgct",
    category = "liqo",
    derive = "PartialEq",
    derive = "Default",
    doc = "A template for a WireGuard gateway client."
)]
#[serde(rename_all = "camelCase")]
pub struct WgGatewayClientTemplateSpec {
    /// Kind of the rendered object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_kind: Option<TemplateObjectKind>,
    /// The object template.
    #[serde(default)]
    pub template: FreeForm,
}
