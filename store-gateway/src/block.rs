//! [`BucketBlock`]: one block served from the bucket. It owns the block's meta and external
//! labels, its index-header (built at load time into `--data-dir`, parsed into memory on first
//! use and dropped again when idle), and reads postings lists, series entries and chunks with
//! ranged GETs, nearby ranges merged into one request (see [`crate::ranges`]), through the
//! shared byte-bounded caches. Whole index or chunk files are never downloaded.

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::try_join_all;
use parking_lot::Mutex;
use roaring::RoaringBitmap;
use strata_common::objstore::Bucket;
use strata_tsdb::chunkenc::Chunk;
use strata_tsdb::chunks::{ChunkRef, decode_chunk, segment_file_name};
use strata_tsdb::encoding::Decbuf;
use strata_tsdb::index::{SeriesEntry, decode_postings, decode_series};
use strata_tsdb::labels::{Label, Labels};
use strata_tsdb::meta::BlockMeta;
use ulid::Ulid;

use crate::cache::{Caches, IndexKey, IndexValue, SUBRANGE};
use crate::error::{Error, Result, blocking};
use crate::index_header::{self, IndexHeader, PostingsEntry};
use crate::metrics::StoreMetrics;
use crate::ranges::{MAX_GAP, partition};

/// Thanos's default estimate of the largest chunk, used when meta.json has no `index_stats`;
/// a chunk longer than the estimate is fetched again, whole.
const DEFAULT_CHUNK_ESTIMATE: u64 = 16_000;
/// The longest chunk read when meta.json does not list its segment's size: far above any
/// chunk Prometheus or the compactor writes, far below what a corrupt length can say.
const MAX_CHUNK_BYTES: u64 = 16 * 1024 * 1024;
/// The longest chunk header: a 10-byte length varint and the encoding byte.
const MAX_CHUNK_HEADER: usize = 11;

/// What a block needs from the store around it.
#[derive(Debug, Clone)]
pub struct BlockContext {
    pub bucket: Bucket,
    pub data_dir: PathBuf,
    pub caches: Caches,
    pub metrics: StoreMetrics,
    /// Keep built index-headers on disk (`--cache-index-header`).
    pub keep_header_files: bool,
    /// Parse index-headers on first use instead of when the block loads
    /// (`--store.enable-index-header-lazy-reader`).
    pub lazy_headers: bool,
}

/// A block served from the bucket.
#[derive(Debug)]
pub struct BucketBlock {
    meta: BlockMeta,
    external: Labels,
    context: BlockContext,
    index_size: u64,
    header_path: PathBuf,
    header: Mutex<Option<Arc<IndexHeader>>>,
    /// Held while the header is being loaded, so concurrent first queries share one load.
    loading: tokio::sync::Mutex<()>,
    last_used: Mutex<Instant>,
    chunk_estimate: u64,
    /// Segment file sizes from meta.json's `thanos.files` (segment number -> bytes).
    segment_sizes: HashMap<u32, u64>,
}

