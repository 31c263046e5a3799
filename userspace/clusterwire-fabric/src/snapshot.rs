//! A typed snapshot of the resources a gateway or agent reads, keyed by namespace/name.
//!
//! Filled by a source (the `--manifests DIR` files today, Kubernetes watches later) and read by
//! the pure functions of [`crate::desired`]. Only the kinds the daemons need are kept:
//! Configuration, `GatewayServer`, `GatewayClient`, `PublicKey`, `InternalNode`,
//! `InternalFabric`, IP, and core `Node` objects (addresses and pod CIDRs).

use std::{collections::BTreeMap, fmt};

use clusterwire_api::{
    common::REMOTE_CLUSTER_ID_LABEL,
    ipam::IP,
    networking::{
        Configuration, GatewayClient, GatewayServer, InternalFabric, InternalNode, PublicKey,
    },
};
use k8s_openapi::{api::core::v1::Node, apimachinery::pkg::apis::meta::v1::ObjectMeta};

use crate::node::NodeSummary;

/// Namespace and name of an object; the namespace is empty for cluster-scoped kinds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Key {
    /// Namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl Key {
    /// A namespaced key.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// A cluster-scoped key.
    pub fn cluster(name: impl Into<String>) -> Self {
        Self::new("", name)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// The kinds a snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `networking.liqo.io/v1beta1` Configuration.
    Configuration,
    /// `networking.liqo.io/v1beta1` `GatewayServer`.
    GatewayServer,
    /// `networking.liqo.io/v1beta1` `GatewayClient`.
    GatewayClient,
    /// `networking.liqo.io/v1beta1` `PublicKey`.
    PublicKey,
    /// `networking.liqo.io/v1beta1` `InternalNode` (cluster-scoped).
    InternalNode,
    /// `networking.liqo.io/v1beta1` `InternalFabric`.
    InternalFabric,
    /// `ipam.liqo.io/v1alpha1` IP.
    Ip,
    /// core `v1` Node (cluster-scoped).
    Node,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Self; 8] = [
        Self::Configuration,
        Self::GatewayServer,
        Self::GatewayClient,
        Self::PublicKey,
        Self::InternalNode,
        Self::InternalFabric,
        Self::Ip,
        Self::Node,
    ];

    /// The `kind` field.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Configuration => "Configuration",
            Self::GatewayServer => "GatewayServer",
            Self::GatewayClient => "GatewayClient",
            Self::PublicKey => "PublicKey",
            Self::InternalNode => "InternalNode",
            Self::InternalFabric => "InternalFabric",
            Self::Ip => "IP",
            Self::Node => "Node",
        }
    }

    /// The `apiVersion` field.
    pub const fn api_version(self) -> &'static str {
        match self {
            Self::Ip => "ipam.liqo.io/v1alpha1",
            Self::Node => "v1",
            _ => "networking.liqo.io/v1beta1",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub const fn namespaced(self) -> bool {
        !matches!(self, Self::InternalNode | Self::Node)
    }

    /// The kind of `apiVersion` + `kind`, if a snapshot holds it.
    pub fn from_type(api_version: &str, kind: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.api_version() == api_version && k.name() == kind)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One object of a kind a snapshot holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// A Configuration.
    Configuration(Box<Configuration>),
    /// A `GatewayServer`.
    GatewayServer(Box<GatewayServer>),
    /// A `GatewayClient`.
    GatewayClient(Box<GatewayClient>),
    /// A `PublicKey`.
    PublicKey(Box<PublicKey>),
    /// An `InternalNode`.
    InternalNode(Box<InternalNode>),
    /// An `InternalFabric`.
    InternalFabric(Box<InternalFabric>),
    /// An IP.
    Ip(Box<IP>),
    /// A Node.
    Node(Box<Node>),
}

