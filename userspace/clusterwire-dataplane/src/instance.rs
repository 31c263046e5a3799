//! An instance: the datapath of one role on one host (a node, or one peering's gateway), pinned
//! under `/sys/fs/bpf/clusterwire/<name>/` so that it outlives the process that made it.
//!
//! [`Instance::open`] creates the instance or adopts the one a previous process left:
//! it takes the instance lock (one writer per instance: a daemon and `cwctl` never race),
//! checks the layout version and identity in `CW_META` and the full layout of every pinned map,
//! loads the programs against the pinned maps, and pins them. When the earlier process loaded
//! the very same programs (same object, configuration and role, see [`crate::programs`]), their
//! pins are used instead and no program is loaded. [`Instance::attach`] then creates the hook's
//! links or filters, keeps the ones that already run this instance's programs, or swaps the
//! program of the others atomically, so a restart loses no packet. [`Instance::destroy`] removes
//! everything the instance made.
use std::{
    fs::File,
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use aya::{
    maps::{Array, MapData},
    programs::tc::TcHandle,
};
use clusterwire_common::{
    config::{DatapathConfig, FLAG_L3_DEVICE},
    geneve::GENEVE_DEFAULT_PORT,
    meta::{InstanceMeta, LAYOUT_VERSION, META_MAP},
};
use nix::fcntl::{Flock, FlockArg};

use crate::{
    Datapath, LoadOptions, PIN_ROOT,
    attach::{self, AttachMode, AttachOutcome, Attachment, DeviceKind, Hook, Target},
    datapath::Programs,
    error::InstanceError,
    identity::ProgramIdentity,
    layout::Role,
};

/// What an instance is for; everything [`Instance::open`] needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceSpec {
    /// Name of the instance: its pin directory is `<pin_root>/<name>`.
    pub name: String,
    /// Gateway or node.
    pub role: Role,
    /// The peering a gateway serves (key of the remap tables and per-peer counters); 0 on nodes.
    /// This is the one place the peer identity is set.
    pub peer_id: u32,
    /// Tunnel MTU: TCP MSS is clamped to `tunnel_mtu - 40` (0: no clamping).
    pub tunnel_mtu: u32,
    /// Underlay source address of native Geneve encapsulation.
    pub local_ipv4: Option<Ipv4Addr>,
    /// Geneve UDP port (6091).
    pub geneve_port: u16,
    /// A gateway's tunnel device: its kind (Ethernet, or L3 for WireGuard/TUN) decides how the
    /// NAT programs parse packets. Must exist when the instance is opened.
    pub tunnel_device: Option<String>,
    /// TCX or netlink.
    pub attach_mode: AttachMode,
    /// Where instance directories go ([`PIN_ROOT`] unless testing).
    pub pin_root: PathBuf,
}

impl InstanceSpec {
    /// A gateway for `peer_id` whose tunnel is `tunnel_device`.
    pub fn gateway(name: impl Into<String>, peer_id: u32, tunnel_device: &str) -> Self {
        Self {
            name: name.into(),
            role: Role::Gateway,
            peer_id,
            tunnel_mtu: 0,
            local_ipv4: None,
            geneve_port: GENEVE_DEFAULT_PORT,
            tunnel_device: Some(tunnel_device.to_owned()),
            attach_mode: AttachMode::Auto,
            pin_root: PathBuf::from(PIN_ROOT),
        }
    }

    /// A node.
    pub fn node(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            role: Role::Node,
            peer_id: 0,
            tunnel_mtu: 0,
            local_ipv4: None,
            geneve_port: GENEVE_DEFAULT_PORT,
            tunnel_device: None,
            attach_mode: AttachMode::Auto,
            pin_root: PathBuf::from(PIN_ROOT),
        }
    }

    /// The instance directory.
    pub fn dir(&self) -> PathBuf {
        self.pin_root.join(&self.name)
    }

    fn load_options(&self) -> LoadOptions {
        LoadOptions {
            instance: self.name.clone(),
            pin: true,
            pin_root: self.pin_root.clone(),
            role: self.role,
        }
    }
}

/// A locked, loaded and pinned instance.
#[derive(Debug)]
pub struct Instance {
    spec: InstanceSpec,
    datapath: Datapath,
    dir: PathBuf,
    mode: AttachMode,
    handle: TcHandle,
    adopted: bool,
    _lock: Flock<File>,
}

