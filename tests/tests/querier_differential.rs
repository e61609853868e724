//! End-to-end differential: the same promtool-backfilled blocks answered by Prometheus 2.42
//! itself and by `strata-querier` over two StoreAPIs holding them, a `strata-sidecar` beside
//! that Prometheus (external labels cluster=e2e, replica=r0) and a `strata-store-gateway` on a
//! FILESYSTEM bucket with the same blocks as replica r1. With `--query.replica-label=replica`
//! the two copies deduplicate into one, so every query of a multi-cluster dashboard's kind
//! (sums of rates, error ratios, histogram_quantile, topk, subqueries, offset, @; instant and
//! range) must equal Prometheus's answer once the `cluster` label is set aside: same series,
//! same timestamps, values within 1e-9 relative.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use strata_tests::bins::{Service, StrataProcess};
use strata_tests::prom::{DataSpec, url_encode};
use strata_tests::sidecar::{start_backfilled_prometheus_async, start_sidecar};
use strata_tests::store_gateway::{filesystem_objstore_yaml, fill_filesystem_bucket, start};

/// Labels that only the querier's answer carries (the stores' external labels).
const EXTERNAL: [&str; 2] = ["cluster", "replica"];

fn queries() -> Vec<&'static str> {
    vec![
        "sum by (job) (rate(strata_test_requests_total[5m]))",
        r#"sum(rate(strata_test_requests_total{code=~"5.."}[5m])) / sum(rate(strata_test_requests_total[5m]))"#,
        "histogram_quantile(0.99, sum by (le) (rate(strata_test_latency_seconds_bucket[5m])))",
        "topk(3, strata_test_temperature)",
        "max_over_time(strata_test_temperature[10m:1m])",
        "strata_test_temperature offset 10m",
        "avg by (sensor) (strata_test_temperature @ 1700007000)",
        "count by (instance) (strata_test_latency_seconds_count)",
        "increase(strata_test_requests_total[10m])",
        "strata_test_requests_total",
    ]
}

async fn get_json(url: &str) -> anyhow::Result<Value> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("parse {text}"))
}

/// A result as `labels (external set aside) -> [(t, value)]`.
fn normalize(body: &Value) -> anyhow::Result<BTreeMap<String, Vec<(f64, String)>>> {
    if body["status"] != "success" {
        bail!("query failed: {body}");
    }
    let data = &body["data"];
    let mut out = BTreeMap::new();
    let result = data["result"].as_array().context("result array")?;
    for series in result {
        let metric = series["metric"].as_object().context("metric")?;
        let labels: BTreeMap<&String, &Value> = metric
            .iter()
            .filter(|(name, _)| !EXTERNAL.contains(&name.as_str()))
            .collect();
        let key = serde_json::to_string(&labels)?;
        let points: Vec<&Value> = match data["resultType"].as_str() {
            Some("vector") => vec![&series["value"]],
            Some("matrix") => series["values"]
                .as_array()
                .context("values")?
                .iter()
                .collect(),
            other => bail!("unexpected result type {other:?}"),
        };
        let mut parsed = Vec::new();
        for point in points {
            let t = point[0].as_f64().context("timestamp")?;
            let v = point[1].as_str().context("value")?.to_owned();
            parsed.push((t, v));
        }
        if out.insert(key.clone(), parsed).is_some() {
            bail!("two series with labels {key} once external labels are removed: {body}");
        }
    }
    Ok(out)
}

