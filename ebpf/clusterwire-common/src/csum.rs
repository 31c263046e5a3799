//! Internet checksum arithmetic shared by the programs and host tests: one's-complement sums
//! (RFC 1071) and incremental updates (RFC 1624). Values are "raw" words as loaded from packet
//! memory; one's-complement sums do not depend on byte order, so results stored back the same
//! way are correct.
#![expect(
    clippy::inline_always,
    reason = "a few instructions each, on every rewritten packet of the eBPF programs"
)]

/// One's-complement 32-bit addition (end-around carry).
#[inline(always)]
pub const fn add(a: u32, b: u32) -> u32 {
    let (sum, carry) = a.overflowing_add(b);
    sum.wrapping_add(carry as u32)
}

/// Folds a 32-bit one's-complement sum to 16 bits.
#[inline(always)]
pub const fn fold(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    #[expect(
        clippy::cast_possible_truncation,
        reason = "folded twice, fits in 16 bits"
    )]
    let folded = s as u16;
    folded
}

/// The sum difference of replacing the 32-bit word `from` with `to` (`~from + to`).
#[inline(always)]
pub const fn diff4(from: u32, to: u32) -> u32 {
    add(!from, to)
}

/// The sum difference of replacing the 16-bit word `from` with `to`.
#[inline(always)]
pub const fn diff2(from: u16, to: u16) -> u32 {
    add((!from) as u32, to as u32)
}

/// A checksum field (raw) after the covered data changed by `diff` (RFC 1624 eqn. 3:
/// `HC' = ~(~HC + ~m + m')`).
#[inline(always)]
pub const fn apply(check: u16, diff: u32) -> u16 {
    !fold(add((!check) as u32, diff))
}

/// Same as [`apply`] for a UDP checksum: 0 (no checksum) stays 0, and a result of 0 is sent as
/// `0xffff` (RFC 768).
#[inline(always)]
pub const fn apply_udp(check: u16, diff: u32) -> u16 {
    if check == 0 {
        return 0;
    }
    match apply(check, diff) {
        0 => 0xffff,
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::{apply, diff2, diff4};

    /// The checksum of `data` computed from scratch (16-bit big-endian words, as stored).
    fn checksum(data: &[u8]) -> u16 {
        let mut sum: u64 = 0;
        for w in data.chunks(2) {
            sum += u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !u16::try_from(sum).unwrap()
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn byte(&mut self) -> u8 {
            self.next().to_le_bytes()[0]
        }
    }

    /// Incremental updates of random data equal a recomputation from scratch, for 32-bit and
    /// 16-bit replacements at even offsets (raw native-order words, as the programs use them).
    #[test]
    fn incremental_update_matches_recomputation() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..20_000 {
            let len = 8 + 2 * (usize::from(rng.byte()) % 40);
            let mut buf = [0u8; 96];
            for b in &mut buf[..len] {
                *b = rng.byte();
            }
            let data = &mut buf[..len];
            data[0] |= 1; // never all zero: its checksum has two representations
            let check = checksum(data);
            let at = 2 * (usize::from(rng.byte()) % ((len - 4) / 2));
            let new: [u8; 4] = [rng.byte(), rng.byte(), rng.byte(), rng.byte()];
            let old = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
            let raw_check = u16::from_ne_bytes(check.to_be_bytes());
            let diff = diff4(old, u32::from_ne_bytes(new));
            data[at..at + 4].copy_from_slice(&new);
            let want = checksum(data);
            let got = u16::from_be_bytes(apply(raw_check, diff).to_ne_bytes());
            assert_eq!(
                got, want,
                "round {round}: 32-bit replacement at {at} of {len} bytes"
            );

            let old2 = u16::from_ne_bytes([data[at], data[at + 1]]);
            let new2 = [rng.byte(), rng.byte()];
            data[at..at + 2].copy_from_slice(&new2);
            let got2 = apply(
                u16::from_ne_bytes(want.to_be_bytes()),
                diff2(old2, u16::from_ne_bytes(new2)),
            );
            assert_eq!(
                u16::from_be_bytes(got2.to_ne_bytes()),
                checksum(data),
                "round {round}: 16-bit replacement at {at}"
            );
        }
    }
}
