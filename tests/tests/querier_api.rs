//! End-to-end: the real `strata-querier` binary over in-process StoreAPI servers with external
//! labels (two "clusters", one of them an HA pair): replica deduplication on and off, partial
//! response with a stopped endpoint, a hanging store cut at `--store.response-timeout`,
//! Prometheus's JSON shapes and error types, Thanos's `/api/v1/stores`, the querier's own
//! StoreAPI (a second querier stacked on the first), metrics and concurrent queries.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use serde_json::Value;
use strata_tests::bins::{Service, StrataProcess};
use strata_tests::storeapi_fixture::{CounterSeries, FixtureStore};
use tokio_util::sync::CancellationToken;

const SCRAPE_MS: i64 = 15_000;
const QUERY: &str = "sum by (cluster) (rate(http_requests_total[5m]))";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

fn counters(cluster_rate: f64) -> Vec<CounterSeries> {
    ["i1", "i2"]
        .iter()
        .map(|instance| CounterSeries {
            labels: vec![
                ("__name__".into(), "http_requests_total".into()),
                ("instance".into(), (*instance).into()),
                ("job".into(), "api".into()),
            ],
            per_second: cluster_rate,
        })
        .collect()
}

/// Two clusters: "a" is an HA pair (replicas 0 and 1, scrapes 5 s apart) whose series grow
/// 1/s each; "b" is a single replica whose series grow 2/s each. Returns the store addresses
/// (a0, a1, b0), the time to query at (s), and the token that stops cluster b.
struct Clusters {
    a0: SocketAddr,
    a1: SocketAddr,
    b0: SocketAddr,
    query_time: f64,
    stop_b: CancellationToken,
}

async fn clusters(shutdown: &CancellationToken) -> anyhow::Result<Clusters> {
    let now = now_ms();
    let from = now - 3_600_000;
    let a0 = FixtureStore::counters(
        &[("cluster", "a"), ("replica", "0")],
        &counters(1.0),
        from,
        now,
        SCRAPE_MS,
        0,
    )?
    .serve(shutdown.clone())
    .await?;
    let a1 = FixtureStore::counters(
        &[("cluster", "a"), ("replica", "1")],
        &counters(1.0),
        from,
        now,
        SCRAPE_MS,
        5_000,
    )?
    .serve(shutdown.clone())
    .await?;
    let stop_b = shutdown.child_token();
    let b0 = FixtureStore::counters(
        &[("cluster", "b"), ("replica", "0")],
        &counters(2.0),
        from,
        now,
        SCRAPE_MS,
        0,
    )?
    .serve(stop_b.clone())
    .await?;
    Ok(Clusters {
        a0,
        a1,
        b0,
        query_time: (now - 60_000) as f64 / 1000.0,
        stop_b,
    })
}

async fn start_querier(endpoints: &[SocketAddr], extra: &[&str]) -> anyhow::Result<StrataProcess> {
    let mut args: Vec<String> = endpoints
        .iter()
        .map(|address| format!("--endpoint={address}"))
        .collect();
    args.push("--query.replica-label=replica".into());
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    StrataProcess::start(Service::Querier, true, &args).await
}

async fn get_json(url: &str) -> anyhow::Result<(u16, Value)> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    let json = serde_json::from_str(&text).with_context(|| format!("parse {text}"))?;
    Ok((status, json))
}

async fn query(
    base: &str,
    query: &str,
    time: f64,
    extra: &[(&str, &str)],
) -> anyhow::Result<(u16, Value)> {
    let mut url = reqwest::Url::parse(&format!("{base}/api/v1/query"))?;
    url.query_pairs_mut()
        .append_pair("query", query)
        .append_pair("time", &time.to_string());
    for (name, value) in extra {
        url.query_pairs_mut().append_pair(name, value);
    }
    get_json(url.as_str()).await
}

