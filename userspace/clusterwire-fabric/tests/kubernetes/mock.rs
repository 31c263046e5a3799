//! A mock API server for the watchers, over `clusterwire-kube-mock`'s client pair: [`Lists`]
//! answers list requests by path and holds every watch open until the test answers it with
//! events. Scripted exchanges are `clusterwire_kube_mock::mock`.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use clusterwire_kube_mock::{failure, json_response, pair, response};
use http::Response;
use kube::client::Body;
use serde_json::Value;
use tower_test::mock::SendResponse;

/// Held watch requests by path.
type Held = Arc<Mutex<BTreeMap<String, Vec<SendResponse<Response<Body>>>>>>;

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
                send.send_response(response(200, body));
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
