//! Polling a manifests directory for changes, re-reading only the files that changed.

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    mem,
    path::{Path, PathBuf},
    time::SystemTime,
};

use clusterwire_api::validation::ManifestValidator;

use super::{
    Filter, Ignored, Loaded, ManifestError, Problem, SourceError,
    files::{self, Candidate, Parsed, Stamp, Version},
    list_files,
};
use crate::snapshot::{Key, Kind, Object};

/// An object's identity.
type Id = (Kind, Key);

/// A manifests directory, re-read when its files change.
///
/// Call [`Source::poll`] periodically (e.g. from a `tokio::time::interval` tick). It lists the
/// files and compares each one's stamp (device, inode, size, modification and change times in
/// nanoseconds) with the version it read last; only a file whose stamp changed (or was too
/// recent to vouch for its contents) is read again, and only one whose contents changed is
/// parsed again. The snapshot is then updated in place with the objects of the files added,
/// changed and removed, and the result is what loading every file again would give
/// ([`load_files`](super::load_files)), with the last good version of objects that became bad
/// ([`keep_last_good`](super::keep_last_good)): an object defined in two files comes from the
/// first one in path order (the other definition is reported as a duplicate, and takes over if
/// the first goes away), and the objects of a file that became invalid or unreadable keep their
/// previous version.
#[derive(Debug)]
pub struct Source {
    dir: PathBuf,
    validator: ManifestValidator,
    /// The documents kept; the others are skipped unparsed.
    filter: Filter,
    state: State,
}

/// What a [`Source`] knows of its directory.
#[derive(Debug, Default)]
struct State {
    /// Every manifest file, as last read.
    files: BTreeMap<PathBuf, FileState>,
    /// Good definitions that lose to a definition in an earlier file, by object then file.
    spares: BTreeMap<Id, BTreeMap<PathBuf, Object>>,
    /// Objects with an invalid definition, with how many files define them so.
    invalid: BTreeMap<Id, usize>,
    /// Objects held at their last good version.
    kept: BTreeSet<Id>,
    /// Whether a poll has listed the directory.
    polled: bool,
    current: Loaded,
}

/// What the source remembers of one file.
#[derive(Debug)]
struct FileState {
    version: Version,
    /// Unreadable or not YAML: the objects that came from it keep their last good version.
    failed: bool,
    /// Its good objects, in document order (one defined twice in the file, twice).
    ids: Vec<Id>,
    /// Whether an object is defined twice in the file.
    repeats: bool,
    /// Its objects with an invalid definition.
    invalid: Vec<Id>,
    /// Its problems (without duplicates) and documents of other kinds, while a poll updates
    /// the state; in [`Loaded::problems`] and [`Loaded::ignored`] between polls.
    problems: Vec<Problem>,
    ignored: Vec<Ignored>,
    /// How many of [`Loaded::problems`] are its own, then its duplicates, and how many of
    /// [`Loaded::ignored`] are its.
    counts: (usize, usize, usize),
}

/// The work of one poll that saw a change.
#[derive(Debug, Default)]
struct Pending {
    /// Whether the state is being updated (a file was added, removed or changed).
    started: bool,
    /// Objects to settle once every file is read: those the files replaced or removed defined,
    /// defined as invalid, or had as the origin of a kept version.
    ids: BTreeSet<Id>,
    /// Objects whose snapshot version comes from a file replaced or removed, not defined again
    /// yet.
    stale: HashSet<Id>,
}

impl Source {
    /// A source reading `dir`, validating with `validator` (e.g.
    /// `ManifestValidator::for_api()`). Nothing is read before the first poll.
    pub fn new(dir: impl Into<PathBuf>, validator: ManifestValidator) -> Self {
        Self {
            dir: dir.into(),
            validator,
            filter: Filter::default(),
            state: State::default(),
        }
    }

