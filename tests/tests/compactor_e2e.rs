//! End-to-end: the real `strata-compactor` on promtool-backfilled blocks (Prometheus 2.42),
//! with the real store gateway and querier asked before and after.
//!
//! - Two clusters, 3 days of 2h blocks each, FILESYSTEM bucket: one run compacts each cluster
//!   to the 2d level (the newest block aside), the raw data dumps exactly as before
//!   (promtool), range queries answer identically, and the 2d blocks get 5m blocks whose
//!   max/min/sum/count/avg_over_time over 5m-aligned windows equal the raw answers, and
//!   rate/increase stay within a stated tolerance: with `max_source_resolution=5m`, and from
//!   a querier started with `--query.auto-downsampling` asked with a 30m step.
//! - 16 days of one cluster: the first 14 days become one raw block, its 5m and its 1h
//!   block; a `--query.auto-downsampling` querier asked with a 6h step reads the 1h block,
//!   answers like raw over whole hours, and its instant selectors look back 1h.
//! - An HA pair in a real S3 server (moto): with `--deduplication.replica-label=replica` and
//!   `--deduplication.func=penalty` the overlapping replicas merge into blocks without the
//!   label that answer what the querier's dedup=true answered before.
//! - A corrupt block is marked no-compact and the rest compacted; the process stays healthy.
//! - kill -9 at random points of runs, then a full run: the data is unchanged, no sample is
//!   served twice, and no object is left once the delete delay has passed.
//!
//! Sizes are CI-sized; `STRATA_TEST_COMPACTOR_SERIES` (series per kind and cluster) and
//! `STRATA_TEST_KILL_POINTS` (default 3; the acceptance run uses 20) scale them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use strata_tests::bins::{Service, StrataProcess};
use strata_tests::compactor::{
    QueryStack, blocks, bucket, directories, dump_bucket_blocks, dump_local_blocks, openmetrics,
    run_once,
};
use strata_tests::prom::{SplitMix64, create_blocks};
use strata_tests::s3::S3Server;
use strata_tests::store_gateway::{filesystem_objstore_yaml, upload_blocks};

const H: i64 = 3_600_000;
/// A 2d boundary: 2023-11-13T00:00:00Z is 19674 days after the epoch, an even number.
const START: i64 = 19_674 * 86_400_000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn series() -> usize {
    env("STRATA_TEST_COMPACTOR_SERIES", 4)
}

/// Backfills `text` into 2h blocks under `dir`.
fn backfill(text: &str, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    create_blocks(text, dir)
}

fn hours(meta: &strata_tsdb::meta::BlockMeta) -> (i64, i64) {
    (
        (meta.min_time - START).div_euclid(H),
        (meta.max_time - START + H - 1).div_euclid(H),
    )
}

/// Samples every 60 s at 7 s past the minute, never on a 5-minute boundary.
fn cluster_data(seed: u64, days: i64) -> String {
    openmetrics(
        seed,
        series(),
        series(),
        START,
        days * 86_400_000,
        60_000,
        7_000,
        None,
    )
}

