//! The gateway's WireGuard link with the embedded userspace device (gotatun in this process), on
//! this kernel without a wireguard module: two namespaces joined by a veth, a device in each,
//! configured through the one configuration path (wireguard-control over the UAPI socket), then
//! ping and a TCP stream across the tunnel addresses; and the same against Debian's
//! `wireguard-go`, configured through the same path (a `host_tool_` test: the VM tier, which runs
//! this tier in each kernel, has no wireguard-go). Where the kernel has WireGuard (the VM tier),
//! the auto-mode test exercises the kernel path of the same API.
//!
//! ```text
//!  server ns                                      client ns
//!  <if>s 169.254.18.1/30 (TUN, listen 51840)      <if>c 169.254.18.2/30 (TUN)
//!  veth0 10.251.0.1/24 ========================= veth0 10.251.0.2/24
//! ```
//! Userspace devices' UAPI sockets share `/var/run/wireguard` across namespaces, so interface
//! names carry the test process id and a per-test tag.
use std::{
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

use clusterwire_links::{
    probe_kernel,
    wireguard::{
        self, Implementation, InterfaceSettings, Mode, PeerConfig, PrivateKey, Role, Tunnel,
        TunnelStats, WireGuardConfig, WireGuardError,
    },
};
use clusterwire_tests::{
    netns::{NetNs, veth_pair},
    traffic::{pattern, tcp_send},
};

const SERVER_UNDERLAY: Ipv4Addr = Ipv4Addr::new(10, 251, 0, 1);
const CLIENT_UNDERLAY: Ipv4Addr = Ipv4Addr::new(10, 251, 0, 2);
/// Bytes pushed through the tunnel by each TCP transfer (small enough for the VM tier's TCG).
const TRANSFER: usize = 4 << 20;

/// A host-unique interface name for a userspace device (at most 15 bytes).
fn ifname(tag: &str) -> String {
    let name = format!("cw{}{tag}", std::process::id());
    assert!(name.len() <= 15, "{name} is too long for an interface name");
    name
}

/// Two namespaces joined by a veth carrying the underlay addresses.
fn underlay(tag: &str) -> (NetNs, NetNs) {
    let server = NetNs::new(&format!("{tag}s"));
    let client = NetNs::new(&format!("{tag}c"));
    veth_pair(&server, "veth0", &client, "veth0");
    server.ip(&["addr", "add", "10.251.0.1/24", "dev", "veth0"]);
    client.ip(&["addr", "add", "10.251.0.2/24", "dev", "veth0"]);
    (server, client)
}

fn server_config(key: &PrivateKey, peer: &PrivateKey) -> WireGuardConfig {
    WireGuardConfig {
        private_key: key.clone(),
        listen_port: Some(wireguard::DEFAULT_PORT),
        peer: Some(PeerConfig {
            public_key: peer.public_key(),
            endpoint: None,
            allowed_ips: vec!["0.0.0.0/0".parse().expect("net")],
            persistent_keepalive: None,
        }),
    }
}

fn client_config(key: &PrivateKey, peer: &PrivateKey) -> WireGuardConfig {
    WireGuardConfig {
        private_key: key.clone(),
        listen_port: None,
        peer: Some(PeerConfig {
            public_key: peer.public_key(),
            endpoint: Some(SocketAddr::from((SERVER_UNDERLAY, wireguard::DEFAULT_PORT))),
            allowed_ips: vec!["0.0.0.0/0".parse().expect("net")],
            persistent_keepalive: Some(10),
        }),
    }
}

/// Creates the embedded device on a thread inside `ns` (its TUN device and UDP socket live
/// there), configured through the one configuration path.
fn embedded(ns: &NetNs, name: &str, config: &WireGuardConfig) -> Tunnel {
    let tunnel = ns.enter(|| wireguard::create(name, Mode::Userspace, config));
    let tunnel = tunnel.unwrap_or_else(|e| panic!("create {name}: {}", chain(&e)));
    assert_eq!(tunnel.implementation(), Implementation::Userspace);
    tunnel
}

/// MTU 1340, the role's /30 address, up: over rtnetlink from inside `ns`.
fn set_up(ns: &NetNs, name: &str, role: Role) {
    let settings = InterfaceSettings::for_role(role);
    ns.enter(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(async {
            let (connection, handle, _) = rtnetlink::new_connection().expect("rtnetlink");
            tokio::spawn(connection);
            wireguard::set_up_interface(&handle, name, &settings)
                .await
                .unwrap_or_else(|e| panic!("set up {name}: {e}"));
        });
    });
    let shown =
        String::from_utf8_lossy(&ns.ip(&["-o", "addr", "show", "dev", name]).stdout).into_owned();
    assert!(
        shown.contains(&settings.address.to_string()),
        "{name}: {shown}"
    );
    let link =
        String::from_utf8_lossy(&ns.ip(&["-o", "link", "show", "dev", name]).stdout).into_owned();
    assert!(
        link.contains("mtu 1340") && link.contains(",UP"),
        "{name}: {link}"
    );
}

