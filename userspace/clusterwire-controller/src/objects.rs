//! The objects of a gateway, from its rendered template.
//!
//! The template has the reference's shape (what Liqo's `WgGatewayServerTemplate` renders into
//! a `WgGatewayServer`): `spec.deployment.{metadata,spec}`, `spec.service.{metadata,spec}`
//! (servers). clusterwire has no intermediate `WgGatewayServer` resource: the controller turns
//! the rendered template straight into Deployment and Service `gw-<name>` in the gateway's
//! namespace and the `ServiceAccount` the pod template names, each owned by the gateway
//! (controller reference, so they go with it) and labelled with the remote cluster id (the
//! Deployment's pod template too). Every object is checked to deserialize into its k8s-openapi
//! type.

use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        core::v1::{Service, ServiceAccount},
    },
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use serde_json::{Map, Value, json};

use crate::template::TemplateError;

/// The objects rendered for one gateway, as full JSON objects ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayObjects {
    /// The `ServiceAccount` the pod runs as, if the pod template names one.
    pub service_account: Option<(String, Value)>,
    /// Deployment `gw-<name>`.
    pub deployment: (String, Value),
    /// Service `gw-<name>`, if the template has one.
    pub service: Option<(String, Value)>,
}

impl GatewayObjects {
    /// Every object as one JSON list (service account, deployment, service).
    pub fn to_list(&self) -> Value {
        let mut list = Vec::new();
        list.extend(self.service_account.iter().map(|(_, v)| v.clone()));
        list.push(self.deployment.1.clone());
        list.extend(self.service.iter().map(|(_, v)| v.clone()));
        Value::Array(list)
    }
}

/// The name of a gateway's Deployment, Service and key Secret.
pub fn resource_name(gateway: &str) -> String {
    format!("gw-{gateway}")
}

/// What every object gets: namespace, owner, the remote cluster id label.
#[derive(Debug, Clone)]
pub struct Common<'a> {
    /// The gateway's namespace.
    pub namespace: &'a str,
    /// The gateway as owner.
    pub owner: &'a OwnerReference,
    /// Labels every object carries (the remote cluster id).
    pub labels: &'a Map<String, Value>,
}

fn metadata(name: &str, template_meta: Option<&Value>, common: &Common<'_>) -> Value {
    let mut labels = template_meta
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.extend(common.labels.clone());
    let mut meta = json!({
        "name": name,
        "namespace": common.namespace,
        "labels": labels,
        "ownerReferences": [common.owner],
    });
    if let Some(annotations) = template_meta.and_then(|m| m.get("annotations")) {
        meta["annotations"] = annotations.clone();
    }
    meta
}

fn check<K: serde::de::DeserializeOwned>(
    kind: &'static str,
    value: &Value,
) -> Result<(), TemplateError> {
    serde_json::from_value::<K>(value.clone())
        .map(drop)
        .map_err(|source| TemplateError::Object { kind, source })
}

/// Builds the gateway's objects from its rendered template.
pub fn build(
    rendered: &Value,
    gateway: &str,
    common: &Common<'_>,
) -> Result<GatewayObjects, TemplateError> {
    let name = resource_name(gateway);
    let spec = rendered
        .get("spec")
        .ok_or(TemplateError::Missing { field: "spec" })?;
    let deploy = spec.get("deployment").ok_or(TemplateError::Missing {
        field: "spec.deployment",
    })?;
    let deploy_spec = deploy.get("spec").ok_or(TemplateError::Missing {
        field: "spec.deployment.spec",
    })?;
    // The pods carry the labels too: the controller watches the gateways' pods by them.
    let mut deploy_spec = deploy_spec.clone();
    if let Some(template) = deploy_spec
        .get_mut("template")
        .and_then(Value::as_object_mut)
    {
        let meta = template.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.extend(common.labels.clone());
            }
        }
    }
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(&name, deploy.get("metadata"), common),
        "spec": deploy_spec,
    });
    check::<Deployment>("Deployment", &deployment)?;

    let service = match spec.get("service") {
        Some(svc) => {
            let svc_spec = svc.get("spec").ok_or(TemplateError::Missing {
                field: "spec.service.spec",
            })?;
            let service = json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": metadata(&name, svc.get("metadata"), common),
                "spec": svc_spec,
            });
            check::<Service>("Service", &service)?;
            Some((name.clone(), service))
        }
        None => None,
    };

    let account = deploy_spec
        .pointer("/template/spec/serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let service_account = match account {
        Some(account) => {
            let object = json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": metadata(account, None, common),
            });
            check::<ServiceAccount>("ServiceAccount", &object)?;
            Some((account.to_owned(), object))
        }
        None => None,
    };
    Ok(GatewayObjects {
        service_account,
        deployment: (name, deployment),
        service,
    })
}
