//! What the lab tests share (`lab.rs`, `lab_faults.rs`): the `cwctl` binary, the one-lab lock
//! and the guard that takes the lab down, entering a lab namespace.
//!
//! Only one lab can exist per host (fixed `cwlab-*` names and `/run/clusterwire-lab`), so every
//! lab test holds [`ONE_LAB_AT_A_TIME`] through [`Lab::claim`].

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::Mutex,
};

use nix::sched::{CloneFlags, setns};

pub static ONE_LAB_AT_A_TIME: Mutex<()> = Mutex::new(());

pub const STATE_DIR: &str = "/run/clusterwire-lab";

pub fn cwctl() -> PathBuf {
    if let Some(path) = std::env::var_os("CWCTL") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/netns-<hash> -> target/<profile>/cwctl
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("cwctl"))
        .expect("target directory");
    assert!(
        path.is_file(),
        "{} not found: build it first (`cargo build -p clusterwire-cli`) or set CWCTL",
        path.display()
    );
    path
}

pub fn lab(args: &[&str]) -> Output {
    Command::new(cwctl())
        .arg("lab")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("could not run cwctl lab {args:?}: {e}"))
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn lab_ok(args: &[&str]) -> String {
    let out = lab(args);
    let all = text(&out);
    assert!(out.status.success(), "cwctl lab {args:?} failed:\n{all}");
    all
}

pub fn lab_namespaces() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("cwlab-"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Holds the lab lock; runs `cwctl lab down` on drop.
pub struct Lab {
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl Lab {
    pub fn claim() -> Self {
        let lock = ONE_LAB_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        assert!(
            !Path::new(STATE_DIR).exists() && lab_namespaces().is_empty(),
            "a lab is already up on this host ({STATE_DIR}, {:?}): run `cwctl lab down`",
            lab_namespaces()
        );
        Self { _lock: lock }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = lab(&["down"]);
        if !out.status.success() {
            eprintln!("cleanup: cwctl lab down failed:\n{}", text(&out));
        }
    }
}

pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{ns}");
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

/// Whether this kernel has the WireGuard and Geneve drivers (probed in a fresh namespace). Where
/// it does not, `test` says it was skipped and why, unless `CW_REQUIRE_KERNEL_DRIVERS` is set
/// (the VM tier, whose kernels have both): there a missing driver fails the test.
pub fn kernel_drivers(test: &str) -> bool {
    let ns = clusterwire_tests::netns::NetNs::new("drv");
    let caps = ns
        .enter(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(async {
                let (connection, handle, _) = rtnetlink::new_connection().expect("rtnetlink");
                tokio::spawn(connection);
                clusterwire_links::probe_kernel(&handle).await
            })
        })
        .expect("kernel capability probe");
    let missing: Vec<String> = [("geneve", &caps.geneve), ("wireguard", &caps.wireguard)]
        .into_iter()
        .filter(|(_, cap)| !cap.is_available())
        .map(|(what, cap)| format!("{what}: {cap}"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CW_REQUIRE_KERNEL_DRIVERS").is_none(),
        "{test}: kernel drivers required here but missing: {missing:?}"
    );
    println!("SKIPPED {test}: this kernel lacks {missing:?} (the VM tier runs it)");
    false
}

/// The gateway rows of `cwctl lab up`'s table as (cluster, tunnel, geneve, connection).
pub fn gateway_rows(up: &str) -> Vec<(String, String, String, String)> {
    up.lines()
        .skip_while(|l| !l.starts_with("CLUSTER"))
        .skip(1)
        .map_while(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.len() >= 7 && cols[0].starts_with("cl")).then(|| {
                (
                    cols[0].to_owned(),
                    cols[4].to_owned(),
                    cols[5].to_owned(),
                    cols[6].to_owned(),
                )
            })
        })
        .collect()
}

/// The Geneve implementation an agent's log reports.
pub fn agent_geneve(instance: &str) -> String {
    let path = format!("{STATE_DIR}/logs/{instance}.log");
    let log = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    log.split("geneve implementation: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_alphanumeric()).next())
        .unwrap_or_else(|| panic!("{path} names no Geneve implementation:\n{log}"))
        .to_owned()
}
