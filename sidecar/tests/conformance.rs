//! The project's StoreAPI conformance suite (`strata_common::storeapi::conformance`) against
//! the sidecar in front of a real Prometheus 2.42 holding the suite's standard data set
//! (backfilled with promtool; no scraping, so the data is exactly the data set).

use std::time::Duration;

use clap::Parser;
use strata_common::flags::GrpcClientFlags;
use strata_common::shutdown::Shutdown;
use strata_common::storeapi::StoreApiClient;
use strata_common::storeapi::conformance::{self, DataSet};
use strata_common::telemetry::MetricsRegistry;
use strata_sidecar::{Config, start};
use strata_tests::prom::{PrometheusServer, create_blocks};
use strata_tsdb::labels::Labels;

#[tokio::test(flavor = "multi_thread")]
async fn sidecar_passes_the_storeapi_conformance_suite() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = DataSet::standard();
    let data_dir = dir.path().join("prom");
    let openmetrics = data.openmetrics();
    let prometheus = tokio::task::spawn_blocking(move || {
        create_blocks(&openmetrics, &data_dir)?;
        PrometheusServer::start(
            &data_dir,
            "global:\n  external_labels:\n    cluster: conformance\n    replica: \"r 1\"\n",
        )
    })
    .await??;
    let external = Labels::from_pairs([("cluster", "conformance"), ("replica", "r 1")]);

    let config = Config::try_parse_from([
        "strata-sidecar".to_owned(),
        format!("--prometheus.url={}", prometheus.url()),
        "--http-address=127.0.0.1:0".to_owned(),
        "--grpc-address=127.0.0.1:0".to_owned(),
        "--http-grace-period=1s".to_owned(),
        "--grpc-grace-period=1s".to_owned(),
    ])?;
    let shutdown = Shutdown::new();
    let started = start(&config, &MetricsRegistry::new(), &shutdown).await?;
    let mut client = StoreApiClient::connect(
        &started.grpc_address.to_string(),
        &GrpcClientFlags::default(),
    )
    .await?;
    let result = conformance::run(&mut client, &external, &data).await;
    shutdown.cancel();
    shutdown.wait(Duration::from_secs(5)).await;
    result
}
