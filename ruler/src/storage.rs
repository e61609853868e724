//! The ruler's local TSDB: recorded series and `ALERTS`/`ALERTS_FOR_STATE` samples, kept in an
//! in-memory head backed by a write-ahead log, cut into Prometheus blocks (the project's block
//! writer) every `--tsdb.block-duration`, deleted after `--tsdb.retention`, read by the
//! StoreAPI and by the `for`-state restore, and shipped by the shared shipper.
//!
//! Layout of `--data-dir`: `<ULID>/` blocks (as Prometheus's, so the shipper and `promtool`
//! read them), `wal/head.wal`, `thanos.shipper.json`.
//!
//! Invariants:
//! - Every appended sample is in the WAL before `append` returns (written and flushed; synced
//!   when a block is cut and on close), so a restart replays the head.
//! - A block covers one aligned window `[k*D, (k+1)*D)`; the window is cut once the head holds
//!   samples half a window past its end (as Prometheus's head waits for 1.5 block ranges), so
//!   late evaluations of other groups still land in it; or, on the periodic [`LocalTsdb::maintain`],
//!   once the clock is that far past it, so the last window is cut when the rules stop
//!   writing. The clock counts only up to the oldest evaluation still running
//!   ([`LocalTsdb::begin_write`]): its samples carry its start time, and a slow query must not
//!   find its window cut. A sample older than the last cut window's end is refused (it would
//!   overlap a block), counted, never written.
//! - The WAL is rewritten (tmp, fsync, rename) with only the samples not yet in blocks after
//!   each cut; a crash between the block rename and the WAL rewrite leaves samples in both,
//!   and replay drops those older than the newest block's end, so nothing is duplicated.
//!
//! WAL record: `u32 length, u32 crc32c, payload`; payload: `u32 count` then per sample
//! `u16 label count, (u32 len, name, u32 len, value)*, i64 t, u64 value bits`, all
//! little-endian. A torn or corrupt tail is dropped at replay.

use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use strata_tsdb::block::{Block, BlockWriter, SeriesChunk};
use strata_tsdb::chunkenc::{Chunk, Encoding, XorAppender};
use strata_tsdb::labels::{Label, Labels, Matcher};
use strata_tsdb::meta::BlockMeta;
use ulid::Ulid;

use crate::error::{Error, Result};

const WAL_DIR: &str = "wal";
const WAL_FILE: &str = "head.wal";
/// Samples per chunk, as Prometheus cuts them.
const SAMPLES_PER_CHUNK: usize = 120;
/// Largest WAL record accepted at replay.
const MAX_RECORD: usize = 64 << 20;

/// Prometheus's stale marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

pub fn is_stale_nan(value: f64) -> bool {
    value.to_bits() == STALE_NAN_BITS
}

/// One sample to append.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// A chunk of one series as the StoreAPI sends it.
#[derive(Debug, Clone)]
pub struct SeriesChunks {
    pub labels: Labels,
    pub chunks: Vec<SeriesChunk>,
}

#[derive(Debug)]
struct Inner {
    head: BTreeMap<Labels, Vec<(i64, f64)>>,
    wal: BufWriter<std::fs::File>,
    /// End of the newest block: older samples are refused.
    cut_before: i64,
    blocks: Vec<Arc<Block>>,
}

/// The local TSDB.
#[derive(Debug)]
pub struct LocalTsdb {
    dir: PathBuf,
    block_duration: i64,
    retention: i64,
    inner: Mutex<Inner>,
    /// Samples refused because they were older than the last cut block.
    pub out_of_bounds: std::sync::atomic::AtomicU64,
    /// Timestamps of the evaluations running now (with how many run at each).
    writers: Mutex<BTreeMap<i64, usize>>,
}

/// An evaluation in progress (see [`LocalTsdb::begin_write`]); ends when dropped.
#[derive(Debug)]
pub struct PendingWrite {
    tsdb: Arc<LocalTsdb>,
    t: i64,
}

impl Drop for PendingWrite {
    fn drop(&mut self) {
        let mut writers = self.tsdb.writers.lock();
        if let Some(count) = writers.get_mut(&self.t) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                writers.remove(&self.t);
            }
        }
    }
}

fn wal_path(dir: &Path) -> PathBuf {
    dir.join(WAL_DIR).join(WAL_FILE)
}

