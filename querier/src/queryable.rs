//! The bridge from the asynchronous fan-out to the PromQL engine's synchronous storage trait.
//!
//! The engine runs on a blocking thread (`spawn_blocking`). `select` starts the fan-out on the
//! Tokio runtime and returns a [`SeriesSet`] that pulls merged series from a bounded channel
//! with `blocking_recv`, so series stream into the engine as the stores send them. The
//! fan-out's task readies each series for the engine ([`EngineSeries`]): a short series of one
//! replica (up to [`crate::dedup::DECODE_AHEAD_SAMPLES`]) is decoded there, beside the engine
//! rather than on its thread; longer ones and replicas to merge are decoded a chunk at a time
//! as the engine iterates them ([`crate::dedup::series_iterator`]).
//!
//! Before evaluation the engine announces every select of the query (`Querier::prefetch`, from
//! a dry run); each announced fan-out starts at once, so `a / b` pays one store latency. At most
//! `--query.max-concurrent-select` of one query's fan-outs run ahead of the engine, started in
//! the order the engine will read them; the one the engine reads always runs, so a fan-out
//! blocked on its full channel can never hold the permit the engine waits for.
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

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use strata_promql::storage::{
    Querier, Queryable, SampleIterator, SelectHints, SeriesSet, StorageSeries,
};
use strata_promql::{Labels as PromLabels, MatchType as PromMatchType, Matcher as PromMatcher};
use strata_proto::thanos;
use strata_tsdb::labels::{Labels, MatchType, Matcher};
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::dedup::{
    ChunkReadMode, DecodedSamples, DedupFunc, decode_ahead, series_iterator, storage_error,
};
use crate::error::{Error, Result};
use crate::proxy::{Convert, MergedSeries, Proxy, SeriesQuery, Warnings};
use crate::series_channel::{self, SeriesReceiver, SeriesSender};

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
    /// How many of the query's fan-outs may run ahead of the engine
    /// (`--query.max-concurrent-select`; 0 turns fetching ahead off).
    pub max_concurrent_select: usize,
}

/// The fan-out as a PromQL [`Queryable`] for one query.
#[derive(Debug, Clone)]
pub struct ProxyQueryable {
    proxy: Proxy,
    runtime: Handle,
    options: QueryOptions,
    warnings: Warnings,
    /// Permits for fan-outs running ahead of the engine, shared by the query's queriers.
    select_gate: Arc<Semaphore>,
}

impl ProxyQueryable {
    pub fn new(proxy: Proxy, runtime: Handle, options: QueryOptions, warnings: Warnings) -> Self {
        let select_gate = Arc::new(Semaphore::new(options.max_concurrent_select));
        Self {
            proxy,
            runtime,
            options,
            warnings,
            select_gate,
        }
    }
}

impl Queryable for ProxyQueryable {
    fn querier(&self, mint: i64, maxt: i64) -> strata_promql::Result<Box<dyn Querier + '_>> {
        Ok(Box::new(ProxyQuerier {
            queryable: self,
            mint,
            maxt,
            prefetched: Mutex::new(Vec::new()),
            dispatch: OnceLock::new(),
        }))
    }
}

/// The arguments of one select, to match a prefetch with the select that reads it.
type SelectKey = (SelectHints, Vec<(PromMatchType, String, String)>);

fn select_key(hints: &SelectHints, matchers: &[PromMatcher]) -> SelectKey {
    (
        hints.clone(),
        matchers
            .iter()
            .map(|m| (m.match_type, m.name.clone(), m.value.clone()))
            .collect(),
    )
}

/// A prefetched select's fan-out: waiting for its turn, or started.
enum Slot {
    Queued(Box<SeriesQuery>, SeriesSender<EngineSeries>, Prepare),
    Started,
    /// Started by the engine without a permit (none was free); the receiver resolves when the
    /// fan-out is done, so the dispatcher can hold a permit for it until then.
    Claimed(oneshot::Receiver<()>),
}

/// What a running fan-out holds until it is done (only for its `Drop`).
#[expect(dead_code, reason = "the fields are held for their Drop")]
enum Held {
    Permit(OwnedSemaphorePermit),
    /// Dropped when done, which wakes the dispatcher waiting on the matching `Slot::Claimed`.
    Done(oneshot::Sender<()>),
}

type SharedSlot = Arc<Mutex<Slot>>;

