//! Randomized round trips: 100,000 generated packets (TCP with random options, UDP with and
//! without checksum, ICMP echo, ICMP errors quoting any of them, IPv4 options, first and later
//! fragments) go through the NAT one way, are mirrored (addresses swapped, outer and embedded:
//! a checksum-neutral change that makes the reply), go through the other way and are mirrored
//! back: the result must be the original, byte for byte. Each intermediate packet is checked
//! against the test's own address model and the independent checksum oracle.
use std::net::Ipv4Addr;

use clusterwire_tests::packet::{self, Ipv4, Tcp};

use crate::fixture::{
    HOST_X, HOST_X_MAPPED, PEER_TUNNEL, assert_bytes, assert_checksums, config, frame,
    harness_with, model_remap_dst, model_remap_src,
};

/// Round trips per direction (100,000 generated packets in all).
const ROUND_TRIPS: usize = 50_000;
/// The fixed seed (any non-zero value; changing it explores other packets).
const SEED: u64 = 0x00c1_0573_2026_0004;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn usize(&mut self, n: usize) -> usize {
        usize::try_from(self.below(n as u64)).expect("small")
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
}

fn host(rng: &mut Rng, a: u8, b: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, rng.byte(), rng.byte())
}

/// A real address of the peer (10.0.9.0/24 excluded: the more specific 10.50.9.0/24 remap
/// sends it back as 10.9.9.x, so that range is not a bijection in the fixture).
fn peer_real(rng: &mut Rng) -> Ipv4Addr {
    match rng.below(4) {
        0 => loop {
            let a = host(rng, 10, 0);
            if a.octets()[2] != 9 {
                break a;
            }
        },
        1 => Ipv4Addr::new(10, 9, 9, rng.byte()),
        2 => host(rng, 10, 70),
        _ => PEER_TUNNEL,
    }
}

/// A local address: a pod, the IP-mapped host, or something unmapped.
fn local(rng: &mut Rng) -> Ipv4Addr {
    match rng.below(3) {
        0 => host(rng, 10, 0),
        1 => HOST_X,
        _ => host(rng, 172, 16),
    }
}

/// Random TCP option bytes: well-formed options, NOPs, sometimes junk.
fn tcp_options(rng: &mut Rng) -> Vec<u8> {
    let mut o = Vec::new();
    let target = rng.usize(41);
    while o.len() < target {
        match rng.below(5) {
            0 => o.push(1),
            1 => o.extend_from_slice(&[2, 4, rng.byte(), rng.byte()]),
            2 => o.extend_from_slice(&[4, 2]),
            3 => o.extend_from_slice(&[3, 3, rng.byte()]),
            _ => o.push(rng.byte()),
        }
    }
    o.truncate(40);
    o
}

