//! The storage interface the engine reads from, in the shape of Prometheus's
//! `storage.Queryable` / `Querier` / `SeriesSet` / `chunkenc.Iterator`.
//!
//! A `Queryable` opens a `Querier` for a time range; `Querier::select` returns a `SeriesSet`
//! that yields one series at a time, each with its own sample iterator, so a remote or on-disk
//! implementation can stream and decode lazily. `SelectHints` tell the store what the engine will
//! do with the data (range, step, function, grouping) so it can prune or pre-aggregate.
//!
//! A store that pre-aggregates says so per series with [`ValueKind`]: a downsampled store
//! answering `count_over_time` with Thanos's COUNT aggregate returns samples that each stand
//! for many raw samples, and the engine sums them instead of counting them. Every other
//! function reads the values as they are.

pub mod memory;

use crate::error::Result;
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::value::Point;

/// What the engine will do with the selected data (Prometheus's `storage.SelectHints`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SelectHints {
    /// Start of the data needed, in ms (inclusive).
    pub start: i64,
    /// End of the data needed, in ms (inclusive).
    pub end: i64,
    /// Query step in ms (0 for instant queries).
    pub step: i64,
    /// Range of the enclosing range selector in ms (0 for instant selectors).
    pub range: i64,
    /// Name of the enclosing function or aggregation, if any.
    pub func: Option<String>,
    /// Grouping labels of the enclosing aggregation.
    pub grouping: Vec<String>,
    /// True for `by`, false for `without`.
    pub by: bool,
}

/// Something that can be queried over a time range.
pub trait Queryable: Send + Sync {
    /// Opens a querier for samples in `[mint, maxt]` (ms, inclusive).
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>>;
}

/// Reads series for one time range.
pub trait Querier {
    /// Returns the series matching all `matchers`; sorted by labels when `sorted` is true.
    fn select(
        &self,
        sorted: bool,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Box<dyn SeriesSet + '_>>;

    /// Whether [`Querier::prefetch`] is worth a dry run of the query: true for remote
    /// implementations whose selects pay a network round trip.
    fn wants_prefetch(&self) -> bool {
        false
    }

    /// Announces, before evaluation starts, a `select` the engine is about to make with these
    /// exact arguments (in the order it will make them), so a remote implementation can start
    /// every fetch at once and a query with several selectors pays one store latency, not one
    /// per selector. A later `select` with equal arguments should use the prefetched data;
    /// announced selects that never come must be cancelled when the querier is dropped.
    fn prefetch(&self, _hints: &SelectHints, _matchers: &[Matcher]) {}
}

/// A stream of series.
pub trait SeriesSet {
    /// The next series, or `None` at the end.
    fn next_series(&mut self) -> Result<Option<StorageSeries<'_>>>;
}

/// What the sample values of a storage series stand for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ValueKind {
    /// Observed values: raw samples, or a downsampled aggregate standing in for them (a
    /// window's average, minimum, maximum, sum or counter value).
    #[default]
    Observed,
    /// Each sample's value is the number of raw samples it stands for: Thanos's COUNT
    /// aggregate of a downsampling window, or 1 for a raw sample served alongside (stale
    /// markers stay stale markers). `count_over_time` over a range selector sums these values
    /// so its answer equals the raw one; every other use reads them as plain values.
    RawSampleCounts,
}

/// One series from storage: its labels, an iterator over its samples and what their values
/// stand for.
pub struct StorageSeries<'a> {
    pub labels: Labels,
    pub samples: Box<dyn SampleIterator + 'a>,
    pub value_kind: ValueKind,
}

impl<'a> StorageSeries<'a> {
    /// A series of observed values.
    pub fn new(labels: Labels, samples: Box<dyn SampleIterator + 'a>) -> Self {
        Self {
            labels,
            samples,
            value_kind: ValueKind::Observed,
        }
    }
}

/// Iterates the samples of one series in time order.
pub trait SampleIterator {
    /// The next sample, or `None` at the end.
    fn next_sample(&mut self) -> Result<Option<Point>>;

    /// Advances to the first sample with `t >= ts` and returns it. The default walks forward;
    /// chunked implementations skip whole chunks.
    fn seek(&mut self, ts: i64) -> Result<Option<Point>> {
        while let Some(p) = self.next_sample()? {
            if p.t >= ts {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }

    /// Appends every sample with `mint <= t <= maxt` to `out` and stops after `maxt`. The
    /// default walks sample by sample; in-memory and chunked stores copy whole runs at once.
    fn read_range(&mut self, mint: i64, maxt: i64, out: &mut Vec<Point>) -> Result<()> {
        let mut next = self.seek(mint)?;
        while let Some(p) = next {
            if p.t > maxt {
                break;
            }
            out.push(p);
            next = self.next_sample()?;
        }
        Ok(())
    }
}
