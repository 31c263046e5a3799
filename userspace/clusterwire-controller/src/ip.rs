//! The IP reconciler (`ipam.liqo.io/v1alpha1` `IP`): the local address `spec.ip` gets an
//! address of the local external CIDR (10.70.0.0/16 by default; never its first address, the
//! unknown-source address) in `status.ip`, and that CIDR in `status.cidr`, as the reference's
//! IP controller does without a `spec.networkRef`. The gateways read both (every gateway maps
//! `status.ip` to `spec.ip` into and out of its tunnel: `clusterwire_fabric::desired::gateway`).
//! The address is released through finalizer `clusterwire.liqo.io/ip` when the IP is deleted,
//! and restored from the recorded statuses on start ([`restore`]); `status.ip` is immutable
//! (CEL), so a recorded address is kept, never reassigned. An IP naming a Network
//! (`spec.networkRef`), or an address the IPAM refuses, is a warning event and a retry.

use std::{net::IpAddr, sync::Arc};

use clusterwire_api::{
    common::{Cidr, Ip},
    ipam::IP,
};
use clusterwire_ipam::{Ipam, IpamError};
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
};

/// The finalizer that releases an IP's address.
pub const FINALIZER: &str = "clusterwire.liqo.io/ip";

/// The IPAM key of an IP: `namespace/name`.
pub fn key(ip: &IP) -> Result<String, Error> {
    match (
        ip.metadata.namespace.as_deref(),
        ip.metadata.name.as_deref(),
    ) {
        (Some(ns), Some(name)) => Ok(format!("{ns}/{name}")),
        _ => Err(Error::Unnamed { kind: "IP" }),
    }
}

/// Restores the addresses the IPs' statuses record; the conflicting ones are returned.
pub fn restore(ipam: &mut Ipam, ips: &[IP]) -> Vec<(String, IpamError)> {
    let mut problems = Vec::new();
    for ip in ips {
        let Ok(key) = key(ip) else { continue };
        let Some(recorded) = ip.status.as_ref().and_then(|s| s.ip) else {
            continue;
        };
        if let Err(e) = ipam.restore_ip(&key, ip.spec.ip.0, recorded.0) {
            problems.push((key, e));
        }
    }
    problems
}

/// Reconciles one IP (through the finalizer).
pub async fn reconcile(ip: Arc<IP>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = ip.namespace().ok_or(Error::Unnamed { kind: "IP" })?;
    let api: Api<IP> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, ip, |event| async {
        match event {
            Finalizer::Apply(ip) => apply(&ip, &api, &ctx).await,
            Finalizer::Cleanup(ip) => cleanup(&ip, &ctx),
        }
    })
    .await
    .map_err(Error::from_finalizer)
}

/// Retry with backoff after a failed reconcile.
#[expect(
    clippy::needless_pass_by_value,
    reason = "the signature kube-runtime's Controller::run takes"
)]
pub fn error_policy(ip: Arc<IP>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = format!("IP/{}", key(&ip).unwrap_or_default());
    let delay = ctx.backoff(&key);
    tracing::warn!(ip = %key, kind = err.kind(), ?delay, "reconcile failed: {err}");
    Action::requeue(delay)
}

/// The address of `ip` (`key`) in the IPAM: the one it holds, else the recorded one, else a
/// new one.
fn address(ipam: &mut Ipam, key: &str, ip: &IP) -> Result<IpAddr, IpamError> {
    let local = ip.spec.ip.0;
    match ipam.ip(key) {
        Some((address, held)) if held == local => return Ok(address),
        Some(_) => {
            ipam.release_ip(key);
        }
        None => {}
    }
    match ip.status.as_ref().and_then(|s| s.ip) {
        Some(recorded) => ipam.restore_ip(key, local, recorded.0).map(|()| recorded.0),
        None => ipam.allocate_ip(key, local),
    }
}

async fn apply(ip: &IP, api: &Api<IP>, ctx: &Context) -> Result<Action, Error> {
    let key = key(ip)?;
    let result = if let Some(network) = &ip.spec.network_ref {
        Err(Error::NetworkRefUnsupported {
            network: format!(
                "{}/{}",
                network.namespace.as_deref().unwrap_or_default(),
                network.name.as_deref().unwrap_or_default()
            ),
        })
    } else {
        let mut ipam = ctx.ipam();
        address(&mut ipam, &key, ip)
            .map(|a| {
                let cidr = ipam
                    .config()
                    .external_cidrs
                    .iter()
                    .find(|c| c.contains(&a))
                    .copied();
                (a, cidr)
            })
            .map_err(Error::Ipam)
    };
    let (address, cidr) = match result {
        Ok(found) => found,
        Err(err) => {
            ctx.events
                .publish(&ip.object_ref(&()), true, err.reason(), &err.to_string())
                .await;
            return Err(err);
        }
    };
    let status = ip.status.as_ref();
    let same = status.is_some_and(|s| s.ip == Some(Ip(address)) && s.cidr.map(|c| c.0) == cidr);
    if !same {
        let mut status = json!({ "ip": Ip(address) });
        if let Some(cidr) = cidr {
            status["cidr"] = json!(Cidr(cidr));
        }
        let patch = json!({
            "apiVersion": IP::api_version(&()),
            "kind": IP::kind(&()),
            "status": status,
        });
        api.patch_status(
            &ip.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        tracing::info!(ip = %key, local = %ip.spec.ip.0, %address, "address assigned");
    }
    ctx.succeeded(&format!("IP/{key}"));
    Ok(Action::await_change())
}

fn cleanup(ip: &IP, ctx: &Context) -> Result<Action, Error> {
    let key = key(ip)?;
    if let Some(address) = ctx.ipam().release_ip(&key) {
        tracing::info!(ip = %key, %address, "address released");
    }
    ctx.succeeded(&format!("IP/{key}"));
    Ok(Action::await_change())
}
