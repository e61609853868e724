//! The sidecar's StoreAPI in-process against a real Prometheus 2.42 (backfilled with
//! promtool, external labels `cluster="e2e", replica="r0"`): chunks are Prometheus's own
//! bytes, label APIs agree with Prometheus's, and the request options (without_replica_labels,
//! skip_chunks, batching, limits, bad matchers) behave as Thanos's sidecar.

use std::time::Duration;

use clap::Parser;
use strata_common::error::Error as CommonError;
use strata_common::flags::GrpcClientFlags;
use strata_common::labels::{labels_from_proto, matchers_to_proto};
use strata_common::shutdown::Shutdown;
use strata_common::storeapi::StoreApiClient;
use strata_common::telemetry::MetricsRegistry;
use strata_proto::thanos;
use strata_sidecar::prometheus::{HttpClientConfig, PrometheusClient};
use strata_sidecar::{Config, remote_read, start};
use strata_tests::prom::DataSpec;
use strata_tests::sidecar::{BackfilledPrometheus, http_get, start_backfilled_prometheus_async};
use strata_tsdb::labels::parse_selector;

struct Setup {
    _dir: tempfile::TempDir,
    prometheus: BackfilledPrometheus,
    client: StoreApiClient,
    shutdown: Shutdown,
    spec: DataSpec,
}

async fn setup(extra: &[&str]) -> anyhow::Result<Setup> {
    let dir = tempfile::tempdir()?;
    let spec = DataSpec {
        series: 40,
        ..DataSpec::default()
    };
    let prometheus =
        start_backfilled_prometheus_async(dir.path().join("prom"), spec.clone()).await?;
    let mut args = vec![
        "strata-sidecar".to_owned(),
        format!("--prometheus.url={}", prometheus.server.url()),
        "--http-address=127.0.0.1:0".to_owned(),
        "--grpc-address=127.0.0.1:0".to_owned(),
        "--http-grace-period=1s".to_owned(),
        "--grpc-grace-period=1s".to_owned(),
    ];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    let config = Config::try_parse_from(args)?;
    let shutdown = Shutdown::new();
    let started = start(&config, &MetricsRegistry::new(), &shutdown).await?;
    let client = StoreApiClient::connect(
        &started.grpc_address.to_string(),
        &GrpcClientFlags::default(),
    )
    .await?;
    Ok(Setup {
        _dir: dir,
        prometheus,
        client,
        shutdown,
        spec,
    })
}

fn request(selector: &str) -> thanos::SeriesRequest {
    let matchers = parse_selector(selector).expect("selector");
    thanos::SeriesRequest {
        min_time: i64::MIN,
        max_time: i64::MAX,
        matchers: matchers_to_proto(&matchers),
        ..Default::default()
    }
}

