//! The datapath loader: loads the embedded object with its load-time configuration, loads every
//! program (so verifier errors surface at once), and pins the maps under
//! `/sys/fs/bpf/clusterwire/<instance>/<MAP_NAME>`, reusing maps already pinned there, so the
//! tables survive a restart of the process. An instance adopting programs pinned by an earlier
//! process with the same identity ([`crate::programs`]) loads the maps only and uses those
//! programs instead of the object's.
use std::path::{Path, PathBuf};

use aya::{Ebpf, EbpfLoader, programs::SchedClassifier};
use clusterwire_common::{
    config::{CONFIG_GLOBAL, DatapathConfig},
    geneve::{GENEVE_DECAP_PROGRAM, GENEVE_ENCAP_PROGRAM},
    nat::{NAT_FROM_TUNNEL_PROGRAM, NAT_TO_TUNNEL_PROGRAM},
};

use crate::{
    error::LoadError,
    layout::{MAPS, Role, check_pin},
};

/// Root of the pin directories on bpffs.
pub const PIN_ROOT: &str = "/sys/fs/bpf/clusterwire";

impl Role {
    /// The programs an instance of this role loads (the others stay unloaded).
    pub fn programs(self) -> &'static [&'static str] {
        match self {
            Self::Gateway => &[
                NAT_TO_TUNNEL_PROGRAM,
                NAT_FROM_TUNNEL_PROGRAM,
                GENEVE_ENCAP_PROGRAM,
                GENEVE_DECAP_PROGRAM,
            ],
            Self::Node => &[GENEVE_ENCAP_PROGRAM, GENEVE_DECAP_PROGRAM],
        }
    }
}

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
    /// Which maps are pinned and how large they are, which programs are loaded.
    pub role: Role,
}

impl LoadOptions {
    /// Options for `instance`, pinned under [`PIN_ROOT`].
    pub fn pinned(instance: impl Into<String>) -> Self {
        Self {
            instance: instance.into(),
            pin: true,
            pin_root: PathBuf::from(PIN_ROOT),
            role: Role::Gateway,
        }
    }

    /// Options for an unpinned instance (tests, benchmarks).
    pub fn unpinned() -> Self {
        Self {
            instance: "unpinned".into(),
            pin: false,
            pin_root: PathBuf::from(PIN_ROOT),
            role: Role::Gateway,
        }
    }
}

/// Where the role's programs of a [`Datapath`] come from.
#[derive(Debug)]
pub(crate) enum Programs {
    /// Loaded from the object (CO-RE relocated against the kernel's BTF).
    Load,
    /// Opened from the pins of an earlier process with the same identity; the object's
    /// programs are never loaded.
    Pinned(Vec<(&'static str, SchedClassifier)>),
}

/// The loaded datapath: programs loaded (not attached) and maps created or reused.
#[derive(Debug)]
pub struct Datapath {
    pub(crate) ebpf: Ebpf,
    config: DatapathConfig,
    pin_dir: Option<PathBuf>,
    role: Role,
    /// Programs opened from pins of an earlier process with the same identity, used instead of
    /// the object's programs of the same name (which then stay unloaded).
    pinned: Vec<(&'static str, SchedClassifier)>,
}

impl Datapath {
    /// Validates `config`, loads the object with it as `CW_CONFIG` and the maps sized for
    /// `options.role`, pins the role's maps if asked (reusing maps already pinned there after
    /// checking their full layout) and loads the role's programs (the probe and every program of
    /// a gateway are loaded for [`Role::Gateway`]). Mounting bpffs is the caller's job; an
    /// unmounted one is [`LoadError::NotBpffs`].
    pub fn load(config: &DatapathConfig, options: &LoadOptions) -> Result<Self, LoadError> {
        let mut datapath = Self::load_object(config, options, Programs::Load)?;
        datapath.load_programs()?;
        Ok(datapath)
    }

    /// [`Datapath::load`] without loading any program: the object's BTF and maps (created, or
    /// reused from the pins after checking their layout). With [`Programs::Pinned`] the role's
    /// programs are the pinned ones given. (aya's loader parses the kernel's BTF, about 40 ms,
    /// even when no program is loaded: most of what an adoption costs now.)
    pub(crate) fn load_object(
        config: &DatapathConfig,
        options: &LoadOptions,
        programs: Programs,
    ) -> Result<Self, LoadError> {
        crate::config::validate(config)?;
        let role = options.role;
        let mut loader = EbpfLoader::new();
        loader.override_global(CONFIG_GLOBAL, config, true);
        for spec in MAPS {
            loader.map_max_entries(spec.name, spec.layout(role).max_entries);
        }
        let pin_dir = if options.pin {
            let dir = prepare_pin_dir(options)?;
            for spec in role.pinned_maps() {
                let path = dir.join(spec.name);
                check_pin(&path, spec.layout(role))?;
                loader.map_pin_path(spec.name, path);
            }
            Some(dir)
        } else {
            None
        };
        let ebpf = loader.load(crate::object::OBJECT)?;
        Ok(Self {
            ebpf,
            config: *config,
            pin_dir,
            role,
            pinned: match programs {
                Programs::Load => Vec::new(),
                Programs::Pinned(pinned) => pinned,
            },
        })
    }

    /// Loads (verifies) the role's programs of the object: the probe and every program of a
    /// gateway for [`Role::Gateway`], the Geneve pair for [`Role::Node`]. Only after
    /// [`Datapath::load_object`] with [`Programs::Load`].
    pub(crate) fn load_programs(&mut self) -> Result<(), LoadError> {
        let programs = self.role.programs();
        for (name, program) in self.ebpf.programs_mut() {
            if self.role == Role::Node && !programs.contains(&name) {
                continue;
            }
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
        Ok(())
    }

    /// Whether the role's programs are ones an earlier process loaded and pinned (this process
    /// ran no verifier), rather than loaded from the object by this process.
    pub fn programs_pinned(&self) -> bool {
        !self.pinned.is_empty()
    }

    /// The role the object was loaded for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration the object was loaded with.
    pub fn config(&self) -> &DatapathConfig {
        &self.config
    }

    /// Where the maps are pinned (`None` when loaded unpinned).
    pub fn pin_dir(&self) -> Option<&Path> {
        self.pin_dir.as_deref()
    }

    /// A loaded classifier by name (e.g. `NAT_TO_TUNNEL_PROGRAM`), to attach or `test_run`: the
    /// pinned program of an earlier process when the instance adopted it, the object's otherwise.
    pub fn program(
        &mut self,
        name: &'static str,
    ) -> Result<&mut SchedClassifier, crate::error::MapError> {
        if let Some(index) = self.pinned.iter().position(|(n, _)| *n == name) {
            return Ok(&mut self.pinned[index].1);
        }
        self.ebpf
            .program_mut(name)
            .and_then(|p| <&mut SchedClassifier>::try_from(p).ok())
            .ok_or(crate::error::MapError::Missing(name))
    }

    /// The underlying aya object, for handles defined elsewhere (Geneve tables). Its programs
    /// are not loaded when [`Datapath::programs_pinned`]: use [`Datapath::program`] for those.
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
pub(crate) fn prepare_pin_dir(options: &LoadOptions) -> Result<PathBuf, LoadError> {
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
