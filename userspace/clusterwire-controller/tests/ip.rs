//! The IP reconciler against a scripted API server.

mod common;

use std::sync::Arc;

use clusterwire_api::ipam::IP;
use clusterwire_controller::ip;
use common::{Exchange, config, context, mock, object};
use serde_json::{Value, json};

const STATUS: &str = "/apis/ipam.liqo.io/v1alpha1/namespaces/liqo/ips/node-n1/status?&force=true&fieldManager=clusterwire-controller";

fn ip_object(status: Option<Value>, network: bool) -> Value {
    let mut value = json!({
        "apiVersion": "ipam.liqo.io/v1alpha1", "kind": "IP",
        "metadata": {"name": "node-n1", "namespace": "liqo", "finalizers": [ip::FINALIZER]},
        "spec": {"ip": "10.80.0.1"}
    });
    if network {
        value["spec"]["networkRef"] = json!({"name": "pods", "namespace": "liqo"});
    }
    if let Some(status) = status {
        value["status"] = status;
    }
    value
}

fn status_patch(status: &Value) -> Value {
    json!({"apiVersion": "ipam.liqo.io/v1alpha1", "kind": "IP", "status": status})
}

async fn reconcile(value: Value, ctx: &Arc<clusterwire_controller::Context>) -> Result<(), String> {
    let ip: IP = object(value);
    ip::reconcile(Arc::new(ip), Arc::clone(ctx))
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn an_ip_gets_the_first_free_external_address_once() {
    // 10.70.0.0, the unknown-source address, is never handed out.
    let status = json!({"ip": "10.70.0.1", "cidr": "10.70.0.0/16"});
    let (client, server) = mock(vec![Exchange::new(
        "PATCH",
        STATUS,
        Some(status_patch(&status)),
        ip_object(Some(status.clone()), false),
    )]);
    let (ctx, events) = context(client, &config());
    reconcile(ip_object(None, false), &ctx)
        .await
        .expect("reconciles");
    server.done().await;

    // Again, with the status written: nothing to write.
    let (client, server) = mock(vec![]);
    let (again, _) = context(client, &config());
    *again.ipam() = ctx.ipam().clone();
    reconcile(ip_object(Some(status), false), &again)
        .await
        .expect("reconciles");
    server.done().await;
    assert!(events.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn a_restart_keeps_the_recorded_address() {
    let status = json!({"ip": "10.70.0.42", "cidr": "10.70.0.0/16"});
    let (client, server) = mock(vec![]);
    let (ctx, _events) = context(client, &config());
    let recorded: IP = object(ip_object(Some(status.clone()), false));
    assert!(ip::restore(&mut ctx.ipam(), &[recorded]).is_empty());
    reconcile(ip_object(Some(status), false), &ctx)
        .await
        .expect("reconciles");
    server.done().await;
    assert_eq!(
        ctx.ipam().ip("liqo/node-n1").map(|(a, _)| a.to_string()),
        Some("10.70.0.42".to_owned())
    );
}

#[tokio::test]
async fn a_network_ref_is_a_warning_event_and_an_error() {
    let (client, server) = mock(vec![]);
    let (ctx, events) = context(client, &config());
    let err = reconcile(ip_object(None, true), &ctx)
        .await
        .expect_err("unsupported");
    server.done().await;
    let message = "spec.networkRef liqo/pods: only the external CIDR (no networkRef) is supported";
    assert_eq!(err, message);
    let events = events.lock().expect("lock").clone();
    assert_eq!(
        (
            events.len(),
            events[0].warning,
            events[0].reason.as_str(),
            events[0].note.as_str()
        ),
        (1, true, "NetworkRefUnsupported", message)
    );
}

#[tokio::test]
async fn an_exhausted_external_cidr_is_a_warning_event_and_an_error() {
    let mut cfg = config();
    // A /31: its first address is the unknown source, its second is the only one to give.
    cfg.external_cidrs = vec!["10.70.0.0/31".parse().expect("cidr")];
    let taken = json!({"ip": "10.70.0.1", "cidr": "10.70.0.0/31"});
    let (client, server) = mock(vec![]);
    let (ctx, events) = context(client, &cfg);
    let mut other = ip_object(Some(taken), false);
    other["metadata"]["name"] = json!("other");
    other["spec"]["ip"] = json!("10.80.0.2");
    let other: IP = object(other);
    assert!(ip::restore(&mut ctx.ipam(), &[other]).is_empty());
    let err = reconcile(ip_object(None, false), &ctx)
        .await
        .expect_err("full");
    server.done().await;
    assert_eq!(err, "no free address left in 10.70.0.0/31");
    assert_eq!(events.lock().expect("lock")[0].reason, "AddressesExhausted");
}

#[tokio::test]
async fn deleting_an_ip_frees_its_address() {
    let status = json!({"ip": "10.70.0.1", "cidr": "10.70.0.0/16"});
    let mut deleted = ip_object(Some(status), false);
    deleted["metadata"]["deletionTimestamp"] = json!(common::NOW);
    let (client, server) = mock(vec![Exchange::any_body(
        "PATCH",
        "/apis/ipam.liqo.io/v1alpha1/namespaces/liqo/ips/node-n1?",
        deleted.clone(),
    )]);
    let (ctx, _events) = context(client, &config());
    let recorded: IP = object(deleted.clone());
    assert!(ip::restore(&mut ctx.ipam(), &[recorded]).is_empty());
    reconcile(deleted, &ctx).await.expect("cleans up");
    server.done().await;
    assert_eq!(ctx.ipam().ip("liqo/node-n1"), None);
}
