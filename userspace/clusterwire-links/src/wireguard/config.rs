//! One configuration path for both implementations: a [`WireGuardConfig`] applied with
//! wireguard-control, over generic netlink to a kernel device and over the UAPI socket to a
//! userspace one (the embedded device, or any other such as wireguard-go), and the counters read
//! back the same way.
use std::{
    net::SocketAddr,
    os::unix::net::UnixStream,
    path::PathBuf,
    time::{Duration, SystemTime},
};

use ipnet::IpNet;
use wireguard_control::{Device, DeviceUpdate, InterfaceName, PeerConfigBuilder};
use zeroize::Zeroize as _;

use super::{
    Implementation,
    error::WireGuardError,
    key::{PrivateKey, PublicKey},
};
use crate::error::{LinkError, check_name};

/// Where userspace WireGuard implementations serve their UAPI sockets; one directory for the
/// whole host (it is not per network namespace).
pub const UAPI_DIR: &str = "/var/run/wireguard";

/// What a gateway's WireGuard device is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireGuardConfig {
    /// The device's private key (see [`PrivateKey::from_file`]).
    pub private_key: PrivateKey,
    /// The UDP port to listen on (the server: 51840); `None` leaves the port as it is (a new
    /// device picks a random one, as a client does).
    pub listen_port: Option<u16>,
    /// The one peer; `None` removes every peer.
    pub peer: Option<PeerConfig>,
}

/// The remote gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// The peer's public key (the `PublicKey` resource).
    pub public_key: PublicKey,
    /// Where to send to (a client: the server's resolved endpoint); `None` for a server, which
    /// learns it from the first handshake. A configured endpoint is replaced, never unset.
    pub endpoint: Option<SocketAddr>,
    /// Addresses routed to the peer and accepted from it (clusterwire and Liqo: `0.0.0.0/0`).
    pub allowed_ips: Vec<IpNet>,
    /// Seconds between keepalives (a client behind NAT); `None` turns them off.
    pub persistent_keepalive: Option<u16>,
}

/// A device's state as read back, the same way for both implementations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelStats {
    /// The device's public key, if it has a private key.
    pub public_key: Option<PublicKey>,
    /// The UDP port it listens on.
    pub listen_port: Option<u16>,
    /// Every configured peer (a gateway has one).
    pub peers: Vec<PeerStats>,
}

impl TunnelStats {
    /// The peer with this public key.
    pub fn peer(&self, public_key: &PublicKey) -> Option<&PeerStats> {
        self.peers
            .iter()
            .find(|peer| peer.public_key == *public_key)
    }
}

/// A peer's counters.
///
/// Bytes are what the implementation counts, which is not quite the same thing everywhere: the
/// kernel counts whole WireGuard messages both ways; gotatun counts sent messages but received
/// *decrypted* payload (32 bytes less per data message); boringtun counts payload both ways.
/// Use them as traffic counters, not to compare implementations byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStats {
    /// The peer's public key.
    pub public_key: PublicKey,
    /// Its current endpoint (configured, or learnt from its packets).
    pub endpoint: Option<SocketAddr>,
    /// Its allowed IPs.
    pub allowed_ips: Vec<IpNet>,
    /// Bytes received from it.
    pub rx_bytes: u64,
    /// Bytes sent to it.
    pub tx_bytes: u64,
    /// When the last handshake completed, as wall-clock time (`None`: never).
    pub last_handshake: Option<SystemTime>,
}

impl PeerStats {
    /// Time since the last handshake (`None`: never, or a clock that moved backwards).
    pub fn since_last_handshake(&self, now: SystemTime) -> Option<Duration> {
        now.duration_since(self.last_handshake?).ok()
    }
}

/// Applies `config` to the WireGuard device `name` of the given implementation, as a diff: the
/// private key and listen port are only written when they differ, peers other than the configured
/// one are removed, and the peer is updated in place (its allowed IPs replaced), so re-applying
/// the same configuration (or a re-resolved endpoint) keeps the current session.
///
/// The device must exist: a kernel link created by [`super::create`] or
/// [`super::create_kernel`]; for userspace, a device answering on
/// `/var/run/wireguard/<name>.sock` (the embedded one, or e.g. wireguard-go). Unlike a bare
/// wireguard-control call, a missing userspace socket is an error here, never a reason to start
/// `wireguard-go`.
pub fn configure(
    name: &str,
    implementation: Implementation,
    config: &WireGuardConfig,
) -> Result<(), WireGuardError> {
    let iface = interface(name)?;
    let current = read_device(name, &iface, implementation)?;
    let update = diff(&current, config);
    apply(name, &iface, implementation, update)
}

