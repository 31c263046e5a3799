//! The `GatewayServer` / `GatewayClient` reconciler against a scripted API server.

mod common;

use std::sync::Arc;

use clusterwire_api::networking::{GatewayClient, GatewayServer};
use clusterwire_controller::{Context, Published, gateway, keys};
use common::{Exchange, NOW, config, context, mock, object};
use k8s_openapi::ByteString;
use serde_json::{Value, json};

const NS: &str = "liqo-tenant-cl02";
const UID: &str = "7f1c2a9e-0000-4000-8000-000000000002";
const APPLY: &str = "?&force=true&fieldManager=clusterwire-controller";
const SECRET: &str = "/api/v1/namespaces/liqo-tenant-cl02/secrets/gw-cl02";
const TEMPLATE: &str =
    "/apis/networking.liqo.io/v1beta1/namespaces/liqo/wggatewayservertemplates/wireguard-server";
const ACCOUNT: &str = "/api/v1/namespaces/liqo-tenant-cl02/serviceaccounts/cl02";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/liqo-tenant-cl02/deployments/gw-cl02";
const SERVICE: &str = "/api/v1/namespaces/liqo-tenant-cl02/services/gw-cl02";
const PODS: &str = "/api/v1/namespaces/liqo-tenant-cl02/pods?&labelSelector=app.kubernetes.io%2Fname%3Dcl02%2Cnetworking.liqo.io%2Factive%3Dtrue";
const NODE: &str = "/api/v1/nodes/n1";
const STATUS: &str = "/apis/networking.liqo.io/v1beta1/namespaces/liqo-tenant-cl02/gatewayservers/cl02/status?&force=true&fieldManager=clusterwire-controller";

/// RFC 7748's Alice key: the tests' "random" private key.
const PRIVATE: [u8; 32] = [
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

fn ctx(client: kube::Client) -> (Arc<Context>, Arc<std::sync::Mutex<Vec<Published>>>) {
    let (ctx, events) = context(client, &config());
    let mut ctx = Arc::into_inner(ctx).expect("sole owner");
    ctx.private_key = fixed_key;
    (Arc::new(ctx), events)
}

fn b64(bytes: &[u8]) -> Value {
    serde_json::to_value(ByteString(bytes.to_vec())).expect("json")
}

fn owner(kind: &str) -> Value {
    json!({"apiVersion": "networking.liqo.io/v1beta1", "kind": kind, "name": "cl02", "uid": UID, "controller": true})
}

fn secret() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "gw-cl02", "namespace": NS, "labels": {"liqo.io/remote-cluster-id": "cl02"},
                     "ownerReferences": [owner("GatewayServer")]},
        "data": {"privateKey": b64(&PRIVATE), "publicKey": b64(&keys::public_key(PRIVATE))}
    })
}

fn gws(service_type: &str, status: Option<Value>) -> Value {
    let mut value = json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "GatewayServer",
        "metadata": {"name": "cl02", "namespace": NS, "uid": UID, "generation": 1,
                     "labels": {"liqo.io/remote-cluster-id": "cl02"}},
        "spec": {"endpoint": {"port": 51840, "serviceType": service_type}, "mtu": 1340,
                 "serverTemplateRef": {"apiVersion": "networking.liqo.io/v1beta1",
                     "kind": "WgGatewayServerTemplate", "name": "wireguard-server", "namespace": "liqo"}}
    });
    if let Some(status) = status {
        value["status"] = status;
    }
    value
}

fn template() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/testdata/server-template.json"
    ))
    .expect("template");
    serde_json::from_str(&text).expect("json")
}

/// The objects of the `NodePort` golden file, in apply order.
fn golden() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/testdata/server-objects.json"
    ))
    .expect("golden");
    serde_json::from_str(&text).expect("json")
}

/// The live Service: the rendered one with what the API server adds.
fn live_service(rendered: &Value) -> Value {
    let mut live = rendered.clone();
    live["spec"]["clusterIP"] = json!("10.96.0.50");
    live["spec"]["clusterIPs"] = json!(["10.96.0.50"]);
    live["spec"]["ports"][0]["nodePort"] = json!(31840);
    live
}

