//! `clusterwire-gateway`: one per peering, in the gateway pod's network namespace. It brings up
//! the WireGuard link `liqo-tunnel` (kernel, else embedded userspace), attaches the remap NAT and
//! MSS programs to it, sets up its Geneve end toward the nodes (a kernel `collect_md` device or
//! eBPF-native on the pod's device toward its node, `clusterwire_daemon::geneve`), fills the
//! maps and routes from its resources (`--manifests DIR`, or the API server with `--kubernetes`;
//! applied as a difference), runs the reference-compatible health check, writes the Connection
//! status (`DIR/status/`, or server-side apply) and serves metrics. With replicas
//! (`--leader-elect`, `--lease-file`) only the elected one does all that; the others stand by
//! (`ha`).
#![forbid(unsafe_code)]

mod apply;
mod config;
mod fabric_file;
mod ha;
mod health;
mod metrics;
mod source;

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use clap::Parser as _;
use clusterwire_daemon::{geneve::GeneveEnd, http, net::Net, sysctl, watch};
use clusterwire_dataplane::{Hook, Instance, InstanceSpec, NatTables, geneve::GeneveMaps};
use clusterwire_election::Lost;
use clusterwire_fabric::{
    connection,
    desired::{self, DesiredError, GatewayDesired, TUNNEL_INTERFACE},
    health::State,
    snapshot::Kind,
};
use clusterwire_links::wireguard::{self, InterfaceSettings, PrivateKey};
use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    task::JoinHandle,
};
use tracing::{error, info, warn};

use crate::{
    apply::Gateway,
    config::Config,
    ha::{Active, Outcome, Replica},
    health::Health,
    metrics::Metrics,
    source::Source,
};

/// How long a client waits for a pong before starting a new WireGuard handshake: two missed
/// health intervals.
const SILENCE: k8s_openapi::jiff::SignedDuration = k8s_openapi::jiff::SignedDuration::from_secs(5);

