//! Shipper tests on a FILESYSTEM bucket with blocks written by `strata_tsdb::BlockWriter`.

use std::path::Path;

use prometheus_client::registry::Registry;
use strata_tsdb::BlockWriter;
use strata_tsdb::block::SeriesChunk;
use strata_tsdb::chunkenc::{Chunk, Encoding, XorAppender};
use strata_tsdb::labels::Labels;

use super::*;
use crate::objstore::BucketConfig;

struct Fixture {
    _dir: tempfile::TempDir,
    tsdb: PathBuf,
    bucket_dir: PathBuf,
    shipper: Shipper,
    metrics: ShipperMetrics,
}

fn fixture(upload_compacted: bool) -> Fixture {
    fixture_with(upload_compacted, false)
}

fn fixture_with(upload_compacted: bool, allow_out_of_order_uploads: bool) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let tsdb = dir.path().join("prometheus");
    let bucket_dir = dir.path().join("bucket");
    std::fs::create_dir_all(&tsdb).expect("mkdir");
    std::fs::create_dir_all(&bucket_dir).expect("mkdir");
    let config = BucketConfig::parse(&format!(
        "type: FILESYSTEM\nconfig:\n  directory: {}\n",
        bucket_dir.display()
    ))
    .expect("bucket config");
    let bucket = Bucket::from_config(&config, &mut Registry::default()).expect("bucket");
    let labels = LabelsSource::fixed(Labels::from_pairs([("cluster", "eu1"), ("replica", "0")]));
    let metrics = ShipperMetrics::register(&MetricsRegistry::new());
    let shipper = Shipper::new(
        ShipperConfig {
            tsdb_path: tsdb.clone(),
            source: "sidecar",
            state_file_name: "thanos.shipper.json".to_owned(),
            upload_compacted,
            skip_corrupted: false,
            hash_sha256: upload_compacted,
            upload_concurrency: 2,
            allow_out_of_order_uploads,
            interval: Duration::from_secs(30),
        },
        bucket,
        labels,
        metrics.clone(),
    );
    Fixture {
        _dir: dir,
        tsdb,
        bucket_dir,
        shipper,
        metrics,
    }
}

/// Writes a block of `series` series with 240 samples each starting at `start`; returns its ULID.
fn write_block(tsdb: &Path, start: i64, series: usize, level: i64) -> Ulid {
    let labels: Vec<Labels> = (0..series)
        .map(|i| Labels::from_pairs([("__name__", "m".to_owned()), ("i", i.to_string())]))
        .collect();
    let mut symbols: Vec<String> = labels
        .iter()
        .flat_map(|l| l.iter().flat_map(|l| [l.name.clone(), l.value.clone()]))
        .collect();
    symbols.push(String::new());
    symbols.sort();
    symbols.dedup();
    let mut meta = BlockMeta::new(Ulid::new(), start, start + 240 * 15_000);
    meta.compaction.level = level;
    let mut writer = BlockWriter::create(tsdb, meta, symbols).expect("create block");
    let mut sorted = labels.clone();
    sorted.sort();
    for labels in &sorted {
        let mut chunks = Vec::new();
        for part in 0..2 {
            let mut appender = XorAppender::new();
            let first = start + part * 120 * 15_000;
            for i in 0..120 {
                appender
                    .append(first + i * 15_000, i as f64)
                    .expect("append");
            }
            chunks.push(SeriesChunk {
                min_time: first,
                max_time: first + 119 * 15_000,
                chunk: Chunk::new(Encoding::Xor, appender.bytes()),
            });
        }
        writer.add_series(labels, &chunks).expect("add series");
    }
    let (_, meta) = writer.finish().expect("finish");
    meta.ulid
}

fn bucket_meta(fixture: &Fixture, ulid: Ulid) -> Option<BlockMeta> {
    let bytes = std::fs::read(fixture.bucket_dir.join(ulid.to_string()).join("meta.json")).ok()?;
    BlockMeta::from_json(&bytes).ok()
}

