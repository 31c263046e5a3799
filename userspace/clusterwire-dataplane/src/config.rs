//! Validation of the load-time [`DatapathConfig`].
use clusterwire_common::{
    config::{DatapathConfig, FLAGS_KNOWN, MIN_TUNNEL_MTU},
    stats::PEER_STATS_MAX,
};

use crate::error::ConfigError;

/// Checks every field of `config` (destructured, so a new field must be considered here).
pub fn validate(config: &DatapathConfig) -> Result<(), ConfigError> {
    let DatapathConfig {
        tunnel_mtu,
        peer_id,
        local_ipv4_be: _,
        geneve_port: _,
        _pad0: pad0,
        flags,
    } = *config;
    if tunnel_mtu != 0 && !(MIN_TUNNEL_MTU..=0xffff).contains(&tunnel_mtu) {
        return Err(ConfigError::TunnelMtu(tunnel_mtu));
    }
    if peer_id >= PEER_STATS_MAX {
        return Err(ConfigError::PeerId(peer_id));
    }
    if flags & !FLAGS_KNOWN != 0 {
        return Err(ConfigError::Flags(flags & !FLAGS_KNOWN));
    }
    if pad0 != 0 {
        return Err(ConfigError::Padding);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clusterwire_common::config::{DatapathConfig, FLAG_L3_DEVICE};

    use super::validate;
    use crate::error::ConfigError;

    #[test]
    fn accepts_defaults_and_rejects_each_bad_field() {
        let ok = DatapathConfig {
            tunnel_mtu: 1340,
            peer_id: 3,
            flags: FLAG_L3_DEVICE,
            ..DatapathConfig::zeroed()
        };
        assert_eq!(validate(&ok), Ok(()));
        assert_eq!(validate(&DatapathConfig::zeroed()), Ok(()));
        let bad = [
            (
                DatapathConfig {
                    tunnel_mtu: 575,
                    ..ok
                },
                ConfigError::TunnelMtu(575),
            ),
            (
                DatapathConfig {
                    tunnel_mtu: 70_000,
                    ..ok
                },
                ConfigError::TunnelMtu(70_000),
            ),
            (
                DatapathConfig { peer_id: 256, ..ok },
                ConfigError::PeerId(256),
            ),
            (DatapathConfig { flags: 0x6, ..ok }, ConfigError::Flags(0x6)),
            (DatapathConfig { _pad0: 1, ..ok }, ConfigError::Padding),
        ];
        for (config, want) in bad {
            assert_eq!(validate(&config), Err(want.clone()), "{config:?}");
        }
    }
}
