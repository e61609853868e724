//! The bridge from the asynchronous fan-out to the PromQL engine's synchronous storage trait.
//!
//! The engine runs on a blocking thread (`spawn_blocking`). `select` starts the fan-out on the
//! Tokio runtime and returns a [`SeriesSet`] that pulls merged series from a bounded channel
//! with `blocking_recv`, so series stream into the engine as the stores send them. Each series'
//! chunks are decoded only when the engine iterates them ([`crate::dedup::series_iterator`]).
//!
//! Select hints become StoreAPI query hints and pick the downsampled aggregate to read
//! (reference/thanos.md 4.5): functions that need two samples cap the resolution at half the
//! range, and counters are read from the counter aggregate. Series read in count mode are
//! marked as raw sample counts so the engine's `count_over_time` sums them (equal to raw).
//!
//! What downsampled data answers, against raw data (windows that are multiples of the
//! resolution, at aligned steps): `min/max/sum/count_over_time` equal; `avg_over_time` is the
//! mean of the window averages (as in Thanos), equal where every window holds as many raw
//! samples (regular scrapes) and not across missed scrapes or a raw/downsampled switch inside
//! the range; `rate`/`increase` see the counter at window ends (Thanos's semantics). Instant
//! selectors read the window average, or MIN/MAX/COUNT under `min`/`max`/`count` as Thanos
//! does (`count` counts series, so its answer is exact). Two differences from Thanos: the
//! engine names the function only for a selector that is its direct argument (Prometheus
//! passes it through parentheses, unary minus and subqueries too), so a selector inside a
//! subquery reads the average where Thanos reads MIN/MAX/SUM/COUNT per step (for
//! `sum_over_time(x[1h:5m])` Thanos would add up whole windows' sums); and `count_values`
//! reads the average, not COUNT (see [`ChunkReadMode::for_function`]).

use std::time::Instant;

use strata_promql::storage::{Querier, Queryable, SelectHints, SeriesSet, StorageSeries};
use strata_promql::{Labels as PromLabels, MatchType as PromMatchType, Matcher as PromMatcher};
use strata_proto::thanos;
use strata_tsdb::labels::{Labels, MatchType, Matcher};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::dedup::{ChunkReadMode, DedupFunc, series_iterator, storage_error};
use crate::error::{Error, Result};
use crate::proxy::{MergedSeries, Proxy, SeriesQuery, Warnings};

/// Functions that need at least two samples per window; their downsampled resolution is
/// capped at half the range.
const TWO_SAMPLE_FUNCTIONS: [&str; 9] = [
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "predict_linear",
    "holt_winters",
    "double_exponential_smoothing",
];

/// Per-query options of the Thanos HTTP API.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// Replica labels to deduplicate by (empty: no deduplication).
    pub replica_labels: Vec<String>,
    pub partial_response: bool,
    /// Maximum source resolution in ms (0: raw data only).
    pub max_source_resolution: i64,
    pub deadline: Option<Instant>,
    /// How replicas are merged (`--deduplication.func`).
    pub dedup_func: DedupFunc,
}

/// The fan-out as a PromQL [`Queryable`] for one query.
#[derive(Debug, Clone)]
pub struct ProxyQueryable {
    proxy: Proxy,
    runtime: Handle,
    options: QueryOptions,
    warnings: Warnings,
}

impl ProxyQueryable {
    pub fn new(proxy: Proxy, runtime: Handle, options: QueryOptions, warnings: Warnings) -> Self {
        Self {
            proxy,
            runtime,
            options,
            warnings,
        }
    }
}

impl Queryable for ProxyQueryable {
    fn querier(&self, mint: i64, maxt: i64) -> strata_promql::Result<Box<dyn Querier + '_>> {
        Ok(Box::new(ProxyQuerier {
            queryable: self,
            mint,
            maxt,
        }))
    }
}

struct ProxyQuerier<'a> {
    queryable: &'a ProxyQueryable,
    mint: i64,
    maxt: i64,
}

