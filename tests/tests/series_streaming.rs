//! Series answers stream with bounded work, through the real binaries: a client that goes
//! away after the first frame stops the store gateway's and the sidecar's work (counted in
//! `strata_storeapi_series_cancelled_total`), and a series limit ends the answer with
//! ResourceExhausted before the whole answer was read.

use std::time::{Duration, Instant};

use strata_common::flags::GrpcClientFlags;
use strata_common::labels::matchers_to_proto;
use strata_common::storeapi::StoreApiClient;
use strata_proto::thanos;
use strata_tests::bins::StrataProcess;
use strata_tests::prom::{DataSpec, create_blocks, generate_openmetrics};
use strata_tests::sidecar::{
    http_get, metric_value, start_backfilled_prometheus_async, start_sidecar,
};
use strata_tests::store_gateway::{filesystem_objstore_yaml, fill_filesystem_bucket, start};
use strata_tsdb::labels::parse_selector;

const EXTERNAL: [(&str, &str); 2] = [("cluster", "eu1"), ("replica", "a")];

fn spec() -> DataSpec {
    DataSpec {
        series: 2000,
        start_ms: 1_700_006_400_000,
        duration_ms: 2 * 3600 * 1000,
        interval_ms: 30_000,
        seed: 11,
    }
}

fn everything() -> thanos::SeriesRequest {
    thanos::SeriesRequest {
        min_time: i64::MIN,
        max_time: i64::MAX,
        matchers: matchers_to_proto(&parse_selector(r#"{__name__=~".+"}"#).expect("selector")),
        ..Default::default()
    }
}

/// A client with HTTP/2's smallest receive windows, so that an answer of a few hundred
/// kilobytes cannot sit whole in transport buffers: the server must wait for the reader.
async fn client(process: &StrataProcess) -> anyhow::Result<StoreApiClient> {
    let address = process
        .grpc_address
        .ok_or_else(|| anyhow::anyhow!("no grpc address"))?
        .to_string();
    let channel = strata_common::storeapi::endpoint(&address, &GrpcClientFlags::default())?
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await?;
    Ok(StoreApiClient::from_channel(&address, channel))
}

/// Reads one frame of an answer far larger than the transport's buffers, drops the call and
/// returns how long until the server counted the cancellation.
async fn cancel_after_first_frame(process: &StrataProcess) -> anyhow::Result<Duration> {
    let mut store = client(process).await?;
    let mut stream = store.series(everything()).await?;
    assert!(stream.next_frame().await?.is_some(), "a first frame");
    drop(stream);
    drop(store);
    let dropped = Instant::now();
    let metrics_url = format!("{}/metrics", process.http_url());
    loop {
        let (_, metrics) = http_get(&metrics_url).await?;
        if metric_value(&metrics, "strata_storeapi_series_cancelled_total") == Some(1.0) {
            return Ok(dropped.elapsed());
        }
        // Generous for a loaded CI machine; the figure itself is printed (issue 9: < 1 s).
        anyhow::ensure!(
            dropped.elapsed() < Duration::from_secs(10),
            "the cancelled call was not stopped: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads the whole answer; returns the series received and the error that ended it.
async fn read_until_error(process: &StrataProcess) -> anyhow::Result<(usize, tonic::Code)> {
    let mut store = client(process).await?;
    let mut stream = store.series(everything()).await?;
    let mut series = 0;
    loop {
        match stream.next_item().await {
            Ok(Some(strata_common::storeapi::SeriesItem::Series(_))) => series += 1,
            Ok(Some(_)) => {}
            Ok(None) => anyhow::bail!("answer ended without the limit error after {series} series"),
            Err(err) => {
                let code = strata_common::error::ClassifiedError::to_grpc_status(&err).code();
                return Ok((series, code));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn store_gateway_stops_cancelled_and_over_limit_series_calls() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let blocks = create_blocks(&generate_openmetrics(&spec()), &dir.path().join("prom"))?;
    let bucket = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket)?;
    fill_filesystem_bucket(&blocks, &bucket, &EXTERNAL)?;
    let objstore = filesystem_objstore_yaml(&bucket);

    let gateway = start(&objstore, &dir.path().join("data"), &[]).await?;
    let elapsed = cancel_after_first_frame(&gateway).await?;
    eprintln!("store gateway stopped a cancelled Series call {elapsed:?} after the client left");

    let limited = start(
        &objstore,
        &dir.path().join("data-limited"),
        &["--store.limits.request-series=100"],
    )
    .await?;
    let (series, code) = read_until_error(&limited).await?;
    assert_eq!(code, tonic::Code::ResourceExhausted);
    assert!(series <= 100, "{series} series before the limit error");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sidecar_stops_cancelled_and_over_limit_series_calls() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let prometheus = start_backfilled_prometheus_async(dir.path().join("prom"), spec()).await?;
    let url = prometheus.server.url();
    let tsdb = prometheus.data_dir.clone();

    let sidecar = start_sidecar(&url, &tsdb, &[]).await?;
    let elapsed = cancel_after_first_frame(&sidecar).await?;
    eprintln!("sidecar stopped a cancelled Series call {elapsed:?} after the client left");

    let limited = start_sidecar(&url, &tsdb, &["--store.limits.request-series=100"]).await?;
    let (series, code) = read_until_error(&limited).await?;
    assert_eq!(code, tonic::Code::ResourceExhausted);
    assert!(series <= 100, "{series} series before the limit error");
    Ok(())
}
