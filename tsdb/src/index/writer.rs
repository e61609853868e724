//! [`IndexWriter`]: writes a format v2 index in one streaming pass, laid out byte for byte as
//! Prometheus 2.42 lays it out (including the obsolete label indices and label offset table).
//!
//! Protocol: give every symbol up front (sorted, unique; e.g. the union of the source indexes'
//! symbol tables, as Prometheus's compactor does), then add series in strictly increasing label
//! order, then [`IndexWriter::finish`]. Series entries go straight to the file; only postings are
//! kept in memory, as compact `u32` lists.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{ChunkMeta, FORMAT_V2, MAGIC_INDEX, SeriesRef, Toc, encode_series_body};
use crate::encoding::{crc32c, put_uvarint, put_uvarint_bytes};
use crate::labels::Labels;
use crate::{Error, Result};

/// Writes an index file.
pub struct IndexWriter {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    pos: u64,
    toc: Toc,
    symbols: Vec<String>,
    last_series: Option<Labels>,
    /// `(name symbol, value symbol)` -> series refs, in insertion (= ascending) order.
    postings: HashMap<(u32, u32), Vec<SeriesRef>>,
    all_postings: Vec<SeriesRef>,
    scratch: Vec<u8>,
    max_series_size: u64,
    /// Entries in all postings lists so far (for [`IndexWriter::estimated_size`]).
    postings_entries: u64,
    /// Bytes of the label names and values of all postings lists so far.
    postings_key_bytes: u64,
}

impl std::fmt::Debug for IndexWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexWriter")
            .field("path", &self.path)
            .field("pos", &self.pos)
            .finish()
    }
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::InvalidInput {
        writer: "index writer",
        detail: detail.into(),
    }
}

impl IndexWriter {
    /// Create `path` and write the header and the symbol table. `symbols` must be sorted
    /// bytewise, unique, and contain every label name and value that will be added.
    pub fn create(path: &Path, symbols: Vec<String>) -> Result<Self> {
        if let Some(pair) = symbols.windows(2).find(|w| w[0] >= w[1]) {
            return Err(invalid(format!(
                "symbols not sorted and unique: {:?} then {:?}",
                pair[0], pair[1]
            )));
        }
        let file = std::fs::File::create(path).map_err(|err| Error::io("create", path, err))?;
        let mut writer = IndexWriter {
            path: path.to_path_buf(),
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            pos: 0,
            toc: Toc::default(),
            symbols: Vec::new(),
            last_series: None,
            postings: HashMap::new(),
            all_postings: Vec::new(),
            scratch: Vec::with_capacity(256),
            max_series_size: 0,
            postings_entries: 0,
            postings_key_bytes: 0,
        };
        let mut header = MAGIC_INDEX.to_be_bytes().to_vec();
        header.push(FORMAT_V2);
        writer.write(&header)?;
        writer.toc.symbols = writer.pos;
        let mut payload =
            Vec::with_capacity(symbols.iter().map(|s| s.len() + 2).sum::<usize>() + 4);
        payload.extend_from_slice(&(symbols.len() as u32).to_be_bytes());
        for symbol in &symbols {
            put_uvarint_bytes(&mut payload, symbol.as_bytes());
        }
        writer.write_table(&payload)?;
        writer.toc.series = writer.pos;
        writer.symbols = symbols;
        Ok(writer)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .map_err(|err| Error::io("write", &self.path, err))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self, alignment: u64) -> Result<()> {
        let padding = (alignment - self.pos % alignment) % alignment;
        if padding > 0 {
            self.write(&[0u8; 16][..padding as usize])?;
        }
        Ok(())
    }

    /// `len u32 | payload | crc u32`.
    fn write_table(&mut self, payload: &[u8]) -> Result<()> {
        let len = u32::try_from(payload.len())
            .map_err(|_| invalid(format!("section of {} bytes exceeds 4 GiB", payload.len())))?;
        self.write(&len.to_be_bytes())?;
        self.write(payload)?;
        self.write(&crc32c(payload).to_be_bytes())
    }

    fn symbol_ref(&self, symbol: &str) -> Result<u32> {
        self.symbols
            .binary_search_by(|s| s.as_str().cmp(symbol))
            .map(|i| i as u32)
            .map_err(|_| invalid(format!("symbol {symbol:?} was not given up front")))
    }

    /// Add a series; its labels must sort after the previous series' labels. Chunk metas must
    /// be in time order. Returns the series reference.
    pub fn add_series(&mut self, labels: &Labels, chunks: &[ChunkMeta]) -> Result<SeriesRef> {
        if self.last_series.as_ref().is_some_and(|last| last >= labels) {
            return Err(invalid(format!("series {labels} added out of order")));
        }
        if labels.is_empty() {
            return Err(invalid("series without labels"));
        }
        self.pad(16)?;
        let series_ref = SeriesRef::try_from(self.pos / 16)
            .map_err(|_| invalid("series section exceeds 64 GiB"))?;
        let mut refs = Vec::with_capacity(labels.len());
        for label in labels {
            let pair = (
                self.symbol_ref(&label.name)?,
                self.symbol_ref(&label.value)?,
            );
            refs.push(pair);
        }
        let mut body = std::mem::take(&mut self.scratch);
        body.clear();
        encode_series_body(&mut body, &refs, chunks);
        let mut prefix = Vec::with_capacity(5);
        put_uvarint(&mut prefix, body.len() as u64);
        self.write(&prefix)?;
        self.write(&body)?;
        self.write(&crc32c(&body).to_be_bytes())?;
        self.max_series_size = self
            .max_series_size
            .max((prefix.len() + body.len() + 4) as u64);
        self.scratch = body;
        for (pair, label) in refs.into_iter().zip(labels) {
            let list = self.postings.entry(pair).or_default();
            if list.is_empty() {
                self.postings_key_bytes += (label.name.len() + label.value.len()) as u64;
            }
            list.push(series_ref);
        }
        self.postings_entries += labels.len() as u64 + 1;
        self.all_postings.push(series_ref);
        self.last_series = Some(labels.clone());
        Ok(series_ref)
    }

