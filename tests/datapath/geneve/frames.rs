//! Frames for the Geneve tests, built with the shared packet builder (checksums from the shared
//! oracle), plus a Geneve builder that can get any field wrong on purpose.
use std::net::Ipv4Addr;

use clusterwire_tests::packet::{self, Ipv4};

/// MAC of the pod/node interface that sends the inner frame.
pub const POD_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0a, 0x01];
/// MAC the inner frame is sent to (the peer's Geneve interface).
pub const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0b, 0x02];
/// MACs of the underlay hop that carries outer frames.
pub const UNDERLAY_SRC_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0xc0, 0x01];
/// See [`UNDERLAY_SRC_MAC`].
pub const UNDERLAY_DST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0xc0, 0x02];

/// An Ethernet frame with explicit MACs (the tests tell inner from outer headers by them).
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = packet::ethernet(ethertype, payload);
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f
}

/// A pod's UDP packet (with checksum) from `src:sport` to `dst:dport`, TOS `tos`.
pub fn pod_udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, tos: u8) -> Vec<u8> {
    let l4 = packet::udp(src, dst, sport, dport, b"clusterwire geneve payload", true);
    let mut ip = Ipv4::new(src, dst, 17);
    ip.tos = tos;
    ethernet(PEER_MAC, POD_MAC, 0x0800, &ip.build(&l4))
}

/// A Geneve packet built field by field.
#[derive(Clone, Debug)]
pub struct GeneveSpec {
    /// Outer IPv4 header (source, destination, options, lengths).
    pub outer: Ipv4,
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
            outer: Ipv4::new(outer_src, outer_dst, 17),
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
        let mut payload = self.header();
        payload.extend_from_slice(inner);
        let udp = packet::udp(
            self.outer.src,
            self.outer.dst,
            50000,
            self.dport,
            &payload,
            false,
        );
        ethernet(
            UNDERLAY_DST_MAC,
            UNDERLAY_SRC_MAC,
            0x0800,
            &self.outer.build(&udp),
        )
    }
}
