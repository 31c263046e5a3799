//! `cargo xtask bench converge`: convergence of the real daemons at scale (issue 11, item 2).
//!
//! Generates Liqo manifests for one cluster of `CW_CONVERGE_NODES` nodes (default 5,000: a core
//! `Node` with its pod CIDR sized for `CW_CONVERGE_PODS` pods in all, default 100,000, an
//! `InternalNode` and an `IP` each) and `CW_CONVERGE_PEERINGS` peerings (default 1,000: a
//! `Configuration` with remaps, a `GatewayServer` or `GatewayClient`, a `PublicKey` and an
//! `InternalFabric` each), laid out as the lab writes them. Then, in two network namespaces it
//! creates (a node and the pod of peering 0's gateway, joined by a veth underlay), it runs the
//! release `clusterwire-gateway` (server of peering 0, embedded userspace WireGuard) and
//! `clusterwire-agent` (node 0) with the daemons' default `--poll-ms` (500: a change wakes them
//! through inotify; the poll is the fallback) and measures:
//!
//! - cold start: process start until the "applied" log line, with the kernel routes checked
//!   (`ip route show proto 203`) against the count the manifests imply;
//! - restart: `kill -9`, the daemon's routes and nexthops flushed (the pinned maps stay), start
//!   again, until "applied" with every route back;
//! - one change: a node joining (a new file with its `Node`, `InternalNode` and `IP`: two routes
//!   on the gateway) and a peering added (a new tenant file: two routes on the agent), from the
//!   file's rename into the directory until the route is in the kernel;
//! - the CPU both daemons use over 5 s while nothing changes (polls, and their periodic full
//!   re-applies: the agent's every 5 s, the gateway's every 30 s if it falls in the window),
//!   and `VmRSS` and `VmHWM` after that.
//!
//! Targets (reported, not asserted): one change <= 100 ms, full resync <= 1 s, gateway RSS
//! <= 50 MB. A daemon that fails (apply errors, timeouts) is reported with its log lines.
//! Everything created (namespaces, pinned instances, the temporary directory) is removed at the
//! end, on failure too.
use std::{
    fmt::Write as _,
    fs,
    io::{Read as _, Seek as _, SeekFrom},
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::cmd;

const NETWORKING: &str = "networking.liqo.io/v1beta1";
const REMOTE_ID: &str = "liqo.io/remote-cluster-id";
const MTU: u16 = 1340;
const WIREGUARD_PORT: u16 = 51840;
/// The daemons' default: changes wake them through inotify, the poll is the fallback.
const POLL_MS: &str = "500";
/// Repetitions of each one-change measurement.
const CHANGES: u32 = 3;
/// How long a daemon may take to converge before it is reported as timed out.
const TIMEOUT: Duration = Duration::from_mins(2);
/// How long the daemons' CPU use is sampled while nothing changes.
const IDLE: Duration = Duration::from_secs(5);
/// Nodes per manifest file (the lab puts all in one; real `ConfigMap` mounts split).
const NODES_PER_FILE: u32 = 250;

/// The size of the generated cluster.
#[derive(Debug, Clone, Copy)]
struct Scale {
    nodes: u32,
    pods: u32,
    peerings: u32,
}

impl Scale {
    fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str, default: u32| -> anyhow::Result<u32> {
            match std::env::var(name) {
                Ok(v) => v.parse().with_context(|| format!("{name}={v:?}")),
                Err(_) => Ok(default),
            }
        };
        let scale = Self {
            nodes: var("CW_CONVERGE_NODES", 5_000)?,
            pods: var("CW_CONVERGE_PODS", 100_000)?,
            peerings: var("CW_CONVERGE_PEERINGS", 1_000)?,
        };
        if !(1..=50_000).contains(&scale.nodes) {
            bail!("CW_CONVERGE_NODES must be 1..=50000");
        }
        if !(1..=1_024 - CHANGES).contains(&scale.peerings) {
            bail!("CW_CONVERGE_PEERINGS must be 1..={}", 1_024 - CHANGES);
        }
        if u64::from(scale.pod_block()) * u64::from(scale.nodes + CHANGES) > 1 << 22 {
            bail!("too many pods for 10.0.0.0/10");
        }
        Ok(scale)
    }

    /// Addresses per node pod CIDR: the pods per node plus network and broadcast, rounded up
    /// to a power of two.
    fn pod_block(self) -> u32 {
        (self.pods.div_ceil(self.nodes) + 2)
            .next_power_of_two()
            .max(4)
    }

    /// The cluster's pod CIDR, large enough for every node's block.
    fn pod_cidr(self) -> String {
        let total = u64::from(self.pod_block()) * u64::from(self.nodes + CHANGES);
        let bits = 64 - (total - 1).leading_zeros();
        format!("10.0.0.0/{}", 32 - bits)
    }
}

