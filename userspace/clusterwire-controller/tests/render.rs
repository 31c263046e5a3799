//! Golden tests of template rendering: the templates under `testdata/` rendered for a fixed
//! gateway must give exactly the objects in the matching `*-objects.json` (regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p clusterwire-controller --test render` and review the diff).

use std::path::PathBuf;

use clusterwire_api::networking::{
    GatewayClient, GatewayServer, WgGatewayClientTemplate, WgGatewayServerTemplate,
};
use clusterwire_controller::{
    objects::{self, Common},
    template::{TemplateData, TemplateError, render},
};
use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        core::v1::{Service, ServiceAccount},
    },
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use serde_json::{Map, Value, json};

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/testdata")
        .join(name)
}

fn read(name: &str) -> Value {
    let text = std::fs::read_to_string(testdata(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn owner(kind: &str) -> OwnerReference {
    OwnerReference {
        api_version: "networking.liqo.io/v1beta1".into(),
        kind: kind.into(),
        name: "cl02".into(),
        uid: "7f1c2a9e-0000-4000-8000-000000000002".into(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

fn data(spec: Value) -> TemplateData {
    TemplateData {
        spec,
        name: "cl02".into(),
        namespace: "liqo-tenant-cl02".into(),
        gateway_uid: "7f1c2a9e-0000-4000-8000-000000000002".into(),
        cluster_id: "cl02".into(),
        secret_name: "gw-cl02".into(),
    }
}

fn golden(name: &str, actual: &Value) {
    let path = testdata(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(actual).expect("json") + "\n";
        std::fs::write(&path, text).expect("write golden file");
    }
    let expected = read(name);
    assert_eq!(
        actual,
        &expected,
        "{} differs; got:\n{}",
        path.display(),
        serde_json::to_string_pretty(actual).expect("json")
    );
}

fn render_objects(template: &Map<String, Value>, kind: &str, spec: Value) -> Value {
    let rendered = render(template, &data(spec)).expect("renders");
    let labels: Map<String, Value> = [("liqo.io/remote-cluster-id".to_owned(), json!("cl02"))]
        .into_iter()
        .collect();
    let owner = owner(kind);
    let common = Common {
        namespace: "liqo-tenant-cl02",
        owner: &owner,
        labels: &labels,
    };
    let objects = objects::build(&rendered, "cl02", &common).expect("builds objects");
    objects.to_list()
}

fn assert_typed(list: &Value) {
    for object in list.as_array().expect("list") {
        let result = match object["kind"].as_str() {
            Some("Deployment") => serde_json::from_value::<Deployment>(object.clone()).map(drop),
            Some("Service") => serde_json::from_value::<Service>(object.clone()).map(drop),
            Some("ServiceAccount") => {
                serde_json::from_value::<ServiceAccount>(object.clone()).map(drop)
            }
            other => panic!("unexpected kind {other:?}"),
        };
        result.unwrap_or_else(|e| panic!("{} does not deserialize: {e}", object["kind"]));
    }
}

#[test]
fn server_template_nodeport_without_optional_fields() {
    let template: WgGatewayServerTemplate =
        serde_json::from_value(read("server-template.json")).expect("template type");
    let gws: GatewayServer = serde_json::from_value(json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "GatewayServer",
        "metadata": {"name": "cl02", "namespace": "liqo-tenant-cl02"},
        "spec": {"endpoint": {"port": 51840, "serviceType": "NodePort"}, "mtu": 1340,
                 "secretRef": {"name": "gw-cl02"}}
    }))
    .expect("gateway type");
    let spec = serde_json::to_value(&gws.spec).expect("json");
    let list = render_objects(&template.spec.template.0, "GatewayServer", spec);
    golden("server-objects.json", &list);
    assert_typed(&list);
}

#[test]
fn server_template_loadbalancer_with_optional_fields() {
    let template: WgGatewayServerTemplate =
        serde_json::from_value(read("server-template.json")).expect("template type");
    let gws: GatewayServer = serde_json::from_value(json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "GatewayServer",
        "metadata": {"name": "cl02", "namespace": "liqo-tenant-cl02"},
        "spec": {"endpoint": {"port": 51840, "serviceType": "LoadBalancer", "nodePort": 31840,
                              "loadBalancerIP": "198.18.0.10"}, "mtu": 1340,
                 "secretRef": {"name": "gw-cl02"}}
    }))
    .expect("gateway type");
    let spec = serde_json::to_value(&gws.spec).expect("json");
    let list = render_objects(&template.spec.template.0, "GatewayServer", spec);
    golden("server-objects-loadbalancer.json", &list);
    assert_typed(&list);
}

#[test]
fn client_template() {
    let template: WgGatewayClientTemplate =
        serde_json::from_value(read("client-template.json")).expect("template type");
    let gwc: GatewayClient = serde_json::from_value(json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "GatewayClient",
        "metadata": {"name": "cl02", "namespace": "liqo-tenant-cl02"},
        "spec": {"endpoint": {"addresses": ["198.18.0.10"], "port": 31840, "protocol": "UDP"}, "mtu": 1340}
    }))
    .expect("gateway type");
    let spec = serde_json::to_value(&gwc.spec).expect("json");
    let list = render_objects(&template.spec.template.0, "GatewayClient", spec);
    golden("client-objects.json", &list);
    assert_typed(&list);
}

#[test]
fn a_template_whose_objects_are_invalid_is_refused() {
    let Value::Object(template) =
        json!({"spec": {"deployment": {"spec": {"replicas": "many {{ .Name }}"}}}})
    else {
        unreachable!()
    };
    let rendered = render(&template, &data(json!({}))).expect("renders");
    let labels = Map::new();
    let owner = owner("GatewayServer");
    let common = Common {
        namespace: "ns",
        owner: &owner,
        labels: &labels,
    };
    let err = objects::build(&rendered, "cl02", &common).expect_err("replicas is not a number");
    assert!(
        matches!(
            err,
            TemplateError::Object {
                kind: "Deployment",
                ..
            }
        ),
        "{err}"
    );
    let err = objects::build(&json!({"spec": {}}), "cl02", &common).expect_err("no deployment");
    assert!(
        matches!(
            err,
            TemplateError::Missing {
                field: "spec.deployment"
            }
        ),
        "{err}"
    );
}
