//! RBAC against the code (issue 10): each component's `ClusterRole` and `Role`, as `kubectl
//! kustomize deploy/base` renders them, grant exactly the API calls the component's own list
//! names (`clusterwire_controller::rbac::API_CALLS`, itself checked against the controller's
//! sources by that crate's unit tests): a missing permission or an excess one fails, naming it.
//! `cwctl network` and `cwctl info` run as the user, so they have no role here. The agent and
//! gateway are not compared yet: their crates have no list of API calls.
//!
//! kubectl as in `tests/deploy.rs`: `/opt/clusterwire/tools/bin/kubectl` (`cargo xtask setup`)
//! or the one on PATH; without it the test says SKIPPED, and fails when `CI` is set.

use std::{
    collections::BTreeSet,
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

fn kubectl() -> Option<PathBuf> {
    let found = [
        PathBuf::from("/opt/clusterwire/tools/bin/kubectl"),
        PathBuf::from("kubectl"),
    ]
    .into_iter()
    .find(|p| {
        Command::new(p)
            .args(["version", "--client"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "rbac: kubectl is missing and CI is set: run `cargo xtask setup`"
        );
        let _ = writeln!(
            std::io::stderr(),
            "rbac: SKIPPED: no kubectl (run `cargo xtask setup`)"
        );
    }
    found
}

fn base() -> Vec<Value> {
    let Some(kubectl) = kubectl() else {
        return Vec::new();
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/base");
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(&dir)
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    text.split("\n---\n")
        .map(|doc| serde_saphyr::from_str(doc).expect("YAML document"))
        .collect()
}

type Grant = (String, String, String);

/// Every (group, resource, verb) the `kind` named `name` grants (empty when there is none).
fn grants(objects: &[Value], kind: &str, name: &str) -> BTreeSet<Grant> {
    let mut set = BTreeSet::new();
    for object in objects
        .iter()
        .filter(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    {
        for rule in object["rules"].as_array().into_iter().flatten() {
            let strings = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| v.as_str().expect("string").to_owned())
                    .collect()
            };
            for group in strings("apiGroups") {
                for resource in strings("resources") {
                    for verb in strings("verbs") {
                        set.insert((group.clone(), resource.clone(), verb));
                    }
                }
            }
        }
    }
    set
}

fn expand<'a>(
    calls: impl Iterator<Item = &'a clusterwire_controller::rbac::ApiCall>,
) -> BTreeSet<Grant> {
    calls
        .flat_map(|(group, resource, verbs)| {
            verbs.iter().map(|verb| {
                (
                    (*group).to_owned(),
                    (*resource).to_owned(),
                    (*verb).to_owned(),
                )
            })
        })
        .collect()
}

fn compare(what: &str, granted: &BTreeSet<Grant>, needed: &BTreeSet<Grant>) {
    let missing: Vec<_> = needed.difference(granted).collect();
    let excess: Vec<_> = granted.difference(needed).collect();
    assert!(
        missing.is_empty() && excess.is_empty(),
        "{what}: (group, resource, verb) the code uses but the role lacks: {missing:?}; granted \
         but not in the code's list: {excess:?} (update deploy/base/rbac or the component's \
         API_CALLS)"
    );
}

#[test]
fn controller_roles_grant_exactly_its_api_calls() {
    use clusterwire_controller::rbac::{API_CALLS, NAMESPACED};
    let objects = base();
    if objects.is_empty() {
        return;
    }
    let namespaced = |r: &str| NAMESPACED.contains(&r.split('/').next().unwrap_or(r));
    compare(
        "ClusterRole clusterwire-controller",
        &grants(&objects, "ClusterRole", "clusterwire-controller"),
        &expand(API_CALLS.iter().filter(|(_, r, _)| !namespaced(r))),
    );
    compare(
        "Role clusterwire-controller",
        &grants(&objects, "Role", "clusterwire-controller"),
        &expand(API_CALLS.iter().filter(|(_, r, _)| namespaced(r))),
    );
}
