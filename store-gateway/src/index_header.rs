//! The index-header: the parts of a block's index needed to plan a query (symbols and the
//! postings offset table), in Thanos's binary index-header format (reference/thanos.md 5.2), so
//! headers in a `--data-dir` are interchangeable with Thanos's.
//!
//! File `<data-dir>/<ULID>/index-header`:
//! - 14-byte header: magic `0xBAAAD792` (BE u32), format version 1, the index's version byte,
//!   BE u64 offset of the postings offset table in the index (the end of the last postings list);
//! - the index bytes from TOC.symbols up to TOC.series (the symbol table, verbatim);
//! - the index bytes from TOC.postings_table to the end of the index (table + TOC, verbatim);
//! - trailer: BE u64 offset of the symbols copy, BE u64 offset of the table copy (both in this
//!   file), CRC32-Castagnoli (BE u32) of those 16 bytes.
//!
//! [`build`] makes one from three ranged reads of the index (TOC, symbols, table), never the
//! whole index. [`IndexHeader::parse`] checks every CRC and keeps the table bytes plus a
//! sample of every 32nd entry per label name, so a lookup decodes at most 32 entries.

use std::ops::Range;
use std::path::Path;

use bytes::Bytes;
use strata_common::objstore::Bucket;
use strata_tsdb::encoding::{Decbuf, crc32c};
use strata_tsdb::index::{Symbols, TOC_LEN, Toc, decode_header, decode_table};
use ulid::Ulid;

use crate::error::{Error, Result};

/// Magic number of an index-header file.
pub const MAGIC: u32 = 0xBAAA_D792;
/// Index-header format version.
pub const FORMAT_V1: u8 = 1;
const HEADER_LEN: usize = 14;
const TRAILER_LEN: usize = 20;
/// Every `SAMPLING`th postings offset entry of a label name is kept in memory (Thanos: 32).
const SAMPLING: usize = 32;

/// Builds the index-header of `block` from ranged reads of `<block>/index` of `index_size`
/// bytes and returns the file's bytes.
pub async fn build(bucket: &Bucket, block: Ulid, index_size: u64) -> Result<Vec<u8>> {
    let object = format!("{block}/index");
    let read = |range: Range<u64>| {
        let object = object.clone();
        async move {
            bucket
                .get_range(&object, range)
                .await
                .map_err(|source| Error::Bucket {
                    block,
                    object,
                    source: Box::new(source),
                })
        }
    };
    let decode_err = |source| Error::Decode {
        block,
        object: "index".to_owned(),
        source,
    };
    if index_size < 5 + TOC_LEN {
        return Err(Error::IndexHeader {
            block,
            detail: format!("index of {index_size} bytes is too short"),
        });
    }
    let head = read(0..5).await?;
    let index_version = decode_header(&head).map_err(decode_err)?;
    let toc_bytes = read(index_size - TOC_LEN..index_size).await?;
    let toc = Toc::decode(&toc_bytes, index_size).map_err(decode_err)?;
    if toc.series < toc.symbols {
        return Err(Error::IndexHeader {
            block,
            detail: format!(
                "series section at {} starts before the symbols at {}",
                toc.series, toc.symbols
            ),
        });
    }
    let symbols = read(toc.symbols..toc.series).await?;
    let table = read(toc.postings_table..index_size).await?;
    if symbols.len() as u64 != toc.series - toc.symbols
        || table.len() as u64 != index_size - toc.postings_table
    {
        return Err(Error::IndexHeader {
            block,
            detail: "index is shorter than its TOC says".to_owned(),
        });
    }
    let mut out = Vec::with_capacity(HEADER_LEN + symbols.len() + table.len() + TRAILER_LEN);
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.push(FORMAT_V1);
    out.push(index_version);
    out.extend_from_slice(&toc.postings_table.to_be_bytes());
    let symbols_offset = out.len() as u64;
    out.extend_from_slice(&symbols);
    let table_offset = out.len() as u64;
    out.extend_from_slice(&table);
    let mut trailer = [0u8; 16];
    trailer[..8].copy_from_slice(&symbols_offset.to_be_bytes());
    trailer[8..].copy_from_slice(&table_offset.to_be_bytes());
    out.extend_from_slice(&trailer);
    out.extend_from_slice(&crc32c(&trailer).to_be_bytes());
    // Validate before anyone stores it: a corrupt index fails here, at load time.
    IndexHeader::parse(block, Bytes::from(out.clone()))?;
    Ok(out)
}

