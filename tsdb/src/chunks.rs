//! Chunk segment files (`chunks/000001`, ...): [`ChunkReader`] and [`ChunkWriter`].
//!
//! Format (prometheus.md §1.4, Prometheus `tsdb/docs/format/chunks.md`): an 8-byte header (magic
//! `0x85BD40DD`, version 1, 3 zero bytes), then chunks back to back: `len` uvarint (data bytes),
//! encoding byte, data, CRC-32C (big-endian) over encoding byte + data. A [`ChunkRef`] is
//! `segment index (0-based position among the sorted files) << 32 | byte offset`.
//!
//! [`decode_chunk`] and [`check_segment_header`] are pure decoders for callers that fetch the
//! bytes themselves (the store gateway reads chunk ranges from a bucket).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::chunkenc::{Chunk, Encoding};
use crate::encoding::{Decbuf, check_crc, put_uvarint};
use crate::source::{ByteSource, FileSource};
use crate::{Error, Result};

/// Magic number at the start of every segment file.
pub const SEGMENT_MAGIC: u32 = 0x85BD_40DD;
/// Segment file format version.
pub const SEGMENT_VERSION: u8 = 1;
/// Bytes before the first chunk of a segment.
pub const SEGMENT_HEADER_SIZE: u64 = 8;
/// Default maximum size of a segment file (512 MiB).
pub const DEFAULT_MAX_SEGMENT_SIZE: u64 = 512 * 1024 * 1024;
/// Upper bound of a chunk's framing: 5-byte length, encoding byte, 4-byte CRC.
pub const MAX_CHUNK_OVERHEAD: usize = 5 + 1 + 4;

/// Bytes read speculatively for one chunk; most chunks (about 120 samples) are smaller.
const CHUNK_READ_AHEAD: u64 = 512;

/// Reference of a chunk inside a block: `segment << 32 | offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ChunkRef(pub u64);

impl ChunkRef {
    /// A reference from its parts.
    pub fn new(segment: u32, offset: u32) -> Self {
        ChunkRef((u64::from(segment) << 32) | u64::from(offset))
    }
    /// 0-based segment index.
    pub fn segment(self) -> u32 {
        (self.0 >> 32) as u32
    }
    /// Byte offset inside the segment.
    pub fn offset(self) -> u32 {
        self.0 as u32
    }
}

/// The name of the segment file with 0-based index `segment` (`000001` for 0).
pub fn segment_file_name(segment: u32) -> String {
    format!("{:06}", u64::from(segment) + 1)
}

/// Check a segment file's 8-byte header.
pub fn check_segment_header(header: &[u8]) -> Result<()> {
    let mut buf = Decbuf::new(header, "chunk segment header", 0);
    let magic = buf.be_u32()?;
    if magic != SEGMENT_MAGIC {
        return Err(Error::corrupt(
            "chunk segment header",
            0,
            format!("invalid magic number {magic:#010x}"),
        ));
    }
    let version = buf.byte()?;
    if version != SEGMENT_VERSION {
        return Err(Error::UnsupportedVersion {
            what: "chunk segment",
            version: i64::from(version),
        });
    }
    Ok(())
}

/// Decode the chunk whose length field starts at `data[0]`; `offset` is its position in the
/// segment (for messages). Returns the chunk (sliced from `data`) and the bytes it spans, or
/// `Ok(None)` when `data` is too short to hold it (read more and call again).
pub fn decode_chunk(data: &bytes::Bytes, offset: u64) -> Result<Option<(Chunk, usize)>> {
    let mut buf = Decbuf::new(data, "chunk", offset);
    let len = match buf.uvarint() {
        Ok(len) => len,
        // A truncated varint at the end of a partial read: ask for more.
        Err(_) if data.len() < 10 && data.last().is_some_and(|b| b & 0x80 != 0) => return Ok(None),
        Err(err) => return Err(err),
    };
    let len = usize::try_from(len)
        .ok()
        .filter(|&len| len <= u32::MAX as usize)
        .ok_or_else(|| Error::corrupt("chunk", offset, format!("data length {len} too large")))?;
    let start = buf.position();
    let total = start + 1 + len + 4;
    if data.len() < total {
        return Ok(None);
    }
    let body = &data[start..start + 1 + len];
    let mut crc = Decbuf::new(&data[start + 1 + len..total], "chunk", offset);
    check_crc(body, crc.be_u32()?, "chunk", offset)?;
    let encoding = Encoding::from_u8(body[0]);
    Ok(Some((
        Chunk::new(encoding, data.slice(start + 1..start + 1 + len)),
        total,
    )))
}

