//! `cargo xtask vm-test`: boots stock Debian kernels (which have the geneve and wireguard
//! drivers this host lacks) under qemu with a minimal initramfs, runs our host-built test
//! binaries inside, and returns their output and exit status.
//!
//! Kernels come from Debian's archive with `apt-get download` and are cached under
//! `target/vm/`. qemu runs under TCG (software emulation): this host's KVM cannot run stock
//! kernels. Each kernel boots from its uncompressed ELF `vmlinux` through the PVH entry when
//! that can be extracted (skips in-guest decompression, several seconds under TCG).
use std::{
    collections::{BTreeMap, HashSet},
    fmt::Write as _,
    fs,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::cmd;

/// A Debian kernel the VM tier boots.
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    /// Short name used on the command line and in reports.
    pub label: &'static str,
    /// Debian metapackage that depends on the current image of this series.
    pub metapackage: &'static str,
}

/// The kernels of the matrix: Debian 12's stock 6.1 and its 6.12 series.
pub const KERNELS: &[Kernel] = &[
    Kernel {
        label: "6.1",
        metapackage: "linux-image-amd64",
    },
    Kernel {
        label: "6.12",
        metapackage: "linux-image-6.12-amd64",
    },
];

/// Modules the guest loads (with their dependencies): the tunnel drivers, veth for test
/// topologies, TUN and tbf for the netns tier, and clsact + `cls_bpf` for TC attachment on
/// kernels without TCX (< 6.6).
const MODULES: &[&str] = &[
    "geneve",
    "wireguard",
    "veth",
    "tun",
    "sch_ingress",
    "sch_tbf",
    "cls_bpf",
    // The lab: its WAN bridge, and its simulated CNI (masquerade, NodePort DNAT), whose
    // conntrack needs libcrc32c, whose crc32c implementation is only a soft dependency.
    "bridge",
    "crc32c_generic",
    // `notrack` of the agents' CNI-masquerade bypass (a kernel with modprobe loads it on use).
    "nft_ct",
    "nft_chain_nat",
    "nft_masq",
    "nft_nat",
];

/// Arguments of `cargo xtask vm-test`.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "vm-args")]
pub struct Args {
    /// Kernels to boot (default: all of the matrix).
    #[arg(long = "kernel", value_parser = ["6.1", "6.12"])]
    pub kernels: Vec<String>,
    /// Seconds a VM may run before it is killed and counted as failed (6.1 takes about 23 min
    /// with every tier under emulation on two host cores shared by both guests).
    #[arg(long, default_value_t = 2400)]
    pub timeout: u64,
    /// Also run the datapath tier inside each VM (verifier and `test_run` on that kernel).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub datapath: bool,
    /// Also run the netns tier inside each VM (real traffic through attached programs on that
    /// kernel: netlink attachment on kernels before 6.6).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub netns: bool,
}

/// What one VM reported.
#[derive(Debug)]
pub struct VmOutcome {
    /// Kernel label.
    pub label: String,
    /// Kernel release the guest reported (`uname -r`).
    pub release: Option<String>,
    /// Exit status of each test binary, in order.
    pub results: Vec<(String, i32)>,
    /// Whether every binary ran and passed.
    pub passed: bool,
    /// Wall time of the boot-to-poweroff run.
    pub elapsed: Duration,
    /// Why it failed, if it did outside the binaries (no report, timeout).
    pub problem: Option<String>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let outcomes = run_matrix(args)?;
    let mut failed = Vec::new();
    for o in &outcomes {
        println!("{}", summary(o));
        if !o.passed {
            failed.push(o.label.clone());
        }
    }
    if !failed.is_empty() {
        bail!("VM tests failed on kernel(s) {}", failed.join(", "));
    }
    Ok(())
}

/// One line per VM.
pub fn summary(o: &VmOutcome) -> String {
    let mut line = format!(
        "vm {} ({}): {} in {:.0} s",
        o.label,
        o.release.as_deref().unwrap_or("kernel did not report"),
        if o.passed { "passed" } else { "FAILED" },
        o.elapsed.as_secs_f64()
    );
    for (name, rc) in &o.results {
        let _ = write!(line, "; {name} rc={rc}");
    }
    if let Some(p) = &o.problem {
        let _ = write!(line, "; {p}");
    }
    line
}

