//! Merging blocks into new blocks: the compactor's core (Prometheus `tsdb/compact.go`
//! `LeveledCompactor`, with Thanos's vertical compaction and replica deduplication).
//!
//! [`compact_blocks`] streams: the source blocks' series are k-way merged by label set (each
//! index lists its series in label order), one series at a time is read, merged and written,
//! so memory holds the symbol table, the output's postings and one series' chunks, never a
//! block. Per merged series:
//! - chunks that do not overlap are copied byte for byte, without decoding;
//! - chunks identical in time range and bytes (the same chunk in two blocks) are kept once;
//! - chunks that still overlap are decoded and merged with [`crate::dedup`]: the chained merge
//!   (samples merged, equal timestamps once) for overlapping blocks of one source, or the
//!   penalty algorithm for replicas of an HA pair. The whole series then goes through the
//!   merge, exactly as the querier merges it at query time, and is re-encoded into XOR chunks
//!   of at most 120 samples;
//! - deleted intervals (tombstones) are applied.
//!
//! Before the output index could pass [`CompactOptions::max_index_size`] the output is cut:
//! the remaining series go to another block with the same time range, so no output ever hits
//! the index format's limits (64 GiB of series, 4 GiB tables).
//!
//! Source problems (unreadable files, series or chunks out of order) come back as
//! [`Error::Block`] with op `read` naming the source block ([`Error::unreadable_block`]).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

use ulid::Ulid;

use crate::block::{Block, BlockWriter, CHUNKS_DIRNAME, INDEX_FILENAME, SeriesChunk};
use crate::chunkenc::{Chunk, Encoding, MAX_SAMPLES, XorAppender};
use crate::dedup::{self, BoxedSource, DedupFunc, SampleSource};
use crate::index::{ChunkMeta, SeriesRef};
use crate::labels::Labels;
use crate::meta::{BlockDesc, BlockMeta, BlockMetaCompaction, META_VERSION_1, ThanosMeta};
use crate::{Error, Result};

/// Index size at which an output block is cut by default (Thanos's
/// `--compact.block-max-index-size`, 64 GiB).
pub const DEFAULT_MAX_INDEX_SIZE: u64 = 64 << 30;

/// The format's own limit: series references are offsets / 16 in a u32, so the series section
/// must end before 64 GiB; outputs are cut with a margin below it whatever is configured.
const HARD_MAX_INDEX_SIZE: u64 = 63 << 30;

/// Samples per re-encoded chunk, as Prometheus cuts them.
const SAMPLES_PER_CHUNK: usize = 120;

/// How [`compact_blocks`] works.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// How chunks of one series that overlap in time are merged.
    pub overlap: DedupFunc,
    /// Estimated index size at which the output is cut into another block.
    pub max_index_size: u64,
    /// Set to stop early with [`Error::Cancelled`].
    pub cancel: Arc<AtomicBool>,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            overlap: DedupFunc::Chain,
            max_index_size: DEFAULT_MAX_INDEX_SIZE,
            cancel: Arc::default(),
        }
    }
}

/// What one compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactStats {
    /// Series written.
    pub series: u64,
    /// Samples written.
    pub samples: u64,
    /// Chunks copied without decoding.
    pub chunks_copied: u64,
    /// Chunks written from merged samples.
    pub chunks_merged: u64,
    /// Series whose chunks overlapped and were merged sample by sample.
    pub series_merged: u64,
}

/// The blocks one compaction wrote (several when the output was cut before the index limit).
#[derive(Debug, Clone)]
pub struct CompactOutput {
    /// Directory and meta of every output block, in series order.
    pub blocks: Vec<(PathBuf, BlockMeta)>,
    /// Counts.
    pub stats: CompactStats,
}

/// The meta of a block merged from `sources`: their time range, level + 1, the union of
/// their sources, themselves as parents, and `thanos` as the Thanos section.
pub fn merged_meta(ulid: Ulid, sources: &[&BlockMeta], thanos: Option<ThanosMeta>) -> BlockMeta {
    let min_time = sources.iter().map(|m| m.min_time).min().unwrap_or(0);
    let max_time = sources.iter().map(|m| m.max_time).max().unwrap_or(0);
    let level = sources
        .iter()
        .map(|m| m.compaction.level)
        .max()
        .unwrap_or(0)
        + 1;
    let mut all_sources: Vec<Ulid> = sources
        .iter()
        .flat_map(|m| {
            if m.compaction.sources.is_empty() {
                vec![m.ulid]
            } else {
                m.compaction.sources.clone()
            }
        })
        .collect();
    all_sources.sort();
    all_sources.dedup();
    BlockMeta {
        ulid,
        min_time,
        max_time,
        stats: Default::default(),
        compaction: BlockMetaCompaction {
            level,
            sources: all_sources,
            parents: sources
                .iter()
                .map(|m| BlockDesc {
                    ulid: m.ulid,
                    min_time: m.min_time,
                    max_time: m.max_time,
                })
                .collect(),
            ..Default::default()
        },
        version: META_VERSION_1,
        thanos,
    }
}

