//! Downsampling: raw blocks to 5m aggregates, 5m aggregates to 1h, built exactly as Thanos
//! builds them (reference/thanos.md 6.4 and 6.6; Thanos `pkg/compact/downsample`), so that
//! Strata's querier and Thanos's read the same values from blocks either wrote.
//!
//! - Windows: an aggregate's timestamp is the end of its window, `t - t % res + res - 1`,
//!   clipped to the last sample of the batch.
//! - Per window: count, sum, min, max, and the counter: a running total since the start of the
//!   batch with resets applied (`v < last` adds `v`, otherwise `v - last`), starting at the
//!   first value.
//! - Counter chunks carry the batch's first raw sample at its own timestamp before the window
//!   points, and its last raw value again at the final window's timestamp; [`CounterResets`]
//!   reads them back into one monotonic series across chunks (and blocks), detecting resets
//!   between chunks from those true first and last values.
//! - Raw series are cut into batches of about `len / n + 1` samples extended to a window
//!   boundary, `n` chosen so that each chunk holds at most about 140 aggregates (assuming one
//!   raw sample per minute); aggregates are re-aggregated along their chunk boundaries.
//! - NaN samples are skipped (stale markers are NaN), out-of-order samples dropped.
//!
//! Native-histogram chunks are carried by this crate but not decoded: they are left out of
//! downsampled blocks (their raw data stays in the raw blocks).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use ulid::Ulid;

use crate::block::{Block, BlockWriter, CHUNKS_DIRNAME, INDEX_FILENAME, SeriesChunk};
use crate::chunkenc::{AggrChunk, AggrType, Chunk, Encoding, XorAppender};
use crate::dedup::{BoxedSource, SampleSource};
use crate::meta::BlockMeta;
use crate::{Error, Result};

/// Resolution of raw blocks.
pub const RES_RAW: i64 = 0;
/// 5 minutes, the first downsampling level (ms).
pub const RES_5M: i64 = 5 * 60 * 1000;
/// 1 hour, the second downsampling level (ms).
pub const RES_1H: i64 = 60 * 60 * 1000;
/// Raw blocks spanning at least this long are downsampled to 5m (40 h).
pub const RANGE_FOR_5M: i64 = 40 * 60 * 60 * 1000;
/// 5m blocks spanning at least this long are downsampled to 1h (10 days).
pub const RANGE_FOR_1H: i64 = 10 * 24 * 60 * 60 * 1000;

/// Prometheus's stale marker, a NaN with this bit pattern.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The end of the window of `resolution` that `t` falls into (inclusive).
pub fn current_window(t: i64, resolution: i64) -> i64 {
    t - (t % resolution) + resolution - 1
}

/// How full `[mint, maxt]` is with `count` samples every `step`, at most 1.
fn range_fullness(mint: i64, maxt: i64, step: i64, count: usize) -> f64 {
    let fullness = count as f64 / ((maxt - mint) as f64 / step as f64);
    if fullness > 1.0 { 1.0 } else { fullness }
}

/// How many chunks a series is cut into: each should hold at most about 140 aggregates.
fn target_chunk_count(mint: i64, maxt: i64, in_res: i64, out_res: i64, count: usize) -> usize {
    let max_samples = ((maxt - mint) / out_res) as f64;
    // Go's float-to-int conversion truncates; NaN (no samples) becomes 0 here.
    let expected = (max_samples * range_fullness(mint, maxt, in_res, count)) as i64 + 1;
    let mut chunks = 1i64;
    while expected / chunks > 140 {
        chunks += 1;
    }
    chunks as usize
}

/// Running statistics of one batch of samples.
#[derive(Debug, Clone, Copy)]
struct Aggregator {
    /// Samples seen in the whole batch.
    total: usize,
    /// Samples in the current window.
    count: usize,
    sum: f64,
    min: f64,
    max: f64,
    /// Counter state since the start of the batch, resets applied.
    counter: f64,
    last: f64,
}

impl Default for Aggregator {
    fn default() -> Self {
        Aggregator {
            total: 0,
            count: 0,
            sum: 0.0,
            min: f64::MAX,
            max: -f64::MAX,
            counter: 0.0,
            last: 0.0,
        }
    }
}

impl Aggregator {
    /// Starts a new window (the counter carries on).
    fn reset(&mut self) {
        self.count = 0;
        self.sum = 0.0;
        self.min = f64::MAX;
        self.max = -f64::MAX;
    }

