//! The block index, format v2 (prometheus.md §1.3, Prometheus `tsdb/docs/format/index.md`).
//!
//! Layout: header (magic `BAAAD700`, version), symbol table, series (16-byte aligned; a series
//! reference is its offset / 16), label indices and label offset table (written as 2.42 does,
//! never read), postings lists (4-byte aligned; the all-postings list for `("", "")` first),
//! postings offset table, and a 52-byte TOC of section offsets, all CRC-32C protected.
//!
//! This module holds the pure section decoders (byte slices in, values out), so the store gateway
//! can fetch ranges from a bucket and decode them itself; [`IndexReader`] reads a whole index
//! through a [`crate::source::ByteSource`], [`IndexWriter`] writes one in a single streaming pass,
//! and [`postings`] holds postings-list algebra and matcher lookup.

pub mod postings;
mod reader;
mod writer;

pub use reader::IndexReader;
pub use writer::IndexWriter;

use crate::chunks::ChunkRef;
use crate::encoding::{Decbuf, check_crc};
use crate::{Error, Result};

/// Magic number at the start of the index.
pub const MAGIC_INDEX: u32 = 0xBAAA_D700;
/// Index format version 2, the one Prometheus writes.
pub const FORMAT_V2: u8 = 2;
/// Header size: magic + version byte.
pub const HEADER_LEN: u64 = 5;
/// Size of the table of contents at the end of the file.
pub const TOC_LEN: u64 = 52;
/// Every `SYMBOL_SAMPLE_INTERVAL`th symbol offset is kept in memory.
const SYMBOL_SAMPLE_INTERVAL: u32 = 32;

/// A series reference: the series entry's byte offset divided by 16.
pub type SeriesRef = u32;

/// The label pair of the all-postings list.
pub const ALL_POSTINGS_KEY: (&str, &str) = ("", "");

/// Check the 5-byte header; returns the format version (2, or 3 which is identical).
pub fn decode_header(header: &[u8]) -> Result<u8> {
    let mut buf = Decbuf::new(header, "index header", 0);
    let magic = buf.be_u32()?;
    if magic != MAGIC_INDEX {
        return Err(Error::corrupt(
            "index header",
            0,
            format!("invalid magic number {magic:#010x}"),
        ));
    }
    let version = buf.byte()?;
    if version != 2 && version != 3 {
        return Err(Error::UnsupportedVersion {
            what: "index",
            version: i64::from(version),
        });
    }
    Ok(version)
}

/// The table of contents: absolute offsets of the sections (0 = absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Toc {
    /// Symbol table.
    pub symbols: u64,
    /// First series entry (before its padding).
    pub series: u64,
    /// Label indices (obsolete).
    pub label_indices: u64,
    /// Label offset table (obsolete).
    pub label_indices_table: u64,
    /// First postings list (before its padding).
    pub postings: u64,
    /// Postings offset table.
    pub postings_table: u64,
}

impl Toc {
    /// Decode the last [`TOC_LEN`] bytes of an index of `file_len` bytes.
    pub fn decode(bytes: &[u8], file_len: u64) -> Result<Toc> {
        let offset = file_len.saturating_sub(TOC_LEN);
        if bytes.len() as u64 != TOC_LEN {
            return Err(Error::corrupt("toc", offset, "index too short for its TOC"));
        }
        let mut buf = Decbuf::new(bytes, "toc", offset);
        let toc = Toc {
            symbols: buf.be_u64()?,
            series: buf.be_u64()?,
            label_indices: buf.be_u64()?,
            label_indices_table: buf.be_u64()?,
            postings: buf.be_u64()?,
            postings_table: buf.be_u64()?,
        };
        check_crc(&bytes[..48], buf.be_u32()?, "toc", offset)?;
        for (name, value) in [
            ("symbols", toc.symbols),
            ("series", toc.series),
            ("postings", toc.postings),
            ("postings offset table", toc.postings_table),
        ] {
            if value < HEADER_LEN || value > offset {
                return Err(Error::corrupt(
                    "toc",
                    offset,
                    format!("{name} offset {value} outside the index"),
                ));
            }
        }
        Ok(toc)
    }