#[tokio::test]
async fn two_clusters_compact_to_2d_and_downsampled_data_answers_like_raw() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bucket_dir = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket_dir)?;
    let yaml = filesystem_objstore_yaml(&bucket_dir);
    let mut sources: BTreeMap<&str, Vec<PathBuf>> = BTreeMap::new();
    for (cluster, seed) in [("a", 1u64), ("b", 2)] {
        let local = dir.path().join(format!("prom-{cluster}"));
        let created = backfill(&cluster_data(seed, 3), &local)?;
        assert_eq!(created.len(), 36, "3 days of 2h blocks");
        upload_blocks(&yaml, &created, &[("cluster", cluster)]).await?;
        sources.insert(cluster, created);
    }
    let end = START + 3 * 86_400_000;
    let queries = [
        "compactor_temperature",
        "sum by (cluster) (rate(compactor_requests_total[10m]))",
        "max_over_time(compactor_temperature[1h])",
        "count_over_time({__name__=~\"compactor_.+\"}[30m])",
    ];
    let before = {
        let stack = QueryStack::start(&yaml, &[]).await?;
        let mut answers = Vec::new();
        for query in queries {
            answers.push(
                stack
                    .query_range(query, START, end, 15 * 60_000, "")
                    .await?,
            );
        }
        stack.stop().await?;
        answers
    };

    let data = dir.path().join("compactor-data");
    let (status, logs) = run_once(&yaml, &data, &["--delete-delay=0s"])?;
    assert!(status.success(), "{logs}");

    let bucket = bucket(&yaml)?;
    let all = blocks(&bucket).await?;
    for (cluster, created) in &sources {
        let mine: Vec<_> = all
            .iter()
            .filter(|(m, _)| {
                m.thanos
                    .as_ref()
                    .is_some_and(|t| t.labels["cluster"] == *cluster)
            })
            .collect();
        let raw: Vec<_> = mine.iter().filter(|(m, _)| m.resolution() == 0).collect();
        let layout: Vec<(i64, i64)> = raw.iter().map(|(m, _)| hours(m)).collect();
        // Thanos's planner: the first 2d window compacted to the 2d level, the third day to
        // 8h blocks as far as the newest block allows, the newest left alone.
        assert_eq!(
            layout,
            [
                (0, 48),
                (48, 56),
                (56, 64),
                (64, 66),
                (66, 68),
                (68, 70),
                (70, 72)
            ],
            "cluster {cluster}"
        );
        assert_eq!(raw[0].0.compaction.level, 3);
        assert_eq!(raw[0].0.compaction.sources.len(), 24);
        assert!(raw.iter().all(|(_, o)| !o.has_deletion_mark));
        let ids: Vec<_> = raw.iter().map(|(m, _)| m.ulid).collect();
        let after = dump_bucket_blocks(&bucket, &ids).await?;
        let want = dump_local_blocks(created)?;
        assert!(
            after == want,
            "cluster {cluster}: compacted data differs from the sources"
        );
        // The 2d block was downsampled to 5m, with the same sources.
        let five: Vec<_> = mine
            .iter()
            .filter(|(m, _)| m.resolution() == 300_000)
            .collect();
        assert_eq!(five.len(), 1, "cluster {cluster}");
        assert_eq!(five[0].0.compaction.sources, raw[0].0.compaction.sources);
    }
    // The sources are gone (delete delay 0), nothing partial is left.
    let dirs = directories(&bucket).await?;
    assert!(dirs.values().all(|o| o.has_meta && !o.has_deletion_mark));
    assert_eq!(dirs.len(), 2 * 8);

    let stack = QueryStack::start(&yaml, &[]).await?;
    for (query, want) in queries.iter().zip(&before) {
        let got = stack
            .query_range(query, START, end, 15 * 60_000, "")
            .await?;
        assert!(&got == want, "{query} changed after compaction");
    }
    // Over the 2d block with 5m data, with max_source_resolution=5m on every query.
    let (from, to) = (START + 2 * H, START + 46 * H);
    downsampled_answers_like_raw(&stack, from, to, 5 * 60_000, "&max_source_resolution=5m").await?;
    stack.stop().await?;

    // A querier with --query.auto-downsampling and no max_source_resolution parameter: a
    // 30m step allows step/5 = 6m, so the 5m blocks answer.
    let auto = QueryStack::start(&yaml, &["--query.auto-downsampling"]).await?;
    downsampled_answers_like_raw(&auto, from, to, 30 * 60_000, "").await?;
    // The plain selector shows which data answered: the 5m windows' averages, not the raw
    // samples.
    let plain = "compactor_temperature";
    let auto_plain = auto.query_range(plain, from, to, 30 * 60_000, "").await?;
    let five = auto
        .query_range(plain, from, to, 30 * 60_000, "&max_source_resolution=5m")
        .await?;
    let raw = auto
        .query_range(plain, from, to, 30 * 60_000, "&max_source_resolution=0s")
        .await?;
    assert!(!auto_plain.is_empty());
    assert!(
        auto_plain == five,
        "auto-downsampling did not read the 5m blocks"
    );
    assert!(
        auto_plain != raw,
        "auto-downsampling answered from raw data"
    );
    auto.stop().await?;
    Ok(())
}

