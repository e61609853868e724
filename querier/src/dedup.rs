//! Turning the chunks of one merged series into samples, and replica deduplication
//! (reference/thanos.md 4.4):
//!
//! - [`ChunkIterator`]: the samples of non-overlapping chunks, each chunk decoded only when the
//!   iteration reaches it (a seek past a chunk skips it undecoded). Downsampled chunks are read
//!   through the aggregate the query asked for ([`ChunkReadMode`]); in count mode raw chunks
//!   read as 1 per sample so a series mixing raw and downsampled chunks is one series of raw
//!   sample counts.
//! - [`overlap_split`]: the chunks of a series merged from several replicas are assigned
//!   greedily to "virtual replicas" whose chunks do not overlap.
//! - [`series_iterator`]: all of it for one series. The replicas are merged by the shared
//!   implementation in [`strata_tsdb::dedup`] (Thanos's penalty algorithm, or the chained
//!   merge), the same code the compactor deduplicates replicas with.

use strata_promql::ValueKind;
use strata_promql::storage::SampleIterator;
use strata_promql::value::{Point, is_stale_nan};
use strata_proto::thanos;
use strata_tsdb::chunkenc::XorIterator;
use strata_tsdb::dedup;
pub use strata_tsdb::dedup::DedupFunc;

use crate::error::{Error, Result};

/// Which data of a downsampled chunk the query reads. Raw chunks are read as they are, except
/// in [`ChunkReadMode::Count`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChunkReadMode {
    /// sum / count per window: the average (plain selectors, `sum`, `avg` and the rest).
    #[default]
    Average,
    /// The number of raw samples per window (`count_over_time`, `count`); a raw chunk's
    /// samples read as 1 each (stale markers kept), so every value is a count of raw samples
    /// and the series is served as [`strata_promql::ValueKind::RawSampleCounts`].
    Count,
    Sum,
    Min,
    Max,
    /// The counter aggregate (rate, increase, irate, resets).
    Counter,
}

impl ChunkReadMode {
    /// The mode for the PromQL function or aggregation enclosing a selector (thanos.md 4.5,
    /// Thanos's `aggrsFromFunc`). One deliberate difference: Thanos sends `count_values` (a
    /// `count_` prefix) to the COUNT aggregate, which would group series by their per-window
    /// sample counts; here it reads the average like every other value-consuming aggregation.
    /// `count` itself reads COUNT as Thanos does: it counts series, the values do not matter.
    pub fn for_function(func: Option<&str>) -> Self {
        let Some(func) = func else {
            return Self::Average;
        };
        match func {
            "min" | "min_over_time" => Self::Min,
            "max" | "max_over_time" => Self::Max,
            "count" | "count_over_time" => Self::Count,
            "sum_over_time" => Self::Sum,
            "rate" | "increase" | "irate" | "resets" | "xrate" | "xincrease" => Self::Counter,
            _ => Self::Average,
        }
    }

    /// The aggregates a store must fill for this mode.
    pub fn aggregates(self) -> Vec<thanos::Aggr> {
        match self {
            Self::Average => vec![thanos::Aggr::Count, thanos::Aggr::Sum],
            Self::Count => vec![thanos::Aggr::Count],
            Self::Sum => vec![thanos::Aggr::Sum],
            Self::Min => vec![thanos::Aggr::Min],
            Self::Max => vec![thanos::Aggr::Max],
            Self::Counter => vec![thanos::Aggr::Counter],
        }
    }

    /// Whether replica switches must be counter-adjusted.
    pub fn is_counter(self) -> bool {
        self == Self::Counter
    }

    /// What the values read in this mode stand for.
    pub fn value_kind(self) -> ValueKind {
        match self {
            Self::Count => ValueKind::RawSampleCounts,
            _ => ValueKind::Observed,
        }
    }
}

/// Decodes an XOR chunk into `out`.
fn decode_xor(data: &[u8], out: &mut Vec<(i64, f64)>) -> strata_tsdb::Result<()> {
    XorIterator::new(data)?.decode_into(out)
}

fn is_xor(chunk: &thanos::Chunk) -> bool {
    chunk.r#type == thanos::chunk::Encoding::Xor as i32
}

