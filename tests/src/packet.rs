//! A small packet builder for datapath tests: Ethernet, 802.1Q, ARP, IPv4 (options, fragment
//! fields, overridable lengths), IPv6, TCP (arbitrary option bytes), UDP (with or without
//! checksum), ICMP echo and errors embedding a packet. Checksums come from [`crate::csum`].
use std::net::Ipv4Addr;

use crate::csum;

/// Destination MAC of built frames.
pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// Source MAC of built frames.
pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Ethernet header length.
pub const ETH_HLEN: usize = 14;

/// An Ethernet frame carrying `payload` with `ethertype`.
pub fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HLEN + payload.len());
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An 802.1Q-tagged frame (VLAN `vid`) carrying `payload` with inner `ethertype`.
pub fn vlan(vid: u16, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut tagged = Vec::with_capacity(4 + payload.len());
    tagged.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    tagged.extend_from_slice(&ethertype.to_be_bytes());
    tagged.extend_from_slice(payload);
    ethernet(0x8100, &tagged)
}

/// An ARP request frame (who has `target`, tell `sender`).
pub fn arp_request(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1];
    a.extend_from_slice(&SRC_MAC);
    a.extend_from_slice(&sender.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target.octets());
    ethernet(0x0806, &a)
}

/// An IPv6 packet (no extension headers) with `next_header` and `payload`.
pub fn ipv6(src: [u8; 16], dst: [u8; 16], next_header: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&u16::try_from(payload.len()).expect("fits").to_be_bytes());
    p.push(next_header);
    p.push(64);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

/// An IPv4 header description; [`Ipv4::build`] turns it and a payload into a datagram.
#[derive(Debug, Clone)]
pub struct Ipv4 {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol.
    pub proto: u8,
    /// TTL.
    pub ttl: u8,
    /// Identification.
    pub id: u16,
    /// DSCP/ECN byte.
    pub tos: u8,
    /// Don't-fragment flag.
    pub df: bool,
    /// More-fragments flag.
    pub mf: bool,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
    /// Option bytes (padded with EOL to a multiple of 4).
    pub options: Vec<u8>,
    /// Total length to write instead of the real one.
    pub total_len: Option<u16>,
    /// IHL (in 32-bit words) to write instead of the real one.
    pub ihl: Option<u8>,
    /// Checksum to write instead of the correct one.
    pub checksum: Option<u16>,
}

impl Ipv4 {
    /// A plain header (TTL 64, DF set, no options).
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> Self {
        Self {
            src,
            dst,
            proto,
            ttl: 64,
            id: 0x1234,
            tos: 0,
            df: true,
            mf: false,
            frag_offset: 0,
            options: Vec::new(),
            total_len: None,
            ihl: None,
            checksum: None,
        }
    }

    /// With these option bytes.
    #[must_use]
    pub fn options(mut self, options: &[u8]) -> Self {
        self.options = options.to_vec();
        self
    }

    /// As a fragment: more-fragments flag and offset (8-byte units); DF cleared.
    #[must_use]
    pub fn fragment(mut self, mf: bool, offset: u16) -> Self {
        self.df = false;
        self.mf = mf;
        self.frag_offset = offset;
        self
    }

    /// The datagram carrying `payload`.
    pub fn build(&self, payload: &[u8]) -> Vec<u8> {
        let mut options = self.options.clone();
        while !options.len().is_multiple_of(4) {
            options.push(0);
        }
        let hlen = 20 + options.len();
        let total = u16::try_from(hlen + payload.len()).expect("datagram fits");
        let ihl = self
            .ihl
            .unwrap_or(u8::try_from(hlen / 4).expect("IHL fits"));
        let mut flags = self.frag_offset & 0x1fff;
        if self.df {
            flags |= 0x4000;
        }
        if self.mf {
            flags |= 0x2000;
        }
        let mut h = vec![0x40 | (ihl & 0x0f), self.tos];
        h.extend_from_slice(&self.total_len.unwrap_or(total).to_be_bytes());
        h.extend_from_slice(&self.id.to_be_bytes());
        h.extend_from_slice(&flags.to_be_bytes());
        h.push(self.ttl);
        h.push(self.proto);
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(&self.src.octets());
        h.extend_from_slice(&self.dst.octets());
        h.extend_from_slice(&options);
        let sum = self.checksum.unwrap_or_else(|| csum::checksum(&h));
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }
}

