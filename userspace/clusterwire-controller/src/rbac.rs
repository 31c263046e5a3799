//! Every Kubernetes API call the controller makes, as (API group, resource, verbs): the list its
//! `ClusterRole` and `Role` in `deploy/base/rbac/controller.yaml` must grant, no more, no less
//! (checked by `cargo test -p clusterwire-cli --test rbac`; `bind` on `clusterroles` is
//! granted there only for the gateway roles, by `resourceNames`). The test below scans this
//! crate's sources and fails when a resource kind or a verb appears in the code but not here,
//! or here but not in the code.

/// (API group, resource or `resource/subresource`, verbs).
pub type ApiCall = (&'static str, &'static str, &'static [&'static str]);

/// The controller's API calls.
pub const API_CALLS: &[ApiCall] = &[
    // Controller::new (list, watch), the finalizer (patch), the IPAM rebuild (list), the
    // gateways' `.watches` and their Configuration lookup (list with a label selector).
    (
        "networking.liqo.io",
        "configurations",
        &["list", "watch", "patch"],
    ),
    ("networking.liqo.io", "configurations/status", &["patch"]),
    // Controller::new, the gateway finalizer (patch).
    (
        "networking.liqo.io",
        "gatewayservers",
        &["list", "watch", "patch"],
    ),
    ("networking.liqo.io", "gatewayservers/status", &["patch"]),
    (
        "networking.liqo.io",
        "gatewayclients",
        &["list", "watch", "patch"],
    ),
    ("networking.liqo.io", "gatewayclients/status", &["patch"]),
    // `.watches` (list, watch) and the template read (get).
    (
        "networking.liqo.io",
        "wggatewayservertemplates",
        &["get", "list", "watch"],
    ),
    (
        "networking.liqo.io",
        "wggatewayclienttemplates",
        &["get", "list", "watch"],
    ),
    // `.owns`, `apply::ensure` (get, then server-side apply, which is authorized as create
    // when the object does not exist yet), the IPAM rebuild.
    (
        "networking.liqo.io",
        "internalnodes",
        &["get", "list", "watch", "create", "patch"],
    ),
    // As for internalnodes (the gateways' fabrics).
    (
        "networking.liqo.io",
        "internalfabrics",
        &["get", "list", "watch", "create", "patch"],
    ),
    // Controller::new, the finalizer (patch), the IPAM rebuild; the address in the status.
    ("ipam.liqo.io", "ips", &["list", "watch", "patch"]),
    ("ipam.liqo.io", "ips/status", &["patch"]),
    // Controller::new, the node of the active gateway pod (endpoint).
    ("", "nodes", &["get", "list", "watch"]),
    // The gateways' `.watches` (their pods) and the active pod (label selector).
    ("", "pods", &["list", "watch"]),
    // `.owns`, `apply::ensure` (as for internalnodes).
    (
        "apps",
        "deployments",
        &["get", "list", "watch", "create", "patch"],
    ),
    ("", "services", &["get", "list", "watch", "create", "patch"]),
    // `.owns`, the key Secret read or created.
    ("", "secrets", &["get", "list", "watch", "create"]),
    // `apply::ensure` (as for internalnodes).
    ("", "serviceaccounts", &["get", "create", "patch"]),
    // The gateway's bindings (`apply::ensure`); the ClusterRoleBinding is deleted by the
    // gateway's finalizer.
    (
        "rbac.authorization.k8s.io",
        "rolebindings",
        &["get", "create", "patch"],
    ),
    (
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        &["get", "create", "patch", "delete"],
    ),
    // Binding a role needs `bind` on it (granted only for the two gateway roles, by name).
    ("rbac.authorization.k8s.io", "clusterroles", &["bind"]),
    // kube-runtime's Recorder (events.k8s.io/v1; patch for a repeated event).
    ("events.k8s.io", "events", &["create", "patch"]),
    // Leader election (namespaced, the Role): get, create, replace.
    (
        "coordination.k8s.io",
        "leases",
        &["get", "create", "update"],
    ),
];

