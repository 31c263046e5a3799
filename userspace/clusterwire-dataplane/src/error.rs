//! Errors of the datapath loader and its typed map handles.
use std::path::PathBuf;

use ipnet::Ipv4Net;

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
    /// A map is already pinned at `path` with a different layout (left by another version).
    #[error(
        "the map pinned at {path} has key/value sizes {found:?}, expected {expected:?}: remove the stale pin"
    )]
    StalePin {
        /// The pinned map.
        path: PathBuf,
        /// Its key and value sizes.
        found: (u32, u32),
        /// What this object needs.
        expected: (u32, u32),
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
