//! The controller's HTTP endpoint: `GET /metrics` (reconcile counters, Prometheus text),
//! `/healthz` (the process answers) and `/readyz` (the IPAM was rebuilt and the controllers
//! run; on a replica that is not the leader, not ready). One request per connection.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
};

/// Reconcile counters and readiness, shared by the controllers and the endpoint.
#[derive(Debug, Default)]
pub struct Metrics {
    ready: AtomicBool,
    leader: AtomicBool,
    /// (controller, result) -> count; result is `ok` or an error kind.
    reconciles: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Metrics {
    /// Counts one reconcile of `controller` ending in `result` (`ok` or an error kind).
    pub fn count(&self, controller: &'static str, result: &'static str) {
        *self
            .reconciles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((controller, result))
            .or_default() += 1;
    }

    /// Sets readiness.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Sets whether this replica leads.
    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP clusterwire_controller_reconciles_total Reconciles by controller and result.\n\
             # TYPE clusterwire_controller_reconciles_total counter\n",
        );
        for ((controller, result), n) in self
            .reconciles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "clusterwire_controller_reconciles_total{{controller=\"{controller}\",result=\"{result}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP clusterwire_controller_leader Whether this replica is the leader.\n\
             # TYPE clusterwire_controller_leader gauge\nclusterwire_controller_leader {}",
            u8::from(self.leader.load(Ordering::Relaxed))
        );
        out
    }

    /// Status and body for a request line.
    pub fn respond(&self, request: &str) -> (u16, String) {
        let mut parts = request.split_whitespace();
        let (Some("GET"), Some(path)) = (parts.next(), parts.next()) else {
            return (400, "bad request\n".to_owned());
        };
        match path {
            "/metrics" => (200, self.render()),
            "/healthz" => (200, "ok\n".to_owned()),
            "/readyz" if self.ready.load(Ordering::Relaxed) => (200, "ready\n".to_owned()),
            "/readyz" => (503, "not ready\n".to_owned()),
            _ => (404, "not found\n".to_owned()),
        }
    }
}

/// Serves the endpoint on `addr` until the task is dropped.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (mut stream, _) = listener.accept().await?;
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
            let Ok(Ok(n)) = read else { return };
            let text = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = metrics.respond(text.lines().next().unwrap_or_default());
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
    use super::Metrics;

    #[test]
    fn routes_and_counts() {
        let m = Metrics::default();
        assert_eq!(m.respond("GET /readyz HTTP/1.1").0, 503);
        m.set_ready(true);
        assert_eq!(m.respond("GET /readyz HTTP/1.1").0, 200);
        assert_eq!(m.respond("GET /healthz HTTP/1.1").0, 200);
        assert_eq!(m.respond("POST /metrics HTTP/1.1").0, 400);
        assert_eq!(m.respond("GET /x HTTP/1.1").0, 404);
        m.count("configuration", "ok");
        m.count("configuration", "ok");
        m.count("configuration", "pools_exhausted");
        let text = m.respond("GET /metrics HTTP/1.1").1;
        assert!(text.contains(
            "clusterwire_controller_reconciles_total{controller=\"configuration\",result=\"ok\"} 2\n"
        ));
        assert!(text.contains("result=\"pools_exhausted\"} 1\n"));
    }
}
