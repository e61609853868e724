//! End-to-end tests of `strata-ruler` with the real parts: two live Prometheus 2.42 servers
//! (clusters a and b, scraping themselves and a switch target every second) with sidecars
//! behind a querier, Debian's Alertmanager on loopback, a FILESYSTEM bucket and the store
//! gateway.
//!
//! Intervals are 1 s and `for` 2 s so each test takes seconds. `STRATA_TEST_QUERIER_OUTAGE_SECS`
//! sets the querier outage of the outage test (default 8 s, longer than the 4 s an alert stays
//! valid in Alertmanager without re-sends; 120 for the issue's two-minute run).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;
use strata_tests::bins::{Service, StrataProcess};
use strata_tests::ruler::{
    Alertmanager, LiveCluster, SwitchTarget, get_json, labelled_metric, start_querier, start_ruler,
};
use strata_tests::sidecar::wait_for;

const RULES: &str = r#"groups:
- name: fleet
  interval: 1s
  rules:
  - record: strata:switch:sum
    expr: sum by (job, cluster) (strata_test_switch)
  - record: strata:up:count
    expr: count by (job, cluster) (up)
  - alert: SwitchOn
    expr: strata_test_switch == 1
    for: 2s
    labels:
      severity: page
    annotations:
      summary: "switch on in cluster {{ $labels.cluster }} ({{ $value }})"
      targets: '{{ with query "count(up)" }}{{ . | first | value }}{{ end }} targets up'
"#;

/// Two live clusters with sidecars, a querier over both, a switch target and Alertmanager.
struct Fleet {
    switch: SwitchTarget,
    a: LiveCluster,
    b: LiveCluster,
    /// The querier the rulers ask (taken away by the outage test).
    querier: Option<StrataProcess>,
    querier_address: std::net::SocketAddr,
    alertmanager: Alertmanager,
    dir: tempfile::TempDir,
}

impl Fleet {
    async fn start(prometheus_rules: bool) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let rules_path = dir.path().join("rules.yml");
        std::fs::write(&rules_path, RULES)?;
        let switch = SwitchTarget::start(1.0).await?;
        let rule_file = prometheus_rules.then(|| rules_path.clone());
        let a = LiveCluster::start("a", switch.address, rule_file).await?;
        let b = LiveCluster::start("b", switch.address, None).await?;
        let querier = start_querier(&[a.grpc()?, b.grpc()?]).await?;
        let querier_address = querier.http_address;
        let alertmanager = Alertmanager::start().await?;
        Ok(Self {
            switch,
            a,
            b,
            querier: Some(querier),
            querier_address,
            alertmanager,
            dir,
        })
    }

    fn rules_path(&self) -> String {
        self.dir.path().join("rules.yml").display().to_string()
    }

    /// Ruler arguments: 1 s evaluation and resend, this fleet's querier and Alertmanager.
    fn ruler_args(&self, replica: &str, extra: &[String]) -> Vec<String> {
        let data = self.dir.path().join(format!("ruler-{replica}"));
        let mut args = vec![
            format!("--rule-file={}", self.rules_path()),
            format!("--query={}", self.querier_address),
            format!("--alertmanagers.url={}", self.alertmanager.url()),
            format!("--data-dir={}", data.display()),
            format!("--label=rule_replica=\"{replica}\""),
            "--alert.label-drop=rule_replica".to_owned(),
            "--alert.query-url=http://strata.example.com".to_owned(),
            "--eval-interval=1s".to_owned(),
            "--resend-delay=1s".to_owned(),
        ];
        args.extend(extra.iter().cloned());
        args
    }
}

/// Alertmanager's active alerts named `alertname`, by cluster.
async fn active_alerts(
    alertmanager: &Alertmanager,
    alertname: &str,
) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for alert in alertmanager.alerts().await? {
        if alert["labels"]["alertname"] == alertname && alert["status"]["state"] == "active" {
            let cluster = alert["labels"]["cluster"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            out.insert(cluster, alert);
        }
    }
    Ok(out)
}

async fn metrics(process: &StrataProcess) -> anyhow::Result<String> {
    Ok(reqwest::get(format!("{}/metrics", process.http_url()))
        .await?
        .text()
        .await?)
}

