//! Leader election over a `coordination.k8s.io/v1` Lease, so one replica acts at a time.
//!
//! Timing as the reference's gateways use: a 15 s lease, renewed every 2 s (the retry period),
//! given up when it could not be renewed for 10 s (the renew deadline), so a new leader can take
//! over 15 s after the old one stopped renewing at the latest. What a candidate does is a pure
//! function of the Lease and the time ([`decide`], and [`claim`] for the spec it writes), tested
//! with a controllable clock; writes carry the Lease's `resourceVersion`, so two candidates
//! never both win.

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::{SignedDuration, Timestamp},
};
use kube::{Api, api::PostParams};
use tracing::{info, warn};

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

/// The spec `me` writes at `now` to acquire or renew (`None`: follow, write nothing). A
/// takeover sets the acquire time and counts one more transition; a renewal only moves the
/// renew time; the lease duration is always ours.
pub fn claim(
    current: Option<&LeaseSpec>,
    me: &str,
    now: Timestamp,
    timing: Timing,
) -> Option<LeaseSpec> {
    let decision = decide(current, me, now, timing);
    if matches!(decision, Decision::Follow { .. }) {
        return None;
    }
    let seconds = i32::try_from(timing.lease.as_secs()).unwrap_or(i32::MAX);
    let mut spec = current.cloned().unwrap_or_default();
    if decision == Decision::Acquire {
        spec.holder_identity = Some(me.to_owned());
        spec.acquire_time = Some(MicroTime(now));
        // A new Lease starts at 0 transitions; a takeover counts one more.
        spec.lease_transitions = Some(current.map_or(0, |c| c.lease_transitions.unwrap_or(0) + 1));
    }
    spec.lease_duration_seconds = Some(seconds);
    spec.renew_time = Some(MicroTime(now));
    Some(spec)
}

/// The spec that gives up `current` at `now` if `me` holds it (`None` otherwise): no holder,
/// so the next candidate acquires at once instead of waiting for the lease to run out.
pub fn released(current: &LeaseSpec, me: &str, now: Timestamp) -> Option<LeaseSpec> {
    (current.holder_identity.as_deref() == Some(me)).then(|| LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        renew_time: Some(MicroTime(now)),
        ..current.clone()
    })
}

/// What one attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// `me` holds the lease now (acquired or renewed).
    Lead,
    /// Another candidate holds a valid lease.
    Follow {
        /// The holder.
        holder: String,
    },
    /// Another candidate wrote the Lease between our read and our write (HTTP 409).
    Conflict,
}

/// One attempt of `me` to acquire or renew Lease `name` at `now`.
pub async fn attempt(
    api: &Api<Lease>,
    name: &str,
    me: &str,
    now: Timestamp,
    timing: Timing,
) -> Result<Attempt, kube::Error> {
    let current = api.get_opt(name).await?;
    let spec = current.as_ref().and_then(|l| l.spec.as_ref());
    let Some(claimed) = claim(spec, me, now, timing) else {
        let holder = spec
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_default();
        return Ok(Attempt::Follow { holder });
    };
    let result = match current {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    ..ObjectMeta::default()
                },
                spec: Some(claimed),
            };
            api.create(&PostParams::default(), &lease).await
        }
        Some(mut lease) => {
            lease.spec = Some(claimed);
            lease.metadata.managed_fields = None;
            api.replace(name, &PostParams::default(), &lease).await
        }
    };
    match result {
        Ok(_) => Ok(Attempt::Lead),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Conflict),
        Err(e) => Err(e),
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
    Ok(attempt(api, name, me, now, timing).await? == Attempt::Lead)
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
    let election = LeaseElection::new(api, name, me, timing);
    election.acquire(|_| {}).await;
    on_lead();
    election.hold().await;
}

