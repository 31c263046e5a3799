//! `cwctl lab status`: every pod with its real address and the address each other cluster
//! reaches it by; every gateway's Connection with its status and latency (text or JSON).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    Paths, Settings,
    connections::{self, ConnectionRow},
    daemons,
    plan::Plan,
    table,
};

/// One pod as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodStatus {
    /// Cluster.
    pub cluster: String,
    /// Pod name.
    pub pod: String,
    /// Node it runs on.
    pub node: String,
    /// Its address in its own cluster.
    pub address: String,
    /// Other cluster -> the address that cluster reaches it by.
    pub seen_from: BTreeMap<String, String>,
}

/// Everything `status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Settings of the lab.
    pub clusters: u8,
    /// `--wireguard`.
    pub wireguard: String,
    /// `--geneve`.
    pub geneve: String,
    /// Whether the client gateways have standby replicas (`up --standby`).
    pub standby: bool,
    /// Whether daemons were started.
    pub daemons: bool,
    /// Instances whose daemon runs.
    pub running: Vec<String>,
    /// Every application pod.
    pub pods: Vec<PodStatus>,
    /// Every gateway's Connection.
    pub connections: Vec<ConnectionRow>,
}

/// Every pod of the plan.
pub fn pods(plan: &Plan) -> Vec<PodStatus> {
    let mut all = Vec::new();
    for cluster in &plan.clusters {
        for (node, pod) in cluster.pods() {
            let seen_from = plan
                .clusters
                .iter()
                .filter(|c| c.name != cluster.name)
                .filter_map(|c| {
                    plan.seen_from(&c.name, &cluster.name, pod.address)
                        .map(|a| (c.name.clone(), a.to_string()))
                })
                .collect();
            all.push(PodStatus {
                cluster: cluster.name.clone(),
                pod: pod.name.clone(),
                node: node.name.clone(),
                address: pod.address.to_string(),
                seen_from,
            });
        }
    }
    all
}

/// The pod table: one column per cluster.
pub fn format_pods(plan: &Plan, pods: &[PodStatus]) -> String {
    let mut headers = vec!["POD".to_owned(), "NODE".to_owned(), "ADDRESS".to_owned()];
    headers.extend(
        plan.clusters
            .iter()
            .map(|c| format!("FROM {}", c.name.to_uppercase())),
    );
    let body: Vec<Vec<String>> = pods
        .iter()
        .map(|p| {
            let mut row = vec![
                format!("{}/{}", p.cluster, p.pod),
                p.node.clone(),
                p.address.clone(),
            ];
            row.extend(plan.clusters.iter().map(|c| {
                if c.name == p.cluster {
                    p.address.clone()
                } else {
                    p.seen_from
                        .get(&c.name)
                        .cloned()
                        .unwrap_or_else(|| "-".to_owned())
                }
            }));
            row
        })
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    table::format(&headers, &body)
}

/// Runs `cwctl lab status`.
pub fn run(plan: &Plan, settings: &Settings, paths: &Paths, json: bool) -> anyhow::Result<()> {
    let Settings {
        clusters,
        wireguard,
        geneve,
        mixed,
        standby,
        daemons: with_daemons,
        bin_dir: _,
    } = settings.clone();
    let (wireguard, geneve) = if mixed {
        ("mixed".to_owned(), "mixed".to_owned())
    } else {
        (wireguard, geneve)
    };
    let mut running = Vec::new();
    for cluster in &plan.clusters {
        let instances = cluster
            .nodes
            .iter()
            .map(|n| &n.instance)
            .map(String::as_str)
            .chain(
                cluster
                    .gateways
                    .iter()
                    .flat_map(|g| g.replicas().map(|(_, _, instance)| instance)),
            );
        running.extend(
            instances
                .filter(|i| daemons::is_running(paths, i))
                .map(str::to_owned),
        );
    }
    let status = Status {
        clusters,
        wireguard,
        geneve,
        standby,
        daemons: with_daemons,
        running,
        pods: pods(plan),
        connections: connections::rows(plan, paths),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    println!(
        "{} clusters, wireguard {}, geneve {}{}, {} daemons running{}",
        status.clusters,
        status.wireguard,
        status.geneve,
        if status.standby {
            ", standby client gateways"
        } else {
            ""
        },
        status.running.len(),
        if status.daemons {
            ""
        } else {
            " (--no-daemons)"
        }
    );
    println!();
    print!("{}", format_pods(plan, &status.pods));
    println!();
    print!("{}", connections::format_rows(&status.connections));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pod_with_the_address_each_cluster_uses() {
        let plan = Plan::new(3).expect("plan");
        let all = pods(&plan);
        assert_eq!(all.len(), 12);
        let text = format_pods(&plan, &all);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("POD        NODE     ADDRESS    FROM CL01  FROM CL02  FROM CL03")
        );
        assert_eq!(
            lines.next(),
            Some("cl01/n1-a  cl01-n1  10.0.1.10  10.0.1.10  10.1.1.10  10.1.1.10")
        );
        let json = serde_json::to_value(&all[0]).expect("json");
        assert_eq!(json["seen_from"]["cl02"], "10.1.1.10");
    }
}