/// Builds the test binaries, prepares every kernel, and boots them in parallel.
pub fn run_matrix(args: &Args) -> anyhow::Result<Vec<VmOutcome>> {
    for tool in [
        "qemu-system-x86_64",
        "cpio",
        "modinfo",
        "apt-get",
        "dpkg-deb",
    ] {
        if !cmd::exists(tool) && !Path::new("/usr/sbin").join(tool).is_file() {
            bail!("{tool} is missing: run `cargo xtask setup`");
        }
    }
    let kernels: Vec<Kernel> = if args.kernels.is_empty() {
        KERNELS.to_vec()
    } else {
        KERNELS
            .iter()
            .copied()
            .filter(|k| args.kernels.iter().any(|l| l == k.label))
            .collect()
    };
    let binaries = build_test_binaries(args)?;
    let work = cmd::workspace_root().join("target/vm");
    let mut prepared = Vec::new();
    for kernel in &kernels {
        let t = Instant::now();
        let image = prepare_kernel(&work, kernel)?;
        let initramfs = build_initramfs(&work, &image, &binaries)?;
        println!(
            "vm {}: kernel {} ready, initramfs {} MiB ({:.1} s)",
            kernel.label,
            image.release,
            fs::metadata(&initramfs).map_or(0, |m| m.len() >> 20),
            t.elapsed().as_secs_f64()
        );
        prepared.push((kernel.label, image, initramfs));
    }
    let timeout = Duration::from_secs(args.timeout);
    std::thread::scope(|scope| {
        let handles: Vec<_> = prepared
            .iter()
            .map(|(label, image, initramfs)| {
                scope.spawn(move || boot(label, &image.boot, initramfs, timeout))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("VM runner thread panicked"))?
            })
            .collect()
    })
}

/// A binary for the guest: a test binary run by init (`/tests/NN-<name>`), or a helper the tests
/// start by its host path (placed at the same path in the guest).
#[derive(Debug)]
enum GuestBinary {
    Test(String, PathBuf),
    Helper(PathBuf),
}

/// Builds the VM tier test binary, and the datapath and netns tiers' (with the helpers they
/// start) when asked.
fn build_test_binaries(args: &Args) -> anyhow::Result<Vec<GuestBinary>> {
    let mut features = vec!["tier-vm"];
    let mut tests = vec!["vm"];
    if args.datapath {
        features.push("tier-datapath");
        tests.push("datapath");
    }
    if args.netns {
        features.push("tier-netns");
        tests.push("netns");
    }
    let mut c = cmd::host_cargo();
    c.args([
        "test",
        "-p",
        "clusterwire-tests",
        "--no-run",
        "--message-format=json",
    ])
    .arg("--features")
    .arg(features.join(","));
    for t in &tests {
        c.args(["--test", t]);
    }
    c.stderr(Stdio::inherit());
    let out = cmd::stdout(&mut c)?;
    let mut found = Vec::new();
    let mut helpers = Vec::new();
    for line in out.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let name = msg["target"]["name"].as_str().unwrap_or_default();
        let is_bin = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|v| v == "bin"));
        match msg["executable"].as_str() {
            Some(exe) if tests.contains(&name) => found.push((name.to_owned(), PathBuf::from(exe))),
            Some(exe) if is_bin && name.starts_with("cw-test-") => {
                helpers.push(GuestBinary::Helper(PathBuf::from(exe)));
            }
            _ => {}
        }
    }
    // Run the VM tier first: it is the one only a VM can run.
    found.sort_by_key(|(name, _)| name != "vm");
    if found.len() != tests.len() {
        bail!("cargo built {found:?}, expected test binaries {tests:?}");
    }
    if args.netns && helpers.is_empty() {
        bail!("cargo built no cw-test-* helper for the netns tier");
    }
    if args.netns {
        helpers.extend(build_lab_binaries()?);
    }
    Ok(found
        .into_iter()
        .map(|(name, path)| GuestBinary::Test(name, path))
        .chain(helpers)
        .collect())
}

/// The binaries the lab tests run (`cwctl` and the daemons, debug builds in one directory, as
/// `cwctl lab up` expects), copied at their host paths; the guest finds `cwctl` through
/// `CWCTL` (see [`INIT`]).
const LAB_BINARIES: &[(&str, &str)] = &[
    ("clusterwire-cli", "cwctl"),
    ("clusterwire-agent", "clusterwire-agent"),
    ("clusterwire-gateway", "clusterwire-gateway"),
];