    fn add(&mut self, v: f64) {
        if self.total > 0 {
            if v < self.last {
                self.counter += v;
            } else {
                self.counter += v - self.last;
            }
        } else {
            self.counter = v;
        }
        self.last = v;
        self.sum += v;
        self.count += 1;
        self.total += 1;
        if v < self.min {
            self.min = v;
        }
        if v > self.max {
            self.max = v;
        }
    }
}

/// Aggregates `data` window by window, calling `add` with each window's (clipped) end and
/// the aggregator; returns the last window's timestamp.
fn downsample_batch(
    data: &[(i64, f64)],
    resolution: i64,
    mut add: impl FnMut(i64, &Aggregator) -> Result<()>,
) -> Result<i64> {
    let mut aggregator = Aggregator::default();
    let mut next_t = -1i64;
    let last_t = data.last().map_or(0, |s| s.0);
    for &(t, v) in data {
        if t > next_t {
            if next_t != -1 {
                add(next_t, &aggregator)?;
            }
            aggregator.reset();
            next_t = current_window(t, resolution).min(last_t);
        }
        aggregator.add(v);
    }
    if aggregator.total > 0 {
        add(next_t, &aggregator)?;
    }
    Ok(next_t)
}

fn append(appender: &mut XorAppender, t: i64, v: f64) -> Result<()> {
    appender.append(t, v)
}

/// Appends the samples of an XOR chunk to `out` as Thanos expands them: stale markers
/// skipped, samples that go back in time (or before 0) dropped.
pub fn expand_xor(chunk: &Chunk, out: &mut Vec<(i64, f64)>) -> Result<()> {
    let mut last_t = 0i64;
    let mut iterator = chunk.xor_iter()?;
    while let Some((t, v)) = iterator.next_sample()? {
        if v.to_bits() == STALE_NAN_BITS {
            continue;
        }
        if t >= last_t {
            out.push((t, v));
            last_t = t;
        }
    }
    Ok(())
}

/// Aggregate chunks of a raw float series (sorted, stale markers removed) at `resolution`.
pub fn downsample_raw(data: &[(i64, f64)], resolution: i64) -> Result<Vec<SeriesChunk>> {
    let (Some(first), Some(last)) = (data.first(), data.last()) else {
        return Ok(Vec::new());
    };
    let chunks = target_chunk_count(first.0, last.0, 60 * 1000, resolution, data.len());
    downsample_raw_loop(data, resolution, chunks)
}

fn downsample_raw_loop(
    data: &[(i64, f64)],
    resolution: i64,
    chunks: usize,
) -> Result<Vec<SeriesChunk>> {
    let batch_size = data.len() / chunks.max(1) + 1;
    let mut out = Vec::with_capacity(chunks);
    let mut rest = data;
    let mut batch = Vec::with_capacity(batch_size * 2);
    while !rest.is_empty() {
        let mut j = batch_size.min(rest.len());
        let window = current_window(rest[j - 1].0, resolution);
        // Take the rest of the window too, so batches end on window boundaries.
        while j < rest.len() && rest[j].0 <= window {
            j += 1;
        }
        batch.clear();
        batch.extend(rest[..j].iter().filter(|s| !s.1.is_nan()));
        rest = &rest[j..];
        if batch.is_empty() {
            continue;
        }
        out.push(downsample_float_batch(&batch, resolution)?);
    }
    Ok(out)
}

fn downsample_float_batch(batch: &[(i64, f64)], resolution: i64) -> Result<SeriesChunk> {
    let mut appenders: [XorAppender; 5] = Default::default();
    let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
    let (first_t, first_v) = batch[0];
    append(&mut appenders[AggrType::Counter as usize], first_t, first_v)?;
    let last_t = downsample_batch(batch, resolution, |t, a| {
        mint = mint.min(t);
        maxt = maxt.max(t);
        append(&mut appenders[AggrType::Sum as usize], t, a.sum)?;
        append(&mut appenders[AggrType::Min as usize], t, a.min)?;
        append(&mut appenders[AggrType::Max as usize], t, a.max)?;
        append(&mut appenders[AggrType::Count as usize], t, a.count as f64)?;
        append(&mut appenders[AggrType::Counter as usize], t, a.counter)
    })?;
    let last_v = batch[batch.len() - 1].1;
    append(&mut appenders[AggrType::Counter as usize], last_t, last_v)?;
    let chunks = appenders.map(|a| Some(Chunk::new(Encoding::Xor, a.bytes())));
    Ok(SeriesChunk {
        min_time: mint,
        max_time: maxt,
        chunk: AggrChunk::new(chunks).to_chunk(),
    })
}

