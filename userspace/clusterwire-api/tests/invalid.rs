//! Invalid manifests are rejected by the generated schema (`OpenAPI` + CEL), each with a
//! violation that names the offending field.
#![cfg(feature = "validation")]

mod common;

use clusterwire_api::validation::{ManifestValidator, Violations};
use serde_json::{Value, json};

fn validator() -> ManifestValidator {
    common::validator()
}

fn configuration(pod: &Value) -> Value {
    json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "Configuration",
        "metadata": { "name": "peer" },
        "spec": { "remote": { "cidr": { "pod": pod, "external": "10.70.0.0/16" } } }
    })
}

fn server(endpoint: &Value, mtu: i64) -> Value {
    json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "GatewayServer",
        "metadata": { "name": "server" },
        "spec": { "endpoint": endpoint, "mtu": mtu }
    })
}

fn client(endpoint: &Value) -> Value {
    json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "GatewayClient",
        "metadata": { "name": "client" },
        "spec": { "endpoint": endpoint, "mtu": 1340 }
    })
}

/// Asserts `manifest` is rejected with a violation on exactly `field` whose message contains
/// `needle`.
fn assert_rejected(case: &str, result: Result<(), Violations>, field: &str, needle: &str) {
    let Err(violations) = result else {
        panic!("{case}: the manifest was accepted, expected a violation on {field}");
    };
    assert!(
        violations
            .0
            .iter()
            .any(|v| v.field == field && v.message.contains(needle)),
        "{case}: expected a violation on `{field}` containing {needle:?}, got: {violations}"
    );
    assert!(
        violations.to_string().contains(field),
        "{case}: the message must name the field: {violations}"
    );
}

#[test]
fn bad_cidr_scalar_and_list() {
    let v = validator();
    assert_rejected(
        "scalar /33",
        v.validate(&configuration(&json!("10.243.0.0/33"))),
        "spec.remote.cidr.pod",
        "cidr",
    );
    assert_rejected(
        "list entry not a CIDR",
        v.validate(&configuration(&json!(["10.243.0.0/16", "ten.0.0.0/8"]))),
        "spec.remote.cidr.pod[1]",
        "cidr",
    );
}

#[test]
fn port_out_of_range() {
    let v = validator();
    assert_rejected(
        "port 0",
        v.validate(&server(
            &json!({ "port": 0, "serviceType": "NodePort" }),
            1340,
        )),
        "spec.endpoint.port",
        "minimum of 1",
    );
    assert_rejected(
        "port 70000",
        v.validate(&client(
            &json!({ "addresses": ["172.19.0.9"], "port": 70000 }),
        )),
        "spec.endpoint.port",
        "maximum of 65535",
    );
    assert_rejected(
        "ports entry 0",
        v.validate(&server(&json!({ "ports": [51840, 0] }), 1340)),
        "spec.endpoint.ports[1]",
        "minimum of 1",
    );
}

#[test]
fn mtu_out_of_range() {
    assert_rejected(
        "MTU 100",
        validator().validate(&server(&json!({ "port": 51840 }), 100)),
        "spec.mtu",
        "minimum of 576",
    );
}

#[test]
fn unknown_enum_values() {
    let v = validator();
    assert_rejected(
        "service type Ingress",
        v.validate(&server(
            &json!({ "port": 51840, "serviceType": "Ingress" }),
            1340,
        )),
        "spec.endpoint.serviceType",
        "Ingress",
    );
    assert_rejected(
        "protocol SCTP",
        v.validate(&client(
            &json!({ "addresses": ["a.example"], "port": 1, "protocol": "SCTP" }),
        )),
        "spec.endpoint.protocol",
        "SCTP",
    );
    let conn = json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "Connection",
        "metadata": { "name": "c" },
        "spec": { "type": "Peer", "gatewayRef": { "name": "gw" } },
        "status": { "value": "Up" }
    });
    assert_rejected("connection type", v.validate(&conn), "spec.type", "Peer");
    assert_rejected("connection status", v.validate(&conn), "status.value", "Up");
}

#[test]
fn port_and_ports_are_exclusive_and_one_is_required() {
    let v = validator();
    assert_rejected(
        "server with both",
        v.validate(&server(&json!({ "port": 51840, "ports": [51841] }), 1340)),
        "spec.endpoint",
        "port and ports are mutually exclusive",
    );
    assert_rejected(
        "client with both",
        v.validate(&client(
            &json!({ "addresses": ["172.19.0.9"], "port": 1, "ports": [2] }),
        )),
        "spec.endpoint",
        "port and ports are mutually exclusive",
    );
    assert_rejected(
        "client with neither",
        v.validate(&client(&json!({ "addresses": ["172.19.0.9"] }))),
        "spec.endpoint",
        "one of port or ports is required",
    );
    v.validate(&client(
        &json!({ "addresses": ["172.19.0.9"], "ports": [1, 2] }),
    ))
    .unwrap_or_else(|e| panic!("ports alone must be accepted: {e}"));
}

#[test]
fn service_type_dependent_fields() {
    let v = validator();
    assert_rejected(
        "nodePort with ClusterIP",
        v.validate(&server(&json!({ "port": 51840, "nodePort": 32000 }), 1340)),
        "spec.endpoint",
        "nodePort requires serviceType NodePort or LoadBalancer",
    );
    assert_rejected(
        "loadBalancerIP not an IP",
        v.validate(&server(
            &json!({ "port": 51840, "serviceType": "LoadBalancer", "loadBalancerIP": "300.1.2.3" }),
            1340,
        )),
        "spec.endpoint.loadBalancerIP",
        "must be an IPv4 or IPv6 address",
    );
}

#[test]
fn unknown_fields_and_bad_keys() {
    let v = validator();
    assert_rejected(
        "typo in endpoint",
        v.validate(&server(&json!({ "prot": 51840 }), 1340)),
        "spec.endpoint",
        "prot",
    );
    let pk = json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "PublicKey",
        "metadata": { "name": "pk" },
        "spec": { "publicKey": "AQIDBA==" }
    });
    assert_rejected("short key", v.validate(&pk), "spec.publicKey", "32 bytes");
}

#[test]
fn immutable_fields_reject_changes_on_update() {
    let v = validator();
    let ip = |local: &str| {
        json!({
            "apiVersion": "ipam.liqo.io/v1alpha1", "kind": "IP",
            "metadata": { "name": "ext" },
            "spec": { "ip": local }
        })
    };
    v.validate(&ip("192.0.2.10"))
        .unwrap_or_else(|e| panic!("{e}"));
    v.validate_update(&ip("192.0.2.10"), &ip("192.0.2.10"))
        .unwrap_or_else(|e| panic!("an unchanged ip is fine: {e}"));
    assert_rejected(
        "ip changed",
        v.validate_update(&ip("192.0.2.11"), &ip("192.0.2.10")),
        "spec.ip",
        "ip is immutable",
    );
    assert_rejected(
        "not an ip",
        v.validate(&ip("not-an-ip")),
        "spec.ip",
        "IPv4 or IPv6",
    );
}