/// `{cluster: value}` of a vector result.
fn by_cluster(body: &Value) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    let result = body["data"]["result"]
        .as_array()
        .with_context(|| format!("no result in {body}"))?;
    for sample in result {
        let cluster = sample["metric"]["cluster"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let value: f64 = sample["value"][1]
            .as_str()
            .context("value is a string")?
            .parse()?;
        out.insert(cluster, value);
    }
    Ok(out)
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{what}: {actual} != {expected}"
    );
}

#[tokio::test]
async fn dedup_on_and_off_and_stacked_querier() -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let clusters = clusters(&shutdown).await?;
    let querier = start_querier(&[clusters.a0, clusters.a1, clusters.b0], &[]).await?;
    let base = querier.http_url();

    let (status, body) = query(&base, QUERY, clusters.query_time, &[]).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert!(body.get("warnings").is_none(), "{body}");
    let sums = by_cluster(&body)?;
    assert_eq!(sums.len(), 2, "{body}");
    assert_close(sums["a"], 2.0, "cluster a with dedup");
    assert_close(sums["b"], 4.0, "cluster b with dedup");

    let (_, body) = query(&base, QUERY, clusters.query_time, &[("dedup", "false")]).await?;
    let sums = by_cluster(&body)?;
    assert_close(
        sums["a"],
        4.0,
        "cluster a without dedup counts both replicas",
    );
    assert_close(sums["b"], 4.0, "cluster b without dedup");

    // Without dedup the replica label is visible; with it, it is gone.
    let (_, raw) = query(
        &base,
        "http_requests_total",
        clusters.query_time,
        &[("dedup", "false")],
    )
    .await?;
    assert_eq!(
        raw["data"]["result"].as_array().map(Vec::len),
        Some(6),
        "{raw}"
    );
    let (_, deduped) = query(&base, "http_requests_total", clusters.query_time, &[]).await?;
    let series = deduped["data"]["result"].as_array().context("result")?;
    assert_eq!(series.len(), 4, "{deduped}");
    assert!(
        series.iter().all(|s| s["metric"].get("replica").is_none()),
        "{deduped}"
    );

    // A range query: a matrix, series sorted by labels, 3-decimal timestamps, string values.
    let start = clusters.query_time - 600.0;
    let url = format!(
        "{base}/api/v1/query_range?query={}&start={start}&end={}&step=60",
        urlencode(QUERY),
        clusters.query_time
    );
    let (status, body) = get_json(&url).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["resultType"], "matrix");
    let result = body["data"]["result"].as_array().context("matrix")?;
    assert_eq!(result.len(), 2);
    assert_eq!(result[0]["metric"]["cluster"], "a");
    let values = result[0]["values"].as_array().context("values")?;
    assert_eq!(values.len(), 11, "{body}");
    for point in values {
        assert!(point[0].is_number(), "{point}");
        assert_close(
            point[1].as_str().context("string value")?.parse()?,
            2.0,
            "range a",
        );
    }

    // A second querier stacked on the first one's StoreAPI sees the same deduplicated data:
    // it asks for the series without the replica label and deduplicates the merged chunks.
    let grpc = querier.grpc_address.context("querier grpc address")?;
    let global = start_querier(&[grpc], &[]).await?;
    let (status, body) = query(&global.http_url(), QUERY, clusters.query_time, &[]).await?;
    assert_eq!(status, 200, "{body}");
    let sums = by_cluster(&body)?;
    assert_close(sums["a"], 2.0, "stacked cluster a");
    assert_close(sums["b"], 4.0, "stacked cluster b");
    let (_, stores) = get_json(&format!("{}/api/v1/stores", global.http_url())).await?;
    assert!(stores["data"]["query"].is_array(), "{stores}");

    global.stop(Duration::from_secs(10)).await?;
    querier.stop(Duration::from_secs(10)).await?;
    shutdown.cancel();
    Ok(())
}

fn urlencode(text: &str) -> String {
    let mut url = reqwest::Url::parse("http://x/").expect("static url");
    url.query_pairs_mut().append_pair("q", text);
    url.query()
        .unwrap_or("")
        .trim_start_matches("q=")
        .to_owned()
}

