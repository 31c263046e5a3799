//! Pinning: maps land under `<root>/<instance>/<MAP_NAME>`, are reused by the next load (the
//! tables survive a restart), stale pins and a missing bpffs are typed errors, and bpftool
//! pretty-prints the pinned tables from their BTF.
use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
};

use aya::maps::MapType;
use clusterwire_common::{
    drop::DROPS_MAP,
    nat::{IPMAP_EXIT_MAP, REMAP_DST_MAP},
    stats::PEER_STATS_MAP,
};
use clusterwire_dataplane::{
    Datapath, IpMapKind, LoadError, LoadOptions, PIN_ROOT, RemapEntry, RemapKind, Role,
    layout::MapLayout,
};
use clusterwire_tests::harness::chain;
use ipnet::Ipv4Net;

use crate::fixture::{PEER, config};

/// Mounts bpffs at /sys/fs/bpf when it is not one already (as `cargo xtask test` does).
fn ensure_bpffs() {
    let bpffs = nix::sys::statfs::statfs("/sys/fs/bpf")
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC);
    if !bpffs {
        nix::mount::mount(
            Some("bpf"),
            "/sys/fs/bpf",
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .expect("mount bpffs at /sys/fs/bpf (needs root)");
    }
}

/// A pin directory unique to this test process, removed (with its pins) on drop.
struct PinDir {
    instance: String,
    dir: PathBuf,
}

impl PinDir {
    fn new(tag: &str) -> Self {
        ensure_bpffs();
        let instance = format!("test-{}-{tag}", std::process::id());
        let dir = Path::new(PIN_ROOT).join(&instance);
        Self { instance, dir }
    }

