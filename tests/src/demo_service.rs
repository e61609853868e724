//! Data in the shape of the PromLabs demo service, which the PromQL compliance tester's query
//! set (`../shared/promql-compliance/`) was written for: three instances
//! `demo.promlabs.com:1000{0,1,2}` of job `demo`, scraped every 5 s, exposing
//! `demo_memory_usage_bytes{type}`, `demo_num_cpus`, `demo_cpu_usage_seconds_total{mode}`,
//! `demo_disk_usage_bytes`, the classic histogram `demo_api_request_duration_seconds`
//! `{method,path,status}`, `demo_intermittent_metric` (present some minutes, gone others) and
//! `demo_batch_last_success_timestamp_seconds`. One instance restarts midway, so its counters
//! reset. Deterministic: the same window gives the same text on every run.

use std::fmt::Write as _;

use crate::prom::SplitMix64;

/// The scrape interval of the compliance tester's Prometheus configuration.
pub const SCRAPE_INTERVAL_MS: i64 = 5_000;

const INSTANCES: [&str; 3] = [
    "demo.promlabs.com:10000",
    "demo.promlabs.com:10001",
    "demo.promlabs.com:10002",
];
const MEMORY_TYPES: [&str; 4] = ["buffers", "cached", "free", "used"];
const CPU_MODES: [&str; 3] = ["idle", "system", "user"];
const BUCKETS: [f64; 8] = [0.0001, 0.00025, 0.001, 0.0025, 0.01, 0.025, 0.1, 0.25];
const METHODS: [&str; 2] = ["GET", "POST"];
const PATHS: [&str; 2] = ["/api/bar", "/api/foo"];
const STATUSES: [&str; 2] = ["200", "500"];

/// One scrape's timestamps for one instance: every 5 s with a few ms of jitter.
fn scrape_times(start_ms: i64, end_ms: i64, instance: usize) -> impl Iterator<Item = i64> {
    let offset = 1_000 + 700 * instance as i64;
    (0..)
        .map(move |i| start_ms + offset + i * SCRAPE_INTERVAL_MS + (i * 7 + instance as i64) % 4)
        .take_while(move |&t| t < end_ms)
}

fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// `v` the way a Go exporter prints it: integers without a fraction, otherwise shortest.
fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn family(out: &mut String, name: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} Demo service metric.");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn line(out: &mut String, name: &str, labels: &str, value: f64, t: i64) {
    let _ = writeln!(out, "{name}{{{labels}}} {} {}", number(value), seconds(t));
}

/// Whether `instance` restarts (its counters go back to zero) between scrapes `last` and `t`.
fn restarts_between(instance: usize, last: i64, t: i64, restart_ms: i64) -> bool {
    instance == 1 && last < restart_ms && t >= restart_ms
}

fn base_labels(instance: usize) -> String {
    format!("instance=\"{}\",job=\"demo\"", INSTANCES[instance])
}

/// OpenMetrics text (ending in `# EOF`) for scrapes in `[start_ms, end_ms)`. Instance 1
/// restarts at `restart_ms`: its counters start again from zero there.
pub fn generate_openmetrics(start_ms: i64, end_ms: i64, restart_ms: i64) -> String {
    let samples = ((end_ms - start_ms) / SCRAPE_INTERVAL_MS).max(0) as usize;
    let mut out = String::with_capacity(samples * INSTANCES.len() * 130 * 110);
    let mut rng = SplitMix64::new(7);

    family(&mut out, "demo_memory_usage_bytes", "gauge");
    for instance in 0..INSTANCES.len() {
        for (k, kind) in MEMORY_TYPES.iter().enumerate() {
            let labels = format!("{},type=\"{kind}\"", base_labels(instance));
            let mut value = 1e8 * (k as f64 + 1.0) + 3e7 * instance as f64;
            for t in scrape_times(start_ms, end_ms, instance) {
                value = (value + (rng.next_f64() - 0.5) * 4e6).max(1e6).round();
                line(&mut out, "demo_memory_usage_bytes", &labels, value, t);
            }
        }
    }

    family(&mut out, "demo_num_cpus", "gauge");
    for instance in 0..INSTANCES.len() {
        let labels = base_labels(instance);
        for t in scrape_times(start_ms, end_ms, instance) {
            line(
                &mut out,
                "demo_num_cpus",
                &labels,
                (2 + 2 * instance) as f64,
                t,
            );
        }
    }

    family(&mut out, "demo_cpu_usage_seconds_total", "counter");
    for instance in 0..INSTANCES.len() {
        let cpus = (2 + 2 * instance) as f64;
        for (m, mode) in CPU_MODES.iter().enumerate() {
            let labels = format!("{},mode=\"{mode}\"", base_labels(instance));
            let share = [0.7, 0.1, 0.2][m];
            let mut value = 1000.0 * share * (instance as f64 + 1.0);
            let mut last = i64::MIN;
            for t in scrape_times(start_ms, end_ms, instance) {
                if restarts_between(instance, last, t, restart_ms) {
                    value = 0.0;
                }
                value += cpus * 5.0 * share * (0.8 + 0.4 * rng.next_f64());
                line(&mut out, "demo_cpu_usage_seconds_total", &labels, value, t);
                last = t;
            }
        }
    }

    family(&mut out, "demo_disk_usage_bytes", "gauge");
    for instance in 0..INSTANCES.len() {
        let labels = base_labels(instance);
        let mut value = 5e10 + 1e9 * instance as f64;
        for t in scrape_times(start_ms, end_ms, instance) {
            value += 2e5 * (instance as f64 + 1.0) + (rng.next_f64() - 0.3) * 1e5;
            line(&mut out, "demo_disk_usage_bytes", &labels, value.round(), t);
        }
    }

    family(&mut out, "demo_api_request_duration_seconds", "histogram");
    for instance in 0..INSTANCES.len() {
        for method in METHODS {
            for path in PATHS {
                for status in STATUSES {
                    histogram(
                        &mut out,
                        &mut rng,
                        instance,
                        [method, path, status],
                        start_ms,
                        end_ms,
                        restart_ms,
                    );
                }
            }
        }
    }

    family(&mut out, "demo_intermittent_metric", "gauge");
    for instance in 0..INSTANCES.len() {
        let labels = base_labels(instance);
        // Present for four minutes out of seven, each instance with its own phase.
        let period = 7 * 60_000;
        for t in scrape_times(start_ms, end_ms, instance) {
            if (t + instance as i64 * 100_000).rem_euclid(period) < 4 * 60_000 {
                line(&mut out, "demo_intermittent_metric", &labels, 1.0, t);
            }
        }
    }

    family(
        &mut out,
        "demo_batch_last_success_timestamp_seconds",
        "gauge",
    );
    for instance in 0..INSTANCES.len() {
        let labels = base_labels(instance);
        let mut last_success = (start_ms / 1000 - 300) as f64;
        for t in scrape_times(start_ms, end_ms, instance) {
            // A batch job succeeds every few minutes; now and then one fails and the gap grows.
            if rng.below(40) == 0 {
                last_success = (t / 1000) as f64;
            }
            line(
                &mut out,
                "demo_batch_last_success_timestamp_seconds",
                &labels,
                last_success,
                t,
            );
        }
    }

    out.push_str("# EOF\n");
    out
}