/// The samples of one chunk for `mode`; histogram chunks (not evaluated by this engine) yield
/// nothing.
pub fn decode_chunk(
    chunk: &thanos::AggrChunk,
    mode: ChunkReadMode,
    out: &mut Vec<(i64, f64)>,
) -> strata_tsdb::Result<()> {
    if let Some(raw) = &chunk.raw {
        if is_xor(raw) {
            let first = out.len();
            decode_xor(&raw.data, out)?;
            if mode == ChunkReadMode::Count {
                // Each raw sample is one raw sample; a stale marker still ends the series.
                for (_, v) in out.iter_mut().skip(first) {
                    if !is_stale_nan(*v) {
                        *v = 1.0;
                    }
                }
            }
        }
        return Ok(());
    }
    let single = |part: &Option<thanos::Chunk>, out: &mut Vec<(i64, f64)>| match part {
        Some(part) if is_xor(part) => decode_xor(&part.data, out),
        _ => Ok(()),
    };
    match mode {
        ChunkReadMode::Count => single(&chunk.count, out),
        ChunkReadMode::Sum => single(&chunk.sum, out),
        ChunkReadMode::Min => single(&chunk.min, out),
        ChunkReadMode::Max => single(&chunk.max, out),
        ChunkReadMode::Counter => single(&chunk.counter, out),
        ChunkReadMode::Average => {
            let (mut sums, mut counts) = (Vec::new(), Vec::new());
            single(&chunk.sum, &mut sums)?;
            single(&chunk.count, &mut counts)?;
            // Both aggregates have one sample per downsampling window at the same timestamps.
            out.extend(
                sums.iter()
                    .zip(&counts)
                    .filter(|((st, _), (ct, _))| st == ct)
                    .map(|(&(t, sum), &(_, count))| (t, sum / count)),
            );
            Ok(())
        }
    }
}

/// Samples of time-ordered, non-overlapping chunks, decoded one chunk at a time.
pub struct ChunkIterator {
    series: String,
    chunks: std::vec::IntoIter<thanos::AggrChunk>,
    mode: ChunkReadMode,
    decoded: Vec<(i64, f64)>,
    position: usize,
    /// Timestamp of the last returned sample: chunks must not go back in time.
    last_t: Option<i64>,
}

impl ChunkIterator {
    pub fn new(series: String, chunks: Vec<thanos::AggrChunk>, mode: ChunkReadMode) -> Self {
        Self {
            series,
            chunks: chunks.into_iter(),
            mode,
            decoded: Vec::new(),
            position: 0,
            last_t: None,
        }
    }

    fn load(&mut self, chunk: &thanos::AggrChunk) -> Result<()> {
        self.decoded.clear();
        self.position = 0;
        decode_chunk(chunk, self.mode, &mut self.decoded).map_err(|source| Error::DecodeChunk {
            series: self.series.clone(),
            source,
        })
    }

    /// The next sample of the decoded chunk that goes forward in time, if the chunk has one.
    fn next_decoded(&mut self) -> Option<Point> {
        while let Some(&(t, v)) = self.decoded.get(self.position) {
            self.position += 1;
            if self.last_t.is_some_and(|last| t <= last) {
                continue;
            }
            self.last_t = Some(t);
            return Some(Point { t, v });
        }
        None
    }

    fn next_point(&mut self) -> Result<Option<Point>> {
        loop {
            if let Some(point) = self.next_decoded() {
                return Ok(Some(point));
            }
            let Some(chunk) = self.chunks.next() else {
                return Ok(None);
            };
            self.load(&chunk)?;
        }
    }

    fn seek_point(&mut self, ts: i64) -> Result<Option<Point>> {
        // Within the decoded chunk first.
        while let Some(&(t, _)) = self.decoded.get(self.position) {
            if t >= ts {
                return self.next_point();
            }
            self.position += 1;
        }
        // Skip whole chunks that end before `ts` without decoding them.
        let remaining = self.chunks.as_slice();
        let skip = remaining
            .iter()
            .take_while(|chunk| chunk.max_time < ts)
            .count();
        if skip > 0 {
            self.chunks.nth(skip - 1);
        }
        while let Some(point) = self.next_point()? {
            if point.t >= ts {
                return Ok(Some(point));
            }
        }
        Ok(None)
    }
}

impl SampleIterator for ChunkIterator {
    fn next_sample(&mut self) -> strata_promql::Result<Option<Point>> {
        self.next_point().map_err(storage_error)
    }

    fn seek(&mut self, ts: i64) -> strata_promql::Result<Option<Point>> {
        self.seek_point(ts).map_err(storage_error)
    }