/// Pings `to` from `ns`; returns the average RTT in milliseconds. The first echo waits for the
/// handshake, so one warm-up ping comes first.
fn ping(ns: &NetNs, to: Ipv4Addr) -> f64 {
    let to = to.to_string();
    let warm = ns.exec("ping", &["-c", "1", "-W", "5", &to]);
    assert!(
        warm.status.success(),
        "warm-up ping to {to}: {}",
        String::from_utf8_lossy(&warm.stdout)
    );
    let out = ns.exec("ping", &["-c", "10", "-i", "0.1", "-W", "2", &to]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.contains(" 0% packet loss"),
        "ping {to}: {text}"
    );
    // "rtt min/avg/max/mdev = 0.151/0.201/0.262/0.032 ms"
    text.lines()
        .find_map(|line| line.split_once(" = ")?.1.split('/').nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no RTT in: {text}"))
}

/// Sends [`TRANSFER`] bytes over TCP from `client` to `server` through the tunnel, checks them,
/// and returns the throughput in Mbit/s.
fn transfer(server: &NetNs, server_addr: Ipv4Addr, client: &NetNs, port: u16) -> f64 {
    let payload = pattern(TRANSFER);
    let started = Instant::now();
    let run = tcp_send(
        server,
        SocketAddrV4::new(server_addr, port),
        client,
        SocketAddrV4::new(server_addr, port),
        payload.clone(),
    );
    let elapsed = started.elapsed();
    assert!(run.received == payload, "the stream arrived altered");
    assert!(
        run.client_mss <= 1300,
        "MSS {} does not fit the 1340 MTU",
        run.client_mss
    );
    mbits_per_second(TRANSFER, elapsed)
}

#[expect(
    clippy::cast_precision_loss,
    reason = "a throughput figure for the log"
)]
fn mbits_per_second(bytes: usize, elapsed: Duration) -> f64 {
    (bytes * 8) as f64 / elapsed.as_secs_f64() / 1e6
}

