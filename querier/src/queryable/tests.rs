use std::collections::BTreeMap;
use std::time::Duration;

use crate::dedup::tests::xor_chunk;

use super::*;

#[test]
fn resolution_is_capped_for_rate() {
    let rate = SelectHints {
        func: Some("rate".into()),
        range: 300_000,
        ..Default::default()
    };
    assert_eq!(resolution_for(3_600_000, &rate), 150_000);
    let avg = SelectHints {
        func: Some("avg_over_time".into()),
        range: 300_000,
        ..Default::default()
    };
    assert_eq!(resolution_for(3_600_000, &avg), 3_600_000);
    let hints = query_hints(&SelectHints {
        step: 15_000,
        func: Some("sum".into()),
        grouping: vec!["cluster".into()],
        by: true,
        ..Default::default()
    });
    assert_eq!(hints.step_millis, 15_000);
    assert_eq!(hints.func.map(|f| f.name).as_deref(), Some("sum"));
    assert_eq!(
        hints.grouping.map(|g| g.labels),
        Some(vec!["cluster".to_owned()])
    );
}

#[test]
fn matchers_convert() {
    let matcher = PromMatcher::new(PromMatchType::Regex, "job", "a.*").expect("matcher");
    let converted = convert_matcher(&matcher).expect("convert");
    assert!(converted.matches("abc"));
    assert!(!converted.matches("xabc"));
    let labels = Labels::from_pairs([("b", "2"), ("a", "1")]);
    assert_eq!(convert_labels(&labels).get("a"), Some("1"));
}

/// The 5m aggregate chunk (count, sum, min, max) of `raw` as Thanos's downsampling writes it:
/// one point per window, at the window's last raw sample.
fn five_minute_aggregates(raw: &[(i64, f64)]) -> thanos::AggrChunk {
    let (mut count, mut sum, mut min, mut max) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut start = 0;
    while start < raw.len() {
        let window = raw[start].0 - raw[start].0 % 300_000;
        let end = start
            + raw[start..]
                .iter()
                .take_while(|(t, _)| t - t % 300_000 == window)
                .count();
        let samples = &raw[start..end];
        let t = samples[samples.len() - 1].0;
        let values = samples.iter().map(|(_, v)| *v);
        count.push((t, samples.len() as f64));
        sum.push((t, values.clone().sum::<f64>()));
        min.push((t, values.clone().fold(f64::INFINITY, f64::min)));
        max.push((t, values.fold(f64::NEG_INFINITY, f64::max)));
        start = end;
    }
    thanos::AggrChunk {
        min_time: count[0].0,
        max_time: count[count.len() - 1].0,
        count: xor_chunk(&count).raw,
        sum: xor_chunk(&sum).raw,
        min: xor_chunk(&min).raw,
        max: xor_chunk(&max).raw,
        ..Default::default()
    }
}

/// Samples every 60 s at 7 s past the minute for 2 h; `gaps` drops one minute in 13.
fn raw_samples(gaps: bool) -> Vec<(i64, f64)> {
    (0..120_i64)
        .filter(|m| !gaps || m % 13 != 5)
        .map(|m| (m * 60_000 + 7_000, ((m * 7) % 10) as f64 - 2.5))
        .collect()
}

fn matrix(value: strata_promql::Value) -> BTreeMap<String, Vec<(i64, f64)>> {
    match value {
        strata_promql::Value::Matrix(series) => series
            .into_iter()
            .map(|s| {
                let points = s.points.iter().map(|p| (p.t, p.v)).collect();
                (s.labels.to_string(), points)
            })
            .collect(),
        other => panic!("not a matrix: {}", other.type_name()),
    }
}

/// A series whose first hour comes from a 5m downsampled block and whose second hour is raw
/// (a raw block next to a downsampled one), read through the fan-out with a 5m maximum source
/// resolution: over 5m-aligned windows that are multiples of 5m, count/sum/min/max_over_time
/// equal the raw answers. avg_over_time averages the window averages (as Thanos does), so it
/// equals raw only where every window point stands for as many raw samples: over the
/// downsampled hour of the regular series `y`, not across the switch to raw samples.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downsampled_series_answer_like_raw() {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut raw_storage = strata_promql::MemoryStorage::new();
    let mut served = Vec::new();
    for (name, gaps) in [("x", true), ("y", false)] {
        let raw = raw_samples(gaps);
        let labels = PromLabels::from_pairs([("__name__", name)]);
        for &(t, v) in &raw {
            raw_storage.append(&labels, t, v);
        }
        let split = raw.partition_point(|(t, _)| *t < 3_600_000);
        served.push(thanos::Series {
            labels: vec![thanos::Label::new("__name__", name)],
            chunks: vec![
                five_minute_aggregates(&raw[..split]),
                xor_chunk(&raw[split..]),
            ],
        });
    }
    let address = strata_common::storeapi::testing::InMemoryStore::new(served)
        .serve_on_loopback(shutdown.clone())
        .await
        .expect("serve");
    let proxy = crate::proxy::tests::proxy_for(&[address], Duration::from_secs(10)).await;
    let queryable = ProxyQueryable::new(
        proxy,
        Handle::current(),
        QueryOptions {
            max_source_resolution: 300_000,
            ..Default::default()
        },
        Warnings::default(),
    );
    let queries = [
        ("count_over_time(x[10m])", 7_200_000),
        ("count_over_time(x[1h])", 7_200_000),
        ("sum(count_over_time(x[30m]))", 7_200_000),
        ("sum_over_time(x[15m])", 7_200_000),
        ("min_over_time(x[10m])", 7_200_000),
        ("max_over_time(x[1h])", 7_200_000),
        ("avg_over_time(y[20m])", 3_600_000),
        ("count(y)", 7_200_000),
    ];
    let answers = tokio::task::spawn_blocking(move || {
        let engine = strata_promql::Engine::default();
        queries.map(|(query, end)| {
            let run = |storage: &dyn Queryable| {
                engine
                    .range_query(storage, query, 1_800_000, end, 300_000)
                    .map(|result| matrix(result.value))
                    .expect(query)
            };
            (query, run(&queryable), run(&raw_storage))
        })
    })
    .await
    .expect("engine thread");
    shutdown.cancel();
    for (query, got, want) in answers {
        assert!(!want.is_empty(), "{query}");
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        );
        for (series, points) in &want {
            let other = &got[series];
            assert_eq!(other.len(), points.len(), "{query} {series}");
            // Sums of window sums and averages of window averages round differently.
            for (&(t, a), &(t2, b)) in points.iter().zip(other) {
                assert!(
                    t == t2 && (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                    "{query} {series} at {t}: raw {a}, downsampled {b}"
                );
            }
        }
    }
}
