//! A restart with the same object and configuration keeps the programs an earlier process
//! loaded (no verifier run, the same kernel programs on the hooks); any difference (another
//! tunnel MTU or local address, a recreated device, a recreated map pin) loads and swaps in new
//! programs as before.
use std::{collections::BTreeSet, net::Ipv4Addr, path::Path};

use aya::programs::{SchedClassifier, TcAttachType, loaded_programs};
use clusterwire_dataplane::{AttachMode, AttachOutcome, Hook, Instance, InstanceSpec, features};
use clusterwire_tests::netns::NetNs;

use super::{Holder, Lab, PinRoot, SERVER_REMAPPED, lab, ping};

fn modes() -> &'static [&'static str] {
    if features::tcx() {
        &["tcx", "netlink"]
    } else {
        &["netlink"]
    }
}

/// The ids of the programs on t0's [ingress, egress] hooks (exactly one each).
fn hook_programs(lab: &Lab, mode: &str) -> [u32; 2] {
    let ids = |direction: TcAttachType, name: &str| -> Vec<u32> {
        if mode == "tcx" {
            lab.gateway.enter(|| {
                SchedClassifier::query_tcx("t0", direction)
                    .map(|(_, programs)| {
                        programs
                            .iter()
                            .map(aya::programs::ProgramInfo::id)
                            .collect()
                    })
                    .unwrap_or_default()
            })
        } else {
            let out = lab
                .gateway
                .exec("tc", &["filter", "show", "dev", "t0", name]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let words: Vec<&str> = text.split_whitespace().collect();
            words
                .windows(2)
                .filter(|w| w[0] == "id")
                .filter_map(|w| w[1].parse().ok())
                .collect()
        }
    };
    let [ingress, egress] = [
        ids(TcAttachType::Ingress, "ingress"),
        ids(TcAttachType::Egress, "egress"),
    ];
    assert!(
        ingress.len() == 1 && egress.len() == 1,
        "{mode}: one program per hook on t0, found ingress {ingress:?}, egress {egress:?}"
    );
    [ingress[0], egress[0]]
}

/// Ids of the programs pinned under `<instance>/programs-*/`, and how many such directories.
fn pinned_programs(instance_dir: &Path) -> (BTreeSet<u32>, usize) {
    let mut ids = BTreeSet::new();
    let mut dirs = 0;
    for entry in std::fs::read_dir(instance_dir)
        .expect("instance dir")
        .flatten()
    {
        if !entry.file_name().to_string_lossy().starts_with("programs-") {
            continue;
        }
        dirs += 1;
        for pin in std::fs::read_dir(entry.path())
            .expect("programs dir")
            .flatten()
        {
            let program = SchedClassifier::from_pin(pin.path()).expect("pinned program");
            ids.insert(program.info().expect("program info").id());
        }
    }
    (ids, dirs)
}

/// Ids of the programs a process holds descriptors of (`prog_id:` in its fdinfo): a program it
/// loaded, or opened from a pin.
fn held_programs(pid: u32) -> BTreeSet<u32> {
    let dir = format!("/proc/{pid}/fdinfo");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("prog_id:"))
                .and_then(|id| id.trim().parse().ok())
        })
        .collect()
}