    /// The default's contract (the first sample after `maxt` is consumed), copying each
    /// decoded chunk in one loop instead of one call per sample.
    fn read_range(
        &mut self,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Point>,
    ) -> strata_promql::Result<()> {
        let Some(first) = self.seek_point(mint).map_err(storage_error)? else {
            return Ok(());
        };
        if first.t > maxt {
            return Ok(());
        }
        out.push(first);
        loop {
            while let Some(point) = self.next_decoded() {
                if point.t > maxt {
                    return Ok(());
                }
                out.push(point);
            }
            let Some(chunk) = self.chunks.next() else {
                return Ok(());
            };
            if !self.read_whole(&chunk, maxt, out).map_err(storage_error)? {
                self.load(&chunk).map_err(storage_error)?;
            }
        }
    }
}

impl ChunkIterator {
    /// Decodes a raw XOR chunk that lies wholly inside `..=maxt` and after every sample
    /// returned so far straight into `out`, skipping the chunk buffer. Returns false, with
    /// `out` as it was, when the chunk is not such a chunk (or its samples break its declared
    /// bounds): the caller then takes the general path.
    fn read_whole(
        &mut self,
        chunk: &thanos::AggrChunk,
        maxt: i64,
        out: &mut Vec<Point>,
    ) -> Result<bool> {
        let Some(raw) = chunk.raw.as_ref().filter(|raw| is_xor(raw)) else {
            return Ok(false);
        };
        if self.mode == ChunkReadMode::Count
            || chunk.max_time > maxt
            || self.last_t.is_some_and(|last| chunk.min_time <= last)
        {
            return Ok(false);
        }
        let before = out.len();
        let (mut last_t, mut in_bounds) = (self.last_t, true);
        let decoded = XorIterator::new(&raw.data).and_then(|mut samples| {
            samples.decode_each(|t, v| {
                if last_t.is_some_and(|last| t <= last) || t > maxt {
                    in_bounds = false;
                    return;
                }
                last_t = Some(t);
                out.push(Point { t, v });
            })
        });
        if decoded.is_err() || !in_bounds {
            out.truncate(before);
            return Ok(false);
        }
        self.decoded.clear();
        self.position = 0;
        self.last_t = last_t;
        Ok(true)
    }
}

/// Most samples of one series decoded ahead of the engine (16 bytes each: 256 KiB); longer
/// series are decoded lazily, a chunk at a time, as the engine reads them.
pub const DECODE_AHEAD_SAMPLES: usize = 16_384;

