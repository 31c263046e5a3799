//! The active pod of a gateway: among the pods of its Deployment (those matching the
//! Deployment's `spec.selector.matchLabels`, in its namespace), running and not being deleted,
//! the one labelled `networking.liqo.io/active=true` (the gateway replica that won its Lease
//! labels itself and the others drop the label). With one replica and no label, the single
//! running pod counts as active, as the reference does when it runs without leader election.
//! Its IP is the gateway's `status.internalEndpoint.ip` and the `InternalFabric`'s
//! `spec.gatewayIP`; its node is `status.internalEndpoint.node` and, for `NodePort` servers, the
//! node whose address is the public endpoint.

use std::net::IpAddr;

use clusterwire_api::{common::Ip, networking::gateway::InternalGatewayEndpoint};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::{Api, Client, api::ListParams};

use crate::Error;

/// Label the active replica of a gateway carries.
pub const ACTIVE_LABEL: &str = "networking.liqo.io/active";

/// The active gateway pod, as far as the controller needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivePod {
    /// The pod's name.
    pub name: String,
    /// `status.podIP`.
    pub ip: IpAddr,
    /// `spec.nodeName`.
    pub node: String,
}

impl ActivePod {
    /// The gateway's `status.internalEndpoint`.
    pub fn internal_endpoint(&self) -> InternalGatewayEndpoint {
        InternalGatewayEndpoint {
            ip: Some(Ip(self.ip)),
            node: Some(self.node.clone()),
        }
    }
}

fn is_active(pod: &Pod) -> bool {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(ACTIVE_LABEL))
        .is_some_and(|v| v == "true")
}

fn is_running(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|p| p == "Running")
}

/// Picks the active pod among `pods` of a Deployment of `replicas` replicas.
pub fn pick(pods: &[Pod], replicas: i32) -> Result<&Pod, String> {
    let running: Vec<&Pod> = pods.iter().filter(|p| is_running(p)).collect();
    let active: Vec<&Pod> = running.iter().copied().filter(|p| is_active(p)).collect();
    match (active.as_slice(), running.as_slice()) {
        ([pod], _) => Ok(pod),
        ([], [pod]) if replicas <= 1 => Ok(pod),
        ([], []) => Err("no gateway pod is running yet".to_owned()),
        ([], _) => Err(format!(
            "no running gateway pod is labelled {ACTIVE_LABEL}=true yet"
        )),
        (several, _) => Err(format!(
            "{} running gateway pods are labelled {ACTIVE_LABEL}=true",
            several.len()
        )),
    }
}

/// The active pod of `deployment` (the live object: its selector and replicas).
pub async fn find(client: &Client, deployment: &Deployment) -> Result<ActivePod, Error> {
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let pending = |reason: String| Error::GatewayPodPending {
        deployment: name.clone(),
        reason,
    };
    let namespace = deployment
        .metadata
        .namespace
        .as_deref()
        .ok_or(Error::Unnamed { kind: "Deployment" })?;
    let spec = &deployment.spec;
    let selector = spec
        .selector
        .match_labels
        .as_ref()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| pending("the Deployment's selector has no matchLabels".to_owned()))?
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let replicas = spec.replicas.unwrap_or(1);
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await?;
    let pod = pick(&pods.items, replicas).map_err(pending)?;
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .filter(|ip| !ip.is_empty())
        .ok_or_else(|| pending(format!("active pod {pod_name} has no IP yet")))?
        .parse::<IpAddr>()
        .map_err(|e| pending(format!("active pod {pod_name}: status.podIP: {e}")))?;
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| pending(format!("active pod {pod_name} is not scheduled yet")))?;
    Ok(ActivePod {
        name: pod_name,
        ip,
        node,
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    use super::pick;

    fn pod(name: &str, phase: &str, active: bool) -> Pod {
        let mut labels = json!({"app": "gw"});
        if active {
            labels["networking.liqo.io/active"] = json!("true");
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "status": {"phase": phase, "podIP": "10.0.1.5"}
        }))
        .expect("pod")
    }

    fn name(result: Result<&Pod, String>) -> Result<String, String> {
        result.map(|p| p.metadata.name.clone().unwrap_or_default())
    }

    #[test]
    fn the_labelled_running_pod_is_active() {
        let pods = [
            pod("a", "Running", false),
            pod("b", "Running", true),
            pod("c", "Pending", true),
        ];
        assert_eq!(name(pick(&pods, 2)), Ok("b".to_owned()));
    }

    #[test]
    fn one_replica_without_label_is_active_several_are_not() {
        let pods = [pod("a", "Running", false), pod("b", "Failed", false)];
        assert_eq!(name(pick(&pods, 1)), Ok("a".to_owned()));
        assert_eq!(
            name(pick(&pods, 2)),
            Err("no running gateway pod is labelled networking.liqo.io/active=true yet".to_owned())
        );
        assert_eq!(
            name(pick(&[], 1)),
            Err("no gateway pod is running yet".to_owned())
        );
        let two = [pod("a", "Running", true), pod("b", "Running", true)];
        assert_eq!(
            name(pick(&two, 2)),
            Err("2 running gateway pods are labelled networking.liqo.io/active=true".to_owned())
        );
    }
}