/// Reads the device's public key, port and per-peer counters, the same way for both
/// implementations.
///
/// The last handshake is normalised to wall-clock time: the UAPI protocol reports it as seconds
/// since the Unix epoch (kernel, wireguard-go, gotatun), but boringtun reports seconds *since the
/// handshake*; a "time" before 1990 can only be that, and is converted.
pub fn read_stats(
    name: &str,
    implementation: Implementation,
) -> Result<TunnelStats, WireGuardError> {
    let iface = interface(name)?;
    let device = read_device(name, &iface, implementation)?;
    let now = SystemTime::now();
    let Device {
        public_key,
        listen_port,
        peers,
        ..
    } = device;
    Ok(TunnelStats {
        public_key: public_key.as_ref().map(PublicKey::from_control_key),
        listen_port,
        peers: peers
            .iter()
            .map(|peer| PeerStats {
                public_key: PublicKey::from_control_key(&peer.config.public_key),
                endpoint: peer.config.endpoint,
                allowed_ips: peer
                    .config
                    .allowed_ips
                    .iter()
                    .filter_map(|ip| IpNet::new(ip.address, ip.cidr).ok())
                    .collect(),
                rx_bytes: peer.stats.rx_bytes,
                tx_bytes: peer.stats.tx_bytes,
                last_handshake: normalise_handshake(peer.stats.last_handshake_time, now),
            })
            .collect(),
    })
}

/// The UAPI socket path of a userspace device.
pub fn uapi_socket(name: &str) -> PathBuf {
    PathBuf::from(format!("{UAPI_DIR}/{name}.sock"))
}

/// Fails unless a userspace device answers on the name's UAPI socket.
pub(crate) fn ensure_uapi_socket(name: &str) -> Result<(), WireGuardError> {
    let path = uapi_socket(name);
    match UnixStream::connect(&path) {
        Ok(_) => Ok(()),
        Err(source) => Err(WireGuardError::NoUapiSocket { path, source }),
    }
}

pub(crate) fn interface(name: &str) -> Result<InterfaceName, LinkError> {
    check_name(name)?;
    name.parse()
        .map_err(|_| LinkError::InvalidName(name.to_owned()))
}

fn read_device(
    name: &str,
    iface: &InterfaceName,
    implementation: Implementation,
) -> Result<Device, WireGuardError> {
    if implementation == Implementation::Userspace {
        ensure_uapi_socket(name)?;
    }
    Device::get(iface, implementation.backend()).map_err(|source| WireGuardError::Read {
        link: name.to_owned(),
        implementation,
        source,
    })
}

fn apply(
    name: &str,
    iface: &InterfaceName,
    implementation: Implementation,
    update: DeviceUpdate,
) -> Result<(), WireGuardError> {
    if implementation == Implementation::Userspace {
        // Checked again right before writing: wireguard-control starts wireguard-go when it
        // cannot connect.
        ensure_uapi_socket(name)?;
    }
    update
        .apply(iface, implementation.backend())
        .map_err(|source| WireGuardError::Configure {
            link: name.to_owned(),
            implementation,
            source,
        })
}

/// The update that turns `current` into `config`, touching only what differs.
fn diff(current: &Device, config: &WireGuardConfig) -> DeviceUpdate {
    let WireGuardConfig {
        private_key,
        listen_port,
        peer,
    } = config;
    let mut update = DeviceUpdate::new();
    let mut wanted_key = private_key.to_control_key();
    if current.private_key.as_ref() != Some(&wanted_key) {
        update = update.set_private_key(wanted_key.clone());
    }
    wanted_key.0.zeroize();
    if let Some(port) = *listen_port
        && current.listen_port != Some(port)
    {
        update = update.set_listen_port(port);
    }
    let wanted_peer = peer.as_ref().map(|peer| peer.public_key.to_control_key());
    for existing in &current.peers {
        if Some(&existing.config.public_key) != wanted_peer.as_ref() {
            update = update.remove_peer_by_key(&existing.config.public_key);
        }
    }
    if let Some(peer) = peer {
        let existing = current
            .peers
            .iter()
            .find(|existing| Some(&existing.config.public_key) == wanted_peer.as_ref());
        // Only a peer that changed is written: gotatun rebuilds a peer named in a `set`, which
        // drops its session (the kernel and wireguard-go update it in place).
        if existing.is_none_or(|existing| !peer_matches(&existing.config, peer)) {
            update = update.add_peer(peer_update(peer));
        }
    }
    update
}

/// Whether a device's peer already has what `wanted` asks for. An endpoint left unset is
/// whatever the device learnt; keepalive `None` and `Some(0)` both mean off.
fn peer_matches(current: &wireguard_control::PeerConfig, wanted: &PeerConfig) -> bool {
    let endpoint = wanted.endpoint.is_none() || current.endpoint == wanted.endpoint;
    let keepalive = current.persistent_keepalive_interval.unwrap_or(0)
        == wanted.persistent_keepalive.unwrap_or(0);
    let mut have: Vec<IpNet> = current
        .allowed_ips
        .iter()
        .filter_map(|ip| IpNet::new(ip.address, ip.cidr).ok())
        .map(|net| net.trunc())
        .collect();
    let mut want: Vec<IpNet> = wanted.allowed_ips.iter().map(IpNet::trunc).collect();
    have.sort_unstable();
    have.dedup();
    want.sort_unstable();
    want.dedup();
    endpoint && keepalive && have == want
}