#[tokio::test]
async fn alert_fires_in_alertmanager_resolves_and_ha_rulers_make_one_group() -> anyhow::Result<()> {
    let fleet = Fleet::start(false).await?;
    let ruler0 = start_ruler(&fleet.ruler_args("0", &[])).await?;
    let ruler1 = start_ruler(&fleet.ruler_args("1", &[])).await?;

    // Fires after `for` for both clusters, with the rule's labels and expanded annotations,
    // without the dropped replica label.
    let alerts = wait_for(
        "SwitchOn firing in alertmanager",
        Duration::from_secs(60),
        || async {
            let alerts = active_alerts(&fleet.alertmanager, "SwitchOn").await?;
            Ok((alerts.len() == 2).then_some(alerts))
        },
    )
    .await?;
    for cluster in ["a", "b"] {
        let alert = &alerts[cluster];
        let labels = alert["labels"].as_object().context("labels")?;
        assert_eq!(alert["labels"]["severity"], "page", "{alert}");
        assert_eq!(alert["labels"]["job"], "switch", "{alert}");
        assert!(!labels.contains_key("rule_replica"), "dropped: {alert}");
        assert!(!labels.contains_key("__name__"), "{alert}");
        assert_eq!(
            alert["annotations"]["summary"],
            format!("switch on in cluster {cluster} (1)"),
            "{alert}"
        );
        // `query` runs through the querier: both clusters' two targets.
        assert_eq!(alert["annotations"]["targets"], "4 targets up", "{alert}");
        let generator = alert["generatorURL"].as_str().unwrap_or_default();
        assert!(
            generator.starts_with("http://strata.example.com/graph?g0.expr=strata_test_switch"),
            "{generator}"
        );
    }
    // The two rulers' copies are one alert each, in one group.
    let groups = fleet.alertmanager.groups().await?;
    let switch_groups: Vec<&Value> = groups
        .iter()
        .filter(|group| group["labels"]["alertname"] == "SwitchOn")
        .collect();
    assert_eq!(switch_groups.len(), 1, "{groups:?}");
    assert_eq!(
        switch_groups[0]["alerts"].as_array().map(Vec::len),
        Some(2),
        "{groups:?}"
    );
    // Both rulers sent (their sender metrics say so).
    for ruler in [&ruler0, &ruler1] {
        let text = metrics(ruler).await?;
        let sent = labelled_metric(&text, "thanos_alert_sender_alerts_sent_total", &[])
            .unwrap_or_default();
        assert!(sent >= 2.0, "{text}");
        assert!(
            labelled_metric(
                &text,
                "prometheus_rule_evaluations_total",
                &["rule_group=", "strategy=\"abort\""]
            )
            .unwrap_or_default()
                > 0.0,
            "{text}"
        );
    }
    // The rules API shows the firing alerts and the page renders.
    let rules = get_json(&format!("{}/api/v1/rules?type=alert", ruler0.http_url())).await?;
    let rule = &rules["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["name"], "SwitchOn", "{rules}");
    assert_eq!(rule["state"], "firing", "{rules}");
    assert_eq!(rule["health"], "ok", "{rules}");
    assert_eq!(rule["labels"]["rule_replica"], "0", "{rules}");
    assert_eq!(
        rules["data"]["groups"][0]["partialResponseStrategy"],
        "ABORT"
    );
    let api_alerts = get_json(&format!("{}/api/v1/alerts", ruler0.http_url())).await?;
    assert_eq!(
        api_alerts["data"]["alerts"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(api_alerts["data"]["alerts"][0]["value"], "1e+00");
    let page = reqwest::get(format!("{}/", ruler0.http_url()))
        .await?
        .text()
        .await?;
    assert!(page.contains("api/v1/rules"), "{page}");

    // The condition clears: the alerts resolve in Alertmanager.
    fleet.switch.set(0.0);
    wait_for("SwitchOn resolved", Duration::from_secs(60), || async {
        let alerts = active_alerts(&fleet.alertmanager, "SwitchOn").await?;
        Ok(alerts.is_empty().then_some(()))
    })
    .await?;
    let rules = get_json(&format!("{}/api/v1/rules?type=alert", ruler1.http_url())).await?;
    assert_eq!(
        rules["data"]["groups"][0]["rules"][0]["state"], "inactive",
        "{rules}"
    );
    drop(fleet.b);
    Ok(())
}

/// `(labels without cluster and the external labels) -> value` of an instant vector.
fn vector(body: &Value, drop: &[&str]) -> anyhow::Result<BTreeMap<String, f64>> {
    anyhow::ensure!(body["status"] == "success", "query failed: {body}");
    let mut out = BTreeMap::new();
    for sample in body["data"]["result"].as_array().context("result")? {
        let labels: BTreeMap<&String, &Value> = sample["metric"]
            .as_object()
            .context("metric")?
            .iter()
            .filter(|(name, _)| !drop.contains(&name.as_str()))
            .collect();
        let value: f64 = sample["value"][1].as_str().context("value")?.parse()?;
        out.insert(serde_json::to_string(&labels)?, value);
    }
    Ok(out)
}

async fn query(base: &str, expr: &str, time: f64) -> anyhow::Result<Value> {
    get_json(&format!(
        "{base}/api/v1/query?query={}&time={time}",
        strata_tests::prom::url_encode(expr)
    ))
    .await
}

#[tokio::test]
async fn recorded_series_and_alerts_match_prometheus_and_blocks_reach_the_bucket()
-> anyhow::Result<()> {
    // Prometheus for cluster a evaluates the same rule file on its own data.
    let fleet = Fleet::start(true).await?;
    let bucket = fleet.dir.path().join("bucket");
    std::fs::create_dir_all(&bucket)?;
    let objstore = strata_tests::store_gateway::filesystem_objstore_yaml(&bucket);
    let ruler = start_ruler(&fleet.ruler_args(
        "0",
        &[
            format!("--objstore.config={objstore}"),
            "--tsdb.block-duration=4s".to_owned(),
            "--shipper.sync-interval=1s".to_owned(),
        ],
    ))
    .await?;
    let ruler_grpc = ruler.grpc_address.context("ruler gRPC")?;
    // A second querier reads the ruler's series back (the first one is what the ruler asks).
    let reader = start_querier(&[ruler_grpc]).await?;

    wait_for("ALERTS firing in both", Duration::from_secs(60), || async {
        let now = now_seconds();
        let ours = query(&reader.http_url(), "ALERTS{alertstate=\"firing\"}", now).await?;
        let theirs = query(
            &fleet.a.prometheus.url(),
            "ALERTS{alertstate=\"firing\"}",
            now,
        )
        .await?;
        let ours_count = ours["data"]["result"].as_array().map_or(0, Vec::len);
        let theirs_count = theirs["data"]["result"].as_array().map_or(0, Vec::len);
        Ok((ours_count == 2 && theirs_count == 1).then_some(()))
    })
    .await?;
    // Both fire now; compare a little later, when neither has a pending series left.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let time = now_seconds();
    let external = ["cluster", "replica", "rule_replica"];
    for expr in [
        "strata:switch:sum",
        "strata:up:count",
        "ALERTS",
        "ALERTS_FOR_STATE",
    ] {
        // The ruler saw both clusters; Prometheus only its own (cluster a).
        let ours = query(
            &reader.http_url(),
            &format!("{expr}{{cluster=\"a\"}}"),
            time,
        )
        .await?;
        let theirs = query(&fleet.a.prometheus.url(), expr, time).await?;
        let ours_vector = vector(&ours, &external)?;
        let theirs_vector = vector(&theirs, &external)?;
        assert!(
            !theirs_vector.is_empty(),
            "{expr}: prometheus has data: {theirs}"
        );
        assert_eq!(
            ours_vector.keys().collect::<Vec<_>>(),
            theirs_vector.keys().collect::<Vec<_>>(),
            "{expr}: series\nruler: {ours}\nprometheus: {theirs}"
        );
        if expr == "ALERTS_FOR_STATE" {
            // ActiveAt in seconds: the two evaluated the same data at most a few intervals apart.
            for (key, value) in &ours_vector {
                let other = theirs_vector[key];
                assert!(
                    (value - other).abs() <= 3.0,
                    "{expr} {key}: {value} vs {other}"
                );
            }
        } else {
            assert_eq!(ours_vector, theirs_vector, "{expr}: values");
        }
    }
    // Sample timestamps of the recorded series lie within one evaluation interval (plus the
    // scrape jitter of the data both read).
    let ours = query(
        &reader.http_url(),
        "timestamp(strata:switch:sum{cluster=\"a\"})",
        time,
    )
    .await?;
    let theirs = query(
        &fleet.a.prometheus.url(),
        "timestamp(strata:switch:sum)",
        time,
    )
    .await?;
    let ours_ts = vector(&ours, &external)?
        .into_values()
        .next()
        .context("ruler timestamp")?;
    let theirs_ts = vector(&theirs, &external)?
        .into_values()
        .next()
        .context("prometheus timestamp")?;
    assert!(
        (ours_ts - theirs_ts).abs() <= 1.0 + 0.1,
        "{ours_ts} vs {theirs_ts}"
    );

    // Blocks are cut every 4 s and shipped: meta.json with the ruler's labels, after its data.
    let block = wait_for(
        "a ruler block in the bucket",
        Duration::from_secs(60),
        || {
            let bucket = bucket.clone();
            async move {
                for entry in std::fs::read_dir(&bucket)? {
                    let path = entry?.path();
                    if path.join("meta.json").is_file() {
                        return Ok(Some(path));
                    }
                }
                Ok(None)
            }
        },
    )
    .await?;
    let meta: Value = serde_json::from_slice(&std::fs::read(block.join("meta.json"))?)?;
    assert_eq!(meta["thanos"]["source"], "ruler", "{meta}");
    assert_eq!(meta["thanos"]["labels"]["rule_replica"], "0", "{meta}");
    for file in meta["thanos"]["files"].as_array().context("files")? {
        let rel = file["rel_path"].as_str().context("rel_path")?;
        if rel != "meta.json" {
            let size = std::fs::metadata(block.join(rel))?.len();
            assert_eq!(Some(size), file["size_bytes"].as_u64(), "{rel}");
        }
    }
    // The store gateway serves it.
    let gateway = strata_tests::store_gateway::start(
        &objstore,
        &fleet.dir.path().join("gateway"),
        &["--sync-block-duration=1s"],
    )
    .await?;
    let gateway_querier = start_querier(&[gateway.grpc_address.context("gateway gRPC")?]).await?;
    let min_time = meta["minTime"].as_i64().context("minTime")? as f64 / 1000.0;
    let max_time = meta["maxTime"].as_i64().context("maxTime")? as f64 / 1000.0;
    let served = wait_for(
        "the store gateway serves the ruler block",
        Duration::from_secs(60),
        || async {
            let body = get_json(&format!(
                "{}/api/v1/query_range?query={}&start={min_time}&end={}&step=1",
                gateway_querier.http_url(),
                strata_tests::prom::url_encode("strata:switch:sum{rule_replica=\"0\"}"),
                max_time - 0.001
            ))
            .await?;
            let series = body["data"]["result"].as_array().map_or(0, Vec::len);
            Ok((series > 0).then_some(body))
        },
    )
    .await
    .with_context(|| {
        let listing: Vec<String> = std::fs::read_dir(&bucket)
            .map(|dir| {
                dir.filter_map(|entry| entry.ok())
                    .map(|entry| {
                        let meta = std::fs::read_to_string(entry.path().join("meta.json"))
                            .unwrap_or_default();
                        format!("{}: {meta}", entry.path().display())
                    })
                    .collect()
            })
            .unwrap_or_default();
        format!(
            "block {}; bucket:\n{}\ngateway logs:\n{}\nruler logs:\n{}",
            block.display(),
            listing.join("\n"),
            gateway.logs(),
            ruler.logs()
        )
    })?;
    // (The querier deduplicates on rule_replica, so the label is gone from the answer.)
    assert_eq!(
        served["data"]["result"][0]["metric"]["__name__"], "strata:switch:sum",
        "{served}"
    );
    assert_eq!(served["data"]["result"][0]["values"][0][1], "1", "{served}");
    drop(ruler);
    Ok(())
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

#[tokio::test]
async fn querier_outage_keeps_alerts_firing_and_evaluation_resumes() -> anyhow::Result<()> {
    let outage: u64 = std::env::var("STRATA_TEST_QUERIER_OUTAGE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let mut fleet = Fleet::start(false).await?;
    let ruler = start_ruler(&fleet.ruler_args("0", &[])).await?;
    wait_for("SwitchOn firing", Duration::from_secs(60), || async {
        let alerts = active_alerts(&fleet.alertmanager, "SwitchOn").await?;
        Ok((alerts.len() == 2).then_some(()))
    })
    .await?;
    let failures = |text: &str| {
        labelled_metric(
            text,
            "prometheus_rule_evaluation_failures_total",
            &["rule_group="],
        )
        .unwrap_or_default()
    };
    let before = failures(&metrics(&ruler).await?);

    // The querier goes away.
    let http_address = fleet.querier_address;
    let endpoints = [fleet.a.grpc()?, fleet.b.grpc()?];
    fleet
        .querier
        .take()
        .context("querier running")?
        .stop(Duration::from_secs(30))
        .await?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(outage) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let alerts = active_alerts(&fleet.alertmanager, "SwitchOn").await?;
        assert_eq!(
            alerts.len(),
            2,
            "alerts stay firing {:?} into the outage",
            started.elapsed()
        );
    }
    let during = failures(&metrics(&ruler).await?);
    assert!(
        during >= before + 2.0,
        "evaluation failures counted: {before} -> {during}"
    );
    let rules = get_json(&format!("{}/api/v1/rules", ruler.http_url())).await?;
    let rule = &rules["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["health"], "err", "{rules}");
    assert!(
        rule["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("no query API server reachable"),
        "{rules}"
    );

    // The querier comes back on the same address; evaluation resumes without a restart.
    let mut args: Vec<String> = endpoints
        .iter()
        .map(|a| format!("--endpoint={a}"))
        .collect();
    args.push("--query.replica-label=replica".to_owned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut back = StrataProcess::spawn_at(
        Service::Querier,
        true,
        http_address,
        Some("127.0.0.1:0".parse()?),
        &refs,
    )?;
    back.wait_ready(Duration::from_secs(30)).await?;
    wait_for("rules healthy again", Duration::from_secs(60), || async {
        let rules = get_json(&format!("{}/api/v1/rules", ruler.http_url())).await?;
        let healthy = rules["data"]["groups"][0]["rules"]
            .as_array()
            .is_some_and(|rules| rules.iter().all(|rule| rule["health"] == "ok"));
        Ok(healthy.then_some(()))
    })
    .await?;
    let after = failures(&metrics(&ruler).await?);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        failures(&metrics(&ruler).await?),
        after,
        "no new failures once back"
    );
    assert_eq!(
        active_alerts(&fleet.alertmanager, "SwitchOn").await?.len(),
        2
    );
    Ok(())
}

#[tokio::test]
async fn bad_rule_files_fail_startup_and_reloads_keep_the_old_rules() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("rules.yml");
    let bad_files = [
        (
            "groups:\n- name: g\n  rules:\n  - record: r\n    expr: sum(up\n",
            ":5: ",
            "could not parse expression",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      summary: \"{{ $labels.x | nosuch }}\"\n",
            ":4: ",
            "nosuch",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    colour: blue\n",
            ":6: ",
            "unknown field `colour`",
        ),
    ];
    for (text, line, reason) in bad_files {
        std::fs::write(&path, text)?;
        let (status, _, stderr) = strata_tests::bins::run_to_completion(
            "strata-ruler",
            &[
                "rule",
                "--http-address=127.0.0.1:0",
                "--grpc-address=127.0.0.1:0",
                "--query=127.0.0.1:1",
                &format!("--data-dir={}", dir.path().join("data").display()),
                &format!("--rule-file={}", path.display()),
            ],
        )?;
        assert!(!status.success(), "{text}");
        let expected = format!("{}{line}", path.display());
        assert!(stderr.contains(&expected), "{expected} in {stderr}");
        assert!(stderr.contains(reason), "{reason} in {stderr}");
    }

    std::fs::write(
        &path,
        "groups:\n- name: good\n  interval: 1s\n  rules:\n  - record: one\n    expr: vector(1)\n",
    )?;
    let ruler = start_ruler(&[
        format!("--rule-file={}", path.display()),
        format!("--data-dir={}", dir.path().join("data").display()),
    ])
    .await?;
    let names = |rules: &Value| -> Vec<String> {
        rules["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|group| group["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let client = reqwest::Client::new();
    for (text, _, reason) in bad_files {
        std::fs::write(&path, text)?;
        let response = client
            .post(format!("{}/-/reload", ruler.http_url()))
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 500);
        let body = response.text().await?;
        assert!(body.contains(reason), "{body}");
        assert!(body.contains(&path.display().to_string()), "{body}");
        let rules = get_json(&format!("{}/api/v1/rules", ruler.http_url())).await?;
        assert_eq!(
            names(&rules),
            vec!["good".to_owned()],
            "old rules keep running"
        );
    }
    let text = metrics(&ruler).await?;
    assert_eq!(
        strata_tests::sidecar::metric_value(&text, "thanos_rule_config_last_reload_successful"),
        Some(0.0)
    );
    // SIGHUP with a good file loads it.
    std::fs::write(
        &path,
        "groups:\n- name: renamed\n  rules:\n  - record: two\n    expr: vector(2)\n",
    )?;
    let status = std::process::Command::new("kill")
        .args(["-HUP", &ruler.pid().to_string()])
        .status()?;
    assert!(status.success());
    wait_for("SIGHUP reload", Duration::from_secs(30), || async {
        let rules = get_json(&format!("{}/api/v1/rules", ruler.http_url())).await?;
        Ok((names(&rules) == vec!["renamed".to_owned()]).then_some(()))
    })
    .await?;
    let (exit, _) = ruler.stop(Duration::from_secs(30)).await?;
    assert!(exit.success());
    Ok(())
}
