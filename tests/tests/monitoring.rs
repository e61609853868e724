//! Strata watching itself, over running services: a real Prometheus 2.42 (external labels
//! `cluster`, `prometheus_replica`, some backfilled demo data) scrapes itself and every Strata
//! service under the job names the Kubernetes ServiceMonitors give them (`strata-sidecar`,
//! `strata-store`, `strata-query`, `strata-compact`) and evaluates the alert rules of `k8s/`;
//! its sidecar ships the demo blocks to a bucket that a store gateway serves; a querier answers
//! over both. After some query load:
//!
//! - every metric name read by a dashboard (`grafana/dashboards`) or an alert exists on the
//!   running binaries' `/metrics`, or is listed in `tests/tests/data/pending-metric-names.txt`
//!   with the branch that adds it (and a listed name that a binary now emits fails the test, so
//!   the list only shrinks); the Multi-Cluster Overview reads Prometheus's own metrics, so its
//!   names must exist in the global view instead;
//! - every dashboard variable resolves to values and every panel query answers through the
//!   querier without error; every panel shows data when its component's binary exposes every
//!   metric it reads (so a panel on a name still pending, or on a metric that a component of
//!   this branch does not have yet, may be empty), unless it is one of the few listed below;
//! - Prometheus evaluates every alert rule without error, and the seed's three alerts select
//!   series of the right jobs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use serde_json::Value;
use strata_tests::bins::{Service, StrataProcess};
use strata_tests::monitoring::{
    Dashboard, exposed_metric_names, pending_metric_names, rule_files, selectors,
};
use strata_tests::prom::{self, DataSpec, EQUAL_BLOCK_DURATIONS, PrometheusServer, url_encode};
use strata_tests::sidecar::{start_sidecar, wait_for};

/// Panels that may show no data here, with the reason.
const MAY_BE_EMPTY: [(&str, &str, &str); 2] = [
    (
        "Strata / Store gateway",
        "Bucket operation failures",
        "the filesystem bucket does not fail",
    ),
    (
        "Strata / Sidecar",
        "Bucket operation failures",
        "the filesystem bucket does not fail",
    ),
];

/// The job each component dashboard shows (by dashboard uid).
const DASHBOARD_JOBS: [(&str, &str); 4] = [
    ("strata-query", "strata-query"),
    ("strata-store-gateway", "strata-store"),
    ("strata-sidecar", "strata-sidecar"),
    ("strata-compactor", "strata-compact"),
];

/// The seed's three alerts: each of their selectors must find series of its job.
const SEED_ALERTS: [&str; 3] = [
    "ThanosQueryLatencyHigh",
    "ThanosStoreGrpcErrors",
    "ThanosCompactIterationsFailing",
];

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or_default()
}

/// The monitored setup: Prometheus, the four services and their jobs.
struct Setup {
    prometheus: PrometheusServer,
    querier: StrataProcess,
    /// Strata processes by job name.
    jobs: BTreeMap<&'static str, StrataProcess>,
    _dir: tempfile::TempDir,
}

/// Prometheus config: scrapes itself and, from file SD, each Strata job; evaluates `rules`.
fn prometheus_config(dir: &Path) -> String {
    let mut yaml = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels:\n    cluster: cluster-demo\n    prometheus_replica: \"0\"\nrule_files:\n  - {}/rules/*.yaml\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: [\"127.0.0.1:$PORT\"]\n",
        dir.display()
    );
    for job in [
        "strata-sidecar",
        "strata-store",
        "strata-query",
        "strata-compact",
    ] {
        yaml.push_str(&format!(
            "  - job_name: {job}\n    file_sd_configs:\n      - files: [\"{}/targets/{job}.json\"]\n        refresh_interval: 1s\n",
            dir.display()
        ));
    }
    yaml
}