impl Instance {
    /// Creates the instance, or adopts the pinned one (see the module docs).
    pub fn open(spec: InstanceSpec) -> Result<Self, InstanceError> {
        let mut flags = 0;
        if spec.role == Role::Gateway
            && let Some(device) = &spec.tunnel_device
        {
            match attach::device(device)?.1 {
                DeviceKind::Ethernet => {}
                DeviceKind::L3 => flags |= FLAG_L3_DEVICE,
                found @ DeviceKind::Other(_) => {
                    return Err(InstanceError::DeviceKind {
                        program: clusterwire_common::nat::NAT_TO_TUNNEL_PROGRAM,
                        device: device.clone(),
                        found,
                        expected: DeviceKind::L3,
                    });
                }
            }
        }
        let config = DatapathConfig {
            tunnel_mtu: spec.tunnel_mtu,
            peer_id: spec.peer_id,
            local_ipv4_be: spec
                .local_ipv4
                .map_or(0, |a| u32::from_ne_bytes(a.octets())),
            geneve_port: spec.geneve_port,
            flags,
            ..DatapathConfig::zeroed()
        };
        crate::config::validate(&config).map_err(crate::LoadError::from)?;
        let options = spec.load_options();
        let dir = crate::datapath::prepare_pin_dir(&options)?;
        let lock = lock(&dir)?;
        let adopted = check_identity(&spec, &dir)?;
        let identity = ProgramIdentity::of(&config, spec.role);
        let pinned = adopted
            .then(|| crate::programs::open(&dir, identity, spec.role))
            .flatten();
        let mut datapath = if let Some(programs) = pinned {
            let programs = Programs::Pinned(programs);
            let datapath = Datapath::load_object(&config, &options, programs)?;
            crate::programs::remove_other(&dir, Some(identity))?;
            datapath
        } else {
            let mut datapath = Datapath::load_object(&config, &options, Programs::Load)?;
            datapath.load_programs()?;
            crate::programs::pin(&mut datapath, &dir, identity)?;
            datapath
        };
        write_meta(&mut datapath, &spec, &dir)?;
        let mode = match spec.attach_mode {
            AttachMode::Auto if crate::features::tcx() => AttachMode::Tcx,
            AttachMode::Auto => AttachMode::Netlink,
            explicit => explicit,
        };
        let handle = attach::netlink_handle(&spec.name);
        Ok(Self {
            spec,
            datapath,
            dir,
            mode,
            handle,
            adopted,
            _lock: lock,
        })
    }

    /// Whether pinned state of an earlier process was found and adopted.
    pub fn adopted(&self) -> bool {
        self.adopted
    }

    /// Whether the programs are the ones an earlier process with the same object, configuration
    /// and role loaded and pinned (this process loaded none; attachments running them are
    /// [`AttachOutcome::Kept`]), rather than loaded by this process.
    pub fn programs_kept(&self) -> bool {
        self.datapath.programs_pinned()
    }

    /// What the instance was opened with.
    pub fn spec(&self) -> &InstanceSpec {
        &self.spec
    }

    /// The pin directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// TCX or netlink (never `Auto`).
    pub fn attach_mode(&self) -> AttachMode {
        self.mode
    }

    /// The loaded datapath (counters, tables).
    pub fn datapath(&self) -> &Datapath {
        &self.datapath
    }

    /// The loaded datapath, mutable (to take the table handles).
    pub fn datapath_mut(&mut self) -> &mut Datapath {
        &mut self.datapath
    }

    /// Attaches the programs of `hook` to `device`, or swaps in this process's programs on the
    /// links or filters an earlier process left there (atomically). Returns what happened for
    /// each program of the hook.
    pub fn attach(
        &mut self,
        hook: Hook,
        device: &str,
    ) -> Result<Vec<AttachOutcome>, InstanceError> {
        if !hook.in_role(self.spec.role) {
            return Err(InstanceError::HookNotInRole {
                role: self.spec.role,
                hook,
            });
        }
        let (_, kind) = attach::device(device)?;
        let expected = match hook {
            Hook::TunnelNat if self.datapath.config().l3_device() => DeviceKind::L3,
            Hook::TunnelNat | Hook::GeneveEncap | Hook::GeneveDecap => DeviceKind::Ethernet,
        };
        if kind != expected {
            return Err(InstanceError::DeviceKind {
                program: hook.programs()[0].0,
                device: device.to_owned(),
                found: kind,
                expected,
            });
        }
        let target = Target {
            dir: &self.dir,
            mode: self.mode,
            handle: self.handle,
            device,
        };
        hook.programs()
            .iter()
            .map(|(program, direction)| {
                attach::attach(&mut self.datapath, program, *direction, &target)
            })
            .collect()
    }

    /// The attachments recorded in the pin directory.
    pub fn attachments(&self) -> Vec<Attachment> {
        attach::attachments(&self.dir)
    }

    /// Detaches the programs of `hook` from `device`.
    pub fn detach(&mut self, hook: Hook, device: &str) -> Result<(), InstanceError> {
        for attachment in self.attachments() {
            let ours = hook
                .programs()
                .iter()
                .any(|(_, direction)| *direction == attachment.direction);
            if attachment.device == device && ours {
                attach::detach(&attachment, self.handle)?;
            }
        }
        attach::release_qdisc(&self.dir, device)?;
        Ok(())
    }

    /// Removes the instance: detaches every attachment, removes a clsact qdisc it added (when
    /// nothing else is left on it), every pin and the directory.
    pub fn destroy(self) -> Result<(), InstanceError> {
        let Self {
            dir, handle, _lock, ..
        } = self;
        remove_all(&dir, handle)
    }

