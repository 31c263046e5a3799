//! The Lease election with a controllable clock: the decision and the spec written over time
//! (acquire, renew, follow, expiry, transitions, release), and the requests it makes against a
//! scripted API server (tokio's clock paused for the renew deadline).

use std::time::Duration;

use clusterwire_election::lease::{
    Decision, LeaseElection, Lost, TIMING, claim, decide, released, try_lead,
};
use clusterwire_kube_mock::{Exchange, mock};
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    jiff::{SignedDuration, Timestamp},
};
use kube::Api;
use serde_json::{Value, json};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/liqo-tenant-cl02/leases";
const NAME: &str = "cl02.liqo-tenant-cl02.server.connections.liqo.io";

/// The fixed clock: 2025-01-01T00:00:00Z.
fn clock() -> Timestamp {
    Timestamp::from_second(1_735_689_600).expect("valid time")
}

fn at(seconds: i64) -> Timestamp {
    clock() + SignedDuration::from_secs(seconds)
}

fn micro(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The Lease as the API server returns it: `holder` acquired it at 0 and renewed it at `renewed`.
fn lease(holder: &str, renewed: Timestamp, transitions: i32) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": NAME, "namespace": "liqo-tenant-cl02", "resourceVersion": "41"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                 "acquireTime": micro(at(0)), "renewTime": micro(renewed),
                 "leaseTransitions": transitions}
    })
}

fn spec(value: Value) -> LeaseSpec {
    serde_json::from_value::<Lease>(value)
        .expect("a Lease")
        .spec
        .expect("spec")
}

fn api(client: kube::Client) -> Api<Lease> {
    Api::namespaced(client, "liqo-tenant-cl02")
}

fn election(client: kube::Client, me: &str) -> LeaseElection {
    LeaseElection::new(api(client), NAME.to_owned(), me.to_owned(), TIMING).with_clock(clock)
}

#[test]
fn a_lease_is_followed_until_it_expires_then_taken_over() {
    let held = spec(lease("replica-a", at(0), 0));
    assert_eq!(decide(None, "replica-b", at(0), TIMING), Decision::Acquire);
    assert_eq!(
        decide(Some(&held), "replica-a", at(100), TIMING),
        Decision::Renew,
        "the holder renews even a lease that ran out"
    );
    for t in [0, 5, 14] {
        assert_eq!(
            decide(Some(&held), "replica-b", at(t), TIMING),
            Decision::Follow {
                holder: "replica-a".into(),
                expires: at(15)
            },
            "at {t} s the lease of replica-a is still valid"
        );
    }
    for t in [15, 60] {
        assert_eq!(
            decide(Some(&held), "replica-b", at(t), TIMING),
            Decision::Acquire,
            "at {t} s the lease has run out"
        );
    }
}

#[test]
fn the_lease_duration_written_in_the_lease_counts_and_a_lease_without_holder_is_free() {
    let mut short = spec(lease("replica-a", at(0), 0));
    short.lease_duration_seconds = Some(3);
    assert_eq!(
        decide(Some(&short), "replica-b", at(2), TIMING),
        Decision::Follow {
            holder: "replica-a".into(),
            expires: at(3)
        }
    );
    assert_eq!(
        decide(Some(&short), "replica-b", at(3), TIMING),
        Decision::Acquire
    );
    let mut nobody = spec(lease("replica-a", at(0), 0));
    nobody.holder_identity = None;
    assert_eq!(
        decide(Some(&nobody), "replica-b", at(1), TIMING),
        Decision::Acquire
    );
    let never_renewed = LeaseSpec {
        holder_identity: Some("replica-a".into()),
        ..LeaseSpec::default()
    };
    assert_eq!(
        decide(Some(&never_renewed), "replica-b", at(0), TIMING),
        Decision::Acquire
    );
}

#[test]
fn claims_count_transitions_only_on_takeover() {
    let created = claim(None, "replica-a", at(0), TIMING).expect("acquires");
    assert_eq!(created, spec(lease("replica-a", at(0), 0)), "a new Lease");
    let renewed = claim(Some(&created), "replica-a", at(2), TIMING).expect("renews");
    assert_eq!(
        renewed,
        spec(lease("replica-a", at(2), 0)),
        "a renewal moves only the renew time"
    );
    assert_eq!(
        claim(Some(&renewed), "replica-b", at(16), TIMING),
        None,
        "valid until 17 s: follow"
    );
    let taken = claim(Some(&renewed), "replica-b", at(17), TIMING).expect("takes over");
    let mut expected = spec(lease("replica-b", at(17), 1));
    expected.acquire_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        at(17),
    ));
    assert_eq!(
        taken, expected,
        "a takeover: holder, acquire time, one transition"
    );
    let given_up = released(&taken, "replica-b", at(20)).expect("ours to release");
    assert_eq!(given_up.holder_identity, None);
    assert_eq!(given_up.lease_transitions, Some(1));
    assert_eq!(released(&taken, "replica-a", at(20)), None, "not ours");
    let back = claim(Some(&given_up), "replica-a", at(21), TIMING).expect("free at once");
    assert_eq!(back.holder_identity.as_deref(), Some("replica-a"));
    assert_eq!(back.lease_transitions, Some(2));
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
        Exchange::failing("GET", &format!("{LEASES}/{NAME}"), 404, "NotFound"),
        Exchange::new(
            "POST",
            &format!("{LEASES}?"),
            Some(created.clone()),
            created,
        ),
    ]);
    assert!(
        try_lead(&api(client), NAME, "replica-a", at(0), TIMING)
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
    assert!(
        !try_lead(&api(client), NAME, "replica-b", at(10), TIMING)
            .await
            .expect("follows")
    );
    server.done().await;
}

