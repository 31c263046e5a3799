//! `cwctl generate` and `cwctl create`: golden files for what they print and for the `--help`
//! of every verb (`UPDATE_GOLDEN=1 cargo test -p clusterwire-cli --test manifests` rewrites
//! them), the printed objects checked against the CRD schemas and against the shapes of seed 004
//! (the reference's user guide), and clear failures for what cannot work yet.

use std::{path::PathBuf, process::Command};

use clusterwire_api::{
    networking::{Configuration, GatewayClient, GatewayServer, PublicKey},
    validation::ManifestValidator,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The base64 of bytes 1..=32, the key the seed 004 examples are filled with.
const SEED_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

struct Out {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn cwctl(args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_cwctl"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .expect("run cwctl");
    Out {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `actual` with `tests/golden/<file>`, or rewrites the file with `UPDATE_GOLDEN=1`.
fn golden(file: &str, actual: &str) {
    let path = golden_dir().join(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with UPDATE_GOLDEN=1 cargo test -p clusterwire-cli --test manifests",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "output differs from {} (if the change is intended, rerun with UPDATE_GOLDEN=1 and \
         review the diff)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// Every printing command, with its golden file.
const CASES: &[(&str, &[&str])] = &[
    (
        "generate-configuration.yaml",
        &[
            "generate",
            "configuration",
            "--cluster-id",
            "cl01",
            "--pod-cidr",
            "10.243.0.0/16",
            "--external-cidr",
            "10.70.0.0/16",
        ],
    ),
    (
        "generate-configuration.json",
        &[
            "generate",
            "configuration",
            "--cluster-id",
            "cl01",
            "--pod-cidr",
            "10.243.0.0/16,10.244.0.0/16",
            "--external-cidr",
            "10.70.0.0/16",
            "-o",
            "json",
        ],
    ),
    (
        "generate-publickey.yaml",
        &[
            "generate",
            "publickey",
            "--gateway-type",
            "client",
            "--gateway-name",
            "client",
            "--cluster-id",
            "cl01",
            "--public-key",
            SEED_KEY,
        ],
    ),
    (
        "create-configuration.yaml",
        &[
            "create",
            "configuration",
            "dry-paper",
            "--remote-cluster-id",
            "cl02",
            "--pod-cidr",
            "10.243.0.0/16",
            "--external-cidr",
            "10.70.0.0/16",
            "-o",
            "yaml",
        ],
    ),
    (
        "create-gatewayserver.yaml",
        &[
            "create",
            "gatewayserver",
            "server",
            "--remote-cluster-id",
            "cl01",
            "--service-type",
            "NodePort",
            "-o",
            "yaml",
        ],
    ),
    (
        "create-gatewayserver-loadbalancer.yaml",
        &[
            "create",
            "gatewayserver",
            "server",
            "-n",
            "liqo-tenant-cl01",
            "--remote-cluster-id",
            "cl01",
            "--node-port",
            "31840",
            "--load-balancer-ip",
            "203.0.113.7",
            "--mtu",
            "1400",
            "-o",
            "yaml",
        ],
    ),
    (
        "create-gatewayclient.yaml",
        &[
            "create",
            "gatewayclient",
            "client",
            "--remote-cluster-id",
            "cl02",
            "--addresses",
            "172.19.0.9",
            "--port",
            "32701",
            "-o",
            "yaml",
        ],
    ),
    (
        "create-gatewayclient.json",
        &[
            "create",
            "gatewayclient",
            "client",
            "--remote-cluster-id",
            "cl02",
            "--addresses",
            "gw.example.org,172.19.0.9",
            "--port",
            "32701",
            "-o",
            "json",
        ],
    ),
    (
        "create-publickey.yaml",
        &[
            "create",
            "publickey",
            "cl02",
            "--remote-cluster-id",
            "cl02",
            "--public-key",
            SEED_KEY,
            "-o",
            "yaml",
        ],
    ),
];

/// Every new verb whose `--help` is kept as a golden file.
const HELP: &[&[&str]] = &[
    &["generate"],
    &["generate", "configuration"],
    &["generate", "publickey"],
    &["create"],
    &["create", "configuration"],
    &["create", "gatewayserver"],
    &["create", "gatewayclient"],
    &["create", "publickey"],
];

fn parse(file: &str, text: &str) -> Value {
    if std::path::Path::new(file)
        .extension()
        .is_some_and(|e| e == "json")
    {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{file}: not JSON: {e}\n{text}"))
    } else {
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{file}: not YAML: {e}\n{text}"))
    }
}

fn validator() -> ManifestValidator {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../crds");
    let texts: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    ManifestValidator::from_yaml(texts.iter().map(String::as_str)).expect("CRDs compile")
}

#[test]
fn printed_objects_match_their_golden_files_and_the_crd_schemas() {
    let validator = validator();
    for (file, args) in CASES {
        let out = cwctl(args);
        assert!(out.ok, "cwctl {args:?} failed:\n{}", out.stderr);
        golden(file, &out.stdout);
        let value = parse(file, &out.stdout);
        if let Err(violations) = validator.validate(&value) {
            panic!("{file} does not validate against crds/: {violations}");
        }
    }
}

#[test]
fn help_of_every_verb_matches_its_golden_file() {
    for verb in HELP {
        let mut args = verb.to_vec();
        args.push("--help");
        let out = cwctl(&args);
        assert!(out.ok, "cwctl {args:?} failed:\n{}", out.stderr);
        golden(&format!("help-{}.txt", verb.join("-")), &out.stdout);
    }
}

fn seed<T: DeserializeOwned>(name: &str) -> T {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../clusterwire-api/tests/seed004")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn printed<T: DeserializeOwned>(args: &[&str]) -> T {
    let out = cwctl(args);
    assert!(out.ok, "cwctl {args:?} failed:\n{}", out.stderr);
    serde_saphyr::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", out.stdout))
}

/// The commands seed 004 gives for each of its examples print the same object (the seed's
/// `GatewayServer` has no namespace and its templates live in `liqo`, so those two are set to the
/// seed's; its scalar CIDRs are the one-element lists the API normalizes them to).
#[test]
fn the_commands_of_seed_004_print_its_examples() {
    let mut server: GatewayServer = printed(&[
        "create",
        "gatewayserver",
        "server",
        "--remote-cluster-id",
        "cl01",
        "--service-type",
        "NodePort",
        "--template-namespace",
        "liqo",
        "-o",
        "yaml",
    ]);
    server.metadata.namespace = None;
    assert_eq!(server, seed::<GatewayServer>("gatewayserver.yaml"));

    let client: GatewayClient = printed(&[
        "create",
        "gatewayclient",
        "client",
        "--remote-cluster-id",
        "cl02",
        "--addresses",
        "172.19.0.9",
        "--port",
        "32701",
        "--template-namespace",
        "liqo",
        "-o",
        "yaml",
    ]);
    assert_eq!(client, seed::<GatewayClient>("gatewayclient.yaml"));

    let mut conf: Configuration = printed(&[
        "create",
        "configuration",
        "dry-paper",
        "--remote-cluster-id",
        "cl02",
        "--pod-cidr",
        "10.243.0.0/16",
        "--external-cidr",
        "10.70.0.0/16",
        "-o",
        "yaml",
    ]);
    conf.metadata.namespace = None;
    assert_eq!(conf, seed::<Configuration>("configuration.yaml"));

    for (local, file) in [
        ("cl01", "publickey-client.yaml"),
        ("cl02", "publickey-server.yaml"),
    ] {
        let key: PublicKey = printed(&[
            "generate",
            "publickey",
            "--gateway-type",
            "client",
            "--gateway-name",
            "client",
            "--cluster-id",
            local,
            "--public-key",
            SEED_KEY,
        ]);
        assert_eq!(key, seed::<PublicKey>(file), "{file}");
    }
}

#[test]
fn a_private_key_file_prints_its_public_half_only() {
    let dir = std::env::temp_dir().join(format!("cwctl-manifests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("privateKey");
    let private: [u8; 32] = std::array::from_fn(|i| u8::try_from(i).unwrap() + 1);
    std::fs::write(&path, private).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = cwctl(&[
        "generate",
        "publickey",
        "--cluster-id",
        "cl01",
        "--private-key-file",
        path.to_str().unwrap(),
        "-o",
        "json",
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.ok, "{}", out.stderr);
    let value: Value = serde_json::from_str(&out.stdout).unwrap();
    let public = value["spec"]["publicKey"].as_str().unwrap();
    assert_eq!(public.len(), 44);
    assert_ne!(public, SEED_KEY, "the private key must never be printed");
}

/// (arguments, exit code, words the message must contain)
const FAILURES: &[(&[&str], i32, &[&str])] = &[
    (
        &[
            "create",
            "gatewayserver",
            "s",
            "--remote-cluster-id",
            "cl01",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
        ],
        1,
        &["kubeconfig /nonexistent/kubeconfig", "No such file"],
    ),
    (
        &["generate", "configuration", "--pod-cidr", "10.0.0.0/16"],
        1,
        &["--cluster-id"],
    ),
    (
        &["generate", "publickey", "--cluster-id", "cl01"],
        1,
        &["--public-key or --private-key-file"],
    ),
    (
        &[
            "create",
            "publickey",
            "p",
            "--remote-cluster-id",
            "c",
            "--public-key",
            "abc",
            "-o",
            "yaml",
        ],
        1,
        &["base64 of 32 bytes"],
    ),
    (
        &[
            "create",
            "gatewayserver",
            "s",
            "--remote-cluster-id",
            "c",
            "--service-type",
            "ClusterIP",
            "--node-port",
            "30000",
            "-o",
            "yaml",
        ],
        1,
        &["--node-port needs --service-type NodePort or LoadBalancer"],
    ),
    (
        &[
            "create",
            "gatewayserver",
            "s",
            "--remote-cluster-id",
            "c",
            "--service-type",
            "NodePort",
            "--load-balancer-ip",
            "10.0.0.1",
            "-o",
            "yaml",
        ],
        1,
        &["--load-balancer-ip needs --service-type LoadBalancer"],
    ),
    (
        &[
            "create",
            "gatewayserver",
            "s",
            "--remote-cluster-id",
            "c",
            "--mtu",
            "100",
        ],
        2,
        &["576..=9000"],
    ),
    (
        &[
            "create",
            "gatewayserver",
            "s",
            "--remote-cluster-id",
            "c",
            "--service-type",
            "Magic",
        ],
        2,
        &["NodePort", "LoadBalancer"],
    ),
    (
        &[
            "create",
            "gatewayclient",
            "c",
            "--remote-cluster-id",
            "s",
            "--port",
            "1",
        ],
        2,
        &["--addresses"],
    ),
    (
        &[
            "create",
            "configuration",
            "Bad_Name",
            "--remote-cluster-id",
            "c",
        ],
        2,
        &["not a valid name"],
    ),
    (
        &[
            "create",
            "configuration",
            "c",
            "--remote-cluster-id",
            "r",
            "--pod-cidr",
            "10.0.0.0/33",
        ],
        2,
        &["--pod-cidr"],
    ),
];

#[test]
fn bad_flags_and_missing_support_fail_clearly_without_panicking() {
    for (args, code, words) in FAILURES {
        let out = cwctl(args);
        assert_eq!(out.code, Some(*code), "cwctl {args:?}:\n{}", out.stderr);
        assert!(
            out.stdout.is_empty(),
            "cwctl {args:?} printed:\n{}",
            out.stdout
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        for word in *words {
            assert!(out.stderr.contains(word), "no {word:?} in:\n{}", out.stderr);
        }
    }
}
