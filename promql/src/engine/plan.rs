//! The query's selects, listed before evaluation so that remote storage can start them all at
//! once (Prometheus's engine does the same when it populates every selector before evaluating;
//! Thanos's querier then runs those Selects concurrently, up to `--query.max-concurrent-select`).
//!
//! The list comes from a dry run: the evaluator runs the query over a storage that records each
//! select's arguments and returns no series. Hints depend only on the query's shape and time
//! range, never on data, so the recorded arguments are exactly those of the real run for every
//! selector the real run reaches; a branch that only data would reach (none in 2.42's engine)
//! simply is not prefetched. The dry run costs one pass over the steps per node, with no samples.

use std::cell::RefCell;

use crate::error::Result;
use crate::matcher::Matcher;
use crate::storage::{Querier, SampleIterator, SelectHints, SeriesSet, StorageSeries};
use crate::value::Point;
use promql_parser::parser::Expr;

use super::EngineOptions;
use super::eval::{Control, Evaluator, StepRange};

/// Records every select and answers with no series.
#[derive(Default)]
struct Recorder {
    selects: RefCell<Vec<(SelectHints, Vec<Matcher>)>>,
}

struct NoSeries;

impl SeriesSet for NoSeries {
    fn next_series(&mut self) -> Result<Option<StorageSeries<'_>>> {
        Ok(None)
    }
}

impl SampleIterator for NoSeries {
    fn next_sample(&mut self) -> Result<Option<Point>> {
        Ok(None)
    }
}

impl Querier for Recorder {
    fn select(
        &self,
        _sorted: bool,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Box<dyn SeriesSet + '_>> {
        self.selects
            .borrow_mut()
            .push((hints.clone(), matchers.to_vec()));
        Ok(Box::new(NoSeries))
    }
}

/// The selects evaluating `expr` over `rng` makes, in the order it makes them. A dry run that
/// fails (a limit, an error only data would not cause) returns what it recorded until then.
pub(crate) fn planned_selects(
    expr: &Expr,
    options: &EngineOptions,
    control: &Control,
    query_start: i64,
    query_end: i64,
    rng: StepRange,
) -> Vec<(SelectHints, Vec<Matcher>)> {
    let recorder = Recorder::default();
    {
        let mut ev = Evaluator::new(&recorder, options, control, query_start, query_end);
        if ev.check_steps(rng).is_ok() {
            let _ = ev.eval(expr, rng);
        }
    }
    recorder.selects.into_inner()
}

/// Announces the planned selects of `expr` to `querier` when it wants them.
pub(crate) fn prefetch(
    querier: &dyn Querier,
    expr: &Expr,
    options: &EngineOptions,
    control: &Control,
    query_start: i64,
    query_end: i64,
    rng: StepRange,
) {
    if !querier.wants_prefetch() {
        return;
    }
    for (hints, matchers) in planned_selects(expr, options, control, query_start, query_end, rng) {
        querier.prefetch(&hints, &matchers);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::engine::Engine;
    use crate::labels::Labels;
    use crate::storage::Queryable;
    use crate::storage::memory::MemoryStorage;

    type Call = (SelectHints, Vec<(String, String)>);

    fn key(hints: &SelectHints, matchers: &[Matcher]) -> Call {
        (
            hints.clone(),
            matchers
                .iter()
                .map(|m| (m.name.clone(), format!("{:?}{}", m.match_type, m.value)))
                .collect(),
        )
    }

    /// Memory storage that logs prefetches and selects.
    struct Logged {
        inner: MemoryStorage,
        prefetched: Mutex<Vec<Call>>,
        selected: Mutex<Vec<Call>>,
    }

    struct LoggedQuerier<'a> {
        logged: &'a Logged,
        inner: Box<dyn Querier + 'a>,
    }

    impl Queryable for Logged {
        fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>> {
            Ok(Box::new(LoggedQuerier {
                logged: self,
                inner: self.inner.querier(mint, maxt)?,
            }))
        }
    }

    impl Querier for LoggedQuerier<'_> {
        fn select(
            &self,
            sorted: bool,
            hints: &SelectHints,
            matchers: &[Matcher],
        ) -> Result<Box<dyn SeriesSet + '_>> {
            if let Ok(mut log) = self.logged.selected.lock() {
                log.push(key(hints, matchers));
            }
            self.inner.select(sorted, hints, matchers)
        }

        fn wants_prefetch(&self) -> bool {
            true
        }

        fn prefetch(&self, hints: &SelectHints, matchers: &[Matcher]) {
            if let Ok(mut log) = self.logged.prefetched.lock() {
                log.push(key(hints, matchers));
            }
        }
    }

    fn storage() -> Logged {
        let mut inner = MemoryStorage::new();
        for (name, k) in [("a", 1), ("a", 2), ("b", 1), ("h_bucket", 1)] {
            let l = Labels::from_pairs([
                ("__name__", name.to_string()),
                ("i", k.to_string()),
                ("le", "1".to_string()),
            ]);
            for t in 0..200 {
                inner.append(&l, t * 15_000, (t * k) as f64);
            }
        }
        Logged {
            inner,
            prefetched: Mutex::new(Vec::new()),
            selected: Mutex::new(Vec::new()),
        }
    }

    #[test]
    fn the_dry_run_announces_exactly_the_selects_of_the_real_run() {
        let queries = [
            "a",
            "sum by (i) (rate(a[5m])) / ignoring(i) group_left sum(rate(b[5m]))",
            "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))",
            "topk(1, avg_over_time(a[10m] offset 1m))",
            "count by (i) (a) + on(i) b",
            "max_over_time(rate(a[1m])[10m:30s])",
            "timestamp(a @ 600) - a offset 2m",
            "predict_linear(a[5m] @ end(), 60) and b",
            "absent(nonexistent) or vector(1)",
            "label_replace(a, \"x\", \"$1\", \"i\", \"(.*)\") * on(i) group_left(x) b",
            "sum(a) / scalar(sum(b))",
        ];
        for query in queries {
            for (start, end, step) in [(1_200_000, 1_200_000, 0), (600_000, 2_400_000, 30_000)] {
                let logged = storage();
                let engine = Engine::default();
                let result = if step == 0 {
                    engine.instant_query(&logged, query, start)
                } else {
                    engine.range_query(&logged, query, start, end, step)
                };
                assert!(result.is_ok(), "{query}: {:?}", result.err());
                let prefetched = logged.prefetched.into_inner().unwrap_or_default();
                let selected = logged.selected.into_inner().unwrap_or_default();
                assert!(
                    !selected.is_empty() || query.starts_with("absent"),
                    "{query}"
                );
                assert_eq!(prefetched, selected, "{query} at {start}..{end}/{step}");
            }
        }
    }

    #[test]
    fn storage_that_does_not_want_it_gets_no_dry_run() {
        let storage = storage();
        let querier = storage.inner.querier(0, 1).ok();
        assert!(querier.is_some_and(|q| !q.wants_prefetch()));
    }
}
