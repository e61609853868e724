use std::collections::BTreeMap;
use std::path::Path;

use strata_common::labels::{labels_from_proto, matchers_to_proto};
use strata_proto::thanos;
use strata_tsdb::chunkenc::XorIterator;
use strata_tsdb::labels::{Labels, parse_selector};
use tokio::sync::mpsc;

use super::*;
use crate::cache::Caches;
use crate::metrics::StoreMetrics;
use crate::sync::{FilterConfig, MetaFetcher};
use crate::testutil::{bucket, numbered_series, write_block, write_block_with_resolution};

fn store_on(
    bucket_dir: &Path,
    data_dir: &Path,
    series_limit: u64,
    samples_limit: u64,
) -> (Arc<BucketStore>, StoreMetrics) {
    let metrics = StoreMetrics::unregistered();
    let context = BlockContext {
        bucket: bucket(bucket_dir),
        data_dir: data_dir.to_path_buf(),
        caches: Caches::new(1 << 20, 1 << 20, metrics.clone()),
        metrics: metrics.clone(),
        keep_header_files: true,
        lazy_headers: true,
    };
    let store = BucketStore::new(
        context,
        StoreConfig {
            min_time: TimeOrDuration::Absolute(i64::MIN),
            max_time: TimeOrDuration::Absolute(i64::MAX),
            series_limit,
            samples_limit,
            bytes_limit: 0,
            max_concurrency: 4,
            block_sync_concurrency: 4,
        },
    );
    (Arc::new(store), metrics)
}

async fn sync(store: &BucketStore, bucket_dir: &Path) -> SyncOutcome {
    let fetcher = MetaFetcher::new(
        bucket(bucket_dir),
        FilterConfig {
            min_time: TimeOrDuration::Absolute(i64::MIN),
            max_time: TimeOrDuration::Absolute(i64::MAX),
            consistency_delay: Duration::ZERO,
            ignore_deletion_marks_delay: Duration::from_secs(3600),
            relabel: Default::default(),
            meta_fetch_concurrency: 4,
        },
        StoreMetrics::unregistered(),
    );
    let metas = fetcher.fetch().await.expect("fetch metas");
    let outcome = store.sync_blocks(metas).await;
    store.set_ready();
    outcome
}

/// Runs Series and returns (labels, samples) per series in stream order, plus warnings.
async fn series(
    store: &Arc<BucketStore>,
    request: thanos::SeriesRequest,
) -> crate::error::Result<(Vec<(Labels, Vec<(i64, f64)>)>, Vec<String>)> {
    let (sender, mut receiver) = mpsc::channel(1024);
    store.series(request, &sender).await?;
    drop(sender);
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    while let Some(frame) = receiver.recv().await {
        let frame = frame.expect("no error frames");
        let series_list = match frame.result {
            Some(thanos::series_response::Result::Series(s)) => vec![s],
            Some(thanos::series_response::Result::Batch(b)) => b.series,
            Some(thanos::series_response::Result::Warning(w)) => {
                warnings.push(w);
                continue;
            }
            _ => continue,
        };
        for s in series_list {
            let mut samples = Vec::new();
            for chunk in &s.chunks {
                let raw = chunk.raw.as_ref().expect("raw chunk");
                for sample in XorIterator::new(&raw.data).expect("xor") {
                    samples.push(sample.expect("sample"));
                }
            }
            out.push((labels_from_proto(s.labels), samples));
        }
    }
    Ok((out, warnings))
}

fn request(selector: &str, min_time: i64, max_time: i64) -> thanos::SeriesRequest {
    thanos::SeriesRequest {
        min_time,
        max_time,
        matchers: matchers_to_proto(&parse_selector(selector).expect("selector")),
        ..Default::default()
    }
}