async fn start() -> anyhow::Result<Setup> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().to_path_buf();
    for sub in [
        "rules",
        "targets",
        "bucket",
        "prometheus",
        "store",
        "compact",
        "rule",
    ] {
        std::fs::create_dir_all(root.join(sub))?;
    }
    for (i, (_, rules, _)) in rule_files()?.into_iter().enumerate() {
        std::fs::write(root.join(format!("rules/rules-{i}.yaml")), rules)?;
    }
    for job in [
        "strata-sidecar",
        "strata-store",
        "strata-query",
        "strata-compact",
        "strata-rule",
    ] {
        std::fs::write(root.join(format!("targets/{job}.json")), "[]")?;
    }
    // Demo data: three hours ending an hour ago, in 2h blocks the sidecar ships.
    let end_ms = (now_s() as i64 - 3600) * 1000;
    let spec = DataSpec {
        series: 100,
        start_ms: end_ms - 3 * 3_600_000,
        duration_ms: 3 * 3_600_000,
        interval_ms: 30_000,
        seed: 7,
    };
    let prometheus = tokio::task::spawn_blocking({
        let root = root.clone();
        move || -> anyhow::Result<PrometheusServer> {
            let data = root.join("prometheus");
            prom::create_blocks(&prom::generate_openmetrics(&spec), &data)?;
            PrometheusServer::start_with(&data, &prometheus_config(&root), &EQUAL_BLOCK_DURATIONS)
        }
    })
    .await??;

    let objstore = format!(
        "--objstore.config=type: FILESYSTEM\nconfig:\n  directory: {}\n",
        root.join("bucket").display()
    );
    let sidecar = start_sidecar(&prometheus.url(), &root.join("prometheus"), &[&objstore]).await?;
    let store_data = format!("--data-dir={}", root.join("store").display());
    let store = StrataProcess::start(
        Service::StoreGateway,
        true,
        &[&objstore, &store_data, "--sync-block-duration=1s"],
    )
    .await?;
    let compact_data = format!("--data-dir={}", root.join("compact").display());
    let compactor =
        StrataProcess::start(Service::Compactor, true, &[&objstore, &compact_data]).await?;
    let endpoint = |process: &StrataProcess| -> anyhow::Result<String> {
        Ok(format!(
            "--endpoint={}",
            process.grpc_address.context("gRPC address")?
        ))
    };
    let querier = StrataProcess::start(
        Service::Querier,
        true,
        &[
            &endpoint(&sidecar)?,
            &endpoint(&store)?,
            "--query.replica-label=prometheus_replica",
        ],
    )
    .await?;
    // A ruler over the querier, with one recording and one alerting rule, so the rule and
    // alert-sender panels and alerts have series.
    let rule_file = root.join("rule/rules.yaml");
    std::fs::write(
        &rule_file,
        "groups:\n  - name: monitoring\n    interval: 1s\n    rules:\n      - record: job:up:count\n        expr: count by (job) (up)\n      - alert: AlwaysFiring\n        expr: vector(1)\n",
    )?;
    let rule_args = [
        format!("--rule-file={}", rule_file.display()),
        format!("--query={}", querier.http_address),
        format!("--data-dir={}", root.join("rule/data").display()),
        "--eval-interval=1s".to_owned(),
        "--label=rule_replica=\"0\"".to_owned(),
    ];
    let rule_refs: Vec<&str> = rule_args.iter().map(String::as_str).collect();
    let ruler = StrataProcess::start(Service::Ruler, true, &rule_refs).await?;
    let mut jobs = BTreeMap::new();
    jobs.insert("strata-rule", ruler);
    jobs.insert("strata-sidecar", sidecar);
    jobs.insert("strata-store", store);
    jobs.insert("strata-compact", compactor);
    for (job, process) in jobs
        .iter()
        .map(|(job, process)| (*job, process))
        .chain([("strata-query", &querier)])
    {
        std::fs::write(
            root.join(format!("targets/{job}.json")),
            format!("[{{\"targets\": [\"{}\"]}}]", process.http_address),
        )?;
    }
    Ok(Setup {
        prometheus,
        querier,
        jobs,
        _dir: dir,
    })
}

/// GET an API path on `base`; the JSON body, which must say success.
async fn api(base: &str, path: &str) -> anyhow::Result<Value> {
    let response = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .with_context(|| format!("GET {path}"))?;
    let status = response.status();
    let body: Value = serde_json::from_str(&response.text().await?)
        .with_context(|| format!("GET {path}: not JSON"))?;
    ensure!(
        status.is_success() && body["status"] == "success",
        "GET {path}: {status} {body}"
    );
    Ok(body)
}

