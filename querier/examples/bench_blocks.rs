//! Writes the benchmark data set of `bench/querier_vs_prometheus.sh` as Prometheus blocks,
//! twice: into `OUT/prom` as Prometheus writes them (for Prometheus 2.42 itself) and into
//! `OUT/bucket` with a Thanos section carrying external labels (for the store gateway); or,
//! with `--vm-jsonl`, the same samples as VictoriaMetrics' JSON-lines import format on stdout
//! (one line per series, for `POST /api/v1/import`).
//!
//! The data: `SERIES` series over `HOURS` hours at a 15 s interval ending at `END_S`, cut into
//! 2 h blocks; 80% are `bench_requests_total{instance, job, code}` counters, 20% are
//! `bench_latency_seconds_bucket{instance, le}` classic histogram buckets.
//!
//! `CLUSTERS` (default 1): with 1, every series is in one bucket block per 2 h carrying the
//! external label `cluster="bench"` and the Prometheus copy has no `cluster` label (the data of
//! one Prometheus). With N > 1, series are spread over clusters `c0..c{N-1}` as real multi-cluster
//! data is: the Prometheus copy (and the VictoriaMetrics lines) carry `cluster` as a series label,
//! the bucket holds one block per cluster per 2 h with `cluster` as its external label, so all
//! three systems hold the same series with the same labels.
//!
//! Usage: `bench_blocks OUT SERIES HOURS END_S [CLUSTERS]` (prints `START_MS END_MS`), or
//! `bench_blocks --vm-jsonl SERIES HOURS END_S [CLUSTERS]`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use strata_tsdb::block::{BlockWriter, SeriesChunk};
use strata_tsdb::chunkenc::{Chunk, Encoding, XorAppender};
use strata_tsdb::labels::{Label, Labels};
use strata_tsdb::meta::{BlockMeta, ThanosMeta};

const INTERVAL_MS: i64 = 15_000;
const BLOCK_MS: i64 = 2 * 3_600_000;
const SAMPLES_PER_CHUNK: usize = 120;
const LE: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
];

/// One generated series: labels (with `cluster` when the data has several), the cluster it
/// belongs to, its index in the generated order (the value wobble) and a counter slope.
struct SeriesSpec {
    labels: Labels,
    cluster: usize,
    index: usize,
    slope: f64,
}

fn series_specs(total: usize, clusters: usize) -> Vec<SeriesSpec> {
    let counters = total * 4 / 5;
    let mut specs = Vec::with_capacity(total);
    let codes = ["200", "404", "500", "503"];
    let jobs = ["api", "db", "web", "cache"];
    let with_cluster = |mut pairs: Vec<(&str, String)>, cluster: usize| {
        if clusters > 1 {
            pairs.push(("cluster", format!("c{cluster}")));
        }
        Labels::from_pairs(pairs)
    };
    for i in 0..counters {
        let host = i / 4;
        let cluster = host % clusters;
        let labels = with_cluster(
            vec![
                ("__name__", "bench_requests_total".to_owned()),
                ("code", codes[i % 4].to_owned()),
                ("instance", format!("host-{host:05}")),
                ("job", jobs[host % 4].to_owned()),
            ],
            cluster,
        );
        specs.push(SeriesSpec {
            labels,
            cluster,
            index: 0,
            slope: 1.0 + (i % 7) as f64,
        });
    }
    let histograms = (total - counters) / LE.len();
    for h in 0..histograms {
        let cluster = h % clusters;
        for (b, le) in LE.iter().enumerate() {
            let labels = with_cluster(
                vec![
                    ("__name__", "bench_latency_seconds_bucket".to_owned()),
                    ("instance", format!("host-{h:05}")),
                    ("le", (*le).to_owned()),
                ],
                cluster,
            );
            specs.push(SeriesSpec {
                labels,
                cluster,
                index: 0,
                slope: (b + 1) as f64 * (1.0 + (h % 3) as f64),
            });
        }
    }
    specs.sort_by(|a, b| a.labels.cmp(&b.labels));
    for (index, spec) in specs.iter_mut().enumerate() {
        spec.index = index;
    }
    specs
}

/// Counter value at `t`: a slope with a small deterministic wobble and a reset every 6 h.
fn value(spec: &SeriesSpec, t: i64) -> f64 {
    let since_reset = t.rem_euclid(6 * 3_600_000) as f64 / 1000.0;
    (since_reset * spec.slope + ((t / INTERVAL_MS) as usize % (spec.index % 5 + 2)) as f64).floor()
}

/// The sample timestamps of `[min_time, max_time)`.
fn timestamps(min_time: i64, max_time: i64) -> impl Iterator<Item = i64> {
    (0..)
        .map(move |i| min_time + i * INTERVAL_MS)
        .take_while(move |t| *t < max_time)
}

/// The symbols of `labels_of` over `specs`, sorted.
fn symbols<'a>(specs: impl Iterator<Item = &'a Labels>) -> Vec<String> {
    let set: BTreeSet<String> = specs
        .flat_map(|labels| {
            labels
                .iter()
                .flat_map(|label| [label.name.clone(), label.value.clone()])
        })
        .collect();
    set.into_iter().collect()
}

/// `labels` without `cluster` (the bucket copy carries it as an external label).
fn without_cluster(labels: &Labels) -> Labels {
    Labels::from_sorted(
        labels
            .iter()
            .filter(|label| label.name != "cluster")
            .cloned()
            .collect::<Vec<Label>>(),
    )
}