fn ip(base: [u8; 4], offset: u32) -> String {
    std::net::Ipv4Addr::from(u32::from_be_bytes(base) + offset).to_string()
}

fn node_name(i: u32) -> String {
    format!("n{i:05}")
}

/// Node `i`'s underlay address (192.168.0.10 + i; gateway pods start at 192.168.200.1).
fn node_address(i: u32) -> String {
    ip([192, 168, 0, 10], i)
}

fn gateway_pod_ip(j: u32) -> String {
    ip([192, 168, 200, 1], j)
}

fn peering_name(j: u32) -> String {
    format!("p{j:04}")
}

/// Peering `j`'s remapped pod CIDR (a /20 of 100.64.0.0/10).
fn remapped_pod(j: u32) -> String {
    format!("{}/20", ip([100, 64, 0, 0], j << 12))
}

/// Peering `j`'s remapped external CIDR (a /24 of 172.16.0.0/12).
fn remapped_external(j: u32) -> String {
    format!("{}/24", ip([172, 16, 0, 0], j << 8))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// 32 deterministic key bytes (a WireGuard key is any 32 bytes once clamped).
fn key_bytes(seed: u32) -> [u8; 32] {
    let mut state = u64::from(seed) ^ 0x9e37_79b9_7f4a_7c15;
    let mut key = [0u8; 32];
    for byte in &mut key {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state.to_le_bytes()[0];
    }
    key
}

/// A multi-document YAML file of JSON objects (JSON is YAML).
fn write_objects(path: &Path, objects: &[Value]) -> anyhow::Result<()> {
    let mut text = String::new();
    for object in objects {
        if !text.is_empty() {
            text.push_str("---\n");
        }
        text.push_str(&object.to_string());
        text.push('\n');
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Writes `objects` as `dir/name` atomically (a hidden temporary file renamed into place, as
/// a `ConfigMap` mount swaps its files); returns the instant of the rename.
fn publish(dir: &Path, name: &str, objects: &[Value]) -> anyhow::Result<Instant> {
    let temp = dir.join(format!(".{name}.tmp"));
    write_objects(&temp, objects)?;
    let target = dir.join(name);
    let at = Instant::now();
    fs::rename(&temp, &target).with_context(|| format!("renaming into {}", target.display()))?;
    Ok(at)
}

/// Node `i`: its core `Node`, `InternalNode` and `IP`.
fn node_objects(scale: Scale, i: u32) -> Vec<Value> {
    let name = node_name(i);
    let pod_cidr = format!(
        "{}/{}",
        ip([10, 0, 0, 0], i * scale.pod_block()),
        32 - scale.pod_block().trailing_zeros()
    );
    let internal = ip([10, 80, 0, 1], i);
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": { "name": name },
            "spec": { "podCIDR": pod_cidr, "podCIDRs": [pod_cidr] },
            "status": { "addresses": [
                { "type": "InternalIP", "address": node_address(i) },
                { "type": "Hostname", "address": name },
            ]},
        }),
        json!({
            "apiVersion": NETWORKING,
            "kind": "InternalNode",
            "metadata": { "name": name },
            "spec": {
                "interface": { "node": { "ip": internal } },
                "nodeAddress": node_address(i),
            },
        }),
        json!({
            "apiVersion": "ipam.liqo.io/v1alpha1",
            "kind": "IP",
            "metadata": { "name": format!("node-{name}"), "namespace": "liqo" },
            "spec": { "ip": internal },
            "status": { "ip": ip([10, 70, 0, 1], i), "cidr": "10.70.0.0/16" },
        }),
    ]
}

/// Peering `j`: its `Configuration`, `GatewayServer` (even `j`) or `GatewayClient`,
/// `PublicKey` and `InternalFabric`, as the lab's tenant files.
fn peering_objects(scale: Scale, j: u32) -> Vec<Value> {
    let name = peering_name(j);
    let namespace = format!("liqo-tenant-{name}");
    let meta = json!({ "name": name, "namespace": namespace, "labels": { REMOTE_ID: name } });
    let configuration = json!({
        "apiVersion": NETWORKING,
        "kind": "Configuration",
        "metadata": meta,
        "spec": {
            "local": { "cidr": { "pod": [scale.pod_cidr()], "external": ["10.70.0.0/16"] } },
            "remote": { "cidr": { "pod": ["10.0.0.0/20"], "external": ["10.70.0.0/24"] } },
        },
        "status": { "remote": { "cidr": {
            "pod": [remapped_pod(j)],
            "external": [remapped_external(j)],
        }}},
    });
    let internal_endpoint = json!({ "ip": gateway_pod_ip(j), "node": node_name(0) });
    let gateway = if j.is_multiple_of(2) {
        let node_port = 30_000 + j;
        json!({
            "apiVersion": NETWORKING,
            "kind": "GatewayServer",
            "metadata": meta,
            "spec": {
                "serverTemplateRef": {
                    "apiVersion": NETWORKING,
                    "kind": "WgGatewayServerTemplate",
                    "name": "wireguard-server",
                    "namespace": "liqo",
                },
                "mtu": MTU,
                "endpoint": {
                    "port": WIREGUARD_PORT,
                    "serviceType": "NodePort",
                    "nodePort": node_port,
                },
            },
            "status": {
                "endpoint": {
                    "addresses": ["198.18.0.1"],
                    "port": node_port,
                    "protocol": "UDP",
                },
                "internalEndpoint": internal_endpoint,
            },
        })
    } else {
        json!({
            "apiVersion": NETWORKING,
            "kind": "GatewayClient",
            "metadata": meta,
            "spec": {
                "clientTemplateRef": {
                    "apiVersion": NETWORKING,
                    "kind": "WgGatewayClientTemplate",
                    "name": "wireguard-client",
                    "namespace": "liqo",
                },
                "mtu": MTU,
                "endpoint": {
                    "addresses": [ip([198, 19, 0, 1], j)],
                    "port": 31_840,
                    "protocol": "UDP",
                },
            },
            "status": { "internalEndpoint": internal_endpoint },
        })
    };
    let public_key = json!({
        "apiVersion": NETWORKING,
        "kind": "PublicKey",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": { REMOTE_ID: name, "networking.liqo.io/gateway-resource": "true" },
        },
        "spec": { "publicKey": base64(&key_bytes(100_000 + j)) },
    });
    let fabric = json!({
        "apiVersion": NETWORKING,
        "kind": "InternalFabric",
        "metadata": meta,
        "spec": {
            "mtu": MTU,
            "remoteCIDRs": [remapped_pod(j), remapped_external(j)],
            "interface": { "gateway": { "ip": ip([10, 80, 200, 0], j) } },
            "gatewayIP": gateway_pod_ip(j),
        },
    });
    vec![configuration, gateway, public_key, fabric]
}

