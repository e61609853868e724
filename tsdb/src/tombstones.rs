//! The `tombstones` file: deleted time intervals per series.
//!
//! Format (prometheus.md §1.5; the upstream doc is partly stale): magic `0130BA30`, version 1,
//! then entries `(series ref uvarint, mint varint, maxt varint)` with no padding, then a CRC-32C
//! over the entries only. Intervals are closed. The empty file is exactly 9 bytes.

use std::collections::HashMap;
use std::path::Path;

use crate::encoding::{Decbuf, check_crc, crc32c};
use crate::index::SeriesRef;
use crate::{Error, Result};

/// Magic number of the tombstones file.
pub const MAGIC_TOMBSTONES: u32 = 0x0130_BA30;
/// Tombstones format version.
pub const TOMBSTONES_VERSION: u8 = 1;
/// File name inside a block directory.
pub const TOMBSTONES_FILENAME: &str = "tombstones";

/// Deleted intervals `[mint, maxt]` (both inclusive) per series.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    intervals: HashMap<SeriesRef, Vec<(i64, i64)>>,
}

impl Tombstones {
    /// Decode a tombstones file.
    pub fn decode(data: &[u8]) -> Result<Tombstones> {
        let mut buf = Decbuf::new(data, "tombstones", 0);
        let magic = buf.be_u32()?;
        if magic != MAGIC_TOMBSTONES {
            return Err(Error::corrupt(
                "tombstones",
                0,
                format!("invalid magic number {magic:#010x}"),
            ));
        }
        let version = buf.byte()?;
        if version != TOMBSTONES_VERSION {
            return Err(Error::UnsupportedVersion {
                what: "tombstones",
                version: i64::from(version),
            });
        }
        let rest = buf.rest();
        let Some(split) = rest.len().checked_sub(4) else {
            return Err(Error::corrupt("tombstones", 5, "missing checksum"));
        };
        let (entries, crc) = rest.split_at(split);
        check_crc(
            entries,
            u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]),
            "tombstones",
            5,
        )?;
        let mut buf = Decbuf::new(entries, "tombstones", 5);
        let mut intervals: HashMap<SeriesRef, Vec<(i64, i64)>> = HashMap::new();
        while !buf.is_empty() {
            let series_ref = buf.uvarint_u32()?;
            let mint = buf.varint()?;
            let maxt = buf.varint()?;
            intervals.entry(series_ref).or_default().push((mint, maxt));
        }
        for list in intervals.values_mut() {
            list.sort_unstable();
        }
        Ok(Tombstones { intervals })
    }

    /// Read `<block_dir>/tombstones`; a missing file means no tombstones.
    pub fn read_from_dir(block_dir: &Path) -> Result<Tombstones> {
        let path = block_dir.join(TOMBSTONES_FILENAME);
        match std::fs::read(&path) {
            Ok(data) => Self::decode(&data),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Tombstones::default()),
            Err(err) => Err(Error::io("read", &path, err)),
        }
    }

    /// Encode (entries sorted by series and interval, so output is deterministic).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC_TOMBSTONES.to_be_bytes().to_vec();
        out.push(TOMBSTONES_VERSION);
        let mut refs: Vec<&SeriesRef> = self.intervals.keys().collect();
        refs.sort_unstable();
        let mut entries = Vec::new();
        for series_ref in refs {
            for &(mint, maxt) in &self.intervals[series_ref] {
                crate::encoding::put_uvarint(&mut entries, u64::from(*series_ref));
                crate::encoding::put_varint(&mut entries, mint);
                crate::encoding::put_varint(&mut entries, maxt);
            }
        }
        out.extend_from_slice(&entries);
        out.extend_from_slice(&crc32c(&entries).to_be_bytes());
        out
    }

    /// Write the file into `block_dir`.
    pub fn write_to_dir(&self, block_dir: &Path) -> Result<()> {
        crate::meta::write_synced(&block_dir.join(TOMBSTONES_FILENAME), &self.encode())
    }

    /// Add a deleted interval.
    pub fn add(&mut self, series_ref: SeriesRef, mint: i64, maxt: i64) {
        let list = self.intervals.entry(series_ref).or_default();
        list.push((mint, maxt));
        list.sort_unstable();
    }

    /// Deleted intervals of one series (sorted).
    pub fn get(&self, series_ref: SeriesRef) -> &[(i64, i64)] {
        self.intervals.get(&series_ref).map_or(&[], Vec::as_slice)
    }

    /// Number of intervals (meta.json `numTombstones`).
    pub fn num_intervals(&self) -> u64 {
        self.intervals.values().map(|v| v.len() as u64).sum()
    }

    /// True when nothing is deleted.
    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_nine_bytes() {
        let bytes = Tombstones::default().encode();
        assert_eq!(bytes, [0x01, 0x30, 0xBA, 0x30, 0x01, 0, 0, 0, 0]);
        assert!(Tombstones::decode(&bytes).unwrap().is_empty());
    }

    #[test]
    fn round_trips_and_rejects_corruption() {
        let mut tombstones = Tombstones::default();
        tombstones.add(4, -10, 20);
        tombstones.add(4, 100, 200);
        tombstones.add(9, 0, 0);
        let mut bytes = tombstones.encode();
        let decoded = Tombstones::decode(&bytes).unwrap();
        assert_eq!(decoded, tombstones);
        assert_eq!(decoded.get(4), [(-10, 20), (100, 200)]);
        assert_eq!(decoded.num_intervals(), 3);
        bytes[6] ^= 1;
        assert!(Tombstones::decode(&bytes).is_err());
        assert!(Tombstones::decode(&bytes[..7]).is_err());
    }
}