/// TCP flag bits.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// A TCP segment description.
#[derive(Debug, Clone)]
pub struct Tcp {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags (see [`tcp_flags`]).
    pub flags: u8,
    /// Window.
    pub window: u16,
    /// Option bytes, written as given (padded with EOL to a multiple of 4).
    pub options: Vec<u8>,
    /// Data offset (32-bit words) to write instead of the real one.
    pub data_offset: Option<u8>,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Tcp {
    /// A segment between the ports with `flags`, no options, no payload.
    pub fn new(sport: u16, dport: u16, flags: u8) -> Self {
        Self {
            sport,
            dport,
            seq: 0x0102_0304,
            ack: 0,
            flags,
            window: 64240,
            options: Vec::new(),
            data_offset: None,
            payload: Vec::new(),
        }
    }

    /// With these option bytes.
    #[must_use]
    pub fn options(mut self, options: &[u8]) -> Self {
        self.options = options.to_vec();
        self
    }

    /// With this payload.
    #[must_use]
    pub fn payload(mut self, payload: &[u8]) -> Self {
        self.payload = payload.to_vec();
        self
    }

    /// The segment bytes with the checksum for `src` -> `dst`.
    pub fn build(&self, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let mut options = self.options.clone();
        while !options.len().is_multiple_of(4) {
            options.push(0);
        }
        let hlen = 20 + options.len();
        let doff = self
            .data_offset
            .unwrap_or(u8::try_from(hlen / 4).expect("data offset fits"));
        let mut s = Vec::with_capacity(hlen + self.payload.len());
        s.extend_from_slice(&self.sport.to_be_bytes());
        s.extend_from_slice(&self.dport.to_be_bytes());
        s.extend_from_slice(&self.seq.to_be_bytes());
        s.extend_from_slice(&self.ack.to_be_bytes());
        s.push(doff << 4);
        s.push(self.flags);
        s.extend_from_slice(&self.window.to_be_bytes());
        s.extend_from_slice(&[0, 0, 0, 0]);
        s.extend_from_slice(&options);
        s.extend_from_slice(&self.payload);
        let sum = csum::l4_checksum(src.octets(), dst.octets(), 6, &s, 16);
        s[16..18].copy_from_slice(&sum.to_be_bytes());
        s
    }
}

/// A UDP datagram with a checksum (`with_checksum`) or with checksum 0.
pub fn udp(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
    with_checksum: bool,
) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).expect("fits");
    let mut d = Vec::with_capacity(usize::from(len));
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&len.to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    if with_checksum {
        let sum = csum::l4_checksum(src.octets(), dst.octets(), 17, &d, 6);
        d[6..8].copy_from_slice(&sum.to_be_bytes());
    }
    d
}

/// An ICMP message of `kind`/`code` with the 4 rest-of-header bytes and `body`.
pub fn icmp(kind: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(body);
    let sum = csum::checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

/// An ICMP echo request.
pub fn icmp_echo(id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut rest = [0; 4];
    rest[..2].copy_from_slice(&id.to_be_bytes());
    rest[2..].copy_from_slice(&seq.to_be_bytes());
    icmp(8, 0, rest, payload)
}

/// ICMP error types.
pub mod icmp_kind {
    /// Destination unreachable.
    pub const DEST_UNREACH: u8 = 3;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAMETER_PROBLEM: u8 = 12;
    /// Code of "fragmentation needed" under destination unreachable.
    pub const FRAG_NEEDED: u8 = 4;
    /// Code of "port unreachable" under destination unreachable.
    pub const PORT_UNREACH: u8 = 3;
}

/// An ICMP error of `kind`/`code` quoting `quoted` (an IPv4 datagram, possibly truncated).
/// For fragmentation-needed, `rest` carries the next-hop MTU.
pub fn icmp_error(kind: u8, code: u8, mtu: u16, quoted: &[u8]) -> Vec<u8> {
    let mut rest = [0; 4];
    rest[2..].copy_from_slice(&mtu.to_be_bytes());
    icmp(kind, code, rest, quoted)
}

/// An Ethernet frame carrying an IPv4 datagram.
pub fn eth_ipv4(datagram: &[u8]) -> Vec<u8> {
    ethernet(0x0800, datagram)
}
