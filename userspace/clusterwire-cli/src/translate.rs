//! The self-check's real translations: one TCP SYN through `cw_nat_to_tunnel` (destination
//! remapped, MSS clamped) and the result through `cw_geneve_encap` (native encapsulation),
//! both run with `BPF_PROG_TEST_RUN` and checked field by field, with every checksum recomputed
//! from scratch here (RFC 1071), independently of the datapath's incremental updates.
use std::net::Ipv4Addr;

use anyhow::{Context as _, ensure};
use aya::programs::{TestRun as _, TestRunOptions};
use clusterwire_common::{
    config::DatapathConfig,
    geneve::{GENEVE_DEFAULT_PORT, GENEVE_ENCAP_OVERHEAD, GENEVE_ENCAP_PROGRAM, GENEVE_PROTO_TEB},
    nat::NAT_TO_TUNNEL_PROGRAM,
};
use clusterwire_dataplane::{
    Datapath, LoadOptions, RemapKind,
    geneve::{GeneveMaps, TunnelMode, TunnelRoute, Vni},
};

const PEER: u32 = 1;
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const REMAPPED: Ipv4Addr = Ipv4Addr::new(10, 71, 0, 1);
const REAL: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const UNDERLAY_LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const UNDERLAY_REMOTE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const VNI: u32 = 42;
const TUNNEL_MTU: u32 = 1340;
const ETH: usize = 14;
const IP: usize = 20;

/// RFC 1071 one's-complement sum of `data`, folded, not inverted.
fn sum(data: &[u8], mut acc: u32) -> u32 {
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        acc += u32::from(word);
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

fn checksum(data: &[u8], acc: u32) -> u16 {
    #[expect(clippy::cast_possible_truncation, reason = "folded to 16 bits")]
    let folded = sum(data, acc) as u16;
    !folded
}

/// Whether the IPv4 header at `ip` and its TCP segment carry correct checksums.
fn valid_ipv4_tcp(ip: &[u8]) -> bool {
    let header_ok = checksum(&ip[..IP], 0) == 0;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let segment = &ip[IP..total];
    let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
    let pseudo = sum(&ip[12..20], 0) + 6 + len;
    header_ok && checksum(segment, pseudo) == 0
}

/// Ethernet + IPv4 + TCP SYN with an MSS option of 1460, checksums correct.
fn syn() -> Vec<u8> {
    let mut f = vec![0u8; ETH + IP + 24];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[ETH..];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&44u16.to_be_bytes());
    ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&CLIENT.octets());
    ip[16..20].copy_from_slice(&REMAPPED.octets());
    let tcp = &mut ip[IP..];
    tcp[0..2].copy_from_slice(&40_000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&7u32.to_be_bytes());
    tcp[12] = 6 << 4;
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&64_240u16.to_be_bytes());
    tcp[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
    let header = checksum(&f[ETH..ETH + IP], 0);
    f[ETH + 10..ETH + 12].copy_from_slice(&header.to_be_bytes());
    let pseudo = sum(&f[ETH + 12..ETH + 20], 0) + 6 + 24;
    let segment = checksum(&f[ETH + IP..], pseudo);
    f[ETH + IP + 16..ETH + IP + 18].copy_from_slice(&segment.to_be_bytes());
    f
}

fn run(dp: &mut Datapath, program: &'static str, input: &[u8]) -> anyhow::Result<(i32, Vec<u8>)> {
    let mut out = vec![0u8; input.len() + 256];
    let result = dp
        .program(program)?
        .test_run(TestRunOptions {
            data_in: Some(input),
            data_out: Some(&mut out),
            repeat: 1,
            ..TestRunOptions::default()
        })
        .with_context(|| format!("BPF_PROG_TEST_RUN of {program}"))?;
    out.truncate(usize::try_from(result.data_size_out)?);
    #[expect(clippy::cast_possible_wrap, reason = "TC verdicts are i32")]
    Ok((result.return_value as i32, out))
}

