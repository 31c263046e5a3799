//! An independent checksum oracle: recomputes IPv4, TCP, UDP and ICMP checksums from scratch
//! (RFC 1071), never with the code under test, and says which one is wrong.

/// The 16-bit one's-complement sum of `data` (odd length padded with a zero byte), folded.
pub fn ones_sum(data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    u16::try_from(sum).expect("folded")
}

/// The Internet checksum of `data` (checksum field zeroed by the caller), as stored
/// big-endian in the header.
pub fn checksum(data: &[u8]) -> u16 {
    !ones_sum(data)
}

/// The TCP/UDP pseudo-header for IPv4 addresses, protocol and L4 length.
pub fn pseudo_header(src: [u8; 4], dst: [u8; 4], proto: u8, l4_len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(12);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.push(0);
    p.push(proto);
    p.extend_from_slice(&u16::try_from(l4_len).expect("L4 length fits").to_be_bytes());
    p
}

/// The checksum a TCP (`proto` 6) or UDP (17) segment should carry (field at `csum_off` treated
/// as zero). For UDP, a computed 0 is sent as 0xffff.
pub fn l4_checksum(src: [u8; 4], dst: [u8; 4], proto: u8, segment: &[u8], csum_off: usize) -> u16 {
    let mut data = pseudo_header(src, dst, proto, segment.len());
    let mut seg = segment.to_vec();
    seg[csum_off] = 0;
    seg[csum_off + 1] = 0;
    data.extend_from_slice(&seg);
    match checksum(&data) {
        0 if proto == 17 => 0xffff,
        c => c,
    }
}

fn field(data: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([data[off], data[off + 1]])
}

/// Checks every checksum of the IPv4 datagram `ip` (starting at the IPv4 header, trailing
/// link-layer padding allowed): the header checksum; for an unfragmented datagram the TCP, UDP
/// (0 = none is accepted) or ICMP checksum; for ICMP errors also the embedded IPv4 header
/// checksum and, when the quote holds the whole embedded datagram, its L4 checksum.
pub fn verify_ipv4(ip: &[u8]) -> Result<(), String> {
    verify_ipv4_inner(ip, 0)
}

fn verify_ipv4_inner(ip: &[u8], depth: u8) -> Result<(), String> {
    let what = if depth == 0 { "" } else { "embedded " };
    if ip.len() < 20 {
        return Err(format!("{what}IPv4 header truncated ({} bytes)", ip.len()));
    }
    let hlen = usize::from(ip[0] & 0x0f) * 4;
    if hlen < 20 || hlen > ip.len() {
        return Err(format!("{what}IPv4 header length {hlen} invalid"));
    }
    let mut header = ip[..hlen].to_vec();
    let stored = field(&header, 10);
    header[10] = 0;
    header[11] = 0;
    let want = checksum(&header);
    if stored != want {
        return Err(format!(
            "{what}IPv4 header checksum {stored:#06x}, expected {want:#06x}"
        ));
    }
    let total = usize::from(field(ip, 2));
    let frag = field(ip, 6);
    if total > ip.len() || frag & 0x3fff != 0 {
        // A truncated quote or a fragment: the L4 checksum cannot be checked.
        return Ok(());
    }
    let src: [u8; 4] = ip[12..16].try_into().expect("4 bytes");
    let dst: [u8; 4] = ip[16..20].try_into().expect("4 bytes");
    let l4 = &ip[hlen..total];
    match ip[9] {
        6 if l4.len() >= 20 => {
            let (stored, want) = (field(l4, 16), l4_checksum(src, dst, 6, l4, 16));
            if stored != want {
                return Err(format!(
                    "{what}TCP checksum {stored:#06x}, expected {want:#06x}"
                ));
            }
        }
        17 if l4.len() >= 8 => {
            let stored = field(l4, 6);
            let want = l4_checksum(src, dst, 17, l4, 6);
            if stored != 0 && stored != want {
                return Err(format!(
                    "{what}UDP checksum {stored:#06x}, expected {want:#06x}"
                ));
            }
        }
        1 if l4.len() >= 8 => {
            let mut msg = l4.to_vec();
            let stored = field(&msg, 2);
            msg[2] = 0;
            msg[3] = 0;
            let want = checksum(&msg);
            if stored != want {
                return Err(format!(
                    "{what}ICMP checksum {stored:#06x}, expected {want:#06x}"
                ));
            }
            if matches!(l4[0], 3 | 11 | 12) && depth == 0 {
                verify_ipv4_inner(&l4[8..], depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{checksum, ones_sum};

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example bytes: sum 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(ones_sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // A classic example header with checksum 0xb861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(ones_sum(&h), 0xffff);
    }
}