/// Writes `bytes` to `path` atomically (temporary file, then rename).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |op, source| Error::IndexHeaderIo {
        op,
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|err| io("create directory for", err))?;
    }
    // Written whole and synced before the rename, and the rename synced too: after a crash the
    // file is either the old one, absent, or complete.
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp).map_err(|err| io("create", err))?;
        file.write_all(bytes).map_err(|err| io("write", err))?;
        file.sync_all().map_err(|err| io("sync", err))?;
    }
    std::fs::rename(&tmp, path).map_err(|err| io("rename", err))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|err| io("sync directory of", err))?;
    }
    Ok(())
}

/// One sampled postings offset entry: the value and where its entry starts in the table.
#[derive(Debug)]
struct Sample {
    value: String,
    position: u32,
}

/// The sampled entries of one label name.
#[derive(Debug)]
struct NameEntries {
    name: String,
    samples: Vec<Sample>,
    /// Byte range of this name's entries in the table payload.
    start: u32,
    end: u32,
}

/// One postings offset table entry as decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostingsEntry {
    pub value: String,
    /// Byte range of the postings list in the index (length prefix to CRC, maybe padding).
    pub range: Range<u64>,
}

/// A parsed index-header held in memory while a block is in use.
#[derive(Debug)]
pub struct IndexHeader {
    block: Ulid,
    symbols: Symbols,
    /// Postings offset table entries (after the entry count).
    table: Bytes,
    /// Absolute offset of `table` in the index, for messages.
    table_base: u64,
    /// Offset of the postings offset table in the index: the end of the last postings list.
    postings_end: u64,
    names: Vec<NameEntries>,
}

/// Decodes the entry at `position`: (name, value, postings offset, next entry position).
fn decode_entry(table: &[u8], position: usize, base: u64) -> Option<(&str, &str, u64, usize)> {
    let mut buf = Decbuf::new(table.get(position..)?, "postings offset table", base);
    if buf.uvarint().ok()? != 2 {
        return None;
    }
    let name = buf.uvarint_str().ok()?;
    let value = buf.uvarint_str().ok()?;
    let offset = buf.uvarint().ok()?;
    Some((name, value, offset, position + buf.position()))
}