fn peer_update(peer: &PeerConfig) -> PeerConfigBuilder {
    let PeerConfig {
        public_key,
        endpoint,
        allowed_ips,
        persistent_keepalive,
    } = peer;
    let mut builder = PeerConfigBuilder::new(&public_key.to_control_key()).replace_allowed_ips();
    for net in allowed_ips {
        builder = builder.add_allowed_ip(net.network(), net.prefix_len());
    }
    if let Some(endpoint) = endpoint {
        builder = builder.set_endpoint(*endpoint);
    }
    match persistent_keepalive {
        Some(seconds) => builder.set_persistent_keepalive_interval(*seconds),
        None => builder.unset_persistent_keepalive(),
    }
}

/// Handshake "times" before this are durations since the handshake (boringtun's UAPI).
const EARLIEST_HANDSHAKE: Duration = Duration::from_hours(7_305 * 24); // 1990-01-01

fn normalise_handshake(reported: Option<SystemTime>, now: SystemTime) -> Option<SystemTime> {
    let reported = reported?;
    match reported.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since_epoch) if since_epoch < EARLIEST_HANDSHAKE => now.checked_sub(since_epoch),
        Ok(_) => Some(reported),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use wireguard_control::PeerConfigBuilder;

    use super::{PeerConfig, WireGuardConfig, normalise_handshake, peer_matches};
    use crate::wireguard::PrivateKey;

    fn wanted() -> PeerConfig {
        PeerConfig {
            public_key: PrivateKey::generate().public_key(),
            endpoint: Some("192.0.2.1:51840".parse().expect("endpoint")),
            allowed_ips: vec![
                "0.0.0.0/0".parse().expect("net"),
                "10.1.2.3/16".parse().expect("net"),
            ],
            persistent_keepalive: None,
        }
    }

    fn current(wanted: &PeerConfig) -> wireguard_control::PeerConfig {
        let mut builder = PeerConfigBuilder::new(&wanted.public_key.to_control_key())
            .add_allowed_ip("10.1.0.0".parse().expect("ip"), 16)
            .add_allowed_ip("0.0.0.0".parse().expect("ip"), 0)
            .set_persistent_keepalive_interval(0);
        if let Some(endpoint) = wanted.endpoint {
            builder = builder.set_endpoint(endpoint);
        }
        builder.into_peer_config()
    }

    #[test]
    fn a_configuration_prints_without_its_private_key() {
        let key = PrivateKey::generate();
        let secret = key.to_control_key().to_base64();
        let config = WireGuardConfig {
            private_key: key,
            listen_port: Some(51840),
            peer: Some(wanted()),
        };
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains(&secret), "{shown}");
        assert!(
            shown.contains("redacted") && shown.contains("51840"),
            "{shown}"
        );
    }

    #[test]
    fn an_unchanged_peer_is_not_rewritten() {
        let wanted = wanted();
        // Allowed IPs in another order and normalised, keepalive 0 for "off".
        assert!(peer_matches(&current(&wanted), &wanted));
        // A server leaves the endpoint to what the device learnt.
        let mut learnt = current(&wanted);
        learnt.endpoint = Some("198.51.100.7:40000".parse().expect("endpoint"));
        let server = PeerConfig {
            endpoint: None,
            ..wanted.clone()
        };
        assert!(peer_matches(&learnt, &server));
    }

    #[test]
    fn a_changed_endpoint_keepalive_or_allowed_ip_is_rewritten() {
        let wanted = wanted();
        let mut moved = current(&wanted);
        moved.endpoint = Some("192.0.2.2:51840".parse().expect("endpoint"));
        assert!(!peer_matches(&moved, &wanted));
        let keepalive = PeerConfig {
            persistent_keepalive: Some(25),
            ..wanted.clone()
        };
        assert!(!peer_matches(&current(&wanted), &keepalive));
        let mut fewer = current(&wanted);
        fewer.allowed_ips.pop();
        assert!(!peer_matches(&fewer, &wanted));
    }

    #[test]
    fn handshake_times_are_wall_clock_whatever_the_implementation_reports() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        // Kernel, wireguard-go, gotatun: seconds since the epoch.
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_999_990);
        assert_eq!(normalise_handshake(Some(at), now), Some(at));
        // boringtun: seconds since the handshake.
        let ago = SystemTime::UNIX_EPOCH + Duration::from_secs(10);
        assert_eq!(normalise_handshake(Some(ago), now), Some(at));
        assert_eq!(normalise_handshake(None, now), None);
    }
}
