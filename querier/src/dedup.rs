//! Turning the chunks of one merged series into samples, and replica deduplication
//! (reference/thanos.md 4.4):
//!
//! - [`ChunkIterator`]: the samples of non-overlapping chunks, each chunk decoded only when the
//!   iteration reaches it (a seek past a chunk skips it undecoded). Downsampled chunks are read
//!   through the aggregate the query asked for ([`ChunkReadMode`]).
//! - [`overlap_split`]: the chunks of a series merged from several replicas are assigned
//!   greedily to "virtual replicas" whose chunks do not overlap.
//! - [`PenaltyDedupIterator`]: Thanos's penalty algorithm over two replicas: stick to one
//!   replica and switch only when it has a gap longer than about twice its scrape interval;
//!   for counter functions, a switch to a replica whose counter is lower adds the difference
//!   to that replica's later values so the switch does not look like a counter reset.
//! - [`series_iterator`]: all of it for one series.

use strata_promql::storage::SampleIterator;
use strata_promql::value::Point;
use strata_proto::thanos;
use strata_tsdb::chunkenc::XorIterator;

use crate::error::{Error, Result};

/// Penalty applied to the other replica after the first sample (no previous gap known).
const INITIAL_PENALTY_MS: i64 = 5000;

/// Which data of a downsampled chunk the query reads (raw chunks are always read as they are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChunkReadMode {
    /// sum / count per window: the average (plain selectors, `sum`, `avg` and the rest).
    #[default]
    Average,
    Count,
    Sum,
    Min,
    Max,
    /// The counter aggregate (rate, increase, irate, resets).
    Counter,
}

impl ChunkReadMode {
    /// The mode for the PromQL function or aggregation enclosing a selector (thanos.md 4.5).
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
            decode_xor(&raw.data, out)?;
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

    fn next_point(&mut self) -> Result<Option<Point>> {
        loop {
            if let Some(&(t, v)) = self.decoded.get(self.position) {
                self.position += 1;
                if self.last_t.is_some_and(|last| t <= last) {
                    continue;
                }
                self.last_t = Some(t);
                return Ok(Some(Point { t, v }));
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
    let mut replicas: Vec<Vec<thanos::AggrChunk>> = Vec::new();
    for chunk in chunks {
        let target = replicas.iter_mut().find(|replica| {
            replica
                .last()
                .is_some_and(|last| last.max_time < chunk.min_time)
        });
        match target {
            Some(replica) => replica.push(chunk),
            None => replicas.push(vec![chunk]),
        }
    }
    replicas
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
    let mut seen = std::collections::HashSet::with_capacity(chunks.len());
    chunks.retain(|chunk| seen.insert(chunk_key(chunk)));
}

/// Penalty-based deduplication of two replicas of one series.
pub struct PenaltyDedupIterator {
    a: Box<dyn SampleIterator + Send>,
    b: Box<dyn SampleIterator + Send>,
    a_current: Option<Point>,
    b_current: Option<Point>,
    last_t: Option<i64>,
    penalty_a: i64,
    penalty_b: i64,
    /// Counter mode: offsets added to each replica's values, and where the last sample came
    /// from (true = a).
    counter: bool,
    offset_a: f64,
    offset_b: f64,
    last_value: Option<f64>,
    last_from_a: Option<bool>,
    started: bool,
}

impl PenaltyDedupIterator {
    pub fn new(
        a: Box<dyn SampleIterator + Send>,
        b: Box<dyn SampleIterator + Send>,
        counter: bool,
    ) -> Self {
        Self {
            a,
            b,
            a_current: None,
            b_current: None,
            last_t: None,
            penalty_a: 0,
            penalty_b: 0,
            counter,
            offset_a: 0.0,
            offset_b: 0.0,
            last_value: None,
            last_from_a: None,
            started: false,
        }
    }

    /// Advances `current` of one replica to the first sample at or after `target`.
    fn seek_replica(
        iterator: &mut (dyn SampleIterator + Send),
        current: &mut Option<Point>,
        target: i64,
    ) -> strata_promql::Result<()> {
        if let Some(point) = current
            && point.t < target
        {
            *current = iterator.seek(target)?;
        }
        Ok(())
    }

    fn emit(&mut self, from_a: bool, point: Point) -> Point {
        let mut value = point.v;
        if self.counter {
            let offset = if from_a {
                &mut self.offset_a
            } else {
                &mut self.offset_b
            };
            value += *offset;
            if let (Some(last), Some(last_from_a)) = (self.last_value, self.last_from_a)
                && last_from_a != from_a
                && value < last
                && !point.v.is_nan()
            {
                *offset += last - value;
                value = last;
            }
        }
        self.last_value = Some(value);
        self.last_from_a = Some(from_a);
        self.last_t = Some(point.t);
        Point {
            t: point.t,
            v: value,
        }
    }
}

impl SampleIterator for PenaltyDedupIterator {
    fn next_sample(&mut self) -> strata_promql::Result<Option<Point>> {
        if !self.started {
            self.started = true;
            self.a_current = self.a.next_sample()?;
            self.b_current = self.b.next_sample()?;
        } else if let Some(last_t) = self.last_t {
            let target_a = last_t.saturating_add(1).saturating_add(self.penalty_a);
            let target_b = last_t.saturating_add(1).saturating_add(self.penalty_b);
            Self::seek_replica(self.a.as_mut(), &mut self.a_current, target_a)?;
            Self::seek_replica(self.b.as_mut(), &mut self.b_current, target_b)?;
        }
        let gap_penalty = |last_t: Option<i64>, t: i64| match last_t {
            Some(last) => t.saturating_sub(last).saturating_mul(2),
            None => INITIAL_PENALTY_MS,
        };
        let pick_a = match (self.a_current, self.b_current) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                self.penalty_a = 0;
                true
            }
            (None, Some(_)) => {
                self.penalty_b = 0;
                false
            }
            (Some(a), Some(b)) => {
                if a.t <= b.t {
                    self.penalty_b = gap_penalty(self.last_t, a.t);
                    self.penalty_a = 0;
                    true
                } else {
                    self.penalty_a = gap_penalty(self.last_t, b.t);
                    self.penalty_b = 0;
                    false
                }
            }
        };
        let point = if pick_a {
            self.a_current
        } else {
            self.b_current
        };
        Ok(point.map(|point| self.emit(pick_a, point)))
    }
}

/// `--deduplication.func`: how the virtual replicas of one series are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DedupFunc {
    /// Thanos's default: stick to one replica, switch on gaps ([`PenaltyDedupIterator`]).
    #[default]
    Penalty,
    /// Prometheus's chained merge: every sample of every replica in time order, samples with
    /// equal timestamps collapsed into the first replica's ([`ChainMergeIterator`]).
    Chain,
}

