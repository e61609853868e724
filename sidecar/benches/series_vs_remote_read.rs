//! Series through the sidecar versus the same remote read straight from Prometheus, on the
//! same data in one run (issue 4: at most 1.2x).
//!
//! Backfills `STRATA_BENCH_SERIES` (default 10000) series over 2h into a real Prometheus 2.42,
//! starts the sidecar in-process, then alternates: (a) a STREAMED_XOR_CHUNKS remote read
//! decoded into series by a client, (b) a StoreAPI Series call on the sidecar read to the end
//! by a gRPC client. Prints the median of each and the ratio.
//!
//! Run: `cargo bench -p strata-sidecar --bench series_vs_remote_read`.

use std::time::{Duration, Instant};

use clap::Parser;
use strata_common::flags::GrpcClientFlags;
use strata_common::labels::matchers_to_proto;
use strata_common::shutdown::Shutdown;
use strata_common::storeapi::StoreApiClient;
use strata_common::telemetry::MetricsRegistry;
use strata_proto::thanos;
use strata_sidecar::prometheus::{HttpClientConfig, PrometheusClient};
use strata_sidecar::{Config, remote_read, start};
use strata_tests::prom::DataSpec;
use strata_tests::sidecar::start_backfilled_prometheus;

const ROUNDS: usize = 7;

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    let series: usize = std::env::var("STRATA_BENCH_SERIES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let spec = DataSpec {
        series,
        start_ms: 1_700_006_400_000,
        duration_ms: 2 * 3_600_000 - 60_000,
        ..DataSpec::default()
    };
    let setup = Instant::now();
    let prometheus = start_backfilled_prometheus(&dir.path().join("prom"), &spec)?;
    eprintln!("backfilled and started prometheus in {:?}", setup.elapsed());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = Config::try_parse_from([
            "strata-sidecar".to_owned(),
            format!("--prometheus.url={}", prometheus.server.url()),
            "--http-address=127.0.0.1:0".to_owned(),
            "--grpc-address=127.0.0.1:0".to_owned(),
        ])?;
        let shutdown = Shutdown::new();
        let started = start(&config, &MetricsRegistry::new(), &shutdown).await?;
        let client = PrometheusClient::new(
            &prometheus.server.url(),
            Duration::from_secs(60),
            &HttpClientConfig::default(),
        )?;
        let matchers = strata_tsdb::labels::parse_selector(r#"{__name__=~"strata_test_.+"}"#)?;
        let (min_time, max_time) = (spec.start_ms - 60_000, spec.start_ms + spec.duration_ms);
        let mut store =
            StoreApiClient::connect(&started.grpc_address.to_string(), &GrpcClientFlags::default())
                .await?;
        let request = thanos::SeriesRequest {
            min_time,
            max_time,
            matchers: matchers_to_proto(&matchers),
            ..Default::default()
        };

        // The Go querier asks for batches of 64 series per frame.
        let batched_request = thanos::SeriesRequest {
            response_batch_size: 64,
            ..request.clone()
        };
        let mut direct = Vec::new();
        let mut sidecar = Vec::new();
        let mut sidecar_batched = Vec::new();
        let mut counts = (0, 0, 0);
        for round in 0..=ROUNDS {
            let begin = Instant::now();
            let read = remote_read::read(&client, min_time, max_time, &matchers).await?;
            let direct_time = begin.elapsed();
            let begin = Instant::now();
            let collected = store.series(request.clone()).await?.collect().await?;
            let sidecar_time = begin.elapsed();
            let begin = Instant::now();
            let batched = store.series(batched_request.clone()).await?.collect().await?;
            let batched_time = begin.elapsed();
            anyhow::ensure!(batched.series.len() == collected.series.len(), "batched count");
            let chunks: usize = collected.series.iter().map(|s| s.chunks.len()).sum();
            counts = (read.len(), collected.series.len(), chunks);
            anyhow::ensure!(read.len() == collected.series.len(), "series counts differ");
            // Round 0 warms caches on both paths.
            if round > 0 {
                direct.push(direct_time);
                sidecar.push(sidecar_time);
                sidecar_batched.push(batched_time);
            }
        }
        let (direct, sidecar, batched) =
            (median(direct), median(sidecar), median(sidecar_batched));
        let ratio = |time: Duration| time.as_secs_f64() / direct.as_secs_f64().max(1e-9);
        println!(
            "series={} chunks={} rounds={ROUNDS} remote_read_direct_median={direct:?} sidecar_series_median={sidecar:?} ratio={:.2} sidecar_series_batch64_median={batched:?} ratio_batch64={:.2}",
            counts.1,
            counts.2,
            ratio(sidecar),
            ratio(batched)
        );
        shutdown.cancel();
        shutdown.wait(Duration::from_secs(5)).await;
        anyhow::Ok(())
    })
}
