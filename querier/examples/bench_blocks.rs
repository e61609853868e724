//! Writes the benchmark data set of `bench/querier_vs_prometheus.sh` as Prometheus blocks,
//! twice: into `OUT/prom` as Prometheus writes them (for Prometheus 2.42 itself) and into
//! `OUT/bucket` with a Thanos section carrying external labels (for the store gateway).
//!
//! The data: `SERIES` series over `HOURS` hours at a 15 s interval ending at `END_S`, cut into
//! 2 h blocks; 80% are `bench_requests_total{instance, job, code}` counters, 20% are
//! `bench_latency_seconds_bucket{instance, le}` classic histogram buckets.
//!
//! Usage: `bench_blocks OUT SERIES HOURS END_S`

use std::collections::BTreeSet;
use std::path::Path;

use strata_tsdb::block::{BlockWriter, SeriesChunk};
use strata_tsdb::chunkenc::{Chunk, Encoding, XorAppender};
use strata_tsdb::labels::Labels;
use strata_tsdb::meta::{BlockMeta, ThanosMeta};

const INTERVAL_MS: i64 = 15_000;
const BLOCK_MS: i64 = 2 * 3_600_000;
const SAMPLES_PER_CHUNK: usize = 120;
const LE: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
];

/// One generated series: labels and a deterministic counter slope.
struct SeriesSpec {
    labels: Labels,
    slope: f64,
}

fn series_specs(total: usize) -> Vec<SeriesSpec> {
    let counters = total * 4 / 5;
    let mut specs = Vec::with_capacity(total);
    let codes = ["200", "404", "500", "503"];
    let jobs = ["api", "db", "web", "cache"];
    for i in 0..counters {
        let labels = Labels::from_pairs([
            ("__name__", "bench_requests_total".to_owned()),
            ("code", codes[i % 4].to_owned()),
            ("instance", format!("host-{:05}", i / 4)),
            ("job", jobs[(i / 4) % 4].to_owned()),
        ]);
        specs.push(SeriesSpec {
            labels,
            slope: 1.0 + (i % 7) as f64,
        });
    }
    let histograms = (total - counters) / LE.len();
    for h in 0..histograms {
        for (b, le) in LE.iter().enumerate() {
            let labels = Labels::from_pairs([
                ("__name__", "bench_latency_seconds_bucket".to_owned()),
                ("instance", format!("host-{h:05}")),
                ("le", (*le).to_owned()),
            ]);
            specs.push(SeriesSpec {
                labels,
                slope: (b + 1) as f64 * (1.0 + (h % 3) as f64),
            });
        }
    }
    specs.sort_by(|a, b| a.labels.cmp(&b.labels));
    specs
}

/// Counter value at `t`: a slope with a small deterministic wobble and a reset every 6 h.
fn value(spec: &SeriesSpec, index: usize, t: i64) -> f64 {
    let since_reset = t.rem_euclid(6 * 3_600_000) as f64 / 1000.0;
    (since_reset * spec.slope + ((t / INTERVAL_MS) as usize % (index % 5 + 2)) as f64).floor()
}

fn write_block(
    dir: &Path,
    specs: &[SeriesSpec],
    symbols: &[String],
    min_time: i64,
    max_time: i64,
    external: Option<&[(&str, &str)]>,
) -> anyhow::Result<()> {
    let ulid = ulid::Ulid::from_parts(min_time as u64, u128::from(external.is_some()));
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
    let mut writer = BlockWriter::create(dir, meta, symbols.to_vec())?;
    for (index, spec) in specs.iter().enumerate() {
        let timestamps: Vec<i64> = (0..)
            .map(|i| min_time + i * INTERVAL_MS)
            .take_while(|t| *t < max_time)
            .collect();
        let mut chunks = Vec::new();
        for part in timestamps.chunks(SAMPLES_PER_CHUNK) {
            let mut appender = XorAppender::new();
            for &t in part {
                appender.append(t, value(spec, index, t))?;
            }
            if let (Some(first), Some(last)) = (part.first(), part.last()) {
                chunks.push(SeriesChunk {
                    min_time: *first,
                    max_time: *last,
                    chunk: Chunk::new(Encoding::Xor, appender.bytes()),
                });
            }
        }
        writer.add_series(&spec.labels, &chunks)?;
    }
    writer.finish()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, out, series, hours, end_s] = args.as_slice() else {
        anyhow::bail!("usage: bench_blocks OUT SERIES HOURS END_S");
    };
    let out = Path::new(out);
    let series: usize = series.parse()?;
    let hours: i64 = hours.parse()?;
    let end_ms = end_s.parse::<i64>()? * 1000;
    let end_ms = end_ms - end_ms.rem_euclid(BLOCK_MS);
    let start_ms = end_ms - hours * 3_600_000;
    let specs = series_specs(series);
    let symbols: BTreeSet<String> = specs
        .iter()
        .flat_map(|spec| {
            spec.labels
                .iter()
                .flat_map(|label| [label.name.clone(), label.value.clone()])
        })
        .collect();
    let symbols: Vec<String> = symbols.into_iter().collect();
    let prom = out.join("prom");
    let bucket = out.join("bucket");
    std::fs::create_dir_all(&prom)?;
    std::fs::create_dir_all(&bucket)?;
    let mut block_start = start_ms;
    while block_start < end_ms {
        let block_end = block_start + BLOCK_MS;
        write_block(&prom, &specs, &symbols, block_start, block_end, None)?;
        write_block(
            &bucket,
            &specs,
            &symbols,
            block_start,
            block_end,
            Some(&[("cluster", "bench")]),
        )?;
        block_start = block_end;
    }
    println!("{start_ms} {end_ms}");
    Ok(())
}