/// Merges `sources` into new blocks under `parent_dir`, described by `meta` (its ULID is that
/// of the first output; further outputs get ULIDs from `next_ulid`). See the module header.
pub fn compact_blocks(
    sources: &[Block],
    parent_dir: &Path,
    meta: BlockMeta,
    options: &CompactOptions,
    mut next_ulid: impl FnMut() -> Ulid,
) -> Result<CompactOutput> {
    let symbols = merged_symbols(sources)?;
    let limit = options.max_index_size.min(HARD_MAX_INDEX_SIZE);
    let mut stats = CompactStats::default();
    let mut blocks = Vec::new();
    let mut writer: Option<BlockWriter> = None;
    let mut first_ulid = Some(meta.ulid);

    let mut heap = BinaryHeap::new();
    let mut cursors = Vec::with_capacity(sources.len());
    for (index, block) in sources.iter().enumerate() {
        let postings = block
            .index()
            .all_postings()
            .map_err(|e| e.in_block("read", block.name(), INDEX_FILENAME))?;
        let mut cursor = Cursor {
            block,
            postings: postings.into_vec().into_iter(),
            last: None,
        };
        if let Some(item) = cursor.next(index)? {
            heap.push(Reverse(item));
        }
        cursors.push(cursor);
    }

    let mut group: Vec<HeapItem> = Vec::new();
    let mut merged_chunks: Vec<SeriesChunk> = Vec::new();
    while let Some(Reverse(first)) = heap.pop() {
        if options.cancel.load(AtomicOrdering::Relaxed) {
            return Err(Error::Cancelled);
        }
        group.clear();
        group.push(first);
        while heap
            .peek()
            .is_some_and(|Reverse(next)| next.labels == group[0].labels)
        {
            if let Some(Reverse(next)) = heap.pop() {
                group.push(next);
            }
        }
        for item in &group {
            if let Some(next) = cursors[item.source].next(item.source)? {
                heap.push(Reverse(next));
            }
        }
        merged_chunks.clear();
        merge_series(
            sources,
            &group,
            options.overlap,
            &mut merged_chunks,
            &mut stats,
        )?;
        if merged_chunks.is_empty() {
            continue;
        }
        let labels = &group[0].labels;
        let needed = series_index_estimate(labels, merged_chunks.len());
        if let Some(current) = &writer
            && current.num_series() > 0
            && current.estimated_index_size() + needed > limit
            && let Some(full) = writer.take()
        {
            blocks.push(full.finish()?);
        }
        if writer.is_none() {
            let mut block_meta = meta.clone();
            block_meta.ulid = first_ulid.take().unwrap_or_else(&mut next_ulid);
            writer = Some(BlockWriter::create(
                parent_dir,
                block_meta,
                symbols.clone(),
            )?);
        }
        if let Some(current) = writer.as_mut() {
            current.add_series(labels, &merged_chunks)?;
            stats.series += 1;
        }
    }
    if let Some(last) = writer.take() {
        blocks.push(last.finish()?);
    }
    Ok(CompactOutput { blocks, stats })
}

/// Index bytes one series adds at most: its entry plus a postings entry per label.
fn series_index_estimate(labels: &Labels, chunks: usize) -> u64 {
    16 + 10 + labels.len() as u64 * 14 + chunks as u64 * 30 + labels.len() as u64 * 8
}

/// The sorted union of the sources' symbol tables.
fn merged_symbols(sources: &[Block]) -> Result<Vec<String>> {
    let mut symbols: Vec<String> = Vec::new();
    for block in sources {
        let mut merged = Vec::with_capacity(symbols.len() + block.index().symbols().len() as usize);
        let mut existing = std::mem::take(&mut symbols).into_iter().peekable();
        for symbol in block.index().symbols().iter() {
            let symbol = symbol.map_err(|e| e.in_block("read", block.name(), INDEX_FILENAME))?;
            while existing.peek().is_some_and(|e| e.as_str() < symbol) {
                merged.extend(existing.next());
            }
            if existing.peek().is_some_and(|e| e == symbol) {
                merged.extend(existing.next());
            } else {
                merged.push(symbol.to_owned());
            }
        }
        merged.extend(existing);
        symbols = merged;
    }
    Ok(symbols)
}