    /// Encode with its CRC.
    pub fn encode(&self) -> [u8; TOC_LEN as usize] {
        let mut out = [0u8; TOC_LEN as usize];
        for (i, value) in [
            self.symbols,
            self.series,
            self.label_indices,
            self.label_indices_table,
            self.postings,
            self.postings_table,
        ]
        .into_iter()
        .enumerate()
        {
            out[i * 8..i * 8 + 8].copy_from_slice(&value.to_be_bytes());
        }
        let crc = crate::encoding::crc32c(&out[..48]);
        out[48..].copy_from_slice(&crc.to_be_bytes());
        out
    }
}

/// For a table that is `len u32 | payload (len bytes) | crc u32` starting at `data[0]`: the
/// number of bytes the whole table spans, from its 4-byte length prefix.
pub fn table_span(len_prefix: &[u8], section: &'static str, offset: u64) -> Result<u64> {
    let len = Decbuf::new(len_prefix, section, offset).be_u32()?;
    Ok(4 + u64::from(len) + 4)
}

/// Verify and return the payload of a `len u32 | payload | crc u32` table starting at `data[0]`.
pub fn decode_table<'a>(data: &'a [u8], section: &'static str, offset: u64) -> Result<&'a [u8]> {
    let mut buf = Decbuf::new(data, section, offset);
    let len = buf.be_u32()? as usize;
    let payload = buf.bytes(len)?;
    check_crc(payload, buf.be_u32()?, section, offset)?;
    Ok(payload)
}

/// The symbol table: sorted, deduplicated strings addressed by their position.
#[derive(Debug, Clone)]
pub struct Symbols {
    /// Table payload after the symbol count.
    data: bytes::Bytes,
    /// Offset (in `data`) of every [`SYMBOL_SAMPLE_INTERVAL`]th symbol.
    sampled: Vec<u32>,
    count: u32,
    /// Absolute file offset of `data`, for messages.
    base: u64,
}

impl Symbols {
    /// Decode a verified symbol table payload (from [`decode_table`]) found at `offset`.
    /// Validates every entry once, so later lookups cannot fail on framing.
    pub fn decode(payload: bytes::Bytes, offset: u64) -> Result<Symbols> {
        let mut buf = Decbuf::new(&payload, "symbols", offset + 4);
        let count = buf.be_u32()?;
        let base = offset + 8;
        let data = payload.slice(4..);
        let mut buf = Decbuf::new(&data, "symbols", base);
        let mut sampled = Vec::with_capacity((count / SYMBOL_SAMPLE_INTERVAL + 1) as usize);
        let mut previous: Option<&[u8]> = None;
        for i in 0..count {
            if i % SYMBOL_SAMPLE_INTERVAL == 0 {
                sampled.push(buf.position() as u32);
            }
            let symbol = buf.uvarint_str()?.as_bytes();
            if previous.is_some_and(|p| p >= symbol) {
                return Err(buf.error(format!("symbol {i} is not in sorted order")));
            }
            previous = Some(symbol);
        }
        if !buf.is_empty() {
            return Err(buf.error(format!("{} bytes after the last symbol", buf.remaining())));
        }
        Ok(Symbols {
            data,
            sampled,
            count,
            base,
        })
    }

    /// Number of symbols.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// True when the table is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The symbol with reference `symbol_ref`.
    pub fn lookup(&self, symbol_ref: u32) -> Result<&str> {
        if symbol_ref >= self.count {
            return Err(Error::corrupt(
                "symbols",
                self.base,
                format!(
                    "symbol reference {symbol_ref} out of range ({} symbols)",
                    self.count
                ),
            ));
        }
        let start = self
            .sampled
            .get((symbol_ref / SYMBOL_SAMPLE_INTERVAL) as usize)
            .copied()
            .unwrap_or(0) as usize;
        let mut buf = Decbuf::new(self.data.get(start..).unwrap_or(&[]), "symbols", self.base);
        for _ in 0..symbol_ref % SYMBOL_SAMPLE_INTERVAL {
            let len = buf.uvarint_usize()?;
            buf.skip(len)?;
        }
        buf.uvarint_str()
    }

