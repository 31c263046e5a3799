//! `deploy/`: `kubectl kustomize` of the base and of every overlay succeeds, and every rendered
//! object deserializes into its k8s-openapi type (CRs into clusterwire-api types, checked
//! against the CRD schemas) without losing a field; the gateway templates, rendered with sample
//! values, are a valid Deployment and Service; the CRDs are those of `crds/`.
//!
//! kubectl is `/opt/clusterwire/tools/bin/kubectl` (installed by `cargo xtask setup`) or the
//! one on PATH. Without it the test says it was skipped, and fails when `CI` is set.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use clusterwire_api::{
    networking::{WgGatewayClientTemplate, WgGatewayServerTemplate},
    validation::ManifestValidator,
};
use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment},
        core::v1::{ConfigMap, Namespace, PodSpec, Service, ServiceAccount},
        rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn kubectl() -> Option<PathBuf> {
    let works = |path: &Path| {
        Command::new(path)
            .args(["version", "--client"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    [
        PathBuf::from("/opt/clusterwire/tools/bin/kubectl"),
        PathBuf::from("kubectl"),
    ]
    .into_iter()
    .find(|p| works(p))
}

/// kubectl, or `None` after saying the test is skipped (a failure when `CI` is set).
fn kubectl_or_skip(test: &str) -> Option<PathBuf> {
    let found = kubectl();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: kubectl is missing and CI is set: run `cargo xtask setup`"
        );
        // Straight to stderr: libtest captures eprintln! of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "{test}: SKIPPED: no kubectl (run `cargo xtask setup`)"
        );
    }
    found
}

/// The directories rendered: the base and every overlay.
fn kustomizations() -> Vec<PathBuf> {
    let overlays = root().join("deploy/overlays");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&overlays)
        .unwrap_or_else(|e| panic!("{}: {e}", overlays.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 5, "expected the five overlays, got {dirs:?}");
    dirs.insert(0, root().join("deploy/base"));
    dirs
}

fn render(kubectl: &Path, dir: &Path) -> Vec<Value> {
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.split("\n---\n")
        .map(|doc| {
            serde_saphyr::from_str(doc)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}\n{doc}", dir.display()))
        })
        .collect()
}

/// Deserializes `value` as `T` and checks that serializing it back gives the same object, so a
/// misspelled or misplaced field (which deserialization alone would ignore) fails.
fn typed<T: DeserializeOwned + Serialize>(what: &str, value: &Value) -> T {
    let object: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("{what}: does not deserialize: {e}\n{value:#}"));
    let back = serde_json::to_value(&object).unwrap();
    if let Some(path) = first_difference(value, &back, String::new()) {
        panic!("{what}: {path} is lost or changed in the round trip through the typed object");
    }
    object
}

/// The path of the first difference between two JSON values (numbers compared by value, as
/// schemas keep `maximum` as a float).
fn first_difference(left: &Value, right: &Value, path: String) -> Option<String> {
    match (left, right) {
        (Value::Object(lhs), Value::Object(rhs)) => lhs
            .iter()
            .find_map(|(k, v)| match rhs.get(k) {
                Some(w) => first_difference(v, w, format!("{path}.{k}")),
                None => Some(format!("{path}.{k}")),
            })
            .or_else(|| {
                rhs.keys()
                    .find(|k| !lhs.contains_key(*k))
                    .map(|k| format!("{path}.{k}"))
            }),
        (Value::Array(lhs), Value::Array(rhs)) if lhs.len() == rhs.len() => lhs
            .iter()
            .zip(rhs)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, format!("{path}[{i}]"))),
        (Value::Number(lhs), Value::Number(rhs)) => (lhs.as_f64() != rhs.as_f64()).then_some(path),
        _ => (left != right).then_some(path),
    }
}

fn name_of(value: &Value) -> String {
    format!(
        "{}/{}",
        value["kind"].as_str().unwrap_or("?"),
        value["metadata"]["name"].as_str().unwrap_or("?")
    )
}

fn validator() -> ManifestValidator {
    let dir = root().join("crds");
    let texts: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    ManifestValidator::from_yaml(texts.iter().map(String::as_str)).expect("CRDs compile")
}

/// Every object of one rendering, typed and checked.
#[derive(Default)]
struct Rendered {
    pods: Vec<(String, PodSpec)>,
    service_accounts: Vec<String>,
    templates: Vec<(String, Value)>,
    daemonsets: Vec<DaemonSet>,
    configmaps: Vec<ConfigMap>,
    crds: usize,
}

