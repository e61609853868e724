//! Criterion benchmarks of the engine over generated data: by default 10k series x 24h at a 15s
//! scrape interval (`STRATA_BENCH_SERIES`, `STRATA_BENCH_HOURS` override the size), queried as
//! range queries over the whole period at a 15s step.
//!
//! Data: `http_requests_total{job, instance}` counters (10 jobs) and, for the histogram shape,
//! `http_request_duration_seconds_bucket{instance, le}` with 10 buckets per instance, so both
//! metrics have the configured number of series.

use criterion::{Criterion, criterion_group, criterion_main};
use strata_promql::{Engine, EngineOptions, Labels, MemoryStorage};

const SCRAPE_MS: i64 = 15_000;
const BUCKETS: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn generate(series: usize, points: i64) -> MemoryStorage {
    let mut storage = MemoryStorage::new();
    for s in 0..series {
        let labels = Labels::from_pairs([
            ("__name__", "http_requests_total".to_string()),
            ("job", format!("job-{}", s % 10)),
            ("instance", format!("instance-{s}")),
        ]);
        let rate = 1.0 + (s % 7) as f64;
        let mut value = 0.0;
        for t in 0..points {
            value += rate * (1.0 + ((t + s as i64) % 5) as f64 / 10.0);
            // An occasional counter reset.
            if (t + s as i64) % 2000 == 0 {
                value = 0.0;
            }
            storage.append(&labels, t * SCRAPE_MS, value);
        }
    }
    let instances = series / BUCKETS.len();
    for i in 0..instances {
        for (b, le) in BUCKETS.iter().enumerate() {
            let labels = Labels::from_pairs([
                (
                    "__name__",
                    "http_request_duration_seconds_bucket".to_string(),
                ),
                ("instance", format!("instance-{i}")),
                ("le", (*le).to_string()),
            ]);
            let per_scrape = (b + 1) as f64 * (1.0 + (i % 3) as f64);
            for t in 0..points {
                storage.append(&labels, t * SCRAPE_MS, per_scrape * t as f64);
            }
        }
    }
    storage
}

fn bench(c: &mut Criterion) {
    let series = env_usize("STRATA_BENCH_SERIES", 10_000);
    let hours = env_usize("STRATA_BENCH_HOURS", 24) as i64;
    let points = hours * 3600 * 1000 / SCRAPE_MS;
    let storage = generate(series, points);
    let engine = Engine::new(EngineOptions {
        max_samples: usize::MAX,
        ..Default::default()
    });
    let end = (points - 1) * SCRAPE_MS;
    let shapes = [
        ("rate", "rate(http_requests_total[5m])"),
        (
            "sum_by_rate",
            "sum by (job) (rate(http_requests_total[5m]))",
        ),
        (
            "histogram_quantile",
            "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
        ),
        ("topk", "topk(5, rate(http_requests_total[5m]))"),
        (
            "subquery",
            "max_over_time(sum(rate(http_requests_total[5m]))[30m:1m])",
        ),
    ];
    let mut group = c.benchmark_group(format!("range_{series}x{hours}h_step15s"));
    group.sample_size(10);
    for (name, query) in shapes {
        group.bench_function(name, |b| {
            b.iter(
                || match engine.range_query(&storage, query, 0, end, SCRAPE_MS) {
                    Ok(r) => r.stats.samples_touched,
                    Err(e) => panic!("{query}: {e}"),
                },
            )
        });
    }
    group.finish();

    // The same fused shape on one thread, to show what the window parallelism buys.
    let single = Engine::new(EngineOptions {
        max_samples: usize::MAX,
        threads: 1,
        ..Default::default()
    });
    let mut group = c.benchmark_group(format!("range_{series}x{hours}h_step15s_1thread"));
    group.sample_size(10);
    group.bench_function("sum_by_rate", |b| {
        b.iter(|| {
            single
                .range_query(
                    &storage,
                    "sum by (job) (rate(http_requests_total[5m]))",
                    0,
                    end,
                    SCRAPE_MS,
                )
                .is_ok()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