/// Re-aggregates the aggregate chunks of one series (`mint`/`maxt`: the first chunk's min and
/// the last chunk's max time) from `in_res` to `out_res`, along chunk boundaries.
pub fn downsample_aggr(
    chunks: &[AggrChunk],
    mint: i64,
    maxt: i64,
    in_res: i64,
    out_res: i64,
) -> Result<Vec<SeriesChunk>> {
    if chunks.is_empty() {
        return Ok(Vec::new());
    }
    let samples: usize = chunks
        .iter()
        .map(|c| {
            c.get(AggrType::Count)
                .and_then(Chunk::num_samples)
                .map_or(0, usize::from)
        })
        .sum();
    let target = target_chunk_count(mint, maxt, in_res, out_res, samples);
    downsample_aggr_loop(chunks, out_res, target)
}

fn downsample_aggr_loop(
    chunks: &[AggrChunk],
    out_res: i64,
    target: usize,
) -> Result<Vec<SeriesChunk>> {
    // Keep at least one chunk per batch (Thanos's integer division cannot reach 0 on its
    // own data, but a hand-made block must not loop forever).
    let batch_size = (chunks.len() / target.max(1)).max(1);
    let mut out = Vec::with_capacity(target);
    let mut buffer = Vec::new();
    for part in chunks.chunks(batch_size) {
        let chunk = downsample_aggr_batch(part, &mut buffer, out_res)?;
        if chunk.min_time == i64::MAX || chunk.max_time == i64::MIN {
            return Err(Error::corrupt(
                "aggr chunk",
                0,
                format!(
                    "invalid range for downsampled aggregate chunk: mint={} maxt={}",
                    chunk.min_time, chunk.max_time
                ),
            ));
        }
        out.push(chunk);
    }
    Ok(out)
}

/// Which value of a window's statistics an aggregate keeps.
type AggregateValue = fn(&Aggregator) -> f64;

fn downsample_aggr_batch(
    part: &[AggrChunk],
    buffer: &mut Vec<(i64, f64)>,
    resolution: i64,
) -> Result<SeriesChunk> {
    let mut chunks: [Option<Chunk>; 5] = Default::default();
    let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
    let generic: [(AggrType, AggregateValue); 4] = [
        // Counts of counts are summed.
        (AggrType::Count, |a| a.sum),
        (AggrType::Sum, |a| a.sum),
        (AggrType::Min, |a| a.min),
        (AggrType::Max, |a| a.max),
    ];
    for (aggr, value) in generic {
        buffer.clear();
        for chunk in part {
            if let Some(sub) = chunk.get(aggr) {
                expand_xor(sub, buffer)?;
            }
        }
        if buffer.is_empty() {
            continue;
        }
        let mut appender = XorAppender::new();
        downsample_batch(buffer, resolution, |t, a| {
            mint = mint.min(t);
            maxt = maxt.max(t);
            append(&mut appender, t, value(a))
        })?;
        chunks[aggr as usize] = Some(Chunk::new(Encoding::Xor, appender.bytes()));
    }

    // Counters: one monotonic series across the chunks, then re-windowed.
    let sources: Vec<BoxedSource<'_, Error>> = part
        .iter()
        .filter_map(|chunk| chunk.get(AggrType::Counter))
        .map(|sub| -> Result<BoxedSource<'_, Error>> {
            let mut decoded = Vec::new();
            sub.xor_iter()?.decode_into(&mut decoded)?;
            Ok(Box::new(crate::dedup::VecSource::new(decoded)))
        })
        .collect::<Result<_>>()?;
    let mut counter = CounterResets::new(sources);
    buffer.clear();
    let mut last_t = 0i64;
    while let Some((t, v)) = counter.next_sample()? {
        // As Thanos expands it: stale markers and steps back in time dropped.
        if v.to_bits() == STALE_NAN_BITS {
            continue;
        }
        if t >= last_t {
            buffer.push((t, v));
            last_t = t;
        }
    }
    if let Some(&(first_t, first_v)) = buffer.first() {
        let mut appender = XorAppender::new();
        append(&mut appender, first_t, first_v)?;
        let last_window = downsample_batch(buffer, resolution, |t, a| {
            mint = mint.min(t);
            maxt = maxt.max(t);
            append(&mut appender, t, a.counter)
        })?;
        append(&mut appender, last_window, counter.last_raw_value())?;
        chunks[AggrType::Counter as usize] = Some(Chunk::new(Encoding::Xor, appender.bytes()));
    }
    Ok(SeriesChunk {
        min_time: mint,
        max_time: maxt,
        chunk: AggrChunk::new(chunks).to_chunk(),
    })
}

