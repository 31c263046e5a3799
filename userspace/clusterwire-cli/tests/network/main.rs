//! `cwctl network connect | disconnect | reset` against two fake API servers (one per cluster,
//! `fake.rs`): the objects written on each side, in order, with the waits between them; an
//! unreachable cluster, missing CRDs, a timeout and a refused confirmation each give their
//! message and exit status, and a failure lists what it left in place. `info.rs`: `cwctl info`
//! against one fake; `create.rs`: `cwctl create` applying to one fake.

mod create;
mod fake;
mod info;

use std::{
    io::Write as _,
    path::PathBuf,
    process::{Command, Stdio},
};

use fake::{Behaviour, Fake};
use serde_json::json;

const NET: &str = "/apis/networking.liqo.io/v1beta1";

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// A kubeconfig for `url` in a file of its own (tests run in parallel).
fn kubeconfig(tag: &str, url: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("cwctl-network-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{tag}-{n}.yaml"));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {url}\n\
         users:\n- name: u\n  user: {{}}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    \
         user: u\ncurrent-context: x\n"
    );
    std::fs::write(&path, text).expect("kubeconfig");
    path
}

fn cwctl(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cwctl"))
        .args(args)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cwctl");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().expect("wait");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn behaviour(key: u8) -> Behaviour {
    Behaviour {
        crds: true,
        controller: true,
        key: [key; 32],
    }
}

/// Two fakes (local cl01, remote cl02) and the base arguments of `verb`.
fn pair(verb: &str, local: Behaviour, remote: Behaviour) -> (Fake, Fake, Vec<String>) {
    let l = Fake::start("cl01", local);
    let r = Fake::start("cl02", remote);
    let args = vec![
        "network".to_owned(),
        verb.to_owned(),
        "--kubeconfig".to_owned(),
        kubeconfig(&format!("{verb}-local"), &l.url)
            .display()
            .to_string(),
        "--remote-kubeconfig".to_owned(),
        kubeconfig(&format!("{verb}-remote"), &r.url)
            .display()
            .to_string(),
    ];
    // The local cluster publishes its pod CIDR as a Network; the remote one gets a flag.
    l.put(
        "/apis/ipam.liqo.io/v1alpha1/namespaces/clusterwire/networks/pod-cidr",
        json!({"apiVersion": "ipam.liqo.io/v1alpha1", "kind": "Network",
               "metadata": {"name": "pod-cidr", "namespace": "clusterwire",
                            "labels": {"ipam.liqo.io/network-type": "pod-cidr"}},
               "spec": {"cidr": "10.243.0.0/16"}}),
    );
    (l, r, args)
}

fn run(args: &[String], extra: &[&str], stdin: &str) -> Run {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend_from_slice(extra);
    cwctl(&all, stdin)
}

/// Position of the first log entry equal to `entry` at or after `from`.
fn position(log: &[String], entry: &str, from: usize) -> usize {
    log.iter().skip(from).position(|l| l == entry).map_or_else(
        || panic!("no {entry:?} after #{from} in {log:#?}"),
        |i| i + from,
    )
}

/// What `connect` prints, in order, one line per step.
const EXPECTED_CONNECT: &[&str] = &[
    "(local) Cluster identity correctly retrieved: cl01",
    "(remote) Cluster identity correctly retrieved: cl02",
    "(local) Tenant namespace liqo-tenant-cl02 created",
    "(remote) Tenant namespace liqo-tenant-cl01 created",
    "(local) Network configuration correctly retrieved: pod 10.243.0.0/16, external 10.70.0.0/16",
    "(remote) Network configuration correctly retrieved: pod 10.243.0.0/16, external 10.70.0.0/16",
    "(local) Network configuration correctly set up: Configuration liqo-tenant-cl02/cl02",
    "(remote) Network configuration correctly set up: Configuration liqo-tenant-cl01/cl01",
    "(local) Configuration applied successfully: cl02's pods reached at 10.71.0.0/16",
    "(remote) Configuration applied successfully: cl01's pods reached at 10.71.0.0/16",
    "(remote) Gateway template \"wireguard-server/clusterwire\" correctly checked",
    "(local) Gateway template \"wireguard-client/clusterwire\" correctly checked",
    "(remote) Gateway server correctly set up: GatewayServer liqo-tenant-cl01/cl01",
    "(remote) Gateway server endpoint ready: 172.19.0.9:32701",
    "(local) Gateway client correctly set up: GatewayClient liqo-tenant-cl02/cl02",
    "(remote) Gateway public key read from Secret liqo-tenant-cl01/gw-cl01",
    "(local) Public key correctly created: PublicKey liqo-tenant-cl02/cl02",
    "(local) Gateway public key read from Secret liqo-tenant-cl02/gw-cl02",
    "(remote) Public key correctly created: PublicKey liqo-tenant-cl01/cl01",
    "(remote) Connection is established: Connection liqo-tenant-cl01/gw-cl01",
    "(local) Connection is established: Connection liqo-tenant-cl02/gw-cl02",
];