impl IndexHeader {
    /// Parses and verifies an index-header file's bytes.
    pub fn parse(block: Ulid, bytes: Bytes) -> Result<Self> {
        let corrupt = |detail: String| Error::IndexHeader { block, detail };
        if bytes.len() < HEADER_LEN + TRAILER_LEN {
            return Err(corrupt(format!(
                "file of {} bytes is too short",
                bytes.len()
            )));
        }
        let mut head = Decbuf::new(&bytes[..HEADER_LEN], "index-header", 0);
        let decode = |source| Error::Decode {
            block,
            object: "index-header".to_owned(),
            source,
        };
        let magic = head.be_u32().map_err(decode)?;
        if magic != MAGIC {
            return Err(corrupt(format!("invalid magic number {magic:#010x}")));
        }
        let version = head.byte().map_err(decode)?;
        if version != FORMAT_V1 {
            return Err(corrupt(format!("unsupported format version {version}")));
        }
        let index_version = head.byte().map_err(decode)?;
        if index_version != 2 && index_version != 3 {
            return Err(corrupt(format!(
                "unsupported index version {index_version}"
            )));
        }
        let postings_end = head.be_u64().map_err(decode)?;
        let trailer_start = bytes.len() - TRAILER_LEN;
        let mut trailer = Decbuf::new(&bytes[trailer_start..], "index-header trailer", 0);
        let symbols_offset = trailer.be_u64().map_err(decode)?;
        let table_offset = trailer.be_u64().map_err(decode)?;
        let stored = trailer.be_u32().map_err(decode)?;
        let computed = crc32c(&bytes[trailer_start..trailer_start + 16]);
        if stored != computed {
            return Err(corrupt("trailer checksum mismatch".to_owned()));
        }
        let symbols_start = usize::try_from(symbols_offset).unwrap_or(usize::MAX);
        let table_start = usize::try_from(table_offset).unwrap_or(usize::MAX);
        if symbols_start < HEADER_LEN || table_start < symbols_start || table_start > trailer_start
        {
            return Err(corrupt("section offsets out of range".to_owned()));
        }
        let symbols_payload = decode_table(&bytes[symbols_start..table_start], "symbols", 0)
            .map_err(decode)?
            .len();
        let symbols = Symbols::decode(
            bytes.slice(symbols_start + 4..symbols_start + 4 + symbols_payload),
            0,
        )
        .map_err(decode)?;
        let table_payload = decode_table(
            &bytes[table_start..trailer_start],
            "postings offset table",
            postings_end,
        )
        .map_err(decode)?
        .len();
        let payload = bytes.slice(table_start + 4..table_start + 4 + table_payload);
        let mut count_buf = Decbuf::new(&payload, "postings offset table", postings_end + 4);
        let count = count_buf.be_u32().map_err(decode)?;
        let table = payload.slice(4..);
        let table_base = postings_end + 8;
        let mut names: Vec<NameEntries> = Vec::new();
        let mut position = 0usize;
        let mut previous: Option<(String, String)> = None;
        for _ in 0..count {
            let Some((name, value, offset, next)) = decode_entry(&table, position, table_base)
            else {
                return Err(corrupt(format!(
                    "bad postings offset table entry at {position}"
                )));
            };
            if previous
                .as_ref()
                .is_some_and(|(n, v)| (n.as_str(), v.as_str()) >= (name, value))
            {
                return Err(corrupt(format!(
                    "postings offset table entry {name:?}={value:?} is out of order"
                )));
            }
            if offset >= postings_end {
                return Err(corrupt(format!(
                    "postings offset {offset} of {name:?}={value:?} is past the postings"
                )));
            }
            let pos32 = u32::try_from(position)
                .map_err(|_| corrupt("postings offset table too large".to_owned()))?;
            let next32 = u32::try_from(next)
                .map_err(|_| corrupt("postings offset table too large".to_owned()))?;
            match names.last_mut() {
                Some(entries) if entries.name == name => {
                    entries.end = next32;
                    entries.samples.push(Sample {
                        value: value.to_owned(),
                        position: pos32,
                    });
                }
                _ => names.push(NameEntries {
                    name: name.to_owned(),
                    samples: vec![Sample {
                        value: value.to_owned(),
                        position: pos32,
                    }],
                    start: pos32,
                    end: next32,
                }),
            }
            previous = Some((name.to_owned(), value.to_owned()));
            position = next;
        }
        if position != table.len() {
            return Err(corrupt(
                "bytes after the last postings offset entry".to_owned(),
            ));
        }
        // Keep only every SAMPLING-th entry (and the last) of each name in memory.
        for entries in &mut names {
            let last = entries.samples.len().saturating_sub(1);
            let mut index = 0usize;
            entries.samples.retain(|_| {
                let keep = index.is_multiple_of(SAMPLING) || index == last;
                index += 1;
                keep
            });
            entries.samples.shrink_to_fit();
        }
        Ok(IndexHeader {
            block,
            symbols,
            table,
            table_base,
            postings_end,
            names,
        })
    }