fn main() -> anyhow::Result<()> {
    let config = Config::try_from(config::Args::parse())?;
    clusterwire_daemon::logging::init(&config.log);
    if let Some(netns) = &config.netns {
        clusterwire_daemon::netns::enter(netns)?;
        clusterwire_daemon::netns::private_run()?;
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?
        .block_on(run(config))
}

/// Waits until the source gives a desired state for this gateway (reporting why not).
async fn first_desired(source: &mut Source, config: &Config) -> GatewayDesired {
    let mut ticker = tokio::time::interval(config.poll);
    let mut reported = String::new();
    loop {
        ticker.tick().await;
        source.poll();
        if !source.synced() {
            continue;
        }
        match desired::gateway(source.snapshot(), &config.id) {
            Ok(want) => return want,
            Err(e) => {
                let text = e.to_string();
                if text != reported {
                    warn!("waiting for a valid configuration: {text}");
                    reported = text;
                }
            }
        }
    }
}

/// Everything a running gateway holds.
struct Running {
    config: Config,
    source: Source,
    current: GatewayDesired,
    gateway: Gateway,
    instance: Instance,
    health: Health,
    metrics: Arc<Metrics>,
    ready: http::Ready,
    implementation: String,
    written: Option<clusterwire_api::networking::connection::ConnectionStatus>,
    last_full_apply: Option<std::time::Instant>,
    /// The Configuration was deleted: the remaps and tunnel routes are withdrawn.
    withdrawn: bool,
    /// The written latency is the first one after connecting (it may include the handshake):
    /// rewrite the status as soon as a newer measurement exists.
    provisional_latency: bool,
    /// When the client last reset its WireGuard peer (see [`Running::rehandshake_due`]).
    last_rehandshake: Option<std::time::Instant>,
    /// Packets out of the tunnel (the datapath's count for the peer) and when that count last
    /// grew: a tunnel that still delivers is not reset, whatever the health check says.
    tunnel_rx: (u64, std::time::Instant),
}

/// Starts the metrics and health endpoint if asked.
fn serve_metrics(addr: Option<std::net::SocketAddr>) -> (Arc<Metrics>, http::Ready) {
    let metrics = Arc::new(Metrics::default());
    let ready = http::Ready::default();
    http::spawn(addr, metrics.clone(), ready.clone());
    (metrics, ready)
}

/// Brings the gateway up: WireGuard, the datapath and the health socket.
async fn start(
    config: Config,
    mut source: Source,
    metrics: Arc<Metrics>,
    ready: http::Ready,
) -> anyhow::Result<Running> {
    sysctl::router()?;
    let private_key = PrivateKey::from_file(&config.private_key)
        .with_context(|| format!("private key {}", config.private_key.display()))?;
    let net = Net::connect().context("rtnetlink")?;
    let (_, local) = net.underlay(&config.underlay_dev).await?;
    sysctl::no_rp_filter(&config.underlay_dev)?;

    let current = first_desired(&mut source, &config).await;
    let endpoint = apply::resolve(&current).await.unwrap_or(None);
    let wg_config = apply::wireguard_config(&current, &private_key, endpoint)?;
    let tunnel = wireguard::create(TUNNEL_INTERFACE, config.wireguard, &wg_config)
        .context("creating the WireGuard link")?;
    info!(
        "wireguard implementation: {} ({})",
        tunnel.implementation(),
        tunnel.reason()
    );
    let settings = InterfaceSettings {
        mtu: u32::from(current.wireguard.mtu),
        address: current.wireguard.address,
    };
    let tunnel_index = tunnel
        .set_up_interface(net.handle(), &settings)
        .await
        .context("setting up liqo-tunnel")?;
    sysctl::no_rp_filter(TUNNEL_INTERFACE)?;

    let spec = InstanceSpec {
        tunnel_mtu: u32::from(current.wireguard.mtu),
        local_ipv4: Some(local),
        attach_mode: config.attach,
        ..InstanceSpec::gateway(config.instance.clone(), 1, TUNNEL_INTERFACE)
    };
    let mut instance = Instance::open(spec).context("opening the datapath instance")?;
    instance.attach(Hook::TunnelNat, TUNNEL_INTERFACE)?;
    let mut end = GeneveEnd::open(
        &net,
        &mut instance,
        config.geneve,
        &config.geneve_dev,
        clusterwire_daemon::geneve::PORT,
        local,
        &[TUNNEL_INTERFACE],
    )
    .await?;
    if let GeneveEnd::Kernel { device, .. } = &end {
        sysctl::no_rp_filter(device)?;
    }
    end.attach_underlay(&mut instance, &config.underlay_dev)?;
    info!(
        instance = %config.instance,
        adopted = instance.adopted(),
        programs_kept = instance.programs_kept(),
        mode = ?instance.attach_mode(),
        "datapath attached (geneve implementation: {})",
        end.implementation()
    );
    let nat = NatTables::take(instance.datapath_mut())?;
    let geneve = GeneveMaps::take(instance.datapath_mut().ebpf_mut())?;
    let implementation = tunnel.implementation().to_string();
    let gateway = Gateway {
        net,
        tunnel,
        tunnel_index,
        private_key,
        nat,
        geneve,
        end,
        unreachable: std::collections::BTreeSet::new(),
        written: None,
    };

    let health = Health::bind(
        current.wireguard.address.addr(),
        current.peer_tunnel_address,
        &current.remote_cluster_id,
    )
    .await
    .context("binding the health check socket")?;
    Ok(Running {
        config,
        source,
        current,
        gateway,
        instance,
        health,
        metrics,
        ready,
        implementation,
        written: None,
        last_full_apply: None,
        withdrawn: false,
        provisional_latency: false,
        last_rehandshake: None,
        tunnel_rx: (0, std::time::Instant::now()),
    })
}

/// How the main loop ended.
enum End {
    /// SIGINT (or SIGTERM with replicas).
    Stopped,
    /// The Lease was lost.
    Lost(Lost),
}

async fn run(config: Config) -> anyhow::Result<()> {
    // First, so a bad --kubeconfig or a missing service account fails before the pod changes.
    let client = source::kubernetes_client(&config.origin).await?;
    let source = Source::open(&config.origin, &config.id, client.as_ref())?;
    let (metrics, ready) = serve_metrics(config.metrics_addr);
    // With replicas, SIGTERM (Kubernetes stopping the pod) steps down cleanly, so a standby
    // takes over at once; without, it ends the process as before.
    let mut term = match config.ha {
        Some(_) => Some(signal(SignalKind::terminate()).context("SIGTERM handler")?),
        None => None,
    };
    let active = match &config.ha {
        None => None,
        Some(ha) => {
            let replica = Replica::new(ha, &config.id, client.as_ref())?;
            let stop = async {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    () = terminated(&mut term) => {}
                }
            };
            match replica.elect(&config.underlay_dev, stop).await? {
                Outcome::Active(active) => Some(Arc::new(*active)),
                Outcome::Stopped => return Ok(()),
            }
        }
    };
    set_leader(&metrics, true);
    // The Lease is renewed by a task of its own from now on, through the startup (which may
    // wait long for a valid configuration) and the main loop, so a long apply does not delay
    // a renewal.
    let mut renewal = active
        .clone()
        .map(|active| tokio::spawn(async move { active.lost().await }));
    let started = tokio::select! {
        started = start(config, source, metrics, ready) => started,
        lost = lost(&mut renewal) => Err(anyhow::anyhow!("{lost} while starting")),
    };
    let mut running = match started {
        Ok(running) => running,
        Err(e) => {
            stop_renewing(renewal).await;
            step_down(None, active).await;
            return Err(e);
        }
    };
    let end = running.serve(&mut renewal, &mut term).await;
    stop_renewing(renewal).await;
    match end {
        End::Stopped if active.is_none() => {
            info!("stopping; the pinned datapath keeps forwarding");
            Ok(())
        }
        End::Stopped => {
            info!("stopping: stepping down so that a standby takes over");
            step_down(Some(running), active).await;
            Ok(())
        }
        End::Lost(lost) => {
            error!("{lost}: no longer the active replica");
            step_down(Some(running), active).await;
            Err(anyhow::anyhow!(
                "{lost}: exiting so that this replica restarts as a standby"
            ))
        }
    }
}