    /// Keeps only the objects `filter` keeps (those the daemon reads, as its Kubernetes
    /// source watches only those): the other documents are skipped before they are validated
    /// or typed, so they cost neither time nor memory, and are not reported.
    #[must_use]
    pub fn only(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state of the last poll that saw a change (empty before the first poll).
    pub fn current(&self) -> &Loaded {
        &self.state.current
    }

    /// Reads the directory; returns the new state if any file was added, removed, or changed
    /// its contents since the last poll (always on the first poll).
    pub fn poll(&mut self) -> Result<Option<&Loaded>, SourceError> {
        let at = SystemTime::now();
        let listed = list_files(&self.dir)?;
        let state = &mut self.state;
        let removed: Vec<PathBuf> = state
            .files
            .keys()
            .filter(|path| listed.binary_search(path).is_err())
            .cloned()
            .collect();
        let mut candidates = Vec::new();
        for path in listed {
            let stamp = Stamp::of(&path);
            match state.files.get(&path) {
                Some(file) if !file.version.stale(stamp) => {}
                known => candidates.push(Candidate {
                    path,
                    stamp,
                    known: known.map(|file| file.version),
                }),
            }
        }
        let mut pending = Pending::default();
        if !state.polled || !removed.is_empty() {
            state.begin(&mut pending);
        }
        state.polled = true;
        for path in &removed {
            state.forget(path, &mut pending);
        }
        files::read(candidates, at, &self.validator, &self.filter, |read| {
            state.take(read, &mut pending);
        });
        if !pending.started {
            return Ok(None);
        }
        state.finish(pending);
        Ok(Some(&state.current))
    }
}

impl State {
    /// Starts updating: takes each file's problems and ignored documents back out of
    /// [`State::current`].
    fn begin(&mut self, pending: &mut Pending) {
        if mem::replace(&mut pending.started, true) {
            return;
        }
        let mut problems = mem::take(&mut self.current.problems).into_iter();
        let mut ignored = mem::take(&mut self.current.ignored).into_iter();
        for file in self.files.values_mut() {
            let (own, duplicates, other_kinds) = file.counts;
            file.problems = problems.by_ref().take(own).collect();
            // Duplicates are worked out again by `finish`.
            problems.by_ref().take(duplicates).for_each(drop);
            file.ignored = ignored.by_ref().take(other_kinds).collect();
        }
    }

    /// Takes one file read again: a new version replaces the previous one.
    fn take(&mut self, read: files::Read, pending: &mut Pending) {
        let files::Read {
            path,
            version,
            parsed,
        } = read;
        match parsed {
            Some(parsed) => {
                self.begin(pending);
                self.forget(&path, pending);
                self.learn(path, version, parsed, pending);
            }
            // Same contents: only the stamp moved (touched, or rewritten identically).
            None => {
                if let Some(file) = self.files.get_mut(&path) {
                    file.version = version;
                }
            }
        }
    }

    /// Drops what the previous version of the file at `path` defined.
    fn forget(&mut self, path: &Path, pending: &mut Pending) {
        let Some(old) = self.files.remove(path) else {
            return;
        };
        for id in old.ids {
            if let Some(spares) = self.spares.get_mut(&id) {
                spares.remove(path);
                if spares.is_empty() {
                    self.spares.remove(&id);
                }
            }
            if !self.kept.contains(&id) && self.current.origins.get(&id).is_some_and(|o| o == path)
            {
                pending.stale.insert(id.clone());
            }
            pending.ids.insert(id);
        }
        for id in old.invalid {
            if let Some(count) = self.invalid.get_mut(&id) {
                *count -= 1;
                if *count == 0 {
                    self.invalid.remove(&id);
                }
            }
            pending.ids.insert(id);
        }
        pending.ids.extend(
            self.kept
                .iter()
                .filter(|id| self.current.origins.get(*id).is_some_and(|o| o == path))
                .cloned(),
        );
    }

    /// Takes in a new version of the file at `path`.
    fn learn(&mut self, path: PathBuf, version: Version, parsed: Parsed, pending: &mut Pending) {
        let Parsed {
            objects,
            problems,
            ignored,
        } = parsed;
        let mut ids = Vec::with_capacity(objects.len());
        let mut seen = HashSet::with_capacity(objects.len());
        let mut repeats = false;
        for object in objects {
            let id = (object.kind(), object.key());
            if seen.insert(id.clone()) {
                self.place(id.clone(), &path, object, pending);
            } else {
                // A second definition in the same file never counts.
                repeats = true;
            }
            ids.push(id);
        }
        let mut invalid = Vec::new();
        let mut failed = false;
        for problem in &problems {
            match (&problem.object, &problem.error) {
                (Some(id), _) => {
                    *self.invalid.entry(id.clone()).or_default() += 1;
                    pending.ids.insert(id.clone());
                    invalid.push(id.clone());
                }
                // A document without apiVersion/kind names no object.
                (None, ManifestError::NoTypeMeta) => {}
                (None, _) => failed = true,
            }
        }
        let file = FileState {
            version,
            failed,
            ids,
            repeats,
            invalid,
            problems,
            ignored,
            counts: (0, 0, 0),
        };
        self.files.insert(path, file);
    }

    /// The file whose definition of `id` is in the snapshot and current, if any.
    fn holder(&self, id: &Id, pending: &Pending) -> Option<&PathBuf> {
        self.current
            .origins
            .get(id)
            .filter(|_| !self.kept.contains(id) && !pending.stale.contains(id))
    }