impl BucketBlock {
    /// Loads a block: makes sure its index-header exists in the data directory (building it
    /// from ranged reads of the index if not), without keeping it in memory.
    pub async fn load(meta: BlockMeta, context: BlockContext) -> Result<Self> {
        let block = meta.ulid;
        let thanos = meta.thanos.clone().unwrap_or_default();
        let external = Labels::new(
            thanos
                .labels
                .iter()
                .map(|(name, value)| Label::new(name.clone(), value.clone()))
                .collect(),
        );
        let listed_size = thanos
            .files
            .iter()
            .find(|file| file.rel_path == "index")
            .and_then(|file| u64::try_from(file.size_bytes).ok())
            .filter(|size| *size > 0);
        let index_size = match listed_size {
            Some(size) => size,
            None => {
                let object = format!("{block}/index");
                context
                    .bucket
                    .attributes(&object)
                    .await
                    .map_err(|source| Error::Bucket {
                        block,
                        object,
                        source: Box::new(source),
                    })?
                    .size
            }
        };
        let header_path = context
            .data_dir
            .join(block.to_string())
            .join("index-header");
        let mut header = None;
        if !context.keep_header_files || !header_path.exists() {
            let started = Instant::now();
            let bytes = index_header::build(&context.bucket, block, index_size).await?;
            context
                .metrics
                .indexheader_build_duration
                .observe(started.elapsed().as_secs_f64());
            if context.keep_header_files {
                let path = header_path.clone();
                blocking(move || index_header::write_file(&path, &bytes)).await?;
            } else {
                let parsed =
                    blocking(move || IndexHeader::parse(block, Bytes::from(bytes))).await?;
                header = Some(Arc::new(parsed));
            }
        }
        let positive = |value: i64, default: u64| {
            u64::try_from(value)
                .ok()
                .filter(|v| *v > 0)
                .unwrap_or(default)
        };
        let segment_sizes = thanos
            .files
            .iter()
            .filter_map(|file| {
                // File `chunks/000001` holds segment 0 (see `segment_file_name`).
                let file_number: u32 = file.rel_path.strip_prefix("chunks/")?.parse().ok()?;
                let number = file_number.checked_sub(1)?;
                let size = u64::try_from(file.size_bytes)
                    .ok()
                    .filter(|size| *size > 0)?;
                Some((number, size))
            })
            .collect();
        let loaded = BucketBlock {
            segment_sizes,
            chunk_estimate: positive(thanos.index_stats.chunk_max_size, DEFAULT_CHUNK_ESTIMATE)
                .min(DEFAULT_CHUNK_ESTIMATE),
            meta,
            external,
            context,
            index_size,
            header_path,
            header: Mutex::new(header),
            loading: tokio::sync::Mutex::new(()),
            last_used: Mutex::new(Instant::now()),
        };
        if !loaded.context.lazy_headers && loaded.header.lock().is_none() {
            // Without the lazy reader (Thanos's default) the header is in memory from the
            // start and stays there.
            let header = loaded.load_header().await?;
            *loaded.header.lock() = Some(Arc::new(header));
        }
        Ok(loaded)
    }