#[tokio::test]
async fn uploads_each_block_once_with_thanos_meta_and_state() {
    let fixture = fixture(false);
    let first = write_block(&fixture.tsdb, 0, 3, 1);
    let second = write_block(&fixture.tsdb, 7_200_000, 2, 1);
    let local_meta_before =
        std::fs::read(fixture.tsdb.join(first.to_string()).join("meta.json")).expect("local meta");

    assert_eq!(fixture.shipper.sync().await.expect("sync"), 2);
    assert_eq!(fixture.metrics.uploads.get(), 2);
    for ulid in [first, second] {
        let meta = bucket_meta(&fixture, ulid).expect("meta.json in bucket");
        let thanos = meta.thanos.expect("thanos section");
        assert_eq!(thanos.source, "sidecar");
        assert_eq!(thanos.version, 1);
        assert_eq!(thanos.downsample.resolution, 0);
        assert_eq!(
            thanos.labels.get("cluster").map(String::as_str),
            Some("eu1")
        );
        let paths: Vec<&str> = thanos.files.iter().map(|f| f.rel_path.as_str()).collect();
        assert_eq!(paths, ["chunks/000001", "index", "meta.json"]);
        for file in thanos.files.iter().filter(|f| f.rel_path != "meta.json") {
            let local = fixture.tsdb.join(ulid.to_string()).join(&file.rel_path);
            let remote = fixture
                .bucket_dir
                .join(ulid.to_string())
                .join(&file.rel_path);
            let local_bytes = std::fs::read(&local).expect("local file");
            assert_eq!(file.size_bytes as usize, local_bytes.len());
            assert_eq!(std::fs::read(&remote).expect("remote file"), local_bytes);
        }
    }
    // Prometheus's files are untouched and the staging area is cleaned up.
    assert_eq!(
        std::fs::read(fixture.tsdb.join(first.to_string()).join("meta.json")).expect("meta"),
        local_meta_before
    );
    let staging = fixture.tsdb.join("thanos/upload");
    assert_eq!(
        std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0),
        0
    );

    let state_text =
        std::fs::read_to_string(fixture.tsdb.join("thanos.shipper.json")).expect("state");
    assert!(
        state_text.starts_with("{\n\t\"version\": 1,"),
        "{state_text}"
    );
    let state = read_state(&fixture.tsdb.join("thanos.shipper.json")).expect("state");
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(state.uploaded, expected);

    // A second sync uploads nothing; a block removed locally leaves the state.
    assert_eq!(fixture.shipper.sync().await.expect("sync"), 0);
    assert_eq!(fixture.metrics.uploads.get(), 2);
    std::fs::remove_dir_all(fixture.tsdb.join(first.to_string())).expect("rm");
    fixture.shipper.sync().await.expect("sync");
    let state = read_state(&fixture.tsdb.join("thanos.shipper.json")).expect("state");
    assert_eq!(state.uploaded, vec![second]);
}

#[tokio::test]
async fn skips_compacted_empty_and_records_blocks_already_in_the_bucket() {
    let fixture = fixture(false);
    let compacted = write_block(&fixture.tsdb, 0, 2, 2);
    let empty = write_block(&fixture.tsdb, 7_200_000, 0, 1);
    let present = write_block(&fixture.tsdb, 14_400_000, 1, 1);
    // Already uploaded (e.g. before a crash that lost the state file): only recorded.
    let remote = fixture.bucket_dir.join(present.to_string());
    std::fs::create_dir_all(&remote).expect("mkdir");
    std::fs::write(remote.join("meta.json"), b"{}").expect("write");

    assert_eq!(fixture.shipper.sync().await.expect("sync"), 0);
    assert!(bucket_meta(&fixture, compacted).is_none());
    assert!(!fixture.bucket_dir.join(empty.to_string()).exists());
    assert_eq!(
        std::fs::read(remote.join("meta.json")).expect("untouched"),
        b"{}"
    );
    let state = read_state(&fixture.tsdb.join("thanos.shipper.json")).expect("state");
    assert_eq!(state.uploaded, vec![present]);

    // A compacted block overlapping a shipped one with the same labels is refused.
    let overlapping = self::fixture(true);
    let level1 = write_block(&overlapping.tsdb, 0, 2, 1);
    assert_eq!(overlapping.shipper.sync().await.expect("sync"), 1);
    let level2 = write_block(&overlapping.tsdb, 0, 2, 2);
    let err = overlapping.shipper.sync().await.expect_err("overlap");
    assert!(
        matches!(&err, Error::OverlappingCompactedBlock { block, existing }
            if *block == level2.to_string() && *existing == level1.to_string()),
        "{err}"
    );
    assert!(bucket_meta(&overlapping, level2).is_none());
    assert_eq!(overlapping.metrics.upload_compacted_done.get(), 0);

    let with_compacted = self::fixture(true);
    let compacted = write_block(&with_compacted.tsdb, 0, 2, 3);
    assert_eq!(with_compacted.shipper.sync().await.expect("sync"), 1);
    let meta = bucket_meta(&with_compacted, compacted).expect("uploaded");
    // This fixture also hashes: SHA256 of the index as recorded in thanos.files.
    let index = meta
        .thanos
        .as_ref()
        .and_then(|thanos| thanos.files.iter().find(|file| file.rel_path == "index"))
        .and_then(|file| file.hash.clone())
        .expect("index hash");
    assert_eq!(index.hash_func, "SHA256");
    let index_bytes = std::fs::read(
        with_compacted
            .tsdb
            .join(compacted.to_string())
            .join("index"),
    )
    .expect("index");
    let expected: String = ring::digest::digest(&ring::digest::SHA256, &index_bytes)
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(index.value, expected);
    assert_eq!(with_compacted.metrics.upload_compacted_done.get(), 1);
}