impl Object {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Configuration(_) => Kind::Configuration,
            Self::GatewayServer(_) => Kind::GatewayServer,
            Self::GatewayClient(_) => Kind::GatewayClient,
            Self::PublicKey(_) => Kind::PublicKey,
            Self::InternalNode(_) => Kind::InternalNode,
            Self::InternalFabric(_) => Kind::InternalFabric,
            Self::Ip(_) => Kind::Ip,
            Self::Node(_) => Kind::Node,
        }
    }

    /// Its metadata.
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Self::Configuration(o) => &o.metadata,
            Self::GatewayServer(o) => &o.metadata,
            Self::GatewayClient(o) => &o.metadata,
            Self::PublicKey(o) => &o.metadata,
            Self::InternalNode(o) => &o.metadata,
            Self::InternalFabric(o) => &o.metadata,
            Self::Ip(o) => &o.metadata,
            Self::Node(o) => &o.metadata,
        }
    }

    /// Its key: cluster-scoped kinds ignore any namespace, namespaced ones default to
    /// `default` (as `kubectl apply` does).
    pub fn key(&self) -> Key {
        key_of(self.kind(), self.meta())
    }
}

/// The key of an object of `kind` with metadata `meta`.
pub fn key_of(kind: Kind, meta: &ObjectMeta) -> Key {
    let name = meta.name.clone().unwrap_or_default();
    if kind.namespaced() {
        Key::new(meta.namespace.as_deref().unwrap_or("default"), name)
    } else {
        Key::cluster(name)
    }
}

/// The `liqo.io/remote-cluster-id` label of an object.
pub fn remote_cluster_id(meta: &ObjectMeta) -> Option<&str> {
    meta.labels
        .as_ref()?
        .get(REMOTE_CLUSTER_ID_LABEL)
        .map(String::as_str)
}

/// The resources one daemon reads, by kind then key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Configurations (one per remote cluster).
    pub configurations: BTreeMap<Key, Box<Configuration>>,
    /// Gateway servers.
    pub gateway_servers: BTreeMap<Key, Box<GatewayServer>>,
    /// Gateway clients.
    pub gateway_clients: BTreeMap<Key, Box<GatewayClient>>,
    /// Public keys of remote gateways.
    pub public_keys: BTreeMap<Key, Box<PublicKey>>,
    /// Internal nodes (cluster-scoped: empty namespace).
    pub internal_nodes: BTreeMap<Key, Box<InternalNode>>,
    /// Internal fabrics (one per gateway).
    pub internal_fabrics: BTreeMap<Key, Box<InternalFabric>>,
    /// Single-IP mappings.
    pub ips: BTreeMap<Key, Box<IP>>,
    /// Core nodes (cluster-scoped: empty namespace), the fields the daemons read.
    pub nodes: BTreeMap<Key, Box<NodeSummary>>,
}

impl Snapshot {
    /// Adds or replaces an object; returns the one it replaced.
    pub fn insert(&mut self, object: Object) -> Option<Object> {
        let key = object.key();
        match object {
            Object::Configuration(o) => self
                .configurations
                .insert(key, o)
                .map(Object::Configuration),
            Object::GatewayServer(o) => self
                .gateway_servers
                .insert(key, o)
                .map(Object::GatewayServer),
            Object::GatewayClient(o) => self
                .gateway_clients
                .insert(key, o)
                .map(Object::GatewayClient),
            Object::PublicKey(o) => self.public_keys.insert(key, o).map(Object::PublicKey),
            Object::InternalNode(o) => self.internal_nodes.insert(key, o).map(Object::InternalNode),
            Object::InternalFabric(o) => self
                .internal_fabrics
                .insert(key, o)
                .map(Object::InternalFabric),
            Object::Ip(o) => self.ips.insert(key, o).map(Object::Ip),
            Object::Node(o) => self
                .nodes
                .insert(key, Box::new(NodeSummary::from(*o)))
                .map(|o| Object::Node(Box::new(Node::from(*o)))),
        }
    }

    /// The object of `kind` at `key`.
    pub fn get(&self, kind: Kind, key: &Key) -> Option<Object> {
        match kind {
            Kind::Configuration => self
                .configurations
                .get(key)
                .map(|o| Object::Configuration(o.clone())),
            Kind::GatewayServer => self
                .gateway_servers
                .get(key)
                .map(|o| Object::GatewayServer(o.clone())),
            Kind::GatewayClient => self
                .gateway_clients
                .get(key)
                .map(|o| Object::GatewayClient(o.clone())),
            Kind::PublicKey => self
                .public_keys
                .get(key)
                .map(|o| Object::PublicKey(o.clone())),
            Kind::InternalNode => self
                .internal_nodes
                .get(key)
                .map(|o| Object::InternalNode(o.clone())),
            Kind::InternalFabric => self
                .internal_fabrics
                .get(key)
                .map(|o| Object::InternalFabric(o.clone())),
            Kind::Ip => self.ips.get(key).map(|o| Object::Ip(o.clone())),
            Kind::Node => self
                .nodes
                .get(key)
                .map(|o| Object::Node(Box::new(Node::from((**o).clone())))),
        }
    }