/// The samples of `chunks` in `[mint, maxt]` decoded now, exactly as [`series_iterator`]
/// would yield them there (the engine reads a series only within its select hints' range),
/// when that is both cheap to hold and certain to be the same: at most
/// [`DECODE_AHEAD_SAMPLES`] samples in chunks that reach into the range, one replica (no two
/// chunks overlap), no counter aggregates, no decode error (the lazy path reports it when the
/// engine reaches the chunk), and every sample inside its chunk's declared bounds (so skipping
/// whole chunks on a seek skips nothing else). `None` otherwise. Sorts `chunks` as
/// [`overlap_split`] does. Chunks wholly outside the range are not decoded; samples outside
/// it are dropped, so the engine takes the buffer whole ([`DecodedSamples::read_range`]).
pub fn decode_ahead(
    chunks: &mut [thanos::AggrChunk],
    mode: ChunkReadMode,
    mint: i64,
    maxt: i64,
) -> Option<Vec<Point>> {
    let in_range = |chunk: &thanos::AggrChunk| chunk.max_time >= mint && chunk.min_time <= maxt;
    let mut samples = 0usize;
    for chunk in chunks.iter() {
        let part = first_chunk(chunk)?;
        if mode.is_counter() && chunk.raw.is_none() {
            return None;
        }
        let [high, low, ..] = part.data[..] else {
            return None;
        };
        if in_range(chunk) {
            samples += usize::from(u16::from_be_bytes([high, low]));
        }
    }
    if samples > DECODE_AHEAD_SAMPLES {
        return None;
    }
    sort_chunks(chunks);
    if chunks
        .windows(2)
        .any(|pair| pair[0].max_time >= pair[1].min_time)
    {
        return None;
    }
    let mut points = Vec::with_capacity(samples);
    let mut decoded = Vec::new();
    let mut last_t: Option<i64> = None;
    for chunk in chunks.iter().filter(|chunk| in_range(chunk)) {
        let (min_time, max_time) = (chunk.min_time, chunk.max_time);
        let from = points.len();
        if let Some(raw) = chunk.raw.as_ref().filter(|raw| is_xor(raw)) {
            if decode_run(&raw.data, mode == ChunkReadMode::Count, last_t, &mut points)? {
                // In order: the chunk's bounds hold when its first and last samples are inside.
                let fresh = points.get(from..).unwrap_or(&[]);
                if let (Some(first), Some(last)) = (fresh.first(), fresh.last()) {
                    if first.t < min_time || last.t > max_time {
                        return None;
                    }
                    last_t = Some(last.t);
                }
                trim_to_range(&mut points, from, mint, maxt);
                continue;
            }
            // Out of order: sample by sample below, as the lazy iterator filters them.
            points.truncate(from);
        }
        let mut in_bounds = true;
        let mut keep = |t: i64, v: f64| {
            if t < min_time || t > max_time {
                in_bounds = false;
            } else if last_t.is_none_or(|last| t > last) {
                last_t = Some(t);
                points.push(Point { t, v });
            }
        };
        match chunk.raw.as_ref().filter(|raw| is_xor(raw)) {
            // Raw XOR samples go straight from the decoder into the series' points (in count
            // mode each one counts 1; a stale marker stays one, as `decode_chunk` does).
            Some(raw) => {
                let count = mode == ChunkReadMode::Count;
                XorIterator::new(&raw.data)
                    .and_then(|mut samples| {
                        samples.decode_each(|t, v| {
                            keep(t, if count && !is_stale_nan(v) { 1.0 } else { v });
                        })
                    })
                    .ok()?;
            }
            _ => {
                decoded.clear();
                decode_chunk(chunk, mode, &mut decoded).ok()?;
                for &(t, v) in &decoded {
                    keep(t, v);
                }
            }
        }
        if !in_bounds {
            return None;
        }
        trim_to_range(&mut points, from, mint, maxt);
    }
    Some(points)
}

/// Drops the samples of `points[from..]` (one chunk's, in time order) outside `[mint, maxt]`:
/// only the chunks at the range's edges have any.
fn trim_to_range(points: &mut Vec<Point>, from: usize, mint: i64, maxt: i64) {
    let fresh = points.get(from..).unwrap_or(&[]);
    let (Some(first), Some(last)) = (fresh.first().map(|p| p.t), fresh.last().map(|p| p.t)) else {
        return;
    };
    if last > maxt {
        let keep = fresh.partition_point(|p| p.t <= maxt);
        points.truncate(from + keep);
    }
    if first < mint {
        let fresh = points.get(from..).unwrap_or(&[]);
        let before = fresh.partition_point(|p| p.t < mint);
        points.drain(from..from + before);
    }
}

/// Decodes the raw XOR chunk `data` onto `points` (in count mode each sample reads 1, a stale
/// marker stays one). `Some(true)` when every sample came after the one before it and after
/// `last_t`; `Some(false)` when not (the caller redoes the chunk sample by sample); `None` on a
/// decode error. The loop only pushes and compares: no bounds or filtering per sample.
#[inline]
fn decode_run(
    data: &[u8],
    count: bool,
    last_t: Option<i64>,
    points: &mut Vec<Point>,
) -> Option<bool> {
    let mut samples = XorIterator::new(data).ok()?;
    let mut prev = last_t.unwrap_or(i64::MIN);
    let mut ordered = true;
    let decoded = if count {
        samples.decode_each(|t, v| {
            ordered &= t > prev;
            prev = t;
            let v = if is_stale_nan(v) { v } else { 1.0 };
            points.push(Point { t, v });
        })
    } else {
        samples.decode_each(|t, v| {
            ordered &= t > prev;
            prev = t;
            points.push(Point { t, v });
        })
    };
    decoded.ok()?;
    Some(ordered)
}

/// Samples decoded ahead ([`decode_ahead`]), read as [`ChunkIterator`] reads them.
#[derive(Debug)]
pub struct DecodedSamples {
    points: Vec<Point>,
    position: usize,
}

impl DecodedSamples {
    pub fn new(points: Vec<Point>) -> Self {
        Self {
            points,
            position: 0,
        }
    }
}

