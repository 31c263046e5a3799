//! Running things inside the lab's namespaces: `ip`, `nft`, sysctls and closures on threads that
//! `setns` into a namespace (so sockets they open live there, and bpffs stays visible).

use std::{
    fs::File,
    io::Write as _,
    path::Path,
    process::{Command, Output, Stdio},
    thread::JoinHandle,
};

use anyhow::{Context as _, bail};
use nix::sched::{CloneFlags, setns};

/// Where `ip netns` keeps its namespaces.
pub const NETNS_DIR: &str = "/run/netns";

fn check(cmd: &Command, out: &Output) -> anyhow::Result<()> {
    if out.status.success() {
        return Ok(());
    }
    bail!(
        "`{}` failed ({}): {}",
        describe(cmd),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs a command, failing with its stderr if it fails.
pub fn run(cmd: &mut Command) -> anyhow::Result<Output> {
    let out = cmd
        .output()
        .with_context(|| format!("could not run `{}`", describe(cmd)))?;
    check(cmd, &out)?;
    Ok(out)
}

/// `ip <args>`.
pub fn ip(args: &[&str]) -> anyhow::Result<Output> {
    run(Command::new("ip").args(args))
}

/// `ip -n <ns> <args>`.
pub fn ip_in(ns: &str, args: &[&str]) -> anyhow::Result<Output> {
    run(Command::new("ip").arg("-n").arg(ns).args(args))
}

/// Loads an nftables ruleset into namespace `ns` (`nft -f -` through `ip netns exec`; nft does
/// not need bpffs, so the /sys remount of `ip netns exec` is harmless here).
pub fn nft_in(ns: &str, ruleset: &str) -> anyhow::Result<()> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not run nft in {ns} (is nftables installed?)"))?;
    child
        .stdin
        .take()
        .context("nft stdin")?
        .write_all(ruleset.as_bytes())
        .with_context(|| format!("feeding the ruleset to nft in {ns}"))?;
    let out = child
        .wait_with_output()
        .with_context(|| format!("waiting for nft in {ns}"))?;
    check(&cmd, &out).with_context(|| format!("loading nftables rules in {ns}:\n{ruleset}"))
}

/// Every namespace whose name starts with `prefix`.
pub fn list(prefix: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

fn enter_current_thread(ns: &str) -> anyhow::Result<()> {
    let path = Path::new(NETNS_DIR).join(ns);
    let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    setns(&file, CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("setns into {}", path.display()))?;
    Ok(())
}

/// Runs `f` on a thread inside `ns` and waits for it.
pub fn enter<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter_current_thread(ns)?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Runs `f` on a detached thread inside `ns` (servers).
pub fn spawn<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> JoinHandle<anyhow::Result<T>> {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        enter_current_thread(&ns)?;
        f()
    })
}

/// Sets sysctls inside `ns` by writing `/proc/sys` from a thread in it.
pub fn sysctls(ns: &str, settings: &[(&str, &str)]) -> anyhow::Result<()> {
    enter(ns, || -> anyhow::Result<()> {
        for (key, value) in settings {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            std::fs::write(&path, value)
                .with_context(|| format!("sysctl {key}={value} in {ns}"))?;
        }
        Ok(())
    })?
}
