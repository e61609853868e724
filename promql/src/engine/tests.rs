//! Engine tests: limits, timeout, cancellation, statistics, and range/instant consistency.

use std::time::Duration;

use super::*;
use crate::labels::Labels;
use crate::storage::memory::MemoryStorage;
use crate::value::Value;

/// `n` counters `c{i="k"}` sampled every 15s for `points` samples.
fn counters(n: usize, points: i64) -> MemoryStorage {
    let mut s = MemoryStorage::new();
    for k in 0..n {
        let l = Labels::from_pairs([("__name__", "c".to_string()), ("i", k.to_string())]);
        for t in 0..points {
            s.append(&l, t * 15_000, (t * (k as i64 + 1)) as f64);
        }
    }
    s
}

#[test]
fn sample_limit_gives_prometheus_error() {
    let storage = counters(10, 100);
    let engine = Engine::new(EngineOptions {
        max_samples: 50,
        ..Default::default()
    });
    let err = engine
        .range_query(&storage, "c", 0, 1_500_000, 15_000)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("query processing would load too many samples into memory in query execution")
    );
    // The engine stays usable, and a small query still works.
    let ok = engine.instant_query(&storage, "c{i=\"1\"}", 60_000);
    assert!(matches!(ok, Ok(QueryResult { value: Value::Vector(ref v), .. }) if v.len() == 1));
}

#[test]
fn timeout_and_cancellation() {
    let storage = counters(5, 10);
    let engine = Engine::new(EngineOptions {
        timeout: Duration::ZERO,
        ..Default::default()
    });
    let err = engine.instant_query(&storage, "sum(c)", 60_000).err();
    assert!(matches!(err, Some(Error::Timeout { .. })), "{err:?}");
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("query timed out in query execution")
    );

    let engine = Engine::default();
    let token = CancellationToken::new();
    token.cancel();
    let expr = crate::parser::parse("sum(c)").map_err(|e| e.to_string());
    let res = expr.map(|e| engine.exec(&storage, &e, 0, 0, 0, &token).err());
    assert!(matches!(res, Ok(Some(Error::Canceled { .. }))), "{res:?}");
}

#[test]
fn stats_count_series_and_samples() -> Result<()> {
    let storage = counters(3, 41);
    let engine = Engine::default();
    let res = engine.instant_query(&storage, "rate(c[5m])", 600_000)?;
    assert_eq!(res.stats.series_touched, 3);
    // [300s, 600s] closed at 15s spacing: 21 samples per series.
    assert_eq!(res.stats.samples_touched, 63);
    assert!(res.stats.peak_samples >= 21);
    Ok(())
}

#[test]
fn range_query_matches_instant_queries() -> Result<()> {
    let storage = counters(4, 200);
    let engine = Engine::default();
    let queries = [
        "sum by (i) (rate(c[2m]))",
        "topk(2, c)",
        "histogram_quantile(0.9, c)",
        "max_over_time(c[3m:30s])",
        "c / on(i) group_left c",
        "count_values(\"v\", c > 100)",
        "avg_over_time(c[1m] offset 1m)",
    ];
    for q in queries {
        let range = engine.range_query(&storage, q, 600_000, 1_200_000, 60_000)?;
        let Value::Matrix(series) = range.value else {
            panic!("{q}: not a matrix")
        };
        for t in (600_000..=1_200_000).step_by(60_000) {
            let instant = engine.instant_query(&storage, q, t)?;
            let Value::Vector(mut want) = instant.value else {
                panic!("{q}: not a vector")
            };
            let mut got: Vec<(Labels, f64)> = series
                .iter()
                .filter_map(|s| {
                    s.points
                        .iter()
                        .find(|p| p.t == t)
                        .map(|p| (s.labels.clone(), p.v))
                })
                .collect();
            want.sort_by(|a, b| a.labels.cmp(&b.labels));
            got.sort_by(|a, b| a.0.cmp(&b.0));
            let want: Vec<(Labels, f64)> = want.into_iter().map(|s| (s.labels, s.v)).collect();
            assert_eq!(got, want, "{q} at {t}");
        }
    }
    Ok(())
}

#[test]
fn bare_range_selector_in_range_query_is_rejected() {
    let storage = counters(1, 10);
    let err = Engine::default()
        .range_query(&storage, "c[1m]", 0, 60_000, 15_000)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
        )
    );
}

#[test]
fn parse_errors_carry_positions() {
    let err = Engine::default()
        .instant_query(&MemoryStorage::new(), "sort_by_label(c)", 0)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("1:1: parse error: unknown function with name \"sort_by_label\"")
    );
}

