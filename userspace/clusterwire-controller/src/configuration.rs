//! The Configuration reconciler: the remote cluster's CIDRs remapped by the IPAM into
//! `status.remote.cidr.{pod,external}`, condition `NetworkCIDRsConfigured`, the remap released
//! through a finalizer when the Configuration is deleted.
//!
//! The IPAM lives in memory; [`restore`] rebuilds it from the statuses the Configurations
//! already carry before the first reconcile, so a restarted controller hands every
//! Configuration the remap it had (the IPAM's answers depend only on the live allocations).

use std::sync::Arc;

use clusterwire_api::{
    common::{Cidr, CidrList, StatusCommon},
    networking::{
        Configuration,
        configuration::{ConfigurationSpec, ConfigurationStatus, RemappedCidr, RemappedConfig},
    },
};
use clusterwire_ipam::{ClusterMapping, Ipam, IpamError, Remap, RemoteCidrs};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        controller::Action,
        finalizer::{Event as Finalizer, finalizer},
    },
};
use serde_json::json;

use crate::{
    Error,
    context::{Context, FIELD_MANAGER},
    status::set_condition,
};

/// The finalizer that releases a Configuration's remap.
pub const FINALIZER: &str = "clusterwire.liqo.io/remap";
/// The condition type the reference uses.
pub const CONDITION: &str = "NetworkCIDRsConfigured";

/// The IPAM key of a Configuration: `namespace/name`.
pub fn key(conf: &Configuration) -> Result<String, Error> {
    match (
        conf.metadata.namespace.as_deref(),
        conf.metadata.name.as_deref(),
    ) {
        (Some(ns), Some(name)) => Ok(format!("{ns}/{name}")),
        _ => Err(Error::Unnamed {
            kind: "Configuration",
        }),
    }
}

/// The remote CIDRs a Configuration announces.
pub fn remote_cidrs(spec: &ConfigurationSpec) -> RemoteCidrs {
    let cidr = &spec.remote.cidr;
    RemoteCidrs {
        pod: cidr.pod.nets(),
        external: cidr
            .external
            .as_ref()
            .map(CidrList::nets)
            .unwrap_or_default(),
    }
}

/// The mapping a Configuration's status records, if it records one for the CIDRs of its spec.
pub fn recorded_mapping(conf: &Configuration) -> Result<Option<ClusterMapping>, IpamError> {
    let Some(remapped) = conf.status.as_ref().and_then(|s| s.remote.as_ref()) else {
        return Ok(None);
    };
    let remote = remote_cidrs(&conf.spec);
    let pair = |sources: &[ipnet::IpNet], targets: &[Cidr]| -> Result<Option<Vec<Remap>>, _> {
        if sources.len() != targets.len() {
            return Ok(None);
        }
        sources
            .iter()
            .zip(targets)
            .map(|(s, t)| Remap::try_new(*s, t.0))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    };
    let pod = pair(&remote.pod, &remapped.cidr.pod)?;
    let external = pair(&remote.external, &remapped.cidr.external)?;
    Ok(pod
        .zip(external)
        .map(|(pod, external)| ClusterMapping { pod, external }))
}

/// Rebuilds the IPAM from the Configurations' statuses. A status that no longer matches its
/// spec, or that conflicts with a local range or another status, is skipped and returned; that
/// Configuration gets a fresh remap on its reconcile.
pub fn restore(ipam: &mut Ipam, configurations: &[Configuration]) -> Vec<(String, IpamError)> {
    let mut problems = Vec::new();
    for conf in configurations {
        let Ok(key) = key(conf) else { continue };
        match recorded_mapping(conf) {
            Ok(Some(mapping)) => {
                if let Err(e) = ipam.restore_cluster(&key, &mapping) {
                    problems.push((key, e));
                }
            }
            Ok(None) => {}
            Err(e) => problems.push((key, e)),
        }
    }
    problems
}

