//! A tiny pcap (libpcap classic format) writer, so packets our programs produce can be handed to
//! independent decoders (`tshark`).
use std::{io::Write, path::Path};

/// Link type of the records: Ethernet.
const LINKTYPE_ETHERNET: u32 = 1;

/// Serialises Ethernet `frames` as a pcap file (microsecond timestamps, one second apart).
pub fn to_bytes(frames: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + frames.iter().map(|f| 16 + f.len()).sum::<usize>());
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic, microsecond resolution
    out.extend_from_slice(&2u16.to_le_bytes()); // version major
    out.extend_from_slice(&4u16.to_le_bytes()); // version minor
    out.extend_from_slice(&0i32.to_le_bytes()); // this zone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    for (i, frame) in frames.iter().enumerate() {
        let len = u32::try_from(frame.len()).expect("frame shorter than 4 GiB");
        let seconds = u32::try_from(i).expect("fewer than 4 billion frames");
        out.extend_from_slice(&seconds.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes()); // captured length
        out.extend_from_slice(&len.to_le_bytes()); // original length
        out.extend_from_slice(frame);
    }
    out
}

/// Writes `frames` to a pcap file at `path`.
pub fn write(path: &Path, frames: &[&[u8]]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(&to_bytes(frames))?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_and_record_layout() {
        let bytes = super::to_bytes(&[&[0xaa, 0xbb, 0xcc]]);
        assert_eq!(bytes.len(), 24 + 16 + 3);
        assert_eq!(
            &bytes[0..4],
            &[0xd4, 0xc3, 0xb2, 0xa1],
            "little-endian magic"
        );
        assert_eq!(&bytes[20..24], &[1, 0, 0, 0], "Ethernet link type");
        assert_eq!(&bytes[32..36], &[3, 0, 0, 0], "captured length");
        assert_eq!(&bytes[36..40], &[3, 0, 0, 0], "original length");
        assert_eq!(&bytes[40..], &[0xaa, 0xbb, 0xcc], "frame bytes");
    }
}
