//! Overlapping blocks: a halt without vertical compaction (Thanos's pre-compaction overlap
//! check), one merged block with it, and what `--deduplication.func` makes of HA replicas.

use strata_tsdb::labels::Matcher;

use super::*;

const MINUTE: i64 = 60_000;

/// The `(t, v)` samples of one series.
type Samples = Vec<(i64, f64)>;

/// Writes a bucket block with external labels `external` holding the one series `up` with
/// `samples`.
fn write_block(
    bucket_dir: &Path,
    external: &[(&str, &str)],
    min: i64,
    max: i64,
    samples: &[(i64, f64)],
) -> Ulid {
    let ulid = Ulid::new();
    let mut meta = BlockMeta::new(ulid, min, max);
    meta.thanos = Some(ThanosMeta {
        labels: external
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
        source: "sidecar".to_owned(),
        ..Default::default()
    });
    let symbols = vec!["__name__".to_owned(), "up".to_owned()];
    let mut writer = BlockWriter::create(bucket_dir, meta, symbols).expect("writer");
    let chunks =
        encode_xor(samples.iter().map(|s| Ok::<_, strata_tsdb::Error>(*s))).expect("encode");
    writer
        .add_series(&Labels::from_pairs([("__name__", "up")]), &chunks)
        .expect("series");
    writer.finish().expect("finish");
    ulid
}

/// One sample a minute from `from` (inclusive) to `to` (exclusive), all of value `value`.
fn every_minute(from: i64, to: i64, value: f64) -> Samples {
    (from..to)
        .step_by(MINUTE as usize)
        .map(|t| (t, value))
        .collect()
}

/// The samples of `up` in the bucket block `ulid`.
fn samples_of(bucket_dir: &Path, ulid: Ulid) -> Samples {
    let block = Block::open(&bucket_dir.join(ulid.to_string())).expect("open");
    let series: Vec<_> = block
        .select(&[Matcher::equal("__name__", "up")], i64::MIN, i64::MAX)
        .expect("select")
        .collect::<strata_tsdb::Result<_>>()
        .expect("series");
    assert_eq!(series.len(), 1);
    block
        .samples(&series[0], i64::MIN, i64::MAX)
        .collect::<strata_tsdb::Result<_>>()
        .expect("samples")
}

/// The names of the bucket's top-level entries and of each block's files.
fn bucket_listing(bucket_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(bucket_dir).expect("list") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() {
            for file in std::fs::read_dir(entry.path()).expect("list block") {
                out.push(format!(
                    "{name}/{}",
                    file.expect("file").file_name().to_string_lossy()
                ));
            }
        }
        out.push(name);
    }
    out.sort();
    out
}

/// Two blocks of one group, [0, 2h) and [1h, 3h).
fn overlapping_pair(bucket_dir: &Path) -> (Ulid, Ulid) {
    let first = write_block(
        bucket_dir,
        &[("cluster", "a")],
        0,
        2 * H,
        &every_minute(0, 2 * H, 1.0),
    );
    let second = write_block(
        bucket_dir,
        &[("cluster", "a")],
        H,
        3 * H,
        &every_minute(H, 3 * H, 2.0),
    );
    (first, second)
}

#[tokio::test]
async fn overlapping_blocks_halt_a_single_run_without_vertical_compaction() {
    let bucket = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (first, second) = overlapping_pair(bucket.path());
    let before = bucket_listing(bucket.path());
    let metrics = MetricsRegistry::new();
    let shutdown = Shutdown::new();
    let started = start(
        &config(bucket.path(), data.path(), &[]),
        &metrics,
        &shutdown,
    )
    .await
    .expect("start");
    let err = run_once(&started).await.expect_err("halts");
    assert!(err.is_halt(), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("pre compaction overlap check")
            && message.contains(&first.to_string())
            && message.contains(&second.to_string())
            && message.contains("--compact.enable-vertical-compaction"),
        "{message}"
    );
    assert_eq!(started.worker.metrics.halted.get(), 1);
    assert_eq!(bucket_listing(bucket.path()), before, "blocks untouched");
    shutdown.cancel();
}