impl DedupFunc {
    /// The flag value (`penalty` or `chain`).
    pub fn from_flag(value: &str) -> Self {
        if value == "chain" {
            Self::Chain
        } else {
            Self::Penalty
        }
    }
}

/// Sample-level merge of two replicas: the earlier sample first, equal timestamps once.
pub struct ChainMergeIterator {
    a: Box<dyn SampleIterator + Send>,
    b: Box<dyn SampleIterator + Send>,
    a_current: Option<Point>,
    b_current: Option<Point>,
    started: bool,
}

impl ChainMergeIterator {
    pub fn new(a: Box<dyn SampleIterator + Send>, b: Box<dyn SampleIterator + Send>) -> Self {
        Self {
            a,
            b,
            a_current: None,
            b_current: None,
            started: false,
        }
    }
}

impl SampleIterator for ChainMergeIterator {
    fn next_sample(&mut self) -> strata_promql::Result<Option<Point>> {
        if !self.started {
            self.started = true;
            self.a_current = self.a.next_sample()?;
            self.b_current = self.b.next_sample()?;
        }
        match (self.a_current, self.b_current) {
            (None, None) => Ok(None),
            (Some(a), None) => {
                self.a_current = self.a.next_sample()?;
                Ok(Some(a))
            }
            (None, Some(b)) => {
                self.b_current = self.b.next_sample()?;
                Ok(Some(b))
            }
            (Some(a), Some(b)) => {
                if a.t <= b.t {
                    if a.t == b.t {
                        self.b_current = self.b.next_sample()?;
                    }
                    self.a_current = self.a.next_sample()?;
                    Ok(Some(a))
                } else {
                    self.b_current = self.b.next_sample()?;
                    Ok(Some(b))
                }
            }
        }
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
    let mut replicas = overlap_split(chunks).into_iter();
    let first: Box<dyn SampleIterator + Send> = match replicas.next() {
        Some(chunks) => Box::new(ChunkIterator::new(series_name.clone(), chunks, mode)),
        None => Box::new(ChunkIterator::new(series_name.clone(), Vec::new(), mode)),
    };
    replicas.fold(first, |merged, chunks| {
        let next = Box::new(ChunkIterator::new(series_name.clone(), chunks, mode));
        match func {
            DedupFunc::Penalty => {
                Box::new(PenaltyDedupIterator::new(merged, next, mode.is_counter()))
            }
            DedupFunc::Chain => Box::new(ChainMergeIterator::new(merged, next)),
        }
    })
}

#[cfg(test)]
pub(crate) mod tests;
