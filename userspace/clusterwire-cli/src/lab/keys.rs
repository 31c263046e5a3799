//! WireGuard keys of the lab's gateways: one private key per gateway, written owner-only; the
//! public halves go into the peer cluster's `PublicKey` objects.

use std::{
    collections::BTreeMap,
    fs,
    io::Write as _,
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use wireguard_control::Key;

use super::plan::Plan;

/// Private keys by `(cluster, peer)`: the key of the cluster's gateway toward the peer.
#[derive(Clone)]
pub struct Keys(BTreeMap<(String, String), Key>);

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print private keys.
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Keys {
    /// Fresh keys for every gateway of the plan.
    pub fn generate(plan: &Plan) -> Self {
        let mut keys = BTreeMap::new();
        for cluster in &plan.clusters {
            for gateway in &cluster.gateways {
                keys.insert(
                    (cluster.name.clone(), gateway.peer.clone()),
                    Key::generate_private(),
                );
            }
        }
        Self(keys)
    }

    /// The public key (base64) of `cluster`'s gateway toward `peer`.
    pub fn public(&self, cluster: &str, peer: &str) -> Option<String> {
        self.0
            .get(&(cluster.to_owned(), peer.to_owned()))
            .map(|k| k.get_public().to_base64())
    }

    /// Writes every private key, base64 and a newline (the `wg genkey` format), to
    /// `<dir>/<cluster>/keys/gw-<peer>.key` with mode 0600 (the `keys` directory 0700); returns
    /// the paths by
    /// `(cluster, peer)`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<BTreeMap<(String, String), PathBuf>> {
        let mut paths = BTreeMap::new();
        for ((cluster, peer), key) in &self.0 {
            let path = key_path(dir, cluster, peer);
            if let Some(parent) = path.parent() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("creating key file {}", path.display()))?;
            writeln!(file, "{}", key.to_base64())
                .with_context(|| format!("writing {}", path.display()))?;
            paths.insert((cluster.clone(), peer.clone()), path);
        }
        Ok(paths)
    }
}

/// Where the private key of `cluster`'s gateway toward `peer` lives under the clusters dir.
pub fn key_path(clusters_dir: &Path, cluster: &str, peer: &str) -> PathBuf {
    clusters_dir
        .join(cluster)
        .join("keys")
        .join(format!("gw-{peer}.key"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn keys_are_written_owner_only_and_publics_match() {
        let plan = Plan::new(2).expect("plan");
        let keys = Keys::generate(&plan);
        let dir = std::env::temp_dir().join(format!("cwlab-keys-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let paths = keys.write(&dir).expect("write keys");
        assert_eq!(paths.len(), 2);
        for ((cluster, peer), path) in &paths {
            let mode = fs::metadata(path).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
            let dir_mode = fs::metadata(path.parent().expect("keys dir"))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(dir_mode & 0o777, 0o700);
            let text = fs::read_to_string(path).expect("read");
            let key = Key::from_base64(text.trim()).expect("base64 key");
            assert_eq!(
                Some(key.get_public().to_base64()),
                keys.public(cluster, peer)
            );
        }
        assert!(!format!("{keys:?}").contains(&keys.0.values().next().expect("a key").to_base64()));
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
