//! [`IndexReader`]: reads an index through a [`ByteSource`]. Opening reads the header, the TOC,
//! the symbol table and the postings offset table; series entries and postings lists are read
//! on demand.

use std::path::Path;

use super::postings::{self, Postings};
use super::{
    ALL_POSTINGS_KEY, ChunkMeta, HEADER_LEN, SeriesEntry, SeriesRef, Symbols, TOC_LEN, Toc,
    decode_header, decode_postings, decode_postings_offset_table, decode_series, decode_table,
    table_span,
};
use crate::labels::{Label, Labels, Matcher};
use crate::source::{ByteSource, FileSource};
use crate::{Error, Result};

/// Bytes read speculatively for one series entry (most are far smaller).
const SERIES_READ_AHEAD: u64 = 256;

/// The values of one label name with the offsets of their postings lists, sorted by value.
#[derive(Debug, Clone)]
struct LabelPostings {
    name: String,
    values: Vec<(String, u64)>,
}

/// Reads a format v2 index.
pub struct IndexReader {
    source: Box<dyn ByteSource>,
    version: u8,
    toc: Toc,
    symbols: Symbols,
    /// Sorted by name; the all-postings key has the empty name and sorts first.
    postings_table: Vec<LabelPostings>,
}

impl std::fmt::Debug for IndexReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexReader")
            .field("version", &self.version)
            .field("toc", &self.toc)
            .field("symbols", &self.symbols.len())
            .finish()
    }
}

fn read_table(source: &dyn ByteSource, section: &'static str, offset: u64) -> Result<bytes::Bytes> {
    let len = source.len();
    if offset.saturating_add(4) > len {
        return Err(Error::corrupt(
            section,
            offset,
            "table starts past the end of the file",
        ));
    }
    let prefix = source.read_range(offset..offset + 4)?;
    let span = table_span(&prefix, section, offset)?;
    let end = offset.saturating_add(span);
    if end > len {
        return Err(Error::corrupt(
            section,
            offset,
            format!("table of {span} bytes runs past the end of the file ({len} bytes)"),
        ));
    }
    let data = source.read_range(offset..end)?;
    let payload = decode_table(&data, section, offset)?;
    let start = 4usize;
    Ok(data.slice(start..start + payload.len()))
}

impl IndexReader {
    /// Open an index through `source`.
    pub fn open(source: Box<dyn ByteSource>) -> Result<Self> {
        let len = source.len();
        if len < HEADER_LEN + TOC_LEN {
            return Err(Error::corrupt(
                "index",
                0,
                format!("file of {len} bytes is too short"),
            ));
        }
        let version = decode_header(&source.read_range(0..HEADER_LEN)?)?;
        let toc = Toc::decode(&source.read_range(len - TOC_LEN..len)?, len)?;
        let symbols_payload = read_table(source.as_ref(), "symbols", toc.symbols)?;
        let symbols = Symbols::decode(symbols_payload, toc.symbols)?;
        let table = read_table(source.as_ref(), "postings offset table", toc.postings_table)?;
        let mut postings_table: Vec<LabelPostings> = Vec::new();
        let mut previous: Option<(String, String)> = None;
        decode_postings_offset_table(&table, toc.postings_table, |name, value, offset| {
            if let Some((prev_name, prev_value)) = &previous
                && (prev_name.as_str(), prev_value.as_str()) >= (name, value)
            {
                return Err(Error::corrupt(
                    "postings offset table",
                    toc.postings_table,
                    format!("entry {name:?}={value:?} is out of order"),
                ));
            }
            if offset >= len {
                return Err(Error::corrupt(
                    "postings offset table",
                    toc.postings_table,
                    format!("postings offset {offset} for {name:?}={value:?} is past the end"),
                ));
            }
            previous = Some((name.to_string(), value.to_string()));
            match postings_table.last_mut() {
                Some(last) if last.name == name => last.values.push((value.to_string(), offset)),
                _ => postings_table.push(LabelPostings {
                    name: name.to_string(),
                    values: vec![(value.to_string(), offset)],
                }),
            }
            Ok(())
        })?;
        Ok(IndexReader {
            source,
            version,
            toc,
            symbols,
            postings_table,
        })
    }

    /// Open a local index file.
    pub fn open_file(path: &Path) -> Result<Self> {
        Self::open(Box::new(FileSource::open(path)?))
    }

    /// Format version from the header.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The table of contents.
    pub fn toc(&self) -> &Toc {
        &self.toc
    }

    /// The symbol table.
    pub fn symbols(&self) -> &Symbols {
        &self.symbols
    }

    /// Size of the index file in bytes.
    pub fn size(&self) -> u64 {
        self.source.len()
    }

    fn label(&self, name: &str) -> Option<&LabelPostings> {
        self.postings_table
            .binary_search_by(|entry| entry.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.postings_table.get(i))
    }