/// Checks one side's counters after a transfer each way: a recent handshake, and at least the
/// transfer's bytes counted in each direction.
fn check_stats(what: &str, stats: &TunnelStats, key: &PrivateKey, peer: &PrivateKey) -> (u64, u64) {
    assert_eq!(stats.public_key, Some(key.public_key()), "{what}: own key");
    assert_eq!(stats.peers.len(), 1, "{what}: one peer in {stats:?}");
    let peer_stats = stats
        .peer(&peer.public_key())
        .unwrap_or_else(|| panic!("{what}: not the configured peer in {stats:?}"));
    let since = peer_stats
        .since_last_handshake(SystemTime::now())
        .unwrap_or_else(|| panic!("{what}: no handshake in {peer_stats:?}"));
    assert!(
        since < Duration::from_mins(2),
        "{what}: handshake {since:?} ago"
    );
    let (rx, tx) = (peer_stats.rx_bytes, peer_stats.tx_bytes);
    assert!(
        rx >= TRANSFER as u64 && tx >= TRANSFER as u64,
        "{what}: rx {rx} tx {tx} bytes after {TRANSFER} bytes each way"
    );
    (rx, tx)
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[test]
fn embedded_devices_carry_ping_and_tcp_configured_through_the_uapi_path() {
    let (server_ns, client_ns) = underlay("wge");
    let (server_if, client_if) = (ifname("es"), ifname("ec"));
    let (server_key, client_key) = (PrivateKey::generate(), PrivateKey::generate());
    let server_cfg = server_config(&server_key, &client_key);
    let client_cfg = client_config(&client_key, &server_key);

    let mut server = embedded(&server_ns, &server_if, &server_cfg);
    let client = embedded(&client_ns, &client_if, &client_cfg);
    set_up(&server_ns, &server_if, Role::Server);
    set_up(&client_ns, &client_if, Role::Client);

    // `wg` and wireguard-control's listing see both devices through their UAPI sockets.
    let listed = wireguard_control::Device::list(wireguard_control::Backend::Userspace)
        .expect("list userspace devices");
    for name in [&server_if, &client_if] {
        assert!(
            listed.iter().any(|i| i.as_str_lossy() == name.as_str()),
            "{name} not in {listed:?}"
        );
    }

    let rtt = ping(&client_ns, Role::Server.tunnel_address().addr());
    let up = transfer(
        &server_ns,
        Role::Server.tunnel_address().addr(),
        &client_ns,
        5201,
    );
    let down = transfer(
        &client_ns,
        Role::Client.tunnel_address().addr(),
        &server_ns,
        5202,
    );
    println!(
        "embedded <-> embedded: ping RTT avg {rtt:.3} ms; TCP {TRANSFER} bytes client->server \
         {up:.0} Mbit/s, server->client {down:.0} Mbit/s"
    );

    let server_stats = server.stats().expect("server stats");
    let client_stats = client.stats().expect("client stats");
    let (srx, stx) = check_stats("server", &server_stats, &server_key, &client_key);
    let (crx, ctx) = check_stats("client", &client_stats, &client_key, &server_key);
    println!("server rx {srx} tx {stx}; client rx {crx} tx {ctx} bytes");
    let learnt = server_stats.peers[0]
        .endpoint
        .expect("the server learnt the endpoint");
    assert_eq!(learnt.ip(), std::net::IpAddr::V4(CLIENT_UNDERLAY));
    assert_eq!(server_stats.listen_port, Some(wireguard::DEFAULT_PORT));

    // Re-applying the same configuration writes nothing that would reset the session.
    let before = server_stats.peers[0].last_handshake;
    server.apply(&server_cfg).expect("re-apply");
    let after = server.stats().expect("stats").peers[0].last_handshake;
    assert_eq!(
        before, after,
        "re-applying the same configuration started a new handshake"
    );

    // Names are host-wide: another namespace cannot take a live device's name.
    let third = NetNs::new("wge3");
    match third.enter(|| wireguard::create(&server_if, Mode::Userspace, &server_cfg)) {
        Err(WireGuardError::NameInUse { .. }) => {}
        other => panic!("a second {server_if}: {other:?}"),
    }

    let socket = wireguard::uapi_socket(&server_if);
    drop(client);
    server.delete().expect("delete");
    assert!(!socket.exists(), "{socket:?} outlived its device");
    assert!(
        !Path::new(&format!("{}/{server_if}.name", wireguard::UAPI_DIR)).exists(),
        "the name file outlived its device"
    );
    let gone = server_ns.exec("ip", &["link", "show", "dev", &server_if]);
    assert!(!gone.status.success(), "the TUN device outlived the device");
}

/// A `wireguard-go` child process in a namespace, killed on drop.
struct WireGuardGo {
    child: Child,
    name: String,
}

impl WireGuardGo {
    fn start(ns: &NetNs, name: &str) -> Self {
        let child = ns.enter(|| {
            Command::new("wireguard-go")
                .args(["-f", name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        });
        let child = child.unwrap_or_else(|e| {
            panic!("run wireguard-go (Debian package wireguard-go; `cargo xtask setup`): {e}")
        });
        let me = Self {
            child,
            name: name.to_owned(),
        };
        let socket = wireguard::uapi_socket(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "wireguard-go never served {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        me
    }
}

impl Drop for WireGuardGo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(wireguard::uapi_socket(&self.name));
    }
}

/// `wg show <name>` (wireguard-tools) reads a userspace device through its UAPI socket.
fn wg_show(name: &str, peer: &PrivateKey) {
    let wg = Command::new("wg")
        .args(["show", name])
        .output()
        .expect("run wg show (Debian package wireguard-tools; `cargo xtask setup`)");
    let shown = String::from_utf8_lossy(&wg.stdout);
    assert!(
        wg.status.success(),
        "wg show {name}: {}",
        String::from_utf8_lossy(&wg.stderr)
    );
    for expected in [
        peer.public_key().to_base64().as_str(),
        "latest handshake",
        "transfer:",
    ] {
        assert!(
            shown.contains(expected),
            "wg show {name}: no {expected:?} in {shown}"
        );
    }
}

/// Named `host_tool_`: it needs wireguard-go and wg from the host (the VM tier skips it).
#[test]
fn host_tool_wireguard_go_interoperates_with_the_embedded_device() {
    let (server_ns, client_ns) = underlay("wgg");
    let (server_if, client_if) = (ifname("gs"), ifname("gc"));
    let (server_key, client_key) = (PrivateKey::generate(), PrivateKey::generate());
    let server_cfg = server_config(&server_key, &client_key);
    let client_cfg = client_config(&client_key, &server_key);

    // Server: wireguard-go, configured through the same path as the embedded device.
    let _go = WireGuardGo::start(&server_ns, &server_if);
    wireguard::configure(&server_if, Implementation::Userspace, &server_cfg)
        .unwrap_or_else(|e| panic!("configure wireguard-go: {}", chain(&e)));
    set_up(&server_ns, &server_if, Role::Server);
    // Client: the embedded device.
    let client = embedded(&client_ns, &client_if, &client_cfg);
    set_up(&client_ns, &client_if, Role::Client);

    let rtt = ping(&client_ns, Role::Server.tunnel_address().addr());
    let up = transfer(
        &server_ns,
        Role::Server.tunnel_address().addr(),
        &client_ns,
        5201,
    );
    let down = transfer(
        &client_ns,
        Role::Client.tunnel_address().addr(),
        &server_ns,
        5202,
    );
    println!(
        "wireguard-go <-> embedded: ping RTT avg {rtt:.3} ms; TCP {TRANSFER} bytes \
         embedded->wireguard-go {up:.0} Mbit/s, wireguard-go->embedded {down:.0} Mbit/s"
    );
    let go_stats =
        wireguard::read_stats(&server_if, Implementation::Userspace).expect("wireguard-go stats");
    let (grx, gtx) = check_stats("wireguard-go", &go_stats, &server_key, &client_key);
    let client_stats = client.stats().expect("embedded stats");
    let (crx, ctx) = check_stats("embedded", &client_stats, &client_key, &server_key);
    println!("wireguard-go rx {grx} tx {gtx}; embedded rx {crx} tx {ctx} bytes");
    wg_show(&client_if, &server_key);
    wg_show(&server_if, &client_key);
}

#[test]
fn auto_mode_follows_the_kernel_probe_and_never_starts_an_external_binary() {
    let ns = NetNs::new("wga");
    let name = ifname("au");
    let key = PrivateKey::generate();
    let config = WireGuardConfig {
        private_key: key.clone(),
        listen_port: Some(wireguard::DEFAULT_PORT),
        peer: None,
    };
    let with_peer = WireGuardConfig {
        peer: Some(PeerConfig {
            public_key: PrivateKey::generate().public_key(),
            endpoint: Some(SocketAddr::from((SERVER_UNDERLAY, wireguard::DEFAULT_PORT))),
            allowed_ips: vec!["0.0.0.0/0".parse().expect("net")],
            persistent_keepalive: Some(25),
        }),
        ..config.clone()
    };
    // Everything inside the namespace: a kernel link is reached over netlink from there.
    let (caps, implementation, reason, bare, peered, kernel) = ns.enter(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let caps = runtime.block_on(async {
            let (connection, handle, _) = rtnetlink::new_connection().expect("rtnetlink");
            tokio::spawn(connection);
            probe_kernel(&handle).await
        });
        let mut auto = wireguard::create(&name, Mode::Auto, &config)
            .unwrap_or_else(|e| panic!("auto: {}", chain(&e)));
        let bare = auto.stats().expect("stats");
        auto.apply(&with_peer).expect("apply a peer");
        let peered = auto.stats().expect("stats");
        let kernel = (auto.implementation() == Implementation::Userspace)
            .then(|| wireguard::create(&ifname("ak"), Mode::Kernel, &config));
        let (implementation, reason) = (auto.implementation(), auto.reason());
        auto.delete().expect("delete");
        (
            caps.expect("probe"),
            implementation,
            reason,
            bare,
            peered,
            kernel,
        )
    });
    println!(
        "probe: wireguard {}; auto chose {implementation} ({reason})",
        caps.wireguard
    );
    assert_eq!(bare.public_key, Some(key.public_key()));
    assert_eq!(bare.listen_port, Some(wireguard::DEFAULT_PORT));
    assert!(bare.peers.is_empty());
    let peer = with_peer.peer.as_ref().expect("peer");
    let read = peered
        .peer(&peer.public_key)
        .unwrap_or_else(|| panic!("no peer in {peered:?}"));
    assert_eq!(read.endpoint, peer.endpoint);
    assert_eq!(read.allowed_ips, peer.allowed_ips);
    assert_eq!(read.last_handshake, None);
    if caps.wireguard.is_available() {
        assert_eq!(implementation, Implementation::Kernel);
    } else {
        assert_eq!(implementation, Implementation::Userspace);
        assert!(reason.contains("EOPNOTSUPP"), "{reason}");
        match kernel {
            Some(Err(WireGuardError::KernelUnavailable { .. })) => {}
            other => panic!("--wireguard kernel without a driver: {other:?}"),
        }
    }

    // No device behind the name: an error, not wireguard-control starting wireguard-go.
    let missing = ifname("nx");
    match wireguard::configure(&missing, Implementation::Userspace, &config) {
        Err(WireGuardError::NoUapiSocket { .. }) => {}
        other => panic!("configure without a device: {other:?}"),
    }
    assert!(!wireguard::uapi_socket(&missing).exists());
}