    /// The reference of `symbol`, if present.
    pub fn find(&self, symbol: &str) -> Option<u32> {
        // Find the last sample <= symbol, then scan at most one interval.
        let first_of = |i: usize| -> Option<&[u8]> {
            let start = *self.sampled.get(i)? as usize;
            Decbuf::new(self.data.get(start..)?, "symbols", 0)
                .uvarint_bytes()
                .ok()
        };
        let (mut low, mut high) = (0usize, self.sampled.len());
        while low < high {
            let mid = (low + high) / 2;
            if first_of(mid)? <= symbol.as_bytes() {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        let block = low.checked_sub(1)?;
        let start = *self.sampled.get(block)? as usize;
        let mut buf = Decbuf::new(self.data.get(start..)?, "symbols", 0);
        let first = block as u32 * SYMBOL_SAMPLE_INTERVAL;
        for i in first..self.count.min(first + SYMBOL_SAMPLE_INTERVAL) {
            let candidate = buf.uvarint_bytes().ok()?;
            match candidate.cmp(symbol.as_bytes()) {
                std::cmp::Ordering::Equal => return Some(i),
                std::cmp::Ordering::Greater => return None,
                std::cmp::Ordering::Less => {}
            }
        }
        None
    }

    /// All symbols in order.
    pub fn iter(&self) -> impl Iterator<Item = Result<&str>> + '_ {
        let mut buf = Decbuf::new(&self.data, "symbols", self.base);
        (0..self.count).map(move |_| buf.uvarint_str())
    }
}

/// A chunk's entry in a series: time range and where it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    /// First sample timestamp.
    pub min_time: i64,
    /// Last sample timestamp (inclusive).
    pub max_time: i64,
    /// Location in the segment files.
    pub chunk_ref: ChunkRef,
}

/// A decoded series entry: label symbol references and chunk metas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesEntry {
    /// `(name symbol, value symbol)` per label, in name order.
    pub labels: Vec<(u32, u32)>,
    /// The series' chunks in time order.
    pub chunks: Vec<ChunkMeta>,
}

/// Decode the series entry starting at `data[0]` (its `len` uvarint); `offset` is its file
/// offset. `Ok(None)` when `data` is too short to hold the whole entry.
pub fn decode_series(data: &[u8], offset: u64) -> Result<Option<SeriesEntry>> {
    let mut buf = Decbuf::new(data, "series", offset);
    let len = match buf.uvarint_usize() {
        Ok(len) => len,
        Err(_) if data.len() < 10 => return Ok(None),
        Err(err) => return Err(err),
    };
    let start = buf.position();
    if buf.remaining() < len.saturating_add(4) {
        return Ok(None);
    }
    let body = buf.bytes(len)?;
    check_crc(body, buf.be_u32()?, "series", offset)?;
    let mut body = Decbuf::new(body, "series", offset + start as u64);
    let num_labels = body.uvarint_usize()?;
    if num_labels > body.remaining() / 2 {
        return Err(body.error(format!("{num_labels} labels cannot fit the entry")));
    }
    let mut labels = Vec::with_capacity(num_labels);
    for _ in 0..num_labels {
        labels.push((body.uvarint_u32()?, body.uvarint_u32()?));
    }
    let num_chunks = body.uvarint_usize()?;
    if num_chunks > body.remaining() / 3 {
        return Err(body.error(format!("{num_chunks} chunks cannot fit the entry")));
    }
    let mut chunks: Vec<ChunkMeta> = Vec::with_capacity(num_chunks);
    for i in 0..num_chunks {
        let meta = match chunks.last() {
            None => {
                let min_time = body.varint()?;
                let max_time = min_time.wrapping_add(body.uvarint()? as i64);
                ChunkMeta {
                    min_time,
                    max_time,
                    chunk_ref: ChunkRef(body.uvarint()?),
                }
            }
            Some(previous) => {
                let min_time = previous.max_time.wrapping_add(body.uvarint()? as i64);
                let max_time = min_time.wrapping_add(body.uvarint()? as i64);
                let chunk_ref = (previous.chunk_ref.0 as i64).wrapping_add(body.varint()?);
                ChunkMeta {
                    min_time,
                    max_time,
                    chunk_ref: ChunkRef(chunk_ref as u64),
                }
            }
        };
        if meta.max_time < meta.min_time {
            return Err(body.error(format!("chunk {i} has max time before min time")));
        }
        chunks.push(meta);
    }
    Ok(Some(SeriesEntry { labels, chunks }))
}

