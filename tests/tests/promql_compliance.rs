//! The PromQL compliance tester's query set (`../shared/promql-compliance/`, or
//! `$STRATA_PROMQL_COMPLIANCE_DIR`), every template expanded (539 queries), run as range
//! queries (10 minutes at a 10 s step, as the tester does) against Prometheus 2.42 and against
//! `strata-querier` over the same data: demo-service-shaped blocks backfilled by promtool into
//! Prometheus (served to the querier by a `strata-sidecar`, replica r0) and the same blocks in a
//! FILESYSTEM bucket behind `strata-store-gateway` (replica r1), deduplicated by `replica`.
//! Every answer must equal Prometheus's the way the tester compares: the same series in the
//! same order, the same timestamps, values within 1e-5 relative (NaN equal to NaN), and the
//! queries that fail on Prometheus fail on Strata too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use strata_tests::bins::{Service, StrataProcess};
use strata_tests::demo_service;
use strata_tests::prom::{self, EQUAL_BLOCK_DURATIONS, PrometheusServer, url_encode};
use strata_tests::sidecar::start_sidecar;
use strata_tests::store_gateway::{filesystem_objstore_yaml, fill_filesystem_bucket, start};

/// A 2h block boundary: the query window straddles it, so answers merge two blocks.
const BOUNDARY_MS: i64 = 1_700_006_400_000;
const WINDOW_END_MS: i64 = BOUNDARY_MS + 5 * 60_000;
const WINDOW_START_MS: i64 = WINDOW_END_MS - 10 * 60_000;
const STEP_MS: i64 = 10_000;

/// The values each template argument takes, as the tester expands them.
fn variant_values(arg: &str) -> Option<&'static [&'static str]> {
    Some(match arg {
        "range" => &["1s", "15s", "1m", "5m", "15m", "1h"],
        "offset" => &["1m", "5m", "10m"],
        "simpleAggrOp" => &["sum", "avg", "max", "min", "count", "stddev", "stdvar"],
        "simpleTimeAggrOp" => &[
            "sum", "avg", "max", "min", "count", "stddev", "stdvar", "absent", "last",
        ],
        "topBottomOp" => &["topk", "bottomk"],
        "quantile" => &[
            "-0.5", "0.1", "0.5", "0.75", "0.95", "0.90", "0.99", "1", "1.5",
        ],
        "arithBinOp" => &["+", "-", "*", "/", "%", "^"],
        "compBinOp" => &["==", "!=", "<", ">", "<=", ">="],
        "binOp" => &[
            "+", "-", "*", "/", "%", "^", "==", "!=", "<", ">", "<=", ">=",
        ],
        "simpleMathFunc" => &[
            "abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "round",
        ],
        "extrapolatedRateFunc" => &["delta", "rate", "increase"],
        "clampFunc" => &["clamp_min", "clamp_max"],
        "instantRateFunc" => &["idelta", "irate"],
        "dateFunc" => &[
            "day_of_month",
            "day_of_week",
            "days_in_month",
            "hour",
            "minute",
            "month",
            "year",
        ],
        "smoothingFactor" | "trendFactor" => &["0.1", "0.5", "0.8"],
        _ => return None,
    })
}

#[derive(Debug, Clone)]
struct Case {
    query: String,
    should_fail: bool,
    skip_comparison: bool,
}

/// Every combination of the template's arguments, the first argument varying slowest.
fn expand(template: &str, args: &[String]) -> anyhow::Result<Vec<String>> {
    let Some((first, rest)) = args.split_first() else {
        if template.contains("{{") {
            bail!("template {template:?} has unexpanded arguments");
        }
        return Ok(vec![template.to_owned()]);
    };
    let values = variant_values(first).with_context(|| format!("unknown argument {first}"))?;
    let mut out = Vec::new();
    for value in values {
        let filled = template.replace(&format!("{{{{.{first}}}}}"), value);
        out.extend(expand(&filled, rest)?);
    }
    Ok(out)
}

