//! The committed `crds/` match the Rust types, and the CRDs carry Liqo's names, scopes,
//! categories and `kubectl get` columns.

mod common;

use clusterwire_api::crdgen;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

#[test]
fn committed_crds_are_fresh() {
    let generated = crdgen::render().expect("every CRD renders");
    let committed = common::committed_crds();
    for (name, yaml) in &generated {
        match committed.iter().find(|(n, _)| n == name) {
            None => panic!("crds/{name} is missing: run `cargo xtask crdgen`"),
            Some((_, text)) if text != yaml => {
                let line = text
                    .lines()
                    .zip(yaml.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or_else(|| text.lines().count().min(yaml.lines().count()));
                panic!(
                    "crds/{name} is stale (first difference at line {}): run `cargo xtask crdgen`",
                    line + 1
                );
            }
            Some(_) => {}
        }
    }
    for (name, text) in &committed {
        let ours = text.starts_with(crdgen::HEADER);
        assert!(
            !ours || generated.iter().any(|(n, _)| n == name),
            "crds/{name} no longer corresponds to a type: run `cargo xtask crdgen`"
        );
    }
}

#[cfg(feature = "validation")]
#[test]
fn committed_crds_compile_into_a_validator() {
    // Panics with the parse or compile error if any committed file is not a usable CRD.
    let validator = common::validator();
    let unknown = serde_json::json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "Nonexistent",
        "metadata": { "name": "x" }
    });
    let err = validator
        .validate(&unknown)
        .expect_err("unknown kinds are refused");
    assert_eq!(
        err.to_string(),
        "kind: unknown kind Nonexistent in networking.liqo.io/v1beta1"
    );
}

/// (kind, group/version, plural, short names, namespaced, printer columns as
/// "NAME=jsonPath[@priority]").
type Expected = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    bool,
    &'static [&'static str],
);

const AGE: &str = "Age=.metadata.creationTimestamp";

const EXPECTED: &[Expected] = &[
    (
        "Configuration",
        "networking.liqo.io/v1beta1",
        "configurations",
        &["conf"],
        true,
        &[
            "Desired Pod CIDR=.spec.remote.cidr.pod",
            "Remapped Pod CIDR=.status.remote.cidr.pod",
            AGE,
            "Desired External CIDR=.spec.remote.cidr.external@1",
            "Remapped External CIDR=.status.remote.cidr.external@1",
            "ClusterID=.metadata.labels.liqo\\.io/remote-cluster-id@1",
        ],
    ),
    (
        "GatewayServer",
        "networking.liqo.io/v1beta1",
        "gatewayservers",
        &["gws", "gwserver"],
        true,
        &[
            "Template Kind=.spec.serverTemplateRef.kind@1",
            "Template Name=.spec.serverTemplateRef.name",
            "Template Namespace=.spec.serverTemplateRef.namespace@1",
            "IP=.status.endpoint.addresses[*]",
            "Port=.status.endpoint.port",
            "Protocol=.status.endpoint.protocol@1",
            "MTU=.spec.mtu@1",
            AGE,
        ],
    ),
    (
        "GatewayClient",
        "networking.liqo.io/v1beta1",
        "gatewayclients",
        &["gwc", "gwclient"],
        true,
        &[
            "Template Kind=.spec.clientTemplateRef.kind@1",
            "Template Name=.spec.clientTemplateRef.name",
            "Template Namespace=.spec.clientTemplateRef.namespace@1",
            "IP=.spec.endpoint.addresses[*]",
            "Port=.spec.endpoint.port",
            "Protocol=.spec.endpoint.protocol@1",
            "MTU=.spec.mtu@1",
            AGE,
        ],
    ),
    (
        "Connection",
        "networking.liqo.io/v1beta1",
        "connections",
        &["conn"],
        true,
        &[
            "Type=.spec.type",
            "Status=.status.value",
            AGE,
            "Latency=.status.latency.value@1",
        ],
    ),
    (
        "PublicKey",
        "networking.liqo.io/v1beta1",
        "publickeies",
        &["pk", "pkies", "pkey"],
        true,
        &[],
    ),
    (
        "WgGatewayServerTemplate",
        "networking.liqo.io/v1beta1",
        "wggatewayservertemplates",
        &["wggst", "wgst"],
        true,
        &[],
    ),
    (
        "WgGatewayClientTemplate",
        "networking.liqo.io/v1beta1",
        "wggatewayclienttemplates",
        &["wggct", "wgct"],
        true,
        &[],
    ),
    (
        "InternalNode",
        "networking.liqo.io/v1beta1",
        "internalnodes",
        &["in", "inode"],
        false,
        &[
            "Node IP Local=.status.nodeIP.local",
            "Node IP Remote=.status.nodeIP.remote",
            AGE,
        ],
    ),
    (
        "InternalFabric",
        "networking.liqo.io/v1beta1",
        "internalfabrics",
        &["if", "ifabric"],
        true,
        &["Gateway IP=.spec.gatewayIP", AGE],
    ),
    (
        "IP",
        "ipam.liqo.io/v1alpha1",
        "ips",
        &[],
        true,
        &[
            "Local IP=.spec.ip",
            "Remapped IP=.status.ip",
            "Remapped IP CIDR=.status.cidr",
            AGE,
        ],
    ),
    (
        "Network",
        "ipam.liqo.io/v1alpha1",
        "networks",
        &[],
        true,
        &["Desired CIDR=.spec.cidr", "Remapped CIDR=.status.cidr", AGE],
    ),
];

fn columns(crd: &CustomResourceDefinition) -> Vec<String> {
    crd.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| match c.priority {
            Some(p) if p > 0 => format!("{}={}@{p}", c.name, c.json_path),
            _ => format!("{}={}", c.name, c.json_path),
        })
        .collect()
}

#[test]
fn names_scopes_categories_and_columns_match_liqo() {
    let crds = crdgen::crds();
    assert_eq!(crds.len(), EXPECTED.len(), "one CRD per expected kind");
    for &(kind, api_version, plural, short, namespaced, cols) in EXPECTED {
        let crd = crds
            .iter()
            .find(|c| c.spec.names.kind == kind)
            .unwrap_or_else(|| panic!("no CRD for {kind}"));
        let version = &crd.spec.versions[0];
        assert_eq!(
            format!("{}/{}", crd.spec.group, version.name),
            api_version,
            "{kind}"
        );
        assert_eq!(crd.spec.names.plural, plural, "{kind} plural");
        assert_eq!(
            crd.spec.names.short_names.clone().unwrap_or_default(),
            short,
            "{kind} short names"
        );
        assert_eq!(
            crd.spec.scope,
            if namespaced { "Namespaced" } else { "Cluster" },
            "{kind} scope"
        );
        assert_eq!(
            crd.spec.names.categories.clone().unwrap_or_default(),
            ["liqo"],
            "{kind} categories"
        );
        assert_eq!(columns(crd), cols, "{kind} printer columns");
    }
}

#[test]
fn statuses_have_list_map_conditions_and_observed_generation() {
    for crd in crdgen::crds() {
        let kind = &crd.spec.names.kind;
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
        let Some(status) = schema.pointer("/openAPIV3Schema/properties/status/properties") else {
            continue;
        };
        let conditions = &status["conditions"];
        assert_eq!(
            conditions["x-kubernetes-list-type"], "map",
            "{kind}: conditions list type"
        );
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"]),
            "{kind}"
        );
        assert_eq!(
            status["observedGeneration"]["type"], "integer",
            "{kind}: observedGeneration"
        );
    }
}
