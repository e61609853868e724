//! Start-up and heartbeat tests against a fake Prometheus (an axum server answering the status
//! endpoints); the real Prometheus is exercised by tests/tests/sidecar_*.rs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use clap::Parser;
use futures::StreamExt;
use strata_common::flags::GrpcClientFlags;
use strata_common::storeapi::StoreApiClient;

use super::*;

#[derive(Clone)]
struct FakePrometheus {
    up: Arc<AtomicBool>,
    config_yaml: &'static str,
    max_block_duration: &'static str,
}

async fn status_config(State(fake): State<FakePrometheus>) -> impl IntoResponse {
    if !fake.up.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, String::new());
    }
    let body = serde_json::json!({"status": "success", "data": {"yaml": fake.config_yaml}});
    (StatusCode::OK, body.to_string())
}

async fn status_flags(State(fake): State<FakePrometheus>) -> impl IntoResponse {
    let body = serde_json::json!({"status": "success", "data": {
        "storage.tsdb.min-block-duration": "2h",
        "storage.tsdb.max-block-duration": fake.max_block_duration,
    }});
    (StatusCode::OK, body.to_string())
}

async fn metrics_text(State(fake): State<FakePrometheus>) -> impl IntoResponse {
    if !fake.up.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, String::new());
    }
    (
        StatusCode::OK,
        "prometheus_tsdb_lowest_timestamp_seconds 1.7e+09\n".to_owned(),
    )
}

/// A remote read that stalls: headers and the first bytes of a frame, then nothing, with the
/// connection held open.
async fn stalled_remote_read() -> impl IntoResponse {
    let first = futures::stream::once(async {
        Ok::<_, std::io::Error>(bytes::Bytes::from_static(&[40, 1, 2, 3]))
    });
    let body = axum::body::Body::from_stream(first.chain(futures::stream::pending()));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse",
        )],
        body,
    )
}