/// A select announced ahead of the engine.
struct Prefetched {
    key: SelectKey,
    prepare: Prepare,
    receiver: SeriesReceiver<EngineSeries>,
    slot: SharedSlot,
}

struct ProxyQuerier<'a> {
    queryable: &'a ProxyQueryable,
    mint: i64,
    maxt: i64,
    /// Announced selects not read yet; dropping them cancels their work.
    prefetched: Mutex<Vec<Prefetched>>,
    /// Starts announced fan-outs in order as select-gate permits free up.
    dispatch: OnceLock<mpsc::UnboundedSender<SharedSlot>>,
}

impl ProxyQuerier<'_> {
    /// The StoreAPI query of a select, and how its chunks are read.
    fn series_query(
        &self,
        hints: &SelectHints,
        matchers: &[PromMatcher],
    ) -> Result<(SeriesQuery, ChunkReadMode)> {
        let options = &self.queryable.options;
        let matchers = matchers
            .iter()
            .map(convert_matcher)
            .collect::<Result<Vec<_>>>()?;
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
        Ok((query, mode))
    }

    /// The dispatcher: one task per querier that takes announced selects in the order the
    /// engine will read them, waits for a permit of the select gate for each, and starts it
    /// unless the engine already started it itself.
    fn dispatcher(&self) -> &mpsc::UnboundedSender<SharedSlot> {
        self.dispatch.get_or_init(|| {
            let (sender, mut queue) = mpsc::unbounded_channel::<SharedSlot>();
            let gate = Arc::clone(&self.queryable.select_gate);
            let proxy = self.queryable.proxy.clone();
            let warnings = self.queryable.warnings.clone();
            self.queryable.runtime.spawn(async move {
                while let Some(slot) = queue.recv().await {
                    let Ok(permit) = Arc::clone(&gate).acquire_owned().await else {
                        return;
                    };
                    let taken = slot
                        .lock()
                        .ok()
                        .map(|mut slot| std::mem::replace(&mut *slot, Slot::Started));
                    match taken {
                        Some(Slot::Queued(query, sender, prepare)) => {
                            tokio::spawn(forward(
                                proxy.clone(),
                                *query,
                                sender,
                                warnings.clone(),
                                Held::Permit(permit),
                                prepare,
                            ));
                        }
                        // The engine started it without a permit: count it until it is done.
                        Some(Slot::Claimed(done)) => {
                            let _ = done.await;
                        }
                        Some(Slot::Started) | None => {}
                    }
                }
            });
            sender
        })
    }
}

/// Runs one fan-out into `sender`, holding `permit` (if any) until the stores are done or the
/// reader went away.
async fn forward(
    proxy: Proxy,
    query: SeriesQuery,
    mut sender: SeriesSender<EngineSeries>,
    warnings: Warnings,
    held: Held,
    prepare: Prepare,
) {
    match proxy.fan_out(query, warnings) {
        Ok(fan_out) => fan_out.run_into(sender, prepare.convert()).await,
        Err(err) => {
            let _ = sender.send_err(err).await;
        }
    }
    drop(held);
}

/// A series as the engine takes it, made on the fan-out's task so that the engine's thread
/// only evaluates: labels in the engine's type, samples ready to iterate.
pub struct EngineSeries {
    labels: PromLabels,
    samples: Box<dyn SampleIterator + Send>,
}

/// How the series of one select are read.
#[derive(Debug, Clone, Copy)]
struct Prepare {
    mode: ChunkReadMode,
    func: DedupFunc,
    /// The select hints' range: the only samples the engine reads.
    mint: i64,
    maxt: i64,
}

impl Prepare {
    /// The series as the engine iterates it: short series of one replica are decoded here, in
    /// the fan-out (so the work runs beside the engine, not on its thread), the rest decode
    /// lazily as the engine reads them ([`series_iterator`]).
    fn series(self, mut series: MergedSeries) -> EngineSeries {
        let labels = convert_labels(&series.labels);
        let samples: Box<dyn SampleIterator + Send> =
            match decode_ahead(&mut series.chunks, self.mode, self.mint, self.maxt) {
                Some(points) => Box::new(DecodedSamples::new(points)),
                None => series_iterator(
                    series.labels.to_string(),
                    series.chunks,
                    self.mode,
                    self.func,
                ),
            };
        EngineSeries { labels, samples }
    }

