//! Compaction and downsampling throughput and peak memory on generated data, for the issue's
//! note: `SERIES` series scraped every `STEP_S` seconds for `DAYS` days, written as 2h blocks,
//! merged into one block (as the compactor merges a window), then downsampled to 5m.
//!
//! `cargo run --release -p strata-compactor --example throughput -- <SERIES> <DAYS> [STEP_S]`
//! prints samples/s of each phase and the process's peak RSS. Run it once per size (peak RSS
//! is per process).

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use strata_tsdb::Block;
use strata_tsdb::block::BlockWriter;
use strata_tsdb::compact::{CompactOptions, compact_blocks, encode_xor, merged_meta};
use strata_tsdb::downsample::{RES_5M, downsample_block, downsampled_meta};
use strata_tsdb::labels::Labels;
use strata_tsdb::meta::{BlockMeta, ThanosMeta};
use ulid::Ulid;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let series: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let days: i64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2);
    let step_ms: i64 = args
        .get(3)
        .and_then(|a| a.parse::<i64>().ok())
        .unwrap_or(15)
        * 1000;
    let dir = tempfile::tempdir()?;
    let sources_dir = dir.path().join("sources");
    std::fs::create_dir_all(&sources_dir)?;
    let two_hours = 7_200_000;
    let labels: Vec<Labels> = {
        let mut all: Vec<Labels> = (0..series)
            .map(|i| {
                Labels::from_pairs([
                    ("__name__", format!("metric_{}", i % 50)),
                    ("instance", format!("host-{:05}", i / 50)),
                    ("job", "bench".to_owned()),
                ])
            })
            .collect();
        all.sort();
        all
    };
    let mut symbols: Vec<String> = labels
        .iter()
        .flat_map(|l| {
            l.iter()
                .flat_map(|l| [l.name.clone(), l.value.clone()])
                .collect::<Vec<_>>()
        })
        .collect();
    symbols.sort();
    symbols.dedup();
    let thanos = ThanosMeta {
        labels: [("cluster".to_owned(), "bench".to_owned())].into(),
        source: "sidecar".to_owned(),
        ..Default::default()
    };
    let started = Instant::now();
    let mut blocks = Vec::new();
    for b in 0..(days * 12) {
        let (min, max) = (b * two_hours, (b + 1) * two_hours);
        let mut meta = BlockMeta::new(Ulid::new(), min, max);
        meta.thanos = Some(thanos.clone());
        let mut writer = BlockWriter::create(&sources_dir, meta, symbols.clone())?;
        for (i, l) in labels.iter().enumerate() {
            let samples = (0..)
                .map(|n| min + n * step_ms)
                .take_while(|t| *t < max)
                .map(|t| {
                    // Gauge-like values that XOR does not compress to nothing.
                    let n = (t / step_ms) as u64 ^ (i as u64).wrapping_mul(0x9E37_79B9);
                    let v = (n.wrapping_mul(2_654_435_761) % 100_000) as f64 / 100.0;
                    Ok::<_, strata_tsdb::Error>((t, v))
                });
            writer.add_series(l, &encode_xor(samples)?)?;
        }
        let (path, _) = writer.finish()?;
        blocks.push(Block::open(&path)?);
    }
    eprintln!(
        "generated {} blocks in {:.1}s",
        blocks.len(),
        started.elapsed().as_secs_f64()
    );
    let before = peak_rss_mib();

    let out = dir.path().join("out");
    std::fs::create_dir_all(&out)?;
    let metas: Vec<&BlockMeta> = blocks.iter().map(Block::meta).collect();
    let meta = merged_meta(Ulid::new(), &metas, Some(thanos.clone()));
    let started = Instant::now();
    let result = compact_blocks(&blocks, &out, meta, &CompactOptions::default(), Ulid::new)?;
    let compact_s = started.elapsed().as_secs_f64();
    let samples = result.stats.samples;
    drop(blocks);
    let (path, _) = &result.blocks[0];
    let merged = Block::open(path)?;
    let down_dir = dir.path().join("down");
    std::fs::create_dir_all(&down_dir)?;
    let started = Instant::now();
    let meta = downsampled_meta(merged.meta(), Ulid::new(), RES_5M);
    let (_, _, stats) = downsample_block(&merged, &down_dir, meta, &AtomicBool::new(false))?;
    let down_s = started.elapsed().as_secs_f64();
    println!(
        "series={series} days={days} step={}s samples={samples} compaction: {:.1}s {:.0} samples/s; downsampling to 5m: {:.1}s {:.0} samples/s; peak RSS {:.0} MiB (after generating the input: {:.0} MiB)",
        step_ms / 1000,
        compact_s,
        samples as f64 / compact_s,
        down_s,
        stats.samples_in as f64 / down_s,
        peak_rss_mib(),
        before
    );
    Ok(())
}
