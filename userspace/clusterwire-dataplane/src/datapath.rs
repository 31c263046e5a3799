//! The datapath loader: loads the embedded object with its load-time configuration, loads every
//! program (so verifier errors surface at once), and pins the maps under
//! `/sys/fs/bpf/clusterwire/<instance>/<MAP_NAME>`, reusing maps already pinned there, so the
//! tables survive a restart of the process.
use std::path::{Path, PathBuf};

use aya::{Ebpf, EbpfLoader, maps::MapInfo, programs::SchedClassifier};
use clusterwire_common::{
    config::{CONFIG_GLOBAL, DatapathConfig},
    drop::DROPS_MAP,
    geneve::{
        GENEVE_PEERS_MAP, GENEVE_ROUTES_MAP, GenevePeer, GenevePeerKey, GeneveRoute, GeneveRouteKey,
    },
    nat::{
        IPMAP_ENTRY_MAP, IPMAP_EXIT_MAP, IpMapKey, IpMapValue, NAT_FILTER_MAP, REMAP_DST_MAP,
        REMAP_SRC_MAP, RemapKey, RemapValue,
    },
    stats::{EVENTS_MAP, PEER_STATS_MAP, PeerStats},
};

use crate::error::LoadError;

/// Root of the pin directories on bpffs.
pub const PIN_ROOT: &str = "/sys/fs/bpf/clusterwire";

/// Size of an LPM trie key: the `u32` prefix length followed by the data.
const fn lpm<K>() -> u32 {
    lossless(4 + size_of::<K>())
}

#[expect(clippy::cast_possible_truncation, reason = "map types are a few bytes")]
const fn lossless(n: usize) -> u32 {
    n as u32
}

/// Every pinned map, with the key and value sizes this object needs (checked against a map
/// already pinned at the same path).
pub const PINNED_MAPS: &[(&str, u32, u32)] = &[
    (
        REMAP_DST_MAP,
        lpm::<RemapKey>(),
        lossless(size_of::<RemapValue>()),
    ),
    (
        REMAP_SRC_MAP,
        lpm::<RemapKey>(),
        lossless(size_of::<RemapValue>()),
    ),
    (
        IPMAP_EXIT_MAP,
        lossless(size_of::<IpMapKey>()),
        lossless(size_of::<IpMapValue>()),
    ),
    (
        IPMAP_ENTRY_MAP,
        lossless(size_of::<IpMapKey>()),
        lossless(size_of::<IpMapValue>()),
    ),
    (NAT_FILTER_MAP, 4, 8),
    (DROPS_MAP, 4, 8),
    (EVENTS_MAP, 4, 8),
    (PEER_STATS_MAP, 4, lossless(size_of::<PeerStats>())),
    (
        GENEVE_ROUTES_MAP,
        lpm::<GeneveRouteKey>(),
        lossless(size_of::<GeneveRoute>()),
    ),
    (
        GENEVE_PEERS_MAP,
        lossless(size_of::<GenevePeerKey>()),
        lossless(size_of::<GenevePeer>()),
    ),
];

/// How to load the datapath.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Name of this instance (one per peering on a gateway): its pin directory is
    /// `<pin_root>/<instance>`.
    pub instance: String,
    /// Pin the maps (and reuse pinned ones). Off for `test_run` tests and benchmarks.
    pub pin: bool,
    /// Where instance directories go; [`PIN_ROOT`] unless testing.
    pub pin_root: PathBuf,
}

impl LoadOptions {
    /// Options for `instance`, pinned under [`PIN_ROOT`].
    pub fn pinned(instance: impl Into<String>) -> Self {
        Self {
            instance: instance.into(),
            pin: true,
            pin_root: PathBuf::from(PIN_ROOT),
        }
    }

    /// Options for an unpinned instance (tests, benchmarks).
    pub fn unpinned() -> Self {
        Self {
            instance: "unpinned".into(),
            pin: false,
            pin_root: PathBuf::from(PIN_ROOT),
        }
    }
}

