//! VM tier: runs inside a stock Debian kernel booted by `cargo xtask vm-test`, where the geneve
//! and wireguard drivers exist. Each test works in a network namespace of its own.
mod geneve_wire;
mod wireguard_nat;

use clusterwire_links::{Capability, geneve, probe_kernel, wireguard};

fn in_fresh_netns<T>(f: impl std::future::Future<Output = T>) -> T {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

#[test]
fn kernel_geneve_collect_md_and_wireguard_are_created_and_read_back() {
    let caps = in_fresh_netns(async {
        let (connection, handle, _) = rtnetlink::new_connection().expect("rtnetlink");
        tokio::spawn(connection);
        probe_kernel(&handle).await
    })
    .expect("probe");
    println!(
        "kernel {}: geneve {}, wireguard {}",
        kernel(),
        caps.geneve,
        caps.wireguard
    );
    assert!(
        matches!(caps.geneve, Capability::Available { .. }),
        "geneve: {}",
        caps.geneve
    );
    assert!(
        matches!(caps.wireguard, Capability::Available { .. }),
        "wireguard: {}",
        caps.wireguard
    );
}

#[test]
fn geneve_link_keeps_its_port_and_collect_md_until_deleted() {
    in_fresh_netns(async {
        let (connection, handle, _) = rtnetlink::new_connection().expect("rtnetlink");
        tokio::spawn(connection);
        let ifindex = geneve::create_collect_md(&handle, "cw-gnv0", geneve::DEFAULT_PORT)
            .await
            .expect("create geneve");
        let link = geneve::get(&handle, "cw-gnv0")
            .await
            .expect("get")
            .expect("link exists");
        assert_eq!(
            link,
            geneve::GeneveLink {
                ifindex,
                collect_md: true,
                port: Some(6091)
            }
        );
        geneve::delete(&handle, "cw-gnv0", ifindex)
            .await
            .expect("delete");
        assert_eq!(geneve::get(&handle, "cw-gnv0").await.expect("get"), None);
    });
}

#[test]
fn wireguard_device_reports_its_key_and_port() {
    in_fresh_netns(async {
        let key = wireguard_control::Key::generate_private();
        wireguard::create_kernel("cw-wg0", &key, 51840).expect("create wireguard");
        let link = wireguard::get_kernel("cw-wg0").expect("get");
        assert_eq!(link.listen_port, Some(51840));
        assert_eq!(link.public_key, Some(key.get_public().to_base64()));
        wireguard::delete_kernel("cw-wg0").expect("delete");
        assert!(
            wireguard::get_kernel("cw-wg0").is_err(),
            "device still there after delete"
        );
    });
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned()
}
