//! The Kubernetes source and the Connection writer against mock API servers (host tier).

mod mock;
mod rbac;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use clusterwire_api::{
    networking::connection::{ConnectionLatency, ConnectionStatus, ConnectionStatusValue},
    validation::ManifestValidator,
};
use clusterwire_fabric::{
    connection,
    desired::{GatewayId, Role},
    kubernetes::{ConnectionWriter, Scope, Source, Update, api_resource},
    manifests,
    snapshot::{Key, Kind, Snapshot},
};
use clusterwire_kube_mock::Exchange;
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use serde_json::{Value, json};

use crate::mock::Lists;

fn validator() -> ManifestValidator {
    ManifestValidator::for_api().expect("the API's CRDs compile")
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cl01")
}

/// What `--manifests` gives for the fixture directory.
fn manifest_snapshot() -> Snapshot {
    let mut source = manifests::Source::new(fixture(), validator());
    let loaded = source
        .poll()
        .expect("fixture readable")
        .expect("first poll");
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    loaded.snapshot.clone()
}

/// The collection path of `kind` (every namespace).
fn path(kind: Kind) -> String {
    let resource = api_resource(kind);
    if resource.group.is_empty() {
        format!("/api/{}/{}", resource.version, resource.plural)
    } else {
        format!(
            "/apis/{}/{}/{}",
            resource.group, resource.version, resource.plural
        )
    }
}

/// The fixture's documents as the API server lists them: items without `apiVersion`/`kind`,
/// with the fields the server adds (`resourceVersion`, `managedFields`, `uid`).
fn lists() -> BTreeMap<String, Value> {
    let mut items: BTreeMap<Kind, Vec<Value>> = BTreeMap::new();
    for file in manifests::list_files(&fixture()).expect("fixture") {
        let text = std::fs::read_to_string(&file).expect("fixture file");
        let documents: Vec<Value> = serde_saphyr::from_multiple(&text).expect("fixture YAML");
        for mut document in documents {
            let text = |f: &str| document.get(f).and_then(Value::as_str).map(str::to_owned);
            let (Some(api_version), Some(kind)) = (text("apiVersion"), text("kind")) else {
                continue;
            };
            let Some(kind) = Kind::from_type(&api_version, &kind) else {
                continue;
            };
            let fields = document.as_object_mut().expect("an object");
            fields.remove("apiVersion");
            fields.remove("kind");
            let meta = fields["metadata"].as_object_mut().expect("metadata");
            meta.insert("resourceVersion".to_owned(), json!("7"));
            meta.insert(
                "managedFields".to_owned(),
                json!([{"manager": "kubectl", "operation": "Apply"}]),
            );
            items.entry(kind).or_default().push(document);
        }
    }
    Kind::ALL
        .into_iter()
        .map(|kind| {
            let list = json!({
                "apiVersion": kind.api_version(),
                "kind": format!("{}List", kind.name()),
                "metadata": {"resourceVersion": "10"},
                "items": items.remove(&kind).unwrap_or_default(),
            });
            (path(kind), list)
        })
        .collect()
}

