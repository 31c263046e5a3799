//! Scripted mock Kubernetes API server for clusterwire's tests, in the manner of kube-rs
//! controller-rs: a [`kube::Client`] over `tower_test::mock::pair` whose requests are checked
//! in order against a script of [`Exchange`]s (method, path with query, content type and body
//! when given) and answered from it. A request that does not match, or comes after the script,
//! is recorded and answered 500, so a reconcile never hangs on it; [`Server::done`] fails the
//! test listing those and the scripted requests that never came.
#![forbid(unsafe_code)]

use std::{collections::VecDeque, fmt, time::Duration};

use http::{Request, Response, header::CONTENT_TYPE};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::watch;

/// How long [`Server::done`] waits for the rest of the script.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`Server::done`] lets requests sent after the script reach the server.
const SETTLE: Duration = Duration::from_millis(50);

/// The raw request handle of [`pair`].
pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A client whose requests arrive, unanswered, at the returned handle: for servers that do not
/// follow a script (watches held open, lists answered by path).
pub fn pair() -> (kube::Client, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(service, "default"), handle)
}

/// A response of `status` carrying `body` as is.
pub fn response(status: u16, body: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Body::from(body))
        .expect("response")
}

/// A response of `status` carrying `body` as JSON.
pub fn json_response(status: u16, body: &Value) -> Response<Body> {
    response(status, serde_json::to_vec(body).expect("json"))
}

/// The `Status` object the API server answers a failed request with.
pub fn failure(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": reason, "reason": reason, "code": code})
}

/// The body a scripted request must carry.
#[derive(Debug, Clone, PartialEq)]
enum Expected {
    /// Exactly this JSON, or no body at all for `None`.
    Exact(Option<Value>),
    /// Anything.
    Any,
}

/// One expected request and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    method: &'static str,
    /// Path and query, as the client sends it (`...?` for an empty query).
    path: String,
    body: Expected,
    /// The `content-type` header expected, when checked.
    content_type: Option<&'static str>,
    status: u16,
    response: Value,
}

impl Exchange {
    /// `method path` with exactly `body` (`None`: no body), answered 200 with `response`.
    pub fn new(method: &'static str, path: &str, body: Option<Value>, response: Value) -> Self {
        Self {
            method,
            path: path.to_owned(),
            body: Expected::Exact(body),
            content_type: None,
            status: 200,
            response,
        }
    }

    /// `GET path` answered 200 with `response`.
    pub fn get(path: &str, response: Value) -> Self {
        Self::new("GET", path, None, response)
    }

    /// `method path` with a body that is not checked, answered 200 with `response`.
    pub fn any_body(method: &'static str, path: &str, response: Value) -> Self {
        Self {
            body: Expected::Any,
            ..Self::new(method, path, None, response)
        }
    }

    /// `GET path` answered `404 NotFound`.
    pub fn not_found(path: &str) -> Self {
        Self {
            status: 404,
            response: failure(404, "NotFound"),
            ..Self::get(path, Value::Null)
        }
    }

    /// `method path` with a body that is not checked, answered `code` with a `Status` of
    /// `reason`; [`Exchange::with_body`] checks the body too.
    pub fn failing(method: &'static str, path: &str, code: u16, reason: &str) -> Self {
        Self {
            status: code,
            response: failure(code, reason),
            ..Self::any_body(method, path, Value::Null)
        }
    }

    /// The same exchange, expecting exactly `body`.
    #[must_use]
    pub fn with_body(self, body: Value) -> Self {
        Self {
            body: Expected::Exact(Some(body)),
            ..self
        }
    }

    /// The same exchange, expecting the `content-type` header `content_type`.
    #[must_use]
    pub fn with_content_type(self, content_type: &'static str) -> Self {
        Self {
            content_type: Some(content_type),
            ..self
        }
    }

    /// What `got` has that this exchange does not expect, if anything.
    fn mismatch(&self, got: &Received) -> Option<String> {
        let Self {
            method,
            path,
            body,
            content_type,
            status: _,
            response: _,
        } = self;
        if (got.method.as_str(), got.path.as_str()) != (*method, path.as_str()) {
            return Some(format!("expected {method} {path}"));
        }
        if content_type.is_some_and(|wanted| got.content_type.as_deref() != Some(wanted)) {
            return Some(format!(
                "content type {:?}, expected {content_type:?}",
                got.content_type
            ));
        }
        match body {
            Expected::Exact(wanted) if *wanted != got.body => Some(format!(
                "body differs; expected:\n{}\ngot:\n{}",
                pretty(wanted.as_ref()),
                pretty(got.body.as_ref())
            )),
            Expected::Exact(_) | Expected::Any => None,
        }
    }
}

fn pretty(body: Option<&Value>) -> String {
    body.map_or_else(
        || "(no body)".to_owned(),
        |body| serde_json::to_string_pretty(body).unwrap_or_default(),
    )
}

/// A request as the server saw it.
struct Received {
    method: String,
    path: String,
    content_type: Option<String>,
    /// The JSON body; a body that is not JSON becomes a JSON string of its text.
    body: Option<Value>,
}

impl Received {
    async fn read(request: Request<Body>) -> Self {
        let method = request.method().to_string();
        let path = request
            .uri()
            .path_and_query()
            .map(ToString::to_string)
            .unwrap_or_default();
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let bytes = request.into_body().collect_bytes().await.expect("body");
        let body = (!bytes.is_empty()).then(|| {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        });
        Self {
            method,
            path,
            content_type,
            body,
        }
    }
}

/// The script's progress, shared by the serving task and [`Server`].
#[derive(Debug, Default)]
struct Progress {
    script: VecDeque<Exchange>,
    served: usize,
    /// Requests that did not match the script or came after it, with why.
    unexpected: Vec<String>,
}