#[tokio::test]
async fn overlapping_blocks_halt_the_wait_loop_which_stays_up_serving_metrics() {
    let bucket = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    overlapping_pair(bucket.path());
    let before = bucket_listing(bucket.path());
    let metrics = MetricsRegistry::new();
    let shutdown = Shutdown::new();
    let started = start(
        &config(bucket.path(), data.path(), &["--wait"]),
        &metrics,
        &shutdown,
    )
    .await
    .expect("start");
    let token = shutdown.child_token();
    let handle = tokio::spawn(wait_loop(
        Arc::clone(&started.worker),
        started.prober.clone(),
        Duration::from_millis(50),
        Duration::from_millis(20),
        token,
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while started.worker.metrics.halted.get() != 1 {
        assert!(tokio::time::Instant::now() < deadline, "never halted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Halted: no more iterations, but the loop (and the process) stays up, and cleanup goes
    // on as Thanos's cleanup loop does.
    let cleanups = started.worker.metrics.cleanup_loops.get();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!handle.is_finished());
    assert!(started.worker.metrics.cleanup_loops.get() > cleanups);
    assert_eq!(started.worker.metrics.iterations_failed.get(), 1);
    assert_eq!(started.worker.metrics.iterations.get(), 0);
    let exposition = metrics.encode().expect("encode");
    assert!(
        exposition.contains("thanos_compact_halted 1"),
        "{exposition}"
    );
    assert_eq!(bucket_listing(bucket.path()), before, "blocks untouched");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("stops")
        .expect("join");
}

#[tokio::test]
async fn overlapping_blocks_merge_into_one_with_vertical_compaction() {
    let bucket = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (first, second) = overlapping_pair(bucket.path());
    run(
        config(
            bucket.path(),
            data.path(),
            &["--compact.enable-vertical-compaction"],
        ),
        Shutdown::new(),
    )
    .await
    .expect("run");
    let metas = block_dirs(bucket.path());
    assert_eq!(metas.len(), 1, "{metas:?}");
    let merged = &metas[0];
    assert_eq!((merged.min_time, merged.max_time), (0, 3 * H));
    let mut sources = merged.compaction.sources.clone();
    sources.sort();
    let mut want_sources = vec![first, second];
    want_sources.sort();
    assert_eq!(sources, want_sources);
    // Prometheus's compacting chained merge: every timestamp once, the first block's sample
    // where both have one.
    let mut want = every_minute(0, 2 * H, 1.0);
    want.extend(every_minute(2 * H, 3 * H, 2.0));
    assert_eq!(samples_of(bucket.path(), merged.ulid), want);
}

/// An HA pair over [0, 2h): r0 scrapes on the minute, r1 20 s later and misses 10 scrapes
/// from 10 min on. r0's samples are 0, r1's 1, to tell them apart.
fn ha_pair(bucket_dir: &Path) -> (Samples, Samples) {
    let r0 = every_minute(0, 2 * H, 0.0);
    let r1: Vec<(i64, f64)> = every_minute(20_000, 2 * H, 1.0)
        .into_iter()
        .filter(|(t, _)| !(10 * MINUTE..20 * MINUTE).contains(t))
        .collect();
    for (replica, samples) in [("r0", &r0), ("r1", &r1)] {
        write_block(
            bucket_dir,
            &[("cluster", "ha"), ("replica", replica)],
            0,
            2 * H,
            samples,
        );
    }
    (r0, r1)
}

/// Compacts the HA pair with `extra` flags and returns the one output block's samples.
async fn dedup_ha_pair(extra: &[&str]) -> (Samples, Samples, Samples) {
    let bucket = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (r0, r1) = ha_pair(bucket.path());
    let mut flags = vec!["--deduplication.replica-label=replica"];
    flags.extend_from_slice(extra);
    run(config(bucket.path(), data.path(), &flags), Shutdown::new())
        .await
        .expect("run");
    let metas = block_dirs(bucket.path());
    assert_eq!(metas.len(), 1, "{metas:?}");
    let labels = &metas[0].thanos.as_ref().expect("thanos").labels;
    assert_eq!(
        labels,
        &[("cluster".to_owned(), "ha".to_owned())].into(),
        "replica label removed"
    );
    assert_eq!(metas[0].compaction.sources.len(), 2);
    (r0, r1, samples_of(bucket.path(), metas[0].ulid))
}

#[tokio::test]
async fn default_dedup_func_merges_replicas_one_to_one() {
    // "" with replica labels: replica labels removed, then Prometheus's chained merge keeps
    // every sample of both replicas (no two share a timestamp).
    let (r0, r1, merged) = dedup_ha_pair(&[]).await;
    let mut want: Vec<(i64, f64)> = r0.into_iter().chain(r1).collect();
    want.sort_by_key(|(t, _)| *t);
    assert_eq!(merged, want);
}

#[tokio::test]
async fn penalty_dedup_func_follows_one_replica_and_switches_on_its_gap() {
    let (r0, r1, merged) = dedup_ha_pair(&["--deduplication.func=penalty"]).await;
    // Thanos's dedupSeriesIterator: r0's first sample (earliest), then r1 (its first sample
    // is earlier than r0's next; r0 then carries a penalty of twice the last step), r1 until
    // its gap (last sample at 9m20s), then r0 from the first sample past 9m20s + 2 x 60 s,
    // i.e. 12m, to the end (r1 carries the penalty from then on).
    let mut want = vec![r0[0]];
    want.extend(r1.iter().filter(|(t, _)| *t <= 9 * MINUTE + 20_000));
    want.extend(r0.iter().filter(|(t, _)| *t >= 12 * MINUTE));
    assert_eq!(merged, want);
}
