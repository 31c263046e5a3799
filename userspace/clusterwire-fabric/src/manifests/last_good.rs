//! Keeping the last good version of an object whose new definition is bad.

use std::collections::BTreeSet;

use super::{Loaded, ManifestError};

/// Completes `next` with the last good state from `previous`:
///
/// - an object whose new definition was rejected keeps its previous version (and file of
///   origin), if it had one;
/// - when a whole file failed (unreadable or not YAML), every object that came from that file
///   keeps its previous version, unless another file now defines it.
///
/// Objects that are simply gone (deleted from the files) are not kept: deletion is a change
/// like any other. What was kept is listed in [`Loaded::kept`]; the problems stay in
/// [`Loaded::problems`] so the daemon keeps reporting them.
pub fn keep_last_good(previous: &Loaded, mut next: Loaded) -> Loaded {
    let mut keep = BTreeSet::new();
    for problem in &next.problems {
        match (&problem.object, &problem.error) {
            (Some(id), _) => {
                keep.insert(id.clone());
            }
            // A document without apiVersion/kind names no object: nothing to keep.
            (None, ManifestError::NoTypeMeta) => {}
            (None, _) => keep.extend(
                previous
                    .origins
                    .iter()
                    .filter(|(_, file)| **file == problem.file)
                    .map(|(id, _)| id.clone()),
            ),
        }
    }
    for (kind, key) in keep {
        if next.snapshot.contains(kind, &key) {
            continue;
        }
        let (Some(object), Some(file)) = (
            previous.snapshot.get(kind, &key),
            previous.origins.get(&(kind, key.clone())),
        ) else {
            continue;
        };
        next.snapshot.insert(object);
        next.origins.insert((kind, key.clone()), file.clone());
        next.kept.push((kind, key));
    }
    next
}
