//! A scripted mock API server (in the manner of kube-rs controller-rs): each expected request
//! (method, path and query, body) is checked in order and answered; anything after the script
//! is recorded as unexpected and answered 500, so a reconcile never hangs on it.
#![allow(dead_code, reason = "each test binary uses part of the kit")]

pub mod gateway;

use std::sync::{Arc, Mutex};

use clusterwire_controller::{Context, ControllerConfig, Events, Published};
use clusterwire_ipam::IpamConfig;
use http::{Request, Response};
use k8s_openapi::jiff::Timestamp;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// One expected request and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: &'static str,
    pub path: String,
    /// The exact body expected (JSON), or `None` for a request without a body (GET).
    pub body: Option<Value>,
    /// Whether the body is checked.
    pub check_body: bool,
    pub status: u16,
    pub response: Value,
}

impl Exchange {
    pub fn new(method: &'static str, path: &str, body: Option<Value>, response: Value) -> Self {
        Self {
            method,
            path: path.to_owned(),
            body,
            check_body: true,
            status: 200,
            response,
        }
    }

    /// A request whose body is not checked.
    pub fn any_body(method: &'static str, path: &str, response: Value) -> Self {
        Self {
            check_body: false,
            ..Self::new(method, path, None, response)
        }
    }

    pub fn get(path: &str, response: Value) -> Self {
        Self::new("GET", path, None, response)
    }

    pub fn not_found(path: &str) -> Self {
        Self {
            status: 404,
            ..Self::get(
                path,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": "not found", "reason": "NotFound", "code": 404}),
            )
        }
    }
}

/// A running mock API server.
pub struct Server {
    script_done: oneshot::Receiver<()>,
    unexpected: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Checks the script ran to its end and nothing came after it.
    pub async fn done(self) {
        let Self {
            script_done,
            unexpected,
        } = self;
        tokio::time::timeout(std::time::Duration::from_secs(5), script_done)
            .await
            .expect("the reconcile made fewer requests than the script expects")
            .expect("a scripted request did not match (see the panic above)");
        let unexpected = unexpected.lock().expect("lock").clone();
        assert!(
            unexpected.is_empty(),
            "requests after the script: {unexpected:#?}"
        );
    }
}

fn respond(status: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Body::from(serde_json::to_vec(body).expect("json")))
        .expect("response")
}

/// A client served by `script`.
pub fn mock(script: Vec<Exchange>) -> (kube::Client, Server) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let unexpected = Arc::new(Mutex::new(Vec::new()));
    let extra = Arc::clone(&unexpected);
    let (done_tx, script_done) = oneshot::channel::<()>();
    tokio::spawn(async move {
        for (i, expected) in script.into_iter().enumerate() {
            let (request, send) = handle
                .next_request()
                .await
                .unwrap_or_else(|| panic!("request {i} never came: {expected:?}"));
            let method = request.method().to_string();
            let path = request
                .uri()
                .path_and_query()
                .map(ToString::to_string)
                .unwrap_or_default();
            let bytes = request.into_body().collect_bytes().await.expect("body");
            let body: Option<Value> = if bytes.is_empty() {
                None
            } else {
                Some(serde_json::from_slice(&bytes).expect("request body is JSON"))
            };
            assert_eq!(
                (method.as_str(), path.as_str()),
                (expected.method, expected.path.as_str()),
                "request {i}: method and path"
            );
            assert!(
                !expected.check_body || body == expected.body,
                "request {i} ({method} {path}): body; got:\n{}",
                serde_json::to_string_pretty(&body).unwrap_or_default()
            );
            send.send_response(respond(expected.status, &expected.response));
        }
        let _ = done_tx.send(());
        while let Some((request, send)) = handle.next_request().await {
            extra
                .lock()
                .expect("lock")
                .push(format!("{} {}", request.method(), request.uri()));
            let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "unexpected", "reason": "InternalError", "code": 500});
            send.send_response(respond(500, &status));
        }
    });
    (
        client,
        Server {
            script_done,
            unexpected,
        },
    )
}

/// The fixed clock of the tests: 2025-01-01T00:00:00Z.
pub fn clock() -> Timestamp {
    Timestamp::from_second(1_735_689_600).expect("valid time")
}

/// The condition time the fixed clock gives.
pub const NOW: &str = "2025-01-01T00:00:00Z";

/// Local cluster of the tests: pod 10.0.0.0/16, service 10.96.0.0/12, defaults for the rest.
pub fn config() -> ControllerConfig {
    ControllerConfig::from(IpamConfig::new(
        vec!["10.0.0.0/16".parse().expect("cidr")],
        vec!["10.96.0.0/12".parse().expect("cidr")],
    ))
}

/// A context over `client` with an empty IPAM of `config`, events kept in memory.
pub fn context(
    client: kube::Client,
    config: &ControllerConfig,
) -> (Arc<Context>, Arc<Mutex<Vec<Published>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let ipam = config.ipam().expect("valid IPAM config");
    let ctx = Context::new(client, ipam, Events::Memory(Arc::clone(&events)), clock);
    (Arc::new(ctx), events)
}

/// Deserializes a JSON literal into a typed object.
pub fn object<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("a valid object")
}
