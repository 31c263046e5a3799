//! Fixtures of the gateway tests: a `GatewayServer` `liqo-tenant-cl02/cl02` rendered from
//! `testdata/server-template.json`, its objects, pods, Configuration, fabric and bindings.

use std::sync::{Arc, Mutex};

use clusterwire_api::networking::GatewayServer;
use clusterwire_controller::{Context, Published, gateway, keys};
use k8s_openapi::ByteString;
use serde_json::{Value, json};

use super::{Exchange, NOW, config, context, object};

pub const NS: &str = "liqo-tenant-cl02";
pub const UID: &str = "7f1c2a9e-0000-4000-8000-000000000002";
pub const APPLY: &str = "?&force=true&fieldManager=clusterwire-controller";
pub const SECRET: &str = "/api/v1/namespaces/liqo-tenant-cl02/secrets/gw-cl02";
pub const TEMPLATE: &str =
    "/apis/networking.liqo.io/v1beta1/namespaces/liqo/wggatewayservertemplates/wireguard-server";
pub const ACCOUNT: &str = "/api/v1/namespaces/liqo-tenant-cl02/serviceaccounts/cl02";
pub const ROLEBINDING: &str =
    "/apis/rbac.authorization.k8s.io/v1/namespaces/liqo-tenant-cl02/rolebindings/gw-cl02";
pub const CLUSTERROLEBINDING: &str = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/clusterwire-gateway:liqo-tenant-cl02:cl02";
pub const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/liqo-tenant-cl02/deployments/gw-cl02";
pub const SERVICE: &str = "/api/v1/namespaces/liqo-tenant-cl02/services/gw-cl02";
/// The pods of the Deployment: its `matchLabels`.
pub const PODS: &str =
    "/api/v1/namespaces/liqo-tenant-cl02/pods?&labelSelector=app.kubernetes.io%2Fname%3Dcl02";
pub const CONFIGURATIONS: &str = "/apis/networking.liqo.io/v1beta1/namespaces/liqo-tenant-cl02/configurations?&labelSelector=liqo.io%2Fremote-cluster-id%3Dcl02";
pub const FABRIC: &str =
    "/apis/networking.liqo.io/v1beta1/namespaces/liqo-tenant-cl02/internalfabrics/cl02";
pub const STATUS: &str = "/apis/networking.liqo.io/v1beta1/namespaces/liqo-tenant-cl02/gatewayservers/cl02/status?&force=true&fieldManager=clusterwire-controller";

/// RFC 7748's Alice key: the tests' "random" private key.
pub const PRIVATE: [u8; 32] = [
    0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2, 0x66, 0x45,
    0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a,
];

#[expect(
    clippy::unnecessary_wraps,
    reason = "the signature of Context::private_key"
)]
fn fixed_key() -> Result<[u8; 32], getrandom::Error> {
    Ok(PRIVATE)
}

/// A context over `client` with the fixed key.
pub fn ctx(client: kube::Client) -> (Arc<Context>, Arc<Mutex<Vec<Published>>>) {
    let (ctx, events) = context(client, &config());
    let mut ctx = Arc::into_inner(ctx).expect("sole owner");
    ctx.private_key = fixed_key;
    (Arc::new(ctx), events)
}

pub fn b64(bytes: &[u8]) -> Value {
    serde_json::to_value(ByteString(bytes.to_vec())).expect("json")
}

pub fn owner(kind: &str) -> Value {
    json!({"apiVersion": "networking.liqo.io/v1beta1", "kind": kind, "name": "cl02", "uid": UID, "controller": true})
}

pub fn secret() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "gw-cl02", "namespace": NS, "labels": {"liqo.io/remote-cluster-id": "cl02"},
                     "ownerReferences": [owner("GatewayServer")]},
        "data": {"privateKey": b64(&PRIVATE), "publicKey": b64(&keys::public_key(PRIVATE))}
    })
}

/// The `GatewayServer` (with the finalizer, so the reconcile applies directly).
pub fn gws(service_type: &str, status: Option<Value>) -> Value {
    let mut value = json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "GatewayServer",
        "metadata": {"name": "cl02", "namespace": NS, "uid": UID, "generation": 1,
                     "labels": {"liqo.io/remote-cluster-id": "cl02"},
                     "finalizers": [gateway::FINALIZER]},
        "spec": {"endpoint": {"port": 51840, "serviceType": service_type}, "mtu": 1340,
                 "serverTemplateRef": {"apiVersion": "networking.liqo.io/v1beta1",
                     "kind": "WgGatewayServerTemplate", "name": "wireguard-server", "namespace": "liqo"}}
    });
    if let Some(status) = status {
        value["status"] = status;
    }
    value
}