fn encode_record(samples: &[(&Labels, i64, f64)]) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    for (labels, t, v) in samples {
        payload.extend_from_slice(&(labels.len().min(u16::MAX as usize) as u16).to_le_bytes());
        for label in labels.iter().take(u16::MAX as usize) {
            for text in [&label.name, &label.value] {
                payload.extend_from_slice(&(text.len() as u32).to_le_bytes());
                payload.extend_from_slice(text.as_bytes());
            }
        }
        payload.extend_from_slice(&t.to_le_bytes());
        payload.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    let mut record = Vec::with_capacity(payload.len() + 8);
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&strata_tsdb::encoding::crc32c(&payload).to_le_bytes());
    record.extend_from_slice(&payload);
    record
}

struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n)?;
        let slice = self.data.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.u32()?).ok()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

fn decode_payload(payload: &[u8]) -> Option<Vec<Sample>> {
    let mut cursor = Cursor {
        data: payload,
        at: 0,
    };
    let count = cursor.u32()? as usize;
    let mut samples = Vec::with_capacity(count.min(payload.len() / 16 + 1));
    for _ in 0..count {
        let label_count = cursor.u16()? as usize;
        let mut labels = Vec::with_capacity(label_count);
        for _ in 0..label_count {
            let name = cursor.string()?;
            let value = cursor.string()?;
            labels.push(Label::new(name, value));
        }
        let t = cursor.u64()? as i64;
        let v = f64::from_bits(cursor.u64()?);
        samples.push(Sample {
            labels: Labels::new(labels),
            t,
            v,
        });
    }
    Some(samples)
}

/// Reads every intact record of the WAL at `path`; stops at the first torn or corrupt one.
fn replay_wal(path: &Path) -> Result<Vec<Sample>> {
    let mut bytes = Vec::new();
    match std::fs::File::open(path) {
        Ok(mut file) => {
            file.read_to_end(&mut bytes)
                .map_err(|err| Error::io("read wal", path, err))?;
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(Error::io("open wal", path, err)),
    }
    let mut samples = Vec::new();
    let mut cursor = Cursor {
        data: &bytes,
        at: 0,
    };
    loop {
        let start = cursor.at;
        let (Some(len), Some(crc)) = (cursor.u32(), cursor.u32()) else {
            if start < bytes.len() {
                tracing::warn!(path = %path.display(), offset = start, "torn wal record dropped");
            }
            break;
        };
        let len = len as usize;
        let payload = match cursor.take(len).filter(|_| len <= MAX_RECORD) {
            Some(payload) if strata_tsdb::encoding::crc32c(payload) == crc => payload,
            _ => {
                tracing::warn!(path = %path.display(), offset = start, "corrupt wal record; replay stops here");
                break;
            }
        };
        match decode_payload(payload) {
            Some(decoded) => samples.extend(decoded),
            None => {
                tracing::warn!(path = %path.display(), offset = start, "undecodable wal record; replay stops here");
                break;
            }
        }
    }
    Ok(samples)
}

fn open_wal_for_append(path: &Path) -> Result<BufWriter<std::fs::File>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|err| Error::io("open wal", path, err))?;
    Ok(BufWriter::new(file))
}

/// Splits samples into XOR chunks of at most 120 samples.
pub fn encode_chunks(samples: &[(i64, f64)]) -> Vec<SeriesChunk> {
    let mut chunks = Vec::new();
    for piece in samples.chunks(SAMPLES_PER_CHUNK) {
        let (Some(first), Some(last)) = (piece.first(), piece.last()) else {
            continue;
        };
        let mut appender = XorAppender::new();
        let mut ok = true;
        for &(t, v) in piece {
            if appender.append(t, v).is_err() {
                ok = false;
                break;
            }
        }
        if !ok {
            continue;
        }
        chunks.push(SeriesChunk {
            min_time: first.0,
            max_time: last.0,
            chunk: Chunk::new(Encoding::Xor, appender.bytes()),
        });
    }
    chunks
}