    /// Reads and parses an index-header file.
    pub fn read_file(block: Ulid, path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::IndexHeaderIo {
            op: "read",
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(block, Bytes::from(bytes))
    }

    /// The block's symbol table.
    pub fn symbols(&self) -> &Symbols {
        &self.symbols
    }

    /// Bytes held in memory, for accounting.
    pub fn size_bytes(&self) -> usize {
        self.table.len()
            + self
                .names
                .iter()
                .map(|n| n.name.len() + n.samples.iter().map(|s| s.value.len() + 8).sum::<usize>())
                .sum::<usize>()
    }

    fn name(&self, name: &str) -> Option<&NameEntries> {
        self.names
            .binary_search_by(|entries| entries.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.names.get(i))
    }

    /// Label names in sorted order (without the all-postings key).
    pub fn label_names(&self) -> Vec<String> {
        self.names
            .iter()
            .filter(|entries| !entries.name.is_empty())
            .map(|entries| entries.name.clone())
            .collect()
    }

    /// The postings list range of the entry at `position`, ending where the next list starts.
    fn entry_at(&self, position: usize) -> Option<(PostingsEntry, &str, usize)> {
        let (name, value, offset, next) = decode_entry(&self.table, position, self.table_base)?;
        let end = match decode_entry(&self.table, next, self.table_base) {
            Some((_, _, next_offset, _)) => next_offset,
            None => self.postings_end,
        };
        Some((
            PostingsEntry {
                value: value.to_owned(),
                range: offset..end.max(offset),
            },
            name,
            next,
        ))
    }

    /// The entries of `name` whose value is accepted by `keep`, visiting only values starting
    /// with `prefix` when given.
    pub fn entries(
        &self,
        name: &str,
        prefix: Option<&str>,
        mut keep: impl FnMut(&str) -> bool,
    ) -> Vec<PostingsEntry> {
        let Some(entries) = self.name(name) else {
            return Vec::new();
        };
        let mut position = match prefix {
            Some(prefix) => self.start_position(entries, prefix),
            None => entries.start as usize,
        };
        let mut out = Vec::new();
        while position < entries.end as usize {
            let Some((entry, _, next)) = self.entry_at(position) else {
                break;
            };
            if let Some(prefix) = prefix
                && entry.value.as_str() > prefix
                && !entry.value.starts_with(prefix)
            {
                break;
            }
            if prefix.is_none_or(|p| entry.value.starts_with(p)) && keep(&entry.value) {
                out.push(entry);
            }
            position = next;
        }
        out
    }

    /// Position of the last sampled entry of `entries` whose value is `<= value`.
    fn start_position(&self, entries: &NameEntries, value: &str) -> usize {
        let index = entries
            .samples
            .partition_point(|sample| sample.value.as_str() <= value);
        match index.checked_sub(1).and_then(|i| entries.samples.get(i)) {
            Some(sample) => sample.position as usize,
            None => entries.start as usize,
        }
    }

    /// The entry of `name="value"`, if the pair occurs in the block.
    pub fn entry(&self, name: &str, value: &str) -> Option<PostingsEntry> {
        let entries = self.name(name)?;
        let mut position = self.start_position(entries, value);
        for _ in 0..=SAMPLING {
            if position >= entries.end as usize {
                return None;
            }
            let (entry, _, next) = self.entry_at(position)?;
            match entry.value.as_str().cmp(value) {
                std::cmp::Ordering::Equal => return Some(entry),
                std::cmp::Ordering::Greater => return None,
                std::cmp::Ordering::Less => position = next,
            }
        }
        None
    }

    /// The values of `name` in sorted order.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.entries(name, None, |_| true)
            .into_iter()
            .map(|entry| entry.value)
            .collect()
    }

    pub fn block(&self) -> Ulid {
        self.block
    }
}

#[cfg(test)]
mod tests;