fn values_equal(expected: &str, actual: &str) -> bool {
    if expected == actual {
        return true;
    }
    match (expected.parse::<f64>(), actual.parse::<f64>()) {
        (Ok(a), Ok(b)) => {
            (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
        }
        _ => false,
    }
}

fn compare(what: &str, expected: &Value, actual: &Value) -> anyhow::Result<()> {
    assert_eq!(
        expected["data"]["resultType"], actual["data"]["resultType"],
        "{what}: result type"
    );
    let expected = normalize(expected)?;
    let actual = normalize(actual)?;
    let expected_keys: Vec<&String> = expected.keys().collect();
    let actual_keys: Vec<&String> = actual.keys().collect();
    assert_eq!(expected_keys, actual_keys, "{what}: series");
    assert!(
        !expected.is_empty(),
        "{what}: the query set must select data"
    );
    for (key, points) in &expected {
        let other = &actual[key];
        assert_eq!(points.len(), other.len(), "{what} {key}: number of points");
        for ((t1, v1), (t2, v2)) in points.iter().zip(other) {
            assert_eq!(t1, t2, "{what} {key}: timestamps");
            assert!(values_equal(v1, v2), "{what} {key} at {t1}: {v1} != {v2}");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn querier_equals_prometheus_over_sidecar_and_store_gateway() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let spec = DataSpec {
        series: 200,
        ..DataSpec::default()
    };
    let prometheus =
        start_backfilled_prometheus_async(dir.path().join("prom"), spec.clone()).await?;
    let sidecar = start_sidecar(&prometheus.server.url(), &prometheus.data_dir, &[]).await?;
    let bucket_dir = dir.path().join("bucket");
    fill_filesystem_bucket(
        &prometheus.blocks,
        &bucket_dir,
        &[("cluster", "e2e"), ("replica", "r1")],
    )?;
    let gateway = start(
        &filesystem_objstore_yaml(&bucket_dir),
        &dir.path().join("store-data"),
        &[],
    )
    .await?;
    let endpoints = [
        format!(
            "--endpoint={}",
            sidecar.grpc_address.context("sidecar grpc")?
        ),
        format!(
            "--endpoint={}",
            gateway.grpc_address.context("gateway grpc")?
        ),
    ];
    let querier = StrataProcess::start(
        Service::Querier,
        true,
        &[
            &endpoints[0],
            &endpoints[1],
            "--query.replica-label=replica",
        ],
    )
    .await?;

    let prometheus_url = prometheus.server.url();
    let querier_url = querier.http_url();
    // Both copies are in use: the sidecar and the store gateway are healthy stores, and
    // without deduplication every series is there twice.
    let stores = get_json(&format!("{querier_url}/api/v1/stores")).await?;
    for component in ["sidecar", "store"] {
        let healthy = stores["data"][component]
            .as_array()
            .is_some_and(|list| list.len() == 1 && list[0]["lastError"].is_null());
        assert!(healthy, "{component}: {stores}");
    }
    let start_s = (spec.start_ms + 10 * 60 * 1000) / 1000;
    let end_s = (spec.start_ms + spec.duration_ms - 5 * 60 * 1000) / 1000;
    for query in queries() {
        let encoded = url_encode(query);
        for time in [start_s, start_s + 1234, end_s] {
            let path = format!("/api/v1/query?query={encoded}&time={time}");
            let expected = get_json(&format!("{prometheus_url}{path}")).await?;
            let actual = get_json(&format!("{querier_url}{path}")).await?;
            compare(&format!("instant {query} at {time}"), &expected, &actual)?;
        }
        let path =
            format!("/api/v1/query_range?query={encoded}&start={start_s}&end={end_s}&step=60");
        let expected = get_json(&format!("{prometheus_url}{path}")).await?;
        let actual = get_json(&format!("{querier_url}{path}")).await?;
        compare(&format!("range {query}"), &expected, &actual)?;
    }

    let raw = url_encode("strata_test_temperature");
    let time = start_s + 600;
    let deduplicated = get_json(&format!(
        "{querier_url}/api/v1/query?query={raw}&time={time}"
    ))
    .await?;
    let both = get_json(&format!(
        "{querier_url}/api/v1/query?query={raw}&time={time}&dedup=false"
    ))
    .await?;
    let count = |body: &Value| body["data"]["result"].as_array().map_or(0, Vec::len);
    assert!(count(&deduplicated) > 0);
    assert_eq!(count(&both), 2 * count(&deduplicated), "{both}");

    // /series, /labels and /label/x/values agree too (with the external labels set aside).
    let path = "/api/v1/label/job/values";
    let expected = get_json(&format!("{prometheus_url}{path}")).await?;
    let actual = get_json(&format!("{querier_url}{path}")).await?;
    assert_eq!(expected["data"], actual["data"], "{path}");
    let selector = url_encode("strata_test_temperature");
    let path = format!("/api/v1/series?match[]={selector}&start={start_s}&end={end_s}");
    let expected = get_json(&format!("{prometheus_url}{path}")).await?;
    let actual = get_json(&format!("{querier_url}{path}")).await?;
    let strip = |body: &Value| -> Vec<Value> {
        body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|labels| {
                let mut labels = labels.clone();
                if let Some(object) = labels.as_object_mut() {
                    for name in EXTERNAL {
                        object.remove(name);
                    }
                }
                labels
            })
            .collect()
    };
    assert_eq!(strip(&expected), strip(&actual), "{path}");
    assert!(!strip(&expected).is_empty());

    querier.stop(Duration::from_secs(10)).await?;
    drop(gateway);
    drop(sidecar);
    Ok(())
}