/// The loaded datapath: programs loaded (not attached) and maps created or reused.
#[derive(Debug)]
pub struct Datapath {
    pub(crate) ebpf: Ebpf,
    config: DatapathConfig,
    pin_dir: Option<PathBuf>,
}

impl Datapath {
    /// Validates `config`, loads the object with it as `CW_CONFIG`, pins the maps if asked and
    /// loads every program. Mounting bpffs is the caller's job; an unmounted one is
    /// [`LoadError::NotBpffs`].
    pub fn load(config: &DatapathConfig, options: &LoadOptions) -> Result<Self, LoadError> {
        crate::config::validate(config)?;
        let mut loader = EbpfLoader::new();
        loader.override_global(CONFIG_GLOBAL, config, true);
        let pin_dir = if options.pin {
            let dir = prepare_pin_dir(options)?;
            for (name, key, value) in PINNED_MAPS {
                let path = dir.join(name);
                check_pin(&path, (*key, *value))?;
                loader.map_pin_path(name, path);
            }
            Some(dir)
        } else {
            None
        };
        let mut ebpf = loader.load(crate::object::OBJECT)?;
        for (name, program) in ebpf.programs_mut() {
            let classifier: &mut SchedClassifier =
                program.try_into().map_err(|source| LoadError::Program {
                    name: name.to_owned(),
                    source,
                })?;
            classifier.load().map_err(|source| LoadError::Program {
                name: name.to_owned(),
                source,
            })?;
        }
        Ok(Self {
            ebpf,
            config: *config,
            pin_dir,
        })
    }

    /// The configuration the object was loaded with.
    pub fn config(&self) -> &DatapathConfig {
        &self.config
    }

    /// Where the maps are pinned (`None` when loaded unpinned).
    pub fn pin_dir(&self) -> Option<&Path> {
        self.pin_dir.as_deref()
    }

    /// A loaded classifier by name (e.g. `NAT_TO_TUNNEL_PROGRAM`), to attach or `test_run`.
    pub fn program(
        &mut self,
        name: &'static str,
    ) -> Result<&mut SchedClassifier, crate::error::MapError> {
        self.ebpf
            .program_mut(name)
            .and_then(|p| <&mut SchedClassifier>::try_from(p).ok())
            .ok_or(crate::error::MapError::Missing(name))
    }

    /// The underlying aya object, for handles defined elsewhere (Geneve tables).
    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// The underlying aya object, read-only.
    pub fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }
}

/// Checks the instance name and that the pin root's parent is a bpffs, then creates the
/// instance directory.
fn prepare_pin_dir(options: &LoadOptions) -> Result<PathBuf, LoadError> {
    let instance = &options.instance;
    let valid = !instance.is_empty()
        && instance.len() <= 64
        && instance != "."
        && instance != ".."
        && instance
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !valid {
        return Err(LoadError::Instance(instance.clone()));
    }
    let root = &options.pin_root;
    let mount = root.parent().unwrap_or(root);
    let on_bpffs = nix::sys::statfs::statfs(mount)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC);
    if !on_bpffs {
        return Err(LoadError::NotBpffs {
            path: mount.to_owned(),
        });
    }
    let dir = root.join(instance);
    std::fs::create_dir_all(&dir).map_err(|source| LoadError::PinDir {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

/// Fails when a map is already pinned at `path` with other key/value sizes.
fn check_pin(path: &Path, expected: (u32, u32)) -> Result<(), LoadError> {
    if !path.exists() {
        return Ok(());
    }
    let info = MapInfo::from_pin(path).map_err(|source| LoadError::PinInfo {
        path: path.to_owned(),
        source,
    })?;
    let found = (info.key_size(), info.value_size());
    if found == expected {
        Ok(())
    } else {
        Err(LoadError::StalePin {
            path: path.to_owned(),
            found,
            expected,
        })
    }
}