/// An engine matcher as a StoreAPI matcher.
pub fn convert_matcher(matcher: &PromMatcher) -> Result<Matcher> {
    let kind = match matcher.match_type {
        PromMatchType::Equal => MatchType::Equal,
        PromMatchType::NotEqual => MatchType::NotEqual,
        PromMatchType::Regex => MatchType::Regex,
        PromMatchType::NotRegex => MatchType::NotRegex,
    };
    Matcher::new(kind, matcher.name.clone(), matcher.value.clone()).map_err(|err| {
        Error::BadParameter {
            message: err.to_string(),
        }
    })
}

/// Labels as the engine's type.
pub fn convert_labels(labels: &Labels) -> PromLabels {
    PromLabels::from_pairs(
        labels
            .iter()
            .map(|label| (label.name.clone(), label.value.clone())),
    )
}

/// The max resolution window for a select (thanos.md 4.5).
fn resolution_for(max_source_resolution: i64, hints: &SelectHints) -> i64 {
    let two_samples = hints
        .func
        .as_deref()
        .is_some_and(|func| TWO_SAMPLE_FUNCTIONS.contains(&func));
    if two_samples && hints.range > 0 {
        max_source_resolution.min(hints.range / 2)
    } else {
        max_source_resolution
    }
}

/// StoreAPI query hints from the engine's select hints.
fn query_hints(hints: &SelectHints) -> thanos::QueryHints {
    thanos::QueryHints {
        step_millis: hints.step,
        func: hints
            .func
            .as_ref()
            .map(|name| thanos::Func { name: name.clone() }),
        grouping: (!hints.grouping.is_empty() || hints.by).then(|| thanos::Grouping {
            by: hints.by,
            labels: hints.grouping.clone(),
        }),
        range: (hints.range > 0).then_some(thanos::Range {
            millis: hints.range,
        }),
        ..Default::default()
    }
}

impl Querier for ProxyQuerier<'_> {
    fn select(
        &self,
        _sorted: bool,
        hints: &SelectHints,
        matchers: &[PromMatcher],
    ) -> strata_promql::Result<Box<dyn SeriesSet + '_>> {
        let options = &self.queryable.options;
        let matchers = matchers
            .iter()
            .map(convert_matcher)
            .collect::<Result<Vec<_>>>()
            .map_err(storage_error)?;
        let (min_time, max_time) = if hints.start != 0 || hints.end != 0 {
            (hints.start, hints.end)
        } else {
            (self.mint, self.maxt)
        };
        let mode = ChunkReadMode::for_function(hints.func.as_deref());
        let max_resolution_window = resolution_for(options.max_source_resolution, hints);
        let query = SeriesQuery {
            min_time,
            max_time,
            matchers,
            replica_labels: options.replica_labels.clone(),
            partial_response: options.partial_response,
            skip_chunks: hints.func.as_deref() == Some("series"),
            max_resolution_window,
            aggregates: if max_resolution_window > 0 {
                mode.aggregates()
            } else {
                Vec::new()
            },
            query_hints: Some(query_hints(hints)),
            deadline: options.deadline,
        };
        // `series` only spawns tasks, but they need the runtime's context.
        let receiver = {
            let _guard = self.queryable.runtime.enter();
            self.queryable
                .proxy
                .series(query, self.queryable.warnings.clone())
                .map_err(storage_error)?
        };
        Ok(Box::new(ProxySeriesSet {
            receiver,
            mode,
            func: options.dedup_func,
        }))
    }
}

struct ProxySeriesSet {
    receiver: mpsc::Receiver<Result<MergedSeries>>,
    mode: ChunkReadMode,
    func: DedupFunc,
}

impl SeriesSet for ProxySeriesSet {
    fn next_series(&mut self) -> strata_promql::Result<Option<StorageSeries<'_>>> {
        match self.receiver.blocking_recv() {
            None => Ok(None),
            Some(Err(err)) => Err(storage_error(err)),
            Some(Ok(series)) => {
                let name = series.labels.to_string();
                Ok(Some(StorageSeries {
                    labels: convert_labels(&series.labels),
                    samples: series_iterator(name, series.chunks, self.mode, self.func),
                    value_kind: self.mode.value_kind(),
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests;
