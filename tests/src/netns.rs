//! Network namespaces and veth pairs for the netns tier, cleaned up on drop (also when a test
//! panics). Names carry the test process id, so parallel runs and leftovers never collide.
use std::{
    fs::File,
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

use nix::sched::{CloneFlags, setns};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A named network namespace (`ip netns add`), deleted on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `cwt-<pid>-<n>-<tag>`.
    pub fn new(tag: &str) -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("cwt-{}-{n}-{tag}", std::process::id());
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <ns> <args>`, panicking with the command's stderr if it fails.
    pub fn ip(&self, args: &[&str]) -> Output {
        run_ok(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// Runs a program inside the namespace (`ip netns exec`), returning its output whatever its
    /// exit status.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("could not run {program} in {}: {e}", self.name))
    }

    /// Sets a sysctl inside the namespace (`net.ipv4.ip_forward` style key), by writing
    /// `/proc/sys` from a thread inside it: no sysctl(8) needed, so it works in the VM tier too.
    pub fn sysctl(&self, key: &str, value: &str) {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.enter(|| {
            std::fs::write(&path, value)
                .unwrap_or_else(|e| panic!("sysctl {key}={value} in {}: {e}", self.name));
        });
    }

    /// Like [`NetNs::enter`], but on a detached thread: for servers that must run while the
    /// caller does something else in another namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            setns(&file, CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns into {path}: {e}"));
            f()
        })
    }

    /// Runs `f` on a thread that has entered this namespace (`setns`), so netlink sockets and
    /// attachments it makes live here; unlike `ip netns exec`, /sys/fs/bpf stays visible.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                    setns(&file, CloneFlags::CLONE_NEWNET)
                        .unwrap_or_else(|e| panic!("setns into {path}: {e}"));
                    f()
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace also deletes the links inside it. Errors are reported, not
        // raised: a panic in drop during unwinding would abort the test binary.
        if let Err(e) = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output()
        {
            eprintln!("cleanup: ip netns del {}: {e}", self.name);
        }
    }
}

/// One end of a veth pair.
#[derive(Debug, Clone)]
pub struct VethEnd {
    /// Interface name inside its namespace.
    pub ifname: String,
    /// MAC address, as `ip` prints it.
    pub mac: String,
}

/// Creates a veth pair between two namespaces, brings both ends up with IPv6 off (so no
/// router/neighbour solicitations add packets the tests did not send), and returns the ends.
pub fn veth_pair(a: &NetNs, a_if: &str, b: &NetNs, b_if: &str) -> (VethEnd, VethEnd) {
    run_ok(Command::new("ip").args([
        "link",
        "add",
        a_if,
        "netns",
        a.name(),
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ]));
    let end = |ns: &NetNs, ifname: &str| {
        ns.sysctl(&format!("net.ipv6.conf.{ifname}.disable_ipv6"), "1");
        ns.ip(&["link", "set", ifname, "up"]);
        let out = ns.ip(&["-br", "link", "show", ifname]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mac = text
            .split_whitespace()
            .nth(2)
            .unwrap_or_else(|| panic!("no MAC in `ip -br link show {ifname}`: {text}"))
            .to_owned();
        VethEnd {
            ifname: ifname.to_owned(),
            mac,
        }
    };
    (end(a, a_if), end(b, b_if))
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim_end()
    );
    out
}