#[test]
fn querier_time_range_covers_what_the_query_reads() -> Result<()> {
    use super::eval::time_bounds;
    let bounds = |q: &str, start: i64, end: i64| -> Result<Option<(i64, i64)>> {
        let e = crate::parser::parse(q)?;
        Ok(time_bounds(&e, start, end, start, end, 300_000))
    };
    assert_eq!(
        bounds("foo", 1_000_000, 2_000_000)?,
        Some((700_000, 2_000_000))
    );
    assert_eq!(
        bounds("rate(foo[1m] offset 1m)", 1_000_000, 2_000_000)?,
        Some((880_000, 1_940_000))
    );
    assert_eq!(
        bounds("foo @ 100", 1_000_000, 2_000_000)?,
        Some((-200_000, 100_000))
    );
    assert_eq!(
        bounds("max_over_time(foo[10m:1m])", 1_000_000, 1_000_000)?,
        Some((100_000, 1_000_000))
    );
    assert_eq!(bounds("vector(1) + time()", 0, 0)?, None);
    Ok(())
}

#[test]
fn parallel_windows_give_identical_results() -> Result<()> {
    // 150 series x 2401 steps: above the threshold where batches run on several threads.
    let storage = counters(150, 2500);
    let single = Engine::new(EngineOptions {
        threads: 1,
        ..Default::default()
    });
    let multi = Engine::new(EngineOptions {
        threads: 4,
        ..Default::default()
    });
    for q in [
        "sum by (i) (rate(c[5m]))",
        "rate(c[1m])",
        "sum(increase(c[10m]))",
    ] {
        let a = single.range_query(&storage, q, 1_500_000, 37_500_000, 15_000)?;
        let b = multi.range_query(&storage, q, 1_500_000, 37_500_000, 15_000)?;
        assert_eq!(a.value, b.value, "{q}");
    }
    Ok(())
}

/// 2.42 quirk: under predict_linear (the only @-unsafe function taking a range) an @-pinned
/// window slides with the steps while its data stays capped at the @ time.
#[test]
fn predict_linear_pinned_window_slides_like_2_42() -> Result<()> {
    let mut storage = MemoryStorage::new();
    let l = Labels::from_pairs([("__name__", "m")]);
    for i in 0..=10 {
        storage.append(&l, i * 60_000, i as f64);
    }
    let res = Engine::default().range_query(
        &storage,
        "predict_linear(m[2m] @ 300, 0)",
        300_000,
        420_000,
        60_000,
    )?;
    let Value::Matrix(series) = res.value else {
        panic!("not a matrix")
    };
    let points: Vec<(i64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| (p.t, p.v)))
        .collect();
    // Step 420s: the window [300s, 420s] holds one sample (data stops at 300s): no output.
    assert_eq!(points.len(), 2, "{points:?}");
    assert!(
        points
            .iter()
            .zip([(300_000, 5.0), (360_000, 6.0)])
            .all(|(a, b)| a.0 == b.0 && (a.1 - b.1).abs() < 1e-9),
        "{points:?}"
    );
    Ok(())
}

/// The fused path (aggregation folding a range function's series as they are produced) must
/// give bit-identical results to evaluating the function first.
#[test]
fn fused_aggregation_matches_unfused() -> Result<()> {
    let storage = counters(20, 300);
    let engine = Engine::default();
    for op in [
        "sum", "avg", "min", "max", "count", "group", "stddev", "stdvar",
    ] {
        let fused = format!("{op} by (i) (rate(c[2m])) ");
        let plain = format!("{op} by (i) (rate(c[2m]) * 1)");
        let fused_all = format!("{op}(irate(c[1m]))");
        let plain_all = format!("{op}(irate(c[1m]) * 1)");
        for (a, b) in [(fused, plain), (fused_all, plain_all)] {
            let ra = engine.range_query(&storage, &a, 600_000, 4_000_000, 30_000)?;
            let rb = engine.range_query(&storage, &b, 600_000, 4_000_000, 30_000)?;
            assert_eq!(ra.value, rb.value, "{a}");
        }
    }
    Ok(())
}

/// Gauges `g{i, grp}` with ties, NaNs, resets and gaps, so heaps see every comparison case.
fn tie_storage() -> MemoryStorage {
    let mut s = MemoryStorage::new();
    for k in 0..12 {
        let l = Labels::from_pairs([
            ("__name__", "g".to_string()),
            ("i", k.to_string()),
            ("grp", (k % 3).to_string()),
        ]);
        for t in 0..80i64 {
            if (t + k) % 11 == 0 {
                continue;
            }
            let v = match (t * 7 + k * 3) % 13 {
                0 => f64::NAN,
                1 => 5.0,
                x => ((x * (k + 1)) % 9) as f64,
            };
            s.append(&l, t * 15_000 + k, v);
        }
    }
    s
}

#[test]
fn fused_topk_equals_the_materialised_evaluation() {
    let storage = tie_storage();
    let engine = Engine::default();
    for op in ["topk", "bottomk"] {
        for k in ["1", "2", "5", "40", "0", "scalar(g{i=\"3\"})"] {
            for grouping in ["", " by (grp)", " without (grp)", " by (i)"] {
                for inner in [
                    "rate(g[1m])",
                    "max_over_time(g[2m])",
                    "sum_over_time(g[30s])",
                ] {
                    // `* 1` forces the materialised path and changes no value.
                    let fused = format!("{op}{grouping} ({k}, {inner})");
                    let plain = format!("{op}{grouping} ({k}, {inner} * 1)");
                    let a = engine.range_query(&storage, &fused, 0, 1_200_000, 15_000);
                    let b = engine.range_query(&storage, &plain, 0, 1_200_000, 15_000);
                    let (a, b) = (a.map(|r| r.value), b.map(|r| r.value));
                    assert_eq!(format!("{a:?}"), format!("{b:?}"), "{fused}");
                }
            }
        }
    }
    let err = engine
        .range_query(&storage, "topk(NaN, rate(g[1m]))", 0, 60_000, 15_000)
        .err()
        .map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("Scalar value NaN overflows int64"));
}

