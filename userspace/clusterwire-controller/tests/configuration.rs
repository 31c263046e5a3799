//! The Configuration reconciler against a scripted API server.

mod common;

use std::{sync::Arc, time::Duration};

use clusterwire_api::networking::Configuration;
use clusterwire_controller::{Published, configuration};
use common::{Exchange, NOW, config, context, mock, object};
use serde_json::{Value, json};

const PATH: &str =
    "/apis/networking.liqo.io/v1beta1/namespaces/liqo-tenant-cl02/configurations/cl02";
const STATUS: &str = "/apis/networking.liqo.io/v1beta1/namespaces/liqo-tenant-cl02/configurations/cl02/status?&force=true&fieldManager=clusterwire-controller";

fn conf(finalizer: bool, status: Option<Value>) -> Value {
    let mut value = json!({
        "apiVersion": "networking.liqo.io/v1beta1", "kind": "Configuration",
        "metadata": {"name": "cl02", "namespace": "liqo-tenant-cl02", "generation": 1, "uid": "u-conf",
                     "labels": {"liqo.io/remote-cluster-id": "cl02"}},
        "spec": {"remote": {"cidr": {"pod": ["10.0.0.0/16"], "external": ["10.70.0.0/16"]}}}
    });
    if finalizer {
        value["metadata"]["finalizers"] = json!([configuration::FINALIZER]);
    }
    if let Some(status) = status {
        value["status"] = status;
    }
    value
}

fn configured_status(pod: &str, external: &str) -> Value {
    json!({
        "remote": {"cidr": {"pod": [pod], "external": [external]}},
        "conditions": [{
            "type": "NetworkCIDRsConfigured", "status": "True", "reason": "Configured",
            "message": format!("pod 10.0.0.0/16 -> {pod}; external 10.70.0.0/16 -> {external}"),
            "lastTransitionTime": NOW, "observedGeneration": 1
        }],
        "observedGeneration": 1
    })
}

fn status_patch(status: &Value) -> Value {
    json!({"apiVersion": "networking.liqo.io/v1beta1", "kind": "Configuration", "status": status})
}