/// One series of one source, waiting in the merge heap.
#[derive(Debug)]
struct HeapItem {
    labels: Labels,
    source: usize,
    series_ref: SeriesRef,
    chunks: Vec<ChunkMeta>,
}

impl PartialEq for HeapItem {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for HeapItem {}
impl PartialOrd for HeapItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HeapItem {
    fn cmp(&self, other: &Self) -> Ordering {
        self.labels
            .cmp(&other.labels)
            .then(self.source.cmp(&other.source))
    }
}

/// Walks one source's series in index order, checking the order the merge relies on.
struct Cursor<'a> {
    block: &'a Block,
    postings: std::vec::IntoIter<SeriesRef>,
    last: Option<Labels>,
}

impl Cursor<'_> {
    fn next(&mut self, source: usize) -> Result<Option<HeapItem>> {
        let Some(series_ref) = self.postings.next() else {
            return Ok(None);
        };
        let (labels, chunks) = self.block.series(series_ref)?;
        let corrupt = |detail: String| {
            Error::corrupt("series", u64::from(series_ref) * 16, detail).in_block(
                "read",
                self.block.name(),
                INDEX_FILENAME,
            )
        };
        if self.last.as_ref().is_some_and(|last| *last >= labels) {
            return Err(corrupt(format!("series {labels} out of label order")));
        }
        if let Some(pair) = chunks.windows(2).find(|w| w[1].min_time <= w[0].max_time) {
            return Err(corrupt(format!(
                "series {labels} has out-of-order or overlapping chunks [{}, {}] and [{}, {}]",
                pair[0].min_time, pair[0].max_time, pair[1].min_time, pair[1].max_time
            )));
        }
        self.last = Some(labels.clone());
        Ok(Some(HeapItem {
            labels,
            source,
            series_ref,
            chunks,
        }))
    }
}

/// A chunk on its way to the output.
struct InputChunk {
    min_time: i64,
    max_time: i64,
    chunk: Chunk,
    source: usize,
}

/// Reads, de-duplicates and merges the chunks of one series from every source that has it.
fn merge_series(
    sources: &[Block],
    group: &[HeapItem],
    overlap: DedupFunc,
    out: &mut Vec<SeriesChunk>,
    stats: &mut CompactStats,
) -> Result<()> {
    let mut chunks: Vec<InputChunk> = Vec::new();
    for item in group {
        let block = &sources[item.source];
        let deleted = block.tombstones().get(item.series_ref);
        for meta in &item.chunks {
            if deleted
                .iter()
                .any(|&(a, b)| a <= meta.min_time && meta.max_time <= b)
            {
                continue;
            }
            let chunk = block.chunk(meta.chunk_ref)?;
            let partly_deleted = deleted
                .iter()
                .any(|&(a, b)| a <= meta.max_time && meta.min_time <= b);
            if partly_deleted {
                if chunk.encoding != Encoding::Xor {
                    return Err(Error::Unsupported {
                        what: format!(
                            "deleting part of a {} chunk of series {}",
                            chunk.encoding, item.labels
                        ),
                    }
                    .in_block("read", block.name(), CHUNKS_DIRNAME));
                }
                let wrap = |e: Error| e.in_block("read", block.name(), CHUNKS_DIRNAME);
                let mut kept = Vec::new();
                for sample in chunk.xor_iter().map_err(wrap)? {
                    let (t, v) = sample.map_err(wrap)?;
                    if !deleted.iter().any(|&(a, b)| a <= t && t <= b) {
                        kept.push((t, v));
                    }
                }
                for encoded in encode_xor(kept.into_iter().map(Ok::<_, Error>))? {
                    chunks.push(InputChunk {
                        min_time: encoded.min_time,
                        max_time: encoded.max_time,
                        chunk: encoded.chunk,
                        source: item.source,
                    });
                }
                continue;
            }
            chunks.push(InputChunk {
                min_time: meta.min_time,
                max_time: meta.max_time,
                chunk,
                source: item.source,
            });
        }
    }
    if chunks.is_empty() {
        return Ok(());
    }
    chunks.sort_by(|a, b| {
        (a.min_time, a.max_time)
            .cmp(&(b.min_time, b.max_time))
            .then_with(|| a.chunk.data.cmp(&b.chunk.data))
    });
    if overlaps(&chunks) {
        // The same chunk in two blocks (a source compacted twice, replicas with identical
        // data) is kept once.
        chunks.dedup_by(|b, a| {
            a.min_time == b.min_time && a.max_time == b.max_time && a.chunk == b.chunk
        });
    }
    if !overlaps(&chunks) {
        for input in chunks {
            stats.samples += u64::from(input.chunk.num_samples().unwrap_or(0));
            stats.chunks_copied += 1;
            out.push(SeriesChunk {
                min_time: input.min_time,
                max_time: input.max_time,
                chunk: input.chunk,
            });
        }
        return Ok(());
    }
    if let Some(other) = chunks.iter().find(|c| c.chunk.encoding != Encoding::Xor) {
        let block = &sources[other.source];
        return Err(Error::Unsupported {
            what: format!(
                "merging overlapping {} chunks of series {}",
                other.chunk.encoding, group[0].labels
            ),
        }
        .in_block("read", block.name(), CHUNKS_DIRNAME));
    }
    stats.series_merged += 1;
    let replicas = dedup::overlap_split(chunks, |c| (c.min_time, c.max_time));
    let samples = replicas.into_iter().map(|replica| {
        Box::new(ChunkSamples::new(
            replica.into_iter().map(|c| (c.source, c.chunk)).collect(),
        )) as BoxedSource<'static, SourceError>
    });
    let Some(mut merged) = dedup::merge_replicas(samples, overlap, false) else {
        return Ok(());
    };
    let merged_samples = std::iter::from_fn(|| merged.next_sample().transpose());
    let encoded = encode_xor(merged_samples).map_err(|err| match err.source {
        Some(source) => {
            let block = sources.get(source).map_or("", |b| b.name());
            err.error.in_block("read", block, CHUNKS_DIRNAME)
        }
        None => err.error,
    })?;
    for chunk in encoded {
        stats.samples += u64::from(chunk.chunk.num_samples().unwrap_or(0));
        stats.chunks_merged += 1;
        out.push(chunk);
    }
    Ok(())
}

