use std::path::Path;

use clap::{CommandFactory, Parser};
use strata_tsdb::Block;
use strata_tsdb::block::BlockWriter;
use strata_tsdb::compact::encode_xor;
use strata_tsdb::dedup::DedupFunc;
use strata_tsdb::labels::Labels;
use strata_tsdb::meta::{BlockMeta, ThanosMeta};
use ulid::Ulid;

use super::*;

const H: i64 = 3_600_000;

#[test]
fn thanos_flags_parse() {
    let config = Config::try_parse_from([
        "strata-compactor",
        "--data-dir=/var/thanos/compact",
        "--wait",
        "--retention.resolution-raw=30d",
        "--retention.resolution-5m=90d",
        "--retention.resolution-1h=1y",
        "--delete-delay=0",
        "--deduplication.replica-label=replica",
        "--objstore.config-file=/etc/bucket.yml",
    ])
    .expect("valid flags");
    assert!(config.wait);
    assert_eq!(
        config.retention_resolution_raw,
        Duration::from_secs(30 * 86_400)
    );
    assert_eq!(config.delete_delay, Duration::ZERO);
    assert_eq!(
        config.deduplication_replica_labels,
        vec!["replica".to_owned()]
    );
    assert!(config.validate().is_ok());
    let defaults = Config::try_parse_from(["strata-compactor"]).expect("defaults");
    assert_eq!(defaults.delete_delay, Duration::from_secs(48 * 3600));
    assert_eq!(defaults.consistency_delay, Duration::from_secs(30 * 60));
    assert_eq!(defaults.compact_block_max_index_size, 64 << 30);
    for (flags, named) in [
        (vec!["--hash-func=SHA256"], "--hash-func"),
        (
            vec!["--retention.resolution-raw=1h"],
            "--retention.resolution-raw",
        ),
        (vec!["--deduplication.func=penalty"], "--deduplication.func"),
    ] {
        let mut args = vec!["strata-compactor"];
        args.extend(flags);
        let err = Config::try_parse_from(args)
            .expect("parses")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains(named), "{err}");
    }
}

/// Writes a bucket block (external labels `cluster`) with one series per instance.
fn bucket_block(bucket_dir: &Path, cluster: &str, min: i64, max: i64, instances: usize) -> Ulid {
    let ulid = Ulid::new();
    let mut meta = BlockMeta::new(ulid, min, max);
    meta.thanos = Some(ThanosMeta {
        labels: [("cluster".to_owned(), cluster.to_owned())].into(),
        source: "sidecar".to_owned(),
        ..Default::default()
    });
    let mut symbols = vec![
        "__name__".to_owned(),
        "instance".to_owned(),
        "up".to_owned(),
    ];
    symbols.extend((0..instances).map(|i| format!("i{i}")));
    symbols.sort();
    let mut writer = BlockWriter::create(bucket_dir, meta, symbols).expect("writer");
    let mut names: Vec<String> = (0..instances).map(|i| format!("i{i}")).collect();
    names.sort();
    for name in names {
        let labels = Labels::from_pairs([("__name__", "up"), ("instance", name.as_str())]);
        let samples = (0..)
            .map(|n| min + n * 60_000)
            .take_while(|t| *t < max)
            .map(|t| Ok::<_, strata_tsdb::Error>((t, 1.0)));
        writer
            .add_series(&labels, &encode_xor(samples).expect("encode"))
            .expect("series");
    }
    writer.finish().expect("finish");
    ulid
}

fn config(bucket_dir: &Path, data_dir: &Path, extra: &[&str]) -> Config {
    let objstore = format!(
        "--objstore.config=type: FILESYSTEM\nconfig:\n  directory: {}\n",
        bucket_dir.display()
    );
    let data = format!("--data-dir={}", data_dir.display());
    let mut args = vec![
        "strata-compactor",
        "--http-address=127.0.0.1:0",
        "--consistency-delay=0s",
        "--delete-delay=0s",
        objstore.as_str(),
        data.as_str(),
    ];
    args.extend_from_slice(extra);
    Config::try_parse_from(args).expect("flags")
}

fn block_dirs(bucket_dir: &Path) -> Vec<BlockMeta> {
    let mut metas: Vec<BlockMeta> = std::fs::read_dir(bucket_dir)
        .expect("list")
        .filter_map(|e| BlockMeta::read_from_dir(&e.expect("entry").path()).ok())
        .collect();
    metas.sort_by_key(|m| (m.min_time, m.ulid));
    metas
}

#[tokio::test]
async fn single_run_compacts_marks_and_deletes_sources() {
    let bucket = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    for i in 0..5 {
        bucket_block(bucket.path(), "a", i * 2 * H, (i + 1) * 2 * H, 3);
    }
    run(config(bucket.path(), data.path(), &[]), Shutdown::new())
        .await
        .expect("run");
    let metas = block_dirs(bucket.path());
    let ranges: Vec<(i64, i64, i64)> = metas
        .iter()
        .map(|m| (m.min_time / H, m.max_time / H, m.compaction.level))
        .collect();
    // The first 8h compacted; the newest block left alone; sources deleted (delay 0).
    assert_eq!(ranges, [(0, 8, 2), (8, 10, 1)]);
    let compacted = &metas[0];
    let thanos = compacted.thanos.as_ref().unwrap();
    assert_eq!(thanos.source, "compactor");
    assert_eq!(thanos.labels["cluster"], "a");
    assert_eq!(compacted.compaction.sources.len(), 4);
    assert_eq!(compacted.stats.num_series, 3);
    assert_eq!(compacted.stats.num_samples, 3 * 8 * 60);
    assert!(thanos.files.iter().any(|f| f.rel_path == "index"));
}