fn pods() -> Value {
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
        {"metadata": {"name": "gw-cl02-abc", "namespace": NS,
                      "labels": {"app.kubernetes.io/name": "cl02", "networking.liqo.io/active": "true"}},
         "spec": {"nodeName": "n1", "containers": []}}
    ]})
}

fn node() -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
           "status": {"addresses": [{"type": "InternalIP", "address": "172.31.1.11"},
                                    {"type": "Hostname", "address": "n1"}]}})
}

fn ready_status() -> Value {
    json!({
        "endpoint": {"addresses": ["172.31.1.11"], "port": 31840, "protocol": "UDP"},
        "secretRef": {"apiVersion": "v1", "kind": "Secret", "name": "gw-cl02", "namespace": NS},
        "conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
            "message": "rendered from WgGatewayServerTemplate liqo/wireguard-server; endpoint 172.31.1.11:31840",
            "lastTransitionTime": NOW, "observedGeneration": 1}],
        "observedGeneration": 1
    })
}

fn status_patch(kind: &str, status: &Value) -> Value {
    json!({"apiVersion": "networking.liqo.io/v1beta1", "kind": kind, "status": status})
}

async fn reconcile_server(value: Value, ctx: &Arc<Context>) -> Result<(), String> {
    let gws: GatewayServer = object(value);
    gateway::reconcile_server(Arc::new(gws), Arc::clone(ctx))
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_new_server_gets_keys_objects_and_its_nodeport_endpoint_then_a_resync_writes_nothing() {
    let objects = golden();
    let (account, deployment, service) = (&objects[0], &objects[1], &objects[2]);
    let (client, server) = mock(vec![
        Exchange::not_found(SECRET),
        Exchange::new(
            "POST",
            "/api/v1/namespaces/liqo-tenant-cl02/secrets?",
            Some(secret()),
            secret(),
        ),
        Exchange::get(TEMPLATE, template()),
        Exchange::not_found(ACCOUNT),
        Exchange::new(
            "PATCH",
            &format!("{ACCOUNT}{APPLY}"),
            Some(account.clone()),
            account.clone(),
        ),
        Exchange::not_found(DEPLOYMENT),
        Exchange::new(
            "PATCH",
            &format!("{DEPLOYMENT}{APPLY}"),
            Some(deployment.clone()),
            deployment.clone(),
        ),
        Exchange::not_found(SERVICE),
        Exchange::new(
            "PATCH",
            &format!("{SERVICE}{APPLY}"),
            Some(service.clone()),
            live_service(service),
        ),
        Exchange::get(PODS, pods()),
        Exchange::get(NODE, node()),
        Exchange::new(
            "PATCH",
            STATUS,
            Some(status_patch("GatewayServer", &ready_status())),
            gws("NodePort", Some(ready_status())),
        ),
    ]);
    let (ctx, events) = ctx(client);
    reconcile_server(gws("NodePort", None), &ctx)
        .await
        .expect("reconciles");
    server.done().await;
    let events = events.lock().expect("lock").clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].warning, events[0].reason.as_str()),
        (false, "GatewayReady")
    );

    // The same state again: reads only, no write, no event; the key is never regenerated.
    let (client, server) = mock(vec![
        Exchange::get(SECRET, secret()),
        Exchange::get(TEMPLATE, template()),
        Exchange::get(ACCOUNT, account.clone()),
        Exchange::get(DEPLOYMENT, deployment.clone()),
        Exchange::get(SERVICE, live_service(service)),
        Exchange::get(PODS, pods()),
        Exchange::get(NODE, node()),
    ]);
    let (ctx, events) = self::ctx(client);
    reconcile_server(gws("NodePort", Some(ready_status())), &ctx)
        .await
        .expect("reconciles");
    server.done().await;
    assert!(events.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn a_missing_template_is_a_condition_an_event_and_an_error() {
    let message = "template WgGatewayServerTemplate liqo/wireguard-server: not found";
    // status.secretRef is written with the first successful render.
    let status = json!({
        "conditions": [{"type": "Ready", "status": "False", "reason": "TemplateNotFound",
            "message": message, "lastTransitionTime": NOW, "observedGeneration": 1}],
        "observedGeneration": 1
    });
    let (client, server) = mock(vec![
        Exchange::get(SECRET, secret()),
        Exchange::not_found(TEMPLATE),
        Exchange::new(
            "PATCH",
            STATUS,
            Some(status_patch("GatewayServer", &status)),
            gws("NodePort", Some(status.clone())),
        ),
    ]);
    let (ctx, events) = ctx(client);
    let err = reconcile_server(gws("NodePort", None), &ctx)
        .await
        .expect_err("no template");
    server.done().await;
    assert_eq!(err, message);
    assert_eq!(
        *events.lock().expect("lock"),
        vec![Published {
            object: format!("{NS}/cl02"),
            warning: true,
            reason: "TemplateNotFound".into(),
            note: message.into()
        }]
    );
}

#[tokio::test]
async fn an_invalid_template_is_refused_without_writing_objects() {
    let mut bad = template();
    bad["spec"]["template"]["spec"]["deployment"]["spec"]["replicas"] = json!("{{ .Name }}");
    let (client, server) = mock(vec![
        Exchange::get(SECRET, secret()),
        Exchange::get(TEMPLATE, bad),
        // The message carries serde's wording, not ours to pin: the body is checked below.
        Exchange::any_body("PATCH", STATUS, gws("NodePort", None)),
    ]);
    let (ctx, events) = ctx(client);
    let err = reconcile_server(gws("NodePort", None), &ctx)
        .await
        .expect_err("invalid");
    assert!(
        err.starts_with(
            "template WgGatewayServerTemplate liqo/wireguard-server: rendered Deployment is invalid"
        ),
        "{err}"
    );
    server.done().await;
    let events = events.lock().expect("lock").clone();
    assert_eq!(events[0].reason, "TemplateInvalid");
}

#[tokio::test]
async fn a_loadbalancer_without_ingress_is_pending() {
    let mut objects = golden();
    for object in &mut objects {
        if object["kind"] == "Service" {
            object["spec"]["type"] = json!("LoadBalancer");
        }
    }
    let message = "service gw-cl02 has no address yet: no load balancer ingress yet";
    let status = json!({
        "secretRef": {"apiVersion": "v1", "kind": "Secret", "name": "gw-cl02", "namespace": NS},
        "conditions": [{"type": "Ready", "status": "False", "reason": "EndpointPending",
            "message": message, "lastTransitionTime": NOW, "observedGeneration": 1}],
        "observedGeneration": 1
    });
    let (client, server) = mock(vec![
        Exchange::get(SECRET, secret()),
        Exchange::get(TEMPLATE, template()),
        Exchange::get(ACCOUNT, objects[0].clone()),
        Exchange::get(DEPLOYMENT, objects[1].clone()),
        Exchange::get(SERVICE, live_service(&objects[2])),
        Exchange::new(
            "PATCH",
            STATUS,
            Some(status_patch("GatewayServer", &status)),
            gws("LoadBalancer", Some(status.clone())),
        ),
    ]);
    let (ctx, events) = ctx(client);
    let err = reconcile_server(gws("LoadBalancer", None), &ctx)
        .await
        .expect_err("pending");
    server.done().await;
    assert_eq!(err, message);
    assert_eq!(events.lock().expect("lock")[0].reason, "EndpointPending");
}

#[tokio::test]
async fn a_broken_key_secret_is_reported_and_never_overwritten() {
    let mut broken = secret();
    broken["data"]["publicKey"] = b64(&[0u8; 32]);
    let message = "secret gw-cl02: publicKey does not belong to privateKey";
    let status = json!({
        "conditions": [{"type": "Ready", "status": "False", "reason": "SecretInvalid",
            "message": message, "lastTransitionTime": NOW, "observedGeneration": 1}],
        "observedGeneration": 1
    });
    let (client, server) = mock(vec![
        Exchange::get(SECRET, broken),
        Exchange::new(
            "PATCH",
            STATUS,
            Some(status_patch("GatewayServer", &status)),
            gws("NodePort", Some(status.clone())),
        ),
    ]);
    let (ctx, _events) = ctx(client);
    let err = reconcile_server(gws("NodePort", None), &ctx)
        .await
        .expect_err("broken secret");
    server.done().await;
    assert_eq!(err, message);
}

#[tokio::test]
async fn a_gateway_without_cluster_id_is_reported() {
    let mut value = gws("NodePort", None);
    value["metadata"]["labels"] = json!({});
    let message = "missing label liqo.io/remote-cluster-id";
    let status = json!({
        "conditions": [{"type": "Ready", "status": "False", "reason": "MissingClusterID",
            "message": message, "lastTransitionTime": NOW, "observedGeneration": 1}],
        "observedGeneration": 1
    });
    let (client, server) = mock(vec![Exchange::new(
        "PATCH",
        STATUS,
        Some(status_patch("GatewayServer", &status)),
        value.clone(),
    )]);
    let (ctx, _events) = ctx(client);
    let err = reconcile_server(value, &ctx)
        .await
        .expect_err("no cluster id");
    server.done().await;
    assert_eq!(err, message);
}

#[tokio::test]
async fn a_client_gets_keys_and_its_deployment() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/testdata/client-template.json"
    ))
    .expect("template");
    let template: Value = serde_json::from_str(&text).expect("json");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/testdata/client-objects.json"
    ))
    .expect("golden");
    let objects: Vec<Value> = serde_json::from_str(&text).expect("json");
    let mut client_secret = secret();
    client_secret["metadata"]["ownerReferences"] = json!([owner("GatewayClient")]);
    let gwc = json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "GatewayClient",
        "metadata": {"name": "cl02", "namespace": NS, "uid": UID, "generation": 2,
                     "labels": {"liqo.io/remote-cluster-id": "cl02"}},
        "spec": {"endpoint": {"addresses": ["198.18.0.10"], "port": 31840, "protocol": "UDP"}, "mtu": 1340,
                 "clientTemplateRef": {"apiVersion": "networking.liqo.io/v1beta1",
                     "kind": "WgGatewayClientTemplate", "name": "wireguard-client", "namespace": "liqo"}}
    });
    let status = json!({
        "secretRef": {"apiVersion": "v1", "kind": "Secret", "name": "gw-cl02", "namespace": NS},
        "conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
            "message": "rendered from WgGatewayClientTemplate liqo/wireguard-client",
            "lastTransitionTime": NOW, "observedGeneration": 2}],
        "observedGeneration": 2
    });
    let (client, server) = mock(vec![
        Exchange::not_found(SECRET),
        Exchange::new(
            "POST",
            "/api/v1/namespaces/liqo-tenant-cl02/secrets?",
            Some(client_secret.clone()),
            client_secret,
        ),
        Exchange::get(
            "/apis/networking.liqo.io/v1beta1/namespaces/liqo/wggatewayclienttemplates/wireguard-client",
            template,
        ),
        Exchange::not_found(DEPLOYMENT),
        Exchange::new(
            "PATCH",
            &format!("{DEPLOYMENT}{APPLY}"),
            Some(objects[0].clone()),
            objects[0].clone(),
        ),
        Exchange::new(
            "PATCH",
            "/apis/networking.liqo.io/v1beta1/namespaces/liqo-tenant-cl02/gatewayclients/cl02/status?&force=true&fieldManager=clusterwire-controller",
            Some(status_patch("GatewayClient", &status)),
            gwc.clone(),
        ),
    ]);
    let (ctx, _events) = ctx(client);
    let gwc: GatewayClient = object(gwc);
    gateway::reconcile_client(Arc::new(gwc), ctx)
        .await
        .expect("reconciles");
    server.done().await;
}