    fn convert(self) -> Convert<EngineSeries> {
        Box::new(move |series| self.series(series))
    }
}

/// Merged series buffered between a prefetched fan-out and the engine.
const PREFETCH_BUFFER: usize = 64;

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
        let key = select_key(hints, matchers);
        let prefetched = self.prefetched.lock().ok().and_then(|mut list| {
            let position = list.iter().position(|p| p.key == key)?;
            Some(list.remove(position))
        });
        if let Some(prefetched) = prefetched {
            // Not started yet (the gate is full with fan-outs the engine reads later, or the
            // dispatcher has not reached it): the engine reads it now, so it runs now.
            // It takes a free permit if there is one; if not, it runs anyway (the permits are
            // held by fan-outs the engine reads later) and the dispatcher accounts for it.
            if let Ok(mut slot) = prefetched.slot.lock()
                && matches!(*slot, Slot::Queued(..))
            {
                let held = match Arc::clone(&self.queryable.select_gate).try_acquire_owned() {
                    Ok(permit) => {
                        if let Slot::Queued(query, sender, _) =
                            std::mem::replace(&mut *slot, Slot::Started)
                        {
                            Some((query, sender, Held::Permit(permit)))
                        } else {
                            None
                        }
                    }
                    Err(_) => {
                        let (done, waiter) = oneshot::channel();
                        if let Slot::Queued(query, sender, _) =
                            std::mem::replace(&mut *slot, Slot::Claimed(waiter))
                        {
                            Some((query, sender, Held::Done(done)))
                        } else {
                            None
                        }
                    }
                };
                if let Some((query, sender, held)) = held {
                    self.queryable.runtime.spawn(forward(
                        self.queryable.proxy.clone(),
                        *query,
                        sender,
                        self.queryable.warnings.clone(),
                        held,
                        prefetched.prepare,
                    ));
                }
            }
            return Ok(Box::new(ProxySeriesSet {
                receiver: prefetched.receiver,
                mode: prefetched.prepare.mode,
            }));
        }
        let (query, mode) = self.series_query(hints, matchers).map_err(storage_error)?;
        let prepare = Prepare {
            mode,
            func: self.queryable.options.dedup_func,
            mint: hints.start,
            maxt: hints.end,
        };
        let fan_out = self
            .queryable
            .proxy
            .fan_out(query, self.queryable.warnings.clone())
            .map_err(storage_error)?;
        let (sender, receiver) = series_channel::channel(PREFETCH_BUFFER);
        self.queryable
            .runtime
            .spawn(fan_out.run_into(sender, prepare.convert()));
        Ok(Box::new(ProxySeriesSet { receiver, mode }))
    }

    fn wants_prefetch(&self) -> bool {
        self.queryable.options.max_concurrent_select > 0
    }

    fn prefetch(&self, hints: &SelectHints, matchers: &[PromMatcher]) {
        // A select that cannot be built fails again, with its error, when the engine makes it.
        let Ok((query, mode)) = self.series_query(hints, matchers) else {
            return;
        };
        let prepare = Prepare {
            mode,
            func: self.queryable.options.dedup_func,
            mint: hints.start,
            maxt: hints.end,
        };
        let (sender, receiver) = series_channel::channel(PREFETCH_BUFFER);
        let slot = Arc::new(Mutex::new(Slot::Queued(Box::new(query), sender, prepare)));
        if self.dispatcher().send(Arc::clone(&slot)).is_err() {
            return;
        }
        if let Ok(mut list) = self.prefetched.lock() {
            list.push(Prefetched {
                key: select_key(hints, matchers),
                prepare,
                receiver,
                slot,
            });
        }
    }
}

struct ProxySeriesSet {
    receiver: SeriesReceiver<EngineSeries>,
    mode: ChunkReadMode,
}

impl SeriesSet for ProxySeriesSet {
    fn next_series(&mut self) -> strata_promql::Result<Option<StorageSeries<'_>>> {
        match self.receiver.blocking_recv() {
            None => Ok(None),
            Some(Err(err)) => Err(storage_error(err)),
            Some(Ok(series)) => Ok(Some(StorageSeries {
                labels: series.labels,
                samples: series.samples,
                value_kind: self.mode.value_kind(),
            })),
        }
    }
}

#[cfg(test)]
mod tests;