#[test]
fn a_restart_with_the_same_config_keeps_the_programs_and_a_new_mtu_swaps_them() {
    for &mode in modes() {
        let pins = PinRoot::new(&format!("keep-{mode}"));
        let lab = lab();
        let dir = pins.0.join("gw");
        let (mut holder, ready) = Holder::start(&lab, &pins, mode);
        assert!(
            ready.contains("adopted=false programs_kept=false outcomes=[Created, Created]"),
            "{mode}: {ready}"
        );
        ping(&lab.client, SERVER_REMAPPED, 2);
        let first = hook_programs(&lab, mode);
        let (pinned, dirs) = pinned_programs(&dir);
        assert_eq!(dirs, 1, "{mode}: one set of pinned programs");
        assert!(
            first.iter().all(|id| pinned.contains(id)),
            "{mode}: the attached programs {first:?} are the pinned ones {pinned:?}"
        );

        // Same object, same configuration: the programs stay, none is loaded.
        holder.kill();
        let newest_before = loaded_programs().flatten().map(|p| p.id()).max();
        let (next, ready) = Holder::start(&lab, &pins, mode);
        holder = next;
        assert!(
            ready.contains("adopted=true programs_kept=true outcomes=[Kept, Kept]"),
            "{mode}: {ready}"
        );
        assert_eq!(
            hook_programs(&lab, mode),
            first,
            "{mode}: the same programs on t0"
        );
        let held = held_programs(holder.0.id());
        assert!(
            !held.is_empty() && held.is_subset(&pinned),
            "{mode}: the restarted owner holds programs {held:?}, not only the pinned {pinned:?} \
             (newest program id before the restart: {newest_before:?}): it loaded programs"
        );
        ping(&lab.client, SERVER_REMAPPED, 2);

        // Another tunnel MTU (MSS clamp): new programs, swapped in atomically.
        holder.kill();
        let (next, ready) = Holder::start_with(&lab, &pins, mode, &["mtu=1360"]);
        holder = next;
        assert!(
            ready.contains("adopted=true programs_kept=false outcomes=[Replaced, Replaced]"),
            "{mode}: {ready}"
        );
        let swapped = hook_programs(&lab, mode);
        assert!(
            swapped[0] != first[0] && swapped[1] != first[1],
            "{mode}: new programs on t0: {first:?} -> {swapped:?}"
        );
        let (repinned, dirs) = pinned_programs(&dir);
        assert_eq!(dirs, 1, "{mode}: the pins of the old programs are gone");
        assert!(
            repinned.is_disjoint(&pinned),
            "{mode}: {repinned:?} {pinned:?}"
        );
        ping(&lab.client, SERVER_REMAPPED, 2);

        // And the new configuration is kept on the next restart.
        holder.kill();
        let (next, ready) = Holder::start_with(&lab, &pins, mode, &["mtu=1360"]);
        holder = next;
        assert!(
            ready.contains("programs_kept=true outcomes=[Kept, Kept]"),
            "{mode}: {ready}"
        );
        assert_eq!(hook_programs(&lab, mode), swapped, "{mode}");
        holder.kill();
    }
}

fn outcomes(instance: &mut Instance) -> Vec<AttachOutcome> {
    instance.attach(Hook::TunnelNat, "wg0").expect("attach")
}

#[test]
fn programs_are_not_kept_on_a_recreated_device_another_address_or_a_recreated_map() {
    use AttachOutcome::{Created, Kept, Replaced};
    for &mode in modes() {
        let pins = PinRoot::new(&format!("keep-cases-{mode}"));
        let ns = NetNs::new("keep");
        let tun = |ns: &NetNs| {
            ns.ip(&["tuntap", "add", "dev", "wg0", "mode", "tun"]);
            ns.ip(&["link", "set", "wg0", "up"]);
        };
        tun(&ns);
        let spec = |local: [u8; 4]| InstanceSpec {
            pin_root: pins.0.clone(),
            attach_mode: mode.parse::<AttachMode>().expect("mode"),
            tunnel_mtu: 1340,
            local_ipv4: Some(Ipv4Addr::from(local)),
            ..InstanceSpec::gateway("gw", 3, "wg0")
        };
        let open = |local: [u8; 4]| -> (bool, Vec<AttachOutcome>) {
            ns.enter(|| {
                let mut instance = Instance::open(spec(local)).expect("open");
                let kept = instance.programs_kept();
                (kept, outcomes(&mut instance))
            })
        };
        assert_eq!(
            open([10, 0, 0, 1]),
            (false, vec![Created, Created]),
            "{mode}: first"
        );
        assert_eq!(
            open([10, 0, 0, 1]),
            (true, vec![Kept, Kept]),
            "{mode}: same"
        );

        // The device is deleted and created again under the same name: the pinned link (TCX)
        // is defunct, the filter (netlink) went with the device. Attach again.
        ns.ip(&["link", "del", "wg0"]);
        tun(&ns);
        assert_eq!(
            open([10, 0, 0, 1]),
            (true, vec![Created, Created]),
            "{mode}: recreated device"
        );
        assert_eq!(
            open([10, 0, 0, 1]),
            (true, vec![Kept, Kept]),
            "{mode}: after it"
        );

        // Another underlay address is another configuration.
        assert_eq!(
            open([10, 0, 0, 2]),
            (false, vec![Replaced, Replaced]),
            "{mode}: new local address"
        );
        assert_eq!(
            open([10, 0, 0, 2]),
            (true, vec![Kept, Kept]),
            "{mode}: kept"
        );

        // A map pin removed behind our back is created again: the pinned programs still use
        // the old map, so they must not be kept.
        std::fs::remove_file(pins.0.join("gw/CW_DROPS")).expect("remove a map pin");
        assert_eq!(
            open([10, 0, 0, 2]),
            (false, vec![Replaced, Replaced]),
            "{mode}: recreated map"
        );
        assert_eq!(
            open([10, 0, 0, 2]),
            (true, vec![Kept, Kept]),
            "{mode}: kept again"
        );
        ns.enter(|| Instance::destroy_by_name(&pins.0, "gw"))
            .expect("destroy");
    }
}