    /// Removes the object of `kind` at `key`; returns it.
    pub fn remove(&mut self, kind: Kind, key: &Key) -> Option<Object> {
        match kind {
            Kind::Configuration => self.configurations.remove(key).map(Object::Configuration),
            Kind::GatewayServer => self.gateway_servers.remove(key).map(Object::GatewayServer),
            Kind::GatewayClient => self.gateway_clients.remove(key).map(Object::GatewayClient),
            Kind::PublicKey => self.public_keys.remove(key).map(Object::PublicKey),
            Kind::InternalNode => self.internal_nodes.remove(key).map(Object::InternalNode),
            Kind::InternalFabric => self
                .internal_fabrics
                .remove(key)
                .map(Object::InternalFabric),
            Kind::Ip => self.ips.remove(key).map(Object::Ip),
            Kind::Node => self
                .nodes
                .remove(key)
                .map(|o| Object::Node(Box::new(Node::from(*o)))),
        }
    }

    /// Whether an object of `kind` is at `key`.
    pub fn contains(&self, kind: Kind, key: &Key) -> bool {
        match kind {
            Kind::Configuration => self.configurations.contains_key(key),
            Kind::GatewayServer => self.gateway_servers.contains_key(key),
            Kind::GatewayClient => self.gateway_clients.contains_key(key),
            Kind::PublicKey => self.public_keys.contains_key(key),
            Kind::InternalNode => self.internal_nodes.contains_key(key),
            Kind::InternalFabric => self.internal_fabrics.contains_key(key),
            Kind::Ip => self.ips.contains_key(key),
            Kind::Node => self.nodes.contains_key(key),
        }
    }

    /// Every (kind, key) held, in kind then key order.
    pub fn keys(&self) -> Vec<(Kind, Key)> {
        fn of<T>(kind: Kind, map: &BTreeMap<Key, T>) -> impl Iterator<Item = (Kind, Key)> + '_ {
            map.keys().map(move |k| (kind, k.clone()))
        }
        of(Kind::Configuration, &self.configurations)
            .chain(of(Kind::GatewayServer, &self.gateway_servers))
            .chain(of(Kind::GatewayClient, &self.gateway_clients))
            .chain(of(Kind::PublicKey, &self.public_keys))
            .chain(of(Kind::InternalNode, &self.internal_nodes))
            .chain(of(Kind::InternalFabric, &self.internal_fabrics))
            .chain(of(Kind::Ip, &self.ips))
            .chain(of(Kind::Node, &self.nodes))
            .collect()
    }

    /// Number of objects held.
    pub fn len(&self) -> usize {
        let Self {
            configurations,
            gateway_servers,
            gateway_clients,
            public_keys,
            internal_nodes,
            internal_fabrics,
            ips,
            nodes,
        } = self;
        configurations.len()
            + gateway_servers.len()
            + gateway_clients.len()
            + public_keys.len()
            + internal_nodes.len()
            + internal_fabrics.len()
            + ips.len()
            + nodes.len()
    }

    /// Whether no object is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The Configuration labelled with `remote_cluster_id`, preferring one in `namespace`.
    pub fn configuration_for(
        &self,
        namespace: &str,
        remote_cluster_id: &str,
    ) -> Option<(&Key, &Configuration)> {
        by_remote(&self.configurations, namespace, remote_cluster_id, |c| {
            &c.metadata
        })
        .map(|(k, c)| (k, &**c))
    }

    /// The `PublicKey` labelled with `remote_cluster_id`, preferring one in `namespace`.
    pub fn public_key_for(
        &self,
        namespace: &str,
        remote_cluster_id: &str,
    ) -> Option<(&Key, &PublicKey)> {
        by_remote(&self.public_keys, namespace, remote_cluster_id, |p| {
            &p.metadata
        })
        .map(|(k, p)| (k, &**p))
    }
}

