//! `status.endpoint` of a `GatewayServer` from its Service, as the reference computes it:
//! `LoadBalancer` -> the ingress addresses and the service port; `NodePort` -> the address of
//! the node running the (active) gateway pod and the node port; `ClusterIP` -> the cluster IPs
//! and the service port. The protocol is the first port's.

use clusterwire_api::networking::gateway::{EndpointStatus, Protocol};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::{Api, Client, api::ListParams};

use crate::Error;

/// Label the active replica of a gateway carries.
pub const ACTIVE_LABEL: &str = "networking.liqo.io/active";

fn pending(service: &Service, reason: &'static str) -> Error {
    Error::EndpointPending {
        service: service.metadata.name.clone().unwrap_or_default(),
        reason,
    }
}

/// The endpoint remote clients reach the gateway at.
pub async fn endpoint(client: &Client, service: &Service) -> Result<EndpointStatus, Error> {
    let spec = service
        .spec
        .as_ref()
        .ok_or_else(|| pending(service, "no spec"))?;
    let port = spec
        .ports
        .as_ref()
        .and_then(|p| p.first())
        .ok_or_else(|| pending(service, "no ports"))?;
    let protocol = match port.protocol.as_deref() {
        Some("TCP") => Protocol::TCP,
        _ => Protocol::UDP,
    };
    let (addresses, port) = match spec.type_.as_deref() {
        Some("LoadBalancer") => {
            let addresses: Vec<String> = service
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
                .collect();
            if addresses.is_empty() {
                return Err(pending(service, "no load balancer ingress yet"));
            }
            (addresses, port.port)
        }
        Some("NodePort") => {
            let node_port = port
                .node_port
                .ok_or_else(|| pending(service, "no node port allocated yet"))?;
            (vec![node_address(client, service).await?], node_port)
        }
        _ => {
            let addresses: Vec<String> = spec
                .cluster_ips
                .clone()
                .or_else(|| spec.cluster_ip.clone().map(|ip| vec![ip]))
                .unwrap_or_default()
                .into_iter()
                .filter(|ip| !ip.is_empty() && ip != "None")
                .collect();
            if addresses.is_empty() {
                return Err(pending(service, "no cluster IP yet"));
            }
            (addresses, port.port)
        }
    };
    Ok(EndpointStatus {
        addresses,
        port: Some(port),
        ports: None,
        protocol: Some(protocol),
    })
}

/// The address (external, else internal) of the node running the gateway pod the Service
/// selects, the active replica first.
async fn node_address(client: &Client, service: &Service) -> Result<String, Error> {
    let namespace = service.metadata.namespace.as_deref().unwrap_or("default");
    let selector = service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| pending(service, "no pod selector"))?
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods.list(&ListParams::default().labels(&selector)).await?;
    let scheduled = |p: &&Pod| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
    let active = |p: &&Pod| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(ACTIVE_LABEL))
            .is_some_and(|v| v == "true")
    };
    let pod = list
        .items
        .iter()
        .filter(scheduled)
        .find(active)
        .or_else(|| list.items.iter().find(scheduled))
        .ok_or_else(|| pending(service, "no gateway pod scheduled yet"))?;
    let node_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    let node = Api::<Node>::all(client.clone()).get(&node_name).await?;
    let addresses = node.status.and_then(|s| s.addresses).unwrap_or_default();
    ["ExternalIP", "InternalIP"]
        .iter()
        .find_map(|kind| addresses.iter().find(|a| a.type_ == *kind))
        .map(|a| a.address.clone())
        .ok_or_else(|| pending(service, "the gateway's node has no address"))
}
