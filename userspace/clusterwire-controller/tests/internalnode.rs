//! The `InternalNode` reconciler against a scripted API server.

mod common;

use std::sync::Arc;

use clusterwire_api::networking::InternalNode;
use clusterwire_controller::internalnode;
use common::{Exchange, config, context, mock, object};
use k8s_openapi::api::core::v1::Node;
use serde_json::{Value, json};

const PATH: &str = "/apis/networking.liqo.io/v1beta1/internalnodes";
const APPLY: &str = "?&force=true&fieldManager=clusterwire-controller";

fn node(name: &str, address: &str) -> Node {
    object(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": format!("uid-{name}")},
        "status": {"addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}]}
    }))
}

fn internal(name: &str, ip: &str, address: &str) -> Value {
    json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "InternalNode",
        "metadata": {"name": name, "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": format!("uid-{name}")}]},
        "spec": {"interface": {"node": {"ip": ip}}, "nodeAddress": address}
    })
}

#[tokio::test]
async fn each_node_gets_the_next_internal_address_once() {
    let n1 = internal("n1", "10.80.0.1", "172.31.1.11");
    let (client, server) = mock(vec![
        Exchange::not_found(&format!("{PATH}/n1")),
        Exchange::new(
            "PATCH",
            &format!("{PATH}/n1{APPLY}"),
            Some(n1.clone()),
            n1.clone(),
        ),
    ]);
    let (ctx, _events) = context(client, &config());
    internalnode::reconcile(Arc::new(node("n1", "172.31.1.11")), Arc::clone(&ctx))
        .await
        .expect("reconciles");
    server.done().await;

    // Again: read only.
    let (client, server) = mock(vec![Exchange::get(&format!("{PATH}/n1"), n1)]);
    let ctx = Arc::new(clusterwire_controller::Context::new(
        client,
        ctx.ipam().clone(),
        clusterwire_controller::Events::Memory(Arc::default()),
        common::clock,
    ));
    internalnode::reconcile(Arc::new(node("n1", "172.31.1.11")), ctx)
        .await
        .expect("reconciles");
    server.done().await;
}

#[tokio::test]
async fn a_restart_keeps_addresses_and_hands_out_free_ones() {
    let n1 = internal("n1", "10.80.0.7", "172.31.1.11");
    let n2 = internal("n2", "10.80.0.1", "172.31.1.12");
    let (client, server) = mock(vec![
        Exchange::get(&format!("{PATH}/n1"), n1.clone()),
        Exchange::not_found(&format!("{PATH}/n2")),
        Exchange::new("PATCH", &format!("{PATH}/n2{APPLY}"), Some(n2.clone()), n2),
    ]);
    let (ctx, _events) = context(client, &config());
    let existing: InternalNode = object(n1);
    assert!(internalnode::restore(&mut ctx.ipam(), &[existing]).is_empty());
    internalnode::reconcile(Arc::new(node("n1", "172.31.1.11")), Arc::clone(&ctx))
        .await
        .expect("n1");
    internalnode::reconcile(Arc::new(node("n2", "172.31.1.12")), Arc::clone(&ctx))
        .await
        .expect("n2");
    server.done().await;
}

#[tokio::test]
async fn an_exhausted_internal_cidr_is_an_event_and_an_error() {
    let mut cfg = config();
    cfg.internal_cidrs = vec!["10.80.0.0/31".parse().expect("cidr")];
    let n1 = internal("n1", "10.80.0.1", "172.31.1.11");
    let (client, server) = mock(vec![
        Exchange::not_found(&format!("{PATH}/n1")),
        Exchange::new("PATCH", &format!("{PATH}/n1{APPLY}"), Some(n1.clone()), n1),
    ]);
    let (ctx, events) = context(client, &cfg);
    internalnode::reconcile(Arc::new(node("n1", "172.31.1.11")), Arc::clone(&ctx))
        .await
        .expect("n1");
    let err = internalnode::reconcile(Arc::new(node("n2", "172.31.1.12")), Arc::clone(&ctx))
        .await
        .expect_err("no address left");
    server.done().await;
    assert_eq!(err.to_string(), "no free address left in 10.80.0.0/31");
    let events = events.lock().expect("lock").clone();
    assert_eq!(
        (events.len(), events[0].warning, events[0].reason.as_str()),
        (1, true, "AddressesExhausted")
    );
}
