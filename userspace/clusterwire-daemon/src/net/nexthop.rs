//! Nexthop objects (`ip nexthop`, kernel >= 5.3) on the wire: `struct nhmsg` and the `NHA_*`
//! attributes of `linux/nexthop.h`, which netlink-packet-route does not have. Only what
//! clusterwire writes is encoded (a single IPv4 next hop: id, device, gateway, `onlink`); what
//! the kernel dumps is decoded into a [`Nexthop`] whatever it is (groups, blackholes and other
//! families keep their id, so that an id in use is never taken).
use std::net::Ipv4Addr;

use rtnetlink::packet_core::{NetlinkDeserializable, NetlinkHeader, NetlinkSerializable};

/// `RTM_NEWNEXTHOP`: create or replace (also what a dump answers with).
pub const RTM_NEWNEXTHOP: u16 = 104;
/// `RTM_DELNEXTHOP`.
pub const RTM_DELNEXTHOP: u16 = 105;
/// `RTM_GETNEXTHOP`.
pub const RTM_GETNEXTHOP: u16 = 106;

const NHA_ID: u16 = 1;
const NHA_GROUP: u16 = 2;
const NHA_BLACKHOLE: u16 = 4;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;
const NHA_FDB: u16 = 11;
/// `RTNH_F_ONLINK` in `nh_flags`.
const RTNH_F_ONLINK: u32 = 4;
const AF_INET: u8 = 2;
/// `sizeof(struct nhmsg)`.
const NHMSG_LEN: usize = 8;

/// Where a single IPv4 next hop goes: what makes two next hops the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NexthopKey {
    /// Output device.
    pub oif: u32,
    /// Gateway.
    pub via: Ipv4Addr,
    /// The gateway is on the device without a connected route to it.
    pub onlink: bool,
}

/// A nexthop object as the kernel lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nexthop {
    /// Its id (unique in the namespace, any family or protocol).
    pub id: u32,
    /// The protocol that installed it.
    pub protocol: u8,
    /// Where it goes, `None` for anything but a single IPv4 gateway on a device (a group, a
    /// blackhole, an IPv6 or device-only next hop, an FDB one).
    pub key: Option<NexthopKey>,
}

/// One nexthop message: a request clusterwire sends or an answer of the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NexthopMessage {
    /// `RTM_NEWNEXTHOP`, `RTM_DELNEXTHOP` or `RTM_GETNEXTHOP`.
    pub kind: u16,
    /// `nh_family`.
    pub family: u8,
    /// `nh_scope` (set by the kernel only).
    pub scope: u8,
    /// `nh_protocol`.
    pub protocol: u8,
    /// `nh_flags` (`RTNH_F_*`).
    pub flags: u32,
    /// The attributes, in order.
    pub attributes: Vec<NexthopAttribute>,
}

/// An `NHA_*` attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NexthopAttribute {
    /// `NHA_ID`.
    Id(u32),
    /// `NHA_OIF`.
    Oif(u32),
    /// `NHA_GATEWAY` of an IPv4 next hop.
    Gateway(Ipv4Addr),
    /// Any other attribute: its type (flag bits cleared) and payload.
    Other(u16, Vec<u8>),
}

impl NexthopAttribute {
    fn kind(&self) -> u16 {
        match self {
            Self::Id(_) => NHA_ID,
            Self::Oif(_) => NHA_OIF,
            Self::Gateway(_) => NHA_GATEWAY,
            Self::Other(kind, _) => *kind,
        }
    }

    fn payload_len(&self) -> usize {
        match self {
            Self::Id(_) | Self::Oif(_) | Self::Gateway(_) => 4,
            Self::Other(_, payload) => payload.len(),
        }
    }

    /// Header, payload and padding to 4 bytes.
    fn wire_len(&self) -> usize {
        (4 + self.payload_len()).next_multiple_of(4)
    }
}

impl NexthopMessage {
    /// Creates (`replace` false: fails with EEXIST if `id` exists) or replaces in place
    /// (`replace` true: every route using `id` follows) the next hop `id` toward `key`, of
    /// `protocol`. The netlink flags go in the header (see [`Self::request_flags`]).
    pub fn new_nexthop(id: u32, protocol: u8, key: NexthopKey) -> Self {
        Self {
            kind: RTM_NEWNEXTHOP,
            family: AF_INET,
            scope: 0,
            protocol,
            flags: if key.onlink { RTNH_F_ONLINK } else { 0 },
            attributes: vec![
                NexthopAttribute::Id(id),
                NexthopAttribute::Oif(key.oif),
                NexthopAttribute::Gateway(key.via),
            ],
        }
    }

