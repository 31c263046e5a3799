//! Types shared by several resources: validated CIDR and IP strings, the scalar-or-list CIDR
//! field, status conditions, labels and numeric limits.

use std::{borrow::Cow, fmt, net::IpAddr, str::FromStr};

use ipnet::IpNet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// Label carrying the remote cluster id on every per-peer resource.
pub const REMOTE_CLUSTER_ID_LABEL: &str = "liqo.io/remote-cluster-id";
/// Label set on `PublicKey` resources consumed by the gateways.
pub const GATEWAY_RESOURCE_LABEL: &str = "networking.liqo.io/gateway-resource";
/// Label set on gateway templates.
pub const GATEWAY_TEMPLATE_LABEL: &str = "networking.liqo.io/gatewaytemplate";
/// The `liqo` category every resource belongs to (`kubectl get liqo`).
pub const CATEGORY: &str = "liqo";

/// Smallest accepted tunnel MTU: 576, the IPv4 minimum datagram every host must accept.
pub const MTU_MIN: i32 = 576;
/// Largest accepted tunnel MTU: 9000, jumbo frames.
pub const MTU_MAX: i32 = 9000;
/// Default tunnel MTU (link MTU 1400 minus 60 bytes of IPv4 + UDP + WireGuard overhead).
pub const MTU_DEFAULT: i32 = 1340;
/// Default gateway server port (UDP).
pub const GATEWAY_PORT_DEFAULT: i32 = 51840;

/// A CIDR (IPv4 or IPv6), serialized as its text form and validated by the apiserver with the
/// `cidr` format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr(pub IpNet);

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Cidr {
    type Err = ipnet::AddrParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        text.parse()
            .map_err(|_| de::Error::custom(format!("invalid CIDR {text:?}")))
    }
}

impl JsonSchema for Cidr {
    fn schema_name() -> Cow<'static, str> {
        "Cidr".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "cidr", "maxLength": 49 })
    }
}

/// An IP address (IPv4 or IPv6), serialized as text; the schema checks it with CEL `isIP`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ip(pub IpAddr);

impl fmt::Display for Ip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Ip {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Ip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        text.parse()
            .map(Self)
            .map_err(|_| de::Error::custom(format!("invalid IP address {text:?}")))
    }
}

impl JsonSchema for Ip {
    fn schema_name() -> Cow<'static, str> {
        "Ip".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "maxLength": 45,
            "x-kubernetes-validations": [
                { "rule": "isIP(self)", "message": "must be an IPv4 or IPv6 address" }
            ]
        })
    }
}

/// One CIDR or a list of CIDRs, always normalized to a list.
///
/// Liqo's `networking.liqo.io/v1beta1` Configuration first had one CIDR per field (the form the
/// seed documentation still shows, `pod: 10.243.0.0/16`) and later a list (`pod: [..]`). Both
/// forms are accepted so manifests of either era apply unchanged; serialization always writes
/// the list. See the crate documentation for how the schema expresses this.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CidrList(pub Vec<Cidr>);

impl Serialize for CidrList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CidrList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(Cidr),
            Many(Vec<Cidr>),
        }
        match OneOrMany::deserialize(deserializer) {
            Ok(OneOrMany::One(cidr)) => Ok(Self(vec![cidr])),
            Ok(OneOrMany::Many(list)) => Ok(Self(list)),
            Err(_) => Err(de::Error::custom(
                "expected a CIDR or a list of CIDRs (e.g. 10.243.0.0/16)",
            )),
        }
    }
}

impl JsonSchema for CidrList {
    fn schema_name() -> Cow<'static, str> {
        "CidrList".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // Structural schemas allow an untyped node only with x-kubernetes-preserve-unknown-fields.
        // `format` constrains the scalar form, `items` the list form (each keyword only applies
        // to values of its own JSON type).
        json_schema!({
            "x-kubernetes-preserve-unknown-fields": true,
            "format": "cidr",
            "maxLength": 49,
            "maxItems": 32,
            "items": { "type": "string", "format": "cidr", "maxLength": 49 }
        })
    }
}

impl From<Vec<IpNet>> for CidrList {
    fn from(nets: Vec<IpNet>) -> Self {
        Self(nets.into_iter().map(Cidr).collect())
    }
}

impl CidrList {
    /// The CIDRs as `ipnet` values.
    pub fn nets(&self) -> Vec<IpNet> {
        self.0.iter().map(|c| c.0).collect()
    }
}

/// Status fields every clusterwire status carries: the conditions (a list-map keyed by
/// `type`, for server-side apply) and the generation they were computed from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusCommon {
    /// Latest observations of the resource's state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend(
        "x-kubernetes-list-type" = "map",
        "x-kubernetes-list-map-keys" = ["type"]
    ))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` the status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