fn check_object(rendered: &mut Rendered, validator: &ManifestValidator, value: &Value) {
    let what = name_of(value);
    let namespaced = !matches!(
        value["kind"].as_str(),
        Some("Namespace" | "CustomResourceDefinition" | "ClusterRole" | "ClusterRoleBinding")
    );
    if namespaced {
        assert_eq!(value["metadata"]["namespace"], "clusterwire", "{what}");
    }
    match (value["apiVersion"].as_str(), value["kind"].as_str()) {
        (Some("v1"), Some("Namespace")) => drop(typed::<Namespace>(&what, value)),
        (Some("apiextensions.k8s.io/v1"), Some("CustomResourceDefinition")) => {
            typed::<CustomResourceDefinition>(&what, value);
            rendered.crds += 1;
        }
        (Some("v1"), Some("ConfigMap")) => rendered.configmaps.push(typed(&what, value)),
        (Some("v1"), Some("ServiceAccount")) => {
            typed::<ServiceAccount>(&what, value);
            rendered
                .service_accounts
                .push(value["metadata"]["name"].as_str().unwrap().into());
        }
        (Some("rbac.authorization.k8s.io/v1"), Some("ClusterRole")) => {
            drop(typed::<ClusterRole>(&what, value));
        }
        (Some("rbac.authorization.k8s.io/v1"), Some("Role")) => drop(typed::<Role>(&what, value)),
        (Some("rbac.authorization.k8s.io/v1"), Some("ClusterRoleBinding")) => {
            drop(typed::<ClusterRoleBinding>(&what, value));
        }
        (Some("rbac.authorization.k8s.io/v1"), Some("RoleBinding")) => {
            drop(typed::<RoleBinding>(&what, value));
        }
        (Some("apps/v1"), Some("Deployment")) => {
            let d: Deployment = typed(&what, value);
            rendered.pods.push((what, d.spec.template.spec.unwrap()));
        }
        (Some("apps/v1"), Some("DaemonSet")) => {
            let d: DaemonSet = typed(&what, value);
            let pod = d.spec.clone().template.spec.unwrap();
            rendered.pods.push((what, pod));
            rendered.daemonsets.push(d);
        }
        (
            Some("networking.liqo.io/v1beta1"),
            Some(kind @ ("WgGatewayServerTemplate" | "WgGatewayClientTemplate")),
        ) => {
            if kind == "WgGatewayServerTemplate" {
                drop(typed::<WgGatewayServerTemplate>(&what, value));
            } else {
                drop(typed::<WgGatewayClientTemplate>(&what, value));
            }
            if let Err(violations) = validator.validate(value) {
                panic!("{what} does not validate against crds/: {violations}");
            }
            rendered
                .templates
                .push((what, value["spec"]["template"].clone()));
        }
        _ => panic!("{what}: unexpected apiVersion/kind in deploy/ (add it to this test)"),
    }
}