    /// Removes the instance `name` under `pin_root` left by a process that is gone (`cwctl`,
    /// the lab's `down`): takes the lock first, so a running owner is never pulled from under
    /// its feet. A missing instance is fine.
    pub fn destroy_by_name(pin_root: &Path, name: &str) -> Result<(), InstanceError> {
        let dir = pin_root.join(name);
        if !dir.exists() {
            return Ok(());
        }
        let _lock = lock(&dir)?;
        remove_all(&dir, attach::netlink_handle(name))
    }
}

fn remove_all(dir: &Path, handle: TcHandle) -> Result<(), InstanceError> {
    let attachments = attach::attachments(dir);
    for attachment in &attachments {
        attach::detach(attachment, handle)?;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            if let Some(device) = name.to_str().and_then(|n| n.strip_prefix("qdisc-")) {
                attach::release_qdisc(dir, device)?;
            }
        }
    }
    std::fs::remove_dir_all(dir).map_err(|source| InstanceError::Remove {
        path: dir.to_owned(),
        source,
    })
}

/// Takes the exclusive lock of an instance directory, without waiting.
fn lock(dir: &Path) -> Result<Flock<File>, InstanceError> {
    let err = |source| InstanceError::Lock {
        path: dir.to_owned(),
        source,
    };
    let file = File::open(dir).map_err(err)?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        if errno == nix::errno::Errno::EWOULDBLOCK {
            InstanceError::Locked {
                path: dir.to_owned(),
                holder: lock_holder(dir).unwrap_or(0),
            }
        } else {
            err(errno.into())
        }
    })
}

/// The pid holding a `flock` on `dir`, from `/proc/locks`.
fn lock_holder(dir: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt as _;
    let inode = std::fs::metadata(dir).ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // "1: FLOCK ADVISORY WRITE <pid> <maj>:<min>:<inode> 0 EOF"
        let (kind, pid, id) = (fields.get(1)?, fields.get(4)?, fields.get(5)?);
        let ino = id.rsplit(':').next()?.parse::<u64>().ok()?;
        (*kind == "FLOCK" && ino == inode).then(|| pid.parse().ok())?
    })
}

/// Checks `CW_META` of an existing instance directory; returns whether there was one to adopt.
fn check_identity(spec: &InstanceSpec, dir: &Path) -> Result<bool, InstanceError> {
    let path = dir.join(META_MAP);
    let has_pins = std::fs::read_dir(dir).is_ok_and(|mut e| e.next().is_some());
    if !path.exists() {
        if has_pins {
            // Wave 1 pinned maps without CW_META.
            return Err(InstanceError::IncompatibleLayout {
                path: dir.to_owned(),
                instance: spec.name.clone(),
                found: 1,
                expected: LAYOUT_VERSION,
            });
        }
        return Ok(false);
    }
    let meta_err = |source| InstanceError::Meta {
        path: path.clone(),
        source,
    };
    let data = MapData::from_pin(&path).map_err(meta_err)?;
    let array: Array<MapData, InstanceMeta> =
        Array::try_from(aya::maps::Map::Array(data)).map_err(meta_err)?;
    let meta = array.get(&0, 0).map_err(meta_err)?;
    if meta.layout_version == 0 {
        // Created by a process that died before writing it: nothing was attached yet.
        return Ok(false);
    }
    if meta.layout_version != LAYOUT_VERSION {
        return Err(InstanceError::IncompatibleLayout {
            path: dir.to_owned(),
            instance: spec.name.clone(),
            found: meta.layout_version,
            expected: LAYOUT_VERSION,
        });
    }
    if meta.role != spec.role.meta() || meta.peer_id != spec.peer_id {
        return Err(InstanceError::IdentityMismatch {
            path: dir.to_owned(),
            found_role: Role::from_meta(meta.role)
                .map_or_else(|| format!("role {}", meta.role), |r| r.name().to_owned()),
            found_peer: meta.peer_id,
            role: spec.role,
            peer: spec.peer_id,
        });
    }
    Ok(true)
}

fn write_meta(
    datapath: &mut Datapath,
    spec: &InstanceSpec,
    dir: &Path,
) -> Result<(), InstanceError> {
    let path = dir.join(META_MAP);
    let meta_err = |source| InstanceError::Meta {
        path: path.clone(),
        source,
    };
    let map = datapath
        .ebpf_mut()
        .map_mut(META_MAP)
        .ok_or(crate::MapError::Missing(META_MAP))?;
    let mut array: Array<&mut MapData, InstanceMeta> = Array::try_from(map).map_err(meta_err)?;
    let meta = InstanceMeta {
        layout_version: LAYOUT_VERSION,
        role: spec.role.meta(),
        peer_id: spec.peer_id,
        _pad: 0,
    };
    array.set(0, meta, 0).map_err(meta_err)
}