/// Writes one block of `series` (labels as written, with the spec giving the values).
fn write_block(
    dir: &Path,
    series: &[(Labels, &SeriesSpec)],
    ulid_random: u128,
    min_time: i64,
    max_time: i64,
    external: Option<&[(&str, &str)]>,
) -> anyhow::Result<()> {
    let ulid = ulid::Ulid::from_parts(min_time as u64, ulid_random);
    let mut meta = BlockMeta::new(ulid, min_time, max_time);
    if let Some(external) = external {
        meta.thanos = Some(ThanosMeta {
            labels: external
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            source: "bench".to_owned(),
            ..ThanosMeta::default()
        });
    }
    let symbols = symbols(series.iter().map(|(labels, _)| labels));
    let mut writer = BlockWriter::create(dir, meta, symbols)?;
    let stamps: Vec<i64> = timestamps(min_time, max_time).collect();
    for (labels, spec) in series {
        let mut chunks = Vec::new();
        for part in stamps.chunks(SAMPLES_PER_CHUNK) {
            let mut appender = XorAppender::new();
            for &t in part {
                appender.append(t, value(spec, t))?;
            }
            if let (Some(first), Some(last)) = (part.first(), part.last()) {
                chunks.push(SeriesChunk {
                    min_time: *first,
                    max_time: *last,
                    chunk: Chunk::new(Encoding::Xor, appender.bytes()),
                });
            }
        }
        writer.add_series(labels, &chunks)?;
    }
    writer.finish()?;
    Ok(())
}

/// Writes every series as one VictoriaMetrics import line (`{"metric":..,"values":..,
/// "timestamps":..}`) to stdout.
fn write_vm_jsonl(specs: &[SeriesSpec], start_ms: i64, end_ms: i64) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let stamps: Vec<i64> = timestamps(start_ms, end_ms).collect();
    for spec in specs {
        let metric: serde_json::Map<String, serde_json::Value> = spec
            .labels
            .iter()
            .map(|label| (label.name.clone(), label.value.clone().into()))
            .collect();
        write!(
            out,
            "{{\"metric\":{},\"values\":[",
            serde_json::Value::Object(metric)
        )?;
        for (i, &t) in stamps.iter().enumerate() {
            let separator = if i == 0 { "" } else { "," };
            write!(out, "{separator}{}", value(spec, t))?;
        }
        out.write_all(b"],\"timestamps\":[")?;
        for (i, t) in stamps.iter().enumerate() {
            let separator = if i == 0 { "" } else { "," };
            write!(out, "{separator}{t}")?;
        }
        out.write_all(b"]}\n")?;
    }
    out.flush()?;
    Ok(())
}

/// `[start_ms, end_ms)`: `hours` ending at the 2 h boundary at or before `end_s`.
fn data_range(hours: &str, end_s: &str) -> anyhow::Result<(i64, i64)> {
    let hours: i64 = hours.parse()?;
    let end_ms = end_s.parse::<i64>()? * 1000;
    let end_ms = end_ms - end_ms.rem_euclid(BLOCK_MS);
    Ok((end_ms - hours * 3_600_000, end_ms))
}

fn parse_clusters(arg: Option<&String>) -> anyhow::Result<usize> {
    let clusters = arg.map_or(Ok(1), |text| text.parse::<usize>())?;
    anyhow::ensure!(clusters >= 1, "CLUSTERS must be at least 1");
    Ok(clusters)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--vm-jsonl") {
        let (Some(series), Some(hours), Some(end_s)) = (args.get(2), args.get(3), args.get(4))
        else {
            anyhow::bail!("usage: bench_blocks --vm-jsonl SERIES HOURS END_S [CLUSTERS]");
        };
        let specs = series_specs(series.parse()?, parse_clusters(args.get(5))?);
        let (start_ms, end_ms) = data_range(hours, end_s)?;
        return write_vm_jsonl(&specs, start_ms, end_ms);
    }
    let (Some(out), Some(series), Some(hours), Some(end_s)) =
        (args.get(1), args.get(2), args.get(3), args.get(4))
    else {
        anyhow::bail!("usage: bench_blocks OUT SERIES HOURS END_S [CLUSTERS]");
    };
    let clusters = parse_clusters(args.get(5))?;
    let out = Path::new(out);
    let specs = series_specs(series.parse()?, clusters);
    let (start_ms, end_ms) = data_range(hours, end_s)?;
    let prom = out.join("prom");
    let bucket = out.join("bucket");
    std::fs::create_dir_all(&prom)?;
    std::fs::create_dir_all(&bucket)?;
    let prom_series: Vec<(Labels, &SeriesSpec)> = specs
        .iter()
        .map(|spec| (spec.labels.clone(), spec))
        .collect();
    let mut block_start = start_ms;
    while block_start < end_ms {
        let block_end = block_start + BLOCK_MS;
        write_block(&prom, &prom_series, 0, block_start, block_end, None)?;
        if clusters == 1 {
            write_block(
                &bucket,
                &prom_series,
                1,
                block_start,
                block_end,
                Some(&[("cluster", "bench")]),
            )?;
        } else {
            for cluster in 0..clusters {
                let name = format!("c{cluster}");
                let series: Vec<(Labels, &SeriesSpec)> = specs
                    .iter()
                    .filter(|spec| spec.cluster == cluster)
                    .map(|spec| (without_cluster(&spec.labels), spec))
                    .collect();
                write_block(
                    &bucket,
                    &series,
                    1 + cluster as u128,
                    block_start,
                    block_end,
                    Some(&[("cluster", name.as_str())]),
                )?;
            }
        }
        block_start = block_end;
    }
    println!("{start_ms} {end_ms}");
    Ok(())
}
