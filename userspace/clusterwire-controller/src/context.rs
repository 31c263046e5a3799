//! What every reconcile shares: the client, the IPAM, the event sink, the clock and the
//! per-object retry backoff.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use clusterwire_ipam::Ipam;
use k8s_openapi::{api::core::v1::ObjectReference, jiff::Timestamp};
use kube::{
    Client,
    runtime::events::{Event, EventType, Recorder},
};

/// The field manager of every server-side apply the controller makes.
pub const FIELD_MANAGER: &str = "clusterwire-controller";

/// First retry delay after a failed reconcile; doubled per consecutive failure.
pub const BACKOFF_MIN: Duration = Duration::from_secs(5);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_mins(5);

/// An event as the controller publishes it (what the tests see).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// `namespace/name` of the object the event is about.
    pub object: String,
    /// Warning or not.
    pub warning: bool,
    /// Reason (`PascalCase`).
    pub reason: String,
    /// Note naming the cause.
    pub note: String,
}

/// Where events go: the API server (an `events.k8s.io` recorder) or, in tests, memory.
#[derive(Clone)]
pub enum Events {
    /// Published to the API server.
    Recorder(Recorder),
    /// Kept in memory.
    Memory(Arc<Mutex<Vec<Published>>>),
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Recorder(_) => f.write_str("Events::Recorder"),
            Self::Memory(m) => f
                .debug_tuple("Events::Memory")
                .field(&m.lock().map(|v| v.len()).unwrap_or_default())
                .finish(),
        }
    }
}

impl Events {
    /// Publishes an event about `object`; a failure to publish is logged, never fatal.
    pub async fn publish(&self, object: &ObjectReference, warning: bool, reason: &str, note: &str) {
        match self {
            Self::Recorder(recorder) => {
                let event = Event {
                    type_: if warning {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: reason.to_owned(),
                    note: Some(note.to_owned()),
                    action: "Reconcile".to_owned(),
                    secondary: None,
                };
                if let Err(e) = recorder.publish(&event, object).await {
                    tracing::warn!(reason, "cannot publish event: {e}");
                }
            }
            Self::Memory(list) => {
                list.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Published {
                        object: format!(
                            "{}/{}",
                            object.namespace.as_deref().unwrap_or_default(),
                            object.name.as_deref().unwrap_or_default()
                        ),
                        warning,
                        reason: reason.to_owned(),
                        note: note.to_owned(),
                    });
            }
        }
    }
}

/// The shared state of the controllers.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// The remapping IPAM (rebuilt from Configuration statuses before the first reconcile).
    pub ipam: Mutex<Ipam>,
    /// Where events go.
    pub events: Events,
    /// The clock for condition transition times (fixed in tests).
    pub clock: fn() -> Timestamp,
    /// Where new gateway private keys come from (the OS RNG; fixed in tests).
    pub private_key: fn() -> Result<[u8; 32], getrandom::Error>,
    failures: Mutex<HashMap<String, u32>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context around a client and an IPAM.
    pub fn new(client: Client, ipam: Ipam, events: Events, clock: fn() -> Timestamp) -> Self {
        Self {
            client,
            ipam: Mutex::new(ipam),
            events,
            clock,
            private_key: crate::keys::random_private_key,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Locks the IPAM (a poisoned lock is recovered: the IPAM never panics mid-update).
    pub fn ipam(&self) -> std::sync::MutexGuard<'_, Ipam> {
        self.ipam.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one more failure of `key` and returns the delay before the next try:
    /// 5 s, 10 s, 20 s, ... up to 5 min.
    pub fn backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let n = failures.entry(key.to_owned()).or_default();
        let delay = BACKOFF_MIN.saturating_mul(1 << (*n).min(16));
        *n = n.saturating_add(1);
        delay.min(BACKOFF_MAX)
    }

    /// Forgets the failures of `key` (after a successful reconcile).
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}
