//! The lab's daemons: one `clusterwire-agent` per node namespace and one `clusterwire-gateway`
//! per gateway pod namespace, started detached (own process group, so they outlive
//! `cwctl lab up`), with their output in `<state>/logs/<instance>.log` and their pid in
//! `<state>/pids/<instance>.pid`. The daemons enter their namespace themselves (`--netns`), so
//! bpffs pins stay visible to them.

use std::{
    fs,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use super::{
    Paths, Settings,
    keys::key_path,
    plan::{METRICS_PORT, PREFIX, Plan, role_name},
};

/// The agent binary.
pub const AGENT: &str = "clusterwire-agent";
/// The gateway binary.
pub const GATEWAY: &str = "clusterwire-gateway";

/// One daemon to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    /// Its instance name (unique per host), also the name of its log and pid files.
    pub instance: String,
    /// The binary's file name.
    pub program: &'static str,
    /// Its arguments.
    pub args: Vec<String>,
}

/// Every daemon of the lab, agents first.
/// The implementations (agent Geneve, gateway WireGuard, gateway Geneve) of the `index`-th
/// cluster.
fn implementations(settings: &Settings, index: usize) -> (&str, &str, &str) {
    match (settings.mixed, index % 2) {
        (false, _) => (&settings.geneve, &settings.wireguard, &settings.geneve),
        (true, 0) => ("kernel", "kernel", "ebpf"),
        (true, _) => ("ebpf", "userspace", "kernel"),
    }
}

pub fn daemons(plan: &Plan, settings: &Settings, paths: &Paths) -> Vec<Daemon> {
    let mut all = Vec::new();
    for (index, cluster) in plan.clusters.iter().enumerate() {
        let (agent_geneve, _, _) = implementations(settings, index);
        let manifests = paths.manifests(&cluster.name);
        let manifests = manifests.to_string_lossy();
        for node in &cluster.nodes {
            all.push(Daemon {
                instance: node.instance.clone(),
                program: AGENT,
                args: [
                    "--manifests",
                    &manifests,
                    "--node",
                    &node.name,
                    "--netns",
                    &node.netns,
                    "--underlay-dev",
                    "eth0",
                    "--geneve",
                    agent_geneve,
                    "--instance",
                    &node.instance,
                ]
                .map(str::to_owned)
                .to_vec(),
            });
        }
    }
    for (index, cluster) in plan.clusters.iter().enumerate() {
        let (_, wireguard, geneve) = implementations(settings, index);
        let manifests = paths.manifests(&cluster.name);
        let manifests = manifests.to_string_lossy();
        for gateway in &cluster.gateways {
            let key = key_path(&paths.clusters(), &cluster.name, &gateway.peer);
            for (_, pod, instance) in gateway.replicas() {
                let mut args: Vec<String> = [
                    "--manifests",
                    &manifests,
                    "--gateway",
                    &gateway.key(),
                    "--role",
                    role_name(gateway.role),
                    "--private-key",
                    &key.to_string_lossy(),
                    "--netns",
                    &pod.netns,
                    "--underlay-dev",
                    "eth0",
                    "--wireguard",
                    wireguard,
                    "--geneve",
                    geneve,
                    "--instance",
                    instance,
                    "--metrics-addr",
                    &format!("{}:{METRICS_PORT}", pod.address),
                ]
                .map(str::to_owned)
                .to_vec();
                if gateway.standby.is_some() {
                    let lease = paths.lease(&cluster.name, &gateway.peer);
                    let fabric = paths.manifests(&cluster.name).join(gateway.fabric_file());
                    args.extend([
                        "--lease-file".to_owned(),
                        lease.to_string_lossy().into_owned(),
                        "--fabric-file".to_owned(),
                        fabric.to_string_lossy().into_owned(),
                    ]);
                }
                all.push(Daemon {
                    instance: instance.to_owned(),
                    program: GATEWAY,
                    args,
                });
            }
        }
    }
    all
}

/// Started daemons, still children of this process.
#[derive(Debug, Default)]
pub struct Running {
    children: Vec<(String, Child)>,
}

impl Running {
    /// The first daemon that exited, with its status, if any.
    pub fn exited(&mut self) -> Option<(String, String)> {
        for (name, child) in &mut self.children {
            match child.try_wait() {
                Ok(Some(status)) => return Some((name.clone(), status.to_string())),
                Ok(None) => {}
                Err(e) => return Some((name.clone(), format!("cannot wait for it: {e}"))),
            }
        }
        None
    }
}