fn status_code(err: &CommonError) -> Option<tonic::Code> {
    match err {
        CommonError::Call { source, .. } => Some(source.code()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn series_pass_prometheus_chunks_through_with_external_labels() -> anyhow::Result<()> {
    let mut setup = setup(&[]).await?;
    let selector = r#"{__name__=~"strata_test_.+"}"#;
    let collected = setup
        .client
        .series(request(selector))
        .await?
        .collect()
        .await?;
    assert!(collected.warnings.is_empty());
    assert!(collected.series.len() >= 40, "{}", collected.series.len());

    let prometheus = PrometheusClient::new(
        &setup.prometheus.server.url(),
        Duration::from_secs(30),
        &HttpClientConfig::default(),
    )?;
    let direct =
        remote_read::read(&prometheus, i64::MIN, i64::MAX, &parse_selector(selector)?).await?;
    assert_eq!(direct.len(), collected.series.len());
    let mut previous = None;
    for series in &collected.series {
        let labels = labels_from_proto(series.labels.clone());
        assert_eq!(labels.get("cluster"), Some("e2e"), "{labels}");
        assert_eq!(labels.get("replica"), Some("r0"), "{labels}");
        if let Some(previous) = &previous {
            assert!(previous < &labels, "sorted: {previous} then {labels}");
        }
        // Prometheus merges its external labels itself, so its labels are the same.
        let own = direct
            .iter()
            .find(|raw| raw.labels == labels)
            .unwrap_or_else(|| panic!("{labels} read straight from prometheus"));
        assert_eq!(own.chunks.len(), series.chunks.len());
        for (ours, theirs) in series.chunks.iter().zip(&own.chunks) {
            let (ours, theirs) = (ours.raw.as_ref(), theirs.raw.as_ref());
            let ours = ours.expect("raw chunk");
            assert_eq!(ours.data, theirs.expect("raw chunk").data, "same bytes");
            assert_eq!(ours.r#type, thanos::chunk::Encoding::Xor as i32);
            assert_eq!(ours.hash, xxhash_rust::xxh64::xxh64(&ours.data, 0));
        }
        previous = Some(labels);
    }

    // without_replica_labels strips the label and keeps the order sorted.
    let mut without = request(selector);
    without.without_replica_labels = vec!["replica".to_owned()];
    let stripped = setup.client.series(without).await?.collect().await?;
    assert_eq!(stripped.series.len(), collected.series.len());
    for series in &stripped.series {
        assert!(series.labels.iter().all(|label| label.name != "replica"));
    }
    // skip_chunks: the same label sets, no chunks; batching: the same series.
    let mut skip = request(selector);
    skip.skip_chunks = true;
    let labels_only = setup.client.series(skip).await?.collect().await?;
    assert!(
        labels_only
            .series
            .iter()
            .all(|series| series.chunks.is_empty())
    );
    let label_sets = |series: &[thanos::Series]| -> Vec<Vec<thanos::Label>> {
        series.iter().map(|series| series.labels.clone()).collect()
    };
    assert_eq!(
        label_sets(&labels_only.series),
        label_sets(&collected.series)
    );
    let mut batched = request(selector);
    batched.response_batch_size = 7;
    let batched = setup.client.series(batched).await?.collect().await?;
    assert_eq!(batched.series, collected.series);
    // limit cuts the answer.
    let mut limited = request(selector);
    limited.limit = 3;
    assert_eq!(
        setup
            .client
            .series(limited)
            .await?
            .collect()
            .await?
            .series
            .len(),
        3
    );
    // A time window: only chunks overlapping it.
    let mut window = request(selector);
    window.min_time = setup.spec.start_ms + 60 * 60 * 1000;
    window.max_time = window.min_time + 60_000;
    let windowed = setup.client.series(window.clone()).await?.collect().await?;
    assert!(!windowed.series.is_empty());
    for chunk in windowed.series.iter().flat_map(|series| &series.chunks) {
        assert!(chunk.max_time >= window.min_time && chunk.min_time <= window.max_time);
    }

    // Only external-label matchers: InvalidArgument; a bad regex: InvalidArgument.
    let err = setup
        .client
        .series(request(r#"{cluster="e2e"}"#))
        .await
        .expect_err("no matchers left");
    assert_eq!(
        status_code(&err),
        Some(tonic::Code::InvalidArgument),
        "{err}"
    );
    let mut bad = request(r#"{__name__="x"}"#);
    bad.matchers[0].r#type = thanos::label_matcher::Type::Re as i32;
    bad.matchers[0].value = "(".to_owned();
    let err = setup.client.series(bad).await.expect_err("bad regex");
    assert_eq!(
        status_code(&err),
        Some(tonic::Code::InvalidArgument),
        "{err}"
    );
    setup.shutdown.cancel();
    setup.shutdown.wait(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn label_apis_agree_with_prometheus_plus_external_labels() -> anyhow::Result<()> {
    let mut setup = setup(&["--store.limits.request-series=5"]).await?;
    let names = setup
        .client
        .label_names(thanos::LabelNamesRequest {
            start: setup.spec.start_ms,
            end: setup.spec.start_ms + setup.spec.duration_ms,
            ..Default::default()
        })
        .await?
        .names;
    for name in [
        "__name__", "cluster", "code", "instance", "job", "replica", "sensor",
    ] {
        assert!(names.contains(&name.to_owned()), "{name} in {names:?}");
    }
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted);

    let values = |label: &str, selector: Option<&str>| thanos::LabelValuesRequest {
        label: label.to_owned(),
        start: setup.spec.start_ms,
        end: setup.spec.start_ms + setup.spec.duration_ms,
        matchers: selector
            .map(|selector| matchers_to_proto(&parse_selector(selector).expect("selector")))
            .unwrap_or_default(),
        ..Default::default()
    };
    let metric_names = setup
        .client
        .label_values(values("__name__", None))
        .await?
        .values;
    let (status, body) = http_get(&format!(
        "{}/api/v1/label/__name__/values?start={}&end={}",
        setup.prometheus.server.url(),
        setup.spec.start_ms / 1000,
        (setup.spec.start_ms + setup.spec.duration_ms) / 1000
    ))
    .await?;
    assert_eq!(status, 200, "{body}");
    let expected: serde_json::Value = serde_json::from_str(&body)?;
    let expected: Vec<String> = serde_json::from_value(expected["data"].clone())?;
    assert_eq!(metric_names, expected);
    assert!(metric_names.contains(&"strata_test_requests_total".to_owned()));
    let cluster = setup
        .client
        .label_values(values("cluster", None))
        .await?
        .values;
    assert_eq!(cluster, ["e2e"]);
    let other = setup
        .client
        .label_values(values("__name__", Some(r#"{cluster="elsewhere"}"#)))
        .await?
        .values;
    assert!(other.is_empty());
    let codes = setup
        .client
        .label_values(values(
            "code",
            Some(r#"{__name__="strata_test_requests_total"}"#),
        ))
        .await?
        .values;
    assert_eq!(codes, ["200", "404", "500"]);

    // --store.limits.request-series=5: a bigger answer ends with ResourceExhausted, counted
    // while streaming (the first series may already have been sent).
    let err = setup
        .client
        .series(request(r#"{__name__=~"strata_test_.+"}"#))
        .await?
        .collect()
        .await
        .expect_err("series limit");
    assert_eq!(
        status_code(&err),
        Some(tonic::Code::ResourceExhausted),
        "{err}"
    );
    setup.shutdown.cancel();
    setup.shutdown.wait(Duration::from_secs(5)).await;
    Ok(())
}
