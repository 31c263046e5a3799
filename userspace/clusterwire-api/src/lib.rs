//! Liqo-compatible Kubernetes resources (CRD types) for clusterwire.
//!
//! The resources of Liqo's network module, with the same groups, kinds, field names, short
//! names, scopes, category (`liqo`) and `kubectl get` columns, so manifests written for Liqo
//! apply unchanged:
//!
//! - `networking.liqo.io/v1beta1` ([`networking`]): Configuration, `GatewayServer`, `GatewayClient`,
//!   Connection, `PublicKey`, `WgGatewayServerTemplate`, `WgGatewayClientTemplate`, `InternalNode`
//!   (cluster-scoped), `InternalFabric`;
//! - `ipam.liqo.io/v1alpha1` ([`ipam`]): IP, Network.
//!
//! [`crdgen::render`] produces the CRD YAML committed under `crds/` (`cargo xtask crdgen`);
//! the `validation` feature (default) checks manifests against those CRDs client-side.
//!
//! # Validation in the schema
//! CIDRs use the apiserver's `cidr` format; IPs a CEL `isIP(self)` rule (IPv4 or IPv6; needs
//! Kubernetes 1.31+ for the CEL IP library); ports are 1..65535; MTUs 576..9000 (576 is the
//! smallest IPv4 datagram every host must accept, 9000 jumbo frames; Liqo's default is 1340);
//! service type, protocol, connection type and connection status are enums. CEL rules
//! (`x-kubernetes-validations`) express what the `OpenAPI` subset cannot: `port` and `ports`
//! exclusive on gateway endpoints, a client endpoint needs one of them, `nodePort` and
//! `loadBalancerIP` only with a matching service type, immutable `IP.spec.ip`,
//! `IP.status.{ip,cidr}` and `Network.spec.cidr` (`self == oldSelf`). Every status has
//! `conditions` (list-map keyed by `type`) and `observedGeneration`.
//!
//! # One CIDR or a list
//! Liqo's Configuration first had one CIDR per field (`pod: 10.243.0.0/16`, the form the Liqo
//! documentation still shows) and now has lists (`pod: [10.243.0.0/16]`). clusterwire accepts
//! both in `spec.{local,remote}.cidr.{pod,external}`: in Rust, [`common::CidrList`] deserializes
//! either and always serializes a list; in the schema the field is an untyped node (structural
//! schemas allow that only with `x-kubernetes-preserve-unknown-fields: true`) carrying
//! `format: cidr` (which applies to the scalar form), and `items` with `type: string` and
//! `format: cidr` (which apply to the list form). CEL cannot see untyped nodes, so no CEL rule
//! references these fields, and an apiserver accepts a number or an object there; the
//! controller rejects those when it deserializes the resource. Statuses always carry lists.
//!
//! # clusterwire's own additions
//! clusterwire's data plane differs from Liqo's (eBPF maps instead of per-node Geneve netdevs
//! and nftables; one `collect_md` Geneve device per node and per gateway; stateless eBPF NAT),
//! so it needs less, not more: no new resource kinds, only optional fields that Liqo clients
//! ignore:
//! - `InternalNode.spec.nodeAddress`: the node's underlay address, the Geneve destination a
//!   gateway's single `collect_md` device uses for that node (Liqo instead creates one netdev
//!   per node on every gateway, named by `spec.interface.gateway.name`, which becomes optional);
//! - `InternalFabric.spec.vni`: the VNI that identifies the gateway in each node's single
//!   `collect_md` device and keys the eBPF maps (Liqo creates one netdev per gateway on every
//!   node, `spec.interface.node.name`, which becomes optional); `InternalFabric` gains a status;
//! - `ports` beside `port` on gateway endpoints (exclusive): a server listening on several
//!   ports, one tunnel each, so one peer's traffic can use several gateway cores.
//!
//! Not modelled: `GatewayClient` `spec.affinity` and IP `spec.serviceTemplate` (their Kubernetes
//! schemas are large and clusterwire does not use them yet); Liqo's `ExternalName` service type.
#![forbid(unsafe_code)]

pub mod common;
pub mod crdgen;
pub mod ipam;
pub mod networking;
#[cfg(feature = "validation")]
pub mod validation;