/// Reads chunks from a block's segment files.
pub struct ChunkReader {
    segments: Vec<Box<dyn ByteSource>>,
    names: Vec<String>,
}

impl std::fmt::Debug for ChunkReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkReader")
            .field("segments", &self.names)
            .finish()
    }
}

impl ChunkReader {
    /// A reader over segment sources in segment order, with their file names (for messages).
    /// Checks every header.
    pub fn new(segments: Vec<(String, Box<dyn ByteSource>)>) -> Result<Self> {
        let mut sources = Vec::with_capacity(segments.len());
        let mut names = Vec::with_capacity(segments.len());
        for (name, source) in segments {
            let header = source.read_range(0..SEGMENT_HEADER_SIZE.min(source.len()))?;
            check_segment_header(&header)
                .map_err(|err| Error::corrupt("chunk segment", 0, format!("{name}: {err}")))?;
            sources.push(source);
            names.push(name);
        }
        Ok(ChunkReader {
            segments: sources,
            names,
        })
    }

    /// Open the numbered files of a `chunks/` directory (other names are ignored).
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let mut files: Vec<(u64, String)> = Vec::new();
        if dir.exists() {
            let entries = std::fs::read_dir(dir).map_err(|err| Error::io("list", dir, err))?;
            for entry in entries {
                let entry = entry.map_err(|err| Error::io("list", dir, err))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Ok(number) = name.parse::<u64>() {
                    files.push((number, name));
                }
            }
        }
        files.sort();
        let mut segments = Vec::with_capacity(files.len());
        for (_, name) in files {
            let source = FileSource::open(dir.join(&name))?;
            segments.push((name, Box::new(source) as Box<dyn ByteSource>));
        }
        Self::new(segments)
    }

    /// Number of segment files.
    pub fn num_segments(&self) -> usize {
        self.segments.len()
    }

    /// File name of segment `segment` (for error messages), e.g. `000001`.
    pub fn segment_name(&self, segment: u32) -> String {
        self.names
            .get(segment as usize)
            .cloned()
            .unwrap_or_else(|| segment_file_name(segment))
    }

    /// Total size of all segment files.
    pub fn size(&self) -> u64 {
        self.segments.iter().map(|s| s.len()).sum()
    }

    /// Read the chunk at `chunk_ref`.
    pub fn chunk(&self, chunk_ref: ChunkRef) -> Result<Chunk> {
        let segment = self
            .segments
            .get(chunk_ref.segment() as usize)
            .ok_or_else(|| {
                Error::corrupt(
                    "chunk reference",
                    u64::from(chunk_ref.offset()),
                    format!(
                        "segment index {} out of range ({} segments)",
                        chunk_ref.segment(),
                        self.segments.len()
                    ),
                )
            })?;
        let offset = u64::from(chunk_ref.offset());
        let len = segment.len();
        if offset < SEGMENT_HEADER_SIZE || offset >= len {
            return Err(Error::corrupt(
                "chunk reference",
                offset,
                format!("offset outside segment of {len} bytes"),
            ));
        }
        let data = segment.read_range(offset..(offset + CHUNK_READ_AHEAD).min(len))?;
        if let Some((chunk, _)) = decode_chunk(&data, offset)? {
            return Ok(chunk);
        }
        // Larger than the read-ahead: read the exact size.
        let mut buf = Decbuf::new(&data, "chunk", offset);
        let data_len = buf.uvarint()?;
        let end = offset
            .saturating_add(buf.position() as u64)
            .saturating_add(data_len)
            .saturating_add(5);
        if end > len {
            return Err(Error::corrupt(
                "chunk",
                offset,
                format!("chunk of {data_len} bytes runs past the end of the segment ({len} bytes)"),
            ));
        }
        let data = segment.read_range(offset..end)?;
        decode_chunk(&data, offset)?
            .map(|(chunk, _)| chunk)
            .ok_or_else(|| Error::corrupt("chunk", offset, "truncated chunk"))
    }
}