async fn reconcile(value: Value, ctx: &Arc<clusterwire_controller::Context>) -> Result<(), String> {
    let conf: Configuration = object(value);
    configuration::reconcile(Arc::new(conf), Arc::clone(ctx))
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_new_configuration_first_gets_the_finalizer() {
    let patch = json!([
        {"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": [configuration::FINALIZER]}
    ]);
    let (client, server) = mock(vec![Exchange::new(
        "PATCH",
        &format!("{PATH}?"),
        Some(patch),
        conf(true, None),
    )]);
    let (ctx, events) = context(client, &config());
    reconcile(conf(false, None), &ctx)
        .await
        .expect("reconciles");
    server.done().await;
    assert!(
        ctx.ipam().cluster("liqo-tenant-cl02/cl02").is_none(),
        "nothing allocated before the finalizer"
    );
    assert!(events.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn overlapping_cidrs_are_remapped_into_the_status_once() {
    // Pod 10.0.0.0/16 is local, external 10.70.0.0/16 is the local external CIDR: both remapped.
    let status = configured_status("10.1.0.0/16", "10.2.0.0/16");
    let (client, server) = mock(vec![Exchange::new(
        "PATCH",
        STATUS,
        Some(status_patch(&status)),
        conf(true, Some(status.clone())),
    )]);
    let (ctx, events) = context(client, &config());
    reconcile(conf(true, None), &ctx).await.expect("reconciles");
    server.done().await;
    assert_eq!(
        *events.lock().expect("lock"),
        vec![Published {
            object: "liqo-tenant-cl02/cl02".into(),
            warning: false,
            reason: "CIDRsConfigured".into(),
            note: "pod 10.0.0.0/16 -> 10.1.0.0/16; external 10.70.0.0/16 -> 10.2.0.0/16".into(),
        }]
    );

    // The same state again: nothing written, no event.
    let (client, server) = mock(vec![]);
    let ctx2 = Arc::new(clusterwire_controller::Context::new(
        client,
        ctx.ipam().clone(),
        clusterwire_controller::Events::Memory(Arc::clone(&events)),
        common::clock,
    ));
    reconcile(conf(true, Some(status)), &ctx2)
        .await
        .expect("reconciles");
    server.done().await;
    assert_eq!(events.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn a_restart_restores_remaps_from_statuses_and_writes_nothing() {
    // cl02 was remapped to 10.5.0.0/16 and 10.9.0.0/16 before the restart (not the lowest
    // free blocks): the rebuilt IPAM keeps them, and a reconcile writes nothing.
    let status = configured_status("10.5.0.0/16", "10.9.0.0/16");
    let (client, server) = mock(vec![]);
    let (ctx, _events) = context(client, &config());
    let existing: Configuration = object(conf(true, Some(status.clone())));
    let problems = configuration::restore(&mut ctx.ipam(), &[existing]);
    assert!(problems.is_empty(), "{problems:?}");
    reconcile(conf(true, Some(status)), &ctx)
        .await
        .expect("reconciles");
    server.done().await;

    // A new peer with the same CIDRs gets the lowest blocks left free around the restored ones.
    let remote = configuration::remote_cidrs(&object::<Configuration>(conf(true, None)).spec);
    let mapping = ctx
        .ipam()
        .map_cluster("liqo-tenant-cl03/cl03", &remote)
        .expect("maps");
    assert_eq!(mapping.pod[0].target().to_string(), "10.1.0.0/16");
    assert_eq!(mapping.external[0].target().to_string(), "10.2.0.0/16");
}

#[tokio::test]
async fn a_stale_status_is_not_restored() {
    // The status has one pod CIDR, the spec two: skipped, not guessed.
    let mut value = conf(true, Some(configured_status("10.5.0.0/16", "10.9.0.0/16")));
    value["spec"]["remote"]["cidr"]["pod"] = json!(["10.0.0.0/16", "10.50.0.0/16"]);
    let (client, _server) = mock(vec![]);
    let (ctx, _events) = context(client, &config());
    let problems = configuration::restore(&mut ctx.ipam(), &[object(value)]);
    assert!(problems.is_empty());
    assert!(ctx.ipam().cluster("liqo-tenant-cl02/cl02").is_none());
}

#[tokio::test]
async fn an_exhausted_pool_is_a_condition_an_event_and_a_retry_with_backoff() {
    let mut cfg = config();
    cfg.pools_v4 = vec!["10.0.0.0/16".parse().expect("cidr")];
    let message =
        "remap pools exhausted: no free /16 block left in the IPv4 pools to remap 10.0.0.0/16";
    let status = json!({
        "conditions": [{
            "type": "NetworkCIDRsConfigured", "status": "False", "reason": "PoolsExhausted",
            "message": message, "lastTransitionTime": NOW, "observedGeneration": 1
        }],
        "observedGeneration": 1
    });
    let (client, server) = mock(vec![Exchange::new(
        "PATCH",
        STATUS,
        Some(status_patch(&status)),
        conf(true, Some(status.clone())),
    )]);
    let (ctx, events) = context(client, &cfg);
    let conf_obj: Configuration = object(conf(true, None));
    let err = configuration::reconcile(Arc::new(conf_obj.clone()), Arc::clone(&ctx))
        .await
        .expect_err("pools are exhausted");
    server.done().await;
    assert!(err.to_string().contains(message), "{err}");
    assert_eq!(
        *events.lock().expect("lock"),
        vec![Published {
            object: "liqo-tenant-cl02/cl02".into(),
            warning: true,
            reason: "PoolsExhausted".into(),
            note: message.into(),
        }]
    );
    let first = configuration::error_policy(Arc::new(conf_obj.clone()), &err, Arc::clone(&ctx));
    let second = configuration::error_policy(Arc::new(conf_obj), &err, Arc::clone(&ctx));
    assert_eq!(
        first,
        kube::runtime::controller::Action::requeue(Duration::from_secs(5))
    );
    assert_eq!(
        second,
        kube::runtime::controller::Action::requeue(Duration::from_secs(10))
    );

    // Retrying on the same state: still failing, nothing written, no new event.
    let (client, server) = mock(vec![]);
    let ctx2 = Arc::new(clusterwire_controller::Context::new(
        client,
        cfg.ipam().expect("ipam"),
        clusterwire_controller::Events::Memory(Arc::clone(&events)),
        common::clock,
    ));
    reconcile(conf(true, Some(status)), &ctx2)
        .await
        .expect_err("still exhausted");
    server.done().await;
    assert_eq!(events.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn deletion_releases_the_remap_through_the_finalizer() {
    let status = configured_status("10.1.0.0/16", "10.2.0.0/16");
    let mut deleting = conf(true, Some(status.clone()));
    deleting["metadata"]["deletionTimestamp"] = json!(NOW);
    let patch = json!([
        {"op": "test", "path": "/metadata/finalizers/0", "value": configuration::FINALIZER},
        {"op": "remove", "path": "/metadata/finalizers/0"}
    ]);
    let mut released = deleting.clone();
    released["metadata"]["finalizers"] = json!([]);
    let (client, server) = mock(vec![Exchange::new(
        "PATCH",
        &format!("{PATH}?"),
        Some(patch),
        released,
    )]);
    let (ctx, _events) = context(client, &config());
    let problems = configuration::restore(&mut ctx.ipam(), &[object(conf(true, Some(status)))]);
    assert!(problems.is_empty());
    assert!(ctx.ipam().cluster("liqo-tenant-cl02/cl02").is_some());
    reconcile(deleting, &ctx).await.expect("cleans up");
    server.done().await;
    assert!(
        ctx.ipam().cluster("liqo-tenant-cl02/cl02").is_none(),
        "remap released"
    );
}

#[test]
fn local_cidrs_are_never_handed_out() {
    // Every local range (pod, service, external, internal) is refused as a remap target.
    let cfg = config();
    let mut ipam = cfg.ipam().expect("ipam");
    for local in [
        "10.0.0.0/16",
        "10.96.0.0/16",
        "10.70.0.0/16",
        "10.80.0.0/16",
    ] {
        let remote = clusterwire_ipam::RemoteCidrs {
            pod: vec![local.parse().expect("cidr")],
            external: vec![],
        };
        let mapping = ipam.map_cluster(local, &remote).expect("maps");
        let target = mapping.pod[0].target();
        for range in cfg.ipam_config().local_ranges() {
            assert!(
                !(range.contains(&target.network()) || target.contains(&range.network())),
                "{local} remapped onto local range {range}"
            );
        }
    }
}