/// The first object labelled with `remote`, in `namespace` if there is one there.
fn by_remote<'a, T>(
    map: &'a BTreeMap<Key, T>,
    namespace: &str,
    remote: &str,
    meta: impl Fn(&T) -> &ObjectMeta,
) -> Option<(&'a Key, &'a T)> {
    let mut matching = map
        .iter()
        .filter(|(_, o)| remote_cluster_id(meta(o)) == Some(remote));
    let first = matching.clone().next();
    matching.find(|(k, _)| k.namespace == namespace).or(first)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clusterwire_api::networking::publickey::PublicKeySpec;

    use super::*;

    fn public_key(namespace: Option<&str>, name: &str, remote: &str) -> Object {
        Object::PublicKey(Box::new(PublicKey {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: namespace.map(str::to_owned),
                labels: Some(BTreeMap::from([(
                    REMOTE_CLUSTER_ID_LABEL.to_owned(),
                    remote.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            spec: PublicKeySpec {
                public_key: "AAAA".to_owned(),
            },
        }))
    }

    #[test]
    fn keys_and_kinds() {
        assert_eq!(Key::new("ns", "a").to_string(), "ns/a");
        assert_eq!(Key::cluster("node-1").to_string(), "node-1");
        assert_eq!(
            Kind::from_type("ipam.liqo.io/v1alpha1", "IP"),
            Some(Kind::Ip)
        );
        assert_eq!(Kind::from_type("v1", "Node"), Some(Kind::Node));
        assert_eq!(
            Kind::from_type("networking.liqo.io/v1beta1", "Connection"),
            None
        );
        assert_eq!(Kind::from_type("v1", "Configuration"), None);
        let node = Object::Node(Box::new(Node {
            metadata: ObjectMeta {
                name: Some("n1".to_owned()),
                namespace: Some("ignored".to_owned()),
                ..ObjectMeta::default()
            },
            ..Node::default()
        }));
        assert_eq!(node.key(), Key::cluster("n1"));
        assert_eq!(
            public_key(None, "pk", "cl02").key(),
            Key::new("default", "pk")
        );
    }

    #[test]
    fn insert_get_replace_and_lookups() {
        let mut snapshot = Snapshot::default();
        assert!(snapshot.is_empty());
        assert_eq!(
            snapshot.insert(public_key(Some("other"), "a", "cl02")),
            None
        );
        assert_eq!(snapshot.insert(public_key(Some("t2"), "b", "cl02")), None);
        assert_eq!(snapshot.insert(public_key(Some("t3"), "c", "cl03")), None);
        let replaced = snapshot.insert(public_key(Some("t3"), "c", "cl04"));
        assert_eq!(replaced, Some(public_key(Some("t3"), "c", "cl03")));
        assert_eq!(snapshot.len(), 3);
        assert_eq!(
            snapshot.keys(),
            vec![
                (Kind::PublicKey, Key::new("other", "a")),
                (Kind::PublicKey, Key::new("t2", "b")),
                (Kind::PublicKey, Key::new("t3", "c")),
            ]
        );
        let key = Key::new("t3", "c");
        assert_eq!(
            snapshot.get(Kind::PublicKey, &key),
            Some(public_key(Some("t3"), "c", "cl04"))
        );
        assert!(snapshot.contains(Kind::PublicKey, &key));
        assert!(!snapshot.contains(Kind::Configuration, &key));
        assert_eq!(snapshot.remove(Kind::Configuration, &key), None);
        let removed = snapshot.remove(Kind::PublicKey, &Key::new("other", "a"));
        assert_eq!(removed, Some(public_key(Some("other"), "a", "cl02")));
        assert_eq!(snapshot.len(), 2);
        snapshot.insert(public_key(Some("other"), "a", "cl02"));

        let found = |ns| {
            snapshot
                .public_key_for(ns, "cl02")
                .map(|(k, _)| k.to_string())
        };
        assert_eq!(found("t2").as_deref(), Some("t2/b"), "same namespace first");
        assert_eq!(
            found("elsewhere").as_deref(),
            Some("other/a"),
            "else the first"
        );
        assert_eq!(snapshot.public_key_for("t3", "cl09"), None);
    }
}