/// The query set's file, or `None` (after printing how to get it) when it is missing outside
/// CI: a fresh clone has no `../shared`. With `CI=true` a missing file is an error.
fn compliance_file() -> anyhow::Result<Option<PathBuf>> {
    let dir = std::env::var_os("STRATA_PROMQL_COMPLIANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/promql-compliance")
        });
    let path = dir.join("promql-test-queries.yml");
    if path.is_file() {
        return Ok(Some(path));
    }
    let message = format!(
        "{} not found: to run the PromQL compliance suite, put the compliance tester's \
         promql/promql-test-queries.yml (prometheus/compliance) there or set \
         STRATA_PROMQL_COMPLIANCE_DIR",
        path.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        anyhow::bail!("{message} (CI=true: missing files fail)");
    }
    println!("skipped: {message}");
    Ok(None)
}

fn compliance_cases_in(path: &Path) -> anyhow::Result<Vec<Case>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read {} (set STRATA_PROMQL_COMPLIANCE_DIR)", path.display()))?;
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text)?;
    let mut cases = Vec::new();
    for case in yaml["test_cases"].as_sequence().context("test_cases")? {
        let template = case["query"].as_str().context("query")?;
        let args: Vec<String> = case["variant_args"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|arg| arg.as_str().map(str::to_owned))
            .collect();
        for query in expand(template, &args)? {
            cases.push(Case {
                query,
                should_fail: case["should_fail"].as_bool().unwrap_or(false),
                skip_comparison: case["skip_comparison"].as_bool().unwrap_or(false),
            });
        }
    }
    Ok(cases)
}

/// The body of a range query, or the error text when it did not succeed.
async fn query_range(client: &reqwest::Client, base: &str, query: &str) -> Result<Value, String> {
    let url = format!(
        "{base}/api/v1/query_range?query={}&start={}&end={}&step={}",
        url_encode(query),
        WINDOW_START_MS / 1000,
        WINDOW_END_MS / 1000,
        STEP_MS / 1000
    );
    let response = client
        .get(&url)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    let body: Value = serde_json::from_str(&text).map_err(|e| format!("{status}: {text}: {e}"))?;
    if !status.is_success() || body["status"] != "success" {
        return Err(format!("{status}: {text}"));
    }
    Ok(body)
}