    pub fn ulid(&self) -> Ulid {
        self.meta.ulid
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block's external labels (meta.json `thanos.labels`).
    pub fn external_labels(&self) -> &Labels {
        &self.external
    }

    pub fn resolution(&self) -> i64 {
        self.meta.resolution()
    }

    /// The index-header, parsed from the data directory on first use (lazy load). Concurrent
    /// first uses share one load; a file that fails to parse is rebuilt from the bucket and
    /// written again. Parsing runs on the blocking pool.
    pub async fn header(&self) -> Result<Arc<IndexHeader>> {
        *self.last_used.lock() = Instant::now();
        if let Some(header) = self.header.lock().clone() {
            return Ok(header);
        }
        let _loading = self.loading.lock().await;
        if let Some(header) = self.header.lock().clone() {
            return Ok(header);
        }
        self.context.metrics.lazy_load.inc();
        let header = match self.load_header().await {
            Ok(header) => Arc::new(header),
            Err(err) => {
                self.context.metrics.lazy_load_failed.inc();
                return Err(err);
            }
        };
        *self.header.lock() = Some(Arc::clone(&header));
        Ok(header)
    }

    async fn load_header(&self) -> Result<IndexHeader> {
        let block = self.ulid();
        let path = self.header_path.clone();
        if self.context.keep_header_files && path.exists() {
            let read_path = path.clone();
            match blocking(move || IndexHeader::read_file(block, &read_path)).await {
                Ok(header) => return Ok(header),
                Err(err) => {
                    tracing::warn!(block = %block, path = %path.display(), error = %strata_common::error::error_chain(&err), "index-header file unreadable; rebuilding it from the bucket");
                }
            }
        }
        let bytes = index_header::build(&self.context.bucket, block, self.index_size).await?;
        let keep = self.context.keep_header_files;
        blocking(move || {
            if keep {
                index_header::write_file(&path, &bytes)?;
            }
            IndexHeader::parse(block, Bytes::from(bytes))
        })
        .await
    }

    /// Drops the in-memory index-header when unused for `idle`; true when it did.
    pub fn unload_if_idle(&self, idle: Duration) -> bool {
        if !self.context.keep_header_files {
            return false;
        }
        if self.last_used.lock().elapsed() < idle {
            return false;
        }
        let unloaded = self.header.lock().take().is_some();
        if unloaded {
            self.context.metrics.lazy_unload.inc();
        }
        unloaded
    }

    /// Removes the block's files from the data directory.
    pub fn remove_local_files(&self) -> std::io::Result<()> {
        match self.header_path.parent() {
            Some(dir) if dir.exists() => std::fs::remove_dir_all(dir),
            _ => Ok(()),
        }
    }

    async fn get_range(&self, object: String, range: Range<u64>) -> Result<Bytes> {
        let block = self.ulid();
        self.context
            .bucket
            .get_range(&object, range)
            .await
            .map_err(|source| Error::Bucket {
                block,
                object,
                source: Box::new(source),
            })
    }

    fn decode_error(&self, object: &str) -> impl Fn(strata_tsdb::Error) -> Error + use<> {
        let block = self.ulid();
        let object = object.to_owned();
        move |source| Error::Decode {
            block,
            object: object.clone(),
            source,
        }
    }

    /// The postings lists of `entries` of label `name`, from the cache or the index.
    pub async fn postings(
        &self,
        name: &str,
        entries: &[PostingsEntry],
    ) -> Result<Vec<Arc<RoaringBitmap>>> {
        let block = self.ulid();
        let key = |entry: &PostingsEntry| IndexKey::Postings {
            block,
            name: name.to_owned(),
            value: entry.value.clone(),
        };
        let mut out: Vec<Option<Arc<RoaringBitmap>>> = Vec::with_capacity(entries.len());
        let mut missing = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            match self.context.caches.get_index(&key(entry)) {
                Some(IndexValue::Postings(bitmap)) => out.push(Some(bitmap)),
                _ => {
                    out.push(None);
                    missing.push(i);
                }
            }
        }
        let ranges: Vec<Range<u64>> = missing
            .iter()
            .filter_map(|&i| entries.get(i).map(|e| e.range.clone()))
            .collect();
        let parts = partition(&ranges, MAX_GAP);
        let object = format!("{block}/index");
        let fetched = try_join_all(
            parts
                .iter()
                .map(|part| self.get_range(object.clone(), part.range.clone())),
        )
        .await?;
        let decode_error = self.decode_error("index");
        for (part, data) in parts.iter().zip(fetched) {
            for &member in &part.members {
                let Some(range) = ranges.get(member) else {
                    continue;
                };
                let start = usize::try_from(range.start - part.range.start).unwrap_or(usize::MAX);
                let end = usize::try_from(range.end - part.range.start).unwrap_or(usize::MAX);
                let slice = data.get(start..end.min(data.len())).unwrap_or(&[]);
                let refs = decode_postings(slice, range.start).map_err(&decode_error)?;
                let bitmap: RoaringBitmap = refs.into_iter().collect();
                let bitmap = Arc::new(bitmap);
                let Some(&index) = missing.get(member) else {
                    continue;
                };
                if let Some(entry) = entries.get(index) {
                    self.context
                        .caches
                        .put_index(key(entry), IndexValue::Postings(Arc::clone(&bitmap)));
                }
                if let Some(slot) = out.get_mut(index) {
                    *slot = Some(bitmap);
                }
            }
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// The raw series entries of `refs` (sorted), from the cache or the index.
    pub async fn series(&self, refs: &[u32]) -> Result<Vec<(u32, SeriesEntry)>> {
        let raw = self.series_bytes(refs).await?;
        let decode_error = self.decode_error("index");
        refs.iter()
            .zip(raw)
            .map(|(&series_ref, bytes)| {
                decode_series_entry(&bytes, series_ref)
                    .map(|entry| (series_ref, entry))
                    .map_err(&decode_error)
            })
            .collect()
    }

    /// The encoded series entries of `refs` (sorted), from the cache or the index, one per
    /// ref: decode them with [`decode_series_entry`] (off the async workers). The index is
    /// read and cached in aligned [`INDEX_PIECE`] pieces, like the chunk segments: a lookup
    /// serves every entry in its piece (an entry of a 2 h block is ~50 bytes), and an entry
    /// needs the piece it starts in, plus the following ones when it runs past it.
    pub async fn series_bytes(&self, refs: &[u32]) -> Result<Vec<Bytes>> {
        let decode_error = self.decode_error("index");
        let offsets: Vec<u64> = refs.iter().map(|&r| u64::from(r) * 16).collect();
        let mut pieces = Pieces::default();
        let mut wanted: Vec<u64> = offsets
            .iter()
            .map(|&offset| offset.min(self.index_size) / INDEX_PIECE)
            .collect();
        wanted.dedup();
        self.load_index_pieces(&wanted, &mut pieces).await?;
        let mut out = vec![Bytes::new(); refs.len()];
        let mut pending: Vec<usize> = (0..refs.len()).collect();
        // Round 1 reads what each entry starts in; an entry past its piece asks for the pieces
        // of its header, then of its whole length (at most two more rounds).
        for round in 0..3 {
            let mut missing = std::collections::BTreeSet::new();
            let mut still = Vec::new();
            for position in pending {
                let Some(&offset) = offsets.get(position) else {
                    continue;
                };
                match self
                    .entry_from_pieces(&pieces, offset)
                    .map_err(&decode_error)?
                {
                    Ok(bytes) => {
                        if let Some(slot) = out.get_mut(position) {
                            *slot = bytes;
                        }
                    }
                    Err(needed) => {
                        missing.extend(needed.filter(|index| !pieces.contains_key(index)));
                        still.push(position);
                    }
                }
            }
            pending = still;
            if pending.is_empty() || round == 2 {
                break;
            }
            if round == 0 {
                self.context.metrics.series_refetches.inc();
            }
            let missing: Vec<u64> = missing.into_iter().collect();
            self.load_index_pieces(&missing, &mut pieces).await?;
        }
        if let Some(&position) = pending.first() {
            let offset = offsets.get(position).copied().unwrap_or_default();
            return Err(decode_error(strata_tsdb::Error::corrupt(
                "series",
                offset,
                "entry could not be read from the index",
            )));
        }
        Ok(out)
    }

    /// The entry at `offset` from `pieces`: its bytes, or the pieces still needed to read its
    /// length or its whole extent. An entry said to run past the end of the index is an error
    /// (a corrupt length must not turn into a huge read).
    fn entry_from_pieces(
        &self,
        pieces: &Pieces,
        offset: u64,
    ) -> strata_tsdb::Result<std::result::Result<Bytes, std::ops::RangeInclusive<u64>>> {
        let size = self.index_size;
        let header = (offset.saturating_add(10)).min(size).saturating_sub(offset);
        let Some(head) = gather(pieces, offset, header) else {
            return Ok(Err(piece_span(offset, header)));
        };
        let span = series_span(&head, offset)? as u64;
        if offset.saturating_add(span) > size {
            return Err(strata_tsdb::Error::corrupt(
                "series",
                offset,
                format!("entry of {span} bytes runs past the end of the index ({size} bytes)"),
            ));
        }
        Ok(gather(pieces, offset, span).ok_or_else(|| piece_span(offset, span)))
    }

    /// Adds pieces `indices` (sorted) of the index to `pieces`, from the cache or the bucket
    /// (nearby missing pieces in one GET), caching what was read.
    async fn load_index_pieces(&self, indices: &[u64], pieces: &mut Pieces) -> Result<()> {
        let block = self.ulid();
        let missing = self.context.caches.get_index_pieces(block, indices, pieces);
        if missing.is_empty() {
            return Ok(());
        }
        let size = self.index_size;
        let mut ranges: Vec<Range<u64>> = Vec::with_capacity(missing.len());
        let mut fetch: Vec<u64> = Vec::with_capacity(missing.len());
        for index in missing {
            let start = index.saturating_mul(INDEX_PIECE).min(size);
            let end = start.saturating_add(INDEX_PIECE).min(size);
            if start == end {
                // At or past the end of the index: nothing to read (the entry fails to decode).
                pieces.insert(index, Bytes::new());
            } else {
                ranges.push(start..end);
                fetch.push(index);
            }
        }
        let missing = fetch;
        let parts = partition(&ranges, MAX_GAP);
        let object = format!("{block}/index");
        let fetched = try_join_all(
            parts
                .iter()
                .map(|part| self.get_range(object.clone(), part.range.clone())),
        )
        .await?;
        for (part, data) in parts.iter().zip(fetched) {
            for &member in &part.members {
                let (Some(range), Some(&index)) = (ranges.get(member), missing.get(member)) else {
                    continue;
                };
                let from = usize::try_from(range.start - part.range.start).unwrap_or(usize::MAX);
                let to = usize::try_from(range.end - part.range.start).unwrap_or(usize::MAX);
                let from = from.min(data.len());
                let piece =
                    Bytes::copy_from_slice(data.get(from..to.min(data.len())).unwrap_or(&[]));
                self.context.caches.put_index(
                    IndexKey::Series {
                        block,
                        piece: index,
                    },
                    IndexValue::Series(piece.clone()),
                );
                pieces.insert(index, piece);
            }
        }
        Ok(())
    }

    /// The chunks of `refs`, in the order of `refs`, from the cache or the segment files. Segment files are read and
    /// cached in aligned [`SUBRANGE`] pieces: a chunk needs the pieces from its offset to its
    /// estimated end, missing pieces are fetched with nearby ones merged into one GET, and
    /// a chunk inside one piece is decoded without a copy. Decoding (CRC checks) runs on the
    /// blocking pool; a chunk longer than its estimate is read again whole, but never past
    /// the end of its segment file (nor past [`MAX_CHUNK_BYTES`] when the size is not listed),
    /// so a corrupt length cannot turn into a huge read.
    pub async fn chunks(&self, refs: &[ChunkRef]) -> Result<Vec<Chunk>> {
        let block = self.ulid();
        // Where each ref goes in the answer, in file order: grouped by segment, by offset.
        let mut wanted: Vec<(ChunkRef, usize)> = refs.iter().copied().zip(0..).collect();
        wanted.sort_unstable_by_key(|(chunk_ref, _)| chunk_ref.0);
        // Per segment: its wanted chunks, the pieces they need (cached or fetched below).
        let mut segments = Vec::new();
        let mut requests = Vec::new();
        for group in wanted.chunk_by(|a, b| a.0.segment() == b.0.segment()) {
            let Some(&(first, _)) = group.first() else {
                continue;
            };
            let segment = first.segment();
            let object = format!("{block}/chunks/{}", segment_file_name(segment));
            let size = self.segment_size(segment);
            let mut needed = std::collections::BTreeSet::new();
            for (chunk_ref, _) in group {
                needed.extend(self.pieces_of(*chunk_ref, size));
            }
            let (pieces, missing) = self.context.caches.get_subranges(block, segment, needed);
            let ranges: Vec<Range<u64>> = missing
                .iter()
                .map(|&index| {
                    let start = index.saturating_mul(SUBRANGE);
                    let end = start.saturating_add(SUBRANGE);
                    start..size.map_or(end, |size| end.min(size.max(start)))
                })
                .collect();
            for part in partition(&ranges, MAX_GAP) {
                let indices: Vec<u64> = part
                    .members
                    .iter()
                    .filter_map(|&m| missing.get(m).copied())
                    .collect();
                requests.push((segments.len(), object.clone(), part.range, indices));
            }
            segments.push((object, segment, group.to_vec(), pieces));
        }
        let fetched = try_join_all(
            requests
                .iter()
                .map(|(_, object, range, _)| self.get_range(object.clone(), range.clone())),
        )
        .await?;
        for ((at, _, range, indices), data) in requests.into_iter().zip(fetched) {
            let Some((_, segment, _, pieces)) = segments.get_mut(at) else {
                continue;
            };
            for index in indices {
                let from = index.saturating_mul(SUBRANGE).saturating_sub(range.start);
                let from = usize::try_from(from).unwrap_or(usize::MAX).min(data.len());
                let to = from.saturating_add(SUBRANGE as usize).min(data.len());
                let piece = Bytes::copy_from_slice(data.get(from..to).unwrap_or_default());
                self.context
                    .caches
                    .put_subrange(block, *segment, index, piece.clone());
                pieces.insert(index, piece);
            }
        }
        let count = refs.len();
        let decoded = blocking(move || {
            let mut out: Vec<Option<Chunk>> = vec![None; count];
            let mut longer = Vec::new();
            for (object, segment, wanted, pieces) in segments {
                let decode_error = |source| Error::Decode {
                    block,
                    object: object.clone(),
                    source,
                };
                // Each distinct ref is decoded once; repeats share its bytes.
                for same in wanted.chunk_by(|a, b| a.0 == b.0) {
                    let Some(&(chunk_ref, _)) = same.first() else {
                        continue;
                    };
                    let positions = same.iter().map(|&(_, position)| position);
                    let offset = u64::from(chunk_ref.offset());
                    match decode_from_pieces(&pieces, offset).map_err(decode_error)? {
                        Ok(chunk) => {
                            // Repeats take a copy, the last position the chunk itself.
                            if let Some(((_, last), repeats)) = same.split_last() {
                                for &(_, position) in repeats {
                                    if let Some(slot) = out.get_mut(position) {
                                        *slot = Some(chunk.clone());
                                    }
                                }
                                if let Some(slot) = out.get_mut(*last) {
                                    *slot = Some(chunk);
                                }
                            }
                        }
                        Err(available) => {
                            let total = chunk_span(&available, offset).map_err(decode_error)?;
                            let positions: Vec<usize> = positions.collect();
                            longer.push((object.clone(), segment, chunk_ref, total, positions));
                        }
                    }
                }
            }
            Ok((out, longer))
        })
        .await?;
        let (mut out, longer) = decoded;
        for (object, segment, chunk_ref, total, positions) in longer {
            let offset = u64::from(chunk_ref.offset());
            let limit = self.segment_size(segment).unwrap_or(u64::MAX);
            let end = offset.saturating_add(total as u64);
            if total as u64 > MAX_CHUNK_BYTES || end > limit {
                return Err(Error::Decode {
                    block,
                    object,
                    source: strata_tsdb::Error::corrupt(
                        "chunk",
                        offset,
                        format!("chunk of {total} bytes runs past the end of its segment"),
                    ),
                });
            }
            self.context.metrics.chunk_refetches.inc();
            let again = self.get_range(object.clone(), offset..end).await?;
            let decode_error = self.decode_error(&object);
            let chunk = blocking(move || {
                decode_chunk(&again, offset)
                    .map_err(&decode_error)?
                    .map(|(chunk, _)| chunk)
                    .ok_or_else(|| {
                        decode_error(strata_tsdb::Error::corrupt(
                            "chunk",
                            offset,
                            "chunk runs past the end of its segment",
                        ))
                    })
            })
            .await?;
            for position in positions {
                if let Some(slot) = out.get_mut(position) {
                    *slot = Some(chunk.clone());
                }
            }
        }
        out.into_iter()
            .collect::<Option<Vec<Chunk>>>()
            .ok_or_else(|| Error::Join {
                reason: format!("block {block}: a requested chunk was not read"),
            })
    }

    /// The indices of the pieces holding chunk `chunk_ref` as far as its estimated length.
    fn pieces_of(&self, chunk_ref: ChunkRef, size: Option<u64>) -> std::ops::RangeInclusive<u64> {
        let start = u64::from(chunk_ref.offset());
        let end = start.saturating_add(self.chunk_estimate);
        let end = size.map_or(end, |size| end.min(size.max(start.saturating_add(1))));
        (start / SUBRANGE)..=(end.saturating_sub(1).max(start) / SUBRANGE)
    }

    /// The size of segment file `segment` as meta.json lists it, if it does.
    fn segment_size(&self, segment: u32) -> Option<u64> {
        self.segment_sizes.get(&segment).copied()
    }
}

/// Decodes the chunk at `offset` from the cached pieces of its segment: without a copy when it
/// lies in one piece, else from the consecutive pieces joined. `Ok(Err(bytes))` when the
/// pieces end before the chunk does (it is longer than its estimate): the bytes there are.
fn decode_from_pieces(
    pieces: &Pieces,
    offset: u64,
) -> strata_tsdb::Result<std::result::Result<Chunk, Bytes>> {
    let first = offset / SUBRANGE;
    let within = usize::try_from(offset - first * SUBRANGE).unwrap_or(usize::MAX);
    let head = pieces
        .get(&first)
        .filter(|piece| within <= piece.len())
        .map(|piece| piece.slice(within..))
        .unwrap_or_default();
    if let Some((chunk, _)) = decode_chunk(&head, offset)? {
        return Ok(Ok(chunk));
    }
    // The chunk runs into the next pieces: join just as many as it spans (its length is in
    // its header, which itself may straddle the boundary).
    let mut joined = head.to_vec();
    let mut next = first + 1;
    let mut total = None;
    loop {
        if total.is_none() && joined.len() >= MAX_CHUNK_HEADER {
            total = Some(chunk_span(&joined, offset)?);
        }
        let want = total.unwrap_or(MAX_CHUNK_HEADER);
        if joined.len() >= want {
            break;
        }
        let Some(piece) = pieces.get(&next) else {
            break;
        };
        let take = if total.is_some() {
            (want - joined.len()).min(piece.len())
        } else {
            piece.len()
        };
        joined.extend_from_slice(piece.get(..take).unwrap_or_default());
        next += 1;
    }
    let joined = Bytes::from(joined);
    Ok(match decode_chunk(&joined, offset)? {
        Some((chunk, _)) => Ok(chunk),
        None => Err(joined),
    })
}

/// Bytes of one cached piece of the index file; pieces start at multiples of it.
pub const INDEX_PIECE: u64 = 4 * 1024;

/// The pieces of one file (index or chunk segment) a call has at hand, by piece index.
pub type Pieces = HashMap<u64, Bytes, foldhash::fast::RandomState>;

/// The indices of the index pieces holding `len` bytes from `offset`.
fn piece_span(offset: u64, len: u64) -> std::ops::RangeInclusive<u64> {
    let last = offset.saturating_add(len.max(1)).saturating_sub(1);
    (offset / INDEX_PIECE)..=(last / INDEX_PIECE)
}

/// `len` bytes from `offset` out of index `pieces`: a slice when they lie in one piece, else
/// a copy joined from consecutive pieces; `None` when a piece is missing or ends early.
fn gather(pieces: &Pieces, offset: u64, len: u64) -> Option<Bytes> {
    let first = offset / INDEX_PIECE;
    let within = usize::try_from(offset - first * INDEX_PIECE).ok()?;
    let len = usize::try_from(len).ok()?;
    let piece = pieces.get(&first)?;
    if let Some(end) = within.checked_add(len)
        && end <= piece.len()
    {
        return Some(piece.slice(within..end));
    }
    let mut joined = Vec::with_capacity(len);
    joined.extend_from_slice(piece.get(within..)?);
    let mut next = first + 1;
    while joined.len() < len {
        let piece = pieces.get(&next)?;
        if piece.is_empty() {
            return None;
        }
        let take = (len - joined.len()).min(piece.len());
        joined.extend_from_slice(piece.get(..take)?);
        next += 1;
    }
    Some(Bytes::from(joined))
}

/// Decodes the series entry `series_ref` from its bytes (as [`BucketBlock::series_bytes`]
/// returns them); a missing or truncated entry is a decode error.
pub fn decode_series_entry(bytes: &[u8], series_ref: u32) -> strata_tsdb::Result<SeriesEntry> {
    let offset = u64::from(series_ref).saturating_mul(16);
    decode_series(bytes, offset)?
        .ok_or_else(|| strata_tsdb::Error::corrupt("series", offset, "truncated series entry"))
}

/// Bytes spanned by the series entry starting at `data[0]` (length varint, body, CRC).
fn series_span(data: &[u8], offset: u64) -> strata_tsdb::Result<usize> {
    let mut buf = Decbuf::new(data, "series", offset);
    let len = buf.uvarint_usize()?;
    Ok(buf.position().saturating_add(len).saturating_add(4))
}

/// Bytes spanned by the chunk starting at `data[0]` (length varint, encoding, data, CRC).
fn chunk_span(data: &[u8], offset: u64) -> strata_tsdb::Result<usize> {
    let mut buf = Decbuf::new(data, "chunk", offset);
    let len = buf.uvarint_usize()?;
    Ok(buf
        .position()
        .saturating_add(1)
        .saturating_add(len)
        .saturating_add(4))
}

#[cfg(test)]
mod piece_tests {
    use strata_tsdb::chunkenc::Encoding;
    use strata_tsdb::chunks::{ChunkReader, ChunkWriter};

    use super::*;

    /// Chunks of every size decode from the segment's SUBRANGE pieces exactly as the reader
    /// reads them from the whole file: inside one piece, across a boundary (also with the
    /// length header split by it), and over several pieces; with the next pieces missing the
    /// bytes that are there come back instead.
    #[test]
    fn chunks_decode_from_pieces_like_from_the_whole_segment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sizes = [100usize, 5_000, 20_000, 7, 16_380, 40_000, 1, 3_000];
        let chunks: Vec<Chunk> = (0..64)
            .map(|i| {
                let size = sizes[i % sizes.len()];
                let data: Vec<u8> = (0..size).map(|b| (b * 31 + i) as u8).collect();
                Chunk::new(Encoding::Xor, data)
            })
            .collect();
        let mut writer = ChunkWriter::create(dir.path()).expect("writer");
        let refs = writer.write_chunks(&chunks).expect("write");
        writer.finish().expect("finish");
        let reader = ChunkReader::open_dir(dir.path()).expect("reader");
        let segment = std::fs::read(dir.path().join(segment_file_name(0))).expect("segment");
        let pieces: Pieces = segment
            .chunks(SUBRANGE as usize)
            .enumerate()
            .map(|(i, piece)| (i as u64, Bytes::copy_from_slice(piece)))
            .collect();
        let mut crossing = 0;
        for (chunk_ref, chunk) in refs.iter().zip(&chunks) {
            let offset = u64::from(chunk_ref.offset());
            let decoded = decode_from_pieces(&pieces, offset)
                .expect("decodes")
                .expect("whole chunk");
            assert_eq!(decoded, *chunk);
            assert_eq!(decoded, reader.chunk(*chunk_ref).expect("reader"));
            let span = chunk_span(&segment[offset as usize..], offset).expect("span") as u64;
            if offset / SUBRANGE != (offset + span - 1) / SUBRANGE {
                crossing += 1;
                // Without the pieces after its first one, the chunk is not there yet.
                let first: Pieces = pieces
                    .iter()
                    .filter(|(index, _)| **index == offset / SUBRANGE)
                    .map(|(index, piece)| (*index, piece.clone()))
                    .collect();
                let partial = decode_from_pieces(&first, offset).expect("no error");
                assert!(partial.is_err(), "chunk at {offset} decoded from one piece");
            }
        }
        assert!(
            crossing > 10,
            "only {crossing} chunks cross a piece boundary"
        );
    }
}