/// Checks that both binaries are in `bin_dir`.
pub fn check_binaries(bin_dir: &Path) -> anyhow::Result<()> {
    for program in [AGENT, GATEWAY] {
        let path = bin_dir.join(program);
        if !path.is_file() {
            bail!(
                "{} not found: build the daemons (`cargo build -p {program}`) or pass \
                 --bin-dir (or --no-daemons for the topology only)",
                path.display()
            );
        }
    }
    Ok(())
}

/// Starts every daemon; prints one line per daemon.
pub fn start(paths: &Paths, bin_dir: &Path, all: &[Daemon]) -> anyhow::Result<Running> {
    let logs = paths.logs();
    let pids = paths.pids();
    for dir in [&logs, &pids] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut running = Running::default();
    for daemon in all {
        let log_path = paths.log(&daemon.instance);
        let log = fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let err = log
            .try_clone()
            .with_context(|| format!("duplicating {}", log_path.display()))?;
        let program = bin_dir.join(daemon.program);
        let child = Command::new(&program)
            .args(&daemon.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {} ({})", daemon.instance, program.display()))?;
        let pid_path = paths.pid(&daemon.instance);
        fs::write(&pid_path, format!("{}\n", child.id()))
            .with_context(|| format!("writing {}", pid_path.display()))?;
        println!(
            "  started {} (pid {}, log {})",
            daemon.instance,
            child.id(),
            log_path.display()
        );
        running.children.push((daemon.instance.clone(), child));
    }
    Ok(running)
}

/// The last `lines` lines of a daemon's log (for error messages).
pub fn log_tail(paths: &Paths, instance: &str, lines: usize) -> String {
    let text = fs::read_to_string(paths.log(instance)).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The pid in a pid file, if the process still runs and is the daemon of that instance
/// (its command line names `--instance <instance>`: a reused pid is never signalled).
fn live_pid(pid_file: &Path) -> Option<(String, Pid)> {
    let instance = pid_file.file_stem()?.to_string_lossy().into_owned();
    let pid: i32 = fs::read_to_string(pid_file).ok()?.trim().parse().ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let ours = args
        .windows(2)
        .any(|w| w[0] == b"--instance" && w[1] == instance.as_bytes());
    ours.then(|| (instance, Pid::from_raw(pid)))
}

/// Lab daemons found in `/proc`: a `clusterwire-agent` or `clusterwire-gateway` whose
/// `--instance` starts with the lab prefix (finds them when the pid files are gone).
fn scan_proc() -> Vec<(String, Pid)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let program = args
            .first()
            .map(|a| a.rsplit('/').next().unwrap_or(a).to_owned());
        if !matches!(program.as_deref(), Some(AGENT | GATEWAY)) {
            continue;
        }
        if let Some(w) = args
            .windows(2)
            .find(|w| w[0] == "--instance" && w[1].starts_with(PREFIX))
        {
            found.push((w[1].clone(), Pid::from_raw(pid)));
        }
    }
    found
}

