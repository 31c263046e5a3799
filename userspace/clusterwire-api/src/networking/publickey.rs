//! `PublicKey` (`pk`, `pkies`, `pkey`): the remote peer's WireGuard public key.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The public key of a remote gateway.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "networking.liqo.io",
    version = "v1beta1",
    kind = "PublicKey",
    plural = "publickeies",
    namespaced,
    shortname = "pk",
    shortname = "pkies",
    shortname = "pkey",
    category = "liqo",
    derive = "PartialEq",
    derive = "Default",
    doc = "The public key of a remote gateway, needed by the tunnel technology (WireGuard)."
)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeySpec {
    /// The WireGuard public key: base64 of 32 bytes (CEL sees `format: byte` fields as bytes).
    #[schemars(extend(
        "format" = "byte",
        "x-kubernetes-validations" = [{
            "rule": "size(self) == 32",
            "message": "must be a WireGuard public key: the base64 encoding of exactly 32 bytes"
        }]
    ))]
    #[schemars(length(max = 44))]
    pub public_key: String,
}