#[tokio::test]
async fn partial_response_with_a_stopped_endpoint() -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let clusters = clusters(&shutdown).await?;
    let querier = start_querier(&[clusters.a0, clusters.a1, clusters.b0], &[]).await?;
    let base = querier.http_url();
    let b0 = clusters.b0.to_string();

    clusters.stop_b.cancel();
    // Wait until the endpoint set has noticed (Info every 5 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, stores) = get_json(&format!("{base}/api/v1/stores")).await?;
        let down = stores["data"]["sidecar"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|store| store["name"] == b0.as_str() && store["lastError"].is_string());
        if down {
            break;
        }
        if Instant::now() > deadline {
            bail!("endpoint {b0} never reported down: {stores}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (status, body) = query(
        &base,
        QUERY,
        clusters.query_time,
        &[("partial_response", "true")],
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let sums = by_cluster(&body)?;
    assert_eq!(sums.keys().collect::<Vec<_>>(), vec!["a"], "{body}");
    assert_close(sums["a"], 2.0, "cluster a");
    let warnings = body["warnings"].as_array().context("warnings")?;
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains(&b0))),
        "warning names the endpoint: {body}"
    );

    let (status, body) = query(
        &base,
        QUERY,
        clusters.query_time,
        &[("partial_response", "false")],
    )
    .await?;
    assert_eq!(body["status"], "error", "{body}");
    assert!(status >= 500, "{status} {body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains(&b0)),
        "{body}"
    );

    // Queries that cannot touch cluster b are unaffected even without partial response.
    let (status, body) = query(
        &base,
        r#"sum(rate(http_requests_total{cluster="a"}[5m]))"#,
        clusters.query_time,
        &[("partial_response", "false")],
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("warnings").is_none(), "{body}");

    querier.stop(Duration::from_secs(10)).await?;
    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn hanging_store_is_cut_at_the_response_timeout() -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let clusters = clusters(&shutdown).await?;
    let hanging = FixtureStore::hanging(&[("cluster", "c"), ("replica", "0")])
        .serve(shutdown.clone())
        .await?;
    let querier = start_querier(
        &[clusters.a0, clusters.b0, hanging],
        &["--store.response-timeout=1s"],
    )
    .await?;
    let started = Instant::now();
    let (status, body) = query(&querier.http_url(), QUERY, clusters.query_time, &[]).await?;
    let elapsed = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(elapsed < Duration::from_secs(5), "query took {elapsed:?}");
    let sums = by_cluster(&body)?;
    assert_close(sums["a"], 2.0, "cluster a");
    assert_close(sums["b"], 4.0, "cluster b");
    let warnings = body["warnings"].as_array().context("warnings")?;
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains(&hanging.to_string()))),
        "{body}"
    );
    querier.stop(Duration::from_secs(10)).await?;
    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn prometheus_shapes_errors_metrics_and_concurrency() -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let clusters = clusters(&shutdown).await?;
    let querier = start_querier(
        &[clusters.a0, clusters.a1, clusters.b0],
        &["--query.max-concurrent=7"],
    )
    .await?;
    let base = querier.http_url();
    let client = reqwest::Client::new();

    // Malformed queries: 400 bad_data with Prometheus's texts.
    let (status, body) = query(&base, "sum(rate(x[5m])", clusters.query_time, &[]).await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errorType"], "bad_data");
    let error = body["error"].as_str().context("error")?;
    assert!(
        error.starts_with("invalid parameter \"query\": 1:"),
        "{error}"
    );
    assert!(error.contains("parse error"), "{error}");
    let (status, body) = get_json(&format!(
        "{base}/api/v1/query_range?query=foo%7B&start=1&end=2&step=1"
    ))
    .await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.starts_with("1:")),
        "{body}"
    );
    let (status, body) = get_json(&format!(
        "{base}/api/v1/query_range?query=up&start=2&end=1&step=1"
    ))
    .await?;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "invalid parameter \"end\": end timestamp must not be before start time"
    );
    let (_, body) = get_json(&format!(
        "{base}/api/v1/query_range?query=up&start=1&end=2&step=0"
    ))
    .await?;
    assert_eq!(
        body["error"],
        "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"
    );
    let (status, body) = get_json(&format!("{base}/api/v1/query?query=up&time=abc")).await?;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"abc\" to a valid timestamp"
    );
    let (status, body) = get_json(&format!("{base}/api/v1/series")).await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("no match[] parameter provided"))
    );
    let (status, body) = get_json(&format!("{base}/api/v1/series?match[]=up%7B")).await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            400,
            Some(
                "invalid parameter \"match[]\": 1:4: parse error: unexpected end of input inside braces"
            )
        )
    );
    // Range queries of range vectors are refused before evaluation, as bad input.
    let (status, body) = get_json(&format!(
        "{base}/api/v1/query_range?query=up%5B5m%5D&start=1&end=2&step=1"
    ))
    .await?;
    assert_eq!(
        (status, body["errorType"].as_str(), body["error"].as_str()),
        (
            400,
            Some("bad_data"),
            Some(
                "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
            )
        )
    );
    // Argument types are checked at parse time.
    let (status, body) = query(&base, "ln(-1)", clusters.query_time, &[]).await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            400,
            Some(
                "invalid parameter \"query\": 1:4: parse error: expected type instant vector in call to function \"ln\", got scalar"
            )
        )
    );
    let (status, body) = get_json(&format!("{base}/api/v1/label/1bad/values")).await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid label name: \"1bad\""))
    );
    // A runtime error is `execution`, 422.
    let (status, body) = query(
        &base,
        "http_requests_total / on() http_requests_total",
        clusters.query_time,
        &[],
    )
    .await?;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (422, Some("execution")),
        "{body}"
    );

    // Raw envelope bytes: field order and scalar formatting.
    let text = client
        .get(format!(
            "{base}/api/v1/query?query=1.5e-7&time=1700000031.5"
        ))
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(
        text,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000031.5,"0.00000015"]}}"#
    );

    // `stats` adds Prometheus's statistics object.
    let (_, body) = query(&base, QUERY, clusters.query_time, &[("stats", "all")]).await?;
    let stats = &body["data"]["stats"];
    assert!(stats["timings"]["execTotalTime"].is_number(), "{body}");
    assert!(
        stats["samples"]["totalQueryableSamples"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{body}"
    );
    assert!(stats["samples"]["peakSamples"].is_u64(), "{body}");
    // Strata's addition: the series read (two per cluster after deduplication).
    assert_eq!(
        stats["series"]["totalQueryableSeries"].as_u64(),
        Some(4),
        "{body}"
    );

    // CORS like Prometheus: OPTIONS is 204, the origin is echoed.
    let response = client
        .request(reqwest::Method::OPTIONS, format!("{base}/api/v1/query"))
        .header("Origin", "http://grafana.local")
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 204);
    assert_eq!(
        response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|value| value.to_str().ok()),
        Some("http://grafana.local")
    );
    let response = client
        .post(format!("{base}/api/v1/label/job/values"))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 405, "label values are GET only");

    // POST with a form body.
    let response = client
        .post(format!("{base}/api/v1/query"))
        .form(&[("query", QUERY), ("time", &clusters.query_time.to_string())])
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await?;
    assert_close(by_cluster(&body)?["b"], 4.0, "POST");

    // /series, /labels, /label/x/values.
    let (status, body) = get_json(&format!(
        "{base}/api/v1/series?match[]=http_requests_total%7Bcluster%3D%22b%22%7D"
    ))
    .await?;
    assert_eq!(status, 200, "{body}");
    let series = body["data"].as_array().context("series array")?;
    assert_eq!(series.len(), 2, "{body}");
    assert_eq!(
        series[0],
        serde_json::json!({"__name__": "http_requests_total", "cluster": "b", "instance": "i1", "job": "api"})
    );
    let (_, body) = get_json(&format!("{base}/api/v1/labels")).await?;
    assert_eq!(
        body["data"],
        serde_json::json!(["__name__", "cluster", "instance", "job"])
    );
    let (_, body) = get_json(&format!("{base}/api/v1/labels?dedup=false")).await?;
    assert_eq!(
        body["data"],
        serde_json::json!(["__name__", "cluster", "instance", "job", "replica"])
    );
    let (_, body) = get_json(&format!("{base}/api/v1/label/cluster/values")).await?;
    assert_eq!(body["data"], serde_json::json!(["a", "b"]));
    let (_, body) = get_json(&format!("{base}/api/v1/label/nothing/values")).await?;
    assert_eq!(body["data"], serde_json::json!([]));
    let (_, body) = get_json(&format!("{base}/api/v1/metadata")).await?;
    assert_eq!(body, serde_json::json!({"status": "success", "data": {}}));
    let (_, body) = get_json(&format!("{base}/api/v1/rules")).await?;
    assert_eq!(
        body,
        serde_json::json!({"status": "success", "data": {"groups": []}})
    );
    let (_, body) = get_json(&format!("{base}/api/v1/query_exemplars?query=up")).await?;
    assert_eq!(body, serde_json::json!({"status": "success", "data": []}));

    // Status endpoints and Thanos's /api/v1/stores.
    let (_, body) = get_json(&format!("{base}/api/v1/status/buildinfo")).await?;
    for key in [
        "version",
        "revision",
        "branch",
        "buildUser",
        "buildDate",
        "goVersion",
    ] {
        assert!(body["data"][key].is_string(), "{key}: {body}");
    }
    let (_, body) = get_json(&format!("{base}/api/v1/status/flags")).await?;
    assert_eq!(body["data"]["query.max-concurrent"], "7", "{body}");
    assert_eq!(body["data"]["query.replica-label"], "replica", "{body}");
    let (_, body) = get_json(&format!("{base}/api/v1/stores")).await?;
    let sidecars = body["data"]["sidecar"].as_array().context("sidecars")?;
    assert_eq!(sidecars.len(), 3, "{body}");
    let first = &sidecars[0];
    for key in ["name", "lastCheck", "labelSets", "minTime", "maxTime"] {
        assert!(first.get(key).is_some(), "{key}: {body}");
    }
    assert!(first["lastError"].is_null(), "{body}");

    // 50 concurrent queries through a gate of 7 all succeed.
    let queries = (0..50).map(|i| {
        let base = base.clone();
        let time = clusters.query_time - f64::from(i);
        async move { query(&base, QUERY, time, &[]).await }
    });
    for result in futures::future::join_all(queries).await {
        let (status, body) = result?;
        assert_eq!(status, 200, "{body}");
        assert_close(by_cluster(&body)?["a"], 2.0, "concurrent");
    }

    // The UI and the metrics.
    // `/` redirects to the graph page, whose script calls the API.
    let page = client.get(format!("{base}/")).send().await?.text().await?;
    assert!(page.contains("static/strata.js"), "UI page: {page}");
    let script = client
        .get(format!("{base}/static/strata.js"))
        .send()
        .await?
        .text()
        .await?;
    assert!(script.contains("api/v1/query_range"), "UI script");
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("thanos_query_concurrent_gate_queries_max 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("thanos_query_concurrent_gate_queries_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"http_requests_total{code="200",handler="query",method="get"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"http_requests_total{code="400",handler="query_range",method="get"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("thanos_store_nodes_grpc_connections{"),
        "{metrics}"
    );

    querier.stop(Duration::from_secs(10)).await?;
    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn sample_limit_error_and_the_querier_keeps_serving() -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let clusters = clusters(&shutdown).await?;
    let querier = start_querier(
        &[clusters.a0, clusters.a1, clusters.b0],
        &["--query.max-samples=100"],
    )
    .await?;
    let base = querier.http_url();
    // 4 series x 20 samples per 5m window = 80 samples: fine. 4 x 240 per hour: too many.
    let (status, body) = query(&base, QUERY, clusters.query_time, &[]).await?;
    assert_eq!(status, 200, "{body}");
    let (status, body) = query(
        &base,
        "sum(rate(http_requests_total[1h]))",
        clusters.query_time,
        &[],
    )
    .await?;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (422, Some("execution")),
        "{body}"
    );
    assert_eq!(
        body["error"],
        "query processing would load too many samples into memory in query execution"
    );
    let (status, body) = query(&base, QUERY, clusters.query_time, &[]).await?;
    assert_eq!(status, 200, "still serving: {body}");
    assert_close(by_cluster(&body)?["b"], 4.0, "after the limit error");
    querier.stop(Duration::from_secs(10)).await?;
    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn file_sd_and_dns_endpoints() -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let clusters = clusters(&shutdown).await?;
    let dir = tempfile::tempdir()?;
    let sd_file = dir.path().join("stores.yml");
    // One plain address and one resolved through DNS (localhost), as Thanos's file SD allows.
    std::fs::write(
        &sd_file,
        format!(
            "- targets: ['{}']\n- targets: ['dns+localhost:{}']\n",
            clusters.a0,
            clusters.b0.port()
        ),
    )?;
    let querier = start_querier(&[], &[&format!("--store.sd-files={}", sd_file.display())]).await?;
    let (status, body) = query(&querier.http_url(), QUERY, clusters.query_time, &[]).await?;
    assert_eq!(status, 200, "{body}");
    let sums = by_cluster(&body)?;
    assert_close(sums["a"], 2.0, "cluster a from the file");
    assert_close(sums["b"], 4.0, "cluster b through dns+");
    let (_, stores) = get_json(&format!("{}/api/v1/stores", querier.http_url())).await?;
    let names: Vec<&str> = stores["data"]["sidecar"]
        .as_array()
        .context("sidecars")?
        .iter()
        .filter_map(|store| store["name"].as_str())
        .collect();
    assert!(
        names.contains(&clusters.a0.to_string().as_str()),
        "{stores}"
    );
    assert!(
        names.contains(&clusters.b0.to_string().as_str()),
        "{stores}"
    );
    querier.stop(Duration::from_secs(10)).await?;
    shutdown.cancel();
    Ok(())
}

