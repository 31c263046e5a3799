//! `cwctl create` without `-o`: the object is server-side applied to the cluster of
//! `--kubeconfig`, exactly the object `-o json` prints; an unreachable cluster exits 1 naming it;
//! `-o` with `--kubeconfig` is refused by the parser.

use serde_json::Value;

use super::{NET, cwctl, fake::Fake, kubeconfig};

const ARGS: &[&str] = &[
    "create",
    "configuration",
    "cl02",
    "-n",
    "liqo-tenant-cl02",
    "--remote-cluster-id",
    "cl02",
    "--pod-cidr",
    "10.243.0.0/16",
    "--external-cidr",
    "10.70.0.0/16",
];

#[test]
fn create_without_output_applies_the_printed_object() {
    let fake = Fake::start("cl01", super::behaviour(1));
    let config = kubeconfig("create", &fake.url).display().to_string();
    let mut args = ARGS.to_vec();
    args.extend(["--kubeconfig", &config]);
    let out = cwctl(&args, "");
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let path = format!("{NET}/namespaces/liqo-tenant-cl02/configurations/cl02");
    assert_eq!(fake.writes(), [format!("PATCH {path}")]);

    let mut printed = ARGS.to_vec();
    printed.extend(["-o", "json"]);
    let printed = cwctl(&printed, "");
    assert_eq!(printed.code, Some(0), "{}", printed.stderr);
    let printed: Value = serde_json::from_str(&printed.stdout).expect("json");
    let stored = fake.object(&path).expect("applied object");
    for field in ["apiVersion", "kind", "spec"] {
        assert_eq!(stored[field], printed[field], "{field}");
    }
    assert_eq!(stored["metadata"]["labels"], printed["metadata"]["labels"]);
}

#[test]
fn create_against_an_unreachable_cluster_exits_1_with_its_address() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let config = kubeconfig("create-unreachable", &url).display().to_string();
    let mut args = ARGS.to_vec();
    args.extend(["--kubeconfig", &config]);
    let out = cwctl(&args, "");
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("cannot reach the API server at"),
        "{}",
        out.stderr
    );
}

#[test]
fn output_and_kubeconfig_exclude_each_other() {
    let mut args = ARGS.to_vec();
    args.extend(["-o", "yaml", "--kubeconfig", "/nonexistent"]);
    let out = cwctl(&args, "");
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);
}
