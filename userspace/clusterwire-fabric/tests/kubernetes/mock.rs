//! Mock API servers over `tower_test::mock::pair`, in the manner of kube-rs controller-rs:
//! [`scripted`] checks each request (method, path and query, exact JSON body) in order;
//! [`Lists`] answers list requests by path and holds every watch open until the test answers
//! it with events.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tower_test::mock::SendResponse;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;
/// Held watch requests by path.
type Held = Arc<Mutex<BTreeMap<String, Vec<SendResponse<Response<Body>>>>>>;

fn respond(status: u16, body: &[u8]) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Body::from(body.to_vec()))
        .expect("response")
}

fn json_response(status: u16, body: &Value) -> Response<Body> {
    respond(status, &serde_json::to_vec(body).expect("json"))
}

fn failure(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": reason, "reason": reason, "code": code})
}

fn pair() -> (kube::Client, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(service, "default"), handle)
}

/// One expected request and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: &'static str,
    pub path: String,
    pub body: Option<Value>,
    pub status: u16,
    pub response: Value,
}

impl Exchange {
    pub fn new(method: &'static str, path: &str, body: Option<Value>, response: Value) -> Self {
        Self {
            method,
            path: path.to_owned(),
            body,
            status: 200,
            response,
        }
    }

    /// The same request answered `404 NotFound`.
    pub fn not_found(self) -> Self {
        Self {
            status: 404,
            response: failure(404, "NotFound"),
            ..self
        }
    }
}

/// A scripted server: [`Scripted::done`] checks every exchange happened and nothing else.
pub struct Scripted {
    done: oneshot::Receiver<()>,
    unexpected: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    pub async fn done(self) {
        tokio::time::timeout(Duration::from_secs(5), self.done)
            .await
            .expect("fewer requests than the script expects")
            .expect("a scripted request did not match (see the panic above)");
        // Let anything sent after the script reach the server.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let unexpected = self.unexpected.lock().expect("lock").clone();
        assert!(
            unexpected.is_empty(),
            "requests after the script: {unexpected:#?}"
        );
    }
}

/// A client served by `script`.
pub fn scripted(script: Vec<Exchange>) -> (kube::Client, Scripted) {
    let (client, mut handle) = pair();
    let unexpected = Arc::new(Mutex::new(Vec::new()));
    let extra = Arc::clone(&unexpected);
    let (done_tx, done) = oneshot::channel();
    tokio::spawn(async move {
        for (i, expected) in script.into_iter().enumerate() {
            let (request, send) = handle
                .next_request()
                .await
                .unwrap_or_else(|| panic!("request {i} never came: {expected:?}"));
            let method = request.method().to_string();
            let path = path_and_query(&request);
            let bytes = request.into_body().collect_bytes().await.expect("body");
            let body: Option<Value> = (!bytes.is_empty())
                .then(|| serde_json::from_slice(&bytes).expect("request body is JSON"));
            assert_eq!(
                (method.as_str(), path.as_str()),
                (expected.method, expected.path.as_str()),
                "request {i}: method and path"
            );
            assert_eq!(
                body,
                expected.body,
                "request {i} ({method} {path}): body; got:\n{}",
                serde_json::to_string_pretty(&body).unwrap_or_default()
            );
            send.send_response(json_response(expected.status, &expected.response));
        }
        let _ = done_tx.send(());
        while let Some((request, send)) = handle.next_request().await {
            extra.lock().expect("lock").push(format!(
                "{} {}",
                request.method(),
                path_and_query(&request)
            ));
            send.send_response(json_response(500, &failure(500, "InternalError")));
        }
    });
    (client, Scripted { done, unexpected })
}

fn path_and_query(request: &Request<Body>) -> String {
    request
        .uri()
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// A server answering `GET path` (without query) with `lists[path]`, and holding each watch
/// request (query `watch=true`) until [`Lists::answer_watch`].
pub struct Lists {
    watches: Held,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Lists {
    pub fn start(lists: BTreeMap<String, Value>) -> (kube::Client, Self) {
        let (client, mut handle) = pair();
        let watches: Held = Arc::default();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (held, seen) = (Arc::clone(&watches), Arc::clone(&requests));
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let path = request.uri().path().to_owned();
                let query = request.uri().query().unwrap_or_default().to_owned();
                seen.lock()
                    .expect("lock")
                    .push(format!("{} {path}?{query}", request.method()));
                if query.split('&').any(|p| p == "watch=true") {
                    held.lock()
                        .expect("lock")
                        .entry(path)
                        .or_default()
                        .push(send);
                } else if let Some(list) = lists.get(&path) {
                    send.send_response(json_response(200, list));
                } else {
                    send.send_response(json_response(404, &failure(404, "NotFound")));
                }
            }
        });
        (client, Self { watches, requests })
    }

    /// Every request so far, as `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }

    /// Answers the oldest held watch on `path` with `events` (`{type, object}` each), one JSON
    /// line per event; the stream then ends and the watcher watches again. Waits up to 5 s
    /// for the watch to arrive.
    pub async fn answer_watch(&self, path: &str, events: &[Value]) {
        let mut body = Vec::new();
        for event in events {
            serde_json::to_writer(&mut body, event).expect("json");
            body.push(b'\n');
        }
        for _ in 0..500 {
            let send = {
                let mut watches = self.watches.lock().expect("lock");
                watches
                    .get_mut(path)
                    .filter(|held| !held.is_empty())
                    .map(|held| held.remove(0))
            };
            if let Some(send) = send {
                send.send_response(respond(200, &body));
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "no watch on {path} arrived; requests: {:#?}",
            self.requests()
        );
    }
}