/// Thanos's `ApplyCounterResetsSeriesIterator`: the counter samples of consecutive chunks
/// (counter aggregates, or raw counter chunks) as one monotonically increasing series.
///
/// A sample with the same timestamp as the previous one is not returned: it is the true last
/// raw value of its chunk, against which the next chunk's first value is compared to tell a
/// reset between chunks from an increase. Samples that go back in time are skipped, NaN too.
/// Resets are hidden from what follows, which suits rate and increase (and, as in Thanos,
/// makes `resets` read 0).
pub struct CounterResets<'a, E> {
    chunks: std::vec::IntoIter<BoxedSource<'a, E>>,
    current: Option<BoxedSource<'a, E>>,
    started: bool,
    last_t: i64,
    last_v: f64,
    total: f64,
}

impl<'a, E> CounterResets<'a, E> {
    /// Reads `chunks` in order.
    pub fn new(chunks: Vec<BoxedSource<'a, E>>) -> Self {
        let mut chunks = chunks.into_iter();
        let current = chunks.next();
        CounterResets {
            chunks,
            current,
            started: false,
            last_t: 0,
            last_v: 0.0,
            total: 0.0,
        }
    }

    /// The last raw value seen (the true value behind the last returned total).
    pub fn last_raw_value(&self) -> f64 {
        self.last_v
    }
}

impl<E> SampleSource for CounterResets<'_, E> {
    type Error = E;

    fn next_sample(&mut self) -> std::result::Result<Option<(i64, f64)>, E> {
        loop {
            let Some(current) = self.current.as_mut() else {
                return Ok(None);
            };
            let Some((t, v)) = current.next_sample()? else {
                self.current = self.chunks.next();
                continue;
            };
            if v.is_nan() {
                continue;
            }
            if !self.started {
                self.started = true;
                self.last_t = t;
                self.last_v = v;
                self.total = v;
                return Ok(Some((t, v)));
            }
            if t > self.last_t {
                if v >= self.last_v {
                    self.total += v - self.last_v;
                } else {
                    self.total += v;
                }
                self.last_t = t;
                self.last_v = v;
                return Ok(Some((t, self.total)));
            }
            if t == self.last_t {
                self.last_v = v;
            }
        }
    }
}

/// What one block's downsampling did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownsampleStats {
    /// Series written.
    pub series: u64,
    /// Raw (or input aggregate) samples read.
    pub samples_in: u64,
    /// Aggregate chunks written.
    pub chunks: u64,
}

/// The meta of the block downsampled from `source` to `resolution`: the source's meta
/// (compaction section included, so both blocks name the same sources) with a new ULID, the
/// resolution, and the compactor as producer.
pub fn downsampled_meta(source: &BlockMeta, ulid: Ulid, resolution: i64) -> BlockMeta {
    let mut meta = source.clone();
    meta.ulid = ulid;
    meta.stats = Default::default();
    let thanos = meta.thanos.get_or_insert_with(Default::default);
    thanos.downsample.resolution = resolution;
    thanos.source = "compactor".to_owned();
    thanos.files.clear();
    thanos.segment_files.clear();
    thanos.upload_time = None;
    thanos.index_stats = Default::default();
    meta
}