    /// Label names in sorted order (without the all-postings key).
    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.postings_table
            .iter()
            .map(|entry| entry.name.as_str())
            .filter(|name| !name.is_empty())
    }

    /// The values of label `name` in sorted order.
    pub fn label_values(&self, name: &str) -> impl Iterator<Item = &str> {
        self.label(name)
            .into_iter()
            .flat_map(|entry| entry.values.iter().map(|(value, _)| value.as_str()))
    }

    /// Number of `(name, value)` pairs with a postings list (without the all-postings key).
    pub fn num_label_pairs(&self) -> usize {
        self.postings_table
            .iter()
            .filter(|entry| !entry.name.is_empty())
            .map(|entry| entry.values.len())
            .sum()
    }

    /// Read the postings list at `offset`.
    pub fn postings_at(&self, offset: u64) -> Result<Postings> {
        let data = read_table_raw(self.source.as_ref(), offset)?;
        Ok(Postings::from_sorted(decode_postings(&data, offset)?))
    }

    /// The postings of `name="value"` (empty when the pair does not occur).
    pub fn postings(&self, name: &str, value: &str) -> Result<Postings> {
        let Some(entry) = self.label(name) else {
            return Ok(Postings::default());
        };
        match entry
            .values
            .binary_search_by(|(candidate, _)| candidate.as_str().cmp(value))
        {
            Ok(i) => self.postings_at(entry.values[i].1),
            Err(_) => Ok(Postings::default()),
        }
    }

    /// Every series in the index (the all-postings list).
    pub fn all_postings(&self) -> Result<Postings> {
        self.postings(ALL_POSTINGS_KEY.0, ALL_POSTINGS_KEY.1)
    }

    /// Union of the postings of the values of `name` accepted by `keep`, visiting only values
    /// in `[from, to)` when bounds are given (for literal-prefix regexes).
    pub fn postings_for_values(
        &self,
        name: &str,
        prefix: Option<&str>,
        mut keep: impl FnMut(&str) -> bool,
    ) -> Result<Postings> {
        let Some(entry) = self.label(name) else {
            return Ok(Postings::default());
        };
        let values = match prefix {
            Some(prefix) => {
                let start = entry.values.partition_point(|(v, _)| v.as_str() < prefix);
                let len =
                    entry.values[start..].partition_point(|(v, _)| v.as_str().starts_with(prefix));
                &entry.values[start..start + len]
            }
            None => &entry.values[..],
        };
        let mut lists = Vec::new();
        for (value, offset) in values {
            if keep(value) {
                lists.push(self.postings_at(*offset)?);
            }
        }
        Ok(Postings::union(lists))
    }

    /// Series matching all `matchers`, with Prometheus semantics (a missing label is `""`).
    pub fn postings_for_matchers(&self, matchers: &[Matcher]) -> Result<Postings> {
        postings::postings_for_matchers(self, matchers)
    }

    /// Read the series entry `series_ref`.
    pub fn series(&self, series_ref: SeriesRef) -> Result<SeriesEntry> {
        let offset = u64::from(series_ref) * 16;
        let len = self.source.len();
        if offset < self.toc.series || offset >= len {
            return Err(Error::corrupt(
                "series",
                offset,
                format!("series reference {series_ref} outside the series section"),
            ));
        }
        let data = self
            .source
            .read_range(offset..(offset + SERIES_READ_AHEAD).min(len))?;
        if let Some(entry) = decode_series(&data, offset)? {
            return Ok(entry);
        }
        let mut buf = crate::encoding::Decbuf::new(&data, "series", offset);
        let body = buf.uvarint()?;
        let end = offset
            .saturating_add(buf.position() as u64)
            .saturating_add(body)
            .saturating_add(4);
        if end > len {
            return Err(Error::corrupt(
                "series",
                offset,
                format!("entry of {body} bytes runs past the end of the index"),
            ));
        }
        let data = self.source.read_range(offset..end)?;
        decode_series(&data, offset)?
            .ok_or_else(|| Error::corrupt("series", offset, "truncated series entry"))
    }

    /// Resolve a series entry's label references to a label set.
    pub fn labels_of(&self, entry: &SeriesEntry) -> Result<Labels> {
        let mut labels = Vec::with_capacity(entry.labels.len());
        for &(name, value) in &entry.labels {
            labels.push(Label::new(
                self.symbols.lookup(name)?,
                self.symbols.lookup(value)?,
            ));
        }
        if labels.windows(2).any(|w| w[0].name >= w[1].name) {
            return Err(Error::corrupt(
                "series",
                0,
                "labels are not sorted by name or not unique",
            ));
        }
        Ok(Labels::from_sorted(labels))
    }

    /// Read a series' labels and chunk metas.
    pub fn series_with_labels(&self, series_ref: SeriesRef) -> Result<(Labels, Vec<ChunkMeta>)> {
        let entry = self.series(series_ref)?;
        let labels = self.labels_of(&entry)?;
        Ok((labels, entry.chunks))
    }
}

fn read_table_raw(source: &dyn ByteSource, offset: u64) -> Result<bytes::Bytes> {
    let len = source.len();
    if offset.saturating_add(4) > len {
        return Err(Error::corrupt(
            "postings",
            offset,
            "list starts past the end of the file",
        ));
    }
    let prefix = source.read_range(offset..offset + 4)?;
    let end = offset.saturating_add(table_span(&prefix, "postings", offset)?);
    if end > len {
        return Err(Error::corrupt(
            "postings",
            offset,
            "list runs past the end of the file",
        ));
    }
    source.read_range(offset..end)
}