async fn serve_fake(fake: FakePrometheus) -> SocketAddr {
    let router = axum::Router::new()
        .route("/api/v1/read", axum::routing::post(stalled_remote_read))
        .route("/api/v1/status/config", get(status_config))
        .route("/api/v1/status/flags", get(status_flags))
        .route("/metrics", get(metrics_text))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

fn config(prometheus: SocketAddr, extra: &[&str]) -> Config {
    let mut args = vec![
        "strata-sidecar".to_owned(),
        format!("--prometheus.url=http://{prometheus}/"),
        "--http-address=127.0.0.1:0".to_owned(),
        "--grpc-address=127.0.0.1:0".to_owned(),
        "--http-grace-period=1s".to_owned(),
        "--grpc-grace-period=1s".to_owned(),
        "--prometheus.ready_timeout=3s".to_owned(),
        "--prometheus.get_config_interval=100ms".to_owned(),
        "--prometheus.get_config_timeout=1s".to_owned(),
    ];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    Config::try_parse_from(args).expect("valid flags")
}

const LABELLED: &str = "global:\n  external_labels:\n    cluster: eu1\n    replica: \"0\"\n";

#[test]
fn thanos_flags_parse() {
    let config = Config::try_parse_from([
        "strata-sidecar",
        "--prometheus.url=http://prom:9090",
        "--tsdb.path=/prometheus",
        "--shipper.upload-compacted",
        "--min-time=-2h",
        "--objstore.config-file=/etc/bucket.yml",
        "--grpc-address=127.0.0.1:0",
        "--shipper.ignore-unequal-block-size",
    ])
    .expect("valid flags");
    assert_eq!(config.prometheus_url, "http://prom:9090");
    assert!(config.shipper_upload_compacted);
    assert!(config.shipper_ignore_unequal_block_size);
    assert_eq!(
        config.min_time,
        strata_common::flags::TimeOrDuration::Relative(-7_200_000)
    );
    assert_eq!(config.shipper_sync_interval, Duration::from_secs(30));
    assert_eq!(config.http.http_address, "0.0.0.0:10902");
}

/// The container arguments the Prometheus Operator gives Thanos's sidecar.
#[test]
fn prometheus_operator_arguments_are_accepted() {
    // main.rs strips the `sidecar` word before parsing.
    let args = [
        "strata-sidecar",
        "--prometheus.url=http://localhost:9090/",
        r#"--prometheus.http-client={"tls_config": {"insecure_skip_verify":true}}"#,
        "--grpc-address=[10.0.0.1]:10901",
        "--http-address=:10902",
        "--grpc-server-tls-cert=/etc/thanos/certs/tls.crt",
        "--grpc-server-tls-key=/etc/thanos/certs/tls.key",
        "--grpc-server-tls-client-ca=/etc/thanos/certs/ca.crt",
        "--log.level=info",
        "--log.format=logfmt",
        "--objstore.config=type: FILESYSTEM\nconfig:\n  directory: /tmp\n",
        "--tsdb.path=/prometheus",
        "--min-time=-2h",
        "--prometheus.get_config_interval=30s",
        "--prometheus.get_config_timeout=10s",
        "--prometheus.ready_timeout=10m",
        "--tracing.config=type: JAEGER",
    ];
    let config = Config::try_parse_from(args).expect("operator arguments");
    assert_eq!(config.tsdb_path, std::path::PathBuf::from("/prometheus"));
    let http_client = HttpClientConfig::load(config.prometheus_http_client.as_deref(), None)
        .expect("JSON client config");
    assert!(
        http_client
            .tls_config
            .is_some_and(|tls| tls.insecure_skip_verify)
    );
}

#[tokio::test]
async fn refuses_to_start_without_external_labels() {
    let fake = FakePrometheus {
        up: Arc::new(AtomicBool::new(true)),
        config_yaml: "global:\n  scrape_interval: 15s\n",
        max_block_duration: "2h",
    };
    let address = serve_fake(fake).await;
    let shutdown = Shutdown::new();
    let err = start(&config(address, &[]), &MetricsRegistry::new(), &shutdown)
        .await
        .expect_err("no external labels");
    assert!(matches!(err, Error::NoExternalLabels), "{err}");
    shutdown.cancel();
    shutdown.wait(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn refuses_to_ship_with_local_compaction_on() {
    let fake = FakePrometheus {
        up: Arc::new(AtomicBool::new(true)),
        config_yaml: LABELLED,
        max_block_duration: "1d12h",
    };
    let address = serve_fake(fake).await;
    let bucket_dir = tempfile::tempdir().expect("tempdir");
    let objstore = format!(
        "--objstore.config=type: FILESYSTEM\nconfig:\n  directory: {}\n",
        bucket_dir.path().display()
    );
    let shutdown = Shutdown::new();
    let err = start(
        &config(address, &[&objstore]),
        &MetricsRegistry::new(),
        &shutdown,
    )
    .await
    .expect_err("unequal block durations");
    assert!(
        matches!(err, Error::UnequalBlockDurations { ref max, .. } if max == "1d12h"),
        "{err}"
    );
    shutdown.cancel();
    shutdown.wait(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn ready_and_info_follow_the_heartbeat() {
    let up = Arc::new(AtomicBool::new(true));
    let fake = FakePrometheus {
        up: Arc::clone(&up),
        config_yaml: LABELLED,
        max_block_duration: "2h",
    };
    let address = serve_fake(fake).await;
    let metrics = MetricsRegistry::new();
    let shutdown = Shutdown::new();
    let started = start(&config(address, &["--min-time=-1h"]), &metrics, &shutdown)
        .await
        .expect("start");
    assert!(started.prober.is_ready());
    assert!(
        metrics
            .encode()
            .expect("metrics")
            .contains("thanos_sidecar_prometheus_up 1")
    );

    let mut client = StoreApiClient::connect(
        &started.grpc_address.to_string(),
        &GrpcClientFlags::default(),
    )
    .await
    .expect("connect");
    let info = client.info().await.expect("info");
    assert_eq!(info.component_type, "sidecar");
    let labels: Vec<(String, String)> = info
        .label_sets
        .iter()
        .flat_map(|set| set.labels.iter())
        .map(|label| (label.name.clone(), label.value.clone()))
        .collect();
    assert_eq!(
        labels,
        [
            ("cluster".to_owned(), "eu1".to_owned()),
            ("replica".to_owned(), "0".to_owned())
        ]
    );
    let store = info.store.expect("store info");
    // --min-time=-1h is later than the oldest sample (2023), so it wins.
    let hour_ago = chrono::Utc::now().timestamp_millis() - 3_600_000;
    assert!(
        (store.min_time - hour_ago).abs() < 60_000,
        "{}",
        store.min_time
    );
    assert_eq!(store.max_time, i64::MAX);
    assert!(store.supports_without_replica_labels);

    up.store(false, Ordering::SeqCst);
    wait_for(|| !started.prober.is_ready()).await;
    assert!(
        metrics
            .encode()
            .expect("metrics")
            .contains("thanos_sidecar_prometheus_up 0")
    );
    let err = client.info().await.expect_err("not ready");
    assert!(
        matches!(&err, strata_common::error::Error::Call { source, .. } if source.code() == tonic::Code::Unavailable),
        "{err}"
    );

    up.store(true, Ordering::SeqCst);
    wait_for(|| started.prober.is_ready()).await;
    assert!(client.info().await.is_ok());

    shutdown.cancel();
    assert!(shutdown.wait(Duration::from_secs(10)).await);
    assert!(shutdown.failure().is_none());
}

async fn wait_for(condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached in 5s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts a sidecar in front of a Prometheus whose remote read stalls and calls Series with
/// `timeout` as the gRPC deadline; returns the status the call ended with and how long it took.
async fn series_against_stalled_prometheus(
    remote_read_idle_timeout: Duration,
    timeout: Option<Duration>,
) -> (tonic::Status, Duration) {
    let fake = FakePrometheus {
        up: Arc::new(AtomicBool::new(true)),
        config_yaml: LABELLED,
        max_block_duration: "2h",
    };
    let address = serve_fake(fake).await;
    let shutdown = Shutdown::new();
    let mut config = config(address, &[]);
    config.remote_read_idle_timeout = remote_read_idle_timeout;
    let started = start(&config, &MetricsRegistry::new(), &shutdown)
        .await
        .expect("start");
    let mut client = strata_proto::thanos::store_client::StoreClient::connect(format!(
        "http://{}",
        started.grpc_address
    ))
    .await
    .expect("connect");
    let mut request = tonic::Request::new(strata_proto::thanos::SeriesRequest {
        min_time: 0,
        max_time: chrono::Utc::now().timestamp_millis(),
        matchers: vec![strata_proto::thanos::LabelMatcher {
            r#type: 0,
            name: "__name__".into(),
            value: "up".into(),
        }],
        ..Default::default()
    });
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    let began = std::time::Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
        let mut frames = client.series(request).await?.into_inner();
        while frames.message().await?.is_some() {}
        Ok::<_, tonic::Status>(())
    })
    .await
    .expect("the call ended instead of hanging on the stalled Prometheus");
    let status = outcome.expect_err("a stalled remote read cannot succeed");
    shutdown.cancel();
    shutdown.wait(Duration::from_secs(5)).await;
    (status, began.elapsed())
}

#[tokio::test]
async fn a_stalled_remote_read_is_cut_by_the_idle_timeout() {
    let (status, took) = series_against_stalled_prometheus(Duration::from_millis(300), None).await;
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test]
async fn a_stalled_remote_read_ends_at_the_callers_deadline() {
    let (status, took) = series_against_stalled_prometheus(
        crate::prometheus::REMOTE_READ_IDLE_TIMEOUT,
        Some(Duration::from_millis(300)),
    )
    .await;
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test]
async fn reloader_metrics_are_exported_and_bad_reloader_flags_refused() {
    let fake = FakePrometheus {
        up: Arc::new(AtomicBool::new(true)),
        config_yaml: LABELLED,
        max_block_duration: "2h",
    };
    let address = serve_fake(fake).await;
    let shutdown = Shutdown::new();
    let err = start(
        &config(address, &["--reloader.config-envsubst-file=/tmp/out.yml"]),
        &MetricsRegistry::new(),
        &shutdown,
    )
    .await
    .expect_err("envsubst file without a config file");
    assert!(
        err.to_string().contains("--reloader.config-envsubst-file"),
        "{err}"
    );

    let rules = tempfile::tempdir().expect("tempdir");
    let rule_dir = format!("--reloader.rule-dir={}", rules.path().display());
    let metrics = MetricsRegistry::new();
    let shutdown = Shutdown::new();
    start(&config(address, &[&rule_dir]), &metrics, &shutdown)
        .await
        .expect("start");
    let text = metrics.encode().expect("metrics");
    for line in [
        "thanos_sidecar_reloader_reloads_total 0",
        "thanos_sidecar_reloader_reloads_failed_total 0",
        "thanos_sidecar_reloader_config_apply_operations_total 0",
        "thanos_sidecar_reloader_config_apply_operations_failed_total 0",
        "thanos_sidecar_reloader_last_reload_successful 0",
        "thanos_sidecar_reloader_last_reload_success_timestamp_seconds 0",
        "thanos_sidecar_reloader_watches 1",
        "thanos_sidecar_reloader_watch_events_total 0",
        "thanos_sidecar_reloader_watch_errors_total 0",
        "thanos_sidecar_reloader_info{method=\"http\"} 1",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    shutdown.cancel();
    assert!(shutdown.wait(Duration::from_secs(10)).await);
    assert!(shutdown.failure().is_none());
}

#[tokio::test]
async fn a_reloader_that_cannot_read_its_config_stops_the_start_up() {
    // Prometheus is not up yet: the sidecar is still waiting for it when the reloader fails.
    let fake = FakePrometheus {
        up: Arc::new(AtomicBool::new(false)),
        config_yaml: LABELLED,
        max_block_duration: "2h",
    };
    let address = serve_fake(fake).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let input = format!(
        "--reloader.config-file={}",
        dir.path().join("missing.yml").display()
    );
    let output = format!(
        "--reloader.config-envsubst-file={}",
        dir.path().join("out.yml").display()
    );
    let err = run(config(address, &[&input, &output]), Shutdown::new())
        .await
        .expect_err("the reloader's first apply fails");
    let message = strata_common::error::error_chain(&err);
    assert!(
        message.contains("reloader") && message.contains("missing.yml"),
        "{message}"
    );
}
