//! WireGuard key pairs for gateway Secrets: generated once, never rotated.
//!
//! The Secret holds the raw 32-byte keys under `privateKey` and `publicKey`, as the reference
//! does: in the Secret's `data` (base64 on the wire) each reads as the usual WireGuard base64
//! key, and mounted as a file each is the raw key the gateway reads.

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString,
    api::core::v1::Secret,
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use x25519_dalek::{PublicKey, StaticSecret};

/// Secret key of the private key.
pub const PRIVATE_KEY: &str = "privateKey";
/// Secret key of the public key.
pub const PUBLIC_KEY: &str = "publicKey";

/// 32 random bytes from the OS, clamped as `wg genkey` does.
pub fn random_private_key() -> Result<[u8; 32], getrandom::Error> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)?;
    key[0] &= 0xf8;
    key[31] = (key[31] & 0x7f) | 0x40;
    Ok(key)
}

/// The x25519 public key of a private key.
pub fn public_key(private: [u8; 32]) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(private)).to_bytes()
}

/// The key Secret of a gateway.
pub fn secret(
    name: &str,
    namespace: &str,
    labels: BTreeMap<String, String>,
    owner: OwnerReference,
    private: [u8; 32],
) -> Secret {
    let data = BTreeMap::from([
        (PRIVATE_KEY.to_owned(), ByteString(private.to_vec())),
        (
            PUBLIC_KEY.to_owned(),
            ByteString(public_key(private).to_vec()),
        ),
    ]);
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..Secret::default()
    }
}

/// Checks a Secret holds a usable key pair: a 32-byte private key and the public key that
/// belongs to it.
pub fn check(secret: &Secret) -> Result<(), &'static str> {
    let data = secret.data.as_ref().ok_or("no data")?;
    let private: [u8; 32] = data
        .get(PRIVATE_KEY)
        .ok_or("no privateKey")?
        .0
        .as_slice()
        .try_into()
        .map_err(|_| "privateKey is not 32 bytes")?;
    let public = data.get(PUBLIC_KEY).ok_or("no publicKey")?;
    if public.0 != public_key(private) {
        return Err("publicKey does not belong to privateKey");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{public_key, random_private_key};

    #[test]
    fn keys_are_clamped_and_distinct() {
        let a = random_private_key().expect("rng");
        let b = random_private_key().expect("rng");
        assert_ne!(a, b);
        assert_eq!(a[0] & 0x07, 0);
        assert_eq!(a[31] & 0xc0, 0x40);
        // RFC 7748 section 6.1 test vector (Alice).
        let alice: [u8; 32] = [
            0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2,
            0x66, 0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5,
            0x1d, 0xb9, 0x2c, 0x2a,
        ];
        assert_eq!(
            public_key(alice)[..4],
            [0x85, 0x20, 0xf0, 0x09],
            "x25519 public key of the RFC 7748 vector"
        );
    }
}