/// Reconciles one Configuration (through the finalizer).
pub async fn reconcile(conf: Arc<Configuration>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = conf.namespace().ok_or(Error::Unnamed {
        kind: "Configuration",
    })?;
    let api: Api<Configuration> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, conf, |event| async {
        match event {
            Finalizer::Apply(conf) => apply(&conf, &api, &ctx).await,
            Finalizer::Cleanup(conf) => cleanup(&conf, &ctx),
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// What the controller does after a failed reconcile: retry with backoff.
#[expect(
    clippy::needless_pass_by_value,
    reason = "the signature kube-runtime's Controller::run takes"
)]
pub fn error_policy(conf: Arc<Configuration>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = key(&conf).unwrap_or_default();
    let delay = ctx.backoff(&key);
    tracing::warn!(configuration = %key, kind = err.kind(), ?delay, "reconcile failed: {err}");
    Action::requeue(delay)
}

fn describe(mapping: &ClusterMapping) -> String {
    let list = |remaps: &[Remap]| {
        remaps
            .iter()
            .map(|r| format!("{} -> {}", r.source(), r.target()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!("pod {}", list(&mapping.pod));
    if !mapping.external.is_empty() {
        text.push_str("; external ");
        text.push_str(&list(&mapping.external));
    }
    text
}

async fn apply(
    conf: &Configuration,
    api: &Api<Configuration>,
    ctx: &Context,
) -> Result<Action, Error> {
    let key = key(conf)?;
    let remote = remote_cidrs(&conf.spec);
    let result = {
        let mut ipam = ctx.ipam();
        if ipam.cluster(&key).is_some_and(|m| m.sources() != remote) {
            // The spec changed: its old remap goes, the new CIDRs are mapped afresh.
            ipam.release_cluster(&key);
        }
        ipam.map_cluster(&key, &remote)
    };
    let old = conf.status.clone().unwrap_or_default();
    let generation = conf.metadata.generation;
    let (remapped, ok, reason, message, failure) = match result {
        Ok(mapping) => {
            let targets = |r: &[Remap]| r.iter().map(|r| Cidr(r.target())).collect();
            let remapped = RemappedConfig {
                cidr: RemappedCidr {
                    pod: targets(&mapping.pod),
                    external: targets(&mapping.external),
                },
            };
            (Some(remapped), true, "Configured", describe(&mapping), None)
        }
        Err(e) => {
            let err = Error::Ipam(e);
            (None, false, err.reason(), err.to_string(), Some(err))
        }
    };
    let conditions = set_condition(
        &old.common.conditions,
        CONDITION,
        ok,
        reason,
        &message,
        generation,
        (ctx.clock)(),
    );
    let desired = ConfigurationStatus {
        remote: remapped,
        common: StatusCommon {
            conditions,
            observed_generation: generation,
        },
    };
    if desired != old {
        let name = conf.name_any();
        let patch = json!({
            "apiVersion": Configuration::api_version(&()),
            "kind": Configuration::kind(&()),
            "status": desired,
        });
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        let changed = old
            .common
            .conditions
            .iter()
            .find(|c| c.type_ == CONDITION)
            .is_none_or(|c| c.reason != reason || c.message != message);
        if changed {
            let event_reason = if ok { "CIDRsConfigured" } else { reason };
            ctx.events
                .publish(&conf.object_ref(&()), !ok, event_reason, &message)
                .await;
        }
        tracing::info!(configuration = %key, ok, "{message}");
    }
    if let Some(err) = failure {
        return Err(err);
    }
    ctx.succeeded(&key);
    Ok(Action::await_change())
}

fn cleanup(conf: &Configuration, ctx: &Context) -> Result<Action, Error> {
    let key = key(conf)?;
    if let Some(mapping) = ctx.ipam().release_cluster(&key) {
        tracing::info!(configuration = %key, "released {}", describe(&mapping));
    }
    ctx.succeeded(&key);
    Ok(Action::await_change())
}
