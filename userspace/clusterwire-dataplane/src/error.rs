//! Errors of the datapath loader and its typed map handles.
use std::path::PathBuf;

use ipnet::Ipv4Net;

use crate::layout::Role;

/// Why the datapath could not be loaded or pinned.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The configuration is invalid.
    #[error("invalid datapath configuration")]
    Config(#[from] ConfigError),
    /// The instance name cannot be used as a directory name.
    #[error("invalid instance name {0:?}: use 1-64 characters from [A-Za-z0-9_.-], not . or ..")]
    Instance(String),
    /// The pin directory's parent is not on a BPF filesystem.
    #[error("{path} is not on a BPF filesystem (mount it: mount -t bpf bpf /sys/fs/bpf)")]
    NotBpffs {
        /// The directory checked.
        path: PathBuf,
    },
    /// Creating the pin directory failed.
    #[error("creating the pin directory {path} failed")]
    PinDir {
        /// The directory.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A map is already pinned at `path` with another layout (left by another version or
    /// another role).
    #[error(
        "the map pinned at {path} is incompatible with this build: pinned {found}, this build needs {expected}; remove the instance (cwctl dataplane destroy) or run the matching version"
    )]
    IncompatiblePin {
        /// The pinned map.
        path: PathBuf,
        /// Its layout.
        found: crate::layout::MapLayout,
        /// What this build creates.
        expected: crate::layout::MapLayout,
    },
    /// Inspecting an existing pin failed.
    #[error("inspecting the map pinned at {path} failed")]
    PinInfo {
        /// The pinned map.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: aya::maps::MapError,
    },
    /// The object failed to load (BTF, map creation, pinning or relocation).
    #[error("loading the eBPF object failed")]
    Object(#[from] aya::EbpfError),
    /// A program is missing, has the wrong type, or the verifier rejected it.
    #[error("loading program {name} failed")]
    Program {
        /// The program.
        name: String,
        /// Why it failed.
        #[source]
        source: aya::programs::ProgramError,
    },
}

/// An invalid [`DatapathConfig`](clusterwire_common::config::DatapathConfig).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The tunnel MTU is neither 0 (no clamping) nor in `576..=65535`.
    #[error("tunnel MTU {0} must be 0 (no MSS clamping) or between 576 and 65535")]
    TunnelMtu(u32),
    /// The peer id does not fit the per-peer counter array.
    #[error("peer id {0} must be below {max}", max = clusterwire_common::stats::PEER_STATS_MAX)]
    PeerId(u32),
    /// Unknown flag bits.
    #[error("unknown flag bits {0:#x}")]
    Flags(u32),
    /// Padding must be zero.
    #[error("padding fields must be zero")]
    Padding,
}

/// Why a map handle could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The object has no such map.
    #[error("the eBPF object has no map {0}")]
    Missing(&'static str),
    /// Opening, reading or writing the map failed.
    #[error("map {name}: operation failed")]
    Map {
        /// The map.
        name: &'static str,
        /// Why it failed.
        #[source]
        source: aya::maps::MapError,
    },
    /// A remap between prefixes of different sizes.
    #[error("cannot remap {from} to {to}: the prefixes differ in size")]
    SizeMismatch {
        /// The matched prefix.
        from: Ipv4Net,
        /// The target prefix.
        to: Ipv4Net,
    },
    /// A peer id past the per-peer counter array.
    #[error("peer id {0} must be below {max}", max = clusterwire_common::stats::PEER_STATS_MAX)]
    PeerId(u32),
}

/// Why an instance could not be opened, adopted, attached or removed.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// Loading the object or pinning its maps failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Another process holds the instance (a daemon and `cwctl` never write at once).
    #[error("instance {path} is locked by another process (pid {holder}); stop it first")]
    Locked {
        /// The instance directory.
        path: PathBuf,
        /// The holder's pid, when known (0 if not).
        holder: u32,
    },
    /// Taking or reading the instance lock failed.
    #[error("locking instance {path} failed")]
    Lock {
        /// The instance directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The pin directory holds another layout version.
    #[error(
        "the instance pinned at {path} has layout {found}, this build uses layout {expected}: remove it (cwctl dataplane destroy {instance}) or run the matching version"
    )]
    IncompatibleLayout {
        /// The pin directory.
        path: PathBuf,
        /// The instance name.
        instance: String,
        /// Layout found (1: wave-1 pins without `CW_META`).
        found: u32,
        /// This build's layout.
        expected: u32,
    },
    /// The pin directory belongs to another role or peering.
    #[error(
        "the instance pinned at {path} is a {found_role} for peer {found_peer}, not a {role} for peer {peer}"
    )]
    IdentityMismatch {
        /// The pin directory.
        path: PathBuf,
        /// Role found.
        found_role: String,
        /// Peer found.
        found_peer: u32,
        /// Role asked for.
        role: Role,
        /// Peer asked for.
        peer: u32,
    },
    /// Reading or writing `CW_META` failed.
    #[error("instance metadata {path}")]
    Meta {
        /// The pinned map.
        path: PathBuf,
        /// Why.
        #[source]
        source: aya::maps::MapError,
    },
    /// A device name that does not exist (in this network namespace).
    #[error("no network device {0:?} in this network namespace")]
    NoDevice(String),
    /// Asking the kernel about a device failed.
    #[error("reading network device information failed")]
    Devices(#[source] std::io::Error),
    /// A program attached to a device of the wrong kind.
    #[error(
        "{program} cannot run on {device}: it is {found} but the program expects {expected} frames"
    )]
    DeviceKind {
        /// The program.
        program: &'static str,
        /// The device.
        device: String,
        /// The device's kind.
        found: crate::attach::DeviceKind,
        /// What the program needs.
        expected: crate::attach::DeviceKind,
    },
    /// The hook is not part of this instance's role.
    #[error("a {role} instance has no {hook} hook")]
    HookNotInRole {
        /// The role.
        role: Role,
        /// The hook.
        hook: crate::attach::Hook,
    },
    /// A program is missing from the loaded object.
    #[error("the loaded datapath has no program {0}")]
    MissingProgram(&'static str),
    /// A kernel call on a program, link or filter failed.
    #[error("{action} {program} on {device} failed")]
    Attach {
        /// What was being done.
        action: &'static str,
        /// The program.
        program: &'static str,
        /// The device.
        device: String,
        /// Why.
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    /// Pinning a program or link failed.
    #[error("pinning {path} failed")]
    Pin {
        /// The pin path.
        path: PathBuf,
        /// Why.
        #[source]
        source: aya::pin::PinError,
    },
    /// A pinned link could not be opened.
    #[error("opening the pinned link {path} failed")]
    PinnedLink {
        /// The pin path.
        path: PathBuf,
        /// Why.
        #[source]
        source: aya::programs::links::LinkError,
    },
    /// Adding or removing the clsact qdisc failed.
    #[error("{action} the clsact qdisc of {device} failed")]
    Qdisc {
        /// What was being done.
        action: &'static str,
        /// The device.
        device: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Removing a pin or the instance directory failed.
    #[error("removing {path} failed")]
    Remove {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A table operation failed.
    #[error(transparent)]
    Map(#[from] MapError),
    /// A Geneve table operation failed.
    #[error(transparent)]
    Geneve(#[from] crate::geneve::GeneveError),
}