/// Why a leader stopped leading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Lost {
    /// Another candidate holds the lease.
    #[error("lease {lease} is held by {holder}")]
    TakenBy {
        /// The Lease.
        lease: String,
        /// Its holder.
        holder: String,
    },
    /// No renewal succeeded within the renew deadline.
    #[error("lease {lease} not renewed within the renew deadline ({deadline:?})")]
    RenewDeadline {
        /// The Lease.
        lease: String,
        /// The renew deadline.
        deadline: Duration,
    },
}

impl Lost {
    /// A label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TakenBy { .. } => "taken",
            Self::RenewDeadline { .. } => "renew_deadline",
        }
    }
}

/// One candidate of the election over one Lease.
#[derive(Clone)]
pub struct LeaseElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    clock: fn() -> Timestamp,
}

impl std::fmt::Debug for LeaseElection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseElection")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

impl LeaseElection {
    /// Candidate `identity` for Lease `name` (in the namespace of `api`), on the system clock.
    pub fn new(api: Api<Lease>, name: String, identity: String, timing: Timing) -> Self {
        Self {
            api,
            name,
            identity,
            timing,
            clock: Timestamp::now,
        }
    }

    /// The same candidate on another clock (tests).
    #[must_use]
    pub fn with_clock(self, clock: fn() -> Timestamp) -> Self {
        Self { clock, ..self }
    }

    /// The Lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    async fn attempt(&self) -> Result<Attempt, kube::Error> {
        attempt(
            &self.api,
            &self.name,
            &self.identity,
            (self.clock)(),
            self.timing,
        )
        .await
    }

    /// Tries every retry period until this candidate leads; `standby(holder)` is called when
    /// the holder seen changes (API errors are logged and retried).
    pub async fn acquire(&self, mut standby: impl FnMut(&str)) {
        let mut seen = None;
        loop {
            match self.attempt().await {
                Ok(Attempt::Lead) => break,
                Ok(Attempt::Follow { holder }) => {
                    if seen.as_ref() != Some(&holder) {
                        standby(&holder);
                        seen = Some(holder);
                    }
                }
                Ok(Attempt::Conflict) => {}
                Err(e) => warn!(lease = %self.name, "leader election: {e}"),
            }
            tokio::time::sleep(self.timing.retry).await;
        }
        info!(lease = %self.name, identity = %self.identity, "became leader");
    }

    /// Renews every retry period while leading; returns why leadership ended: another holder
    /// took the lease, or no renewal succeeded within the renew deadline (a request that hangs
    /// counts as failed when the deadline passes). A conflict is retried: only a read showing
    /// another valid holder ends it early.
    pub async fn hold(&self) -> Lost {
        let deadline = self.timing.renew_deadline;
        let mut renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.timing.retry).await;
            let left = deadline.saturating_sub(renewed.elapsed());
            if left.is_zero() {
                return Lost::RenewDeadline {
                    lease: self.name.clone(),
                    deadline,
                };
            }
            match tokio::time::timeout(left, self.attempt()).await {
                Ok(Ok(Attempt::Lead)) => renewed = tokio::time::Instant::now(),
                Ok(Ok(Attempt::Follow { holder })) => {
                    return Lost::TakenBy {
                        lease: self.name.clone(),
                        holder,
                    };
                }
                Ok(Ok(Attempt::Conflict)) => {
                    warn!(lease = %self.name, "renewing the lease: conflict; retrying");
                }
                Ok(Err(e)) => warn!(lease = %self.name, "renewing the lease: {e}"),
                Err(_) => warn!(lease = %self.name, "renewing the lease: no answer"),
            }
            if renewed.elapsed() >= deadline {
                return Lost::RenewDeadline {
                    lease: self.name.clone(),
                    deadline,
                };
            }
        }
    }

    /// Gives the lease up if this candidate holds it, so a standby takes over on its next try
    /// instead of after the lease duration; whether it was released.
    pub async fn release(&self) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(false);
        };
        let Some(spec) = lease
            .spec
            .as_ref()
            .and_then(|s| released(s, &self.identity, (self.clock)()))
        else {
            return Ok(false);
        };
        lease.spec = Some(spec);
        lease.metadata.managed_fields = None;
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}