/// Queries that exercise the querier, the sidecar and the store gateway (instant and range,
/// recent and old data, a bad query).
async fn query_load(querier: &str) -> anyhow::Result<()> {
    let now = now_s();
    for _ in 0..3 {
        api(querier, "/api/v1/query?query=up").await?;
        api(
            querier,
            &format!(
                "/api/v1/query_range?query={}&start={}&end={}&step=60",
                url_encode("sum by (job) (rate(strata_test_requests_total[5m]))"),
                now - 4.0 * 3600.0,
                now - 3600.0
            ),
        )
        .await?;
        api(
            querier,
            &format!(
                "/api/v1/query_range?query={}&start={}&end={now}&step=5",
                url_encode("rate(prometheus_http_requests_total[1m])"),
                now - 120.0
            ),
        )
        .await?;
    }
    let bad = reqwest::get(format!("{querier}/api/v1/query?query=sum(")).await?;
    ensure!(bad.status() == 400, "a bad query answers 400");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboards_and_alerts_read_what_strata_emits() -> anyhow::Result<()> {
    let setup = start().await?;
    let querier = setup.querier.http_url();

    // The shipped demo blocks are served by the store gateway.
    let store_url = setup.jobs["strata-store"].http_url();
    wait_for("demo blocks loaded", Duration::from_secs(60), || async {
        let metrics = reqwest::get(format!("{store_url}/metrics"))
            .await?
            .text()
            .await?;
        Ok(
            strata_tests::sidecar::metric_value(&metrics, "thanos_bucket_store_blocks_loaded")
                .filter(|loaded| *loaded > 0.0),
        )
    })
    .await?;
    // A StoreAPI client of the querier, so its server-side gRPC metrics exist.
    let querier_grpc = setup.querier.grpc_address.context("querier gRPC")?;
    strata_tests::store_gateway::store_series(&querier_grpc.to_string(), "up", None, None)?;

    // Every job scraped, then load, then a few more scrapes and rule evaluations.
    let scraped = wait_for("every job scraped", Duration::from_secs(60), || async {
        let body = api(
            &setup.prometheus.url(),
            "/api/v1/query?query=count(up == 1)",
        )
        .await?;
        let up = body["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap_or("0")
            .parse::<f64>()
            .unwrap_or(0.0);
        Ok((up >= 5.0).then_some(()))
    })
    .await;
    if let Err(err) = scraped {
        let targets = api(&setup.prometheus.url(), "/api/v1/targets").await?;
        return Err(err.context(format!("targets: {targets}")));
    }
    for _ in 0..4 {
        query_load(&querier).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;

    // What the binaries expose.
    let mut exposed: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (job, process) in setup
        .jobs
        .iter()
        .map(|(job, process)| (*job, process))
        .chain([("strata-query", &setup.querier)])
    {
        let text = reqwest::get(format!("{}/metrics", process.http_url()))
            .await?
            .text()
            .await?;
        exposed.insert(job, exposed_metric_names(&text));
    }
    let strata_names: BTreeSet<&String> = exposed.values().flatten().collect();
    let pending = pending_metric_names()?;
    for (name, branch) in &pending {
        ensure!(
            !strata_names.contains(name),
            "{name} is emitted now: delete its line ({branch}) from tests/tests/data/pending-metric-names.txt"
        );
    }
    let global_names: BTreeSet<String> =
        api(&querier, "/api/v1/label/__name__/values").await?["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|name| name.as_str().map(str::to_owned))
            .collect();

    let mut problems = Vec::new();
    let end = now_s();
    let start = end - 120.0;

    // Dashboards.
    let dashboards = Dashboard::all()?;
    ensure!(
        dashboards
            .iter()
            .any(|dashboard| dashboard.title() == "Multi-Cluster Overview"),
        "the Multi-Cluster Overview dashboard is missing"
    );
    let mut panels_checked = 0;
    for dashboard in &dashboards {
        let title = dashboard.title();
        let uid = dashboard.json["uid"].as_str().unwrap_or_default();
        // The names its panels must show data for: the global view's for the overview, else
        // what the component's own binary exposes.
        let shown: BTreeSet<&String> = match DASHBOARD_JOBS.iter().find(|(id, _)| *id == uid) {
            Some((_, job)) => exposed
                .get(job)
                .with_context(|| format!("no process for job {job}"))?
                .iter()
                .collect(),
            None if title == "Multi-Cluster Overview" => global_names.iter().collect(),
            None => anyhow::bail!("{title}: which job does it show? (DASHBOARD_JOBS)"),
        };
        for variable in dashboard.variables() {
            let Some((selector, label)) = &variable.label_values else {
                continue;
            };
            let body = api(
                &querier,
                &format!(
                    "/api/v1/series?match[]={}&start={start}&end={end}",
                    url_encode(selector)
                ),
            )
            .await?;
            let values: BTreeSet<&str> = body["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|series| series[label.as_str()].as_str())
                .collect();
            if values.is_empty() {
                problems.push(format!(
                    "{title}: variable {} ({selector}) has no values",
                    variable.name
                ));
            }
        }
        for (panel, exprs) in dashboard.panels() {
            panels_checked += 1;
            let mut has_data = false;
            let mut needs_data = true;
            for expr in &exprs {
                let expanded = dashboard.expand(expr);
                for selector in selectors(&expanded)? {
                    let name = &selector.metric;
                    needs_data &= shown.contains(name);
                    let known = if title == "Multi-Cluster Overview" {
                        global_names.contains(name) || strata_names.contains(name)
                    } else {
                        strata_names.contains(name)
                    };
                    if !known && !pending.contains_key(name) {
                        problems.push(format!("{title} / {panel}: no Strata binary emits {name}"));
                    }
                }
                let answer = api(
                    &querier,
                    &format!(
                        "/api/v1/query_range?query={}&start={start}&end={end}&step=5",
                        url_encode(&expanded)
                    ),
                )
                .await
                .with_context(|| format!("{title} / {panel}: {expanded}"))?;
                has_data |= answer["data"]["result"]
                    .as_array()
                    .is_some_and(|result| !result.is_empty());
            }
            let excused = MAY_BE_EMPTY
                .iter()
                .any(|(dashboard, name, _)| *dashboard == title && *name == panel);
            if !has_data && needs_data && !excused {
                problems.push(format!("{title} / {panel}: no data"));
            }
        }
    }
    ensure!(panels_checked >= 40, "only {panels_checked} panels found");

    // Alerts: every rule evaluated without error by Prometheus, names emitted, the seed's
    // alerts selecting series of their jobs.
    let all_rules: Vec<_> = rule_files()?
        .into_iter()
        .flat_map(|(_, _, rules)| rules)
        .collect();
    let rules = wait_for("every rule evaluated", Duration::from_secs(30), || async {
        let body = api(&setup.prometheus.url(), "/api/v1/rules").await?;
        let evaluated = body["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_array().into_iter().flatten())
            .filter(|rule| {
                rule["lastEvaluation"]
                    .as_str()
                    .is_some_and(|at| !at.starts_with("0001"))
            })
            .count();
        Ok((evaluated >= all_rules.len()).then_some(body))
    })
    .await?;
    for group in rules["data"]["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            if rule["health"] != "ok" {
                problems.push(format!(
                    "rule {} is {}: {}",
                    rule["name"], rule["health"], rule["lastError"]
                ));
            }
        }
    }
    for rule in &all_rules {
        for selector in selectors(&rule.expr)? {
            let name = &selector.metric;
            if pending.contains_key(name) {
                continue;
            }
            if name != "up" && !strata_names.contains(name) {
                problems.push(format!(
                    "alert {} ({}): no Strata binary emits {name}",
                    rule.name, rule.group
                ));
            }
            if SEED_ALERTS.contains(&rule.name.as_str()) {
                let answer = api(
                    &querier,
                    &format!("/api/v1/query?query={}", url_encode(&selector.by_job())),
                )
                .await?;
                if answer["data"]["result"]
                    .as_array()
                    .is_none_or(|result| result.is_empty())
                {
                    problems.push(format!(
                        "seed alert {}: {} selects nothing",
                        rule.name,
                        selector.by_job()
                    ));
                }
            }
        }
    }
    ensure!(
        all_rules
            .iter()
            .filter(|rule| SEED_ALERTS.contains(&rule.name.as_str()))
            .count()
            == SEED_ALERTS.len(),
        "the seed's three alerts must be in k8s/"
    );
    ensure!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    println!(
        "{panels_checked} panels of {} dashboards and {} rules checked; pending names: {}",
        dashboards.len(),
        all_rules.len(),
        pending.keys().cloned().collect::<Vec<_>>().join(" ")
    );
    Ok(())
}