fn build_lab_binaries() -> anyhow::Result<Vec<GuestBinary>> {
    let mut c = cmd::host_cargo();
    c.args(["build", "--message-format=json"]);
    for (package, _) in LAB_BINARIES {
        c.args(["-p", package]);
    }
    c.stderr(Stdio::inherit());
    let out = cmd::stdout(&mut c)?;
    let mut found = Vec::new();
    for line in out.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let name = msg["target"]["name"].as_str().unwrap_or_default();
        if let Some(exe) = msg["executable"].as_str()
            && LAB_BINARIES.iter().any(|(_, bin)| *bin == name)
        {
            found.push(GuestBinary::Helper(PathBuf::from(exe)));
        }
    }
    if found.len() != LAB_BINARIES.len() {
        bail!("cargo built {found:?}, expected the lab binaries {LAB_BINARIES:?}");
    }
    Ok(found)
}

/// An unpacked kernel: image to boot and module tree.
struct KernelImage {
    release: String,
    boot: PathBuf,
    modules: PathBuf,
}

fn prepare_kernel(work: &Path, kernel: &Kernel) -> anyhow::Result<KernelImage> {
    let package = resolve_image_package(kernel.metapackage)?;
    let release = package.trim_start_matches("linux-image-").to_owned();
    let root = work.join("kernels").join(&release);
    let vmlinuz = root.join("boot").join(format!("vmlinuz-{release}"));
    if !vmlinuz.is_file() {
        let debs = work.join("debs");
        fs::create_dir_all(&debs).with_context(|| format!("create {}", debs.display()))?;
        println!("vm {}: apt-get download {package}", kernel.label);
        cmd::output(
            Command::new("apt-get")
                .current_dir(&debs)
                .args(["download", "-q", &package]),
        )?;
        let deb = find_deb(&debs, &package)?;
        let tmp = work.join("kernels").join(format!("{release}.partial"));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        cmd::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tmp))?;
        fs::rename(&tmp, &root).with_context(|| format!("rename into {}", root.display()))?;
    }
    let modules = root.join("lib/modules").join(&release);
    let vmlinux = root.join(format!("vmlinux-{release}"));
    let boot = if vmlinux.is_file() || extract_vmlinux(&vmlinuz, &vmlinux)? {
        vmlinux
    } else {
        vmlinuz
    };
    Ok(KernelImage {
        release,
        boot,
        modules,
    })
}

/// `linux-image-amd64` -> `linux-image-6.1.0-41-amd64`, from the APT cache.
fn resolve_image_package(meta: &str) -> anyhow::Result<String> {
    let depends = |meta: &str| -> anyhow::Result<Option<String>> {
        let out = cmd::stdout(Command::new("apt-cache").args(["depends", meta]))?;
        Ok(out.lines().find_map(|l| {
            let dep = l.trim().strip_prefix("Depends: ")?;
            dep.starts_with("linux-image-")
                .then(|| dep.trim().to_owned())
        }))
    };
    if let Ok(Some(p)) = depends(meta) {
        return Ok(p);
    }
    // A fresh machine may have empty package lists.
    cmd::output(Command::new("apt-get").args(["update", "-qq"]))?;
    depends(meta)?
        .with_context(|| format!("`apt-cache depends {meta}` names no linux-image package"))
}

fn find_deb(dir: &Path, package: &str) -> anyhow::Result<PathBuf> {
    let prefix = format!("{package}_");
    fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
                && p.extension().is_some_and(|e| e == "deb")
        })
        .with_context(|| {
            format!(
                "apt-get download left no {prefix}*.deb in {}",
                dir.display()
            )
        })
}

