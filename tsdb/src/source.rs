//! [`ByteSource`]: random access to the bytes of one file, wherever it lives.
//!
//! Readers ([`crate::index::IndexReader`], [`crate::chunks::ChunkReader`]) fetch only the byte
//! ranges they need through this trait, so the same code reads a local block ([`FileSource`]),
//! an in-memory copy ([`bytes::Bytes`]) or, in the store gateway, an object in a bucket. Code that
//! fetches asynchronously can instead call the pure section decoders in `index` and `chunks`
//! on the ranges it fetched itself.

use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::{Error, Result};

/// Random read access to one immutable file.
pub trait ByteSource: Send + Sync {
    /// Total size in bytes.
    fn len(&self) -> u64;

    /// True for an empty file.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes in `range`; an error when the range is not inside the file.
    fn read_range(&self, range: Range<u64>) -> Result<Bytes>;
}

impl ByteSource for Bytes {
    fn len(&self) -> u64 {
        Bytes::len(self) as u64
    }

    fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        let len = Bytes::len(self) as u64;
        if range.start > range.end || range.end > len {
            return Err(Error::corrupt(
                "file",
                range.start,
                format!("range {range:?} outside file of {len} bytes"),
            ));
        }
        Ok(self.slice(range.start as usize..range.end as usize))
    }
}

/// A local file read with positional reads (`pread`); no memory mapping.
#[derive(Debug)]
pub struct FileSource {
    file: std::fs::File,
    path: PathBuf,
    len: u64,
}

impl FileSource {
    /// Open `path` for reading.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = std::fs::File::open(&path).map_err(|err| Error::io("open", &path, err))?;
        let len = file
            .metadata()
            .map_err(|err| Error::io("stat", &path, err))?
            .len();
        Ok(FileSource { file, path, len })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl ByteSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        if range.start > range.end || range.end > self.len {
            return Err(Error::corrupt(
                "file",
                range.start,
                format!("range {range:?} outside file of {} bytes", self.len),
            ));
        }
        let size = usize::try_from(range.end - range.start)
            .map_err(|_| Error::corrupt("file", range.start, "range too large"))?;
        let mut buf = vec![0u8; size];
        self.file
            .read_exact_at(&mut buf, range.start)
            .map_err(|err| Error::io("read", &self.path, err))?;
        Ok(Bytes::from(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_memory_sources_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello world").unwrap();
        let file = FileSource::open(&path).unwrap();
        let memory = Bytes::from_static(b"hello world");
        for source in [&file as &dyn ByteSource, &memory] {
            assert_eq!(source.len(), 11);
            assert_eq!(&source.read_range(6..11).unwrap()[..], b"world");
            assert!(source.read_range(6..12).is_err());
            #[allow(clippy::reversed_empty_ranges)]
            let reversed = 7..6;
            assert!(source.read_range(reversed).is_err());
        }
    }
}
