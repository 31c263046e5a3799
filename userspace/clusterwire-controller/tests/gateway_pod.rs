//! A gateway's active pod, `InternalFabric` and deletion against a scripted API server:
//! failover (the active label moves to another pod), no active pod, no remapped
//! Configuration, and the finalizer's cleanup.

mod common;

use clusterwire_api::networking::InternalFabric;
use clusterwire_controller::internalfabric;
use clusterwire_ipam::Family;
use common::{
    Exchange, NOW,
    gateway::{
        APPLY, CLUSTERROLEBINDING, CONFIGURATIONS, FABRIC, NS, PODS, STATUS, active_pods,
        configurations, ctx, fabric, gws, node, pod, pods, ready_status, reconcile_server,
        rendered_reads, status_patch,
    },
    mock, object,
};
use serde_json::json;

#[tokio::test]
async fn a_failover_moves_the_fabric_gateway_ip_and_the_endpoint_to_the_new_active_pod() {
    // Before: gw-cl02-abc (10.0.1.5 on n1) was active; its fabric address 10.80.0.9 is
    // restored from the live InternalFabric, as after a controller restart.
    let before = fabric("GatewayServer", "10.80.0.9", "10.0.1.5");
    let after = fabric("GatewayServer", "10.80.0.9", "10.0.2.7");
    let old = ready_status("gw-cl02-abc", "10.0.1.5", "n1", "172.31.1.11");
    let new = ready_status("gw-cl02-def", "10.0.2.7", "n2", "172.31.1.12");
    let mut script = rendered_reads();
    script.extend([
        Exchange::get(
            PODS,
            pods(&[
                pod("gw-cl02-abc", "10.0.1.5", "n1", false),
                pod("gw-cl02-def", "10.0.2.7", "n2", true),
            ]),
        ),
        Exchange::get("/api/v1/nodes/n2", node("n2", "172.31.1.12")),
        Exchange::get(CONFIGURATIONS, configurations(true)),
        Exchange::get(FABRIC, before.clone()),
        Exchange::new(
            "PATCH",
            &format!("{FABRIC}{APPLY}"),
            Some(after.clone()),
            after,
        ),
        Exchange::new(
            "PATCH",
            STATUS,
            Some(status_patch("GatewayServer", &new)),
            gws("NodePort", Some(new.clone())),
        ),
    ]);
    let (client, server) = mock(script);
    let (ctx, events) = ctx(client);
    let live: InternalFabric = object(before);
    assert!(internalfabric::restore(&mut ctx.ipam(), &[live]).is_empty());
    reconcile_server(gws("NodePort", Some(old)), &ctx)
        .await
        .expect("reconciles");
    server.done().await;
    let events = events.lock().expect("lock").clone();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.warning, e.reason.as_str()))
            .collect::<Vec<_>>(),
        [(false, "GatewayReady")],
        "the new active pod is announced"
    );
}

#[tokio::test]
async fn no_active_pod_among_several_is_a_condition_an_event_and_no_fabric() {
    let message =
        "deployment gw-cl02: no running gateway pod is labelled networking.liqo.io/active=true yet";
    let status = json!({
        "secretRef": {"apiVersion": "v1", "kind": "Secret", "name": "gw-cl02", "namespace": NS},
        "conditions": [{"type": "Ready", "status": "False", "reason": "GatewayPodPending",
            "message": message, "lastTransitionTime": NOW, "observedGeneration": 1}],
        "observedGeneration": 1
    });
    let mut script = rendered_reads();
    script.extend([
        Exchange::get(
            PODS,
            pods(&[
                pod("gw-cl02-abc", "10.0.1.5", "n1", false),
                pod("gw-cl02-def", "10.0.2.7", "n2", false),
            ]),
        ),
        Exchange::new(
            "PATCH",
            STATUS,
            Some(status_patch("GatewayServer", &status)),
            gws("NodePort", Some(status.clone())),
        ),
    ]);
    let (client, server) = mock(script);
    let (ctx, events) = ctx(client);
    let err = reconcile_server(gws("NodePort", None), &ctx)
        .await
        .expect_err("no active pod");
    server.done().await;
    assert_eq!(err, message);
    let events = events.lock().expect("lock").clone();
    assert_eq!(
        (events.len(), events[0].warning, events[0].reason.as_str()),
        (1, true, "GatewayPodPending")
    );
}

#[tokio::test]
async fn a_configuration_not_remapped_yet_keeps_the_fabric_waiting() {
    let message = "no remapped Configuration for cluster cl02 in namespace liqo-tenant-cl02: its status has no remapped CIDRs yet";
    let status = json!({
        "endpoint": {"addresses": ["172.31.1.11"], "port": 31840, "protocol": "UDP"},
        "secretRef": {"apiVersion": "v1", "kind": "Secret", "name": "gw-cl02", "namespace": NS},
        "internalEndpoint": {"ip": "10.0.1.5", "node": "n1"},
        "conditions": [{"type": "Ready", "status": "False", "reason": "ConfigurationPending",
            "message": message, "lastTransitionTime": NOW, "observedGeneration": 1}],
        "observedGeneration": 1
    });
    let mut script = rendered_reads();
    script.extend([
        Exchange::get(PODS, active_pods()),
        Exchange::get("/api/v1/nodes/n1", node("n1", "172.31.1.11")),
        Exchange::get(CONFIGURATIONS, configurations(false)),
        Exchange::new(
            "PATCH",
            STATUS,
            Some(status_patch("GatewayServer", &status)),
            gws("NodePort", Some(status.clone())),
        ),
    ]);
    let (client, server) = mock(script);
    let (ctx, events) = ctx(client);
    let err = reconcile_server(gws("NodePort", None), &ctx)
        .await
        .expect_err("no remap yet");
    server.done().await;
    assert_eq!(err, message);
    assert_eq!(
        events.lock().expect("lock")[0].reason,
        "ConfigurationPending"
    );
    assert_eq!(
        ctx.ipam()
            .internal(&internalfabric::ipam_owner(NS, "cl02"), Family::V4),
        None,
        "no address taken for a fabric that was not written"
    );
}

#[tokio::test]
async fn deleting_a_gateway_removes_its_cluster_binding_and_frees_the_fabric_address() {
    let mut deleted = gws("NodePort", None);
    deleted["metadata"]["deletionTimestamp"] = json!(NOW);
    let ok = json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200});
    let (client, server) = mock(vec![
        Exchange::any_body("DELETE", &format!("{CLUSTERROLEBINDING}?"), ok),
        // kube-runtime removes the finalizer with a JSON patch.
        Exchange::any_body(
            "PATCH",
            "/apis/networking.liqo.io/v1beta1/namespaces/liqo-tenant-cl02/gatewayservers/cl02?",
            deleted.clone(),
        ),
    ]);
    let (ctx, _events) = ctx(client);
    let live: InternalFabric = object(fabric("GatewayServer", "10.80.0.9", "10.0.1.5"));
    assert!(internalfabric::restore(&mut ctx.ipam(), &[live]).is_empty());
    reconcile_server(deleted, &ctx).await.expect("cleans up");
    server.done().await;
    assert_eq!(
        ctx.ipam()
            .internal(&internalfabric::ipam_owner(NS, "cl02"), Family::V4),
        None
    );
}
