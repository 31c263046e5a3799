//! The daemons' HTTP endpoint: `GET /metrics` (Prometheus text format), `GET /healthz`
//! (liveness: the process answers) and `GET /readyz` (readiness: the daemon applied its
//! desired state at least once and its last apply succeeded). Anything else is 404; a request
//! that is not a well-formed `GET` line gets 400. One request per connection.
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
};

/// What the endpoint serves.
pub trait Exporter: Send + Sync + 'static {
    /// The Prometheus text exposition of every metric.
    fn metrics(&self) -> String;
}

/// Readiness shared between the daemon and the endpoint.
#[derive(Debug, Default, Clone)]
pub struct Ready(Arc<AtomicBool>);

impl Ready {
    /// Sets readiness.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    /// Current readiness.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The response to a request line.
pub fn respond(request: &str, exporter: &dyn Exporter, ready: &Ready) -> (u16, String) {
    let mut parts = request.split_whitespace();
    let (Some("GET"), Some(path)) = (parts.next(), parts.next()) else {
        return (400, "bad request\n".to_owned());
    };
    match path {
        "/metrics" => (200, exporter.metrics()),
        "/healthz" => (200, "ok\n".to_owned()),
        "/readyz" if ready.get() => (200, "ready\n".to_owned()),
        "/readyz" => (503, "not ready\n".to_owned()),
        _ => (404, "not found\n".to_owned()),
    }
}

/// Serves the endpoint on `addr` from a task of the current runtime, if an address is given;
/// a failure to bind or accept is logged.
pub fn spawn(addr: Option<SocketAddr>, exporter: Arc<dyn Exporter>, ready: Ready) {
    let Some(addr) = addr else { return };
    tokio::spawn(async move {
        if let Err(e) = serve(addr, exporter, ready).await {
            tracing::error!(%addr, "metrics endpoint: {e}");
        }
    });
}

/// Binds `addr` and serves until the task is dropped.
pub async fn serve(
    addr: SocketAddr,
    exporter: Arc<dyn Exporter>,
    ready: Ready,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (mut stream, _) = listener.accept().await?;
        let exporter = Arc::clone(&exporter);
        let ready = ready.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
            let Ok(Ok(n)) = read else { return };
            let text = String::from_utf8_lossy(&buf[..n]);
            let line = text.lines().next().unwrap_or_default();
            let (status, body) = respond(line, exporter.as_ref(), &ready);
            let reason = match status {
                200 => "OK",
                400 => "Bad Request",
                503 => "Service Unavailable",
                _ => "Not Found",
            };
            let head = format!(
                "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{Exporter, Ready, respond};

    struct Fixed;
    impl Exporter for Fixed {
        fn metrics(&self) -> String {
            "m 1\n".to_owned()
        }
    }

    #[test]
    fn routes_requests() {
        let ready = Ready::default();
        assert_eq!(
            respond("GET /metrics HTTP/1.1", &Fixed, &ready),
            (200, "m 1\n".into())
        );
        assert_eq!(respond("GET /healthz HTTP/1.1", &Fixed, &ready).0, 200);
        assert_eq!(respond("GET /readyz HTTP/1.1", &Fixed, &ready).0, 503);
        ready.set(true);
        assert_eq!(respond("GET /readyz HTTP/1.1", &Fixed, &ready).0, 200);
        assert_eq!(respond("GET /nope HTTP/1.1", &Fixed, &ready).0, 404);
        assert_eq!(respond("POST /metrics HTTP/1.1", &Fixed, &ready).0, 400);
        assert_eq!(respond("", &Fixed, &ready).0, 400);
    }
}
