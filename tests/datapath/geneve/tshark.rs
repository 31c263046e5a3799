//! tshark as an independent decoder of what `cw_geneve_encap` writes. Needs the host tool, hence
//! the `host_tool_` prefix (the VM tier, which has no tshark, skips it).
use std::{path::PathBuf, process::Command};

use clusterwire_tests::pcap;

use super::{GATEWAY_IP, NODE_IP, encap};

/// Runs tshark on `file` with Geneve decoding on port 6091 and checksum validation; returns the
/// requested fields of the first frame, split on `|`.
fn tshark_fields(file: &std::path::Path, fields: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(file)
        .args(["-d", "udp.port==6091,geneve"])
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
        ])
        .args(["-T", "fields", "-E", "separator=|", "-E", "aggregator=,"]);
    for field in fields {
        cmd.args(["-e", field]);
    }
    let output = match cmd.output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "tshark is not installed: this test needs it as an independent Geneve decoder; \
             run `cargo xtask setup`"
        ),
        Err(e) => panic!("running tshark failed: {e}"),
    };
    assert!(
        output.status.success(),
        "tshark failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("tshark prints UTF-8");
    let line = stdout.lines().next().expect("tshark printed no frame");
    line.split('|').map(str::to_owned).collect()
}

#[test]
fn host_tool_tshark_decodes_native_encap_with_good_checksums() {
    let mut node = encap::node(None);
    let inner = encap::pod_frame(40020);
    let (_, out) = node.encap(&inner);
    let sport = encap::sport_of(&out);

    let path: PathBuf = std::env::temp_dir().join(format!(
        "clusterwire-geneve-{}-{sport}.pcap",
        std::process::id()
    ));
    pcap::write(&path, &[&out]).expect("write pcap");
    let fields = tshark_fields(
        &path,
        &[
            "frame.protocols",
            "geneve.version",
            "geneve.vni",
            "geneve.proto_type",
            "ip.src",
            "ip.dst",
            "ip.flags.df",
            "ip.ttl",
            "ip.checksum.status",
            "udp.srcport",
            "udp.dstport",
            "udp.checksum.status",
            "_ws.expert",
        ],
    );
    std::fs::remove_file(&path).ok();

    let expected = [
        (
            "frame.protocols",
            "eth:ethertype:ip:udp:geneve:eth:ethertype:ip:udp:data".to_owned(),
        ),
        ("geneve.version", "0".to_owned()),
        ("geneve.vni", "0x123456".to_owned()),
        ("geneve.proto_type", "0x6558".to_owned()),
        ("ip.src (outer, inner)", format!("{NODE_IP},10.0.1.5")),
        ("ip.dst (outer, inner)", format!("{GATEWAY_IP},10.70.3.9")),
        ("ip.flags.df (outer, inner)", "1,1".to_owned()),
        ("ip.ttl (outer, inner)", "64,64".to_owned()),
        // 1 = Good, for the outer and the inner IPv4 header.
        ("ip.checksum.status", "1,1".to_owned()),
        ("udp.srcport", format!("{sport},40020")),
        ("udp.dstport", "6091,5201".to_owned()),
        // 3 = Not present (outer checksum 0, allowed for IPv4), 1 = Good (inner).
        ("udp.checksum.status", "3,1".to_owned()),
        ("_ws.expert (no warnings)", String::new()),
    ];
    assert_eq!(fields.len(), expected.len(), "tshark fields: {fields:?}");
    for ((name, want), got) in expected.iter().zip(&fields) {
        assert_eq!(got, want, "tshark field {name}");
    }
}
