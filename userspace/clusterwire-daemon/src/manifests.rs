//! Polling the `--manifests` source the way both daemons do.
use clusterwire_fabric::manifests::Source;
use tracing::warn;

/// Polls `source`; logs every skipped object (file, object, field) of a new load and a read
/// error (the last good state stays applied). Returns whether anything changed.
pub fn poll(source: &mut Source) -> bool {
    match source.poll() {
        Ok(Some(loaded)) => {
            for problem in &loaded.problems {
                warn!("skipped: {problem}");
            }
            true
        }
        Ok(None) => false,
        Err(e) => {
            warn!("reading manifests: {e}; keeping the applied state");
            false
        }
    }
}