impl SampleIterator for DecodedSamples {
    fn next_sample(&mut self) -> strata_promql::Result<Option<Point>> {
        let point = self.points.get(self.position).copied();
        if point.is_some() {
            self.position += 1;
        }
        Ok(point)
    }

    fn seek(&mut self, ts: i64) -> strata_promql::Result<Option<Point>> {
        let rest = self.points.get(self.position..).unwrap_or(&[]);
        self.position += rest.partition_point(|point| point.t < ts);
        self.next_sample()
    }

    /// As [`ChunkIterator`]'s: the first sample after `maxt`, if any, is consumed. When `out`
    /// is empty and the range holds every sample, the samples are handed over without a copy.
    fn read_range(
        &mut self,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Point>,
    ) -> strata_promql::Result<()> {
        if out.is_empty()
            && self.position == 0
            && self.points.first().is_some_and(|p| p.t >= mint)
            && self.points.last().is_some_and(|p| p.t <= maxt)
        {
            std::mem::swap(out, &mut self.points);
            // `points` now holds the caller's old (empty) buffer: the iterator is at its end.
            self.points.clear();
            return Ok(());
        }
        let Some(first) = self.seek(mint)? else {
            return Ok(());
        };
        if first.t > maxt {
            return Ok(());
        }
        out.push(first);
        let rest = self.points.get(self.position..).unwrap_or(&[]);
        let within = rest.partition_point(|point| point.t <= maxt);
        out.extend_from_slice(rest.get(..within).unwrap_or(&[]));
        self.position += within;
        if self.position < self.points.len() {
            self.position += 1;
        }
        Ok(())
    }
}

/// A querier error as the engine's storage error (the HTTP layer recovers its class).
pub fn storage_error(err: Error) -> strata_promql::Error {
    strata_promql::Error::Storage {
        source: Box::new(err),
    }
}

/// Sorts chunks by (min_time, max_time, raw bytes) and assigns them greedily to virtual
/// replicas: a chunk joins the first replica whose last chunk ends before it starts.
pub fn overlap_split(mut chunks: Vec<thanos::AggrChunk>) -> Vec<Vec<thanos::AggrChunk>> {
    sort_chunks(&mut chunks);
    dedup::overlap_split(chunks, |chunk| (chunk.min_time, chunk.max_time))
}

/// Thanos's chunk order within a merged series.
pub fn sort_chunks(chunks: &mut [thanos::AggrChunk]) {
    chunks.sort_by(|a, b| {
        (a.min_time, a.max_time)
            .cmp(&(b.min_time, b.max_time))
            .then_with(|| first_data(a).cmp(first_data(b)))
    });
}

/// The data of the first present field in Thanos's order raw, count, max, min, sum, counter.
fn first_chunk(chunk: &thanos::AggrChunk) -> Option<&thanos::Chunk> {
    [
        &chunk.raw,
        &chunk.count,
        &chunk.max,
        &chunk.min,
        &chunk.sum,
        &chunk.counter,
    ]
    .into_iter()
    .find_map(Option::as_ref)
}

fn first_data(chunk: &thanos::AggrChunk) -> &[u8] {
    first_chunk(chunk).map_or(&[], |part| part.data.as_ref())
}

/// The identity of a chunk for cross-store deduplication: the store's hash or xxhash64 of
/// the data of its first present field, plus its time range.
pub fn chunk_key(chunk: &thanos::AggrChunk) -> (i64, i64, u64) {
    let hash = match first_chunk(chunk) {
        Some(part) if part.hash != 0 => part.hash,
        Some(part) => xxhash_rust::xxh64::xxh64(&part.data, 0),
        None => 0,
    };
    (chunk.min_time, chunk.max_time, hash)
}

/// Removes chunks that another store already sent (same range and hash).
pub fn dedup_chunks(chunks: &mut Vec<thanos::AggrChunk>) {
    // Copies share their range: chunks that follow each other without overlap (one store, one
    // replica: the common case) have none, and need no hashing.
    if chunks
        .windows(2)
        .all(|pair| pair[0].max_time < pair[1].min_time)
    {
        return;
    }
    let mut seen: std::collections::HashSet<_, foldhash::fast::RandomState> =
        std::collections::HashSet::with_capacity_and_hasher(chunks.len(), Default::default());
    chunks.retain(|chunk| seen.insert(chunk_key(chunk)));
}

/// One virtual replica (an engine sample iterator) as the shared algorithm's sample source.
struct Replica(Box<dyn SampleIterator + Send>);

