//! Every YAML example of seed 004 (Liqo's inter-cluster networking docs, placeholders filled)
//! validates against the generated CRD schemas and deserializes into the Rust types, with the
//! exact values it spells.
#![cfg(feature = "validation")]

mod common;

use clusterwire_api::{
    common::{Cidr, Ip},
    networking::{
        Configuration, GatewayClient, GatewayServer, PublicKey, gateway::Protocol,
        gatewayserver::ServerEndpoint,
    },
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/seed004/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

/// Validates the manifest, deserializes it, and checks the typed value serializes back to a
/// manifest that validates too.
fn accept<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let validator = common::validator();
    let manifest = load(name);
    if let Err(violations) = validator.validate(&manifest) {
        panic!("{name} must validate against the generated schema, got: {violations}");
    }
    let typed: T = serde_json::from_value(manifest)
        .unwrap_or_else(|e| panic!("{name} must deserialize into the Rust type: {e}"));
    let again = serde_json::to_value(&typed).expect("serializes");
    if let Err(violations) = validator.validate(&again) {
        panic!("{name} re-serialized must still validate, got: {violations}\n{again:#}");
    }
    typed
}

fn cidrs(list: &[&str]) -> Vec<Cidr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn configuration_with_scalar_cidrs() {
    let conf: Configuration = accept("configuration.yaml");
    assert_eq!(conf.metadata.name.as_deref(), Some("dry-paper"));
    let remote = &conf.spec.remote.cidr;
    assert_eq!(remote.pod.0, cidrs(&["10.243.0.0/16"]), "pod is one CIDR");
    assert_eq!(
        remote.external.as_ref().map(|e| e.0.clone()),
        Some(cidrs(&["10.70.0.0/16"]))
    );
    let json = serde_json::to_value(&conf.spec).unwrap();
    assert_eq!(
        json["remote"]["cidr"]["pod"],
        serde_json::json!(["10.243.0.0/16"]),
        "the scalar form must be normalized to a list"
    );
}

#[test]
fn gateway_server() {
    let gws: GatewayServer = accept("gatewayserver.yaml");
    let ServerEndpoint {
        port,
        ports,
        service_type,
        node_port,
        load_balancer_ip,
    } = &gws.spec.endpoint;
    assert_eq!(*port, Some(51840));
    assert_eq!(*ports, None);
    assert_eq!(format!("{service_type:?}"), "NodePort");
    assert_eq!((*node_port, *load_balancer_ip), (None, None));
    assert_eq!(gws.spec.mtu, Some(1340));
    let template = gws.spec.server_template_ref.as_ref().expect("template ref");
    assert_eq!(template.kind.as_deref(), Some("WgGatewayServerTemplate"));
    assert_eq!(template.name.as_deref(), Some("wireguard-server"));
    assert_eq!(template.namespace.as_deref(), Some("liqo"));
}

#[test]
fn gateway_client() {
    let gwc: GatewayClient = accept("gatewayclient.yaml");
    assert_eq!(gwc.spec.endpoint.addresses, ["172.19.0.9"]);
    assert_eq!(gwc.spec.endpoint.port, Some(32701));
    assert_eq!(gwc.spec.endpoint.protocol, Some(Protocol::UDP));
    assert_eq!(gwc.spec.mtu, Some(1340));
    assert_eq!(gwc.metadata.namespace.as_deref(), Some("default"));
}

#[test]
fn public_keys() {
    for name in ["publickey-client.yaml", "publickey-server.yaml"] {
        let pk: PublicKey = accept(name);
        assert_eq!(
            pk.spec.public_key,
            "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
        );
        let labels = pk.metadata.labels.expect("labels");
        assert_eq!(
            labels
                .get("networking.liqo.io/gateway-resource")
                .map(String::as_str),
            Some("true"),
            "{name}"
        );
    }
}

#[test]
fn configuration_list_form_and_ipv6_also_validate() {
    let validator = common::validator();
    let manifest = serde_json::json!({
        "apiVersion": "networking.liqo.io/v1beta1",
        "kind": "Configuration",
        "metadata": { "name": "dual" },
        "spec": { "remote": { "cidr": {
            "pod": ["10.243.0.0/16", "fd00:10:243::/56"],
            "external": ["10.70.0.0/16"]
        } } },
        "status": { "remote": { "cidr": { "pod": ["10.71.0.0/16", "fd00::/56"] } } }
    });
    validator
        .validate(&manifest)
        .unwrap_or_else(|v| panic!("{v}"));
    let conf: Configuration = serde_json::from_value(manifest).unwrap();
    assert_eq!(
        conf.spec.remote.cidr.pod.0,
        cidrs(&["10.243.0.0/16", "fd00:10:243::/56"])
    );
    let ip: Ip = serde_json::from_value(serde_json::json!("fd00::1")).unwrap();
    assert_eq!(ip.to_string(), "fd00::1");
}