/// Equal as the tester's `cmpopts.EquateApprox(1e-5, 0)` with NaNs equal.
fn values_equal(expected: &str, actual: &str) -> bool {
    if expected == actual {
        return true;
    }
    match (expected.parse::<f64>(), actual.parse::<f64>()) {
        (Ok(a), Ok(b)) => {
            (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-5 * a.abs().min(b.abs())
        }
        _ => false,
    }
}

/// `None` when the two range-query bodies are equal, else what differs first.
fn difference(expected: &Value, actual: &Value) -> Option<String> {
    let (e, a) = (&expected["data"], &actual["data"]);
    if e["resultType"] != a["resultType"] {
        return Some(format!(
            "result type {} != {}",
            e["resultType"], a["resultType"]
        ));
    }
    let empty = Vec::new();
    let e = e["result"].as_array().unwrap_or(&empty);
    let a = a["result"].as_array().unwrap_or(&empty);
    let labels =
        |list: &[Value]| -> Vec<String> { list.iter().map(|s| s["metric"].to_string()).collect() };
    if labels(e) != labels(a) {
        return Some(format!("series {:?} != {:?}", labels(e), labels(a)));
    }
    for (es, as_) in e.iter().zip(a) {
        let ep = es["values"].as_array().unwrap_or(&empty);
        let ap = as_["values"].as_array().unwrap_or(&empty);
        let times = |p: &[Value]| -> Vec<String> { p.iter().map(|v| v[0].to_string()).collect() };
        if times(ep) != times(ap) {
            return Some(format!(
                "{}: timestamps {:?} != {:?}",
                es["metric"],
                times(ep),
                times(ap)
            ));
        }
        for (ev, av) in ep.iter().zip(ap) {
            let (ev_s, av_s) = (ev[1].as_str().unwrap_or(""), av[1].as_str().unwrap_or(""));
            if !values_equal(ev_s, av_s) {
                return Some(format!("{} at {}: {ev_s} != {av_s}", es["metric"], ev[0]));
            }
        }
    }
    None
}

#[test]
fn every_template_is_expanded_like_the_tester() -> anyhow::Result<()> {
    let Some(path) = compliance_file()? else {
        return Ok(());
    };
    let cases = compliance_cases_in(&path)?;
    assert_eq!(
        cases.len(),
        539,
        "the tester's query set expands to 539 queries"
    );
    assert!(cases.iter().all(|c| !c.query.contains("{{")));
    assert!(
        cases
            .iter()
            .any(|c| c.query == "rate(demo_cpu_usage_seconds_total[1h])")
    );
    assert!(
        cases
            .iter()
            .any(|c| c.query == "{__name__=~\".*\"}" && c.should_fail)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn querier_passes_the_promql_compliance_query_set() -> anyhow::Result<()> {
    let Some(path) = compliance_file()? else {
        return Ok(());
    };
    let cases = compliance_cases_in(&path)?;
    let dir = tempfile::tempdir()?;
    let prom_dir = dir.path().join("prom");
    let blocks = {
        let prom_dir = prom_dir.clone();
        tokio::task::spawn_blocking(move || {
            let text = demo_service::generate_openmetrics(
                BOUNDARY_MS - 85 * 60_000,
                BOUNDARY_MS + 10 * 60_000,
                WINDOW_END_MS - 4 * 60_000,
            );
            prom::create_blocks(&text, &prom_dir)
        })
        .await??
    };
    assert!(blocks.len() >= 2, "the data spans a block boundary");
    let prometheus = {
        let prom_dir = prom_dir.clone();
        tokio::task::spawn_blocking(move || {
            PrometheusServer::start_with(
                &prom_dir,
                "global:\n  external_labels:\n    replica: r0\n",
                &EQUAL_BLOCK_DURATIONS,
            )
        })
        .await??
    };
    let sidecar = start_sidecar(&prometheus.url(), &prom_dir, &[]).await?;
    let bucket_dir = dir.path().join("bucket");
    fill_filesystem_bucket(&blocks, &bucket_dir, &[("replica", "r1")])?;
    let gateway = start(
        &filesystem_objstore_yaml(&bucket_dir),
        &dir.path().join("store-data"),
        &[],
    )
    .await?;
    let sidecar_endpoint = format!("--endpoint={}", sidecar.grpc_address.context("grpc")?);
    let gateway_endpoint = format!("--endpoint={}", gateway.grpc_address.context("grpc")?);
    let querier = StrataProcess::start(
        Service::Querier,
        true,
        &[
            &sidecar_endpoint,
            &gateway_endpoint,
            "--query.replica-label=replica",
        ],
    )
    .await?;

    let client = reqwest::Client::new();
    let (reference, tested) = (prometheus.url(), querier.http_url());
    let mut failures = Vec::new();
    let mut compared_with_data = 0;
    for case in &cases {
        let expected = query_range(&client, &reference, &case.query).await;
        let actual = query_range(&client, &tested, &case.query).await;
        let failure = match (&expected, &actual) {
            (Err(e), _) if !case.should_fail => Some(format!("Prometheus failed: {e}")),
            (Ok(_), _) if case.should_fail => Some("Prometheus succeeded".to_owned()),
            (_, Err(e)) if !case.should_fail => Some(format!("Strata failed: {e}")),
            (_, Ok(_)) if case.should_fail => Some("Strata succeeded".to_owned()),
            (Ok(e), Ok(a)) if !case.skip_comparison => {
                if e["data"]["result"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty())
                {
                    compared_with_data += 1;
                }
                difference(e, a)
            }
            _ => None,
        };
        if let Some(failure) = failure {
            failures.push(format!("{}: {failure}", case.query));
        }
    }
    let passed = cases.len() - failures.len();
    for failure in &failures {
        let cut: String = failure.chars().take(600).collect();
        eprintln!("FAIL {cut}");
    }
    eprintln!("compliance: {passed} passed, {} failed", failures.len());
    assert!(
        compared_with_data > 400,
        "the data must make most queries non-empty ({compared_with_data})"
    );
    assert!(
        failures.is_empty(),
        "{} compliance queries differ",
        failures.len()
    );

    querier.stop(Duration::from_secs(10)).await?;
    drop(gateway);
    drop(sidecar);
    Ok(())
}
