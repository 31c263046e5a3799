//! `clusterwire-agent`: one per node, in the host network namespace. It reads its resources
//! (`--manifests DIR`, or the API server with `--kubernetes`), computes the node's desired state
//! (`clusterwire_fabric::desired::agent`) and applies it as a difference: routes for every peer's
//! remapped CIDRs toward that peering's gateway pod (with the tunnel MTU), Geneve encapsulation
//! and decapsulation (a kernel `collect_md` device or eBPF-native, `clusterwire_daemon::geneve`),
//! the node's internal-CIDR address, and the CNI-masquerade bypass (traffic to and from remote
//! CIDRs untracked, `bypass`). The datapath is pinned: killing the agent loses no packet, and a
//! restarted agent adopts it and changes nothing before its source holds a complete snapshot.
#![forbid(unsafe_code)]

mod apply;
mod bypass;
mod config;
mod source;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::Parser as _;
use clusterwire_daemon::{geneve::GeneveEnd, http, net::Net, sysctl, watch};
use clusterwire_dataplane::{Instance, InstanceSpec, geneve::GeneveMaps};
use clusterwire_fabric::desired;
use tracing::{error, info, warn};

use crate::{apply::Node, config::Config, source::Source};

/// How often the agent applies everything again without a change.
const FULL_EVERY: Duration = Duration::from_secs(30);
/// How often the bypass table is checked, and a full apply retried while something is missing.
const CHECK_EVERY: Duration = Duration::from_secs(5);

struct Metrics {
    instance: String,
    geneve: &'static str,
}

impl http::Exporter for Metrics {
    fn metrics(&self) -> String {
        let (name, geneve) = (&self.instance, self.geneve);
        format!(
            "# TYPE clusterwire_agent_up gauge\n\
             clusterwire_agent_up{{instance=\"{name}\",geneve=\"{geneve}\"}} 1\n"
        )
    }
}

fn main() -> anyhow::Result<()> {
    let config = Config::try_from(config::Args::parse())?;
    clusterwire_daemon::logging::init(&config.log);
    if let Some(netns) = &config.netns {
        clusterwire_daemon::netns::enter(netns)?;
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?
        .block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    // First, so a bad --kubeconfig or a missing service account fails before the host changes.
    let mut source = Source::open(&config.origin).await?;
    sysctl::router()?;
    let net = Net::connect().context("rtnetlink")?;
    let (_, local) = net.underlay(&config.underlay_dev).await?;
    sysctl::no_rp_filter(&config.underlay_dev)?;
    let spec = InstanceSpec {
        local_ipv4: Some(local),
        attach_mode: config.attach,
        ..InstanceSpec::node(config.instance.clone())
    };
    let mut instance = Instance::open(spec).context("opening the datapath instance")?;
    let mut end = GeneveEnd::open(
        &net,
        &mut instance,
        config.geneve,
        &config.geneve_dev,
        clusterwire_daemon::geneve::PORT,
        local,
        &[],
    )
    .await?;
    if let GeneveEnd::Kernel { device, .. } = &end {
        sysctl::no_rp_filter(device)?;
    }
    // Gateways on other nodes answer on the underlay.
    end.attach_underlay(&mut instance, &config.underlay_dev)?;
    let implementation = end.implementation();
    info!(
        instance = %config.instance,
        adopted = instance.adopted(),
        programs_kept = instance.programs_kept(),
        mode = ?instance.attach_mode(),
        underlay = %config.underlay_dev,
        %local,
        "datapath ready (geneve implementation: {implementation})"
    );
    let geneve = GeneveMaps::take(instance.datapath_mut().ebpf_mut())?;
    let mut node = Node::new(net, instance, geneve, end);

    let ready = http::Ready::default();
    let exporter = Arc::new(Metrics {
        instance: config.instance.clone(),
        geneve: implementation,
    });
    http::spawn(config.metrics_addr, exporter, ready.clone());

    let mut ticker = tokio::time::interval(config.poll);
    let mut last_check: Option<Instant> = None;
    let mut last_full: Option<Instant> = None;
    let mut complete = false;
    // A change of the manifests is applied at once, not at the next poll.
    let watch = watch::manifests(source.manifests_dir());
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = watch::changed(watch.as_ref()) => {}
            _ = tokio::signal::ctrl_c() => {
                info!("stopping; the pinned datapath keeps forwarding");
                return Ok(());
            }
        }
        let changed = source.poll();
        // Never from a partial snapshot (the API server's first lists still arriving).
        if !source.synced() {
            continue;
        }
        // A full apply at startup, every 30 s (follows route changes toward gateway pods,
        // repairs drift in the maps and routes), and every 5 s while something is missing (a
        // gateway pod not reachable yet, a failed apply); on a change, an incremental one.
        // Every 5 s otherwise, only the bypass table is checked (restored if it was flushed).
        let due =
            |last: Option<Instant>, every: Duration| last.is_none_or(|t| t.elapsed() >= every);
        let full = due(last_full, FULL_EVERY)
            || (!complete && due(last_check, CHECK_EVERY))
            || node.needs_full();
        if !changed && !full {
            if due(last_check, CHECK_EVERY) {
                last_check = Some(Instant::now());
                match node.bypass.repair() {
                    Ok(true) => info!("CNI-masquerade bypass table was missing: written again"),
                    Ok(false) => {}
                    Err(e) => warn!("CNI-masquerade bypass not restored: {e:#}"),
                }
            }
            continue;
        }
        last_check = Some(Instant::now());
        if full {
            last_full = last_check;
        }
        complete = apply(&mut node, &source, &config.node, full).await;
        ready.set(complete);
    }
}

/// Applies the node's desired state; whether everything is in place.
async fn apply(node: &mut Node, source: &Source, name: &str, full: bool) -> bool {
    let want = desired::agent(source.snapshot(), name);
    for skipped in &want.skipped {
        warn!("skipped: {skipped}");
    }
    match node.apply(&want, full).await {
        Ok(applied) => {
            if applied.changed() {
                info!(?applied, "applied");
            }
            if let Some(e) = &applied.bypass_error {
                warn!("CNI-masquerade bypass not applied (pod sources may be masqueraded): {e}");
            }
            applied.unreachable_gateways.is_empty() && applied.bypass_error.is_none()
        }
        Err(e) => {
            error!("apply failed: {e:#}; retrying");
            false
        }
    }
}