/// A CA and a server certificate for `localhost`/127.0.0.1, made with the openssl CLI.
fn test_certificates(dir: &std::path::Path) -> anyhow::Result<()> {
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let output = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .context("run openssl")?;
        if !output.status.success() {
            bail!(
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=strata-test-ca",
    ])?;
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ])?;
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ])
}

#[tokio::test]
async fn global_querier_reaches_a_cluster_querier_over_tls() -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let clusters = clusters(&shutdown).await?;
    let dir = tempfile::tempdir()?;
    test_certificates(dir.path())?;
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    let ca = dir.path().join("ca.pem");
    let cluster_querier = start_querier(
        &[clusters.a0, clusters.a1, clusters.b0],
        &[
            &format!("--grpc-server-tls-cert={}", cert.display()),
            &format!("--grpc-server-tls-key={}", key.display()),
        ],
    )
    .await?;
    let grpc = cluster_querier.grpc_address.context("grpc address")?;
    let global = start_querier(
        &[grpc],
        &[
            "--grpc-client-tls-secure",
            &format!("--grpc-client-tls-ca={}", ca.display()),
            "--grpc-client-server-name=localhost",
        ],
    )
    .await?;
    let (status, body) = query(&global.http_url(), QUERY, clusters.query_time, &[]).await?;
    assert_eq!(status, 200, "{body}");
    let sums = by_cluster(&body)?;
    assert_close(sums["a"], 2.0, "cluster a over TLS");
    assert_close(sums["b"], 4.0, "cluster b over TLS");

    // Without the CA the endpoint cannot be verified: no data, a store error instead.
    let untrusted = start_querier(
        &[grpc],
        &[
            "--grpc-client-tls-secure",
            "--grpc-client-server-name=localhost",
        ],
    )
    .await?;
    let (_, stores) = get_json(&format!("{}/api/v1/stores", untrusted.http_url())).await?;
    let listed = stores["data"]
        .as_object()
        .into_iter()
        .flat_map(|by_type| by_type.values())
        .filter_map(Value::as_array)
        .flatten()
        .any(|store| store["lastError"].is_string());
    assert!(listed, "{stores}");

    untrusted.stop(Duration::from_secs(10)).await?;
    global.stop(Duration::from_secs(10)).await?;
    cluster_querier.stop(Duration::from_secs(10)).await?;
    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn downsampled_aggregates_are_read_per_function() -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let now = now_ms();
    let from = now - 10 * 3_600_000;
    // Fewer than 120 windows, so one aggregate chunk holds them all.
    let to = now - 3_600_000;
    let store = FixtureStore::downsampled(
        &[("cluster", "old")],
        &[("__name__", "temperature"), ("sensor", "s1")],
        from,
        to,
        300_000,
        20.0,
        3.0,
    )?
    .serve(shutdown.clone())
    .await?;
    let querier = start_querier(&[store], &[]).await?;
    let base = querier.http_url();
    let time = (to - 1_800_000) as f64 / 1000.0;
    let value = |body: &Value| -> anyhow::Result<f64> {
        Ok(body["data"]["result"][0]["value"][1]
            .as_str()
            .with_context(|| format!("no value in {body}"))?
            .parse()?)
    };
    let resolution = [("max_source_resolution", "5m")];
    for (expression, expected) in [
        // Plain selectors and most functions read sum / count: the window average.
        ("temperature", 20.0),
        ("avg_over_time(temperature[1h])", 20.0),
        ("max_over_time(temperature[1h])", 22.0),
        ("min_over_time(temperature[1h])", 18.0),
        // count_over_time sums the count aggregate (20 raw samples per 5m window) and
        // sum_over_time the sum aggregate: the closed 1h range holds 13 window points here
        // (window ends fall on both of its edges).
        ("count_over_time(temperature[1h])", 13.0 * 20.0),
        ("sum_over_time(temperature[1h])", 13.0 * 20.0 * 20.0),
        // count counts series, whatever the count aggregate holds.
        ("count(temperature)", 1.0),
        // Rate-like functions read the counter aggregate.
        ("rate(temperature[1h])", 3.0),
    ] {
        let (status, body) = query(&base, expression, time, &resolution).await?;
        assert_eq!(status, 200, "{expression}: {body}");
        assert_close(value(&body)?, expected, expression);
    }
    querier.stop(Duration::from_secs(10)).await?;
    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn query_timeout_bounds_a_hanging_store() -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let clusters = clusters(&shutdown).await?;
    let hanging = FixtureStore::hanging(&[("cluster", "c"), ("replica", "0")])
        .serve(shutdown.clone())
        .await?;
    // No --store.response-timeout: only --query.timeout limits the wait.
    let querier = start_querier(&[clusters.a0, hanging], &["--query.timeout=1s"]).await?;
    let started = Instant::now();
    let (status, body) = query(
        &querier.http_url(),
        QUERY,
        clusters.query_time,
        &[("partial_response", "false")],
    )
    .await?;
    let elapsed = started.elapsed();
    assert_eq!(
        (status, body["errorType"].as_str()),
        (503, Some("timeout")),
        "{body}"
    );
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    // The querier still answers afterwards.
    let (status, body) = query(
        &querier.http_url(),
        r#"sum(rate(http_requests_total{cluster="a"}[5m]))"#,
        clusters.query_time,
        &[],
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    querier.stop(Duration::from_secs(10)).await?;
    shutdown.cancel();
    Ok(())
}
