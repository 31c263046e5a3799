//! Watching the API server into a snapshot.

use std::collections::{BTreeMap, BTreeSet};

use clusterwire_api::validation::ManifestValidator;
use futures::{
    FutureExt as _, StreamExt as _,
    stream::{BoxStream, SelectAll},
};
use kube::{
    Client,
    api::DynamicObject,
    runtime::{
        WatchStreamExt as _,
        watcher::{self, Event},
    },
};
use serde_json::Value;

use super::{Problem, Scope};
use crate::{
    manifests::{ManifestError, to_object},
    snapshot::{Key, Kind, Object, Snapshot, key_of},
};

/// Events drained by one [`Source::poll`] at most, so a flood cannot stall the daemon's loop.
const MAX_EVENTS_PER_POLL: usize = 10_000;

type Events = SelectAll<BoxStream<'static, (Kind, Result<Event<DynamicObject>, watcher::Error>)>>;

/// What one [`Source::poll`] saw.
#[derive(Debug, Default)]
pub struct Update {
    /// The snapshot changed (always true on the first poll after every kind was listed). Never
    /// true before that: a partial snapshot would look like deleted objects.
    pub changed: bool,
    /// Objects skipped because they are invalid (their last good version is kept).
    pub problems: Vec<Problem>,
    /// Watch errors (the watcher retries with backoff; the snapshot is kept meanwhile).
    pub errors: Vec<watcher::Error>,
}

/// The resources of a [`Scope`], kept up to date by one watcher per kind.
///
/// Nothing runs in the background: [`Source::poll`] (e.g. on every tick of the daemon's timer)
/// takes the events that arrived since the last call without waiting. The HTTP connections are
/// driven by the tokio runtime the client lives on.
pub struct Source {
    events: Events,
    validator: ManifestValidator,
    kinds: BTreeSet<Kind>,
    /// Kinds listed completely at least once.
    listed: BTreeSet<Kind>,
    /// Objects of a re-list in progress, swapped in when it completes.
    relisting: BTreeMap<Kind, BTreeMap<Key, Object>>,
    /// The good objects.
    objects: BTreeMap<(Kind, Key), Object>,
    snapshot: Snapshot,
    reported: bool,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("kinds", &self.kinds)
            .field("listed", &self.listed)
            .field("objects", &self.objects.len())
            .finish_non_exhaustive()
    }
}

impl Source {
    /// Starts watching `scope` through `client` (requests go out on the first poll), validating
    /// with `validator` (e.g. `ManifestValidator::for_api()`).
    pub fn new(client: &Client, scope: &Scope, validator: ManifestValidator) -> Self {
        let mut events = SelectAll::new();
        for &kind in &scope.kinds {
            let api = scope.api(client.clone(), kind);
            let stream = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .map(move |event| (kind, event))
                .boxed();
            events.push(stream);
        }
        Self {
            events,
            validator,
            kinds: scope.kinds.iter().copied().collect(),
            listed: BTreeSet::new(),
            relisting: BTreeMap::new(),
            objects: BTreeMap::new(),
            snapshot: Snapshot::default(),
            reported: false,
        }
    }

    /// Whether every kind has been listed once (before that the snapshot is partial).
    pub fn synced(&self) -> bool {
        self.listed == self.kinds
    }

    /// The current snapshot (as of the last poll; empty until every kind was listed).
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Takes every event that arrived, without waiting; see [`Update`].
    pub fn poll(&mut self) -> Update {
        let mut update = Update::default();
        for _ in 0..MAX_EVENTS_PER_POLL {
            let Some(Some((kind, event))) = self.events.next().now_or_never() else {
                break;
            };
            match event {
                Ok(event) => self.handle(kind, event, &mut update.problems),
                Err(e) => update.errors.push(e),
            }
        }
        if self.synced() {
            let snapshot = self.build();
            if !self.reported || snapshot != self.snapshot {
                self.snapshot = snapshot;
                self.reported = true;
                update.changed = true;
            }
        }
        update
    }

    fn handle(&mut self, kind: Kind, event: Event<DynamicObject>, problems: &mut Vec<Problem>) {
        match event {
            Event::Init => {
                self.relisting.insert(kind, BTreeMap::new());
            }
            Event::InitApply(object) => {
                let key = key_of(kind, &object.metadata);
                if let Some(good) = self.check(kind, key.clone(), object, problems)
                    && let Some(buffer) = self.relisting.get_mut(&kind)
                {
                    buffer.insert(key, good);
                }
            }
            Event::InitDone => {
                let listed = self.relisting.remove(&kind).unwrap_or_default();
                self.objects.retain(|(k, _), _| *k != kind);
                self.objects
                    .extend(listed.into_iter().map(|(key, o)| ((kind, key), o)));
                self.listed.insert(kind);
            }
            Event::Apply(object) => {
                let key = key_of(kind, &object.metadata);
                if let Some(good) = self.check(kind, key.clone(), object, problems) {
                    self.objects.insert((kind, key), good);
                }
            }
            Event::Delete(object) => {
                self.objects.remove(&(kind, key_of(kind, &object.metadata)));
            }
        }
    }

    /// The object typed, or (reported as a problem) its last good version, if any.
    fn check(
        &self,
        kind: Kind,
        key: Key,
        object: DynamicObject,
        problems: &mut Vec<Problem>,
    ) -> Option<Object> {
        let typed = document(kind, object).and_then(|d| to_object(kind, d, &self.validator));
        match typed {
            Ok(object) => Some(object),
            Err(error) => {
                let kept = self.objects.get(&(kind, key.clone())).cloned();
                problems.push(Problem { kind, key, error });
                kept
            }
        }
    }

    fn build(&self) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for object in self.objects.values() {
            snapshot.insert(object.clone());
        }
        snapshot
    }
}

/// The object as the manifest source would read it: `apiVersion` and `kind` set (list items
/// of core kinds come without them), and the fields the server changes on every write
/// (`resourceVersion`, `managedFields`) dropped, so a re-list of unchanged objects is no
/// change.
fn document(kind: Kind, object: DynamicObject) -> Result<Value, ManifestError> {
    let mut value =
        serde_json::to_value(object).map_err(|source| ManifestError::Type { kind, source })?;
    if let Value::Object(fields) = &mut value {
        fields.insert("apiVersion".to_owned(), kind.api_version().into());
        fields.insert("kind".to_owned(), kind.name().into());
        if let Some(Value::Object(meta)) = fields.get_mut("metadata") {
            meta.remove("resourceVersion");
            meta.remove("managedFields");
        }
    }
    Ok(value)
}