/// Whether any chunk starts at or before the end of an earlier one (`chunks` sorted).
fn overlaps(chunks: &[InputChunk]) -> bool {
    let mut max_time = i64::MIN;
    for (i, chunk) in chunks.iter().enumerate() {
        if i > 0 && chunk.min_time <= max_time {
            return true;
        }
        max_time = max_time.max(chunk.max_time);
    }
    false
}

/// Encodes time-ordered samples into XOR chunks of at most 120 samples.
pub fn encode_xor<E>(
    samples: impl IntoIterator<Item = std::result::Result<(i64, f64), E>>,
) -> std::result::Result<Vec<SeriesChunk>, E>
where
    E: From<Error>,
{
    let mut out = Vec::new();
    let mut appender = XorAppender::new();
    let mut min_time = 0;
    let mut count = 0usize;
    for sample in samples {
        let (t, v) = sample?;
        if count == SAMPLES_PER_CHUNK.min(usize::from(MAX_SAMPLES)) {
            out.push(SeriesChunk {
                min_time,
                max_time: appender.last_timestamp(),
                chunk: Chunk::new(Encoding::Xor, appender.bytes()),
            });
            appender = XorAppender::new();
            count = 0;
        }
        if count == 0 {
            min_time = t;
        }
        appender.append(t, v).map_err(E::from)?;
        count += 1;
    }
    if count > 0 {
        out.push(SeriesChunk {
            min_time,
            max_time: appender.last_timestamp(),
            chunk: Chunk::new(Encoding::Xor, appender.bytes()),
        });
    }
    Ok(out)
}

/// The samples of one virtual replica's XOR chunks, decoded a chunk at a time.
struct ChunkSamples {
    chunks: std::vec::IntoIter<(usize, Chunk)>,
    decoded: Vec<(i64, f64)>,
    position: usize,
}

impl ChunkSamples {
    fn new(chunks: Vec<(usize, Chunk)>) -> Self {
        ChunkSamples {
            chunks: chunks.into_iter(),
            decoded: Vec::new(),
            position: 0,
        }
    }
}

/// An error while merging, with the index of the source block it came from (none for
/// encoding errors).
struct SourceError {
    source: Option<usize>,
    error: Error,
}

impl From<Error> for SourceError {
    fn from(error: Error) -> Self {
        SourceError {
            source: None,
            error,
        }
    }
}

impl SampleSource for ChunkSamples {
    type Error = SourceError;

    fn next_sample(&mut self) -> std::result::Result<Option<(i64, f64)>, SourceError> {
        loop {
            if let Some(&sample) = self.decoded.get(self.position) {
                self.position += 1;
                return Ok(Some(sample));
            }
            let Some((source, chunk)) = self.chunks.next() else {
                return Ok(None);
            };
            self.decoded.clear();
            self.position = 0;
            chunk
                .xor_iter()
                .and_then(|mut it| it.decode_into(&mut self.decoded))
                .map_err(|error| SourceError {
                    source: Some(source),
                    error,
                })?;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