/// Stops every lab daemon: those with a pid file under `pids_dir` and any other found in
/// `/proc` (SIGTERM, then SIGKILL after 5 s); returns what was stopped.
pub fn stop_all(pids_dir: &Path) -> Vec<String> {
    let files: Vec<PathBuf> = fs::read_dir(pids_dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    let mut live: Vec<(String, Pid)> = files.iter().filter_map(|f| live_pid(f)).collect();
    for found in scan_proc() {
        if !live.iter().any(|(_, pid)| *pid == found.1) {
            live.push(found);
        }
    }
    for (_, pid) in &live {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let gone = |pid: &Pid| !Path::new(&format!("/proc/{pid}")).exists();
    while Instant::now() < deadline && !live.iter().all(|(_, p)| gone(p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stopped = Vec::new();
    for (name, pid) in live {
        if gone(&pid) {
            stopped.push(format!("{name} (pid {pid})"));
        } else {
            let _ = kill(pid, Signal::SIGKILL);
            stopped.push(format!("{name} (pid {pid}, killed)"));
        }
    }
    stopped
}

/// Whether the daemon of `instance` runs.
pub fn is_running(paths: &Paths, instance: &str) -> bool {
    live_pid(&paths.pid(instance)).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_command_lines_follow_the_contract() {
        let plan = Plan::new(2).expect("plan");
        let settings = Settings {
            clusters: 2,
            wireguard: "userspace".into(),
            geneve: "ebpf".into(),
            mixed: false,
            standby: false,
            daemons: true,
            bin_dir: PathBuf::from("/bin"),
        };
        let paths = Paths::new("/run/clusterwire-lab");
        let all = daemons(&plan, &settings, &paths);
        assert_eq!(all.len(), 4 + 2);
        assert_eq!(
            all[0].args.join(" "),
            "--manifests /run/clusterwire-lab/clusters/cl01/manifests --node cl01-n1 \
             --netns cwlab-cl01-n1 --underlay-dev eth0 --geneve ebpf --instance cwlab-cl01-n1"
        );
        let gw = all
            .iter()
            .find(|d| d.program == GATEWAY)
            .expect("a gateway");
        assert_eq!(
            gw.args.join(" "),
            "--manifests /run/clusterwire-lab/clusters/cl01/manifests \
             --gateway liqo-tenant-cl02/cl02 --role server \
             --private-key /run/clusterwire-lab/clusters/cl01/keys/gw-cl02.key \
             --netns cwlab-cl01-gw-cl02 --underlay-dev eth0 --wireguard userspace \
             --geneve ebpf --instance cwlab-cl01-gw-cl02 --metrics-addr 10.0.1.102:9090"
        );
        let mut names: Vec<&str> = all.iter().map(|d| d.instance.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "instance names must be unique");
    }

    #[test]
    fn standby_replicas_share_a_lease_file_and_the_fabric_file() {
        let plan = Plan::new(2).expect("plan").with_standby();
        let settings = Settings {
            clusters: 2,
            wireguard: "userspace".into(),
            geneve: "ebpf".into(),
            mixed: false,
            standby: true,
            daemons: true,
            bin_dir: PathBuf::from("/bin"),
        };
        let all = daemons(&plan, &settings, &Paths::new("/run/clusterwire-lab"));
        assert_eq!(all.len(), 4 + 3);
        let replicas: Vec<&Daemon> = all
            .iter()
            .filter(|d| d.instance.starts_with("cwlab-cl02-gw-cl01"))
            .collect();
        assert_eq!(replicas.len(), 2);
        let tail = " --lease-file /run/clusterwire-lab/clusters/cl02/leases/gw-cl01.lease \
                    --fabric-file /run/clusterwire-lab/clusters/cl02/manifests/fabric-cl01.yaml";
        assert_eq!(
            replicas[1].args.join(" "),
            format!(
                "--manifests /run/clusterwire-lab/clusters/cl02/manifests \
                 --gateway liqo-tenant-cl01/cl01 --role client \
                 --private-key /run/clusterwire-lab/clusters/cl02/keys/gw-cl01.key \
                 --netns cwlab-cl02-gw-cl01-b --underlay-dev eth0 --wireguard userspace \
                 --geneve ebpf --instance cwlab-cl02-gw-cl01-b --metrics-addr 10.0.2.151:9090{tail}"
            )
        );
        assert!(replicas[0].args.join(" ").ends_with(tail));
        // The server has no standby and keeps today's command line.
        let server = all
            .iter()
            .find(|d| d.instance == "cwlab-cl01-gw-cl02")
            .expect("server");
        assert!(!server.args.iter().any(|a| a == "--lease-file"));
    }

    #[test]
    fn mixed_lab_crosses_implementations_in_every_cluster_and_tunnel() {
        let plan = Plan::new(3).expect("plan");
        let settings = Settings {
            clusters: 3,
            wireguard: "auto".into(),
            geneve: "auto".into(),
            mixed: true,
            standby: false,
            daemons: true,
            bin_dir: PathBuf::from("/bin"),
        };
        let all = daemons(&plan, &settings, &Paths::new("/run/clusterwire-lab"));
        let flag = |d: &Daemon, name: &str| {
            let at = d.args.iter().position(|a| a == name).expect("flag");
            d.args[at + 1].clone()
        };
        let mut seen = Vec::new();
        for d in &all {
            let cluster = &d.instance["cwlab-".len().."cwlab-cl01".len()];
            if d.program == AGENT {
                seen.push(format!("{cluster} agent geneve {}", flag(d, "--geneve")));
            } else {
                seen.push(format!(
                    "{cluster} gateway wireguard {} geneve {}",
                    flag(d, "--wireguard"),
                    flag(d, "--geneve")
                ));
            }
        }
        seen.sort();
        seen.dedup();
        assert_eq!(
            seen,
            [
                "cl01 agent geneve kernel",
                "cl01 gateway wireguard kernel geneve ebpf",
                "cl02 agent geneve ebpf",
                "cl02 gateway wireguard userspace geneve kernel",
                "cl03 agent geneve kernel",
                "cl03 gateway wireguard kernel geneve ebpf",
            ]
        );
    }
}