#[tokio::test]
async fn corrupt_block_is_marked_and_the_rest_compacted() {
    let bucket = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for i in 0..9 {
        ids.push(bucket_block(
            bucket.path(),
            "a",
            i * 2 * H,
            (i + 1) * 2 * H,
            2,
        ));
    }
    // Corrupt a chunk of the second block of the second 8h window.
    let segment = bucket.path().join(ids[5].to_string()).join("chunks/000001");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[20] ^= 0xFF;
    std::fs::write(&segment, bytes).unwrap();
    run(config(bucket.path(), data.path(), &[]), Shutdown::new())
        .await
        .expect("run");
    assert!(
        bucket
            .path()
            .join(ids[5].to_string())
            .join("no-compact-mark.json")
            .exists()
    );
    let metas = block_dirs(bucket.path());
    assert!(metas.iter().any(|m| m.min_time == 0 && m.max_time == 8 * H));
    // The marked block is still there; its neighbours 8h..10h, 12h..16h merged around it.
    assert!(metas.iter().any(|m| m.ulid == ids[5]));
    assert!(
        metas
            .iter()
            .any(|m| m.min_time == 12 * H && m.max_time == 16 * H),
        "{:?}",
        metas
            .iter()
            .map(|m| (m.min_time / H, m.max_time / H))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn waits_ready_after_sync_and_stops() {
    let bucket = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let config = config(bucket.path(), data.path(), &["--wait"]);
    let shutdown = Shutdown::new();
    let handle = tokio::spawn(run(config, shutdown.clone()));
    // The HTTP server comes up; readiness follows the first sync.
    tokio::time::sleep(Duration::from_millis(500)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("stops")
        .expect("join")
        .expect("clean exit");
}

#[tokio::test]
async fn fourteen_days_are_compacted_then_downsampled_to_5m_and_1h() {
    let bucket = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let day = 24 * H;
    for i in 0..16 {
        bucket_block(bucket.path(), "d", i * day, (i + 1) * day, 2);
    }
    run(config(bucket.path(), data.path(), &[]), Shutdown::new())
        .await
        .expect("run");
    let metas = block_dirs(bucket.path());
    let summary: Vec<(i64, i64, i64)> = metas
        .iter()
        .map(|m| {
            (
                m.min_time / day,
                (m.max_time + day - 1) / day,
                m.resolution(),
            )
        })
        .collect();
    assert!(summary.contains(&(0, 14, 0)), "{summary:?}");
    assert!(summary.contains(&(0, 14, 300_000)), "{summary:?}");
    assert!(summary.contains(&(0, 14, 3_600_000)), "{summary:?}");
    let hour = metas.iter().find(|m| m.resolution() == 3_600_000).unwrap();
    let raw = metas
        .iter()
        .find(|m| m.resolution() == 0 && m.max_time - m.min_time > day)
        .unwrap();
    assert_eq!(hour.compaction.sources, raw.compaction.sources);
    // 2 series x 14 days of hourly windows.
    assert_eq!(hour.stats.num_series, 2);
}

#[test]
fn vertical_compaction_and_dedup_func_follow_thanos() {
    let parse = |flags: &[&str]| {
        let mut args = vec!["strata-compactor"];
        args.extend_from_slice(flags);
        Config::try_parse_from(args).expect("flags")
    };
    let defaults = parse(&[]);
    assert!(!defaults.vertical_compaction());
    assert_eq!(defaults.dedup_func(), DedupFunc::Chain);
    assert!(parse(&["--compact.enable-vertical-compaction"]).vertical_compaction());
    // Replica labels imply vertical compaction; the merge is still the 1:1 one unless
    // penalty is asked for.
    let replicas = parse(&["--deduplication.replica-label=replica"]);
    assert!(replicas.vertical_compaction());
    assert_eq!(replicas.dedup_func(), DedupFunc::Chain);
    let penalty = parse(&[
        "--deduplication.replica-label=replica",
        "--deduplication.func=penalty",
    ]);
    assert!(penalty.validate().is_ok());
    assert_eq!(penalty.dedup_func(), DedupFunc::Penalty);
    let help = Config::command().render_long_help().to_string();
    assert!(help.contains("has no UI"), "{help}");
}

#[tokio::test]
async fn progress_gauges_are_recomputed_every_interval() {
    let bucket = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    for i in 0..5 {
        bucket_block(bucket.path(), "a", i * 2 * H, (i + 1) * 2 * H, 1);
    }
    let metrics = MetricsRegistry::new();
    let shutdown = Shutdown::new();
    let started = start(
        &config(bucket.path(), data.path(), &["--wait"]),
        &metrics,
        &shutdown,
    )
    .await
    .expect("start");
    let worker = Arc::clone(&started.worker);
    let progress = tokio::spawn(progress_loop(
        Arc::clone(&worker),
        Duration::from_millis(50),
        shutdown.child_token(),
    ));
    let wait_for = |compactions: i64, blocks: i64| {
        let worker = Arc::clone(&worker);
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                let got = (
                    worker.metrics.todo_compactions.get(),
                    worker.metrics.todo_compaction_blocks.get(),
                );
                if got == (compactions, blocks) {
                    return;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "progress stayed at {got:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // 0..8h merges (4 blocks); the newest block is left alone.
    wait_for(1, 4).await;
    // New blocks appear: the next round sees them without any compaction iteration.
    for i in 5..9 {
        bucket_block(bucket.path(), "a", i * 2 * H, (i + 1) * 2 * H, 1);
    }
    // 0..8h and 8..16h, 4 blocks each; the newest block is left alone.
    wait_for(2, 8).await;
    assert_eq!(worker.metrics.todo_downsample_blocks.get(), 0);
    assert_eq!(worker.metrics.iterations.get(), 0);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), progress)
        .await
        .expect("stops")
        .expect("join");
}

mod vertical;
