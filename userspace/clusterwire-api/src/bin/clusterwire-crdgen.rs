//! Writes every CRD of clusterwire-api as YAML into a directory (`cargo xtask crdgen` runs it
//! with `<workspace>/crds`). Files of this generator that no longer correspond to a CRD are
//! removed, so the directory always mirrors the types.
#![forbid(unsafe_code)]

use std::{fs, path::PathBuf};

use anyhow::{Context as _, bail};
use clusterwire_api::crdgen;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        bail!("usage: clusterwire-crdgen <output directory>");
    };
    let dir = PathBuf::from(dir);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let files = crdgen::render()?;
    for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        let stale = path.extension().is_some_and(|e| e == "yaml")
            && !files
                .iter()
                .any(|(name, _)| path.file_name().is_some_and(|f| f == name.as_str()))
            && fs::read_to_string(&path).is_ok_and(|text| text.starts_with(crdgen::HEADER));
        if stale {
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
            println!("removed {}", path.display());
        }
    }
    for (name, yaml) in files {
        let path = dir.join(&name);
        if fs::read_to_string(&path).is_ok_and(|old| old == yaml) {
            println!("unchanged {}", path.display());
            continue;
        }
        fs::write(&path, yaml).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