/// The resources of [`API_CALLS`] granted by the namespaced Role (the controller's own
/// namespace) rather than the `ClusterRole`.
pub const NAMESPACED: &[&str] = &["leases"];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::API_CALLS;

    /// Kinds the code may name in `Api<K>` / `Api::<K>`, and their (group, resource).
    const KINDS: &[(&str, &str, &str)] = &[
        ("Configuration", "networking.liqo.io", "configurations"),
        ("GatewayServer", "networking.liqo.io", "gatewayservers"),
        ("GatewayClient", "networking.liqo.io", "gatewayclients"),
        (
            "WgGatewayServerTemplate",
            "networking.liqo.io",
            "wggatewayservertemplates",
        ),
        (
            "WgGatewayClientTemplate",
            "networking.liqo.io",
            "wggatewayclienttemplates",
        ),
        ("InternalNode", "networking.liqo.io", "internalnodes"),
        ("InternalFabric", "networking.liqo.io", "internalfabrics"),
        ("IP", "ipam.liqo.io", "ips"),
        ("PublicKey", "networking.liqo.io", "publickeys"),
        ("Connection", "networking.liqo.io", "connections"),
        ("Node", "", "nodes"),
        ("Pod", "", "pods"),
        ("Deployment", "apps", "deployments"),
        ("Service", "", "services"),
        ("Secret", "", "secrets"),
        ("ServiceAccount", "", "serviceaccounts"),
        ("ConfigMap", "", "configmaps"),
        ("Lease", "coordination.k8s.io", "leases"),
        ("RoleBinding", "rbac.authorization.k8s.io", "rolebindings"),
        (
            "ClusterRoleBinding",
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
        ),
    ];

    /// Code tokens and the verb each implies somewhere in [`API_CALLS`].
    const VERBS: &[(&str, &str)] = &[
        ("Controller::new(", "watch"),
        (".owns(", "watch"),
        (".watches(", "watch"),
        (".list(", "list"),
        (".get(", "get"),
        (".get_opt(", "get"),
        (".patch(", "patch"),
        (".patch_status(", "patch"),
        ("finalizer(", "patch"),
        (".create(", "create"),
        (".replace(", "update"),
        (".delete(", "delete"),
        ("Recorder::new(", "create"),
        ("\"roleRef\"", "bind"),
    ];

    fn sources() -> String {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut text = String::new();
        for entry in std::fs::read_dir(&dir).expect("src") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("rbac.rs") {
                text.push_str(&std::fs::read_to_string(&path).expect("source"));
            }
        }
        // The Lease election the controller runs lives in the crate shared with the gateways.
        let lease = dir.join("../../clusterwire-election/src/lease.rs");
        text.push_str(&std::fs::read_to_string(&lease).expect("election source"));
        text
    }

    /// Kinds named as `Api<Kind` or `Api::<Kind` (a generic `Api<K>` names none).
    fn kinds_in(code: &str) -> BTreeSet<String> {
        let mut kinds = BTreeSet::new();
        for start in ["Api<", "Api::<"] {
            for (i, _) in code.match_indices(start) {
                let name: String = code[i + start.len()..]
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                if name.len() > 1 {
                    kinds.insert(name);
                }
            }
        }
        kinds
    }

    #[test]
    fn every_kind_in_the_code_is_listed_and_every_listed_resource_is_used() {
        let code = sources();
        let mut used = BTreeSet::new();
        for kind in kinds_in(&code) {
            let (_, group, resource) =
                KINDS
                    .iter()
                    .find(|(k, _, _)| *k == kind)
                    .unwrap_or_else(|| {
                        panic!("Api<{kind}> in the code: add it to API_CALLS and to KINDS here")
                    });
            used.insert((*group, *resource));
        }
        if code.contains("Recorder::new(") {
            used.insert(("events.k8s.io", "events"));
        }
        if code.contains("\"roleRef\"") {
            used.insert(("rbac.authorization.k8s.io", "clusterroles"));
        }
        let listed: BTreeSet<(&str, &str)> = API_CALLS
            .iter()
            .filter(|(_, r, _)| !r.contains('/'))
            .map(|(g, r, _)| (*g, *r))
            .collect();
        assert_eq!(
            used, listed,
            "resources the code calls (left) differ from API_CALLS (right)"
        );
        // A status subresource is listed only for a listed resource.
        for (group, resource, _) in API_CALLS {
            if let Some((main, _)) = resource.split_once('/') {
                assert!(
                    listed.contains(&(*group, main)),
                    "{resource} without {main}"
                );
            }
        }
    }

    #[test]
    fn every_verb_in_the_code_is_listed_and_every_listed_verb_is_used() {
        let code = sources();
        let used: BTreeSet<&str> = VERBS
            .iter()
            .filter(|(token, _)| code.contains(token))
            .map(|(_, verb)| *verb)
            .chain(code.contains("Controller::new(").then_some("list"))
            .collect();
        let listed: BTreeSet<&str> = API_CALLS
            .iter()
            .flat_map(|(_, _, verbs)| verbs.iter().copied())
            .collect();
        assert_eq!(
            used, listed,
            "verbs the code uses (left) differ from API_CALLS (right)"
        );
        assert_eq!(
            code.contains(".patch_status("),
            API_CALLS.iter().any(|(_, r, _)| r.ends_with("/status")),
            "status writes and */status entries in API_CALLS"
        );
    }
}
