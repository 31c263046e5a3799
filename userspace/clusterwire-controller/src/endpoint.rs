//! `status.endpoint` of a `GatewayServer` from its Service, as the reference computes it:
//! `LoadBalancer` -> the ingress addresses and the service port; `NodePort` -> the address of
//! the node running the active gateway pod ([`crate::activepod`]) and the node port;
//! `ClusterIP` -> the cluster IPs and the service port. The protocol is the first port's.

use clusterwire_api::networking::gateway::{EndpointStatus, Protocol};
use k8s_openapi::api::core::v1::{Node, Service};
use kube::{Api, Client};

use crate::Error;

fn pending(service: &Service, reason: &'static str) -> Error {
    Error::EndpointPending {
        service: service.metadata.name.clone().unwrap_or_default(),
        reason,
    }
}

/// The endpoint remote clients reach the gateway at; `node` is the node of the active gateway
/// pod (needed for `NodePort` only).
pub async fn endpoint(
    client: &Client,
    service: &Service,
    node: Option<&str>,
) -> Result<EndpointStatus, Error> {
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
            (vec![node_address(client, service, node).await?], node_port)
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

/// The address (external, else internal) of the node running the active gateway pod.
async fn node_address(
    client: &Client,
    service: &Service,
    node: Option<&str>,
) -> Result<String, Error> {
    let node_name = node.ok_or_else(|| pending(service, "no active gateway pod yet"))?;
    let node = Api::<Node>::all(client.clone()).get(node_name).await?;
    let addresses = node.status.and_then(|s| s.addresses).unwrap_or_default();
    ["ExternalIP", "InternalIP"]
        .iter()
        .find_map(|kind| addresses.iter().find(|a| a.type_ == *kind))
        .map(|a| a.address.clone())
        .ok_or_else(|| pending(service, "the gateway's node has no address"))
}
