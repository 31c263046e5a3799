use std::{
    fs,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use clusterwire_api::validation::ManifestValidator;

use super::*;
use crate::snapshot::{Key, Kind};

fn validator() -> &'static ManifestValidator {
    static VALIDATOR: OnceLock<ManifestValidator> = OnceLock::new();
    VALIDATOR.get_or_init(|| ManifestValidator::for_api().expect("the API's CRDs compile"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("clusterwire-fabric-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) {
        fs::write(self.0.join(name), text).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn ids(list: &[(Kind, Key)]) -> Vec<String> {
    list.iter().map(|(k, key)| format!("{k} {key}")).collect()
}

#[test]
fn loads_every_kind_from_a_directory_tree() {
    let dir = fixture("cl01");
    let loaded = load_dir(&dir, validator()).unwrap();
    let problems: Vec<String> = loaded.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        Vec::<String>::new(),
        "status/ and notes.txt are not read"
    );
    assert_eq!(
        ids(&loaded.snapshot.keys()),
        [
            "Configuration liqo-tenant-cl02/cl02",
            "Configuration liqo-tenant-cl03/cl03",
            "GatewayServer liqo-tenant-cl03/cl03",
            "GatewayClient liqo-tenant-cl02/cl02",
            "PublicKey liqo-tenant-cl02/cl02",
            "PublicKey liqo-tenant-cl03/cl03",
            "InternalNode cl01-n1",
            "InternalNode cl01-n2",
            "InternalFabric liqo-tenant-cl02/cl02",
            "InternalFabric liqo-tenant-cl03/cl03",
            "IP liqo/api-server",
            "IP liqo/pending",
            "Node cl01-n1",
            "Node cl01-n2",
        ]
    );
    assert_eq!(
        loaded.origins[&(Kind::GatewayServer, Key::new("liqo-tenant-cl03", "cl03"))],
        dir.join("tenant-cl03/cl03.yml")
    );
    let ignored: Vec<_> = loaded
        .ignored
        .iter()
        .map(|i| format!("{} {} {}", i.file.display(), i.api_version, i.kind))
        .collect();
    let other = dir.join("other-kinds.yaml");
    assert_eq!(
        ignored,
        [
            format!("{} networking.liqo.io/v1beta1 Connection", other.display()),
            format!("{} v1 ConfigMap", other.display()),
        ]
    );
    let client = &loaded.snapshot.gateway_clients[&Key::new("liqo-tenant-cl02", "cl02")];
    assert_eq!(client.spec.endpoint.port, Some(32701));
    assert!(loaded.kept.is_empty());
}

#[test]
fn bad_objects_are_reported_with_file_object_and_field_and_skipped() {
    let dir = fixture("bad");
    let loaded = load_dir(&dir, validator()).unwrap();
    assert!(loaded.snapshot.is_empty(), "nothing bad is loaded");
    let broken = dir.join("broken.yaml");
    let objects = dir.join("objects.yaml");
    let summary: Vec<_> = loaded
        .problems
        .iter()
        .map(|p| {
            (
                p.file.clone(),
                p.object.as_ref().map(|(k, key)| format!("{k} {key}")),
                p.fields(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (broken.clone(), None, vec![]),
            (
                objects.clone(),
                Some("GatewayServer liqo-tenant-cl03/cl03".to_owned()),
                vec!["spec.endpoint.port", "spec.mtu"]
            ),
            (
                objects.clone(),
                Some("Node cl01-n2".to_owned()),
                vec!["spec.podCIDRs[1]", "status.addresses[0].address"]
            ),
            (
                objects.clone(),
                Some("PublicKey liqo-tenant-cl02/cl02".to_owned()),
                vec!["spec.publicKey"]
            ),
            (objects.clone(), None, vec![]),
        ]
    );
    assert!(matches!(loaded.problems[0].error, ManifestError::Yaml(_)));
    assert_eq!(
        loaded.problems[2].to_string(),
        format!(
            "{}: Node cl01-n2: spec.podCIDRs[1]: must be a CIDR such as 10.0.1.0/24; \
             status.addresses[0].address: must be an IPv4 or IPv6 address",
            objects.display()
        )
    );
    assert_eq!(
        loaded.problems[4].to_string(),
        format!(
            "{}: not a Kubernetes object: apiVersion and kind are required",
            objects.display()
        )
    );
    assert!(
        loaded.problems[3].to_string().starts_with(&format!(
            "{}: PublicKey liqo-tenant-cl02/cl02: spec.publicKey: ",
            objects.display()
        )),
        "{}",
        loaded.problems[3]
    );
}

#[test]
fn duplicates_keep_the_first_definition() {
    let tmp = TempDir::new("duplicates");
    let ip = |addr: &str| {
        format!(
            "apiVersion: ipam.liqo.io/v1alpha1\nkind: IP\nmetadata: {{name: a, namespace: liqo}}\n\
             spec: {{ip: {addr}}}\n"
        )
    };
    tmp.write("a.yaml", &ip("10.0.0.1"));
    tmp.write("b.yaml", &ip("10.0.0.2"));
    let loaded = load_dir(&tmp.0, validator()).unwrap();
    let key = Key::new("liqo", "a");
    assert_eq!(loaded.snapshot.ips[&key].spec.ip.to_string(), "10.0.0.1");
    assert_eq!(loaded.problems.len(), 1);
    assert_eq!(
        loaded.problems[0].to_string(),
        format!(
            "{}: IP liqo/a: already defined in {}",
            tmp.0.join("b.yaml").display(),
            tmp.0.join("a.yaml").display()
        )
    );
}

const CLIENT: &str = "apiVersion: networking.liqo.io/v1beta1
kind: GatewayClient
metadata: {name: cl02, namespace: t}
spec:
  endpoint: {addresses: [172.19.0.9], port: 32701}
  mtu: MTU
";
const NODE: &str = "apiVersion: v1
kind: Node
metadata: {name: n1}
spec: {podCIDR: 10.0.0.0/24}
";

#[test]
fn source_polls_changes_and_keeps_the_last_good_state() {
    let tmp = TempDir::new("source");
    tmp.write("client.yaml", &CLIENT.replace("MTU", "1340"));
    tmp.write("node.yaml", NODE);
    let mut source = Source::new(&tmp.0, ManifestValidator::for_api().unwrap());
    let key = Key::new("t", "cl02");
    let mtu = |l: &Loaded| {
        l.snapshot
            .gateway_clients
            .get(&key)
            .and_then(|c| c.spec.mtu)
    };

    let first = source
        .poll()
        .unwrap()
        .expect("the first poll always yields");
    assert_eq!((mtu(first), first.snapshot.len()), (Some(1340), 2));
    assert!(source.poll().unwrap().is_none(), "nothing changed");

    // The client becomes invalid: the previous version stays, the problem is reported.
    tmp.write("client.yaml", &CLIENT.replace("MTU", "100"));
    let bad = source.poll().unwrap().expect("a file changed");
    assert_eq!(mtu(bad), Some(1340));
    assert_eq!(ids(&bad.kept), ["GatewayClient t/cl02"]);
    assert_eq!(bad.problems[0].fields(), ["spec.mtu"]);

    // Still bad at the next change: still kept (from the kept state).
    tmp.write("node.yaml", &NODE.replace("10.0.0.0/24", "10.0.9.0/24"));
    let still = source.poll().unwrap().expect("a file changed");
    assert_eq!(mtu(still), Some(1340));
    assert_eq!(ids(&still.kept), ["GatewayClient t/cl02"]);
    assert_eq!(
        still.snapshot.nodes[&Key::cluster("n1")]
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.as_deref()),
        Some("10.0.9.0/24")
    );

    // A file that no longer parses keeps every object it held.
    tmp.write("node.yaml", "kind: [\n");
    let broken = source.poll().unwrap().expect("a file changed");
    assert!(broken.snapshot.nodes.contains_key(&Key::cluster("n1")));
    assert_eq!(ids(&broken.kept), ["GatewayClient t/cl02", "Node n1"]);

    // Fixed: the new version applies.
    tmp.write("client.yaml", &CLIENT.replace("MTU", "1400"));
    let fixed = source.poll().unwrap().expect("a file changed");
    assert_eq!(mtu(fixed), Some(1400));
    assert_eq!(ids(&fixed.kept), ["Node n1"]);

    // Deleted: gone (deletion is not an error).
    fs::remove_file(tmp.0.join("node.yaml")).unwrap();
    fs::remove_file(tmp.0.join("client.yaml")).unwrap();
    let gone = source.poll().unwrap().expect("files removed");
    assert!(gone.snapshot.is_empty());
    assert!(gone.problems.is_empty() && gone.kept.is_empty());
}

#[test]
fn status_is_written_atomically_and_never_read_back() {
    use clusterwire_api::networking::{
        Connection,
        connection::{ConnectionSpec, ConnectionStatus, ConnectionStatusValue, ConnectionType},
    };
    let tmp = TempDir::new("status");
    tmp.write("node.yaml", NODE);
    let mut source = Source::new(&tmp.0, ManifestValidator::for_api().unwrap());
    assert!(source.poll().unwrap().is_some());

    let mut connection = Connection::new(
        "gw-cl02",
        ConnectionSpec {
            type_: ConnectionType::Client,
            ..ConnectionSpec::default()
        },
    );
    connection.metadata.namespace = Some("liqo-tenant-cl02".to_owned());
    connection.status = Some(ConnectionStatus {
        value: Some(ConnectionStatusValue::Connected),
        ..ConnectionStatus::default()
    });
    let path = write_status(&tmp.0, &connection).unwrap();
    assert_eq!(
        path,
        tmp.0
            .join("status/connection-liqo-tenant-cl02-gw-cl02.yaml")
    );
    let entries: Vec<_> = fs::read_dir(tmp.0.join("status"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        entries,
        ["connection-liqo-tenant-cl02-gw-cl02.yaml"],
        "no temp file left"
    );
    let back: Connection = serde_saphyr::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(back, connection);
    let validator = validator();
    let value = serde_json::to_value(&back).unwrap();
    assert_eq!(
        validator.validate(&value),
        Ok(()),
        "the status file is a valid object"
    );

    assert!(source.poll().unwrap().is_none(), "status/ is not input");
    assert_eq!(
        status_path(Path::new("/d"), "InternalNode", None, "n1"),
        Path::new("/d/status/internalnode-n1.yaml")
    );
}