/// 16 days of 2h blocks: one run compacts the first 14 days into one block, downsamples it
/// to 5m and the 5m block to 1h. A querier with `--query.auto-downsampling` asked with a 6h
/// step (step/5 = 72m) reads the 1h block, and its answers over windows that are multiples of
/// 1h equal the raw ones; instant selectors between the hourly points still find one, because
/// the lookback delta grows to 1h for such queries (Thanos's dynamic lookback delta).
#[tokio::test]
async fn fourteen_days_get_1h_blocks_that_auto_downsampling_reads() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bucket_dir = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket_dir)?;
    let yaml = filesystem_objstore_yaml(&bucket_dir);
    let local = dir.path().join("prom");
    // 2023-11-09T00:00:00Z: day 19670 after the epoch, a multiple of 14, so the first 14
    // days fill one of the planner's epoch-aligned 14d ranges.
    let start = 19_670 * 86_400_000;
    let text = openmetrics(3, 2, 2, start, 16 * 24 * H, 60_000, 7_000, None);
    let created = backfill(&text, &local)?;
    upload_blocks(&yaml, &created, &[("cluster", "a")]).await?;
    let (status, logs) = run_once(
        &yaml,
        &dir.path().join("compactor-data"),
        &["--delete-delay=0s"],
    )?;
    assert!(status.success(), "{logs}");

    let all = blocks(&bucket(&yaml)?).await?;
    let spans: Vec<(i64, i64, i64)> = all
        .iter()
        .map(|(m, _)| {
            let day = 24 * H;
            (
                (m.min_time - start).div_euclid(day),
                (m.max_time - start + day - 1).div_euclid(day),
                m.resolution(),
            )
        })
        .collect();
    for resolution in [0, 300_000, 3_600_000] {
        assert!(spans.contains(&(0, 14, resolution)), "{spans:?}");
    }

    let stack = QueryStack::start(&yaml, &["--query.auto-downsampling"]).await?;
    let step = 6 * H;
    let (from, to) = (start + 24 * H, start + 13 * 24 * H);
    // Whole 1h windows: the aggregates see exactly the raw samples (every hour holds 60).
    for query in [
        "max_over_time(compactor_temperature[6h])",
        "min_over_time(compactor_temperature[3h])",
        "sum_over_time(compactor_temperature[2h])",
        "count_over_time({__name__=~\"compactor_.+\"}[6h])",
        "avg_over_time(compactor_temperature[12h])",
    ] {
        let raw = stack
            .query_range(query, from, to, step, "&max_source_resolution=0s")
            .await?;
        let hourly = stack.query_range(query, from, to, step, "").await?;
        let explicit = stack
            .query_range(query, from, to, step, "&max_source_resolution=1h")
            .await?;
        assert_close(query, &raw, &hourly, 1e-9)?;
        assert!(
            hourly == explicit,
            "{query}: auto did not read the 1h block"
        );
    }
    // rate/increase over 12h read the 1h counter aggregate (the range/2 cap allows 1h): the
    // first point inside a window is the end of the first hour, so the answer may differ by
    // about one window's share (1h of 12h, ~8%; measured up to 2%) where the rate changes;
    // tolerance 20%.
    for query in [
        "increase(compactor_requests_total[12h])",
        "rate(compactor_requests_total[12h]) * 3600",
    ] {
        let raw = stack
            .query_range(query, from, to, step, "&max_source_resolution=0s")
            .await?;
        let hourly = stack.query_range(query, from, to, step, "").await?;
        assert_close(query, &raw, &hourly, 0.2)?;
    }
    // Half past the hour the newest hourly point is ~31 minutes old: found with the dynamic
    // 1h lookback, not with an explicit 5m one.
    let plain = "compactor_temperature";
    let (from, to) = (from + 30 * 60_000, to + 30 * 60_000);
    let steps = ((to - from) / step + 1) as usize;
    let hourly = stack.query_range(plain, from, to, step, "").await?;
    assert_eq!(hourly.len(), 2, "{hourly:?}");
    assert!(
        hourly.values().all(|points| points.len() == steps),
        "{hourly:?}"
    );
    let short = stack
        .query_range(plain, from, to, step, "&lookback_delta=5m")
        .await?;
    assert!(short.is_empty(), "{short:?}");
    stack.stop().await?;
    Ok(())
}