fn ip_header(rng: &mut Rng, src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> Ipv4 {
    let mut ip = Ipv4::new(src, dst, proto);
    ip.ttl = rng.byte();
    ip.id = rng.u16();
    ip.tos = rng.byte();
    ip.df = rng.chance(50);
    if rng.chance(20) {
        let n = rng.usize(41);
        ip.options = rng.bytes(n);
    }
    ip
}

/// A transport payload `src -> dst` of a random protocol (TCP, UDP with/without checksum,
/// ICMP echo); returns (protocol, bytes).
fn transport(rng: &mut Rng, src: Ipv4Addr, dst: Ipv4Addr) -> (u8, Vec<u8>) {
    let payload_len = rng.usize(80);
    let payload = rng.bytes(payload_len);
    match rng.below(4) {
        0 => {
            let mut t = Tcp::new(rng.u16(), rng.u16(), rng.byte())
                .options(&tcp_options(rng))
                .payload(&payload);
            t.seq = u32::try_from(rng.below(1 << 32)).expect("32 bits");
            t.window = rng.u16();
            (6, t.build(src, dst))
        }
        1 => (
            17,
            packet::udp(src, dst, rng.u16(), rng.u16(), &payload, true),
        ),
        2 => (
            17,
            packet::udp(src, dst, rng.u16(), rng.u16(), &payload, false),
        ),
        _ => (1, packet::icmp_echo(rng.u16(), rng.u16(), &payload)),
    }
}

/// A random datagram `src -> dst`: plain, fragmented, or an ICMP error quoting the reverse
/// packet.
fn datagram(rng: &mut Rng, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let roll = rng.below(10);
    if roll < 3 {
        // ICMP error about a packet dst -> src.
        let (proto, l4) = transport(rng, dst, src);
        let inner = ip_header(rng, dst, src, proto).build(&l4);
        let hlen = usize::from(inner[0] & 0x0f) * 4;
        let cut = if rng.chance(50) {
            inner.len()
        } else {
            (hlen + 8 + rng.usize(24)).min(inner.len())
        };
        let (kind, code) = [(3, 4), (3, 3), (3, 1), (11, 0), (11, 1), (12, 0)][rng.usize(6)];
        let msg = packet::icmp_error(kind, code, rng.u16(), &inner[..cut]);
        return ip_header(rng, src, dst, 1).build(&msg);
    }
    let (proto, l4) = transport(rng, src, dst);
    let mut ip = ip_header(rng, src, dst, proto);
    match roll {
        3 if l4.len() >= 16 => {
            // First fragment: the L4 header and the first 8-byte units.
            ip = ip.fragment(true, 0);
            let keep = (l4.len() / 8).max(1) * 8;
            ip.build(&l4[..keep.min(l4.len())])
        }
        4 => {
            // A later fragment: arbitrary payload bytes.
            ip = ip.fragment(rng.chance(50), 1 + rng.u16() % 1000);
            let n = 8 * (1 + rng.usize(8));
            ip.build(&rng.bytes(n))
        }
        _ => ip.build(&l4),
    }
}

/// Swaps the source and destination addresses of the datagram in `frame` (at offset 14) and,
/// for an ICMP error whose embedded header is complete, of the embedded header: the reply's
/// addresses, with every checksum still valid (sums do not depend on word order).
fn mirror(frame: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    let ip = 14;
    let swap = |f: &mut Vec<u8>, at: usize| {
        let (a, b) = (f[at..at + 4].to_vec(), f[at + 4..at + 8].to_vec());
        f[at..at + 4].copy_from_slice(&b);
        f[at + 4..at + 8].copy_from_slice(&a);
    };
    swap(&mut f, ip + 12);
    let hlen = usize::from(f[ip] & 0x0f) * 4;
    let frag_offset = u16::from_be_bytes([f[ip + 6], f[ip + 7]]) & 0x1fff;
    let first_fragment = frag_offset == 0;
    let icmp = ip + hlen;
    if f[ip + 9] == 1
        && first_fragment
        && f.len() >= icmp + 8 + 20
        && matches!(f[icmp], 3 | 11 | 12)
    {
        swap(&mut f, icmp + 8 + 12);
    }
    f
}

fn addrs(frame: &[u8]) -> (Ipv4Addr, Ipv4Addr) {
    let a = |o: usize| Ipv4Addr::new(frame[o], frame[o + 1], frame[o + 2], frame[o + 3]);
    (a(26), a(30))
}

#[test]
fn hundred_thousand_random_packets_round_trip_both_ways() {
    // MSS clamping off: it is deliberately not reversible.
    let mut h = harness_with(config(0, false));
    let mut rng = Rng(SEED);
    for i in 0..ROUND_TRIPS {
        // Into the tunnel first: a local source to the peer's remapped address.
        let src = local(&mut rng);
        let real = peer_real(&mut rng);
        let remapped = model_remap_src(real).expect("peer address is announced");
        let input = frame(&datagram(&mut rng, src, remapped));
        let what = format!("round trip {i} into the tunnel first: {src} -> {remapped}");
        let out = h.through(true, &input, &what);
        let want_src = if src == HOST_X { HOST_X_MAPPED } else { src };
        assert_eq!(addrs(&out), (want_src, model_remap_dst(remapped)), "{what}");
        assert_checksums(&out, 14, &what);
        let back = h.through(false, &mirror(&out), &what);
        assert_checksums(&back, 14, &what);
        assert_bytes(&mirror(&back), &input, &what);

        // Out of the tunnel first: the peer's real source to a local address.
        let dst = match local(&mut rng) {
            HOST_X => HOST_X_MAPPED,
            a => a,
        };
        let real = peer_real(&mut rng);
        let input = frame(&datagram(&mut rng, real, dst));
        let what = format!("round trip {i} out of the tunnel first: {real} -> {dst}");
        let out = h.through(false, &input, &what);
        let want_dst = if dst == HOST_X_MAPPED { HOST_X } else { dst };
        assert_eq!(
            addrs(&out),
            (model_remap_src(real).expect("announced"), want_dst),
            "{what}"
        );
        assert_checksums(&out, 14, &what);
        let back = h.through(true, &mirror(&out), &what);
        assert_checksums(&back, 14, &what);
        assert_bytes(&mirror(&back), &input, &what);
    }
    assert_eq!(h.total_drops(), 0);
}
