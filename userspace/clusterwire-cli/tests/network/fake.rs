//! A fake Kubernetes API server on 127.0.0.1 for `cwctl network`: an in-memory object store
//! (GET, list with a label selector, in one namespace or all, server-side-apply PATCH, POST, DELETE) and a stand-in
//! controller that fills the statuses `connect` waits for. Every request is logged, so a test
//! can assert which objects were written, in which order, and where the waits polled.

use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{TcpListener, TcpStream},
    sync::{Arc, Mutex},
};

use serde_json::{Value, json};

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// Whether the networking.liqo.io API is served (the CRDs are installed).
    pub crds: bool,
    /// Whether the stand-in controller fills statuses (Configuration remap, gateway endpoint and
    /// key Secret, Connection Connected).
    pub controller: bool,
    /// The gateway key this cluster's controller generates.
    pub key: [u8; 32],
}

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<String, Value>,
    log: Vec<String>,
    uid: u32,
}

/// A running fake API server.
pub struct Fake {
    pub url: String,
    state: Arc<Mutex<State>>,
}

const NET: &str = "/apis/networking.liqo.io/v1beta1";

impl Fake {
    /// Starts a fake of cluster `id`, with its identity `ConfigMap` and both gateway templates.
    pub fn start(id: &str, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let fake = Self {
            url,
            state: state.clone(),
        };
        fake.put(
            "/api/v1/namespaces/clusterwire/configmaps/clusterwire-clusterid-configmap",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "clusterwire-clusterid-configmap", "namespace": "clusterwire",
                                "labels": {"app.kubernetes.io/name": "clusterid-configmap"}},
                   "data": {"CLUSTER_ID": id}}),
        );
        for (plural, kind, name) in [
            (
                "wggatewayservertemplates",
                "WgGatewayServerTemplate",
                "wireguard-server",
            ),
            (
                "wggatewayclienttemplates",
                "WgGatewayClientTemplate",
                "wireguard-client",
            ),
        ] {
            fake.put(
                &format!("{NET}/namespaces/clusterwire/{plural}/{name}"),
                json!({"apiVersion": "networking.liqo.io/v1beta1", "kind": kind,
                       "metadata": {"name": name, "namespace": "clusterwire"},
                       "spec": {"template": {}}}),
            );
        }
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = state.clone();
                let behaviour = behaviour.clone();
                std::thread::spawn(move || serve(stream, &state, &behaviour));
            }
        });
        fake
    }

    /// Stores an object at `path`.
    pub fn put(&self, path: &str, object: Value) {
        self.state
            .lock()
            .expect("state")
            .objects
            .insert(path.to_owned(), object);
    }

    /// The object at `path`.
    pub fn object(&self, path: &str) -> Option<Value> {
        self.state.lock().expect("state").objects.get(path).cloned()
    }

    /// Every request, as `METHOD path` (no query).
    pub fn log(&self) -> Vec<String> {
        self.state.lock().expect("state").log.clone()
    }

    /// The requests that change something.
    pub fn writes(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|l| !l.starts_with("GET "))
            .collect()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, behaviour: &Behaviour) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
        if let Some((k, v)) = header.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let (status, response) = {
        let mut state = state.lock().expect("state");
        state.log.push(format!("{method} {path}"));
        handle(&mut state, behaviour, &method, path, query, &body)
    };
    let text = response.to_string();
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{text}",
        text.len()
    );
}

fn not_found() -> (u16, Value) {
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
               "message": "the server could not find the requested resource", "code": 404}),
    )
}

/// A namespaced collection path without its `/namespaces/<ns>` part (the path listing that
/// collection across all namespaces).
fn all_namespaces(collection: &str) -> String {
    let parts: Vec<&str> = collection.split('/').collect();
    match parts.iter().position(|p| *p == "namespaces") {
        Some(i) if i + 2 < parts.len() => [&parts[..i], &parts[i + 2..]].concat().join("/"),
        _ => collection.to_owned(),
    }
}

fn is_object(path: &str) -> bool {
    let rest: Vec<_> = path.split('/').skip(1).collect();
    let tail = if rest.first() == Some(&"api") { 2 } else { 3 };
    rest.len().saturating_sub(tail) % 2 == 0
}