/// Finds the compressed payload inside a bzImage and decompresses it to an ELF `vmlinux`.
/// Returns false (boot the bzImage instead) when no known payload yields an ELF.
fn extract_vmlinux(vmlinuz: &Path, out: &Path) -> anyhow::Result<bool> {
    let data = fs::read(vmlinuz).with_context(|| format!("read {}", vmlinuz.display()))?;
    let formats: [(&[u8], &str); 3] = [
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz"),
        (&[0x1f, 0x8b, 0x08], "gzip"),
    ];
    for (magic, tool) in formats {
        let mut start = 0;
        while let Some(pos) = find(&data[start..], magic).map(|p| p + start) {
            start = pos + 1;
            let Some(elf) = decompress(tool, &data[pos..]) else {
                continue;
            };
            if elf.starts_with(b"\x7fELF") {
                fs::write(out, elf).with_context(|| format!("write {}", out.display()))?;
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decompresses with an external tool; trailing data after the stream is expected (the rest of
/// the bzImage), so a non-zero exit with output is still used.
fn decompress(tool: &str, input: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write as _;
    let mut child = Command::new(tool)
        .args(["-dcq"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().ok()?;
    let _ = writer.join();
    (!out.stdout.is_empty()).then_some(out.stdout)
}

/// Module name (with `-` as `_`) -> path of its `.ko*` file.
fn module_index(modules: &Path) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut index = BTreeMap::new();
    let mut stack = vec![modules.join("kernel")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned())
                && let Some((stem, _)) = name.split_once(".ko")
            {
                index.insert(stem.replace('-', "_"), path);
            }
        }
    }
    Ok(index)
}

/// The modules to load, dependencies first (built-ins skipped).
fn module_order(modules: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let builtin: HashSet<String> = fs::read_to_string(modules.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.rsplit('/')
                .next()?
                .split_once(".ko")
                .map(|(s, _)| s.replace('-', "_"))
        })
        .collect();
    let mut resolver = ModuleResolver {
        index: module_index(modules)?,
        builtin,
        seen: HashSet::new(),
        order: Vec::new(),
    };
    for m in MODULES {
        resolver.visit(m)?;
    }
    Ok(resolver.order)
}

/// Depth-first walk of `modinfo -F depends`.
struct ModuleResolver {
    index: BTreeMap<String, PathBuf>,
    builtin: HashSet<String>,
    seen: HashSet<String>,
    order: Vec<(String, PathBuf)>,
}

impl ModuleResolver {
    fn visit(&mut self, name: &str) -> anyhow::Result<()> {
        let name = name.replace('-', "_");
        if !self.seen.insert(name.clone()) || self.builtin.contains(&name) {
            return Ok(());
        }
        let path = self
            .index
            .get(&name)
            .with_context(|| format!("module {name} not in the kernel package"))?
            .clone();
        let deps = cmd::stdout(Command::new("modinfo").args(["-F", "depends"]).arg(&path))?;
        for dep in deps.trim().split(',').filter(|d| !d.is_empty()) {
            self.visit(dep)?;
        }
        self.order.push((name, path));
        Ok(())
    }
}

fn build_initramfs(
    work: &Path,
    image: &KernelImage,
    binaries: &[GuestBinary],
) -> anyhow::Result<PathBuf> {
    let root = work.join(format!("initramfs-{}", image.release));
    let _ = fs::remove_dir_all(&root);
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "lib/modules",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "tests",
        "etc",
    ] {
        fs::create_dir_all(root.join(d))?;
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .context("busybox is missing: run `cargo xtask setup`")?;
    copy_file(busybox, &root.join("bin/busybox"))?;
    // iproute2 (`ip`, `tc`) and iputils' ping, which the netns tier runs.
    // nft: the lab's simulated CNI.
    for tool in [
        "/usr/sbin/ip",
        "/usr/sbin/tc",
        "/usr/bin/ping",
        "/usr/sbin/nft",
    ] {
        copy_elf(Path::new(tool), &root, Path::new(tool))?;
    }
    let mut order = String::new();
    for (name, path) in module_order(&image.modules)? {
        let file = format!("{name}.ko");
        let tool = match path.extension().and_then(|e| e.to_str()) {
            Some("xz") => Some("xz"),
            Some("zst") => Some("zstd"),
            Some("gz") => Some("gzip"),
            _ => None,
        };
        let bytes = match tool {
            Some(tool) => cmd::output(Command::new(tool).arg("-dc").arg(&path))?.stdout,
            None => fs::read(&path)?,
        };
        fs::write(root.join("lib/modules").join(&file), bytes)?;
        order.push_str(&file);
        order.push('\n');
    }
    fs::write(root.join("lib/modules/order"), order)?;
    copy_binaries(&root, binaries)?;
    fs::create_dir_all(root.join("testargs"))?;
    for (name, filters) in GUEST_FILTERS {
        // `CW_VM_FILTER_<BINARY>` (e.g. `CW_VM_FILTER_NETNS="lab_faults::"`) replaces a binary's
        // filters, to rerun a few tests on both kernels while developing.
        let filters = std::env::var(format!("CW_VM_FILTER_{}", name.to_ascii_uppercase()))
            .unwrap_or_else(|_| filters.join(" "));
        fs::write(root.join("testargs").join(name), filters)?;
    }
    let init = root.join("init");
    fs::write(&init, INIT)?;
    set_executable(&init)?;
    let cpio = work.join(format!("initramfs-{}.cpio", image.release));
    let list = cmd::stdout(Command::new("find").arg(".").current_dir(&root))?;
    let file = fs::File::create(&cpio)?;
    let mut child = Command::new("cpio")
        .args(["-o", "-H", "newc", "--quiet"])
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(file)
        .spawn()
        .context("could not start cpio")?;
    {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .context("cpio stdin")?
            .write_all(list.as_bytes())?;
    }
    if !child.wait()?.success() {
        bail!("cpio failed packing {}", root.display());
    }
    Ok(cpio)
}

/// Copies the test binaries to `/tests` and the helpers to their host paths, and writes the
/// guest's `/testenv` (where `cwctl` is).
fn copy_binaries(root: &Path, binaries: &[GuestBinary]) -> anyhow::Result<()> {
    for (i, binary) in binaries.iter().enumerate() {
        match binary {
            GuestBinary::Test(name, path) => {
                let to = Path::new("/tests").join(format!("{i:02}-{name}"));
                copy_elf(path, root, &to)?;
                strip_debug(root, &to)?;
            }
            // At its host path: the tests start it by the path cargo compiled into them. The
            // initramfs root is writable, so nothing is mounted over /tmp, where a clone may be.
            GuestBinary::Helper(path) => {
                copy_elf(path, root, path)?;
                strip_debug(root, path)?;
            }
        }
    }
    let env = binaries
        .iter()
        .find_map(|b| match b {
            GuestBinary::Helper(p) if p.file_name() == Some("cwctl".as_ref()) => {
                Some(format!("export CWCTL={}\n", p.display()))
            }
            _ => None,
        })
        .unwrap_or_default();
    fs::write(root.join("testenv"), env)?;
    Ok(())
}

/// Drops the debug sections of a test binary in the initramfs (symbols stay, so backtraces keep
/// function names): debug builds are hundreds of MiB, more than the guest's memory can unpack.
fn strip_debug(root: &Path, path: &Path) -> anyhow::Result<()> {
    let inside = root.join(path.strip_prefix("/").unwrap_or(path));
    cmd::run(Command::new("strip").arg("--strip-debug").arg(&inside))
}

fn copy_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(from, to).with_context(|| format!("copy {} to {}", from.display(), to.display()))?;
    set_executable(to)
}

fn set_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", path.display()))
}

/// Copies an ELF and the shared libraries `ldd` names into the initramfs (same paths).
fn copy_elf(from: &Path, root: &Path, to: &Path) -> anyhow::Result<()> {
    copy_file(from, &root.join(to.strip_prefix("/").unwrap_or(to)))?;
    let ldd = Command::new("ldd")
        .arg(from)
        .output()
        .context("could not run ldd")?;
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let dest = root.join(lib.trim_start_matches('/'));
        if !dest.exists() {
            let real = fs::canonicalize(lib).with_context(|| format!("resolve {lib}"))?;
            copy_file(&real, &dest)?;
        }
    }
    Ok(())
}

