//! The journal's file format. A segment is a file named after its index
//! (`00000000000000000042.journal`) holding an 8-byte header ([`MAGIC`]) and then records,
//! each framed as `length: u32 LE | crc32(payload): u32 LE | payload`. A record is valid when
//! its frame is complete, its length within [`MAX_RECORD`] and its checksum right; scanning
//! stops at the first invalid one, so a tail torn by a crash is found (and cut) exactly.

use std::path::{Path, PathBuf};

/// A segment's first bytes: the format's name and version.
pub(crate) const MAGIC: &[u8; 8] = b"SYJRNL01";

/// The header's size: where a segment's first record starts.
pub(crate) const HEADER: u64 = MAGIC.len() as u64;

/// A record's frame: its length and checksum.
const FRAME: usize = 8;

/// The largest payload a record may have (a click is a few KiB at most).
pub(crate) const MAX_RECORD: usize = 4 << 20;

/// Appends `payload` (never empty), framed, to `out`.
pub(crate) fn frame(payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(!payload.is_empty() && payload.len() <= MAX_RECORD);
    let _ = frame_with(out, |out| {
        out.extend_from_slice(payload);
        Ok::<(), std::convert::Infallible>(())
    });
}

/// Appends a record to `out` whose payload `encode` writes (it may fail); the frame is
/// filled in once the payload's length is known, so the payload is written once, in place.
/// Nothing is appended when `encode` fails or writes an empty or oversized payload.
pub(crate) fn frame_with<E>(
    out: &mut Vec<u8>,
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), FrameError<E>> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME]);
    let encoded = encode(out);
    let length = out.len() - start - FRAME;
    let error = match encoded {
        Err(error) => Some(FrameError::Encode(error)),
        Ok(()) if length == 0 || length > MAX_RECORD => Some(FrameError::Size(length)),
        Ok(()) => None,
    };
    if let Some(error) = error {
        out.truncate(start);
        return Err(error);
    }
    let checksum = crc32fast::hash(&out[start + FRAME..]);
    out[start..start + 4].copy_from_slice(&(length as u32).to_le_bytes());
    out[start + 4..start + FRAME].copy_from_slice(&checksum.to_le_bytes());
    Ok(())
}

/// Why [`frame_with`] made no record.
#[derive(Debug)]
pub(crate) enum FrameError<E> {
    Encode(E),
    /// The payload's length: empty, or over [`MAX_RECORD`].
    Size(usize),
}

/// The records found in a run of bytes (a segment after its header).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Each record's payload as a range of the scanned bytes.
    pub records: Vec<std::ops::Range<usize>>,
    /// Where the last valid record ends: everything before it is whole records.
    pub end: usize,
}

/// Reads the records of `bytes` up to the first invalid one, at most `limit` of them.
pub(crate) fn scan(bytes: &[u8], limit: usize) -> Scan {
    let mut scan = Scan::default();
    let mut at = 0;
    while scan.records.len() < limit {
        let Some(head) = bytes.get(at..at + FRAME) else {
            break;
        };
        let length = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let checksum = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        // A record is never empty: eight zero bytes (a zero-filled tail after a power loss)
        // would otherwise pass as an empty record with a matching checksum.
        if length == 0 || length > MAX_RECORD {
            break;
        }
        let start = at + FRAME;
        let Some(payload) = bytes.get(start..start + length) else {
            break;
        };
        if crc32fast::hash(payload) != checksum {
            break;
        }
        scan.records.push(start..start + length);
        at = start + length;
        scan.end = at;
    }
    scan
}

/// The path of segment `index` in `dir`.
pub(crate) fn path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.journal"))
}

/// The indexes of the segments in `dir`, in order.
pub(crate) fn list(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut indexes = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(index) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".journal"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            indexes.push(index);
        }
    }
    indexes.sort_unstable();
    Ok(indexes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for payload in payloads {
            frame(payload, &mut bytes);
        }
        bytes
    }

    #[test]
    fn a_zero_filled_tail_is_no_record() {
        let mut bytes = framed(&[b"one".to_vec()]);
        let whole = bytes.len();
        bytes.extend_from_slice(&[0; 64]);
        let scan = scan(&bytes, usize::MAX);
        assert_eq!(scan.records.len(), 1);
        assert_eq!(scan.end, whole);
    }

    #[test]
    fn a_flipped_bit_ends_the_records_there() {
        let payloads = vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()];
        let mut bytes = framed(&payloads);
        let second = FRAME + 3;
        bytes[second + FRAME + 1] ^= 0x40;
        let scan = scan(&bytes, usize::MAX);
        assert_eq!(scan.records.len(), 1);
        assert_eq!(scan.end, second);
        assert!(scan.end < bytes.len(), "the rest is a torn tail");
    }

    #[test]
    fn framing_in_place_matches_framing_a_copy() {
        let mut copied = Vec::new();
        frame(b"payload", &mut copied);
        let mut in_place = b"before".to_vec();
        frame_with(&mut in_place, |out| {
            out.extend_from_slice(b"payload");
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(&in_place[6..], copied.as_slice());
        // Empty or failed payloads leave nothing behind.
        let empty = frame_with(&mut in_place, |_| Ok::<(), ()>(()));
        assert!(matches!(empty, Err(FrameError::Size(0))));
        let failed = frame_with(&mut in_place, |out| {
            out.push(1);
            Err("no")
        });
        assert!(matches!(failed, Err(FrameError::Encode("no"))));
        assert_eq!(&in_place[6..], copied.as_slice());
    }

    proptest! {
        #[test]
        fn framed_records_read_back(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 0..20)) {
            let bytes = framed(&payloads);
            let scan = scan(&bytes, usize::MAX);
            prop_assert_eq!(scan.end, bytes.len());
            let read: Vec<Vec<u8>> = scan.records.iter().map(|r| bytes[r.clone()].to_vec()).collect();
            prop_assert_eq!(read, payloads);
        }

        #[test]
        fn a_torn_tail_keeps_every_whole_record(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..200), 1..15),
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = framed(&payloads);
            let at = cut.index(bytes.len() + 1);
            let torn = &bytes[..at];
            let scan = scan(torn, usize::MAX);
            // Exactly the records that end at or before the cut.
            let mut ends = Vec::new();
            let mut end = 0;
            for payload in &payloads {
                end += FRAME + payload.len();
                ends.push(end);
            }
            let whole = ends.iter().filter(|e| **e <= at).count();
            prop_assert_eq!(scan.records.len(), whole);
            prop_assert_eq!(scan.end, if whole == 0 { 0 } else { ends[whole - 1] });
            for (range, payload) in scan.records.iter().zip(&payloads) {
                prop_assert_eq!(&torn[range.clone()], payload.as_slice());
            }
        }

        #[test]
        fn any_bytes_end_in_records_or_a_clean_tear(bytes in prop::collection::vec(any::<u8>(), 0..2000), limit in 0usize..50) {
            let scan = scan(&bytes, limit);
            prop_assert!(scan.end <= bytes.len());
            prop_assert!(scan.records.len() <= limit);
            let mut at = 0;
            for range in &scan.records {
                prop_assert_eq!(range.start, at + FRAME);
                at = range.end;
            }
            prop_assert_eq!(at, scan.end);
        }
    }
}