    /// A good definition of `id` in the file at `path`: in the snapshot if that file comes
    /// first among those defining it, else a spare.
    fn place(&mut self, id: Id, path: &Path, object: Object, pending: &mut Pending) {
        let holder = self.holder(&id, pending).cloned();
        let earlier = match &holder {
            Some(holder) => (holder.as_path() < path).then(|| holder.clone()),
            // Nothing current in the snapshot: a spare may come first.
            None => self
                .spares
                .get(&id)
                .and_then(|s| s.keys().next())
                .filter(|spare| spare.as_path() < path)
                .cloned(),
        };
        let Some(earlier) = earlier else {
            self.put(id, path.to_path_buf(), object, holder, pending);
            return;
        };
        if holder.is_none()
            && let Some(spare) = self.spares.get_mut(&id).and_then(|s| s.remove(&earlier))
        {
            self.put(id.clone(), earlier, spare, None, pending);
        }
        self.spares
            .entry(id)
            .or_default()
            .insert(path.to_path_buf(), object);
    }

    /// Puts the definition of `id` from `path` in the snapshot; the one it replaces becomes
    /// a spare if it is the current definition of `holder`, else it is dropped.
    fn put(
        &mut self,
        id: Id,
        path: PathBuf,
        object: Object,
        holder: Option<PathBuf>,
        pending: &mut Pending,
    ) {
        let replaced = self.current.snapshot.insert(object);
        if let (Some(holder), Some(replaced)) = (holder, replaced) {
            self.spares
                .entry(id.clone())
                .or_default()
                .insert(holder, replaced);
        }
        if self.spares.get(&id).is_some_and(BTreeMap::is_empty) {
            self.spares.remove(&id);
        }
        self.kept.remove(&id);
        pending.stale.remove(&id);
        self.current.origins.insert(id, path);
    }

    /// Settles every pending object with no current definition in the snapshot: the first
    /// spare, else its last good version if it is bad now (an invalid definition, or its file
    /// unreadable), else nothing. Then puts the problems (with duplicates), ignored documents
    /// and kept objects in [`State::current`].
    fn finish(&mut self, mut pending: Pending) {
        for id in mem::take(&mut pending.ids) {
            if self.holder(&id, &pending).is_some() {
                continue;
            }
            let spare = self.spares.get_mut(&id).and_then(|spares| {
                let first = spares.keys().next()?.clone();
                spares.remove(&first).map(|object| (first, object))
            });
            if let Some((path, object)) = spare {
                self.put(id, path, object, None, &mut pending);
                continue;
            }
            let origin = self.current.origins.get(&id);
            let bad = self.invalid.contains_key(&id)
                || origin.is_some_and(|o| self.files.get(o).is_some_and(|f| f.failed));
            if origin.is_some() && bad {
                self.kept.insert(id);
            } else {
                self.current.snapshot.remove(id.0, &id.1);
                self.current.origins.remove(&id);
                self.kept.remove(&id);
            }
        }
        self.park();
    }

    /// Puts each file's problems (and its duplicates) and ignored documents, in file order, and
    /// the kept objects into [`State::current`].
    fn park(&mut self) {
        let Self {
            files,
            spares,
            kept,
            current,
            ..
        } = self;
        // Files that may hold a duplicate: a spare, or an object twice.
        let mut doubled: HashSet<PathBuf> =
            spares.values().flat_map(BTreeMap::keys).cloned().collect();
        doubled.extend(
            files
                .iter()
                .filter(|(_, state)| state.repeats)
                .map(|(path, _)| path.clone()),
        );
        let mut problems = Vec::new();
        let mut ignored = Vec::new();
        for (path, state) in files.iter_mut() {
            let own = state.problems.len();
            problems.append(&mut state.problems);
            let before = problems.len();
            if doubled.contains(path) {
                let mut seen = HashSet::new();
                for id in &state.ids {
                    let first = current.origins.get(id);
                    if seen.insert(id) && first == Some(path) {
                        continue;
                    }
                    problems.push(Problem {
                        file: path.clone(),
                        object: Some(id.clone()),
                        error: ManifestError::Duplicate {
                            first: first.cloned().unwrap_or_default(),
                        },
                    });
                }
            }
            let other_kinds = state.ignored.len();
            ignored.append(&mut state.ignored);
            state.counts = (own, problems.len() - before, other_kinds);
        }
        current.problems = problems;
        current.ignored = ignored;
        current.kept = kept.iter().cloned().collect();
    }
}