/// Leaves the active role: the WireGuard link goes first (a replica that is not active must
/// not dial or answer the peer), then the pod label and the lease.
async fn step_down(running: Option<Running>, active: Option<Arc<Active>>) {
    if let Some(running) = running {
        running.ready.set(false);
        set_leader(&running.metrics, false);
        if let Err(e) = running.gateway.tunnel.delete() {
            warn!("deleting the WireGuard link: {e}");
        }
    }
    match active.map(Arc::try_unwrap) {
        Some(Ok(active)) => active.step_down().await,
        Some(Err(_)) => warn!("the lease is still in use: not released"),
        None => {}
    }
}

/// Ends the Lease renewal task (its lease reference goes with it).
async fn stop_renewing(task: Option<JoinHandle<Lost>>) {
    if let Some(task) = task {
        task.abort();
        let _ = task.await;
    }
}

/// SIGTERM, if handled; never otherwise.
async fn terminated(term: &mut Option<Signal>) {
    match term {
        Some(term) => {
            term.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// The task renewing the Lease ended: leadership was lost. Never without replicas.
async fn lost(task: &mut Option<JoinHandle<Lost>>) -> Lost {
    match task {
        Some(task) => match task.await {
            Ok(lost) => lost,
            Err(e) => {
                error!("the lease renewal task failed: {e}");
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

fn set_leader(metrics: &Metrics, leader: bool) {
    if let Ok(mut s) = metrics.0.lock() {
        s.leader = leader;
    }
}

impl Running {
    /// The main loop: polls, health checks, applies and writes the status until stopped or
    /// the leadership is lost.
    async fn serve(
        &mut self,
        lease: &mut Option<JoinHandle<Lost>>,
        term: &mut Option<Signal>,
    ) -> End {
        let mut poll = tokio::time::interval(self.config.poll);
        let mut pinger = tokio::time::interval(Duration::from_secs(2));
        // A change of the manifests is applied at once, not at the next poll.
        let watch = watch::manifests(self.source.manifests_dir());
        loop {
            tokio::select! {
                _ = poll.tick() => {}
                () = watch::changed(watch.as_ref()) => {}
                _ = pinger.tick() => { self.health.ping().await; }
                r = self.health.receive() => {
                    match r {
                        // The pong that connects may answer a ping that waited for the WireGuard
                        // handshake (seconds): measure the established tunnel right away, and let
                        // the status carry that measurement instead of the first one.
                        Ok(Some(State::Connected)) => {
                            self.health.ping().await;
                            self.provisional_latency = true;
                        }
                        Ok(_) => {}
                        Err(e) => warn!("health socket: {e}"),
                    }
                    continue;
                }
                _ = tokio::signal::ctrl_c() => return End::Stopped,
                () = terminated(term) => return End::Stopped,
                lost = lost(lease) => return End::Lost(lost),
            }
            self.step().await;
            if self.rehandshake_due() {
                self.rehandshake().await;
            }
        }
    }
}

impl Running {
    /// One tick: health timeout, manifests, apply when due, status, metrics.
    async fn step(&mut self) {
        self.health.tick();
        let changed = self.source.poll();
        if changed {
            match desired::gateway(self.source.snapshot(), &self.config.id) {
                Ok(want) => {
                    if self.withdrawn {
                        info!("the peering's Configuration is back: applying it");
                        self.withdrawn = false;
                    }
                    self.gateway.unreachable.clear();
                    self.current = want;
                }
                // Deleted, not invalid: an invalid Configuration keeps its last good version
                // in the snapshot (`keep_last_good`), so a missing one was removed on purpose
                // and the peering must stop.
                Err(
                    e @ DesiredError::Missing {
                        kind: Kind::Configuration,
                        ..
                    },
                ) => {
                    if !self.withdrawn {
                        warn!("{e}: the peering was removed; withdrawing its remaps and routes");
                        self.withdrawn = true;
                    }
                    let withdrawn = apply::withdraw(&mut self.current);
                    self.gateway.unreachable.extend(withdrawn);
                }
                Err(e) => warn!("keeping the applied state: {e}"),
            }
        }
        // A full apply at startup and every 30 s (re-resolves the endpoint, follows route
        // changes toward the nodes, repairs drift in the maps and routes); on a change between
        // them, an incremental one (only the difference is written).
        let due = self
            .last_full_apply
            .is_none_or(|t| t.elapsed() > Duration::from_secs(30));
        if changed || due {
            self.apply(due).await;
        }
        // Status: written on change or every 10 s, as the reference does.
        let status = connection::status(&self.health.tracker);
        let refresh = self.provisional_latency
            && status.latency != self.written.as_ref().and_then(|w| w.latency.clone())
            && self
                .written
                .as_ref()
                .is_some_and(|w| w.value == status.value);
        if refresh || connection::should_write(self.written.as_ref(), &status) {
            let uid = self.source.gateway_uid(&self.config.id);
            let mut conn = source::owned_by_gateway(connection::connection(
                &self.config.id,
                &self.current.remote_cluster_id,
                uid.as_deref(),
            ));
            conn.status = Some(status.clone());
            match self.source.write_status(&conn).await {
                Ok(()) => {
                    // The write that says Connected keeps the latency provisional; the
                    // refresh after it ends that.
                    self.provisional_latency &= !refresh;
                    self.written = Some(status);
                }
                Err(e) => warn!("writing the Connection status: {e:#}"),
            }
        }
        let rx_packets = sample(
            &self.metrics,
            &self.gateway,
            &self.instance,
            &self.health,
            &self.current,
            &self.implementation,
        );
        if let Some(rx) = rx_packets
            && rx != self.tunnel_rx.0
        {
            self.tunnel_rx = (rx, std::time::Instant::now());
        }
    }

    /// A client whose peer stopped answering (no pong for [`SILENCE`], after having been
    /// heard) starts a new WireGuard handshake, at most once per [`SILENCE`]: a restarted
    /// server lost the session and cannot reach the client itself (it has no endpoint for it),
    /// and WireGuard's own timers would wait 15 s before handshaking again. Not while packets
    /// still come out of the tunnel: then only the peer's health responder is away (a server
    /// process restarting over a kernel WireGuard link that kept its session), and resetting
    /// the peer would drop the working session until the new handshake.
    fn rehandshake_due(&self) -> bool {
        let tracker = &self.health.tracker;
        self.config.id.role == desired::Role::Client
            && tracker.state() != State::Connecting
            && k8s_openapi::jiff::Timestamp::now().duration_since(tracker.last_heard()) > SILENCE
            && self.tunnel_rx.1.elapsed() > SILENCE.unsigned_abs()
            && self
                .last_rehandshake
                .is_none_or(|t| t.elapsed() > SILENCE.unsigned_abs())
    }

    async fn rehandshake(&mut self) {
        self.last_rehandshake = Some(std::time::Instant::now());
        warn!(
            "no pong for more than {SILENCE:#}: starting a new WireGuard handshake with the server"
        );
        match self.gateway.reset_peer(&self.current).await {
            // A packet into the tunnel starts the handshake now.
            Ok(()) => self.health.ping().await,
            Err(e) => warn!("resetting the WireGuard peer: {e:#}"),
        }
    }

    async fn apply(&mut self, full: bool) {
        if full {
            self.last_full_apply = Some(std::time::Instant::now());
        }
        for skipped in &self.current.skipped {
            warn!("skipped: {skipped}");
        }
        let ok = match self
            .gateway
            .apply(&mut self.instance, &self.current, full)
            .await
        {
            Ok(applied) => {
                if applied.changed() {
                    info!(?applied, "applied");
                }
                true
            }
            Err(e) => {
                error!("apply failed: {e:#}; retrying");
                false
            }
        };
        self.ready.set(ok);
        if let Ok(mut s) = self.metrics.0.lock() {
            if ok {
                s.applies += 1;
            } else {
                s.apply_errors += 1;
            }
        }
    }
}

/// Refreshes the metrics from the health tracker, WireGuard and the datapath's counters;
/// returns the packets that came out of the tunnel (the datapath's count for the peer), which
/// [`Running::rehandshake_due`] also needs.
fn sample(
    metrics: &Metrics,
    gateway: &Gateway,
    instance: &Instance,
    health: &Health,
    current: &GatewayDesired,
    implementation: &str,
) -> Option<u64> {
    let datapath = instance.datapath();
    let peer = datapath.peer_stats(datapath.config().peer_id).ok();
    let rx_packets = peer.as_ref().map(|p| p.rx_packets);
    let Ok(mut s) = metrics.0.lock() else {
        return rx_packets;
    };
    if let Ok(drops) = datapath.drop_counts() {
        s.drops = drops.into_iter().map(|(r, n)| (r.kind(), n)).collect();
    }
    if let Ok(events) = datapath.events() {
        s.events = events.into_iter().map(|(e, n)| (e.kind(), n)).collect();
    }
    if let Some(p) = peer {
        s.peer_packets = (p.rx_packets, p.tx_packets);
        s.peer_bytes = (p.rx_bytes, p.tx_bytes);
    }
    s.cluster_id.clone_from(&current.remote_cluster_id);
    implementation.clone_into(&mut s.implementation);
    s.geneve = gateway.end.implementation();
    s.connected = health.tracker.state() == State::Connected;
    s.latency_us = health
        .tracker
        .latency()
        .map_or(0, |l| u64::try_from(l.as_micros()).unwrap_or(0));
    if let Ok(stats) = gateway.tunnel.stats() {
        let (rx, tx) = stats
            .peers
            .iter()
            .fold((0, 0), |(rx, tx), p| (rx + p.rx_bytes, tx + p.tx_bytes));
        s.rx_bytes = rx;
        s.tx_bytes = tx;
    }
    rx_packets
}
