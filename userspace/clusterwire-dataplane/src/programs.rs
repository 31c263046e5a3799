//! Pinned programs, so that a restart with the same identity runs no verifier.
//!
//! After loading the role's programs, an instance pins them at
//! `<instance>/programs-<identity>/<program>` ([`ProgramIdentity`]: object, configuration, role
//! and layout) and removes the program pins of any other identity. A later process with the same
//! identity opens those pins instead of loading the object's programs: `BPF_OBJ_GET` instead of
//! `BPF_PROG_LOAD`, a few syscalls instead of the kernel verifier (about 0.8 s for a gateway).
//!
//! Pinned programs are used only when all of the following hold, otherwise the instance loads
//! its programs as on a first start (and its attachments swap them in atomically):
//! - every program of the role is pinned under this identity;
//! - each is the program it is named after (kernel name);
//! - every map it uses is the map pinned now under that name (a map pin removed and recreated
//!   since would leave the old program on a map nobody writes), or a map the role does not pin
//!   (never written by userspace), or read-only data (the load-time configuration).
//!
//! Whether a hook already runs the pinned program is decided per attachment from the kernel's
//! own answer (the program id of the link or filter), in [`crate::attach`].
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use aya::{
    maps::{MapData, MapInfo},
    programs::SchedClassifier,
};

use crate::{
    Datapath,
    error::InstanceError,
    identity::{PROGRAMS_DIR_PREFIX, ProgramIdentity},
    layout::{MAPS, Role},
};

/// `BPF_OBJ_NAME_LEN - 1`: the kernel keeps this many bytes of a program or map name.
const KERNEL_NAME_LEN: usize = 15;

fn kernel_name(name: &str) -> &str {
    &name[..name.len().min(KERNEL_NAME_LEN)]
}

fn programs_dir(dir: &Path, identity: ProgramIdentity) -> PathBuf {
    dir.join(identity.dir_name())
}

/// Opens the role's programs pinned under `identity`, if every one of them is there and can be
/// proven to run against the maps pinned in `dir` now; `None` otherwise (load them instead).
pub(crate) fn open(
    dir: &Path,
    identity: ProgramIdentity,
    role: Role,
) -> Option<Vec<(&'static str, SchedClassifier)>> {
    let programs = programs_dir(dir, identity);
    let pinned_ids = pinned_map_ids(dir, role)?;
    let pinned_names: BTreeSet<&str> = MAPS.iter().map(|m| kernel_name(m.name)).collect();
    let unpinned: BTreeSet<&str> = MAPS
        .iter()
        .filter(|m| m.entries(role).is_none())
        .map(|m| kernel_name(m.name))
        .collect();
    role.programs()
        .iter()
        .map(|&name| {
            let program = SchedClassifier::from_pin(programs.join(name)).ok()?;
            let info = program.info().ok()?;
            if info.name_as_str() != Some(kernel_name(name)) {
                return None;
            }
            for id in info.map_ids().ok()?? {
                if pinned_ids.contains(&id) {
                    continue;
                }
                let map = MapInfo::from_id(id).ok()?;
                let map_name = map.name_as_str()?;
                let allowed = unpinned.contains(map_name)
                    || (!pinned_names.contains(map_name) && map_name.ends_with(".rodata"));
                if !allowed {
                    return None;
                }
            }
            Some((name, program))
        })
        .collect()
}

/// The ids of the maps the role pins in `dir`, `None` if one cannot be opened.
fn pinned_map_ids(dir: &Path, role: Role) -> Option<BTreeSet<u32>> {
    role.pinned_maps()
        .map(|spec| {
            let map = MapData::from_pin(dir.join(spec.name)).ok()?;
            Some(map.info().ok()?.id())
        })
        .collect()
}

/// Pins the role's programs of `datapath` under `identity` (replacing any pinned there before)
/// and removes the program pins of other identities. Attachments keep the programs they run;
/// only the record of what those programs were loaded from goes.
pub(crate) fn pin(
    datapath: &mut Datapath,
    dir: &Path,
    identity: ProgramIdentity,
) -> Result<(), InstanceError> {
    remove_other(dir, None)?;
    let programs = programs_dir(dir, identity);
    std::fs::create_dir(&programs).map_err(|source| crate::LoadError::PinDir {
        path: programs.clone(),
        source,
    })?;
    for &name in datapath.role().programs() {
        let path = programs.join(name);
        datapath
            .program(name)
            .map_err(|_| InstanceError::MissingProgram(name))?
            .pin(&path)
            .map_err(|source| InstanceError::Pin { path, source })?;
    }
    Ok(())
}

/// Removes the program pin directories in `dir` except the one of `keep`.
pub(crate) fn remove_other(dir: &Path, keep: Option<ProgramIdentity>) -> Result<(), InstanceError> {
    let keep = keep.map(ProgramIdentity::dir_name);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let stale: BTreeMap<String, PathBuf> = entries
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .filter(|(name, _)| name.starts_with(PROGRAMS_DIR_PREFIX) && Some(name) != keep.as_ref())
        .collect();
    for path in stale.into_values() {
        std::fs::remove_dir_all(&path).map_err(|source| InstanceError::Remove { path, source })?;
    }
    Ok(())
}