#[test]
fn connect_writes_each_object_in_order_and_waits_between() {
    let (l, r, args) = pair("connect", behaviour(1), behaviour(2));
    let out = run(
        &args,
        &[
            "--remote-pod-cidr",
            "10.243.0.0/16",
            "--gw-server-service-type",
            "NodePort",
            "--wait",
            "--timeout",
            "30s",
        ],
        "",
    );
    assert_eq!(
        out.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );

    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        &lines[..EXPECTED_CONNECT.len()],
        EXPECTED_CONNECT,
        "{}",
        out.stdout
    );
    assert!(
        lines[EXPECTED_CONNECT.len()].starts_with("done in "),
        "{}",
        out.stdout
    );

    let tenant = |peer: &str| format!("{NET}/namespaces/liqo-tenant-{peer}");
    assert_eq!(
        l.writes(),
        [
            "POST /api/v1/namespaces".to_owned(),
            format!("PATCH {}/configurations/cl02", tenant("cl02")),
            format!("PATCH {}/gatewayclients/cl02", tenant("cl02")),
            format!("PATCH {}/publickeies/cl02", tenant("cl02")),
        ]
    );
    assert_eq!(
        r.writes(),
        [
            "POST /api/v1/namespaces".to_owned(),
            format!("PATCH {}/configurations/cl01", tenant("cl01")),
            format!("PATCH {}/gatewayservers/cl01", tenant("cl01")),
            format!("PATCH {}/publickeies/cl01", tenant("cl01")),
        ]
    );
    // The waits: the remap is read back after the Configuration is applied, the endpoint
    // after the GatewayServer, the Connection after the keys.
    let log = r.log();
    let conf = position(
        &log,
        &format!("PATCH {}/configurations/cl01", tenant("cl01")),
        0,
    );
    position(
        &log,
        &format!("GET {}/configurations/cl01", tenant("cl01")),
        conf + 1,
    );
    let server = position(
        &log,
        &format!("PATCH {}/gatewayservers/cl01", tenant("cl01")),
        0,
    );
    position(
        &log,
        &format!("GET {}/gatewayservers/cl01", tenant("cl01")),
        server + 1,
    );
    position(
        &log,
        "GET /api/v1/namespaces/liqo-tenant-cl01/secrets/gw-cl01",
        server + 1,
    );
    let key = position(
        &log,
        &format!("PATCH {}/publickeies/cl01", tenant("cl01")),
        0,
    );
    position(
        &log,
        &format!("GET {}/connections/gw-cl01", tenant("cl01")),
        key + 1,
    );

    check_objects(&l, &r);
    check_reset(&l, &r, &args);
}

#[test]
fn a_timeout_exits_3_naming_the_step_and_what_it_left() {
    let stuck = Behaviour {
        controller: false,
        ..behaviour(1)
    };
    let (_l, _r, args) = pair("connect", stuck, behaviour(2));
    let out = run(
        &args,
        &["--remote-pod-cidr", "10.243.0.0/16", "--timeout", "2s"],
        "",
    );
    assert_eq!(
        out.code,
        Some(3),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "timed out after 2s while (local) waiting for Configuration liqo-tenant-cl02/cl02 \
             to be remapped"
        ),
        "{}",
        out.stderr
    );
    for left in [
        "(local) Namespace liqo-tenant-cl02",
        "(remote) Namespace liqo-tenant-cl01",
        "(local) Configuration liqo-tenant-cl02/cl02",
        "(remote) Configuration liqo-tenant-cl01/cl01",
    ] {
        assert!(
            out.stderr.contains(left),
            "{left} not listed:\n{}",
            out.stderr
        );
    }
    assert!(out.stderr.contains("cwctl network reset"), "{}", out.stderr);
}

#[test]
fn missing_crds_fail_before_anything_is_written() {
    let no_crds = Behaviour {
        crds: false,
        ..behaviour(2)
    };
    let (l, r, args) = pair("connect", behaviour(1), no_crds);
    let out = run(&args, &["--remote-pod-cidr", "10.243.0.0/16"], "");
    assert_eq!(
        out.code,
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr
            .contains("(remote) the API networking.liqo.io/v1beta1 is not served"),
        "{}",
        out.stderr
    );
    assert!(l.writes().is_empty() && r.writes().is_empty());
    assert!(!out.stderr.contains("left in place"), "{}", out.stderr);
}

#[test]
fn an_unreachable_cluster_exits_1_with_its_address() {
    let (_l, _r, mut args) = pair("connect", behaviour(1), behaviour(2));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    args[5] = kubeconfig("unreachable", &url).display().to_string();
    let out = run(&args, &["--remote-pod-cidr", "10.243.0.0/16"], "");
    assert_eq!(
        out.code,
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr
            .contains("(remote) cannot reach the API server at"),
        "{}",
        out.stderr
    );
}

