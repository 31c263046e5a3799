//! One realistic manifest per kind (with statuses, conditions and clusterwire's extension
//! fields) validates against the committed CRDs and round-trips through the Rust types.
#![cfg(feature = "validation")]

mod common;

use clusterwire_api::{
    ipam::{IP, Network},
    networking::{
        Connection, GatewayServer, InternalFabric, InternalNode, WgGatewayServerTemplate,
    },
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

fn round_trip<T: DeserializeOwned + Serialize>(manifest: &Value) {
    let validator = common::validator();
    if let Err(v) = validator.validate(manifest) {
        panic!("{} must validate: {v}", manifest["kind"]);
    }
    let typed: T = serde_json::from_value(manifest.clone())
        .unwrap_or_else(|e| panic!("{} must deserialize: {e}", manifest["kind"]));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        &back, manifest,
        "{} must round-trip unchanged",
        manifest["kind"]
    );
}

fn condition() -> Value {
    json!([{
        "type": "Ready", "status": "True", "reason": "Reconciled", "message": "",
        "lastTransitionTime": "2026-11-23T15:00:00Z", "observedGeneration": 2
    }])
}

#[test]
fn every_kind_accepts_a_realistic_manifest() {
    round_trip::<Connection>(&json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "Connection",
        "metadata": { "name": "gw-cl02", "namespace": "liqo-tenant-cl02" },
        "spec": { "type": "Client", "gatewayRef": {
            "apiVersion": "networking.liqo.io/v1beta1", "kind": "GatewayClient", "name": "cl02"
        } },
        "status": {
            "value": "Connected",
            "latency": { "value": "1.2ms", "timestamp": "2026-11-23T15:00:00Z" },
            "conditions": condition(), "observedGeneration": 2
        }
    }));
    round_trip::<GatewayServer>(&json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "GatewayServer",
        "metadata": { "name": "cl01" },
        "spec": {
            "endpoint": { "ports": [51840, 51841], "serviceType": "LoadBalancer",
                          "loadBalancerIP": "2001:db8::10", "nodePort": 32009 },
            "mtu": 1340,
            "secretRef": { "name": "gw-keys" }
        },
        "status": {
            "endpoint": { "addresses": ["172.19.0.8"], "port": 32009, "protocol": "UDP" },
            "internalEndpoint": { "ip": "10.80.0.2", "node": "worker-1" },
            "conditions": condition()
        }
    }));
    round_trip::<InternalNode>(&json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "InternalNode",
        "metadata": { "name": "worker-1" },
        "spec": { "interface": { "node": { "ip": "10.80.0.1" } }, "nodeAddress": "172.18.0.3" },
        "status": { "nodeIP": { "local": "10.80.0.1", "remote": "10.80.0.1" } }
    }));
    round_trip::<InternalFabric>(&json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "InternalFabric",
        "metadata": { "name": "cl02" },
        "spec": {
            "mtu": 1340, "remoteCIDRs": ["10.71.0.0/16", "10.72.0.0/16"],
            "interface": { "gateway": { "ip": "10.80.0.2" }, "node": { "name": "liqo.cl02" } },
            "gatewayIP": "10.244.1.7", "vni": 4242
        }
    }));
    round_trip::<IP>(&json!({
        "apiVersion": "ipam.liqo.io/v1alpha1", "kind": "IP",
        "metadata": { "name": "api-server" },
        "spec": { "ip": "192.0.2.10", "masquerade": true },
        "status": { "ip": "10.70.0.1", "cidr": "10.70.0.0/16" }
    }));
    round_trip::<Network>(&json!({
        "apiVersion": "ipam.liqo.io/v1alpha1", "kind": "Network",
        "metadata": { "name": "cl02-pod" },
        "spec": { "cidr": "10.243.0.0/16" },
        "status": { "cidr": "10.71.0.0/16", "observedGeneration": 1 }
    }));
    round_trip::<WgGatewayServerTemplate>(&json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "WgGatewayServerTemplate",
        "metadata": { "name": "wireguard-server", "namespace": "liqo",
                      "labels": { "networking.liqo.io/gatewaytemplate": "true" } },
        "spec": {
            "objectKind": { "apiVersion": "networking.liqo.io/v1beta1", "kind": "WgGatewayServer" },
            "template": { "metadata": { "name": "{{ .Name }}" },
                          "spec": { "?extraConfig": "{{ .Spec.ExtraConfig }}" } }
        }
    }));
}

#[test]
fn vni_is_24_bit() {
    let fabric = |vni: u64| {
        json!({
            "apiVersion": "networking.liqo.io/v1beta1", "kind": "InternalFabric",
            "metadata": { "name": "f" },
            "spec": { "interface": { "gateway": { "ip": "10.80.0.2" } },
                      "gatewayIP": "10.244.1.7", "vni": vni }
        })
    };
    let validator = common::validator();
    validator
        .validate(&fabric(16_777_215))
        .unwrap_or_else(|e| panic!("{e}"));
    let err = validator
        .validate(&fabric(16_777_216))
        .expect_err("2^24 must be refused");
    assert!(err.to_string().starts_with("spec.vni: "), "got: {err}");
}