/// Encode a series entry body (without length and CRC) into `out`.
pub fn encode_series_body(out: &mut Vec<u8>, labels: &[(u32, u32)], chunks: &[ChunkMeta]) {
    use crate::encoding::{put_uvarint, put_varint};
    put_uvarint(out, labels.len() as u64);
    for &(name, value) in labels {
        put_uvarint(out, u64::from(name));
        put_uvarint(out, u64::from(value));
    }
    put_uvarint(out, chunks.len() as u64);
    let mut previous: Option<&ChunkMeta> = None;
    for chunk in chunks {
        match previous {
            None => {
                put_varint(out, chunk.min_time);
                put_uvarint(out, chunk.max_time.wrapping_sub(chunk.min_time) as u64);
                put_uvarint(out, chunk.chunk_ref.0);
            }
            Some(previous) => {
                put_uvarint(out, chunk.min_time.wrapping_sub(previous.max_time) as u64);
                put_uvarint(out, chunk.max_time.wrapping_sub(chunk.min_time) as u64);
                put_varint(
                    out,
                    chunk.chunk_ref.0.wrapping_sub(previous.chunk_ref.0) as i64,
                );
            }
        }
        previous = Some(chunk);
    }
}

/// Decode a postings list starting at `data[0]` (its `len` u32) into series references.
pub fn decode_postings(data: &[u8], offset: u64) -> Result<Vec<SeriesRef>> {
    let payload = decode_table(data, "postings", offset)?;
    let mut buf = Decbuf::new(payload, "postings", offset + 4);
    let count = buf.be_u32()? as usize;
    if buf.remaining() != count.saturating_mul(4) {
        return Err(buf.error(format!(
            "{count} entries announced, {} bytes present",
            buf.remaining()
        )));
    }
    let mut refs = Vec::with_capacity(count);
    let mut previous: Option<u32> = None;
    for chunk in buf.rest().chunks_exact(4) {
        let series_ref = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        if previous.is_some_and(|p| p >= series_ref) {
            return Err(Error::corrupt(
                "postings",
                offset,
                "entries are not strictly increasing",
            ));
        }
        previous = Some(series_ref);
        refs.push(series_ref);
    }
    Ok(refs)
}

/// Decode a verified postings offset table payload (from [`decode_table`]), calling `entry`
/// with every `(name, value, postings list offset)` in table order.
pub fn decode_postings_offset_table(
    payload: &[u8],
    offset: u64,
    mut entry: impl FnMut(&str, &str, u64) -> Result<()>,
) -> Result<()> {
    let mut buf = Decbuf::new(payload, "postings offset table", offset + 4);
    let count = buf.be_u32()?;
    for _ in 0..count {
        let keys = buf.uvarint()?;
        if keys != 2 {
            return Err(buf.error(format!("entry has {keys} keys, want 2")));
        }
        let name = buf.uvarint_str()?;
        let value = buf.uvarint_str()?;
        let list_offset = buf.uvarint()?;
        entry(name, value, list_offset)?;
    }
    if !buf.is_empty() {
        return Err(buf.error(format!("{} bytes after the last entry", buf.remaining())));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
