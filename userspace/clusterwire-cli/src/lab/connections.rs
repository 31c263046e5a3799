//! What the gateways report: their Connection status files (`DIR/status/connection-<ns>-gw-
//! <name>.yaml`) and the WireGuard and Geneve implementations they log; waiting for every Connection to be
//! `Connected`, and the table `cwctl lab up` and `cwctl lab status` print.

use std::{
    fs,
    time::{Duration, Instant},
};

use anyhow::bail;
use serde::Serialize;

use super::{
    Paths,
    daemons::{self, Running},
    plan::{Plan, role_name},
    table,
};

/// One gateway's Connection as read from its status file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionRow {
    /// The cluster.
    pub cluster: String,
    /// `namespace/name` of the gateway.
    pub gateway: String,
    /// `server` / `client`.
    pub role: &'static str,
    /// The peer cluster.
    pub peer: String,
    /// `kernel` / `userspace` (from the gateway's log), `-` when unknown.
    pub tunnel: String,
    /// `kernel` / `ebpf` (from the gateway's log), `-` when unknown.
    pub geneve: String,
    /// `status.value`, `-` when there is no status file yet.
    pub status: String,
    /// `status.latency.value`, `-` when absent.
    pub latency: String,
    /// With standby replicas: the instance holding the lease (the active replica), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
}

/// `status.value` and `status.latency.value` of a Connection status file.
pub fn parse_status(yaml: &str) -> Option<(String, String)> {
    let value: serde_json::Value = serde_saphyr::from_str(yaml).ok()?;
    let text = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    Some((
        text("/status/value")?,
        text("/status/latency/value").unwrap_or_else(|| "-".to_owned()),
    ))
}

/// The implementation named by the last `<what> implementation: <name>` phrase of a log
/// (`what` is `wireguard` or `geneve`).
pub fn implementation_from_log(log: &str, what: &str) -> Option<String> {
    let needle = format!("{what} implementation: ");
    let line = log.lines().rev().find(|l| l.contains(&needle))?;
    let rest = &line[line.find(&needle)? + needle.len()..];
    let word: String = rest
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    (!word.is_empty()).then_some(word)
}

/// Every gateway's Connection, now.
pub fn rows(plan: &Plan, paths: &Paths) -> Vec<ConnectionRow> {
    let mut rows = Vec::new();
    for cluster in &plan.clusters {
        for gateway in &cluster.gateways {
            let file = paths
                .manifests(&cluster.name)
                .join(gateway.connection_file());
            let (status, latency) = fs::read_to_string(&file)
                .ok()
                .and_then(|t| parse_status(&t))
                .unwrap_or_else(|| ("-".to_owned(), "-".to_owned()));
            // With replicas, the lease file names the active one (its `--instance`).
            let active = gateway.standby.as_ref().and_then(|_| {
                let holder = fs::read_to_string(paths.lease(&cluster.name, &gateway.peer)).ok()?;
                let holder = holder.trim();
                gateway
                    .replicas()
                    .find(|(_, _, instance)| *instance == holder)
                    .map(|(_, _, instance)| instance.to_owned())
            });
            let instance = active.as_deref().unwrap_or(&gateway.instance);
            let log = fs::read_to_string(paths.log(instance)).unwrap_or_default();
            let implementation =
                |what| implementation_from_log(&log, what).unwrap_or_else(|| "-".to_owned());
            let (tunnel, geneve) = (implementation("wireguard"), implementation("geneve"));
            rows.push(ConnectionRow {
                cluster: cluster.name.clone(),
                gateway: gateway.key(),
                role: role_name(gateway.role),
                peer: gateway.peer.clone(),
                tunnel,
                geneve,
                status,
                latency,
                active,
            });
        }
    }
    rows
}

/// The Connection table.
pub fn format_rows(rows: &[ConnectionRow]) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.cluster.clone(),
                r.gateway.clone(),
                r.role.to_owned(),
                r.peer.clone(),
                r.tunnel.clone(),
                r.geneve.clone(),
                r.status.clone(),
                r.latency.clone(),
            ]
        })
        .collect();
    table::format(
        &[
            "CLUSTER",
            "GATEWAY",
            "ROLE",
            "PEER",
            "TUNNEL",
            "GENEVE",
            "CONNECTION",
            "LATENCY",
        ],
        &body,
    )
}