/// Downsamples `source` into a new block under `parent_dir` described by `meta` (see
/// [`downsampled_meta`]); the target resolution is the meta's. Series are streamed one at a
/// time. Deleted intervals are not applied (as in Thanos: blocks in a bucket have none).
pub fn downsample_block(
    source: &Block,
    parent_dir: &Path,
    meta: BlockMeta,
    cancel: &AtomicBool,
) -> Result<(PathBuf, BlockMeta, DownsampleStats)> {
    let in_res = source.meta().resolution();
    let out_res = meta.resolution();
    if out_res <= in_res {
        return Err(Error::InvalidInput {
            writer: "downsampler",
            detail: format!("target resolution {out_res} not lower than the block's {in_res}"),
        });
    }
    let index_error = |e: Error| e.in_block("read", source.name(), INDEX_FILENAME);
    let chunk_error = |e: Error| e.in_block("read", source.name(), CHUNKS_DIRNAME);
    let symbols = source
        .index()
        .symbols()
        .iter()
        .map(|s| s.map(str::to_owned))
        .collect::<Result<Vec<_>>>()
        .map_err(index_error)?;
    let mut writer = BlockWriter::create(parent_dir, meta, symbols)?;
    let mut stats = DownsampleStats::default();
    let postings = source.index().all_postings().map_err(index_error)?;
    let mut samples: Vec<(i64, f64)> = Vec::new();
    let mut output: Vec<SeriesChunk> = Vec::new();
    for series_ref in postings.iter() {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let (labels, metas) = source.series(series_ref)?;
        if let Some(pair) = metas.windows(2).find(|w| w[0].max_time >= w[1].min_time) {
            return Err(Error::corrupt(
                "series",
                u64::from(series_ref) * 16,
                format!(
                    "series {labels} has overlapping chunks [{}, {}] and [{}, {}]",
                    pair[0].min_time, pair[0].max_time, pair[1].min_time, pair[1].max_time
                ),
            )
            .in_block("read", source.name(), INDEX_FILENAME));
        }
        output.clear();
        samples.clear();
        if in_res == RES_RAW {
            for chunk_meta in &metas {
                let chunk = source.chunk(chunk_meta.chunk_ref)?;
                if chunk.encoding != Encoding::Xor {
                    // A run of float samples ends at a histogram chunk, as in Thanos.
                    output.extend(downsample_raw(&samples, out_res)?);
                    samples.clear();
                    continue;
                }
                expand_xor(&chunk, &mut samples).map_err(chunk_error)?;
            }
            stats.samples_in += samples.len() as u64;
            output.extend(downsample_raw(&samples, out_res)?);
        } else {
            let mut aggregates: Vec<AggrChunk> = Vec::with_capacity(metas.len());
            let (mut mint, mut maxt) = (0, 0);
            for chunk_meta in &metas {
                let chunk = source.chunk(chunk_meta.chunk_ref)?;
                let converted: Vec<SeriesChunk> = match chunk.encoding {
                    Encoding::Aggr => vec![SeriesChunk {
                        min_time: chunk_meta.min_time,
                        max_time: chunk_meta.max_time,
                        chunk,
                    }],
                    // A raw chunk in a downsampled block (Thanos issue 5272): empty ones are
                    // skipped, others converted to 5m aggregates first.
                    Encoding::Xor if chunk.num_samples().unwrap_or(0) > 0 => {
                        samples.clear();
                        expand_xor(&chunk, &mut samples).map_err(chunk_error)?;
                        downsample_raw(&samples, RES_5M)?
                    }
                    _ => Vec::new(),
                };
                for converted in converted {
                    let aggregate =
                        AggrChunk::decode(&converted.chunk.data).map_err(chunk_error)?;
                    // Histogram aggregates (counter as float histogram) are not re-aggregated.
                    if aggregate
                        .get(AggrType::Counter)
                        .is_some_and(|c| c.encoding != Encoding::Xor)
                    {
                        continue;
                    }
                    if aggregates.is_empty() {
                        mint = converted.min_time;
                    }
                    maxt = converted.max_time;
                    stats.samples_in += aggregate
                        .get(AggrType::Count)
                        .and_then(Chunk::num_samples)
                        .map_or(0, u64::from);
                    aggregates.push(aggregate);
                }
            }
            output.extend(
                downsample_aggr(&aggregates, mint, maxt, in_res, out_res).map_err(chunk_error)?,
            );
        }
        if output.is_empty() {
            continue;
        }
        stats.series += 1;
        stats.chunks += output.len() as u64;
        writer.add_series(&labels, &output)?;
    }
    let (dir, meta) = writer.finish()?;
    Ok((dir, meta, stats))
}

#[cfg(test)]
mod tests;