impl dedup::SampleSource for Replica {
    type Error = strata_promql::Error;

    fn next_sample(&mut self) -> strata_promql::Result<Option<(i64, f64)>> {
        Ok(self.0.next_sample()?.map(|point| (point.t, point.v)))
    }

    fn seek(&mut self, t: i64) -> strata_promql::Result<Option<(i64, f64)>> {
        Ok(self.0.seek(t)?.map(|point| (point.t, point.v)))
    }
}

/// One chunk's counter samples (its raw data, or its counter aggregate), decoded when
/// [`strata_tsdb::downsample::CounterResets`] reaches it.
struct CounterChunk {
    series: String,
    chunk: Option<thanos::AggrChunk>,
    decoded: std::vec::IntoIter<(i64, f64)>,
}

impl dedup::SampleSource for CounterChunk {
    type Error = strata_promql::Error;

    fn next_sample(&mut self) -> strata_promql::Result<Option<(i64, f64)>> {
        if let Some(chunk) = self.chunk.take() {
            let mut decoded = Vec::new();
            decode_chunk(&chunk, ChunkReadMode::Counter, &mut decoded).map_err(|source| {
                storage_error(Error::DecodeChunk {
                    series: std::mem::take(&mut self.series),
                    source,
                })
            })?;
            self.decoded = decoded.into_iter();
        }
        Ok(self.decoded.next())
    }
}

/// The counter aggregates of one virtual replica read as Thanos reads them: one monotonic
/// series across chunks and blocks, resets between chunks detected from the true first and
/// last raw values each counter chunk keeps (reference/thanos.md 6.6). Raw chunks of the same
/// replica go through it too, so a raw block next to a downsampled one joins up.
fn counter_iterator(
    series: &str,
    chunks: Vec<thanos::AggrChunk>,
) -> Box<dyn SampleIterator + Send> {
    let sources = chunks
        .into_iter()
        .map(|chunk| {
            Box::new(CounterChunk {
                series: series.to_owned(),
                chunk: Some(chunk),
                decoded: Vec::new().into_iter(),
            }) as dedup::BoxedSource<'static, strata_promql::Error>
        })
        .collect();
    Box::new(Merged(Box::new(
        strata_tsdb::downsample::CounterResets::new(sources),
    )))
}

/// The merged replicas as an engine sample iterator.
struct Merged(dedup::BoxedSource<'static, strata_promql::Error>);

impl SampleIterator for Merged {
    fn next_sample(&mut self) -> strata_promql::Result<Option<Point>> {
        Ok(self.0.next_sample()?.map(|(t, v)| Point { t, v }))
    }

    fn seek(&mut self, ts: i64) -> strata_promql::Result<Option<Point>> {
        Ok(self.0.seek(ts)?.map(|(t, v)| Point { t, v }))
    }
}

/// The sample iterator of one merged series: chunks split into virtual replicas, each replica
/// read lazily, replicas folded pairwise with `func`.
pub fn series_iterator(
    series_name: String,
    chunks: Vec<thanos::AggrChunk>,
    mode: ChunkReadMode,
    func: DedupFunc,
) -> Box<dyn SampleIterator + Send> {
    let mut replicas: Vec<Box<dyn SampleIterator + Send>> = overlap_split(chunks)
        .into_iter()
        .map(|chunks| {
            // Counter aggregates need the reset-applying reader; raw-only replicas keep the
            // engine's own reset handling (so `resets` still counts resets on raw data).
            if mode.is_counter() && chunks.iter().any(|chunk| chunk.raw.is_none()) {
                counter_iterator(&series_name, chunks)
            } else {
                Box::new(ChunkIterator::new(series_name.clone(), chunks, mode))
                    as Box<dyn SampleIterator + Send>
            }
        })
        .collect();
    if replicas.len() <= 1 {
        return replicas
            .pop()
            .unwrap_or_else(|| Box::new(ChunkIterator::new(series_name, Vec::new(), mode)));
    }
    let sources = replicas.into_iter().map(|replica| {
        Box::new(Replica(replica)) as dedup::BoxedSource<'static, strata_promql::Error>
    });
    match dedup::merge_replicas(sources, func, mode.is_counter()) {
        Some(merged) => Box::new(Merged(merged)),
        None => Box::new(ChunkIterator::new(series_name, Vec::new(), mode)),
    }
}

#[cfg(test)]
pub(crate) mod tests;