#[tokio::test]
async fn losing_the_race_is_not_leading() {
    let (client, server) = mock(vec![
        Exchange::get(&format!("{LEASES}/{NAME}"), lease("replica-a", at(0), 0)),
        Exchange::failing("PUT", &format!("{LEASES}/{NAME}?"), 409, "Conflict"),
    ]);
    assert!(
        !try_lead(&api(client), NAME, "replica-b", at(20), TIMING)
            .await
            .expect("no error")
    );
    server.done().await;
}

#[tokio::test(start_paused = true)]
async fn a_standby_reports_the_holder_once_and_takes_over_when_the_lease_runs_out() {
    let taken = lease("replica-b", at(0), 1);
    let path = format!("{LEASES}/{NAME}");
    let (client, server) = mock(vec![
        Exchange::get(&path, lease("replica-a", at(0), 0)),
        Exchange::get(&path, lease("replica-a", at(-5), 0)),
        // Not renewed for 15 s: run out.
        Exchange::get(&path, lease("replica-a", at(-15), 0)),
        Exchange::new("PUT", &format!("{path}?"), Some(taken.clone()), taken),
    ]);
    let start = tokio::time::Instant::now();
    let mut seen = Vec::new();
    election(client, "replica-b")
        .acquire(|holder| seen.push(holder.to_owned()))
        .await;
    assert_eq!(seen, ["replica-a"], "one standby report per holder");
    assert_eq!(start.elapsed(), Duration::from_secs(4), "two retry periods");
    server.done().await;
}

#[tokio::test(start_paused = true)]
async fn the_leader_renews_until_another_holder_appears() {
    let path = format!("{LEASES}/{NAME}");
    let (client, server) = mock(vec![
        Exchange::get(&path, lease("replica-a", at(-2), 0)),
        Exchange::new(
            "PUT",
            &format!("{path}?"),
            Some(lease("replica-a", at(0), 0)),
            lease("replica-a", at(0), 0),
        ),
        Exchange::get(&path, lease("replica-b", at(0), 1)),
    ]);
    let lost = election(client, "replica-a").hold().await;
    assert_eq!(
        lost,
        Lost::TakenBy {
            lease: NAME.into(),
            holder: "replica-b".into()
        }
    );
    server.done().await;
}

#[tokio::test(start_paused = true)]
async fn the_leader_gives_up_when_no_renewal_succeeds_within_the_renew_deadline() {
    let path = format!("{LEASES}/{NAME}");
    let (client, server) = mock(vec![
        Exchange::failing("GET", &path, 500, "InternalError"),
        Exchange::get(&path, lease("replica-a", at(-2), 0)),
        Exchange::failing("PUT", &format!("{path}?"), 409, "Conflict"),
        Exchange::failing("GET", &path, 503, "ServiceUnavailable"),
        Exchange::failing("GET", &path, 500, "InternalError"),
    ]);
    let start = tokio::time::Instant::now();
    let lost = election(client, "replica-a").hold().await;
    assert_eq!(start.elapsed(), TIMING.renew_deadline);
    assert_eq!(
        lost,
        Lost::RenewDeadline {
            lease: NAME.into(),
            deadline: TIMING.renew_deadline
        }
    );
    assert_eq!(lost.kind(), "renew_deadline");
    server.done().await;
}

#[tokio::test]
async fn a_clean_stop_releases_the_lease() {
    let path = format!("{LEASES}/{NAME}");
    let mut given_up = lease("replica-a", at(0), 0);
    given_up["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("holderIdentity");
    given_up["spec"]["leaseDurationSeconds"] = json!(1);
    let (client, server) = mock(vec![
        Exchange::get(&path, lease("replica-a", at(-1), 0)),
        Exchange::new("PUT", &format!("{path}?"), Some(given_up.clone()), given_up),
        Exchange::get(&path, lease("replica-b", at(0), 1)),
    ]);
    let candidate = election(client, "replica-a");
    assert!(candidate.release().await.expect("released"));
    assert!(
        !candidate.release().await.expect("not ours"),
        "another holder's lease is left alone"
    );
    server.done().await;
}