fn testdata(name: &str) -> Value {
    let path = format!("{}/tests/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("json")
}

pub fn template() -> Value {
    testdata("server-template.json")
}

/// The objects of the `NodePort` golden file, in apply order (account, deployment, service).
pub fn golden() -> Vec<Value> {
    serde_json::from_value(testdata("server-objects.json")).expect("a list")
}

/// The live Service: the rendered one with what the API server adds.
pub fn live_service(rendered: &Value) -> Value {
    let mut live = rendered.clone();
    live["spec"]["clusterIP"] = json!("10.96.0.50");
    live["spec"]["clusterIPs"] = json!(["10.96.0.50"]);
    live["spec"]["ports"][0]["nodePort"] = json!(31840);
    live
}

/// A gateway pod.
pub fn pod(name: &str, ip: &str, node: &str, active: bool) -> Value {
    let mut labels = json!({"app.kubernetes.io/name": "cl02", "liqo.io/remote-cluster-id": "cl02"});
    if active {
        labels["networking.liqo.io/active"] = json!("true");
    }
    json!({"metadata": {"name": name, "namespace": NS, "labels": labels},
           "spec": {"nodeName": node, "containers": []},
           "status": {"phase": "Running", "podIP": ip}})
}

pub fn pods(items: &[Value]) -> Value {
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items})
}

/// The single active pod `gw-cl02-abc` (10.0.1.5 on n1).
pub fn active_pods() -> Value {
    pods(&[pod("gw-cl02-abc", "10.0.1.5", "n1", true)])
}

pub fn node(name: &str, address: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
           "status": {"addresses": [{"type": "InternalIP", "address": address},
                                    {"type": "Hostname", "address": name}]}})
}

/// The Configuration of cl02, remapped (`remapped: false`: not yet).
pub fn configurations(remapped: bool) -> Value {
    let mut conf = json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "Configuration",
        "metadata": {"name": "cl02", "namespace": NS, "labels": {"liqo.io/remote-cluster-id": "cl02"}},
        "spec": {"remote": {"cidr": {"pod": ["10.0.0.0/16"], "external": ["10.70.0.0/16"]}}}
    });
    if remapped {
        conf["status"] =
            json!({"remote": {"cidr": {"pod": ["10.1.0.0/16"], "external": ["10.2.0.0/16"]}}});
    }
    json!({"apiVersion": "networking.liqo.io/v1beta1", "kind": "ConfigurationList",
           "metadata": {}, "items": [conf]})
}

/// The gateway's `InternalFabric`, exactly as applied.
pub fn fabric(kind: &str, internal: &str, gateway_ip: &str) -> Value {
    json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "InternalFabric",
        "metadata": {"name": "cl02", "namespace": NS,
                     "labels": {"liqo.io/remote-cluster-id": "cl02"},
                     "ownerReferences": [owner(kind)]},
        "spec": {"mtu": 1340, "remoteCIDRs": ["10.1.0.0/16", "10.2.0.0/16"],
                 "interface": {"gateway": {"ip": internal}}, "gatewayIP": gateway_ip}
    })
}

/// The `RoleBinding` and `ClusterRoleBinding` of the gateway's `ServiceAccount` `account`.
pub fn bindings(kind: &str, account: &str) -> (Value, Value) {
    let subjects = json!([{"kind": "ServiceAccount", "name": account, "namespace": NS}]);
    let role_ref = |name: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name});
    (
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "gw-cl02", "namespace": NS,
                            "labels": {"liqo.io/remote-cluster-id": "cl02"},
                            "ownerReferences": [owner(kind)]},
               "roleRef": role_ref("clusterwire-gateway"), "subjects": subjects}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "clusterwire-gateway:liqo-tenant-cl02:cl02",
                            "labels": {"liqo.io/remote-cluster-id": "cl02"}},
               "roleRef": role_ref("clusterwire-gateway-cluster"), "subjects": subjects}),
    )
}

/// The reads of an unchanged, rendered server up to its pods: secret, template, account,
/// bindings, deployment, service.
pub fn rendered_reads() -> Vec<Exchange> {
    let objects = golden();
    let (rolebinding, clusterrolebinding) = bindings("GatewayServer", "cl02");
    vec![
        Exchange::get(SECRET, secret()),
        Exchange::get(TEMPLATE, template()),
        Exchange::get(ACCOUNT, objects[0].clone()),
        Exchange::get(ROLEBINDING, rolebinding),
        Exchange::get(CLUSTERROLEBINDING, clusterrolebinding),
        Exchange::get(DEPLOYMENT, objects[1].clone()),
        Exchange::get(SERVICE, live_service(&objects[2])),
    ]
}

/// The status of a ready `NodePort` server whose active pod is `pod` (`ip` on `node`, whose
/// address is `address`).
pub fn ready_status(pod: &str, ip: &str, node: &str, address: &str) -> Value {
    json!({
        "endpoint": {"addresses": [address], "port": 31840, "protocol": "UDP"},
        "secretRef": {"apiVersion": "v1", "kind": "Secret", "name": "gw-cl02", "namespace": NS},
        "internalEndpoint": {"ip": ip, "node": node},
        "conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
            "message": format!("rendered from WgGatewayServerTemplate liqo/wireguard-server; endpoint {address}:31840; active pod {pod} ({ip} on {node})"),
            "lastTransitionTime": NOW, "observedGeneration": 1}],
        "observedGeneration": 1
    })
}

pub fn status_patch(kind: &str, status: &Value) -> Value {
    json!({"apiVersion": "networking.liqo.io/v1beta1", "kind": kind, "status": status})
}

pub async fn reconcile_server(value: Value, ctx: &Arc<Context>) -> Result<(), String> {
    let gws: GatewayServer = object(value);
    gateway::reconcile_server(Arc::new(gws), Arc::clone(ctx))
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}