    /// An upper estimate of the file size if the index were finished now: what is written,
    /// plus the postings lists, label indices and offset tables still to come. The compactor
    /// cuts its output before this reaches the format's limits.
    pub fn estimated_size(&self) -> u64 {
        let lists = self.postings.len() as u64 + 1;
        // Postings: 4 bytes per entry plus length, count, CRC and alignment per list; label
        // indices: 4 bytes per value; offset tables: the key bytes plus varints per entry.
        self.pos
            + self.postings_entries * 4
            + lists * 16
            + lists * 4
            + self.postings_key_bytes * 2
            + lists * 24
            + super::TOC_LEN
    }

    /// Size of the largest series entry written so far (Thanos `index_stats.series_max_size`).
    pub fn max_series_size(&self) -> u64 {
        self.max_series_size
    }

    fn write_postings_list(&mut self, refs: &[SeriesRef]) -> Result<u64> {
        self.pad(4)?;
        let offset = self.pos;
        let mut payload = Vec::with_capacity(4 + refs.len() * 4);
        payload.extend_from_slice(&(refs.len() as u32).to_be_bytes());
        for series_ref in refs {
            payload.extend_from_slice(&series_ref.to_be_bytes());
        }
        self.write_table(&payload)?;
        Ok(offset)
    }

    /// Write label indices, postings, the offset tables and the TOC; flush and sync.
    /// Returns the file size.
    pub fn finish(mut self) -> Result<u64> {
        let mut keys: Vec<(u32, u32)> = self.postings.keys().copied().collect();
        // Symbol references are positions in a sorted table, so numeric order is string order.
        keys.sort_unstable();

        // Label indices (2.42 writes them; nothing reads them).
        self.toc.label_indices = self.pos;
        let mut label_index_offsets: Vec<(u32, u64)> = Vec::new();
        let mut i = 0;
        while i < keys.len() {
            let name = keys[i].0;
            let end = i + keys[i..].partition_point(|k| k.0 == name);
            self.pad(4)?;
            label_index_offsets.push((name, self.pos));
            let mut payload = Vec::with_capacity(8 + (end - i) * 4);
            payload.extend_from_slice(&1u32.to_be_bytes());
            payload.extend_from_slice(&((end - i) as u32).to_be_bytes());
            for key in &keys[i..end] {
                payload.extend_from_slice(&key.1.to_be_bytes());
            }
            self.write_table(&payload)?;
            i = end;
        }

        // Postings: the all-postings list first, then by name and value.
        self.toc.postings = self.pos;
        let all = std::mem::take(&mut self.all_postings);
        let mut postings_offsets: Vec<(u32, u32, u64)> = Vec::with_capacity(keys.len());
        let all_offset = self.write_postings_list(&all)?;
        drop(all);
        for key in &keys {
            let refs = self.postings.remove(key).unwrap_or_default();
            let offset = self.write_postings_list(&refs)?;
            postings_offsets.push((key.0, key.1, offset));
        }

        // Label offset table.
        self.toc.label_indices_table = self.pos;
        let mut payload = Vec::new();
        payload.extend_from_slice(&(label_index_offsets.len() as u32).to_be_bytes());
        for (name, offset) in &label_index_offsets {
            put_uvarint(&mut payload, 1);
            put_uvarint_bytes(&mut payload, self.symbols[*name as usize].as_bytes());
            put_uvarint(&mut payload, *offset);
        }
        self.write_table(&payload)?;

        // Postings offset table.
        self.toc.postings_table = self.pos;
        let mut payload = Vec::new();
        payload.extend_from_slice(&((postings_offsets.len() + 1) as u32).to_be_bytes());
        put_uvarint(&mut payload, 2);
        put_uvarint_bytes(&mut payload, b"");
        put_uvarint_bytes(&mut payload, b"");
        put_uvarint(&mut payload, all_offset);
        for (name, value, offset) in &postings_offsets {
            put_uvarint(&mut payload, 2);
            put_uvarint_bytes(&mut payload, self.symbols[*name as usize].as_bytes());
            put_uvarint_bytes(&mut payload, self.symbols[*value as usize].as_bytes());
            put_uvarint(&mut payload, *offset);
        }
        self.write_table(&payload)?;

        let toc = self.toc.encode();
        self.write(&toc)?;
        let path = self.path.clone();
        let file = self
            .file
            .into_inner()
            .map_err(|err| Error::io("write", &path, err.into_error()))?;
        file.sync_all()
            .map_err(|err| Error::io("sync", &path, err))?;
        Ok(self.pos)
    }
}