/// Writes chunks into numbered segment files, cutting a new file when the next series' chunks
/// would overflow the current one.
#[derive(Debug)]
pub struct ChunkWriter {
    dir: PathBuf,
    max_segment_size: u64,
    segment: Option<SegmentFile>,
    next_segment: u32,
    written: Vec<(String, u64)>,
}

#[derive(Debug)]
struct SegmentFile {
    index: u32,
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    size: u64,
}

impl ChunkWriter {
    /// A writer creating segments in `dir` (created if missing), at most 512 MiB each.
    pub fn create(dir: &Path) -> Result<Self> {
        Self::with_segment_size(dir, DEFAULT_MAX_SEGMENT_SIZE)
    }

    /// A writer with a custom maximum segment size.
    pub fn with_segment_size(dir: &Path, max_segment_size: u64) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|err| Error::io("create", dir, err))?;
        Ok(ChunkWriter {
            dir: dir.to_path_buf(),
            max_segment_size: max_segment_size.clamp(SEGMENT_HEADER_SIZE + 1, u64::from(u32::MAX)),
            segment: None,
            next_segment: 0,
            written: Vec::new(),
        })
    }

    fn cut(&mut self) -> Result<()> {
        self.finish_segment()?;
        let index = self.next_segment;
        self.next_segment += 1;
        let path = self.dir.join(segment_file_name(index));
        let file = std::fs::File::create(&path).map_err(|err| Error::io("create", &path, err))?;
        let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&SEGMENT_MAGIC.to_be_bytes());
        header[4] = SEGMENT_VERSION;
        file.write_all(&header)
            .map_err(|err| Error::io("write", &path, err))?;
        self.segment = Some(SegmentFile {
            index,
            path,
            file,
            size: SEGMENT_HEADER_SIZE,
        });
        Ok(())
    }

    fn finish_segment(&mut self) -> Result<()> {
        if let Some(segment) = self.segment.take() {
            let file = segment
                .file
                .into_inner()
                .map_err(|err| Error::io("write", &segment.path, err.into_error()))?;
            file.sync_all()
                .map_err(|err| Error::io("sync", &segment.path, err))?;
            self.written
                .push((segment_file_name(segment.index), segment.size));
        }
        Ok(())
    }

    /// Write the chunks of one series, returning their references. The chunks stay in one
    /// segment unless they alone exceed the maximum segment size.
    pub fn write_chunks(&mut self, chunks: &[Chunk]) -> Result<Vec<ChunkRef>> {
        let batch: u64 = chunks
            .iter()
            .map(|c| (c.data.len() + MAX_CHUNK_OVERHEAD) as u64)
            .sum();
        let needs_cut = match &self.segment {
            None => true,
            Some(segment) => {
                segment.size > SEGMENT_HEADER_SIZE && segment.size + batch > self.max_segment_size
            }
        };
        if needs_cut && !chunks.is_empty() {
            self.cut()?;
        }
        let mut refs = Vec::with_capacity(chunks.len());
        let mut frame = Vec::with_capacity(16);
        for chunk in chunks {
            let size = (chunk.data.len() + MAX_CHUNK_OVERHEAD) as u64;
            if self.segment.as_ref().is_some_and(|s| {
                s.size > SEGMENT_HEADER_SIZE && s.size + size > self.max_segment_size
            }) {
                self.cut()?;
            }
            let Some(segment) = self.segment.as_mut() else {
                return Err(Error::InvalidInput {
                    writer: "chunk writer",
                    detail: "no open segment".into(),
                });
            };
            let offset = u32::try_from(segment.size).map_err(|_| Error::InvalidInput {
                writer: "chunk writer",
                detail: "segment larger than 4 GiB".into(),
            })?;
            refs.push(ChunkRef::new(segment.index, offset));
            frame.clear();
            put_uvarint(&mut frame, chunk.data.len() as u64);
            let encoding = chunk.encoding.to_u8();
            frame.push(encoding);
            let mut crc = crc32c::crc32c(&[encoding]);
            crc = crc32c::crc32c_append(crc, &chunk.data);
            segment
                .file
                .write_all(&frame)
                .and_then(|()| segment.file.write_all(&chunk.data))
                .and_then(|()| segment.file.write_all(&crc.to_be_bytes()))
                .map_err(|err| Error::io("write", &segment.path, err))?;
            segment.size += (frame.len() + chunk.data.len() + 4) as u64;
        }
        Ok(refs)
    }

    /// Flush and sync; returns `(file name, size)` of every segment written.
    pub fn finish(mut self) -> Result<Vec<(String, u64)>> {
        self.finish_segment()?;
        Ok(std::mem::take(&mut self.written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunkenc::XorAppender;

    fn xor_chunk(n: i64) -> Chunk {
        let mut app = XorAppender::new();
        for i in 0..n {
            app.append(i * 15_000, i as f64).unwrap();
        }
        Chunk::new(Encoding::Xor, app.bytes())
    }

    #[test]
    fn writes_and_reads_back_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = ChunkWriter::with_segment_size(dir.path(), 600).unwrap();
        let mut all = Vec::new();
        for series in 0..20 {
            let chunks: Vec<Chunk> = (1..4).map(|i| xor_chunk(i + series)).collect();
            let refs = writer.write_chunks(&chunks).unwrap();
            all.extend(refs.into_iter().zip(chunks));
        }
        let files = writer.finish().unwrap();
        assert!(files.len() > 1, "{files:?}");
        let reader = ChunkReader::open_dir(dir.path()).unwrap();
        assert_eq!(reader.num_segments(), files.len());
        for (chunk_ref, chunk) in &all {
            assert_eq!(&reader.chunk(*chunk_ref).unwrap(), chunk);
        }
        assert!(reader.chunk(ChunkRef::new(99, 8)).is_err());
        assert!(reader.chunk(ChunkRef::new(0, 3)).is_err());
    }

    #[test]
    fn large_chunks_are_read_past_the_read_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = ChunkWriter::create(dir.path()).unwrap();
        let big = xor_chunk(2000);
        assert!(big.data.len() as u64 > CHUNK_READ_AHEAD);
        let refs = writer.write_chunks(std::slice::from_ref(&big)).unwrap();
        writer.finish().unwrap();
        let reader = ChunkReader::open_dir(dir.path()).unwrap();
        assert_eq!(reader.chunk(refs[0]).unwrap(), big);
    }

    #[test]
    fn detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = ChunkWriter::create(dir.path()).unwrap();
        let refs = writer.write_chunks(&[xor_chunk(10)]).unwrap();
        writer.finish().unwrap();
        let path = dir.path().join("000001");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 6;
        bytes[last] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        let reader = ChunkReader::open_dir(dir.path()).unwrap();
        let err = reader.chunk(refs[0]).unwrap_err();
        assert!(matches!(err, Error::Checksum { .. }), "{err}");
        std::fs::write(&path, b"\x85\xbd\x40\xdd\x02\0\0\0").unwrap();
        assert!(ChunkReader::open_dir(dir.path()).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn random_and_mutated_segments_never_panic(
            body in prop::collection::vec(any::<u8>(), 0..300),
            offset in 0u32..400,
            flip in 0usize..300,
        ) {
            let mut data = vec![0x85, 0xBD, 0x40, 0xDD, 1, 0, 0, 0];
            data.extend_from_slice(&body);
            let len = data.len();
            data[flip % len] ^= 0x01;
            let source: Box<dyn ByteSource> = Box::new(bytes::Bytes::from(data.clone()));
            if let Ok(reader) = ChunkReader::new(vec![("000001".into(), source)])
                && let Ok(chunk) = reader.chunk(ChunkRef::new(0, offset))
                && let Ok(it) = chunk.xor_iter()
            {
                for sample in it {
                    if sample.is_err() {
                        break;
                    }
                }
            }
            let _ = decode_chunk(&bytes::Bytes::from(data), 0);
        }
    }
}
