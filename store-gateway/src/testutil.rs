//! Test fixtures: a FILESYSTEM bucket and small blocks written into it with the tsdb crate.

use std::path::Path;

use strata_common::objstore::{Bucket, BucketConfig, BucketMetrics};
use strata_tsdb::BlockWriter;
use strata_tsdb::block::SeriesChunk;
use strata_tsdb::chunkenc::{Chunk, Encoding, XorAppender};
use strata_tsdb::labels::Labels;
use strata_tsdb::meta::{BlockMeta, ThanosMeta};
use ulid::Ulid;

/// A FILESYSTEM bucket rooted at `dir`.
pub fn bucket(dir: &Path) -> Bucket {
    let yaml = format!(
        "type: FILESYSTEM\nconfig:\n  directory: {}\n",
        dir.display()
    );
    let config = BucketConfig::parse(&yaml).expect("filesystem config");
    Bucket::from_config_with_metrics(&config, BucketMetrics::unregistered()).expect("bucket")
}

/// One test series: labels and samples (one XOR chunk per 120 samples).
pub type TestSeries = (Labels, Vec<(i64, f64)>);

/// Writes a block holding `series` (any order) with external labels `external` into the bucket
/// directory `dir` and returns its ULID.
pub fn write_block(dir: &Path, external: &[(&str, &str)], series: &[TestSeries]) -> Ulid {
    write_block_with_resolution(dir, external, series, 0)
}

/// Like [`write_block`]; with a non-zero `resolution` the block is a downsampled one whose
/// chunks are aggregate chunks (count: 1 per sample, sum/min/max/counter: the values).
pub fn write_block_with_resolution(
    dir: &Path,
    external: &[(&str, &str)],
    series: &[TestSeries],
    resolution: i64,
) -> Ulid {
    let mut series: Vec<&TestSeries> = series.iter().collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let min_time = series
        .iter()
        .filter_map(|s| s.1.first().map(|p| p.0))
        .min()
        .unwrap_or(0);
    let max_time = series
        .iter()
        .filter_map(|s| s.1.last().map(|p| p.0))
        .max()
        .unwrap_or(0)
        + 1;
    let mut symbols: Vec<String> = series
        .iter()
        .flat_map(|s| s.0.iter().flat_map(|l| [l.name.clone(), l.value.clone()]))
        .collect();
    symbols.push(String::new());
    symbols.sort();
    symbols.dedup();
    let mut meta = BlockMeta::new(Ulid::new(), min_time, max_time);
    meta.thanos = Some(ThanosMeta {
        labels: external
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        source: "test".to_owned(),
        downsample: strata_tsdb::meta::ThanosDownsample { resolution },
        ..Default::default()
    });
    let mut writer = BlockWriter::create(dir, meta, symbols).expect("create block");
    for (labels, samples) in series {
        let mut chunks = Vec::new();
        for part in samples.chunks(120) {
            let xor = |value: &dyn Fn(f64) -> f64| {
                let mut appender = XorAppender::new();
                for (t, v) in part {
                    appender.append(*t, value(*v)).expect("append");
                }
                Chunk::new(Encoding::Xor, appender.bytes())
            };
            let chunk = if resolution == 0 {
                xor(&|v| v)
            } else {
                strata_tsdb::chunkenc::AggrChunk::new([
                    Some(xor(&|_| 1.0)),
                    Some(xor(&|v| v)),
                    Some(xor(&|v| v)),
                    Some(xor(&|v| v)),
                    Some(xor(&|v| v)),
                ])
                .to_chunk()
            };
            chunks.push(SeriesChunk {
                min_time: part.first().map_or(0, |p| p.0),
                max_time: part.last().map_or(0, |p| p.0),
                chunk,
            });
        }
        writer.add_series(labels, &chunks).expect("add series");
    }
    let (_, meta) = writer.finish().expect("finish block");
    meta.ulid
}

/// `count` series `{__name__="metric", i="<n>", mod="<n % 3>"}` with samples every 15s.
pub fn numbered_series(count: usize, samples: usize) -> Vec<TestSeries> {
    (0..count)
        .map(|i| {
            let labels = Labels::from_pairs([
                ("__name__", "metric".to_owned()),
                ("i", format!("{i:04}")),
                ("mod", (i % 3).to_string()),
            ]);
            let points = (0..samples)
                .map(|s| (s as i64 * 15_000, (i * 1000 + s) as f64))
                .collect();
            (labels, points)
        })
        .collect()
}
