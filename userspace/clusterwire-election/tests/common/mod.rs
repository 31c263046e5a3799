//! A scripted mock API server: each expected request (method, path and query, and the exact
//! JSON body when given) is checked in order and answered; a request after the script fails
//! the test when [`Server::done`] is called.
#![allow(dead_code, reason = "each test binary uses part of the kit")]

use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// One expected request and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: &'static str,
    pub path: String,
    /// The exact body expected, `None` for a GET; not checked when `any_body`.
    pub body: Option<Value>,
    pub any_body: bool,
    pub status: u16,
    pub response: Value,
}

impl Exchange {
    pub fn new(method: &'static str, path: &str, body: Option<Value>, response: Value) -> Self {
        Self {
            method,
            path: path.to_owned(),
            body,
            any_body: false,
            status: 200,
            response,
        }
    }

    pub fn get(path: &str, response: Value) -> Self {
        Self::new("GET", path, None, response)
    }

    /// An API error answer (`Status` object) with `code`.
    pub fn failing(method: &'static str, path: &str, code: u16, reason: &str) -> Self {
        Self {
            any_body: true,
            status: code,
            ..Self::new(
                method,
                path,
                None,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                       "message": reason, "reason": reason, "code": code}),
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
        tokio::time::timeout(std::time::Duration::from_mins(1), self.script_done)
            .await
            .expect("fewer requests than the script expects")
            .expect("a scripted request did not match (see the panic above)");
        let unexpected = self.unexpected.lock().expect("lock").clone();
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
    let (done_tx, script_done) = oneshot::channel();
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
            let body: Option<Value> =
                (!bytes.is_empty()).then(|| serde_json::from_slice(&bytes).expect("JSON body"));
            assert_eq!(
                (method.as_str(), path.as_str()),
                (expected.method, expected.path.as_str()),
                "request {i}: method and path"
            );
            assert!(
                expected.any_body || body == expected.body,
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
            send.send_response(respond(500, &json!({"kind": "Status", "code": 500})));
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