fn generate(scale: Scale, dir: &Path) -> anyhow::Result<u64> {
    fs::create_dir_all(dir.join("status")).context("creating the manifests directory")?;
    let mut start = 0;
    while start < scale.nodes {
        let end = (start + NODES_PER_FILE).min(scale.nodes);
        let objects: Vec<Value> = (start..end).flat_map(|i| node_objects(scale, i)).collect();
        write_objects(&dir.join(format!("nodes-{start:05}.yaml")), &objects)?;
        start = end;
    }
    for j in 0..scale.peerings {
        write_objects(
            &dir.join(format!("tenant-{}.yaml", peering_name(j))),
            &peering_objects(scale, j),
        )?;
    }
    let mut bytes = 0;
    for entry in fs::read_dir(dir)? {
        bytes += entry?.metadata()?.len();
    }
    Ok(bytes)
}

/// A daemon under measurement.
struct Daemon {
    label: &'static str,
    program: PathBuf,
    args: Vec<String>,
    netns: String,
    log: PathBuf,
    child: Option<Child>,
    /// Log bytes already looked at.
    seen: u64,
}

/// How a wait for the log ended.
enum Outcome {
    Applied(Duration),
    Failed(Duration, String),
    Exited(String),
    TimedOut,
}

impl Daemon {
    fn start(&mut self) -> anyhow::Result<Instant> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        self.seen = log.metadata()?.len();
        let err = log.try_clone()?;
        let at = Instant::now();
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        self.child = Some(child);
        Ok(at)
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// New complete log lines since the last call.
    fn new_lines(&mut self) -> Vec<String> {
        let Ok(mut file) = fs::File::open(&self.log) else {
            return Vec::new();
        };
        let mut text = String::new();
        if file.seek(SeekFrom::Start(self.seen)).is_err() || file.read_to_string(&mut text).is_err()
        {
            return Vec::new();
        }
        let Some(end) = text.rfind('\n') else {
            return Vec::new();
        };
        self.seen += end as u64 + 1;
        text[..end].lines().map(str::to_owned).collect()
    }