/// Test filters per test binary in the guest (none: every test but `host_tool_*`). The netns
/// tier runs the modules that exercise the datapath on that kernel, and the lab with the kernel's
/// WireGuard and Geneve drivers and with mixed implementations (the eBPF/userspace lab runs on
/// the host), and the gateway and agent `kill -9` faults with those drivers (where a killed
/// gateway's kernel links and pinned programs keep forwarding); the WireGuard interop tests need
/// wireguard-go, which the initramfs does not carry.
const GUEST_FILTERS: &[(&str, &[&str])] = &[(
    "netns",
    &[
        "lifecycle::",
        "remap::",
        "geneve::",
        "gso::",
        "wireguard::",
        "probe_",
        "kernel_capability",
        "lab::lab_kernel_drivers",
        "lab::lab_mixed",
        "lab_faults::lab_agent_kill_9",
        "lab_faults::lab_gateway_kill_9",
        "lab_faults::lab_server_gateway_kill_9",
    ],
)];

/// The guest's init: load modules, run each test binary, report, power off.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
rm -f /bin/ip
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run
mkdir -p /var && ln -s /run /var/run
mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf
for m in $(cat /lib/modules/order); do
  insmod /lib/modules/$m || echo "CW_VM_WARN insmod $m failed"
done
echo "CW_VM_KERNEL $(uname -r)"
# The lab tests' cwctl; kernel-driver tests must run here, not skip.
. /testenv
export CW_REQUIRE_KERNEL_DRIVERS=1
status=0
for t in /tests/*; do
  name=${t##*/}; name=${name#*-}
  echo "CW_VM_BEGIN $name"
  RUST_BACKTRACE=1 "$t" --test-threads=1 --show-output --skip host_tool_ $(cat "/testargs/$name" 2>/dev/null)
  rc=$?
  echo "CW_VM_END $name rc=$rc"
  [ "$rc" -eq 0 ] || status=1
done
echo "CW_VM_DONE status=$status"
poweroff -f
"#;

fn boot(
    label: &str,
    kernel: &Path,
    initramfs: &Path,
    timeout: Duration,
) -> anyhow::Result<VmOutcome> {
    let started = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "tcg,thread=multi",
            "-cpu",
            "max",
            "-smp",
            "1",
            "-m",
            "2048",
        ])
        .args([
            "-nographic",
            "-no-reboot",
            "-nodefaults",
            "-serial",
            "stdio",
        ])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initramfs)
        .args([
            "-append",
            "console=ttyS0 panic=-1 quiet loglevel=3 mitigations=off nokaslr",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("could not start qemu-system-x86_64")?;
    let stdout = child.stdout.take().context("qemu stdout")?;
    let label_owned = label.to_owned();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_owned();
            println!("[{label_owned}] {line}");
            lines.push(line);
        }
        lines
    });
    let mut problem = None;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            problem = Some(format!("killed after {} s", timeout.as_secs()));
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let lines = reader
        .join()
        .map_err(|_| anyhow::anyhow!("qemu output reader panicked"))?;
    let mut outcome = parse_report(label, &lines);
    outcome.elapsed = started.elapsed();
    if problem.is_some() {
        outcome.passed = false;
        outcome.problem = problem;
    }
    Ok(outcome)
}