    fn options(&self) -> LoadOptions {
        LoadOptions::pinned(self.instance.clone())
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn net(s: &str) -> Ipv4Net {
    s.parse().expect("prefix")
}

/// One remap and one IP mapping, the entries the pinning tests look for.
fn fill(dp: &mut Datapath) {
    dp.remap(RemapKind::Dst)
        .expect("table")
        .insert(PEER, net("10.50.0.0/16"), net("10.0.0.0/16"))
        .expect("insert");
    dp.ipmap(IpMapKind::Exit)
        .expect("table")
        .insert(Ipv4Addr::new(192, 168, 1, 10), Ipv4Addr::new(10, 70, 0, 5))
        .expect("insert");
}

#[test]
fn maps_are_pinned_and_reused_by_the_next_load() {
    let pins = PinDir::new("reuse");
    {
        let mut dp = Datapath::load(&config(1340, false), &pins.options())
            .unwrap_or_else(|e| panic!("load: {}", chain(&e)));
        assert_eq!(dp.pin_dir(), Some(pins.dir.as_path()));
        fill(&mut dp);
    }
    for name in Role::Gateway.pinned_maps().map(|m| m.name) {
        assert!(
            pins.dir.join(name).exists(),
            "{name} is not pinned in {}",
            pins.dir.display()
        );
    }
    // A new process (here: a new load) finds the tables as they were.
    let mut dp = Datapath::load(&config(1340, false), &pins.options())
        .unwrap_or_else(|e| panic!("reload: {}", chain(&e)));
    let entries = dp
        .remap(RemapKind::Dst)
        .expect("table")
        .entries()
        .expect("entries");
    assert_eq!(
        entries,
        vec![RemapEntry {
            peer_id: PEER,
            from: net("10.50.0.0/16"),
            to: net("10.0.0.0/16")
        }]
    );
    let ipmaps = dp
        .ipmap(IpMapKind::Exit)
        .expect("table")
        .entries()
        .expect("entries");
    assert_eq!(
        ipmaps,
        vec![(Ipv4Addr::new(192, 168, 1, 10), Ipv4Addr::new(10, 70, 0, 5))]
    );
}

#[test]
fn a_stale_pin_with_another_layout_is_refused() {
    let pins = PinDir::new("stale");
    std::fs::create_dir_all(&pins.dir).expect("create pin dir");
    // Pin the 32-byte-valued peer counters where the 8-byte-valued drop counters belong.
    let unpinned = Datapath::load(&config(0, false), &LoadOptions::unpinned()).expect("load");
    unpinned
        .ebpf()
        .map(PEER_STATS_MAP)
        .expect("peer stats map")
        .pin(pins.dir.join(DROPS_MAP))
        .expect("pin");
    match Datapath::load(&config(0, false), &pins.options()) {
        Err(LoadError::IncompatiblePin {
            path,
            found,
            expected,
        }) => {
            assert_eq!(path, pins.dir.join(DROPS_MAP));
            let per_cpu = |value_size, max_entries| MapLayout {
                map_type: MapType::PerCpuArray,
                key_size: 4,
                value_size,
                max_entries,
                flags: 0,
            };
            assert_eq!(found, per_cpu(32, 256));
            assert_eq!(
                expected,
                per_cpu(8, clusterwire_common::drop::DropReason::COUNT)
            );
        }
        other => panic!("expected IncompatiblePin, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn pinning_outside_a_bpffs_names_the_path_and_bad_instances_are_refused() {
    let root = std::env::temp_dir().join(format!("cw-not-bpffs-{}", std::process::id()));
    let options = LoadOptions {
        pin_root: root.join("clusterwire"),
        ..LoadOptions::pinned("x")
    };
    match Datapath::load(&config(0, false), &options) {
        Err(LoadError::NotBpffs { path }) => assert_eq!(path, root),
        other => panic!("expected NotBpffs, got {:?}", other.map(|_| ())),
    }
    for bad in ["", "..", "a/b", "white space"] {
        match Datapath::load(&config(0, false), &LoadOptions::pinned(bad)) {
            Err(LoadError::Instance(name)) => assert_eq!(name, bad),
            other => panic!(
                "instance {bad:?}: expected Instance, got {:?}",
                other.map(|_| ())
            ),
        }
    }
}

#[test]
fn host_tool_bpftool_pretty_prints_pinned_tables() {
    let pins = PinDir::new("bpftool");
    let mut dp = Datapath::load(&config(1340, false), &pins.options()).expect("load");
    fill(&mut dp);
    for (map, needles) in [
        (
            REMAP_DST_MAP,
            &[
                "\"peer_id\": 7",
                "\"addr_be\": [10,50,0,0",
                "\"prefix_len\": 16",
            ][..],
        ),
        (
            IPMAP_EXIT_MAP,
            &["\"addr_be\": [192,168,1,10", "\"addr_be\": [10,70,0,5"][..],
        ),
    ] {
        let path = pins.dir.join(map);
        let out = Command::new("bpftool")
            .args(["-j", "-p", "map", "dump", "pinned"])
            .arg(&path)
            .output()
            .expect("run bpftool (a host tool; install it with `cargo xtask setup`)");
        assert!(
            out.status.success(),
            "bpftool failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text: String = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace(", ", ",")
            .replace("[ ", "[");
        for needle in needles {
            assert!(
                text.contains(needle),
                "{map}: bpftool output lacks {needle}: {text}"
            );
        }
    }
}

#[test]
fn the_layout_table_matches_the_maps_the_object_creates() {
    let pins = PinDir::new("layout");
    std::fs::create_dir_all(&pins.dir).expect("create pin dir");
    for role in [Role::Gateway, Role::Node] {
        let options = LoadOptions {
            role,
            ..LoadOptions::unpinned()
        };
        let dp = Datapath::load(&config(0, false), &options)
            .unwrap_or_else(|e| panic!("load as {role}: {}", chain(&e)));
        for spec in clusterwire_dataplane::layout::MAPS {
            let map = dp
                .ebpf()
                .map(spec.name)
                .unwrap_or_else(|| panic!("{} is not in the object", spec.name));
            let path = pins.dir.join(format!("{role}-{}", spec.name));
            map.pin(&path).expect("pin to read the kernel's view");
            let found = clusterwire_dataplane::layout::pinned_layout(&path)
                .expect("map info")
                .expect("pinned");
            assert_eq!(found, spec.layout(role), "{} as {role}", spec.name);
        }
    }
}