type Answer = BTreeMap<String, Vec<(f64, String)>>;

/// Asserts that two range-query answers have the same series at the same timestamps and
/// values within `tolerance` (relative to the raw value, absolute below 1); logs the largest
/// deviation seen.
fn assert_close(query: &str, raw: &Answer, other: &Answer, tolerance: f64) -> anyhow::Result<()> {
    let mut largest: f64 = 0.0;
    assert!(!raw.is_empty(), "{query}: no raw answer");
    assert_eq!(
        raw.keys().collect::<Vec<_>>(),
        other.keys().collect::<Vec<_>>(),
        "{query}"
    );
    for (series, points) in raw {
        let got = &other[series];
        assert_eq!(points.len(), got.len(), "{query} {series}");
        for ((t, a), (t2, b)) in points.iter().zip(got) {
            let (a, b): (f64, f64) = (a.parse()?, b.parse()?);
            let deviation = (a - b).abs() / a.abs().max(1.0);
            largest = largest.max(deviation);
            assert!(
                t == t2 && deviation <= tolerance,
                "{query} {series} at {t}: raw {a}, downsampled {b}"
            );
        }
    }
    eprintln!("{query}: largest relative deviation from raw {largest:.3e}");
    Ok(())
}

/// Range queries over `[from, to]` (5m-aligned, inside 5m downsampled blocks) answered with
/// the downsampling parameters `extra` against the raw answers (`max_source_resolution=0s`).
async fn downsampled_answers_like_raw(
    stack: &QueryStack,
    from: i64,
    to: i64,
    step: i64,
    extra: &str,
) -> anyhow::Result<()> {
    // Windows that are multiples of 5m at 5m-aligned steps hold whole 5m windows (no sample
    // lies on a boundary), so each aggregate sees exactly the raw samples: max/min read MAX/
    // MIN, sum_over_time sums SUM, count_over_time sums COUNT, and avg_over_time averages the
    // windows' sum/count, which equals the raw average because every window holds 5 samples.
    // Equal up to float rounding: sums of window sums add in another order.
    for query in [
        "max_over_time(compactor_temperature[1h])",
        "min_over_time(compactor_temperature[30m])",
        "sum_over_time(compactor_temperature[15m])",
        "count_over_time({__name__=~\"compactor_.+\"}[30m])",
        "sum by (job) (count_over_time(compactor_requests_total[1h]))",
        "avg_over_time(compactor_temperature[20m])",
    ] {
        let raw = stack
            .query_range(query, from, to, step, "&max_source_resolution=0s")
            .await?;
        let downsampled = stack.query_range(query, from, to, step, extra).await?;
        assert_close(query, &raw, &downsampled, 1e-9)?;
    }
    // rate and increase read the counter aggregate (Thanos's semantics): its points are the
    // counter at the last raw sample of each 5m window, resets applied. Over a 1h range the
    // first point inside the window is the end of the first window instead of the first raw
    // sample, and extrapolation fills the rest the same way, so the answer may differ by
    // about one window's share of the range (5m of 1h, ~8%; measured up to 8.7%) where the
    // rate changes inside it; a reset is never counted as a drop. Tolerance 20%: over twice
    // that share.
    for query in [
        "increase(compactor_requests_total[1h])",
        // Per hour, so the relative tolerance applies to values above 1.
        "rate(compactor_requests_total[1h]) * 3600",
    ] {
        let raw = stack
            .query_range(query, from, to, step, "&max_source_resolution=0s")
            .await?;
        let downsampled = stack.query_range(query, from, to, step, extra).await?;
        assert_close(query, &raw, &downsampled, 0.2)?;
    }
    Ok(())
}