/// Polls every 10 ms until an update is a change (panics after 5 s).
async fn next_change(source: &mut Source) -> Update {
    for _ in 0..500 {
        let update = source.poll();
        assert!(
            update.errors.is_empty(),
            "watch errors: {:?}",
            update.errors
        );
        if update.changed || !update.problems.is_empty() {
            return update;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no change within 5 s: {source:?}");
}

/// Polls for 200 ms and checks nothing changed.
async fn assert_quiet(source: &mut Source) {
    for _ in 0..20 {
        let update = source.poll();
        assert!(!update.changed, "an unexpected change");
        assert!(update.problems.is_empty(), "{:?}", update.problems);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn event(type_: &str, kind: Kind, mut object: Value, version: &str) -> Value {
    object["apiVersion"] = json!(kind.api_version());
    object["kind"] = json!(kind.name());
    object["metadata"]["resourceVersion"] = json!(version);
    json!({"type": type_, "object": object})
}

/// A fixture object as JSON.
fn object(snapshot: &Snapshot, kind: Kind, key: &Key) -> Value {
    let object = snapshot.get(kind, key).expect("in the fixture");
    match object {
        clusterwire_fabric::snapshot::Object::Configuration(o) => {
            serde_json::to_value(o).expect("json")
        }
        other => panic!("not a Configuration: {other:?}"),
    }
}

#[tokio::test]
async fn lists_become_the_manifest_snapshot_and_watch_events_change_it() {
    let expected = manifest_snapshot();
    assert_eq!(expected.len(), 14, "the fixture holds every kind");
    let (client, server) = Lists::start(lists());
    let scope = Scope {
        kinds: Kind::ALL.to_vec(),
        namespace: None,
    };
    let mut source = Source::new(&client, &scope, validator());
    assert!(!source.synced());

    let update = next_change(&mut source).await;
    assert!(update.changed && update.problems.is_empty());
    assert!(source.synced());
    assert_eq!(
        source.snapshot(),
        &expected,
        "the same snapshot as --manifests"
    );
    assert_quiet(&mut source).await;

    // A changed object is a change.
    let cl02 = Key::new("liqo-tenant-cl02", "cl02");
    let configurations = path(Kind::Configuration);
    let mut changed = object(&expected, Kind::Configuration, &cl02);
    changed["metadata"]["labels"]["team"] = json!("blue");
    server
        .answer_watch(
            &configurations,
            &[event(
                "MODIFIED",
                Kind::Configuration,
                changed.clone(),
                "11",
            )],
        )
        .await;
    let update = next_change(&mut source).await;
    assert!(update.changed && update.problems.is_empty());
    let labels = source.snapshot().configurations[&cl02]
        .metadata
        .labels
        .clone()
        .unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("blue"));
    assert_eq!(source.snapshot().len(), 14);

    // An invalid version is reported with its field and the last good one kept.
    let mut invalid = changed.clone();
    invalid["spec"]["remote"]["cidr"]["pod"] = json!(["not-a-cidr"]);
    server
        .answer_watch(
            &configurations,
            &[event("MODIFIED", Kind::Configuration, invalid, "12")],
        )
        .await;
    let update = next_change(&mut source).await;
    assert!(!update.changed, "the last good version stays");
    let problems: Vec<String> = update.problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("Configuration liqo-tenant-cl02/cl02: ")
            && problems[0].contains("spec.remote.cidr.pod[0]"),
        "{problems:?}"
    );
    assert_eq!(
        source.snapshot().configurations[&cl02]
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("team"))
            .map(String::as_str),
        Some("blue")
    );

    // A deletion is a change.
    server
        .answer_watch(
            &configurations,
            &[event("DELETED", Kind::Configuration, changed, "13")],
        )
        .await;
    let update = next_change(&mut source).await;
    assert!(update.changed);
    assert!(!source.snapshot().configurations.contains_key(&cl02));
    assert_eq!(source.snapshot().len(), 13);

    let requests = server.requests();
    for kind in Kind::ALL {
        let list = format!("GET {}?", path(kind));
        assert!(
            requests
                .iter()
                .any(|r| r.starts_with(&list) && !r.contains("watch=true")),
            "no list of {kind}: {requests:#?}"
        );
    }
}

#[tokio::test]
async fn a_gateway_watches_its_namespace_and_the_cluster_scoped_kinds() {
    let (client, _server) = clusterwire_kube_mock::mock(Vec::new());
    let scope = Scope::gateway("liqo-tenant-cl02");
    let urls: Vec<String> = scope
        .kinds
        .iter()
        .map(|&kind| scope.api(client.clone(), kind).resource_url().to_owned())
        .collect();
    assert_eq!(
        urls,
        [
            "/apis/networking.liqo.io/v1beta1/namespaces/liqo-tenant-cl02/configurations",
            "/apis/networking.liqo.io/v1beta1/namespaces/liqo-tenant-cl02/gatewayservers",
            "/apis/networking.liqo.io/v1beta1/namespaces/liqo-tenant-cl02/gatewayclients",
            "/apis/networking.liqo.io/v1beta1/namespaces/liqo-tenant-cl02/publickeies",
            "/apis/networking.liqo.io/v1beta1/internalnodes",
            "/apis/networking.liqo.io/v1beta1/namespaces/liqo-tenant-cl02/internalfabrics",
            "/apis/ipam.liqo.io/v1alpha1/namespaces/liqo-tenant-cl02/ips",
            "/api/v1/nodes",
        ]
    );
    let agent = Scope::agent();
    assert_eq!(agent.kinds, [Kind::InternalNode, Kind::InternalFabric]);
    assert_eq!(agent.namespace, None);
}

const CONNECTIONS: &str =
    "/apis/networking.liqo.io/v1beta1/namespaces/liqo-tenant-cl02/connections";
const APPLY: &str = "?&force=true&fieldManager=clusterwire-gateway";

fn gateway_connection(status: Option<ConnectionStatus>) -> clusterwire_api::networking::Connection {
    let id = GatewayId {
        role: Role::Client,
        key: Key::new("liqo-tenant-cl02", "cl02"),
    };
    let mut conn = connection::connection(&id, "cl02", Some("uid-1"));
    conn.status = status;
    conn
}

fn connected(second: i64) -> ConnectionStatus {
    ConnectionStatus {
        value: Some(ConnectionStatusValue::Connected),
        latency: Some(ConnectionLatency {
            value: Some("1ms".to_owned()),
            timestamp: Some(Time(Timestamp::from_second(second).expect("time"))),
        }),
        ..ConnectionStatus::default()
    }
}

fn object_body() -> Value {
    json!({
        "apiVersion": "networking.liqo.io/v1beta1",
        "kind": "Connection",
        "metadata": {
            "name": "gw-cl02",
            "namespace": "liqo-tenant-cl02",
            "labels": {"liqo.io/remote-cluster-id": "cl02"},
        },
        "spec": {
            "type": "Client",
            "gatewayRef": {
                "apiVersion": "networking.liqo.io/v1beta1",
                "kind": "GatewayClient",
                "name": "cl02",
                "namespace": "liqo-tenant-cl02",
                "uid": "uid-1",
            },
        },
    })
}

fn status_body(status: &Value) -> Value {
    json!({
        "apiVersion": "networking.liqo.io/v1beta1",
        "kind": "Connection",
        "metadata": {"name": "gw-cl02", "namespace": "liqo-tenant-cl02"},
        "status": status,
    })
}

#[tokio::test]
async fn connection_status_is_applied_once_per_change() {
    let object_path = format!("{CONNECTIONS}/gw-cl02{APPLY}");
    let status_path = format!("{CONNECTIONS}/gw-cl02/status{APPLY}");
    let first = json!({"value": "Connected",
        "latency": {"value": "1ms", "timestamp": "2025-01-01T00:00:00Z"}});
    let later = json!({"value": "Connected",
        "latency": {"value": "1ms", "timestamp": "2025-01-01T00:00:20Z"}});
    let live = |status: &Value| {
        let mut live = object_body();
        live["status"] = status.clone();
        live
    };
    let (client, server) = clusterwire_kube_mock::mock(vec![
        // Created (or updated) with the object apply, then its status.
        Exchange::new("PATCH", &object_path, Some(object_body()), object_body()),
        Exchange::new(
            "PATCH",
            &status_path,
            Some(status_body(&first)),
            live(&first),
        ),
        // A newer measurement: the status only.
        Exchange::new(
            "PATCH",
            &status_path,
            Some(status_body(&later)),
            live(&later),
        ),
        // Deleted meanwhile: the status apply fails, the next write re-creates it.
        Exchange::failing("PATCH", &status_path, 404, "NotFound").with_body(status_body(&first)),
        Exchange::new("PATCH", &object_path, Some(object_body()), object_body()),
        Exchange::new(
            "PATCH",
            &status_path,
            Some(status_body(&first)),
            live(&first),
        ),
    ]);
    let mut writer = ConnectionWriter::new(client, "liqo-tenant-cl02");
    let t0 = 1_735_689_600;
    let write = |status| gateway_connection(Some(status));

    assert!(
        writer
            .write(&write(connected(t0)))
            .await
            .expect("first write")
    );
    assert!(
        !writer
            .write(&write(connected(t0)))
            .await
            .expect("same status"),
        "an identical status sends nothing"
    );
    assert!(
        writer
            .write(&write(connected(t0 + 20)))
            .await
            .expect("newer")
    );
    let error = writer
        .write(&write(connected(t0)))
        .await
        .expect_err("the Connection is gone");
    assert!(
        error
            .to_string()
            .starts_with("writing Connection gw-cl02: "),
        "{error}"
    );
    assert!(
        writer
            .write(&write(connected(t0)))
            .await
            .expect("re-created")
    );
    assert!(
        !writer
            .write(&write(connected(t0)))
            .await
            .expect("same again")
    );
    server.done().await;
}