#[test]
fn disconnect_not_confirmed_exits_4_and_touches_nothing() {
    let (l, r, args) = pair("disconnect", behaviour(1), behaviour(2));
    let out = run(&args, &[], "n\n");
    assert_eq!(
        out.code,
        Some(4),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains("disconnect not confirmed"),
        "{}",
        out.stderr
    );
    assert!(l.log().is_empty() && r.log().is_empty());
    let out = run(&args, &[], "");
    assert_eq!(out.code, Some(4), "end of input is no: {}", out.stderr);
}

#[test]
fn disconnect_with_yes_deletes_only_gateways() {
    let (l, r, args) = pair("disconnect", behaviour(1), behaviour(2));
    let out = run(&args, &["--yes"], "");
    assert_eq!(
        out.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    for fake in [&l, &r] {
        let writes = fake.writes();
        assert_eq!(writes.len(), 2, "{writes:?}");
        assert!(writes.iter().all(|w| w.contains("/gateway")), "{writes:?}");
    }
}

/// The objects `connect` wrote, field by field.
fn check_objects(l: &Fake, r: &Fake) {
    let tenant = |peer: &str| format!("{NET}/namespaces/liqo-tenant-{peer}");
    // What was written.
    let gws = r
        .object(&format!("{}/gatewayservers/cl01", tenant("cl01")))
        .expect("server");
    assert_eq!(
        gws["spec"]["endpoint"],
        json!({"port": 51840, "serviceType": "NodePort"})
    );
    assert_eq!(gws["spec"]["mtu"], json!(1340));
    assert_eq!(
        gws["metadata"]["labels"]["liqo.io/remote-cluster-id"],
        json!("cl01")
    );
    let gwc = l
        .object(&format!("{}/gatewayclients/cl02", tenant("cl02")))
        .expect("client");
    assert_eq!(
        gwc["spec"]["endpoint"],
        json!({"addresses": ["172.19.0.9"], "port": 32701, "protocol": "UDP"})
    );
    let conf = r
        .object(&format!("{}/configurations/cl01", tenant("cl01")))
        .expect("conf");
    assert_eq!(
        conf["spec"]["remote"]["cidr"],
        json!({"pod": ["10.243.0.0/16"], "external": ["10.70.0.0/16"]})
    );
    let pk = l
        .object(&format!("{}/publickeies/cl02", tenant("cl02")))
        .expect("key");
    let server_key = clusterwire_links::wireguard::PublicKey::from_bytes([2; 32]);
    assert_eq!(pk["spec"]["publicKey"], json!(server_key.to_base64()));
    assert_eq!(
        pk["metadata"]["ownerReferences"][0]["kind"],
        json!("GatewayClient")
    );
    assert_eq!(
        pk["metadata"]["ownerReferences"][0]["uid"],
        gwc["metadata"]["uid"]
    );
}

/// `reset` after `connect`: gateways of both orientations, then Configurations, after a "yes".
fn check_reset(l: &Fake, r: &Fake, args: &[String]) {
    let tenant = |peer: &str| format!("{NET}/namespaces/liqo-tenant-{peer}");
    let (lr, rr) = (l.log().len(), r.log().len());
    let mut reset = args.to_vec();
    "reset".clone_into(&mut reset[1]);
    let out = run(&reset, &[], "yes\n");
    assert_eq!(
        out.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr
            .contains("reset is a potentially destructive command"),
        "{}",
        out.stderr
    );
    let deletes = |fake: &Fake, from: usize| -> Vec<String> {
        fake.log()[from..]
            .iter()
            .filter(|e| e.starts_with("DELETE"))
            .cloned()
            .collect()
    };
    assert_eq!(
        deletes(l, lr),
        [
            format!("DELETE {}/gatewayclients/cl02", tenant("cl02")),
            format!("DELETE {}/gatewayservers/cl02", tenant("cl02")),
            format!("DELETE {}/configurations/cl02", tenant("cl02")),
        ]
    );
    assert_eq!(
        deletes(r, rr),
        [
            format!("DELETE {}/gatewayclients/cl01", tenant("cl01")),
            format!("DELETE {}/gatewayservers/cl01", tenant("cl01")),
            format!("DELETE {}/configurations/cl01", tenant("cl01")),
        ]
    );
    assert!(
        out.stdout.contains(
            "(local) Gateway client correctly deleted: GatewayClient liqo-tenant-cl02/cl02"
        ) && out.stdout.contains(
            "(remote) Gateway client not found, nothing to delete: GatewayClient liqo-tenant-cl01/cl01"
        ),
        "{}",
        out.stdout
    );
}