/// Reads the guest's `CW_VM_*` markers.
fn parse_report(label: &str, lines: &[String]) -> VmOutcome {
    let mut outcome = VmOutcome {
        label: label.to_owned(),
        release: None,
        results: Vec::new(),
        passed: false,
        elapsed: Duration::ZERO,
        problem: None,
    };
    let mut done = None;
    // The serial console may glue a marker to firmware output: look for it anywhere in a line.
    for line in lines
        .iter()
        .filter_map(|l| l.find("CW_VM_").map(|i| &l[i..]))
    {
        if let Some(r) = line.strip_prefix("CW_VM_KERNEL ") {
            outcome.release = Some(r.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("CW_VM_END ")
            && let Some((name, rc)) = rest.split_once(" rc=")
        {
            outcome
                .results
                .push((name.to_owned(), rc.trim().parse().unwrap_or(-1)));
        } else if let Some(s) = line.strip_prefix("CW_VM_DONE status=") {
            done = s.trim().parse::<i32>().ok();
        }
    }
    match done {
        Some(0)
            if !outcome.results.is_empty() && outcome.results.iter().all(|(_, rc)| *rc == 0) =>
        {
            outcome.passed = true;
        }
        Some(_) => {}
        None => outcome.problem = Some("the guest did not report (boot failure or panic)".into()),
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::parse_report;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_guest_that_ran_everything_passes() {
        let o = parse_report(
            "6.1",
            &lines(
                "Booting from ROM..CW_VM_KERNEL 6.1.0-41-amd64\nCW_VM_END vm rc=0\nCW_VM_END datapath rc=0\nCW_VM_DONE status=0",
            ),
        );
        assert!(o.passed);
        assert_eq!(o.release.as_deref(), Some("6.1.0-41-amd64"));
        assert_eq!(
            o.results,
            vec![("vm".to_owned(), 0), ("datapath".to_owned(), 0)]
        );
    }

    #[test]
    fn a_failing_binary_or_a_missing_report_fails() {
        let failed = parse_report("6.1", &lines("CW_VM_END vm rc=101\nCW_VM_DONE status=1"));
        assert!(!failed.passed);
        let silent = parse_report("6.12", &lines("Kernel panic - not syncing"));
        assert!(!silent.passed);
        assert!(silent.problem.is_some());
        let empty = parse_report("6.12", &lines("CW_VM_DONE status=0"));
        assert!(!empty.passed, "a guest that ran no binary did not pass");
    }
}