/// Waits until every Connection is `Connected`, printing progress every 5 s; fails naming the
/// Connections that are not, or the daemon that exited.
pub fn wait_connected(
    plan: &Plan,
    paths: &Paths,
    running: &mut Running,
    timeout: Duration,
) -> anyhow::Result<Vec<ConnectionRow>> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        if let Some((name, status)) = running.exited() {
            bail!(
                "daemon {name} exited ({status}); last lines of {}:\n{}\n\
                 clean up with `cwctl lab down`",
                paths.log(&name).display(),
                daemons::log_tail(paths, &name, 20)
            );
        }
        let rows = rows(plan, paths);
        let waiting: Vec<String> = rows
            .iter()
            .filter(|r| r.status != "Connected")
            .map(|r| {
                let status = if r.status == "-" {
                    "no status yet"
                } else {
                    &r.status
                };
                format!("{} {} ({status})", r.cluster, r.gateway)
            })
            .collect();
        if waiting.is_empty() {
            return Ok(rows);
        }
        if started.elapsed() >= timeout {
            bail!(
                "not connected after {} s: {}; see the gateway logs in {}; \
                 clean up with `cwctl lab down`",
                timeout.as_secs(),
                waiting.join(", "),
                paths.logs().display()
            );
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            println!(
                "  {} s: waiting for {}",
                started.elapsed().as_secs(),
                waiting.join(", ")
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_latency_are_read_from_a_connection_file() {
        let yaml = "apiVersion: networking.liqo.io/v1beta1\nkind: Connection\nmetadata:\n  \
                    name: gw-cl02\n  namespace: liqo-tenant-cl02\nspec:\n  type: Server\n\
                    status:\n  value: Connected\n  latency:\n    value: 412μs\n    \
                    timestamp: \"2026-11-29T07:00:00Z\"\n";
        assert_eq!(
            parse_status(yaml),
            Some(("Connected".to_owned(), "412μs".to_owned()))
        );
        assert_eq!(
            parse_status("kind: Connection\nstatus:\n  value: Connecting\n"),
            Some(("Connecting".to_owned(), "-".to_owned()))
        );
        assert_eq!(parse_status("kind: Connection\n"), None);
        assert_eq!(parse_status("[not: yaml"), None);
    }

    #[test]
    fn implementation_is_the_last_one_logged() {
        let log = "\u{1b}[2m2026\u{1b}[0m INFO wireguard implementation: kernel\n\
                   x INFO wireguard implementation: userspace (gotatun)\nother\n";
        assert_eq!(
            implementation_from_log(log, "wireguard").as_deref(),
            Some("userspace")
        );
        assert_eq!(implementation_from_log("nothing", "wireguard"), None);
        let log = "INFO datapath attached (geneve implementation: ebpf) instance=x\n";
        assert_eq!(
            implementation_from_log(log, "geneve").as_deref(),
            Some("ebpf")
        );
    }

    #[test]
    fn table_lines_up() {
        let rows = vec![
            ConnectionRow {
                cluster: "cl01".into(),
                gateway: "liqo-tenant-cl02/cl02".into(),
                role: "server",
                peer: "cl02".into(),
                tunnel: "kernel".into(),
                geneve: "ebpf".into(),
                status: "Connected".into(),
                latency: "412μs".into(),
                active: None,
            },
            ConnectionRow {
                cluster: "cl02".into(),
                gateway: "liqo-tenant-cl01/cl01".into(),
                role: "client",
                peer: "cl01".into(),
                tunnel: "userspace".into(),
                geneve: "ebpf".into(),
                status: "Connecting".into(),
                latency: "-".into(),
                active: None,
            },
        ];
        let text = format_rows(&rows);
        let expected = "\
CLUSTER  GATEWAY                ROLE    PEER  TUNNEL     GENEVE  CONNECTION  LATENCY
cl01     liqo-tenant-cl02/cl02  server  cl02  kernel     ebpf    Connected   412μs
cl02     liqo-tenant-cl01/cl01  client  cl01  userspace  ebpf    Connecting  -
";
        assert_eq!(text, expected);
    }
}
