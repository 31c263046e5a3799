//! Prometheus metrics: the reference's names (`liqo_peer_*`, `liqo_wireguard_implementation`)
//! and clusterwire's own from the BPF maps (rewrites, clamps, encapsulation, drops by reason,
//! per-peer packets and bytes). The main loop refreshes a [`Sample`]; the endpoint renders it.
use std::{fmt::Write as _, sync::Mutex};

use clusterwire_daemon::http::Exporter;

/// Everything exported, as last sampled.
#[derive(Debug, Default, Clone)]
pub struct Sample {
    pub cluster_id: String,
    pub implementation: String,
    pub geneve: &'static str,
    pub connected: bool,
    pub latency_us: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub drops: Vec<(&'static str, u64)>,
    pub events: Vec<(&'static str, u64)>,
    pub peer_packets: (u64, u64),
    pub peer_bytes: (u64, u64),
    pub applies: u64,
    pub apply_errors: u64,
    /// The active replica (always, without replica flags); a standby is 0.
    pub leader: bool,
}

/// The shared sample behind the endpoint.
#[derive(Debug, Default)]
pub struct Metrics(pub Mutex<Sample>);

impl Exporter for Metrics {
    fn metrics(&self) -> String {
        let s = self.0.lock().map(|s| s.clone()).unwrap_or_default();
        render(&s)
    }
}

/// The Prometheus text exposition of `s`.
pub fn render(s: &Sample) -> String {
    let mut out = String::new();
    let peer = format!(
        "driver=\"wireguard\",cluster_id=\"{}\"",
        s.cluster_id.replace('"', "")
    );
    let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, u64)]| {
        write_metric(&mut out, name, kind, help, lines);
    };
    metric(
        "liqo_peer_is_connected",
        "gauge",
        "Whether the tunnel to the peer answers the health check.",
        &[(peer.clone(), u64::from(s.connected))],
    );
    metric(
        "liqo_peer_latency_us",
        "gauge",
        "Round trip of the last health check, microseconds.",
        &[(peer.clone(), s.latency_us)],
    );
    metric(
        "liqo_peer_receive_bytes_total",
        "counter",
        "Bytes received from the peer by WireGuard.",
        &[(peer.clone(), s.rx_bytes)],
    );
    metric(
        "liqo_peer_transmit_bytes_total",
        "counter",
        "Bytes sent to the peer by WireGuard.",
        &[(peer, s.tx_bytes)],
    );
    metric(
        "liqo_wireguard_implementation",
        "gauge",
        "The WireGuard implementation in use (1 for the one used).",
        &[(format!("implementation=\"{}\"", s.implementation), 1)],
    );
    metric(
        "clusterwire_geneve_implementation",
        "gauge",
        "The Geneve implementation toward the nodes (1 for the one used: kernel or ebpf).",
        &[(format!("implementation=\"{}\"", s.geneve), 1)],
    );
    let drops: Vec<_> = s
        .drops
        .iter()
        .map(|(reason, n)| (format!("reason=\"{reason}\""), *n))
        .collect();
    metric(
        "clusterwire_datapath_drops_total",
        "counter",
        "Packets the datapath dropped, by reason.",
        &drops,
    );
    let events: Vec<_> = s
        .events
        .iter()
        .map(|(event, n)| (format!("event=\"{event}\""), *n))
        .collect();
    metric(
        "clusterwire_datapath_events_total",
        "counter",
        "What the datapath did (NAT rewrites, MSS clamps, Geneve encapsulations...).",
        &events,
    );
    metric(
        "clusterwire_peer_packets_total",
        "counter",
        "Packets through the tunnel NAT (rx: out of the tunnel, tx: into it).",
        &[
            ("direction=\"rx\"".to_owned(), s.peer_packets.0),
            ("direction=\"tx\"".to_owned(), s.peer_packets.1),
        ],
    );
    metric(
        "clusterwire_peer_bytes_total",
        "counter",
        "Bytes through the tunnel NAT.",
        &[
            ("direction=\"rx\"".to_owned(), s.peer_bytes.0),
            ("direction=\"tx\"".to_owned(), s.peer_bytes.1),
        ],
    );
    render_gateway(&mut out, s);
    out
}

/// The gateway's own metrics: applies, and whether this replica is the active one.
fn render_gateway(out: &mut String, s: &Sample) {
    write_metric(
        out,
        "clusterwire_gateway_applies_total",
        "counter",
        "Desired-state applications, and failed ones.",
        &[
            ("result=\"ok\"".to_owned(), s.applies),
            ("result=\"error\"".to_owned(), s.apply_errors),
        ],
    );
    write_metric(
        out,
        "clusterwire_gateway_leader",
        "gauge",
        "Whether this replica is the active one (holds the lease); 1 without replicas.",
        &[(String::new(), u64::from(s.leader))],
    );
}

/// One metric family: HELP, TYPE and a line per label set (none when the labels are empty).
fn write_metric(out: &mut String, name: &str, kind: &str, help: &str, lines: &[(String, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in lines {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Sample, render};

    #[test]
    fn renders_the_reference_names_with_their_labels() {
        let s = Sample {
            cluster_id: "cl02".into(),
            implementation: "userspace".into(),
            connected: true,
            latency_us: 420,
            rx_bytes: 10,
            tx_bytes: 20,
            drops: vec![("spoofed_source", 3)],
            leader: true,
            ..Sample::default()
        };
        let text = render(&s);
        for line in [
            "liqo_peer_is_connected{driver=\"wireguard\",cluster_id=\"cl02\"} 1",
            "liqo_peer_latency_us{driver=\"wireguard\",cluster_id=\"cl02\"} 420",
            "liqo_peer_receive_bytes_total{driver=\"wireguard\",cluster_id=\"cl02\"} 10",
            "liqo_peer_transmit_bytes_total{driver=\"wireguard\",cluster_id=\"cl02\"} 20",
            "liqo_wireguard_implementation{implementation=\"userspace\"} 1",
            "clusterwire_datapath_drops_total{reason=\"spoofed_source\"} 3",
            "clusterwire_gateway_leader 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        let standby = render(&Sample::default());
        assert!(standby.lines().any(|l| l == "clusterwire_gateway_leader 0"));
    }
}
