//! Leader election with a controllable clock: the decision over time, and the writes it makes
//! against a scripted API server.

mod common;

use clusterwire_controller::leader::{Decision, TIMING, decide, try_lead};
use common::{Exchange, mock, object};
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    jiff::{SignedDuration, Timestamp},
};
use kube::Api;
use serde_json::{Value, json};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/liqo/leases";
const NAME: &str = "clusterwire-controller";

fn at(seconds: i64) -> Timestamp {
    common::clock() + SignedDuration::from_secs(seconds)
}

fn micro(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn lease(holder: &str, renewed: Timestamp, transitions: i32) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": NAME, "namespace": "liqo", "resourceVersion": "41"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                 "acquireTime": micro(common::clock()), "renewTime": micro(renewed),
                 "leaseTransitions": transitions}
    })
}

#[test]
fn a_lease_is_followed_until_it_expires_then_taken_over() {
    let spec: Lease = object(lease("replica-a", at(0), 0));
    let spec: LeaseSpec = spec.spec.expect("spec");
    assert_eq!(decide(None, "replica-b", at(0), TIMING), Decision::Acquire);
    assert_eq!(
        decide(Some(&spec), "replica-a", at(100), TIMING),
        Decision::Renew
    );
    for t in [0, 5, 14] {
        assert_eq!(
            decide(Some(&spec), "replica-b", at(t), TIMING),
            Decision::Follow {
                holder: "replica-a".into(),
                expires: at(15)
            },
            "at {t} s the lease of replica-a is still valid"
        );
    }
    assert_eq!(
        decide(Some(&spec), "replica-b", at(15), TIMING),
        Decision::Acquire
    );
    assert_eq!(
        decide(Some(&spec), "replica-b", at(60), TIMING),
        Decision::Acquire
    );
}

#[tokio::test]
async fn the_first_candidate_creates_the_lease() {
    let created = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": NAME},
        "spec": {"holderIdentity": "replica-a", "leaseDurationSeconds": 15,
                 "acquireTime": micro(at(0)), "renewTime": micro(at(0)), "leaseTransitions": 0}
    });
    let (client, server) = mock(vec![
        Exchange::not_found(&format!("{LEASES}/{NAME}")),
        Exchange::new(
            "POST",
            &format!("{LEASES}?"),
            Some(created.clone()),
            created,
        ),
    ]);
    let api: Api<Lease> = Api::namespaced(client, "liqo");
    assert!(
        try_lead(&api, NAME, "replica-a", at(0), TIMING)
            .await
            .expect("leads")
    );
    server.done().await;
}

#[tokio::test]
async fn a_valid_lease_of_another_replica_is_only_read() {
    let (client, server) = mock(vec![Exchange::get(
        &format!("{LEASES}/{NAME}"),
        lease("replica-a", at(0), 0),
    )]);
    let api: Api<Lease> = Api::namespaced(client, "liqo");
    assert!(
        !try_lead(&api, NAME, "replica-b", at(10), TIMING)
            .await
            .expect("follows")
    );
    server.done().await;
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_with_its_resource_version() {
    let mut taken = lease("replica-b", at(20), 1);
    taken["spec"]["acquireTime"] = json!(micro(at(20)));
    let (client, server) = mock(vec![
        Exchange::get(&format!("{LEASES}/{NAME}"), lease("replica-a", at(0), 0)),
        Exchange::new(
            "PUT",
            &format!("{LEASES}/{NAME}?"),
            Some(taken.clone()),
            taken,
        ),
    ]);
    let api: Api<Lease> = Api::namespaced(client, "liqo");
    assert!(
        try_lead(&api, NAME, "replica-b", at(20), TIMING)
            .await
            .expect("takes over")
    );
    server.done().await;
}

#[tokio::test]
async fn losing_the_race_is_not_leading() {
    let mut conflict = Exchange::any_body(
        "PUT",
        &format!("{LEASES}/{NAME}?"),
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict",
               "message": "the object has been modified", "code": 409}),
    );
    conflict.status = 409;
    let (client, server) = mock(vec![
        Exchange::get(&format!("{LEASES}/{NAME}"), lease("replica-a", at(0), 0)),
        conflict,
    ]);
    let api: Api<Lease> = Api::namespaced(client, "liqo");
    assert!(
        !try_lead(&api, NAME, "replica-b", at(20), TIMING)
            .await
            .expect("no error")
    );
    server.done().await;
}