#[tokio::test]
async fn series_are_sorted_extended_and_merged_across_blocks() {
    let bucket_dir = tempfile::tempdir().expect("tempdir");
    let data_dir = tempfile::tempdir().expect("tempdir");
    let all = numbered_series(30, 300);
    // Two blocks of one label set split in time, a third with other external labels; the
    // series label `mod` is overridden by an external label of the third block.
    let early: Vec<_> = all
        .iter()
        .map(|(l, s)| (l.clone(), s[..150].to_vec()))
        .collect();
    let late: Vec<_> = all
        .iter()
        .map(|(l, s)| (l.clone(), s[150..].to_vec()))
        .collect();
    write_block(bucket_dir.path(), &[("cluster", "a")], &early);
    write_block(bucket_dir.path(), &[("cluster", "a")], &late);
    write_block(
        bucket_dir.path(),
        &[("cluster", "b"), ("mod", "x")],
        &all[..5],
    );
    let (store, metrics) = store_on(bucket_dir.path(), data_dir.path(), 0, 0);
    assert_eq!(sync(&store, bucket_dir.path()).await.loaded, 3);
    assert_eq!(metrics.blocks_loaded.get(), 3);

    let (got, warnings) = series(
        &store,
        request(r#"{__name__="metric"}"#, i64::MIN, i64::MAX),
    )
    .await
    .expect("series");
    assert!(warnings.is_empty());
    assert_eq!(got.len(), 35);
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "sorted and unique");
    // The cluster="a" series joined from both blocks, whole.
    let first = &got[0];
    assert_eq!(first.0.get("cluster"), Some("a"));
    assert_eq!(first.1, all[0].1);
    // External labels win.
    assert!(
        got.iter()
            .filter(|s| s.0.get("cluster") == Some("b"))
            .all(|s| s.0.get("mod") == Some("x"))
    );

    // Matchers on external labels select blocks; time ranges trim by chunk overlap.
    let (got, _) = series(
        &store,
        request(r#"{cluster="b", i=~"000[0-2]"}"#, i64::MIN, i64::MAX),
    )
    .await
    .expect("series");
    assert_eq!(got.len(), 3);
    let (got, _) = series(&store, request(r#"{cluster="a", i="0007"}"#, 0, 60_000))
        .await
        .expect("series");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.len(), 120, "only the first chunk overlaps");
    let (got, _) = series(
        &store,
        request(r#"{cluster="nope", i="0007"}"#, i64::MIN, i64::MAX),
    )
    .await
    .expect("series");
    assert!(got.is_empty());
    let err = series(&store, request(r#"{cluster="a"}"#, i64::MIN, i64::MAX))
        .await
        .expect_err("only external matchers");
    assert_eq!(
        strata_common::error::ClassifiedError::to_grpc_status(&err).code(),
        tonic::Code::InvalidArgument
    );

    // without_replica_labels strips and re-sorts: cluster a and b series with equal
    // remaining labels merge into one.
    let mut stripped = request(r#"{__name__="metric", i="0001"}"#, i64::MIN, i64::MAX);
    stripped.without_replica_labels = vec!["cluster".into(), "mod".into()];
    stripped.response_batch_size = 64;
    let (got, _) = series(&store, stripped).await.expect("series");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.to_string(), r#"{__name__="metric", i="0001"}"#);

    // skip_chunks and limit.
    let mut labels_only = request(r#"{__name__="metric"}"#, i64::MIN, i64::MAX);
    labels_only.skip_chunks = true;
    labels_only.limit = 4;
    let (sender, mut receiver) = mpsc::channel(64);
    store.series(labels_only, &sender).await.expect("series");
    drop(sender);
    let mut count = 0;
    while let Some(frame) = receiver.recv().await {
        if let Some(thanos::series_response::Result::Series(s)) = frame.expect("frame").result {
            assert!(s.chunks.is_empty());
            count += 1;
        }
    }
    assert_eq!(count, 4);
}

#[tokio::test]
async fn limits_fail_with_resource_exhausted_and_labels_apis_answer() {
    let bucket_dir = tempfile::tempdir().expect("tempdir");
    let data_dir = tempfile::tempdir().expect("tempdir");
    write_block(
        bucket_dir.path(),
        &[("cluster", "a")],
        &numbered_series(20, 200),
    );
    let (store, _) = store_on(bucket_dir.path(), data_dir.path(), 10, 0);
    sync(&store, bucket_dir.path()).await;
    let err = series(
        &store,
        request(r#"{__name__="metric"}"#, i64::MIN, i64::MAX),
    )
    .await
    .expect_err("series limit");
    assert_eq!(
        strata_common::error::ClassifiedError::to_grpc_status(&err).code(),
        tonic::Code::ResourceExhausted
    );
    assert!(
        series(&store, request(r#"{i=~"000.*"}"#, i64::MIN, i64::MAX))
            .await
            .is_ok()
    );

    let (samples_store, _) = store_on(bucket_dir.path(), data_dir.path(), 0, 1000);
    sync(&samples_store, bucket_dir.path()).await;
    let err = series(
        &samples_store,
        request(r#"{__name__="metric"}"#, i64::MIN, i64::MAX),
    )
    .await
    .expect_err("samples limit");
    assert_eq!(
        strata_common::error::ClassifiedError::to_grpc_status(&err).code(),
        tonic::Code::ResourceExhausted
    );

    let names = store
        .label_names(thanos::LabelNamesRequest::default())
        .await
        .expect("names");
    assert_eq!(names.names, ["__name__", "cluster", "i", "mod"]);
    let values = store
        .label_values(thanos::LabelValuesRequest {
            label: "mod".into(),
            matchers: matchers_to_proto(&parse_selector(r#"{i=~"000[01]"}"#).expect("selector")),
            ..Default::default()
        })
        .await
        .expect("values");
    assert_eq!(values.values, ["0", "1"]);
    let values = store
        .label_values(thanos::LabelValuesRequest {
            label: "cluster".into(),
            ..Default::default()
        })
        .await
        .expect("values");
    assert_eq!(values.values, ["a"]);
    let sets = store.label_sets();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].1, 0);
}

#[tokio::test]
async fn corrupt_blocks_are_skipped_and_removed_blocks_dropped() {
    let bucket_dir = tempfile::tempdir().expect("tempdir");
    let data_dir = tempfile::tempdir().expect("tempdir");
    let good = write_block(
        bucket_dir.path(),
        &[("cluster", "a")],
        &numbered_series(10, 20),
    );
    let bad = write_block(
        bucket_dir.path(),
        &[("cluster", "b")],
        &numbered_series(10, 20),
    );
    let index_path = bucket_dir.path().join(format!("{bad}/index"));
    let mut index = std::fs::read(&index_path).expect("index");
    // Flip a bit inside the symbol table (right after the 5-byte header and its length).
    index[12] ^= 0x04;
    std::fs::write(&index_path, &index).expect("write");
    let (store, metrics) = store_on(bucket_dir.path(), data_dir.path(), 0, 0);
    let outcome = sync(&store, bucket_dir.path()).await;
    assert_eq!((outcome.loaded, outcome.failed), (1, 1));
    assert_eq!(metrics.block_load_failures.get(), 1);
    let (got, _) = series(
        &store,
        request(r#"{__name__="metric"}"#, i64::MIN, i64::MAX),
    )
    .await
    .expect("series");
    assert_eq!(got.len(), 10);

    // A chunk file gone after load: the query warns and serves the rest.
    let third = write_block(
        bucket_dir.path(),
        &[("cluster", "c")],
        &numbered_series(10, 20),
    );
    assert_eq!(sync(&store, bucket_dir.path()).await.loaded, 1);
    std::fs::remove_file(bucket_dir.path().join(format!("{third}/chunks/000001"))).expect("rm");
    let (got, warnings) = series(
        &store,
        request(r#"{__name__="metric"}"#, i64::MIN, i64::MAX),
    )
    .await
    .expect("series");
    assert_eq!(got.len(), 10);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let mut abort = request(r#"{__name__="metric"}"#, i64::MIN, i64::MAX);
    abort.partial_response_strategy = thanos::PartialResponseStrategy::Abort as i32;
    assert!(series(&store, abort).await.is_err());

    // Removing a block from the bucket drops it on the next sync.
    std::fs::remove_dir_all(bucket_dir.path().join(good.to_string())).expect("rm block");
    let outcome = sync(&store, bucket_dir.path()).await;
    assert_eq!(outcome.dropped, 1);
    let ids: BTreeMap<_, _> = store.blocks().iter().map(|b| (b.ulid(), ())).collect();
    assert!(!ids.contains_key(&good));
    assert!(!data_dir.path().join(good.to_string()).exists());
}

#[tokio::test]
async fn downsampled_blocks_answer_requested_aggregates_and_block_matchers_select() {
    let bucket_dir = tempfile::tempdir().expect("tempdir");
    let data_dir = tempfile::tempdir().expect("tempdir");
    let series = numbered_series(4, 100);
    let raw = write_block(bucket_dir.path(), &[("cluster", "a")], &series);
    let downsampled =
        write_block_with_resolution(bucket_dir.path(), &[("cluster", "a")], &series, 300_000);
    let (store, _) = store_on(bucket_dir.path(), data_dir.path(), 0, 0);
    assert_eq!(sync(&store, bucket_dir.path()).await.loaded, 2);

    let chunks_of = |request: thanos::SeriesRequest| {
        let store = Arc::clone(&store);
        async move {
            let (sender, mut receiver) = mpsc::channel(64);
            store.series(request, &sender).await.expect("series");
            drop(sender);
            let mut chunks = Vec::new();
            while let Some(frame) = receiver.recv().await {
                if let Some(thanos::series_response::Result::Series(s)) =
                    frame.expect("frame").result
                {
                    chunks.extend(s.chunks);
                }
            }
            chunks
        }
    };
    let mut request_5m = request(r#"{i="0001"}"#, i64::MIN, i64::MAX);
    request_5m.max_resolution_window = 300_000;
    request_5m.aggregates = vec![thanos::Aggr::Sum as i32, thanos::Aggr::Max as i32];
    let chunks = chunks_of(request_5m.clone()).await;
    // The downsampled block covers the raw one, so only its chunk is read.
    assert_eq!(chunks.len(), 1);
    let chunk = &chunks[0];
    assert!(chunk.raw.is_none() && chunk.count.is_none() && chunk.min.is_none());
    let sum = chunk.sum.as_ref().expect("sum");
    let values: Vec<f64> = XorIterator::new(&sum.data)
        .expect("xor")
        .map(|s| s.expect("sample").1)
        .collect();
    assert_eq!(
        values,
        numbered_series(4, 100)[1]
            .1
            .iter()
            .map(|p| p.1)
            .collect::<Vec<_>>()
    );
    assert!(chunk.max.is_some());

    let raw_chunks = chunks_of(request(r#"{i="0001"}"#, i64::MIN, i64::MAX)).await;
    assert_eq!(raw_chunks.len(), 1);
    assert!(raw_chunks[0].raw.is_some());

    // Block matchers in the request hints pick blocks by external labels and __block_id.
    use strata_proto::conversions::AnyMessage;
    let mut hinted = request(r#"{i="0001"}"#, i64::MIN, i64::MAX);
    hinted.max_resolution_window = 300_000;
    hinted.hints = Some(
        strata_proto::hintspb::SeriesRequestHints {
            block_matchers: vec![thanos::LabelMatcher {
                r#type: thanos::label_matcher::Type::Eq as i32,
                name: "__block_id".into(),
                value: raw.to_string(),
            }],
            enable_query_stats: false,
        }
        .to_any(),
    );
    let chunks = chunks_of(hinted.clone()).await;
    assert_eq!(chunks.len(), 1);
    assert!(
        chunks[0].raw.is_some(),
        "only the raw block {raw} was asked for, not {downsampled}"
    );
}

#[tokio::test]
async fn index_headers_load_lazily_and_unload_when_idle() {
    let bucket_dir = tempfile::tempdir().expect("tempdir");
    let data_dir = tempfile::tempdir().expect("tempdir");
    write_block(
        bucket_dir.path(),
        &[("cluster", "a")],
        &numbered_series(10, 20),
    );
    let (store, metrics) = store_on(bucket_dir.path(), data_dir.path(), 0, 0);
    sync(&store, bucket_dir.path()).await;
    // Loading a block builds its header file but does not keep it in memory.
    assert_eq!(metrics.lazy_load.get(), 0);
    assert_eq!(store.unload_idle_headers(Duration::ZERO), 0);
    let query = || series(&store, request(r#"{i="0003"}"#, i64::MIN, i64::MAX));
    assert_eq!(query().await.expect("series").0.len(), 1);
    assert_eq!(metrics.lazy_load.get(), 1);
    assert_eq!(query().await.expect("series").0.len(), 1);
    assert_eq!(metrics.lazy_load.get(), 1, "still loaded");
    assert_eq!(
        store.unload_idle_headers(Duration::from_secs(3600)),
        0,
        "not idle yet"
    );
    assert_eq!(store.unload_idle_headers(Duration::ZERO), 1);
    assert_eq!(metrics.lazy_unload.get(), 1);
    assert_eq!(query().await.expect("series").0.len(), 1);
    assert_eq!(
        metrics.lazy_load.get(),
        2,
        "loaded again from the data directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_queries_share_one_header_load_and_a_corrupt_file_is_rebuilt() {
    let bucket_dir = tempfile::tempdir().expect("tempdir");
    let data_dir = tempfile::tempdir().expect("tempdir");
    let block = write_block(
        bucket_dir.path(),
        &[("cluster", "a")],
        &numbered_series(10, 20),
    );
    let (store, metrics) = store_on(bucket_dir.path(), data_dir.path(), 0, 0);
    sync(&store, bucket_dir.path()).await;
    let queries: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                series(&store, request(r#"{i="0003"}"#, i64::MIN, i64::MAX)).await
            })
        })
        .collect();
    for query in queries {
        let (found, _) = query.await.expect("join").expect("series");
        assert_eq!(found.len(), 1);
    }
    assert_eq!(
        metrics.lazy_load.get(),
        1,
        "one load for eight first queries"
    );

    // A damaged file on disk: the next load rebuilds it from the bucket and rewrites it.
    store.unload_idle_headers(Duration::ZERO);
    let path = data_dir.path().join(block.to_string()).join("index-header");
    let good = std::fs::read(&path).expect("header file");
    std::fs::write(&path, b"not an index-header").expect("damage");
    let (found, _) = series(&store, request(r#"{i="0003"}"#, i64::MIN, i64::MAX))
        .await
        .expect("series after rebuild");
    assert_eq!(found.len(), 1);
    assert_eq!(metrics.lazy_load_failed.get(), 0);
    assert_eq!(std::fs::read(&path).expect("rewritten"), good);
}

/// Series entries are read from the index in aligned pieces: entries that cross a piece
/// boundary, entries longer than several pieces, and lone entries read cold all come back whole
/// and equal, cold and warm (the second pass is served by the cached pieces).
#[tokio::test]
async fn series_entries_of_every_size_read_from_index_pieces() {
    let bucket_dir = tempfile::tempdir().expect("tempdir");
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut written = numbered_series(90, 3);
    for (i, (_, samples)) in written.iter_mut().enumerate() {
        // A few series with over a thousand chunks (entries of several 4 KiB pieces), the rest
        // of varied lengths so that entries start all over the pieces.
        let count = if i % 30 == 7 {
            130_000
        } else {
            1 + (i * 389) % 2_000
        };
        *samples = (0..count)
            .map(|s| (s as i64 * 15_000, (i * 7 + s) as f64))
            .collect();
    }
    write_block(bucket_dir.path(), &[("cluster", "a")], &written);
    let expected: BTreeMap<String, Vec<(i64, f64)>> = written
        .iter()
        .map(|(labels, samples)| (labels.get("i").unwrap_or("").to_owned(), samples.clone()))
        .collect();
    let check = |got: Vec<(Labels, Vec<(i64, f64)>)>, want: usize| {
        assert_eq!(got.len(), want);
        for (labels, samples) in got {
            let i = labels.get("i").unwrap_or("").to_owned();
            assert_eq!(Some(&samples), expected.get(&i), "series i={i}");
        }
    };
    // A lone long entry on a cold store: its first piece, then the rest of it.
    let (store, metrics) = store_on(bucket_dir.path(), data_dir.path(), 0, 0);
    sync(&store, bucket_dir.path()).await;
    let (got, _) = series(&store, request(r#"metric{i="0037"}"#, i64::MIN, i64::MAX))
        .await
        .expect("series");
    check(got, 1);
    assert!(metrics.series_refetches.get() >= 1);
    for _ in 0..2 {
        let (got, warnings) = series(&store, request("metric", i64::MIN, i64::MAX))
            .await
            .expect("series");
        assert!(warnings.is_empty(), "{warnings:?}");
        check(got, 90);
    }
}
