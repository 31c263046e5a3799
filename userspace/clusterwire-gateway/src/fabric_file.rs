//! File mode's "nodes follow the active pod" (`--fabric-file`): there is no controller, so the
//! replica that becomes active writes its own pod address into `spec.gatewayIP` of the
//! `InternalFabric` manifest the agents read; they re-route Geneve on their next poll.
//!
//! The file holds exactly that one `InternalFabric` (anything else is refused, naming what was
//! found); every other field is kept. It is replaced atomically (a hidden temporary file in the
//! same directory, which the manifest source skips, synced and renamed), so a reader sees the
//! old or the new file, never a partial one.
use std::{
    fs,
    io::Write as _,
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;

/// `text` (one `InternalFabric` as YAML) with `spec.gatewayIP` set to `ip`, and whether that
/// changed it.
pub fn set_gateway_ip(text: &str, ip: Ipv4Addr) -> anyhow::Result<(String, bool)> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text).context("not valid YAML")?;
    let [mut fabric] = <[Value; 1]>::try_from(documents).map_err(|all| {
        anyhow!(
            "expected exactly one document, an InternalFabric; found {}",
            all.len()
        )
    })?;
    match fabric.get("kind").and_then(Value::as_str) {
        Some("InternalFabric") => {}
        Some(kind) => bail!("expected kind InternalFabric, found {kind}"),
        None => bail!("expected kind InternalFabric, found no kind"),
    }
    let spec = fabric
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .context("the InternalFabric has no spec")?;
    let ip = Value::String(ip.to_string());
    let changed = spec.get("gatewayIP") != Some(&ip);
    spec.insert("gatewayIP".to_owned(), ip);
    let yaml = serde_saphyr::to_string(&fabric).context("serializing the InternalFabric")?;
    Ok((yaml, changed))
}

/// Sets `spec.gatewayIP` to `ip` in the `InternalFabric` file `path` (written only when it
/// changes); whether it was written.
pub fn write_gateway_ip(path: &Path, ip: Ipv4Addr) -> anyhow::Result<bool> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (yaml, changed) =
        set_gateway_ip(&text, ip).with_context(|| format!("--fabric-file {}", path.display()))?;
    if changed {
        replace(path, &yaml).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(changed)
}

/// Replaces `path` with `text` through a hidden temporary file in its directory.
fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::{set_gateway_ip, write_gateway_ip};

    /// The lab's file (`fabric-cl01.yaml`), as `cwctl lab` writes it (keys sorted).
    const FABRIC: &str = r#"apiVersion: networking.liqo.io/v1beta1
kind: InternalFabric
metadata:
  labels:
    liqo.io/remote-cluster-id: cl01
  name: cl01
  namespace: liqo-tenant-cl01
spec:
  gatewayIP: "10.0.1.101"
  interface:
    gateway:
      ip: "10.80.0.1"
  mtu: 1340
  remoteCIDRs:
  - 10.1.0.0/16
  - 10.2.0.0/16
"#;

    const STANDBY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 151);

    #[test]
    fn the_gateway_ip_is_replaced_and_everything_else_kept() {
        let (yaml, changed) = set_gateway_ip(FABRIC, STANDBY).expect("rewritten");
        assert!(changed);
        assert_eq!(
            yaml,
            FABRIC.replace("gatewayIP: \"10.0.1.101\"", "gatewayIP: \"10.0.2.151\"")
        );
        let (again, changed) = set_gateway_ip(&yaml, STANDBY).expect("rewritten");
        assert!(!changed, "the same address is no change");
        assert_eq!(again, yaml);
    }

    #[test]
    fn anything_but_one_internal_fabric_is_refused() {
        let error =
            |text: &str| format!("{:#}", set_gateway_ip(text, STANDBY).expect_err("refused"));
        assert_eq!(
            error(&format!("{FABRIC}---\n{FABRIC}")),
            "expected exactly one document, an InternalFabric; found 2"
        );
        assert_eq!(
            error(""),
            "expected exactly one document, an InternalFabric; found 0"
        );
        assert_eq!(
            error(&FABRIC.replace("kind: InternalFabric", "kind: Configuration")),
            "expected kind InternalFabric, found Configuration"
        );
        assert_eq!(
            error("apiVersion: v1\nspec: {}\n"),
            "expected kind InternalFabric, found no kind"
        );
        assert_eq!(
            error("kind: InternalFabric\nmetadata:\n  name: cl01\n"),
            "the InternalFabric has no spec"
        );
        assert!(error("kind: [").starts_with("not valid YAML"));
    }

    #[test]
    fn the_file_is_replaced_atomically_only_on_change() {
        let dir = std::env::temp_dir().join(format!("cw-gw-fabric-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("fabric-cl01.yaml");
        std::fs::write(&path, FABRIC).expect("write");
        assert!(write_gateway_ip(&path, STANDBY).expect("written"));
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            FABRIC.replace("10.0.1.101", "10.0.2.151")
        );
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        assert!(!write_gateway_ip(&path, STANDBY).expect("unchanged"));
        assert_eq!(
            std::fs::metadata(&path).and_then(|m| m.modified()).ok(),
            modified
        );
        let names: Vec<_> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["fabric-cl01.yaml"], "no temporary file left");
        let error = write_gateway_ip(&dir.join("missing.yaml"), STANDBY).expect_err("no file");
        assert!(format!("{error:#}").starts_with("reading "), "{error:#}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