#[tokio::test]
async fn ha_pair_in_s3_is_deduplicated_like_the_querier() -> anyhow::Result<()> {
    let s3 = S3Server::start().await?;
    let yaml = s3.objstore_yaml();
    let dir = tempfile::tempdir()?;
    // One day, 2 replicas of one cluster: r1 scrapes 20 s later. r0 misses 20 minutes (the
    // querier and the compactor switch to r1), then r1 misses 15 (both switch back), inside
    // one 2h block so that the compactor, which merges replica blocks pair by pair, starts
    // every pair in the state the querier is in at that time.
    let r0 = openmetrics(
        9,
        series(),
        series(),
        START,
        86_400_000,
        60_000,
        7_000,
        Some((START + 5 * H, START + 5 * H + 20 * 60_000)),
    );
    let r1 = openmetrics(
        9,
        series(),
        series(),
        START,
        86_400_000,
        60_000,
        27_000,
        Some((START + 5 * H + 30 * 60_000, START + 5 * H + 45 * 60_000)),
    );
    for (replica, text) in [("r0", &r0), ("r1", &r1)] {
        let created = backfill(text, &dir.path().join(replica))?;
        upload_blocks(&yaml, &created, &[("cluster", "ha"), ("replica", replica)]).await?;
    }
    let end = START + 86_400_000;
    let queries = [
        "compactor_temperature",
        "rate(compactor_requests_total[5m])",
        "count_over_time(compactor_temperature[30m])",
    ];
    let before = {
        let stack = QueryStack::start(&yaml, &[]).await?;
        let mut answers = Vec::new();
        for query in queries {
            answers.push(
                stack
                    .query_range(query, START, end, 10 * 60_000, "&dedup=true")
                    .await?,
            );
        }
        stack.stop().await?;
        answers
    };
    let (status, logs) = run_once(
        &yaml,
        &dir.path().join("data"),
        &[
            "--delete-delay=0s",
            "--deduplication.replica-label=replica",
            // The querier's algorithm; the default ("") would keep both replicas' samples.
            "--deduplication.func=penalty",
        ],
    )?;
    assert!(status.success(), "{logs}");
    let bucket = bucket(&yaml)?;
    let all = blocks(&bucket).await?;
    assert!(
        all.iter().all(|(m, _)| !m
            .thanos
            .as_ref()
            .is_some_and(|t| t.labels.contains_key("replica"))
            || m.compaction.level == 1),
        "compacted blocks carry no replica label"
    );
    let merged: Vec<_> = all.iter().filter(|(m, _)| m.compaction.level > 1).collect();
    assert!(!merged.is_empty());
    // Every compacted block holds both replicas' sources.
    assert!(
        merged
            .iter()
            .all(|(m, _)| m.compaction.sources.len() % 2 == 0)
    );
    let stack = QueryStack::start(&yaml, &[]).await?;
    for (query, want) in queries.iter().zip(&before) {
        // Over the compacted range (the newest blocks of each replica stay separate).
        let got = stack
            .query_range(query, START, end, 10 * 60_000, "&dedup=true")
            .await?;
        let cut =
            |m: &BTreeMap<String, Vec<(f64, String)>>| -> BTreeMap<String, Vec<(f64, String)>> {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.iter()
                                .filter(|(t, _)| *t * 1000.0 < (START + 20 * H) as f64)
                                .cloned()
                                .collect(),
                        )
                    })
                    .collect()
            };
        let (got, want) = (cut(&got), cut(want));
        let first_difference = got.iter().find_map(|(series, points)| {
            let other = want.get(series)?;
            points
                .iter()
                .zip(other)
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("{series}: {a:?} vs {b:?}"))
        });
        assert!(
            got == want,
            "{query} differs from dedup=true before compaction: {first_difference:?}, series {:?} vs {:?}",
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        );
    }
    stack.stop().await?;
    Ok(())
}