    /// Deletes the next hop `id` (and, in the kernel, every route using it).
    pub fn del_nexthop(id: u32) -> Self {
        Self {
            kind: RTM_DELNEXTHOP,
            family: 0,
            scope: 0,
            protocol: 0,
            flags: 0,
            attributes: vec![NexthopAttribute::Id(id)],
        }
    }

    /// Lists every next hop (all families: an id is unique across them).
    pub fn dump() -> Self {
        Self {
            kind: RTM_GETNEXTHOP,
            family: 0,
            scope: 0,
            protocol: 0,
            flags: 0,
            attributes: Vec::new(),
        }
    }

    /// What this message says about one next hop, `None` without an `NHA_ID`.
    pub fn nexthop(&self) -> Option<Nexthop> {
        let mut id = None;
        let mut oif = None;
        let mut via = None;
        let mut other = false;
        for attribute in &self.attributes {
            match attribute {
                NexthopAttribute::Id(i) => id = Some(*i),
                NexthopAttribute::Oif(i) => oif = Some(*i),
                NexthopAttribute::Gateway(a) => via = Some(*a),
                NexthopAttribute::Other(NHA_GROUP | NHA_BLACKHOLE | NHA_FDB, _) => other = true,
                NexthopAttribute::Other(..) => {}
            }
        }
        let key = match (oif, via) {
            (Some(oif), Some(via)) if self.family == AF_INET && !other => Some(NexthopKey {
                oif,
                via,
                onlink: self.flags & RTNH_F_ONLINK != 0,
            }),
            _ => None,
        };
        Some(Nexthop {
            id: id?,
            protocol: self.protocol,
            key,
        })
    }
}

impl NetlinkSerializable for NexthopMessage {
    fn message_type(&self) -> u16 {
        self.kind
    }

    fn buffer_len(&self) -> usize {
        NHMSG_LEN
            + self
                .attributes
                .iter()
                .map(NexthopAttribute::wire_len)
                .sum::<usize>()
    }

    fn serialize(&self, buffer: &mut [u8]) {
        buffer[..NHMSG_LEN].fill(0);
        buffer[0] = self.family;
        buffer[1] = self.scope;
        buffer[2] = self.protocol;
        buffer[4..8].copy_from_slice(&self.flags.to_ne_bytes());
        let mut at = NHMSG_LEN;
        for attribute in &self.attributes {
            let len = attribute.wire_len();
            let out = &mut buffer[at..at + len];
            out.fill(0);
            let nla_len = u16::try_from(4 + attribute.payload_len()).expect("attribute length");
            out[0..2].copy_from_slice(&nla_len.to_ne_bytes());
            out[2..4].copy_from_slice(&attribute.kind().to_ne_bytes());
            match attribute {
                NexthopAttribute::Id(v) | NexthopAttribute::Oif(v) => {
                    out[4..8].copy_from_slice(&v.to_ne_bytes());
                }
                NexthopAttribute::Gateway(a) => out[4..8].copy_from_slice(&a.octets()),
                NexthopAttribute::Other(_, payload) => {
                    out[4..4 + payload.len()].copy_from_slice(payload);
                }
            }
            at += len;
        }
    }
}

/// A nexthop message the kernel sent that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum NexthopDecodeError {
    /// Not a nexthop message.
    #[error("netlink message type {0} is not a nexthop message")]
    Kind(u16),
    /// Shorter than `struct nhmsg`.
    #[error("nexthop message of {0} bytes, shorter than struct nhmsg")]
    Short(usize),
    /// An attribute runs past the end of the message or is shorter than its header.
    #[error("nexthop attribute at byte {0}: bad length")]
    Attribute(usize),
    /// A fixed-size attribute with another size.
    #[error("nexthop attribute {kind}: {len} bytes")]
    Size {
        /// The attribute type.
        kind: u16,
        /// Its payload length.
        len: usize,
    },
}

impl NetlinkDeserializable for NexthopMessage {
    type Error = NexthopDecodeError;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, Self::Error> {
        parse(header.message_type, payload)
    }
}

fn u32_of(kind: u16, payload: &[u8]) -> Result<u32, NexthopDecodeError> {
    <[u8; 4]>::try_from(payload)
        .map(u32::from_ne_bytes)
        .map_err(|_| NexthopDecodeError::Size {
            kind,
            len: payload.len(),
        })
}

