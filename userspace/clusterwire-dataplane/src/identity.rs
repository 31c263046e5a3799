//! What an instance's programs were loaded from: the embedded object, the load-time
//! configuration, the role and the pinned layout, folded into one 64-bit value. Two processes
//! with the same identity would load programs that behave identically against the same maps,
//! so the second one can keep the programs the first one pinned instead of running the kernel
//! verifier again (see [`crate::programs`]).
use std::{fmt, sync::OnceLock};

use clusterwire_common::{config::DatapathConfig, meta::LAYOUT_VERSION};

use crate::layout::{MAPS, Role};

/// The identity of a set of loaded programs (FNV-1a 64 of everything a load depends on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProgramIdentity(u64);

impl ProgramIdentity {
    /// The identity of the embedded object loaded with `config` for `role`.
    pub fn of(config: &DatapathConfig, role: Role) -> Self {
        // The embedded object (about 0.5 MB) is hashed once per process.
        static OBJECT_DIGEST: OnceLock<u64> = OnceLock::new();
        let object = *OBJECT_DIGEST.get_or_init(|| object_digest(crate::object::OBJECT));
        Self::compute(object, config, role)
    }

    fn compute(object_digest: u64, config: &DatapathConfig, role: Role) -> Self {
        let DatapathConfig {
            tunnel_mtu,
            peer_id,
            local_ipv4_be,
            geneve_port,
            _pad0: _, // validated to be zero
            flags,
        } = *config;
        let mut h = Fnv::new()
            .bytes(b"clusterwire programs v1\0")
            .u64(object_digest)
            .u32(LAYOUT_VERSION)
            .u32(role.meta())
            .u32(tunnel_mtu)
            .u32(peer_id)
            .u32(local_ipv4_be)
            .u32(u32::from(geneve_port))
            .u32(flags);
        // Map sizes are set at load time and are part of what the verifier proved against.
        for spec in MAPS {
            let layout = spec.layout(role);
            h = h
                .bytes(spec.name.as_bytes())
                .u32(u32::from(spec.entries(role).is_some()))
                .u32(layout.key_size)
                .u32(layout.value_size)
                .u32(layout.max_entries)
                .u32(layout.flags);
        }
        Self(h.0)
    }

    /// The name of the pin directory holding programs of this identity.
    pub(crate) fn dir_name(self) -> String {
        format!("{PROGRAMS_DIR_PREFIX}{self}")
    }
}

fn object_digest(object: &[u8]) -> u64 {
    Fnv::new()
        .u64(u64::try_from(object.len()).unwrap_or(u64::MAX))
        .bytes(object)
        .0
}

/// Pin directories of loaded programs are `<instance>/programs-<identity>/`.
pub(crate) const PROGRAMS_DIR_PREFIX: &str = "programs-";

impl fmt::Display for ProgramIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike `DefaultHasher`).
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    const fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(mut self, data: &[u8]) -> Self {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }

    fn u32(self, value: u32) -> Self {
        self.bytes(&value.to_le_bytes())
    }

    fn u64(self, value: u64) -> Self {
        self.bytes(&value.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use clusterwire_common::config::{DatapathConfig, FLAG_L3_DEVICE};

    use super::ProgramIdentity;
    use crate::layout::Role;

    fn config() -> DatapathConfig {
        DatapathConfig {
            tunnel_mtu: 1340,
            peer_id: 7,
            local_ipv4_be: u32::from_ne_bytes([192, 168, 0, 1]),
            geneve_port: 6091,
            ..DatapathConfig::zeroed()
        }
    }

    #[test]
    fn the_same_object_config_and_role_give_the_same_identity() {
        let a = ProgramIdentity::of(&config(), Role::Gateway);
        assert_eq!(a, ProgramIdentity::of(&config(), Role::Gateway));
        assert_eq!(a.to_string().len(), 16, "{a}");
        assert_eq!(a.dir_name(), format!("programs-{a}"));
    }

    #[test]
    fn every_input_changes_the_identity() {
        let base = ProgramIdentity::of(&config(), Role::Gateway);
        let changed: [(&str, DatapathConfig); 5] = [
            (
                "tunnel MTU",
                DatapathConfig {
                    tunnel_mtu: 1420,
                    ..config()
                },
            ),
            (
                "peer",
                DatapathConfig {
                    peer_id: 8,
                    ..config()
                },
            ),
            (
                "local address",
                DatapathConfig {
                    local_ipv4_be: u32::from_ne_bytes([192, 168, 0, 2]),
                    ..config()
                },
            ),
            (
                "Geneve port",
                DatapathConfig {
                    geneve_port: 6092,
                    ..config()
                },
            ),
            (
                "flags",
                DatapathConfig {
                    flags: FLAG_L3_DEVICE,
                    ..config()
                },
            ),
        ];
        for (what, other) in changed {
            assert_ne!(
                ProgramIdentity::of(&other, Role::Gateway),
                base,
                "{what} changed, identity did not"
            );
        }
        assert_ne!(ProgramIdentity::of(&config(), Role::Node), base, "role");
        let mut object = crate::object::OBJECT.to_vec();
        let last = object.len() - 1;
        object[last] ^= 1;
        assert_ne!(
            ProgramIdentity::compute(super::object_digest(&object), &config(), Role::Gateway),
            base,
            "one bit of the object"
        );
    }
}