#[tokio::test]
async fn corrupt_block_is_marked_no_compact_and_the_rest_compacted() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bucket_dir = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket_dir)?;
    let yaml = filesystem_objstore_yaml(&bucket_dir);
    let created = backfill(
        &openmetrics(5, 2, 2, START, 26 * H, 60_000, 7_000, None),
        &dir.path().join("prom"),
    )?;
    upload_blocks(&yaml, &created, &[("cluster", "c")]).await?;
    // Flip bytes inside the chunk data of the 6th block (second 8h window).
    let bad = created[5]
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let segment = bucket_dir.join(&bad).join("chunks/000001");
    let mut bytes = std::fs::read(&segment)?;
    for byte in bytes.iter_mut().skip(40).take(8) {
        *byte ^= 0x5A;
    }
    std::fs::write(&segment, bytes)?;
    let objstore = format!("--objstore.config={yaml}");
    let data = format!("--data-dir={}", dir.path().join("data").display());
    let process = StrataProcess::start(
        Service::Compactor,
        true,
        &[
            &objstore,
            &data,
            "--consistency-delay=0s",
            "--delete-delay=0s",
            "--wait-interval=1h",
        ],
    )
    .await?;
    let url = format!("{}/metrics", process.http_url());
    let metrics =
        strata_tests::sidecar::wait_for("an iteration", Duration::from_secs(60), || async {
            let (_, body) = strata_tests::sidecar::http_get(&url).await?;
            let done =
                strata_tests::sidecar::metric_value(&body, "thanos_compact_iterations_total")
                    .unwrap_or(0.0)
                    + strata_tests::sidecar::metric_value(
                        &body,
                        "thanos_compact_iterations_failed_total",
                    )
                    .unwrap_or(0.0);
            Ok((done >= 1.0).then_some(body))
        })
        .await?;
    assert_eq!(
        strata_tests::sidecar::metric_value(&metrics, "thanos_compact_halted"),
        Some(0.0)
    );
    assert_eq!(
        strata_tests::sidecar::metric_value(&metrics, "thanos_compact_iterations_total"),
        Some(1.0),
        "{metrics}"
    );
    assert!(metrics.contains("thanos_compact_blocks_marked_total{marker=\"no-compact-mark.json\",reason=\"corrupted-block\"} 1"), "{metrics}");
    let (status, body) =
        strata_tests::sidecar::http_get(&format!("{}/-/healthy", process.http_url())).await?;
    assert_eq!((status, body.as_str()), (200, "OK"));
    let mark = std::fs::read_to_string(bucket_dir.join(&bad).join("no-compact-mark.json"))?;
    assert!(mark.contains("\"reason\": \"corrupted-block\""), "{mark}");
    let bucket = bucket(&yaml)?;
    let layout: Vec<(i64, i64)> = blocks(&bucket)
        .await?
        .iter()
        .map(|(m, _)| hours(m))
        .collect();
    // 0..8h compacted; the corrupt block (10..12h) splits its window: 8..10 stays, 12..16 merged.
    assert!(layout.contains(&(0, 8)), "{layout:?}");
    assert!(layout.contains(&(12, 16)), "{layout:?}");
    assert!(layout.contains(&(10, 12)), "{layout:?}");
    let (exit, _) = process.stop(Duration::from_secs(10)).await?;
    assert!(exit.success());
    Ok(())
}