#[tokio::test]
async fn corrupted_block_is_not_uploaded_and_stops_the_sync() {
    let fixture = fixture(false);
    let broken = write_block(&fixture.tsdb, 0, 3, 1);
    let later = write_block(&fixture.tsdb, 7_200_000, 1, 1);
    let segment = fixture.tsdb.join(broken.to_string()).join("chunks/000001");
    let mut bytes = std::fs::read(&segment).expect("segment");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&segment, &bytes).expect("corrupt");

    let err = fixture.shipper.sync().await.expect_err("corrupted block");
    assert!(err.to_string().contains(&broken.to_string()), "{err}");
    assert_eq!(fixture.metrics.upload_failures.get(), 1);
    assert_eq!(fixture.metrics.corrupted_blocks.get(), 1);
    assert_eq!(fixture.metrics.dir_sync_failures.get(), 1);
    assert!(!fixture.bucket_dir.join(broken.to_string()).exists());
    // Order is preserved: the later block waits for the broken one.
    assert!(bucket_meta(&fixture, later).is_none());
}

/// `--shipper.allow-out-of-order-uploads`: a block that keeps failing does not hold back the
/// newer ones, is retried at every sync, and goes up once it is repaired.
#[tokio::test]
async fn out_of_order_uploads_go_past_a_failing_block() {
    let fixture = fixture_with(false, true);
    let broken = write_block(&fixture.tsdb, 0, 3, 1);
    let later = write_block(&fixture.tsdb, 7_200_000, 1, 1);
    let latest = write_block(&fixture.tsdb, 14_400_000, 2, 1);
    let segment = fixture.tsdb.join(broken.to_string()).join("chunks/000001");
    let good_bytes = std::fs::read(&segment).expect("segment");
    let mut bytes = good_bytes.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&segment, &bytes).expect("corrupt");

    let err = fixture.shipper.sync().await.expect_err("one block failed");
    assert!(matches!(err, Error::FailedBlocks { failed: 1 }), "{err}");
    assert_eq!(err.to_string(), "failed to sync 1 blocks");
    assert!(bucket_meta(&fixture, later).is_some());
    assert!(bucket_meta(&fixture, latest).is_some());
    assert!(!fixture.bucket_dir.join(broken.to_string()).exists());
    assert_eq!(fixture.metrics.uploads.get(), 2);
    assert_eq!(fixture.metrics.upload_failures.get(), 1);
    let state = read_state(&fixture.tsdb.join("thanos.shipper.json")).expect("state");
    let mut expected = vec![later, latest];
    expected.sort();
    assert_eq!(state.uploaded, expected);

    // Retried at the next sync (and failing again) without re-uploading the others.
    assert!(fixture.shipper.sync().await.is_err());
    assert_eq!(fixture.metrics.uploads.get(), 2);
    assert_eq!(fixture.metrics.upload_failures.get(), 2);

    // Once the block reads again it goes up.
    std::fs::write(&segment, &good_bytes).expect("repair");
    assert_eq!(fixture.shipper.sync().await.expect("sync"), 1);
    assert!(bucket_meta(&fixture, broken).is_some());
}

#[test]
fn state_file_round_trip_and_bad_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("thanos.shipper.json");
    assert_eq!(
        read_state(&path).expect("missing is empty").uploaded,
        vec![]
    );
    let state = ShipperState {
        version: 1,
        uploaded: vec![Ulid::new(), Ulid::new()],
    };
    write_state(&path, &state).expect("write");
    assert_eq!(read_state(&path).expect("read"), state);
    assert!(!path.with_extension("json.tmp").exists());
    std::fs::write(&path, r#"{"version": 2, "uploaded": []}"#).expect("write");
    assert!(read_state(&path).is_err());
    std::fs::write(&path, r#"{"version": 1, "uploaded": null}"#).expect("write");
    assert!(read_state(&path).expect("null list").uploaded.is_empty());
}
