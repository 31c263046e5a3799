//! The `GatewayServer` / `GatewayClient` reconciler against a scripted API server.

mod common;

use std::sync::Arc;

use clusterwire_api::networking::GatewayClient;
use clusterwire_controller::{Published, gateway};
use common::{
    Exchange, NOW,
    gateway::{
        ACCOUNT, APPLY, CLUSTERROLEBINDING, CONFIGURATIONS, DEPLOYMENT, FABRIC, NS, PODS,
        ROLEBINDING, SECRET, SERVICE, STATUS, TEMPLATE, UID, active_pods, b64, bindings,
        configurations, ctx, fabric, golden, gws, live_service, node, owner, ready_status,
        reconcile_server, rendered_reads, secret, status_patch, template,
    },
    mock, object,
};
use serde_json::{Value, json};

#[tokio::test]
async fn a_new_server_gets_keys_objects_bindings_fabric_and_endpoints_then_a_resync_writes_nothing()
{
    let objects = golden();
    let (account, deployment, service) = (&objects[0], &objects[1], &objects[2]);
    let (rolebinding, clusterrolebinding) = bindings("GatewayServer", "cl02");
    let fabric = fabric("GatewayServer", "10.80.0.1", "10.0.1.5");
    let ready = ready_status("gw-cl02-abc", "10.0.1.5", "n1", "172.31.1.11");
    let apply = |path: &str, value: &Value, live: Value| {
        Exchange::new(
            "PATCH",
            &format!("{path}{APPLY}"),
            Some(value.clone()),
            live,
        )
    };
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
        apply(ACCOUNT, account, account.clone()),
        Exchange::not_found(ROLEBINDING),
        apply(ROLEBINDING, &rolebinding, rolebinding.clone()),
        Exchange::not_found(CLUSTERROLEBINDING),
        apply(
            CLUSTERROLEBINDING,
            &clusterrolebinding,
            clusterrolebinding.clone(),
        ),
        Exchange::not_found(DEPLOYMENT),
        apply(DEPLOYMENT, deployment, deployment.clone()),
        Exchange::not_found(SERVICE),
        apply(SERVICE, service, live_service(service)),
        Exchange::get(PODS, active_pods()),
        Exchange::get("/api/v1/nodes/n1", node("n1", "172.31.1.11")),
        Exchange::get(CONFIGURATIONS, configurations(true)),
        Exchange::not_found(FABRIC),
        apply(FABRIC, &fabric, fabric.clone()),
        Exchange::new(
            "PATCH",
            STATUS,
            Some(status_patch("GatewayServer", &ready)),
            gws("NodePort", Some(ready.clone())),
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
    let mut reads = rendered_reads();
    reads.extend([
        Exchange::get(PODS, active_pods()),
        Exchange::get("/api/v1/nodes/n1", node("n1", "172.31.1.11")),
        Exchange::get(CONFIGURATIONS, configurations(true)),
        Exchange::get(FABRIC, fabric),
    ]);
    let (client, server) = mock(reads);
    let (again, events) = self::ctx(client);
    let ipam = ctx.ipam().clone();
    *again.ipam() = ipam;
    reconcile_server(gws("NodePort", Some(ready)), &again)
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
    // The internal side does not wait for the public endpoint: fabric and internalEndpoint.
    let status = json!({
        "secretRef": {"apiVersion": "v1", "kind": "Secret", "name": "gw-cl02", "namespace": NS},
        "internalEndpoint": {"ip": "10.0.1.5", "node": "n1"},
        "conditions": [{"type": "Ready", "status": "False", "reason": "EndpointPending",
            "message": message, "lastTransitionTime": NOW, "observedGeneration": 1}],
        "observedGeneration": 1
    });
    let fabric = fabric("GatewayServer", "10.80.0.1", "10.0.1.5");
    let mut script = rendered_reads();
    script[6] = Exchange::get(SERVICE, live_service(&objects[2]));
    script.extend([
        Exchange::get(PODS, active_pods()),
        Exchange::get(CONFIGURATIONS, configurations(true)),
        Exchange::not_found(FABRIC),
        Exchange::new(
            "PATCH",
            &format!("{FABRIC}{APPLY}"),
            Some(fabric.clone()),
            fabric,
        ),
        Exchange::new(
            "PATCH",
            STATUS,
            Some(status_patch("GatewayServer", &status)),
            gws("LoadBalancer", Some(status.clone())),
        ),
    ]);
    let (client, server) = mock(script);
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
                     "labels": {"liqo.io/remote-cluster-id": "cl02"},
                     "finalizers": [gateway::FINALIZER]},
        "spec": {"endpoint": {"addresses": ["198.18.0.10"], "port": 31840, "protocol": "UDP"}, "mtu": 1340,
                 "clientTemplateRef": {"apiVersion": "networking.liqo.io/v1beta1",
                     "kind": "WgGatewayClientTemplate", "name": "wireguard-client", "namespace": "liqo"}}
    });
    let fabric = fabric("GatewayClient", "10.80.0.1", "10.0.1.5");
    let status = json!({
        "secretRef": {"apiVersion": "v1", "kind": "Secret", "name": "gw-cl02", "namespace": NS},
        "internalEndpoint": {"ip": "10.0.1.5", "node": "n1"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
            "message": "rendered from WgGatewayClientTemplate liqo/wireguard-client; active pod gw-cl02-abc (10.0.1.5 on n1)",
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
        Exchange::get(PODS, active_pods()),
        Exchange::get(CONFIGURATIONS, configurations(true)),
        Exchange::not_found(FABRIC),
        Exchange::new(
            "PATCH",
            &format!("{FABRIC}{APPLY}"),
            Some(fabric.clone()),
            fabric,
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