#[tokio::test]
async fn kill_9_at_random_points_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bucket_dir = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket_dir)?;
    let yaml = filesystem_objstore_yaml(&bucket_dir);
    let text = cluster_data(11, 3);
    let created = backfill(&text, &dir.path().join("prom"))?;
    upload_blocks(&yaml, &created, &[("cluster", "k")]).await?;
    let want = dump_local_blocks(&created)?;
    let data = dir.path().join("data");
    let compactor = strata_tests::bins::binary("strata-compactor")?;
    let args = |delay: &str| {
        vec![
            "compact".to_owned(),
            format!("--objstore.config={yaml}"),
            format!("--data-dir={}", data.display()),
            "--http-address=127.0.0.1:0".to_owned(),
            "--consistency-delay=0s".to_owned(),
            format!("--delete-delay={delay}"),
        ]
    };
    // How long a clean run takes on a copy of the bucket, to spread the kills over it.
    let probe_dir = dir.path().join("probe");
    copy_tree(&bucket_dir, &probe_dir)?;
    let probe_yaml = filesystem_objstore_yaml(&probe_dir);
    let started = std::time::Instant::now();
    let (status, logs) = run_once(
        &probe_yaml,
        &dir.path().join("probe-data"),
        &["--delete-delay=1h"],
    )?;
    assert!(status.success(), "{logs}");
    let clean_run = started.elapsed();

    let points = env("STRATA_TEST_KILL_POINTS", 3);
    let seed = env("STRATA_TEST_KILL_SEED", 7) as u64;
    let mut rng = SplitMix64::new(seed);
    let expected_count = count_samples(&want);
    for point in 0..points {
        let at = clean_run.mul_f64(rng.next_f64());
        let mut child = std::process::Command::new(&compactor)
            .args(args("1h"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        tokio::time::sleep(at).await;
        child.kill()?; // SIGKILL
        child.wait()?;
        // What a store gateway serves now (complete blocks, not yet deleted) holds every
        // sample, and the querier serves each once.
        let stack = QueryStack::start(&yaml, &[]).await?;
        let counts = stack
            .query_range(
                "count_over_time({__name__=~\"compactor_.+\"}[3d])",
                START + 3 * 86_400_000 - 1,
                START + 3 * 86_400_000 - 1,
                60_000,
                "&dedup=false",
            )
            .await?;
        stack.stop().await?;
        let served: f64 = counts
            .values()
            .flat_map(|v| v.iter())
            .map(|(_, c)| c.parse::<f64>().unwrap_or(0.0))
            .sum();
        assert_eq!(
            served as usize, expected_count,
            "after kill {point} at {at:?}"
        );
    }
    // A full run, then one after the delete delay: the data is the input, nothing is left over.
    let (status, logs) = run_once(&yaml, &data, &["--delete-delay=2s"])?;
    assert!(status.success(), "{logs}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, logs) = run_once(&yaml, &data, &["--delete-delay=2s"])?;
    assert!(status.success(), "{logs}");
    let bucket = bucket(&yaml)?;
    let dirs = directories(&bucket).await?;
    assert!(
        dirs.values().all(|o| o.has_meta && !o.has_deletion_mark),
        "orphans: {:?}",
        dirs.iter()
            .filter(|(_, o)| !o.has_meta || o.has_deletion_mark)
            .map(|(u, _)| u)
            .collect::<Vec<_>>()
    );
    let raw: Vec<_> = blocks(&bucket)
        .await?
        .into_iter()
        .filter(|(m, _)| m.resolution() == 0)
        .map(|(m, _)| m.ulid)
        .collect();
    let after = dump_bucket_blocks(&bucket, &raw).await?;
    assert!(after == want, "data changed by the killed runs");
    let layout: Vec<(i64, i64)> = blocks(&bucket)
        .await?
        .iter()
        .filter(|(m, _)| m.resolution() == 0)
        .map(|(m, _)| hours(m))
        .collect();
    assert_eq!(
        layout,
        [
            (0, 48),
            (48, 56),
            (56, 64),
            (64, 66),
            (66, 68),
            (68, 70),
            (70, 72)
        ]
    );
    Ok(())
}

fn count_samples(dump: &str) -> usize {
    dump.lines().count()
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn tools(args: &[&str]) -> anyhow::Result<(bool, String)> {
    let output = std::process::Command::new(strata_tests::bins::binary("strata-tools")?)
        .args(args)
        .output()?;
    Ok((
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    ))
}

#[tokio::test]
async fn tools_bucket_inspect_verify_mark_cleanup_downsample() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bucket_dir = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket_dir)?;
    let yaml = filesystem_objstore_yaml(&bucket_dir);
    let objstore = format!("--objstore.config={yaml}");
    let created = backfill(
        &openmetrics(3, 1, 1, START, 56 * H, 60_000, 7_000, None),
        &dir.path().join("prom"),
    )?;
    upload_blocks(&yaml, &created, &[("cluster", "t")]).await?;
    // A copy of one block under a new ULID: an overlap.
    let copy_dir = dir.path().join("copy");
    let copy = strata_tests::prom::copy_block(&created[0], &copy_dir)?;
    let new_id = ulid::Ulid::new().to_string();
    let renamed = copy_dir.join(&new_id);
    std::fs::rename(&copy, &renamed)?;
    let meta_path = renamed.join("meta.json");
    let meta = std::fs::read_to_string(&meta_path)?;
    let old_id = created[0]
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    std::fs::write(&meta_path, meta.replace(&old_id, &new_id))?;
    upload_blocks(&yaml, &[renamed], &[("cluster", "t")]).await?;

    let (ok, out) = tools(&["bucket", "inspect", &objstore, "-l", "cluster=\"t\""])?;
    assert!(ok, "{out}");
    assert!(
        out.contains("| ULID") && out.contains(&old_id) && out.contains(&new_id),
        "{out}"
    );
    let (ok, out) = tools(&["bucket", "inspect", &objstore, "--output=csv"])?;
    assert!(ok && out.starts_with("ULID,FROM,UNTIL"), "{out}");

    let (ok, out) = tools(&["bucket", "verify", &objstore])?;
    assert!(
        !ok && out.contains("overlapped_blocks") && out.contains(&new_id),
        "{out}"
    );

    // Without vertical compaction the compactor halts on the overlap (Thanos's pre-compaction
    // overlap check) and changes nothing: a single run exits non-zero; with --wait (which the
    // harness passes) it stays up, healthy, with thanos_compact_halted 1.
    let yaml_ref = &yaml;
    let objects = move || async move {
        let listing = directories(&bucket(yaml_ref)?).await?;
        anyhow::Ok(
            listing
                .values()
                .flat_map(|o| o.objects.iter().map(|i| i.path.clone()))
                .collect::<Vec<_>>(),
        )
    };
    let before = objects().await?;
    let (status, logs) = run_once(&yaml, &dir.path().join("halt-data"), &["--delete-delay=0s"])?;
    assert!(!status.success(), "{logs}");
    assert!(
        logs.contains("pre compaction overlap check") && logs.contains(&new_id),
        "{logs}"
    );
    let halt_data = format!("--data-dir={}", dir.path().join("halt-data").display());
    let process = StrataProcess::start(
        Service::Compactor,
        true,
        &[
            &objstore,
            &halt_data,
            "--consistency-delay=0s",
            "--delete-delay=0s",
        ],
    )
    .await?;
    let url = format!("{}/metrics", process.http_url());
    strata_tests::sidecar::wait_for("the halt", Duration::from_secs(60), || async {
        let (_, body) = strata_tests::sidecar::http_get(&url).await?;
        Ok(
            (strata_tests::sidecar::metric_value(&body, "thanos_compact_halted") == Some(1.0))
                .then_some(()),
        )
    })
    .await?;
    let (status, body) =
        strata_tests::sidecar::http_get(&format!("{}/-/healthy", process.http_url())).await?;
    assert_eq!((status, body.as_str()), (200, "OK"));
    let (exit, _) = process.stop(Duration::from_secs(10)).await?;
    assert!(exit.success());
    assert_eq!(objects().await?, before, "blocks untouched");

    let (ok, out) = tools(&[
        "bucket",
        "mark",
        &objstore,
        "--id",
        &new_id,
        "--marker=deletion-mark.json",
        "--details=duplicate copy",
    ])?;
    assert!(ok, "{out}");
    assert!(bucket_dir.join(&new_id).join("deletion-mark.json").exists());
    let (ok, out) = tools(&["bucket", "cleanup", "--", &objstore, "--delete-delay=0s"])?;
    assert!(ok && out.contains("deleted 1 block"), "{out}");
    assert!(!bucket_dir.join(&new_id).exists());
    let (ok, out) = tools(&["bucket", "verify", &objstore])?;
    assert!(ok, "{out}");

    // Compact without downsampling, then downsample once with the tool.
    let (status, logs) = run_once(
        &yaml,
        &dir.path().join("data"),
        &["--delete-delay=0s", "--downsampling.disable"],
    )?;
    assert!(status.success(), "{logs}");
    let bucket = bucket(&yaml)?;
    assert!(
        blocks(&bucket)
            .await?
            .iter()
            .all(|(m, _)| m.resolution() == 0)
    );
    let data = format!("--data-dir={}", dir.path().join("tool-data").display());
    let (ok, out) = tools(&["bucket", "downsample", "--", &objstore, &data])?;
    assert!(ok && out.contains("downsampled 1 block"), "{out}");
    let five: Vec<_> = blocks(&bucket)
        .await?
        .into_iter()
        .filter(|(m, _)| m.resolution() == 300_000)
        .collect();
    assert_eq!(five.len(), 1);
    assert_eq!(hours(&five[0].0), (0, 48));
    Ok(())
}