impl Progress {
    /// Checks `got` against the next scripted exchange and gives the answer.
    fn answer(&mut self, got: &Received) -> Response<Body> {
        let why = match self.script.front() {
            None => "after the script".to_owned(),
            Some(expected) => match expected.mismatch(got) {
                None => {
                    let expected = self.script.pop_front().expect("a scripted exchange");
                    self.served += 1;
                    return json_response(expected.status, &expected.response);
                }
                Some(why) => format!("request {}: {why}", self.served),
            },
        };
        let line = format!("{} {}: {why}", got.method, got.path);
        eprintln!("mock API server: unexpected request {line}");
        let mut status = failure(500, "InternalError");
        status["message"] = json!(format!("unexpected request {line}"));
        self.unexpected.push(line);
        json_response(500, &status)
    }
}

/// A mock API server serving a script of [`Exchange`]s in order.
pub struct Server {
    client: kube::Client,
    progress: watch::Receiver<Progress>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("progress", &*self.progress.borrow())
            .finish_non_exhaustive()
    }
}

/// A client served by `script`, and its server.
pub fn mock(script: Vec<Exchange>) -> (kube::Client, Server) {
    let server = Server::start(script);
    (server.client(), server)
}

impl Server {
    /// Starts serving `script` on the current tokio runtime.
    pub fn start(script: Vec<Exchange>) -> Self {
        let (client, mut handle) = pair();
        let (progress, watched) = watch::channel(Progress {
            script: script.into(),
            ..Progress::default()
        });
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let got = Received::read(request).await;
                let mut answer = None;
                progress.send_modify(|progress| answer = Some(progress.answer(&got)));
                send.send_response(answer.expect("answered"));
            }
        });
        Self {
            client,
            progress: watched,
        }
    }

    /// A client whose requests this server answers.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// Fails the test unless the whole script was served and nothing else was asked: waits up
    /// to 5 s for the rest of the script, then lists the unexpected and missing requests.
    pub async fn done(self) {
        let Self {
            client,
            mut progress,
        } = self;
        drop(client);
        // Elapsed or the server gone: the checks below say what is missing.
        let _ = tokio::time::timeout(
            SCRIPT_TIMEOUT,
            progress.wait_for(|p| p.script.is_empty() || !p.unexpected.is_empty()),
        )
        .await;
        // Let anything sent after the script reach the server.
        tokio::time::sleep(SETTLE).await;
        let progress = progress.borrow();
        let missing: Vec<String> = progress
            .script
            .iter()
            .map(|exchange| format!("{} {}", exchange.method, exchange.path))
            .collect();
        assert!(
            progress.unexpected.is_empty() && missing.is_empty(),
            "the mock API server served {} scripted requests;\nunexpected (answered 500): \
             {:#?}\nmissing: {missing:#?}",
            progress.served,
            progress.unexpected
        );
    }
}

#[cfg(test)]
mod tests {
    use http::Request;
    use serde_json::json;

    use super::{Exchange, mock};

    async fn send(client: &kube::Client, method: &str, path: &str, body: &str) -> String {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .expect("request");
        client
            .request_text(request)
            .await
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[tokio::test]
    async fn a_script_is_served_in_order() {
        let (client, server) = mock(vec![
            Exchange::get("/api/v1/namespaces/a", json!({"n": 1})),
            Exchange::new(
                "PUT",
                "/api/v1/namespaces/a?",
                Some(json!({"x": 1})),
                json!({}),
            )
            .with_content_type("application/json"),
            Exchange::any_body("POST", "/api/v1/namespaces?", json!({"n": 3})),
            Exchange::not_found("/api/v1/namespaces/b"),
        ]);
        assert_eq!(
            send(&client, "GET", "/api/v1/namespaces/a", "").await,
            r#"{"n":1}"#
        );
        assert_eq!(
            send(&client, "PUT", "/api/v1/namespaces/a?", r#"{"x":1}"#).await,
            "{}"
        );
        assert_eq!(
            send(&client, "POST", "/api/v1/namespaces?", "anything").await,
            r#"{"n":3}"#
        );
        let missing = send(&client, "GET", "/api/v1/namespaces/b", "").await;
        assert!(
            missing.starts_with("error: ApiError: NotFound"),
            "{missing}"
        );
        server.done().await;
    }

    #[tokio::test]
    #[should_panic(expected = "PUT /api/v1/namespaces/a?: request 0: body differs")]
    async fn a_wrong_body_is_answered_500_and_listed() {
        let (client, server) = mock(vec![
            Exchange::failing("PUT", "/api/v1/namespaces/a?", 409, "Conflict")
                .with_body(json!({"x": 1})),
        ]);
        let answer = send(&client, "PUT", "/api/v1/namespaces/a?", r#"{"x":2}"#).await;
        assert!(answer.contains("unexpected request"), "{answer}");
        server.done().await;
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "missing: [\n    \"GET /api/v1/namespaces/b\",\n]")]
    async fn a_request_that_never_came_is_listed() {
        let (client, server) = mock(vec![
            Exchange::get("/api/v1/namespaces/a", json!({})),
            Exchange::get("/api/v1/namespaces/b", json!({})),
        ]);
        send(&client, "GET", "/api/v1/namespaces/a", "").await;
        server.done().await;
    }

    #[tokio::test]
    #[should_panic(expected = "DELETE /api/v1/namespaces/a?: after the script")]
    async fn a_request_after_the_script_is_listed() {
        let (client, server) = mock(Vec::new());
        let answer = send(&client, "DELETE", "/api/v1/namespaces/a?", "").await;
        assert!(answer.contains("500"), "{answer}");
        server.done().await;
    }
}
