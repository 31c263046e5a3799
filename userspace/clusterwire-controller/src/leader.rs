//! Leader election over a `coordination.k8s.io/v1` Lease, so one replica reconciles at a time.
//!
//! Timing as the reference's gateways use: a 15 s lease, renewed every 2 s (the retry period),
//! given up when it could not be renewed for 10 s (the renew deadline), so a new leader can take
//! over 15 s after the old one stopped renewing at the latest. The decision is a pure function
//! of the Lease and the time ([`decide`]), tested with a controllable clock; writes use the
//! Lease's `resourceVersion`, so two candidates never both win.

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::{SignedDuration, Timestamp},
};
use kube::{Api, api::PostParams};

/// Lease timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a lease is valid after its last renewal.
    pub lease: Duration,
    /// How long the leader keeps trying to renew before it gives up.
    pub renew_deadline: Duration,
    /// How often candidates and the leader try.
    pub retry: Duration,
}

/// The reference's timing: 15 s lease, 10 s renew deadline, 2 s retry.
pub const TIMING: Timing = Timing {
    lease: Duration::from_secs(15),
    renew_deadline: Duration::from_secs(10),
    retry: Duration::from_secs(2),
};

/// What a candidate does with a Lease at a given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds a valid lease: take it (a new transition).
    Acquire,
    /// We hold it: renew.
    Renew,
    /// Someone else holds a valid lease until the given time.
    Follow {
        /// The holder.
        holder: String,
        /// When the lease runs out unless renewed.
        expires: Timestamp,
    },
}

/// Decides for candidate `me` at `now`.
pub fn decide(lease: Option<&LeaseSpec>, me: &str, now: Timestamp, timing: Timing) -> Decision {
    let Some(spec) = lease else {
        return Decision::Acquire;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder == me {
        return Decision::Renew;
    }
    let seconds = spec
        .lease_duration_seconds
        .map_or(timing.lease.as_secs(), |s| u64::try_from(s).unwrap_or(0));
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    let expires =
        renewed.map(|t| t + SignedDuration::from_secs(i64::try_from(seconds).unwrap_or(i64::MAX)));
    match expires {
        Some(expires) if !holder.is_empty() && expires > now => Decision::Follow {
            holder: holder.to_owned(),
            expires,
        },
        _ => Decision::Acquire,
    }
}

/// One attempt to acquire or renew `name` for `me`: whether `me` leads afterwards. A conflict
/// (another candidate wrote first) is "not leading", not an error.
pub async fn try_lead(
    api: &Api<Lease>,
    name: &str,
    me: &str,
    now: Timestamp,
    timing: Timing,
) -> Result<bool, kube::Error> {
    let current = api.get_opt(name).await?;
    let decision = decide(
        current.as_ref().and_then(|l| l.spec.as_ref()),
        me,
        now,
        timing,
    );
    let seconds = i32::try_from(timing.lease.as_secs()).unwrap_or(i32::MAX);
    let result = match (decision, current) {
        (Decision::Follow { .. }, _) => return Ok(false),
        (_, None) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.to_owned()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            api.create(&PostParams::default(), &lease).await
        }
        (decision, Some(mut lease)) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if decision == Decision::Acquire {
                spec.holder_identity = Some(me.to_owned());
                spec.acquire_time = Some(MicroTime(now));
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
            spec.lease_duration_seconds = Some(seconds);
            spec.renew_time = Some(MicroTime(now));
            lease.metadata.managed_fields = None;
            api.replace(name, &PostParams::default(), &lease).await
        }
    };
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs the election until leadership is lost: waits to become leader (calling `on_lead` once
/// when it does), then renews every retry period; returns when renewals failed for longer than
/// the renew deadline or another holder took the lease.
pub async fn lead(
    api: Api<Lease>,
    name: String,
    me: String,
    timing: Timing,
    on_lead: impl FnOnce(),
) {
    loop {
        match try_lead(&api, &name, &me, Timestamp::now(), timing).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => tracing::warn!(lease = %name, "leader election: {e}"),
        }
        tokio::time::sleep(timing.retry).await;
    }
    tracing::info!(lease = %name, identity = %me, "became leader");
    on_lead();
    let mut last_renewal = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(timing.retry).await;
        match try_lead(&api, &name, &me, Timestamp::now(), timing).await {
            Ok(true) => last_renewal = tokio::time::Instant::now(),
            Ok(false) => {
                tracing::warn!(lease = %name, "another replica holds the lease");
                return;
            }
            Err(e) => tracing::warn!(lease = %name, "renewing the lease: {e}"),
        }
        if last_renewal.elapsed() > timing.renew_deadline {
            tracing::warn!(lease = %name, "lease not renewed within the renew deadline");
            return;
        }
    }
}