/// Decodes the payload (after the netlink header) of a message of type `kind`.
pub fn parse(kind: u16, payload: &[u8]) -> Result<NexthopMessage, NexthopDecodeError> {
    if !matches!(kind, RTM_NEWNEXTHOP | RTM_DELNEXTHOP | RTM_GETNEXTHOP) {
        return Err(NexthopDecodeError::Kind(kind));
    }
    let Some((head, mut rest)) = payload.split_at_checked(NHMSG_LEN) else {
        return Err(NexthopDecodeError::Short(payload.len()));
    };
    let mut message = NexthopMessage {
        kind,
        family: head[0],
        scope: head[1],
        protocol: head[2],
        flags: u32::from_ne_bytes([head[4], head[5], head[6], head[7]]),
        attributes: Vec::new(),
    };
    let mut at = NHMSG_LEN;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        // NLA_F_NESTED and NLA_F_NET_BYTEORDER are not part of the type.
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            return Err(NexthopDecodeError::Attribute(at));
        }
        let value = &rest[4..len];
        message.attributes.push(match kind {
            NHA_ID => NexthopAttribute::Id(u32_of(kind, value)?),
            NHA_OIF => NexthopAttribute::Oif(u32_of(kind, value)?),
            NHA_GATEWAY if value.len() == 4 => {
                NexthopAttribute::Gateway(Ipv4Addr::new(value[0], value[1], value[2], value[3]))
            }
            _ => NexthopAttribute::Other(kind, value.to_vec()),
        });
        let step = len.next_multiple_of(4).min(rest.len());
        rest = &rest[step..];
        at += step;
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(message: &NexthopMessage) -> Vec<u8> {
        let mut buffer = vec![0xaa; message.buffer_len()];
        message.serialize(&mut buffer);
        buffer
    }

    const KEY: NexthopKey = NexthopKey {
        oif: 3,
        via: Ipv4Addr::new(192, 168, 0, 11),
        onlink: false,
    };

    /// `ip nexthop add id 7 via 192.168.0.11 dev <3> proto 203`, byte for byte (`linux/nexthop.h`).
    #[test]
    fn new_nexthop_has_the_bytes_of_nexthop_h() {
        let message = NexthopMessage::new_nexthop(7, 203, KEY);
        assert_eq!(message.message_type(), RTM_NEWNEXTHOP);
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &[2, 0, 203, 0][..], &0u32.to_ne_bytes(),            // nhmsg: AF_INET, proto 203
            &8u16.to_ne_bytes(), &1u16.to_ne_bytes(), &7u32.to_ne_bytes(), // NHA_ID 7
            &8u16.to_ne_bytes(), &5u16.to_ne_bytes(), &3u32.to_ne_bytes(), // NHA_OIF 3
            &8u16.to_ne_bytes(), &6u16.to_ne_bytes(), &[192, 168, 0, 11],  // NHA_GATEWAY
        ]
        .concat();
        assert_eq!(bytes(&message), want);
    }

    #[test]
    fn onlink_is_rtnh_f_onlink_in_the_header() {
        let message = NexthopMessage::new_nexthop(
            0xcb00_0001,
            203,
            NexthopKey {
                onlink: true,
                ..KEY
            },
        );
        let out = bytes(&message);
        assert_eq!(
            &out[..8],
            &[&[2, 0, 203, 0][..], &4u32.to_ne_bytes()].concat()[..]
        );
        assert_eq!(&out[12..16], &0xcb00_0001u32.to_ne_bytes());
    }

    #[test]
    fn del_and_dump_requests() {
        let del = NexthopMessage::del_nexthop(9);
        assert_eq!(del.message_type(), RTM_DELNEXTHOP);
        assert_eq!(
            bytes(&del),
            [
                &[0u8; 8][..],
                &8u16.to_ne_bytes(),
                &1u16.to_ne_bytes(),
                &9u32.to_ne_bytes()
            ]
            .concat()
        );
        let dump = NexthopMessage::dump();
        assert_eq!(dump.message_type(), RTM_GETNEXTHOP);
        assert_eq!(
            bytes(&dump),
            vec![0u8; 8],
            "a dump request is a bare nhmsg, all zero"
        );
    }

    #[test]
    fn a_message_parses_back_to_itself() {
        for key in [
            KEY,
            NexthopKey {
                onlink: true,
                ..KEY
            },
        ] {
            let message = NexthopMessage::new_nexthop(42, 203, key);
            let parsed = parse(RTM_NEWNEXTHOP, &bytes(&message)).expect("parse");
            assert_eq!(parsed, message);
            assert_eq!(
                parsed.nexthop(),
                Some(Nexthop {
                    id: 42,
                    protocol: 203,
                    key: Some(key)
                })
            );
        }
    }

    /// What the kernel dumps for `id 7 via 192.168.0.11 dev <3> scope link proto 203` with the
    /// link down (`RTNH_F_LINKDOWN | RTNH_F_DEAD`), plus an attribute we do not know (odd length,
    /// padded): the flags other than onlink and the unknown attribute change nothing.
    #[test]
    fn a_kernel_dump_entry_is_read() {
        #[rustfmt::skip]
        let payload: Vec<u8> = [
            &[2, 253, 203, 0][..], &17u32.to_ne_bytes(),
            &8u16.to_ne_bytes(), &1u16.to_ne_bytes(), &7u32.to_ne_bytes(),
            &8u16.to_ne_bytes(), &5u16.to_ne_bytes(), &3u32.to_ne_bytes(),
            &8u16.to_ne_bytes(), &6u16.to_ne_bytes(), &[192, 168, 0, 11],
            &5u16.to_ne_bytes(), &99u16.to_ne_bytes(), &[1, 0, 0, 0],
        ]
        .concat();
        let message = parse(RTM_NEWNEXTHOP, &payload).expect("parse");
        assert_eq!(message.scope, 253);
        assert_eq!(message.attributes[3], NexthopAttribute::Other(99, vec![1]));
        assert_eq!(
            message.nexthop(),
            Some(Nexthop {
                id: 7,
                protocol: 203,
                key: Some(KEY)
            })
        );
    }

    #[test]
    fn groups_blackholes_and_ipv6_keep_their_id_without_a_key() {
        #[rustfmt::skip]
        let group: Vec<u8> = [
            &[0, 0, 4, 0][..], &0u32.to_ne_bytes(),
            &8u16.to_ne_bytes(), &1u16.to_ne_bytes(), &5u32.to_ne_bytes(),
            &12u16.to_ne_bytes(), &2u16.to_ne_bytes(), &7u32.to_ne_bytes(), &[0, 0, 0, 0],
        ]
        .concat();
        #[rustfmt::skip]
        let blackhole: Vec<u8> = [
            &[2, 0, 4, 0][..], &0u32.to_ne_bytes(),
            &8u16.to_ne_bytes(), &1u16.to_ne_bytes(), &6u32.to_ne_bytes(),
            &4u16.to_ne_bytes(), &4u16.to_ne_bytes(),
        ]
        .concat();
        #[rustfmt::skip]
        let v6: Vec<u8> = [
            &[10, 0, 4, 0][..], &0u32.to_ne_bytes(),
            &8u16.to_ne_bytes(), &1u16.to_ne_bytes(), &8u32.to_ne_bytes(),
            &8u16.to_ne_bytes(), &5u16.to_ne_bytes(), &3u32.to_ne_bytes(),
            &20u16.to_ne_bytes(), &6u16.to_ne_bytes(), &[0xfe, 0x80], &[0; 13], &[1],
        ]
        .concat();
        for (payload, id) in [(group, 5), (blackhole, 6), (v6, 8)] {
            let nexthop = parse(RTM_NEWNEXTHOP, &payload)
                .expect("parse")
                .nexthop()
                .expect("an id");
            assert_eq!((nexthop.id, nexthop.protocol, nexthop.key), (id, 4, None));
        }
    }

    #[test]
    fn malformed_messages_are_errors() {
        assert!(matches!(
            parse(24, &[0; 8]),
            Err(NexthopDecodeError::Kind(24))
        ));
        assert!(matches!(
            parse(RTM_NEWNEXTHOP, &[2, 0, 0]),
            Err(NexthopDecodeError::Short(3))
        ));
        let long: Vec<u8> = [
            &[2, 0, 0, 0, 0, 0, 0, 0][..],
            &12u16.to_ne_bytes(),
            &1u16.to_ne_bytes(),
            &[0; 4],
        ]
        .concat();
        assert!(matches!(
            parse(RTM_NEWNEXTHOP, &long),
            Err(NexthopDecodeError::Attribute(8))
        ));
        let short_id: Vec<u8> = [
            &[2, 0, 0, 0, 0, 0, 0, 0][..],
            &6u16.to_ne_bytes(),
            &1u16.to_ne_bytes(),
            &[0; 2],
        ]
        .concat();
        assert!(matches!(
            parse(RTM_NEWNEXTHOP, &short_id),
            Err(NexthopDecodeError::Size { kind: 1, len: 2 })
        ));
    }
}