    /// Waits for the next "applied" or "apply failed" line (or `ready` when given), from
    /// `since`.
    fn wait(&mut self, since: Instant, ready: Option<&dyn Fn() -> bool>) -> Outcome {
        loop {
            for line in self.new_lines() {
                if line.contains(" applied applied=") {
                    return Outcome::Applied(since.elapsed());
                }
                if line.contains("apply failed") {
                    return Outcome::Failed(since.elapsed(), line);
                }
            }
            if let Some(ready) = ready
                && ready()
            {
                return Outcome::Applied(since.elapsed());
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                let tail = self.new_lines().join("\n");
                return Outcome::Exited(format!("{status}; last log lines:\n{tail}"));
            }
            if since.elapsed() > TIMEOUT {
                return Outcome::TimedOut;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// CPU time used so far (user + system), in clock ticks (`USER_HZ`, 100 per second on
    /// Linux).
    fn cpu_ticks(&self) -> Option<u64> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        // Fields after the command name (which may hold spaces): state is field 3, utime 14.
        let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
        let user: u64 = fields.next()?.parse().ok()?;
        let system: u64 = fields.next()?.parse().ok()?;
        Some(user + system)
    }

    fn rss_kib(&self) -> (Option<u64>, Option<u64>) {
        let Some(pid) = self.pid() else {
            return (None, None);
        };
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

/// What the benchmark created, removed on drop.
struct Lab {
    dir: PathBuf,
    cwctl: PathBuf,
    netns: Vec<String>,
    instances: Vec<String>,
    daemons: Vec<Daemon>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for daemon in &mut self.daemons {
            daemon.kill();
        }
        for instance in &self.instances {
            let _ = Command::new(&self.cwctl)
                .args(["dataplane", "destroy", instance])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        for netns in &self.netns {
            let _ = Command::new("ip")
                .args(["netns", "del", netns])
                .stderr(Stdio::null())
                .status();
        }
        if std::env::var_os("CW_CONVERGE_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            println!("kept {}", self.dir.display());
        }
    }
}

fn ip_cmd(args: &[&str]) -> anyhow::Result<()> {
    cmd::output(Command::new("ip").args(args)).map(|_| ())
}

/// The lines of `ip -n NETNS -4 route show ARGS`.
fn routes(netns: &str, args: &[&str]) -> usize {
    Command::new("ip")
        .args(["-n", netns, "-4", "route", "show"])
        .args(args)
        .output()
        .map_or(0, |o| String::from_utf8_lossy(&o.stdout).lines().count())
}

fn own_routes(netns: &str) -> usize {
    routes(netns, &["proto", "203"])
}

/// One measured figure for the table.
struct Row {
    what: String,
    value: String,
    target: String,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn describe(outcome: &Outcome, routes: usize, expected: usize) -> String {
    match outcome {
        Outcome::Applied(d) if routes >= expected => format!("{} ({routes} routes)", ms(*d)),
        Outcome::Applied(d) => format!("{} but {routes}/{expected} routes", ms(*d)),
        Outcome::Failed(d, line) => format!("FAILED after {}: {line}", ms(*d)),
        Outcome::Exited(why) => format!("EXITED: {why}"),
        Outcome::TimedOut => format!(
            "TIMED OUT after {} s ({routes}/{expected} routes)",
            TIMEOUT.as_secs()
        ),
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "one linear script: generate, set up, measure each phase, print"
)]
pub fn run() -> anyhow::Result<()> {
    if !cmd::is_root() {
        bail!(
            "`cargo xtask bench converge` creates network namespaces and loads eBPF programs: run it as root"
        );
    }
    let scale = Scale::from_env()?;
    cmd::ensure_bpffs()?;
    cmd::build_lab_binaries(true)?;
    let bin = cmd::workspace_root().join("target/release");
    let id = std::process::id();
    let dir = std::env::temp_dir().join(format!("cw-converge-{id}"));
    let manifests = dir.join("manifests");
    let mut lab = Lab {
        dir: dir.clone(),
        cwctl: bin.join("cwctl"),
        netns: Vec::new(),
        instances: Vec::new(),
        daemons: Vec::new(),
    };
    let t = Instant::now();
    let bytes = generate(scale, &manifests)?;
    println!(
        "converge: {} nodes ({} pods, a /{} each), {} peerings: {} files, {:.1} MB of manifests in {} (generated in {})",
        scale.nodes,
        scale.pods,
        32 - scale.pod_block().trailing_zeros(),
        scale.peerings,
        scale.nodes.div_ceil(NODES_PER_FILE) + scale.peerings,
        f64::from(u32::try_from(bytes / 1_000).unwrap_or(u32::MAX)) / 1e3,
        manifests.display(),
        ms(t.elapsed())
    );

    // Topology: the node and peering 0's gateway pod, on one veth underlay.
    let node_ns = format!("cwbc-{id}-node");
    let gw_ns = format!("cwbc-{id}-gw");
    for ns in [&node_ns, &gw_ns] {
        ip_cmd(&["netns", "add", ns])?;
        lab.netns.push(ns.clone());
        ip_cmd(&["-n", ns, "link", "set", "lo", "up"])?;
    }
    ip_cmd(&[
        "-n", &node_ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns",
        &gw_ns,
    ])?;
    for (ns, address) in [(&node_ns, node_address(0)), (&gw_ns, gateway_pod_ip(0))] {
        ip_cmd(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{address}/16"),
            "dev",
            "eth0",
        ])?;
        ip_cmd(&["-n", ns, "link", "set", "eth0", "up"])?;
    }
    let key = dir.join("gateway.key");
    fs::write(&key, key_bytes(1)).context("writing the private key")?;
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600))?;

    let gw_instance = format!("cwbc-{id}-gw");
    let node_instance = format!("cwbc-{id}-node");
    lab.instances = vec![gw_instance.clone(), node_instance.clone()];
    let manifests_arg = manifests.to_string_lossy().into_owned();
    let common = |netns: &str, instance: &str| -> Vec<String> {
        [
            "--manifests",
            &manifests_arg,
            "--netns",
            netns,
            "--underlay-dev",
            "eth0",
            "--instance",
            instance,
            "--poll-ms",
            POLL_MS,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let mut gw_args = common(&gw_ns, &gw_instance);
    let key_arg = key.to_string_lossy().into_owned();
    gw_args.extend(
        [
            "--gateway",
            &format!("liqo-tenant-{0}/{0}", peering_name(0)),
            "--role",
            "server",
            "--private-key",
            &key_arg,
            "--wireguard",
            "userspace",
        ]
        .map(str::to_owned),
    );
    let mut node_args = common(&node_ns, &node_instance);
    node_args.extend(["--node".to_owned(), node_name(0)]);
    lab.daemons.push(Daemon {
        label: "gateway",
        program: bin.join("clusterwire-gateway"),
        args: gw_args,
        netns: gw_ns.clone(),
        log: dir.join("gateway.log"),
        child: None,
        seen: 0,
    });
    lab.daemons.push(Daemon {
        label: "agent",
        program: bin.join("clusterwire-agent"),
        args: node_args,
        netns: node_ns.clone(),
        log: dir.join("agent.log"),
        child: None,
        seen: 0,
    });
    // Routes the manifests imply: the gateway has two toward each node (pod CIDR, internal
    // address) and two into the tunnel; the agent two per peering.
    let expected = [2 * scale.nodes as usize + 2, 2 * scale.peerings as usize];

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    // Cold start, one daemon at a time (2 cores: each measured alone).
    for (index, daemon) in lab.daemons.iter_mut().enumerate() {
        let at = daemon.start()?;
        let outcome = daemon.wait(at, None);
        let count = own_routes(&daemon.netns);
        let text = describe(&outcome, count, expected[index]);
        println!("  {} cold start: {text}", daemon.label);
        if !matches!(outcome, Outcome::Applied(_)) || count < expected[index] {
            failures.push(format!("{} cold start: {text}", daemon.label));
        }
        rows.push(Row {
            what: format!("{} cold start (process start -> applied)", daemon.label),
            value: text,
            target: "<= 1 s".to_owned(),
        });
    }
    // Restart: kill -9, routes flushed (maps stay pinned), start again.
    for (index, daemon) in lab.daemons.iter_mut().enumerate() {
        daemon.kill();
        // Routes through the daemons' nexthop objects go with them (iproute2's route flush
        // cannot delete those); then any plain route.
        for what in [&["nexthop", "flush"][..], &["-4", "route", "flush"]] {
            let _ = Command::new("ip")
                .args(["-n", &daemon.netns])
                .args(what)
                .args(["proto", "203"])
                .stdout(Stdio::null())
                .status();
        }
        let at = daemon.start()?;
        let outcome = daemon.wait(at, None);
        let count = own_routes(&daemon.netns);
        let text = describe(&outcome, count, expected[index]);
        println!("  {} restart: {text}", daemon.label);
        if !matches!(outcome, Outcome::Applied(_)) || count < expected[index] {
            failures.push(format!("{} restart: {text}", daemon.label));
        }
        rows.push(Row {
            what: format!(
                "{} restart after kill -9, routes flushed (start -> applied)",
                daemon.label
            ),
            value: text,
            target: "<= 1 s".to_owned(),
        });
    }
    // Let both settle (the periodic applies, the first health pings) before single changes.
    std::thread::sleep(Duration::from_secs(1));
    for daemon in &mut lab.daemons {
        daemon.new_lines();
    }

    // One change: a node joins (gateway), a peering is added (agent).
    for (index, label) in [(0usize, "node joining"), (1, "peering added")] {
        let mut times = Vec::new();
        for k in 0..CHANGES {
            let (name, objects, netns, probe) = if index == 0 {
                let i = scale.nodes + k;
                (
                    format!("nodes-join-{k}.yaml"),
                    node_objects(scale, i),
                    gw_ns.clone(),
                    format!(
                        "{}/{}",
                        ip([10, 0, 0, 0], i * scale.pod_block()),
                        32 - scale.pod_block().trailing_zeros()
                    ),
                )
            } else {
                let j = scale.peerings + k;
                (
                    format!("tenant-{}.yaml", peering_name(j)),
                    peering_objects(scale, j),
                    node_ns.clone(),
                    remapped_pod(j),
                )
            };
            let daemon = &mut lab.daemons[index];
            daemon.new_lines();
            let at = publish(&manifests, &name, &objects)?;
            let present = || routes(&netns, &[&probe]) > 0;
            let outcome = daemon.wait(at, Some(&present));
            let done = at.elapsed();
            let there = present();
            let text = match &outcome {
                Outcome::Applied(d) if there => {
                    times.push(*d);
                    ms(*d)
                }
                other => describe(other, usize::from(there), 1),
            };
            println!(
                "  {label} #{}: {text} (route {probe} {}; checked at {})",
                k + 1,
                if there { "present" } else { "MISSING" },
                ms(done)
            );
            if times.len() != k as usize + 1 {
                failures.push(format!("{label} #{}: {text}", k + 1));
            }
        }
        let value = if times.is_empty() {
            "no successful change".to_owned()
        } else {
            times.sort();
            format!(
                "median {} (min {}, max {}; {} of {CHANGES})",
                ms(times[times.len() / 2]),
                ms(times[0]),
                ms(times[times.len() - 1]),
                times.len()
            )
        };
        rows.push(Row {
            what: format!("one change: {label} (file rename -> route in the kernel)"),
            value,
            target: "<= 100 ms".to_owned(),
        });
    }

    // No change: each daemon polls the directory every POLL_MS, and re-applies everything
    // periodically (the agent every 5 s, the gateway every 30 s, which may fall in the window).
    let before: Vec<_> = lab.daemons.iter().map(Daemon::cpu_ticks).collect();
    std::thread::sleep(IDLE);
    for (daemon, before) in lab.daemons.iter().zip(before) {
        let value = match (before, daemon.cpu_ticks()) {
            (Some(before), Some(after)) => {
                let busy = Duration::from_millis((after - before) * 10);
                format!(
                    "{:.0}% of a core ({} ms of CPU in {} s)",
                    busy.as_secs_f64() * 100.0 / IDLE.as_secs_f64(),
                    busy.as_millis(),
                    IDLE.as_secs()
                )
            }
            _ => "?".to_owned(),
        };
        rows.push(Row {
            what: format!(
                "{} CPU with no change (5 s: polls, periodic re-applies)",
                daemon.label
            ),
            value,
            target: "-".to_owned(),
        });
    }

    for daemon in &lab.daemons {
        let (rss, hwm) = daemon.rss_kib();
        let show = |v: Option<u64>| {
            v.map_or("?".to_owned(), |v| {
                format!(
                    "{:.1} MB",
                    f64::from(u32::try_from(v).unwrap_or(u32::MAX)) / 1024.0
                )
            })
        };
        rows.push(Row {
            what: format!("{} RSS after convergence (VmRSS, peak VmHWM)", daemon.label),
            value: format!("{} (peak {})", show(rss), show(hwm)),
            target: if daemon.label == "gateway" {
                "<= 50 MB".to_owned()
            } else {
                "-".to_owned()
            },
        });
    }

    let mut table = String::new();
    let width = rows.iter().map(|r| r.what.len()).max().unwrap_or(0);
    let _ = writeln!(
        table,
        "\nconvergence at {} nodes / {} pods / {} peerings (release binaries, --poll-ms {POLL_MS}):",
        scale.nodes, scale.pods, scale.peerings
    );
    for row in &rows {
        let _ = writeln!(
            table,
            "  {:width$}  {:>10}  {}",
            row.what, row.target, row.value
        );
    }
    print!("{table}");
    for daemon in &mut lab.daemons {
        let text = fs::read_to_string(&daemon.log).unwrap_or_default();
        let notable: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .collect();
        if !notable.is_empty() {
            println!(
                "\n{} log: {} warning/error lines, first ones:",
                daemon.label,
                notable.len()
            );
            for line in notable.iter().take(5) {
                println!("  {line}");
            }
        }
    }
    if !failures.is_empty() {
        println!("\nnot converged:");
        for failure in &failures {
            println!("  {failure}");
        }
    }
    drop(lab);
    Ok(())
}