/// One label set of the request-duration histogram: cumulative buckets, sum and count.
fn histogram(
    out: &mut String,
    rng: &mut SplitMix64,
    instance: usize,
    [method, path, status]: [&str; 3],
    start_ms: i64,
    end_ms: i64,
    restart_ms: i64,
) {
    let name = "demo_api_request_duration_seconds";
    let labels = format!(
        "{},method=\"{method}\",path=\"{path}\",status=\"{status}\"",
        base_labels(instance)
    );
    let rate = if status == "500" { 2 } else { 25 };
    let mean = if path == "/api/foo" { 0.004 } else { 0.02 };
    let bounds: Vec<String> = BUCKETS
        .iter()
        .map(|b| number(*b))
        .chain(["+Inf".to_owned()])
        .collect();
    let mut counts = [0u64; BUCKETS.len() + 1];
    let mut sum = 0.0;
    let mut last = i64::MIN;
    for t in scrape_times(start_ms, end_ms, instance) {
        if restarts_between(instance, last, t, restart_ms) {
            counts = [0; BUCKETS.len() + 1];
            sum = 0.0;
        }
        last = t;
        for _ in 0..rng.below(rate) {
            // Latencies spread over the buckets: exponential around a path-dependent mean.
            let latency = -mean * (1.0 - rng.next_f64()).ln();
            sum += latency;
            let slot = BUCKETS
                .iter()
                .position(|&le| latency <= le)
                .unwrap_or(BUCKETS.len());
            counts[slot] += 1;
        }
        let mut cumulative = 0u64;
        for (le, count) in bounds.iter().zip(&counts) {
            cumulative += count;
            let bucket_labels = format!("{labels},le=\"{le}\"");
            line(
                out,
                &format!("{name}_bucket"),
                &bucket_labels,
                cumulative as f64,
                t,
            );
        }
        line(out, &format!("{name}_count"), &labels, cumulative as f64, t);
        line(out, &format!("{name}_sum"), &labels, sum, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_reset_once_and_buckets_are_cumulative() {
        let text = generate_openmetrics(0, 600_000, 300_000);
        assert!(text.ends_with("# EOF\n"));
        let values = |prefix: &str| -> Vec<f64> {
            text.lines()
                .filter(|l| l.starts_with(prefix))
                .filter_map(|l| l.split(' ').nth(1)?.parse().ok())
                .collect()
        };
        let cpu = values(
            "demo_cpu_usage_seconds_total{instance=\"demo.promlabs.com:10001\",job=\"demo\",mode=\"idle\"}",
        );
        let resets = cpu.windows(2).filter(|w| w[1] < w[0]).count();
        assert_eq!(resets, 1, "one restart");
        let steady = values(
            "demo_cpu_usage_seconds_total{instance=\"demo.promlabs.com:10000\",job=\"demo\",mode=\"idle\"}",
        );
        assert!(steady.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(steady.len(), 120);
        let prefix = "demo_api_request_duration_seconds_bucket{instance=\"demo.promlabs.com:10000\",job=\"demo\",method=\"GET\",path=\"/api/foo\",status=\"200\"";
        let small = values(&format!("{prefix},le=\"0.001\"}}"));
        let all = values(&format!("{prefix},le=\"+Inf\"}}"));
        assert_eq!(small.len(), all.len());
        assert!(small.iter().zip(&all).all(|(s, a)| s <= a));
        assert!(all.last().is_some_and(|&n| n > 100.0));
    }
}