/// A store whose every series is served as pre-aggregated raw-sample counts, as a downsampled
/// store answers `count_over_time` with Thanos's COUNT aggregate.
struct CountsStorage(MemoryStorage);

struct CountsQuerier<'a>(Box<dyn crate::storage::Querier + 'a>);

struct CountsSeriesSet<'a>(Box<dyn crate::storage::SeriesSet + 'a>);

impl crate::storage::Queryable for CountsStorage {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn crate::storage::Querier + '_>> {
        Ok(Box::new(CountsQuerier(self.0.querier(mint, maxt)?)))
    }
}

impl crate::storage::Querier for CountsQuerier<'_> {
    fn select(
        &self,
        sorted: bool,
        hints: &crate::storage::SelectHints,
        matchers: &[crate::matcher::Matcher],
    ) -> Result<Box<dyn crate::storage::SeriesSet + '_>> {
        Ok(Box::new(CountsSeriesSet(
            self.0.select(sorted, hints, matchers)?,
        )))
    }
}

impl crate::storage::SeriesSet for CountsSeriesSet<'_> {
    fn next_series(&mut self) -> Result<Option<crate::storage::StorageSeries<'_>>> {
        Ok(self.0.next_series()?.map(|mut series| {
            series.value_kind = crate::storage::ValueKind::RawSampleCounts;
            series
        }))
    }
}

/// Raw samples of `x{i}` every 60 s at 7 s past the minute (a 5-minute window never starts on
/// one), one missed in every 7, and the COUNT aggregate of every 5-minute window as Thanos's
/// downsampling writes it: at the window's last raw sample.
fn raw_and_count_aggregate(series: usize, minutes: i64) -> (MemoryStorage, MemoryStorage) {
    let (mut raw, mut counts) = (MemoryStorage::new(), MemoryStorage::new());
    for i in 0..series {
        let labels = Labels::from_pairs([("__name__", "x".to_string()), ("i", i.to_string())]);
        let mut window: Option<(i64, i64, u32)> = None;
        for m in 0..minutes {
            if (m + i as i64) % 7 == 3 {
                continue;
            }
            let t = m * 60_000 + 7_000;
            raw.append(&labels, t, (m * 3 % 11) as f64);
            let start = t - t % 300_000;
            window = match window {
                Some((w, _, n)) if w == start => Some((w, t, n + 1)),
                Some((_, last, n)) => {
                    counts.append(&labels, last, f64::from(n));
                    Some((start, t, 1))
                }
                None => Some((start, t, 1)),
            };
        }
        if let Some((_, last, n)) = window {
            counts.append(&labels, last, f64::from(n));
        }
    }
    (raw, counts)
}

fn matrix(value: Value) -> Vec<(Labels, Vec<(i64, f64)>)> {
    match value {
        Value::Matrix(series) => series
            .into_iter()
            .map(|s| (s.labels, s.points.iter().map(|p| (p.t, p.v)).collect()))
            .collect(),
        other => panic!("not a matrix: {}", other.type_name()),
    }
}

#[test]
fn count_over_time_sums_pre_aggregated_counts() -> Result<()> {
    let (raw, counts) = raw_and_count_aggregate(3, 240);
    let marked = CountsStorage(counts.clone());
    for threads in [1, 2] {
        let engine = Engine::new(EngineOptions {
            threads,
            ..Default::default()
        });
        let range = |storage: &dyn Queryable, q: &str| {
            engine
                .range_query(storage, q, 1_800_000, 14_400_000, 300_000)
                .map(|r| matrix(r.value))
        };
        // Windows that are multiples of 5m at 5m-aligned steps hold whole windows: the sum of
        // the counts is the raw count.
        for q in ["count_over_time(x[10m])", "count_over_time(x[1h])"] {
            let want = range(&raw, q)?;
            assert!(!want.is_empty());
            assert_eq!(range(&marked, q)?, want, "{q} threads={threads}");
            // Without the mark the engine counts aggregate points: one per window.
            assert_ne!(range(&counts, q)?, want, "{q} threads={threads}");
        }
        // Fused into an aggregation the same.
        let q = "sum by (i) (count_over_time(x[30m]))";
        assert_eq!(range(&marked, q)?, range(&raw, q)?, "{q}");
        // Every other use reads the values as they are.
        for q in [
            "sum_over_time(x[10m])",
            "max_over_time(x[10m])",
            "count(x)",
            "x",
            "count_over_time(x[10m:1m])",
            "present_over_time(x[10m])",
        ] {
            assert_eq!(range(&marked, q)?, range(&counts, q)?, "{q}");
        }
    }
    Ok(())
}
