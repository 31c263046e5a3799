//! Frames for the Geneve tests, and the checksum oracle the expectations are computed with
//! (independent of the code under test).
use std::net::Ipv4Addr;

/// MAC of the pod/node interface that sends the inner frame.
pub const POD_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0a, 0x01];
/// MAC the inner frame is sent to (the peer's Geneve interface).
pub const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0b, 0x02];
/// MACs of the underlay hop that carries outer frames.
pub const UNDERLAY_SRC_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0xc0, 0x01];
/// See [`UNDERLAY_SRC_MAC`].
pub const UNDERLAY_DST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0xc0, 0x02];

/// RFC 1071 Internet checksum of `bytes` (odd length padded with a zero byte).
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u64 = bytes
        .chunks(2)
        .map(|c| u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).expect("folded")
}

/// An Ethernet frame.
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 packet without options (ID 0x1c46, DF, TTL 64) with a correct header checksum.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, tos: u8, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).expect("fits");
    let mut p = vec![0x45, tos];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0x1c, 0x46, 0x40, 0x00, 64, protocol, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = checksum(&p).to_be_bytes();
    p[10..12].copy_from_slice(&c);
    p.extend_from_slice(payload);
    p
}

/// A UDP datagram with a correct checksum over the IPv4 pseudo-header.
pub fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).expect("fits");
    let mut d = Vec::new();
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&len.to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&len.to_be_bytes());
    pseudo.extend_from_slice(&d);
    let c = match checksum(&pseudo) {
        0 => 0xffff,
        c => c,
    };
    d[6..8].copy_from_slice(&c.to_be_bytes());
    d
}

/// A pod's UDP packet from `src:sport` to `dst:dport` as an Ethernet frame, TOS `tos`.
pub fn pod_udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, tos: u8) -> Vec<u8> {
    let payload = b"clusterwire geneve payload";
    let l4 = udp(src, dst, sport, dport, payload);
    ethernet(PEER_MAC, POD_MAC, 0x0800, &ipv4(src, dst, 17, tos, &l4))
}

/// A Geneve packet built field by field, so tests can get any field wrong on purpose.
#[derive(Clone, Debug)]
pub struct GeneveSpec {
    /// Outer IPv4 source.
    pub outer_src: Ipv4Addr,
    /// Outer IPv4 destination.
    pub outer_dst: Ipv4Addr,
    /// UDP destination port.
    pub dport: u16,
    /// Version (2 bits).
    pub version: u8,
    /// The flags byte (O = 0x80, C = 0x40).
    pub flags: u8,
    /// Protocol type.
    pub proto: u16,
    /// VNI (24 bits).
    pub vni: u32,
    /// Options (a multiple of 4 bytes).
    pub options: Vec<u8>,
}

impl GeneveSpec {
    /// Valid Geneve from `outer_src` to `outer_dst` on port 6091.
    pub fn new(outer_src: Ipv4Addr, outer_dst: Ipv4Addr, vni: u32) -> Self {
        Self {
            outer_src,
            outer_dst,
            dport: 6091,
            version: 0,
            flags: 0,
            proto: 0x6558,
            vni,
            options: Vec::new(),
        }
    }

    /// The Geneve header with its options.
    pub fn header(&self) -> Vec<u8> {
        assert_eq!(self.options.len() % 4, 0, "options are 4-byte words");
        let words = u8::try_from(self.options.len() / 4).expect("at most 63 words");
        let mut g = vec![(self.version << 6) | words, self.flags];
        g.extend_from_slice(&self.proto.to_be_bytes());
        g.extend_from_slice(&(self.vni << 8).to_be_bytes());
        g.extend_from_slice(&self.options);
        g
    }

    /// The whole outer frame around `inner` (UDP checksum 0, source port 50000).
    pub fn frame(&self, inner: &[u8]) -> Vec<u8> {
        let mut udp_payload = self.header();
        udp_payload.extend_from_slice(inner);
        let len = u16::try_from(8 + udp_payload.len()).expect("fits");
        let mut d = Vec::new();
        d.extend_from_slice(&50000u16.to_be_bytes());
        d.extend_from_slice(&self.dport.to_be_bytes());
        d.extend_from_slice(&len.to_be_bytes());
        d.extend_from_slice(&[0, 0]);
        d.extend_from_slice(&udp_payload);
        ethernet(
            UNDERLAY_DST_MAC,
            UNDERLAY_SRC_MAC,
            0x0800,
            &ipv4(self.outer_src, self.outer_dst, 17, 0, &d),
        )
    }
}