fn handle(
    state: &mut State,
    behaviour: &Behaviour,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
) -> (u16, Value) {
    if path == NET {
        return if behaviour.crds {
            (
                200,
                json!({"kind": "APIResourceList", "apiVersion": "v1",
                         "groupVersion": "networking.liqo.io/v1beta1", "resources": []}),
            )
        } else {
            not_found()
        };
    }
    if (!behaviour.crds && path.starts_with("/apis/networking.liqo.io"))
        || path.starts_with("/apis/ipam.liqo.io/v1alpha1/namespaces/none")
    {
        return not_found();
    }
    match (method, is_object(path)) {
        ("GET", true) => state
            .objects
            .get(path)
            .map_or_else(not_found, |o| (200, o.clone())),
        ("GET", false) => {
            let selector = query
                .split('&')
                .find_map(|q| q.strip_prefix("labelSelector="))
                .map(|s| s.replace("%3D", "=").replace("%2F", "/"));
            let items: Vec<Value> = state
                .objects
                .iter()
                .filter(|(p, _)| {
                    p.rsplit_once('/')
                        .is_some_and(|(c, _)| c == path || all_namespaces(c) == path)
                })
                .filter(|(_, o)| {
                    selector.as_ref().is_none_or(|s| {
                        let (k, v) = s.split_once('=').unwrap_or((s, ""));
                        o["metadata"]["labels"][k] == json!(v)
                    })
                })
                .map(|(_, o)| o.clone())
                .collect();
            (
                200,
                json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items}),
            )
        }
        ("PATCH", true) => {
            let mut object: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let old = state.objects.get(path).cloned();
            if let Some(old) = &old {
                object["metadata"]["uid"] = old["metadata"]["uid"].clone();
                object["status"] = old["status"].clone();
            } else {
                state.uid += 1;
                object["metadata"]["uid"] = json!(format!("uid-{}", state.uid));
            }
            state.objects.insert(path.to_owned(), object.clone());
            if behaviour.controller {
                reconcile(state, behaviour, path, &object);
            }
            (200, state.objects[path].clone())
        }
        ("POST", false) => {
            let object: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            state
                .objects
                .insert(format!("{path}/{name}"), object.clone());
            (201, object)
        }
        ("DELETE", true) => state
            .objects
            .remove(path)
            .map_or_else(not_found, |o| (200, o)),
        _ => (405, json!({"kind": "Status", "code": 405})),
    }
}

/// The stand-in controller and gateway: statuses, key Secrets and Connections.
fn reconcile(state: &mut State, behaviour: &Behaviour, path: &str, object: &Value) {
    let ns = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let kind = object["kind"].as_str().unwrap_or_default();
    let status = match kind {
        "Configuration" => json!({"remote": {"cidr": {"pod": ["10.71.0.0/16"],
                                                       "external": ["10.72.0.0/16"]}}}),
        "GatewayServer" | "GatewayClient" => {
            let secret = format!("gw-{name}");
            let key = clusterwire_links::wireguard::PublicKey::from_bytes(behaviour.key);
            state.objects.insert(
                format!("/api/v1/namespaces/{ns}/secrets/{secret}"),
                json!({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": secret, "namespace": ns},
                       "data": {"publicKey": key.to_base64()}}),
            );
            let type_ = if kind == "GatewayServer" {
                "Server"
            } else {
                "Client"
            };
            state.objects.insert(
                format!("{NET}/namespaces/{ns}/connections/gw-{name}"),
                json!({"apiVersion": "networking.liqo.io/v1beta1", "kind": "Connection",
                       "metadata": {"name": format!("gw-{name}"), "namespace": ns},
                       "spec": {"type": type_, "gatewayRef": {"kind": kind, "name": name}},
                       "status": {"value": "Connected"}}),
            );
            let mut status = json!({"secretRef": {"name": secret, "namespace": ns}});
            if kind == "GatewayServer" {
                status["endpoint"] =
                    json!({"addresses": ["172.19.0.9"], "port": 32701, "protocol": "UDP"});
            }
            status
        }
        _ => return,
    };
    if let Some(stored) = state.objects.get_mut(path) {
        stored["status"] = status;
    }
}