impl LocalTsdb {
    /// Opens (or creates) the TSDB in `dir`: loads blocks, drops unfinished ones, replays the
    /// WAL.
    pub fn open(
        dir: &Path,
        block_duration: std::time::Duration,
        retention: std::time::Duration,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir.join(WAL_DIR))
            .map_err(|err| Error::io("create data dir", dir, err))?;
        let mut blocks = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|err| Error::io("list data dir", dir, err))?;
        for entry in entries {
            let entry = entry.map_err(|err| Error::io("list data dir", dir, err))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.ends_with(".tmp-for-creation") {
                // A block whose writing was interrupted: its samples are still in the WAL.
                let _ = std::fs::remove_dir_all(&path);
                continue;
            }
            if Ulid::from_string(&name).is_err() || !path.is_dir() {
                continue;
            }
            match Block::open(&path) {
                Ok(block) => blocks.push(Arc::new(block)),
                Err(err) => {
                    tracing::warn!(block = %name, error = %strata_common::error::error_chain(&err), "unreadable local block skipped");
                }
            }
        }
        blocks.sort_by_key(|block| block.meta().min_time);
        let cut_before = blocks
            .iter()
            .map(|block| block.meta().max_time)
            .max()
            .unwrap_or(i64::MIN);
        let path = wal_path(dir);
        let mut head: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
        let mut replayed = 0usize;
        for sample in replay_wal(&path)? {
            if sample.t < cut_before {
                continue;
            }
            let series = head.entry(sample.labels).or_default();
            if series.last().is_none_or(|(t, _)| *t < sample.t) {
                series.push((sample.t, sample.v));
                replayed += 1;
            }
        }
        if replayed > 0 {
            tracing::info!(
                samples = replayed,
                series = head.len(),
                "replayed the write-ahead log"
            );
        }
        let tsdb = Self {
            dir: dir.to_path_buf(),
            block_duration: i64::try_from(block_duration.as_millis())
                .unwrap_or(i64::MAX)
                .max(1),
            retention: i64::try_from(retention.as_millis()).unwrap_or(i64::MAX),
            inner: Mutex::new(Inner {
                head,
                wal: open_wal_for_append(&path)?,
                cut_before,
                blocks,
            }),
            out_of_bounds: std::sync::atomic::AtomicU64::new(0),
            writers: Mutex::new(BTreeMap::new()),
        };
        // Rewrite the WAL so replayed records older than the blocks are gone.
        {
            let mut inner = tsdb.inner.lock();
            tsdb.rewrite_wal(&mut inner)?;
        }
        Ok(tsdb)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends samples (WAL first), then cuts blocks and applies retention if due. Blocking:
    /// call from `spawn_blocking`.
    pub fn append(&self, samples: &[Sample], now_ms: i64) -> Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut inner = self.inner.lock();
        let mut accepted: Vec<(&Labels, i64, f64)> = Vec::with_capacity(samples.len());
        for sample in samples {
            if sample.t < inner.cut_before {
                self.out_of_bounds
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                continue;
            }
            let series = inner.head.entry(sample.labels.clone()).or_default();
            match series.last() {
                Some((t, _)) if *t >= sample.t => {
                    // Same timestamp again (or older): Prometheus refuses it too.
                    self.out_of_bounds
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                _ => {
                    series.push((sample.t, sample.v));
                    accepted.push((&sample.labels, sample.t, sample.v));
                }
            }
        }
        if !accepted.is_empty() {
            let record = encode_record(&accepted);
            let path = wal_path(&self.dir);
            inner
                .wal
                .write_all(&record)
                .and_then(|()| inner.wal.flush())
                .map_err(|err| Error::io("append to wal", &path, err))?;
        }
        self.cut(&mut inner, None, now_ms)
    }

    /// Cuts every window that is complete (by the head's samples, or by `clock_ms` a whole
    /// window past its end), then deletes blocks past retention at `now_ms`.
    fn cut(&self, inner: &mut Inner, clock_ms: Option<i64>, now_ms: i64) -> Result<()> {
        let max_t = inner
            .head
            .values()
            .filter_map(|samples| samples.last().map(|(t, _)| *t))
            .max();
        if let Some(max_t) = max_t {
            let d = self.block_duration;
            let reference = clock_ms.map_or(max_t, |clock| max_t.max(clock));
            let boundary = (reference.saturating_sub(d / 2))
                .div_euclid(d)
                .saturating_mul(d);
            if boundary > inner.cut_before {
                self.write_blocks(inner, boundary)?;
            }
        }
        self.apply_retention(inner, now_ms);
        Ok(())
    }

    /// Writes the head's samples before `boundary` as one block per window, drops them from
    /// the head and rewrites the WAL.
    fn write_blocks(&self, inner: &mut Inner, boundary: i64) -> Result<()> {
        let d = self.block_duration;
        // window start -> series -> samples
        let mut windows: BTreeMap<i64, BTreeMap<Labels, Vec<(i64, f64)>>> = BTreeMap::new();
        for (labels, samples) in &mut inner.head {
            let split = samples.partition_point(|(t, _)| *t < boundary);
            for &(t, v) in samples.iter().take(split) {
                windows
                    .entry(t.div_euclid(d).saturating_mul(d))
                    .or_default()
                    .entry(labels.clone())
                    .or_default()
                    .push((t, v));
            }
            samples.drain(..split);
        }
        inner.head.retain(|_, samples| !samples.is_empty());
        for (start, series) in windows {
            let block = self.write_block(start, start.saturating_add(d), &series)?;
            inner.blocks.push(Arc::new(block));
        }
        inner.cut_before = boundary;
        self.rewrite_wal(inner)
    }

    fn write_block(
        &self,
        window_start: i64,
        window_end: i64,
        series: &BTreeMap<Labels, Vec<(i64, f64)>>,
    ) -> Result<Block> {
        let min_time = series
            .values()
            .filter_map(|s| s.first().map(|(t, _)| *t))
            .min()
            .unwrap_or(window_start);
        let ulid = Ulid::new();
        let mut meta = BlockMeta::new(ulid, min_time, window_end);
        meta.compaction.level = 1;
        meta.compaction.sources = vec![ulid];
        let mut symbols: Vec<String> = series
            .keys()
            .flat_map(|labels| {
                labels
                    .iter()
                    .flat_map(|l| [l.name.clone(), l.value.clone()])
            })
            .collect();
        symbols.push(String::new());
        symbols.sort();
        symbols.dedup();
        let name = ulid.to_string();
        let write_error = |source| Error::WriteBlock {
            block: name.clone(),
            source,
        };
        let mut writer = BlockWriter::create(&self.dir, meta, symbols).map_err(write_error)?;
        for (labels, samples) in series {
            let chunks = encode_chunks(samples);
            if chunks.is_empty() {
                continue;
            }
            writer.add_series(labels, &chunks).map_err(write_error)?;
        }
        let (dir, meta) = writer.finish().map_err(write_error)?;
        sync_dir_files(&dir);
        tracing::info!(block = %name, min_time = meta.min_time, max_time = meta.max_time, series = meta.stats.num_series, "cut block");
        Block::open(&dir).map_err(|source| Error::ReadBlock {
            block: name.clone(),
            source,
        })
    }

    /// Replaces the WAL with the head's samples (tmp, fsync, rename, fsync of the directory).
    fn rewrite_wal(&self, inner: &mut Inner) -> Result<()> {
        let path = wal_path(&self.dir);
        let tmp = path.with_extension("wal.tmp");
        let samples: Vec<(&Labels, i64, f64)> = inner
            .head
            .iter()
            .flat_map(|(labels, samples)| samples.iter().map(move |(t, v)| (labels, *t, *v)))
            .collect();
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            for batch in samples.chunks(10_000) {
                file.write_all(&encode_record(batch))?;
            }
            file.sync_all()
        };
        write().map_err(|err| Error::io("write wal", &tmp, err))?;
        std::fs::rename(&tmp, &path).map_err(|err| Error::io("replace wal", &path, err))?;
        if let Some(parent) = path.parent()
            && let Ok(dir) = std::fs::File::open(parent)
        {
            let _ = dir.sync_all();
        }
        inner.wal = open_wal_for_append(&path)?;
        Ok(())
    }

    fn apply_retention(&self, inner: &mut Inner, now_ms: i64) {
        if self.retention <= 0 {
            return;
        }
        let oldest_kept = now_ms.saturating_sub(self.retention);
        inner.blocks.retain(|block| {
            if block.meta().max_time >= oldest_kept {
                return true;
            }
            tracing::info!(block = %block.meta().ulid, "deleting block past retention");
            if let Err(err) = std::fs::remove_dir_all(block.dir()) {
                tracing::warn!(block = %block.meta().ulid, error = %err, "delete block past retention");
                return true;
            }
            false
        });
    }

    /// Cuts due blocks and applies retention without appending (a periodic tick, so blocks
    /// are cut and deleted even when no rule writes).
    pub fn maintain(&self, now_ms: i64) -> Result<()> {
        let clock = self
            .writers
            .lock()
            .keys()
            .next()
            .map_or(now_ms, |oldest| now_ms.min(*oldest));
        let mut inner = self.inner.lock();
        self.cut(&mut inner, Some(clock), now_ms)
    }

    /// Announces an evaluation at `t` (ms) whose samples will be appended later: until the
    /// returned guard drops, the clock does not cut the window holding `t`.
    pub fn begin_write(self: &Arc<Self>, t: i64) -> PendingWrite {
        *self.writers.lock().entry(t).or_default() += 1;
        PendingWrite {
            tsdb: Arc::clone(self),
            t,
        }
    }

    /// Syncs the WAL to disk (at shutdown).
    pub fn close(&self) -> Result<()> {
        let mut inner = self.inner.lock();
        let path = wal_path(&self.dir);
        inner
            .wal
            .flush()
            .and_then(|()| inner.wal.get_ref().sync_all())
            .map_err(|err| Error::io("sync wal", &path, err))
    }

    /// The oldest sample time held (blocks or head), if any.
    pub fn min_time(&self) -> Option<i64> {
        let inner = self.inner.lock();
        let blocks = inner.blocks.iter().map(|b| b.meta().min_time).min();
        let head = inner
            .head
            .values()
            .filter_map(|s| s.first().map(|(t, _)| *t))
            .min();
        match (blocks, head) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Series matching `matchers` with data in `[mint, maxt]`, sorted by labels, each with its
    /// block chunks (passed through) and head chunks (encoded now), in time order.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<SeriesChunks>> {
        let (blocks, head) = {
            let inner = self.inner.lock();
            let head: Vec<(Labels, Vec<(i64, f64)>)> = inner
                .head
                .iter()
                .filter(|(labels, _)| matches_all(labels, matchers))
                .filter_map(|(labels, samples)| {
                    let selected: Vec<(i64, f64)> = samples
                        .iter()
                        .copied()
                        .filter(|(t, _)| *t >= mint && *t <= maxt)
                        .collect();
                    (!selected.is_empty()).then(|| (labels.clone(), selected))
                })
                .collect();
            (inner.blocks.clone(), head)
        };
        let mut merged: BTreeMap<Labels, Vec<SeriesChunk>> = BTreeMap::new();
        for block in blocks {
            let meta = block.meta();
            if meta.max_time <= mint || meta.min_time > maxt {
                continue;
            }
            let read_error = |source| Error::ReadBlock {
                block: meta.ulid.to_string(),
                source,
            };
            for series in block.select(matchers, mint, maxt).map_err(read_error)? {
                let series = series.map_err(read_error)?;
                let entry = merged.entry(series.labels.clone()).or_default();
                for chunk_meta in &series.chunks {
                    let chunk = block.chunk(chunk_meta.chunk_ref).map_err(read_error)?;
                    entry.push(SeriesChunk {
                        min_time: chunk_meta.min_time,
                        max_time: chunk_meta.max_time,
                        chunk,
                    });
                }
            }
        }
        for (labels, samples) in head {
            merged
                .entry(labels)
                .or_default()
                .extend(encode_chunks(&samples));
        }
        Ok(merged
            .into_iter()
            .map(|(labels, mut chunks)| {
                chunks.sort_by_key(|chunk| chunk.min_time);
                SeriesChunks { labels, chunks }
            })
            .collect())
    }

    /// The last sample of exactly `labels` in `[mint, maxt]` (for the `for`-state restore).
    pub fn last_sample(&self, labels: &Labels, mint: i64, maxt: i64) -> Result<Option<(i64, f64)>> {
        let matchers: Vec<Matcher> = labels
            .iter()
            .map(|label| Matcher::equal(label.name.clone(), label.value.clone()))
            .collect();
        let mut last: Option<(i64, f64)> = None;
        for series in self.select(&matchers, mint, maxt)? {
            if series.labels != *labels {
                continue;
            }
            for chunk in &series.chunks {
                let iter = match chunk.chunk.xor_iter() {
                    Ok(iter) => iter,
                    Err(_) => continue,
                };
                for (t, v) in iter.flatten() {
                    if t >= mint && t <= maxt && last.is_none_or(|(lt, _)| t >= lt) {
                        last = Some((t, v));
                    }
                }
            }
        }
        Ok(last)
    }

    /// Number of series in the head and number of blocks (for metrics and tests).
    pub fn stats(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        (inner.head.len(), inner.blocks.len())
    }
}

fn matches_all(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .all(|matcher| matcher.matches(labels.get(&matcher.name).unwrap_or("")))
}

/// fsyncs the files of a freshly written block (the writer renames it into place).
fn sync_dir_files(dir: &Path) {
    let sync = |path: &Path| {
        if let Ok(file) = std::fs::File::open(path) {
            let _ = file.sync_all();
        }
    };
    for name in ["index", "meta.json", "tombstones"] {
        sync(&dir.join(name));
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("chunks")) {
        for entry in entries.flatten() {
            sync(&entry.path());
        }
    }
    sync(&dir.join("chunks"));
    sync(dir);
}

#[cfg(test)]
mod tests;