/// Replaces the template variables with sample values and drops `?` keys that render empty.
fn instantiate(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter_map(|(k, v)| {
                    let v = instantiate(v);
                    match k.strip_prefix('?') {
                        Some(_) if v == json!("") => None,
                        Some(key) => Some((key.to_owned(), v)),
                        None => Some((k.clone(), v)),
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(instantiate).collect()),
        Value::String(text) => match text.as_str() {
            "{{ .Spec.Endpoint.Port }}" => json!(51840),
            "{{ .Spec.Endpoint.NodePort }}" | "{{ .Spec.Endpoint.LoadBalancerIP }}" => json!(""),
            "{{ .Spec.MTU }}" => json!(1340),
            other => Value::String(
                other
                    .replace("{{ .Name }}", "cl02")
                    .replace("{{ .Namespace }}", "liqo-tenant-cl02")
                    .replace("{{ .ClusterID }}", "cl02")
                    .replace("{{ .SecretName }}", "gw-cl02")
                    .replace("{{ .Spec.Endpoint.ServiceType }}", "LoadBalancer"),
            ),
        },
        other => other.clone(),
    }
}

fn check_template(rendered: &mut Rendered, what: &str, template: &Value) {
    let spec = instantiate(&template["spec"]);
    assert!(
        !spec.to_string().contains("{{"),
        "{what}: unknown template variable in {spec:#}"
    );
    let mut deployment = spec["deployment"].clone();
    deployment["apiVersion"] = json!("apps/v1");
    deployment["kind"] = json!("Deployment");
    let d: Deployment = typed(&format!("{what} deployment"), &deployment);
    rendered
        .pods
        .push((format!("{what} deployment"), d.spec.template.spec.unwrap()));
    if what.starts_with("WgGatewayServerTemplate") {
        let mut service = spec["service"].clone();
        service["apiVersion"] = json!("v1");
        service["kind"] = json!("Service");
        typed::<Service>(&format!("{what} service"), &service);
    }
}

/// Capabilities added to a pod's non-init containers, and whether any is privileged.
fn capabilities(pod: &PodSpec) -> (Vec<String>, bool) {
    let mut added = Vec::new();
    let mut privileged = false;
    for c in &pod.containers {
        let sc = c.security_context.clone().unwrap_or_default();
        privileged |= sc.privileged == Some(true);
        let caps = sc.capabilities.unwrap_or_default();
        added.extend(caps.add.unwrap_or_default());
        assert_eq!(
            caps.drop,
            Some(vec!["ALL".to_owned()]),
            "{}: drop ALL",
            c.name
        );
    }
    added.sort();
    (added, privileged)
}

fn check_rendering(dir: &Path, objects: &[Value], validator: &ManifestValidator) -> Rendered {
    let mut rendered = Rendered::default();
    for value in objects {
        check_object(&mut rendered, validator, value);
    }
    for (what, template) in rendered.templates.clone() {
        check_template(&mut rendered, &what, &template);
    }
    let where_ = dir.display();
    assert_eq!(rendered.crds, 11, "{where_}: every CRD of crds/");
    let clusterid: Vec<&ConfigMap> = rendered
        .configmaps
        .iter()
        .filter(|c| {
            c.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app.kubernetes.io/name"))
                == Some(&"clusterid-configmap".to_owned())
        })
        .collect();
    assert_eq!(
        clusterid.len(),
        1,
        "{where_}: one cluster identity ConfigMap"
    );
    assert!(
        clusterid[0]
            .data
            .as_ref()
            .unwrap()
            .contains_key("CLUSTER_ID")
    );
    for sa in ["clusterwire-controller", "clusterwire-agent"] {
        assert!(
            rendered.service_accounts.iter().any(|s| s == sa),
            "{where_}: no {sa}"
        );
    }
    for (what, pod) in &rendered.pods {
        let sa = pod.service_account_name.as_deref().unwrap_or_default();
        assert!(!sa.is_empty(), "{what}: its own ServiceAccount");
        let (caps, privileged) = capabilities(pod);
        assert!(!privileged, "{what}: no privileged long-running container");
        if what.starts_with("Deployment/clusterwire-controller") {
            assert!(
                caps.is_empty(),
                "{what}: the controller needs no capability"
            );
        } else {
            assert_eq!(caps, ["BPF", "NET_ADMIN", "PERFMON"], "{what}");
            let bpffs = pod.volumes.iter().flatten().any(|v| {
                v.host_path
                    .as_ref()
                    .is_some_and(|h| h.path == "/sys/fs/bpf")
            });
            assert!(bpffs, "{what}: mounts bpffs");
        }
    }
    let agent = &rendered.daemonsets[0];
    let pod = agent.spec.template.spec.as_ref().unwrap();
    assert_eq!(
        pod.host_network,
        Some(true),
        "{where_}: the agent is on the host network"
    );
    rendered
}

/// The `--wireguard` of every gateway template, and whether they mount /dev/net/tun.
fn wireguard(rendered: &Rendered) -> Vec<(String, bool)> {
    rendered
        .pods
        .iter()
        .filter(|(what, _)| what.starts_with("WgGateway"))
        .map(|(_, pod)| {
            let c = &pod.containers[0];
            let arg = c
                .args
                .iter()
                .flatten()
                .find(|a| a.starts_with("--wireguard="))
                .unwrap();
            let tun = c
                .volume_mounts
                .iter()
                .flatten()
                .any(|m| m.mount_path == "/dev/net/tun");
            (arg.clone(), tun)
        })
        .collect()
}

/// Every gateway template's replicas and whether its pod elects (`--leader-elect` with
/// `POD_NAME` from the downward API); the server Service's selector.
fn gateway_ha(rendered: &Rendered, objects: &[Value]) -> (Vec<(Value, bool)>, Value) {
    let elects = rendered
        .pods
        .iter()
        .filter(|(what, _)| what.starts_with("WgGateway"))
        .map(|(_, pod)| {
            let c = &pod.containers[0];
            let flag = c.args.iter().flatten().any(|a| a == "--leader-elect");
            let pod_name = c.env.iter().flatten().any(|e| {
                e.name == "POD_NAME"
                    && e.value_from
                        .as_ref()
                        .and_then(|v| v.field_ref.as_ref())
                        .is_some_and(|f| f.field_path == "metadata.name")
            });
            flag && pod_name
        });
    let replicas = objects
        .iter()
        .filter(|o| {
            o["kind"]
                .as_str()
                .is_some_and(|k| k.starts_with("WgGateway"))
        })
        .map(|o| o["spec"]["template"]["spec"]["deployment"]["spec"]["replicas"].clone());
    let selector = objects
        .iter()
        .find(|o| o["kind"] == "WgGatewayServerTemplate")
        .map(|o| o["spec"]["template"]["spec"]["service"]["spec"]["selector"].clone())
        .unwrap();
    (replicas.zip(elects).collect(), selector)
}

fn service_type(objects: &[Value]) -> Value {
    objects
        .iter()
        .find(|o| o["kind"] == "WgGatewayServerTemplate")
        .map(|o| o["spec"]["template"]["spec"]["service"]["spec"]["type"].clone())
        .unwrap()
}

#[test]
fn base_and_overlays_render_into_valid_typed_objects() {
    let Some(kubectl) = kubectl_or_skip("base_and_overlays_render_into_valid_typed_objects") else {
        return;
    };
    let validator = validator();
    for dir in kustomizations() {
        let objects = render(&kubectl, &dir);
        let rendered = check_rendering(&dir, &objects, &validator);
        let overlay = dir.file_name().unwrap().to_string_lossy().into_owned();
        let wg = wireguard(&rendered);
        assert_eq!(wg.len(), 2, "{overlay}: two gateway templates");
        let expected_wg = match overlay.as_str() {
            "wireguard-kernel" => ("--wireguard=kernel", false),
            "wireguard-userspace" => ("--wireguard=userspace", true),
            _ => ("--wireguard=auto", false),
        };
        for (arg, tun) in &wg {
            assert_eq!((arg.as_str(), *tun), expected_wg, "{overlay}");
        }
        let expected_type = match overlay.as_str() {
            "service-nodeport" => json!("NodePort"),
            "service-loadbalancer" => json!("LoadBalancer"),
            _ => json!("{{ .Spec.Endpoint.ServiceType }}"),
        };
        assert_eq!(service_type(&objects), expected_type, "{overlay}");
        let (replicas, selector) = gateway_ha(&rendered, &objects);
        let expected_replicas = if overlay == "gateway-ha" { 2 } else { 1 };
        assert_eq!(
            replicas,
            [
                (json!(expected_replicas), true),
                (json!(expected_replicas), true)
            ],
            "{overlay}: replicas, --leader-elect and POD_NAME"
        );
        assert_eq!(
            selector["networking.liqo.io/active"],
            json!("true"),
            "{overlay}: the Service selects the active replica"
        );
    }
}

#[test]
fn deploy_crds_are_those_of_crds_and_all_listed() {
    let deploy = root().join("deploy/base/crds");
    let kustomization = std::fs::read_to_string(deploy.join("kustomization.yaml")).unwrap();
    let listed: Value = serde_saphyr::from_str(&kustomization).unwrap();
    let mut listed: Vec<&str> = listed["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    listed.sort_unstable();
    let mut names: Vec<String> = std::fs::read_dir(root().join("crds"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        listed, names,
        "deploy/base/crds/kustomization.yaml lists every CRD"
    );
    for name in &names {
        let ours = std::fs::read_to_string(root().join("crds").join(name)).unwrap();
        let copy = std::fs::read_to_string(deploy.join(name))
            .unwrap_or_else(|e| panic!("deploy/base/crds/{name}: {e}: run `cargo xtask crdgen`"));
        assert!(
            ours == copy,
            "deploy/base/crds/{name} is stale: run `cargo xtask crdgen`"
        );
    }
}