/// Translates one SYN and encapsulates it; prints what was checked.
pub fn check() -> anyhow::Result<()> {
    let config = DatapathConfig {
        tunnel_mtu: TUNNEL_MTU,
        peer_id: PEER,
        local_ipv4_be: u32::from_ne_bytes(UNDERLAY_LOCAL.octets()),
        geneve_port: GENEVE_DEFAULT_PORT,
        ..DatapathConfig::zeroed()
    };
    let mut dp = Datapath::load(&config, &LoadOptions::unpinned())?;
    dp.remap(RemapKind::Dst)?.insert(
        PEER,
        format!("{REMAPPED}/24").parse()?,
        format!("{REAL}/24").parse()?,
    )?;
    let input = syn();
    let (verdict, nat) = run(&mut dp, NAT_TO_TUNNEL_PROGRAM, &input)?;
    ensure!(
        verdict == 0,
        "NAT verdict {verdict}, expected TC_ACT_OK (0)"
    );
    ensure!(nat.len() == input.len(), "NAT changed the frame length");
    ensure!(
        nat[ETH + 16..ETH + 20] == REAL.octets(),
        "destination not remapped"
    );
    let mss = u16::from_be_bytes([nat[ETH + IP + 22], nat[ETH + IP + 23]]);
    ensure!(
        u32::from(mss) == TUNNEL_MTU - 40,
        "MSS {mss}, expected {}",
        TUNNEL_MTU - 40
    );
    ensure!(
        valid_ipv4_tcp(&nat[ETH..]),
        "NAT left a wrong IPv4 or TCP checksum"
    );
    println!(
        "NAT             SYN {CLIENT} -> {REMAPPED} became -> {REAL}, MSS 1460 -> {mss}, checksums recomputed and correct"
    );

    let mut geneve = GeneveMaps::take(dp.ebpf_mut())?;
    let route = TunnelRoute {
        remote: UNDERLAY_REMOTE,
        vni: Vni::try_new(VNI)?,
        mode: TunnelMode::Native {
            egress_ifindex: None,
        },
    };
    geneve.set_route(REAL, 24, route)?;
    let (verdict, outer) = run(&mut dp, GENEVE_ENCAP_PROGRAM, &nat)?;
    ensure!(
        verdict == 0,
        "encap verdict {verdict}, expected TC_ACT_OK (0)"
    );
    ensure!(
        outer.len() == nat.len() + GENEVE_ENCAP_OVERHEAD,
        "encapsulated {} bytes, expected {}",
        outer.len(),
        nat.len() + GENEVE_ENCAP_OVERHEAD
    );
    let ip = &outer[ETH..];
    ensure!(checksum(&ip[..IP], 0) == 0, "outer IPv4 checksum wrong");
    ensure!(
        ip[9] == 17
            && ip[12..16] == UNDERLAY_LOCAL.octets()
            && ip[16..20] == UNDERLAY_REMOTE.octets(),
        "outer IPv4 is not UDP {UNDERLAY_LOCAL} -> {UNDERLAY_REMOTE}"
    );
    let udp = &ip[IP..];
    ensure!(
        u16::from_be_bytes([udp[2], udp[3]]) == GENEVE_DEFAULT_PORT,
        "outer UDP port is not {GENEVE_DEFAULT_PORT}"
    );
    let gnv = &udp[8..];
    let vni = u32::from_be_bytes([0, gnv[4], gnv[5], gnv[6]]);
    ensure!(
        u16::from_be_bytes([gnv[2], gnv[3]]) == GENEVE_PROTO_TEB && vni == VNI,
        "Geneve header: protocol/VNI wrong"
    );
    ensure!(
        gnv[8..] == nat[..],
        "the inner frame is not the NAT's output"
    );
    ensure!(valid_ipv4_tcp(&gnv[8 + ETH..]), "inner checksums changed");
    println!(
        "Geneve encap    {} -> {} bytes: outer {UNDERLAY_LOCAL} -> {UNDERLAY_REMOTE} UDP {GENEVE_DEFAULT_PORT} VNI {vni}, checksums correct",
        nat.len(),
        outer.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{checksum, syn, valid_ipv4_tcp};

    #[test]
    fn the_built_syn_is_valid_and_corruption_is_caught() {
        let f = syn();
        assert!(valid_ipv4_tcp(&f[14..]));
        // RFC 1071's example: 0001 f203 f4f5 f6f7 sums to 0xddf2, checksum 0x220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7], 0),
            0x220d
        );
        let mut bad = f.clone();
        bad[14 + 16] ^= 1;
        assert!(!valid_ipv4_tcp(&bad[14..]));
    }
}
