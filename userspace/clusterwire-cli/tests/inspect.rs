//! `cwctl inspect` against a real pinned instance: one is created under `/sys/fs/bpf`
//! (`Instance::open`, a name unique to this process), its tables filled, and `cwctl inspect -o
//! json` must decode exactly what was written while this process still holds the instance lock
//! (inspect never takes it). Needs root and bpffs; without them the test says SKIPPED (and fails
//! when `CI` is set, as the other tiers do).

use std::{collections::BTreeMap, net::Ipv4Addr, path::Path, process::Command};

use clusterwire_dataplane::{
    Instance, InstanceSpec, IpMapKind, NatTables, PIN_ROOT, RemapKind,
    geneve::{Delivery, GeneveMaps, RouteTarget, TunnelMode, TunnelRoute, Vni},
};
use serde_json::{Value, json};

/// Destroys the instance when the test ends, also on panic.
struct Guard {
    instance: Option<Instance>,
    name: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        match self.instance.take() {
            Some(instance) => {
                let _ = instance.destroy();
            }
            None => {
                let _ = Instance::destroy_by_name(Path::new(PIN_ROOT), &self.name);
            }
        }
    }
}

fn can_run() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let bpffs = std::fs::read_to_string("/proc/mounts").is_ok_and(|mounts| {
        mounts
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/bpf") && l.contains(" bpf "))
    });
    if root && bpffs {
        return true;
    }
    let why = if root {
        "no bpffs at /sys/fs/bpf"
    } else {
        "not root"
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "inspect: cannot run ({why}) and CI is set"
    );
    eprintln!("inspect: SKIPPED: {why}");
    false
}

fn inspect(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cwctl"))
        .arg("inspect")
        .args(args)
        .output()
        .expect("run cwctl");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn net(text: &str) -> ipnet::Ipv4Net {
    text.parse().expect("prefix")
}

/// Writes the tables the test expects to read back.
fn fill(instance: &mut Instance) {
    let mut nat = NatTables::take(instance.datapath_mut()).expect("NAT tables");
    nat.sync_remaps(
        RemapKind::Dst,
        &BTreeMap::from([(net("10.50.0.0/16"), net("10.0.0.0/16"))]),
    )
    .expect("remap dst");
    nat.sync_remaps(
        RemapKind::Src,
        &BTreeMap::from([
            (net("10.0.0.0/16"), net("10.50.0.0/16")),
            (net("169.254.18.2/32"), net("169.254.18.2/32")),
        ]),
    )
    .expect("remap src");
    nat.sync_ipmap(
        IpMapKind::Exit,
        &BTreeMap::from([(Ipv4Addr::new(10, 80, 0, 1), Ipv4Addr::new(10, 70, 0, 1))]),
    )
    .expect("ipmap exit");
    let mut geneve = GeneveMaps::take(instance.datapath_mut().ebpf_mut()).expect("Geneve maps");
    let vni = Vni::try_new(4242).expect("vni");
    let route = TunnelRoute {
        remote: Ipv4Addr::new(172, 31, 1, 11),
        vni,
        mode: TunnelMode::Native {
            egress_ifindex: None,
        },
    };
    geneve
        .sync_routes(&BTreeMap::from([(
            net("10.0.1.0/24"),
            RouteTarget {
                route,
                inner_dst_mac: None,
            },
        )]))
        .expect("routes");
    geneve
        .sync_peers(&BTreeMap::from([(
            (Ipv4Addr::new(172, 31, 1, 11), vni),
            Delivery::InPlace,
        )]))
        .expect("peers");
}

#[test]
fn inspect_decodes_a_live_instance_without_its_lock() {
    if !can_run() {
        return;
    }
    let name = format!("cwctl-inspect-{}", std::process::id());
    let mut guard = Guard {
        instance: None,
        name: name.clone(),
    };
    let spec = InstanceSpec {
        tunnel_device: None,
        ..InstanceSpec::gateway(name.clone(), 7, "unused")
    };
    let instance = guard
        .instance
        .insert(Instance::open(spec).expect("open the instance"));
    fill(instance);

    let (code, stdout, stderr) = inspect(&[&name, "-o", "json"]);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    let got = &report["instances"][0];
    assert_eq!(got["name"], json!(name));
    assert_eq!(got["role"], json!("gateway"));
    assert_eq!(got["peer_id"], json!(7));
    assert_eq!(
        got["layout_version"],
        json!(clusterwire_common::meta::LAYOUT_VERSION)
    );
    assert_eq!(got["problems"], json!([]));
    assert_eq!(
        got["nat"],
        json!({
            "remap_dst": [{"peer_id": 7, "from": "10.50.0.0/16", "to": "10.0.0.0/16"}],
            "remap_src": [
                {"peer_id": 7, "from": "10.0.0.0/16", "to": "10.50.0.0/16"},
                {"peer_id": 7, "from": "169.254.18.2/32", "to": "169.254.18.2/32"}
            ],
            "ipmap_exit": [{"from": "10.80.0.1", "to": "10.70.0.1"}],
            "ipmap_entry": []
        })
    );
    assert_eq!(
        got["geneve"],
        json!({
            "routes": [{"prefix": "10.0.1.0/24", "remote": "172.31.1.11", "vni": 4242,
                        "mode": "native", "ifindex": null, "inner_dst_mac": null}],
            "peers": [{"remote": "172.31.1.11", "vni": 4242, "deliver_to_ifindex": null,
                       "dst_mac": null}]
        })
    );
    assert_eq!(got["events"]["geneve_encap"], json!(0));
    assert_eq!(got["drops"]["spoofed_source"], json!(0));
    assert_eq!(
        got["peer_stats"],
        json!({"rx_packets": 0, "rx_bytes": 0, "tx_packets": 0, "tx_bytes": 0})
    );
    assert_eq!(got["attachments"], json!([]));
    let maps = got["layout"]["maps"].as_array().expect("maps");
    assert_eq!(maps.len(), 13, "a gateway pins every map: {maps:?}");
    assert!(maps.iter().all(|m| m["matches"] == json!(true)), "{maps:?}");

    // The text form names the same entries.
    let (code, text, _) = inspect(&[&name]);
    assert_eq!(code, Some(0));
    assert!(
        text.contains("10.50.0.0/16") && text.contains("peer 7"),
        "{text}"
    );

    drop(guard);
    let (code, _, stderr) = inspect(&[&name]);
    assert_eq!(code, Some(1), "a removed instance is an error");
    assert!(stderr.contains("no instance"), "{stderr}");
}
