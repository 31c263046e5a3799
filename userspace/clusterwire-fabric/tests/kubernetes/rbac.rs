//! The agent's and gateway's roles in `deploy/base/rbac/` grant exactly the calls their
//! Kubernetes mode makes: list and watch of the kinds of their [`Scope`], and the gateway's
//! server-side applies of its Connection (create/patch, patch of the status).

use std::{collections::BTreeSet, path::Path};

use clusterwire_fabric::{
    kubernetes::{Scope, api_resource},
    snapshot::Kind,
};
use serde_json::Value;

/// (apiGroup, resource, verb).
type Grant = (String, String, String);

/// Every grant of the `ClusterRole` `name` in `file` under `deploy/base/rbac/`.
fn role(file: &str, name: &str) -> BTreeSet<Grant> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/base/rbac")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("the RBAC file");
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).expect("YAML");
    let role = documents
        .iter()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no ClusterRole {name} in {}", path.display()));
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("a list")
            .iter()
            .map(|s| s.as_str().expect("a string").to_owned())
            .collect()
    };
    let mut grants = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    grants.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    grants
}

fn grant(group: &str, resource: &str, verb: &str) -> Grant {
    (group.to_owned(), resource.to_owned(), verb.to_owned())
}

/// list and watch of `kinds`.
fn watches(kinds: impl IntoIterator<Item = Kind>) -> BTreeSet<Grant> {
    kinds
        .into_iter()
        .flat_map(|kind| {
            let resource = api_resource(kind);
            ["list", "watch"].map(|verb| grant(&resource.group, &resource.plural, verb))
        })
        .collect()
}

#[test]
fn the_agent_role_is_its_watches() {
    let scope = Scope::agent();
    assert_eq!(
        role("agent.yaml", "clusterwire-agent"),
        watches(scope.kinds)
    );
}

#[test]
fn the_gateway_roles_are_its_watches_and_connection_applies() {
    let scope = Scope::gateway("any");
    let (namespaced, cluster): (Vec<Kind>, Vec<Kind>) =
        scope.kinds.iter().partition(|k| k.namespaced());
    let mut expected = watches(namespaced);
    let group = "networking.liqo.io";
    expected.extend([
        grant(group, "connections", "create"),
        grant(group, "connections", "patch"),
        grant(group, "connections/status", "patch"),
        // Gateway replicas: the Lease and the active-pod label.
        grant("coordination.k8s.io", "leases", "get"),
        grant("coordination.k8s.io", "leases", "create"),
        grant("coordination.k8s.io", "leases", "update"),
        grant("", "pods", "patch"),
    ]);
    assert_eq!(
        role("gateway.yaml", "clusterwire-gateway"),
        expected,
        "bound in the gateway's namespace"
    );
    assert_eq!(
        role("gateway.yaml", "clusterwire-gateway-cluster"),
        watches(cluster),
        "bound cluster-wide"
    );
}
