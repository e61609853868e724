//! End-to-end: the querier's web UI in headless Chromium, served under `--web.route-prefix`,
//! over a store gateway holding promtool-backfilled blocks from November 2023. The test types
//! into the expression box (autocomplete offers metric names and label values from the API),
//! runs a range query at an end time inside the data's range, checks one path and one legend
//! entry per series, hovers for the tooltip, toggles the legend, reopens the shared URL and a
//! Prometheus/Thanos-style link, and visits the stores, flags and status pages. Screenshots go
//! to `<target>/<profile>/test-output/querier_ui/` (printed at the end).
//!
//! The prefix flags are also checked over plain HTTP: `--web.route-prefix` moves the UI and
//! the API, `--web.external-prefix` and `--web.prefix-header` set the links and redirects, and
//! an unusable prefix fails start-up naming its flag.
//!
//! Skipped, with the reason printed, where Chromium cannot start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use strata_tests::bins::{Service, StrataProcess, run_to_completion, target_profile_dir};
use strata_tests::browser::Browser;
use strata_tests::prom::{DataSpec, create_blocks, generate_openmetrics};
use strata_tests::store_gateway::{filesystem_objstore_yaml, fill_filesystem_bucket};

const PREFIX: &str = "/strata";
/// One series per `job` of the generated counters: api, db, web"quoted", ünïcode.
const EXPR: &str = "sum by (job) (rate(strata_test_requests_total[5m]))";
const END: &str = "2023-11-15 02:00:00";
const WAIT: Duration = Duration::from_secs(20);

/// 2023-11-14 23:30 to 2023-11-15 02:30 UTC, scraped every minute.
fn spec() -> DataSpec {
    DataSpec {
        series: 200,
        start_ms: 1_700_004_600_000,
        duration_ms: 3 * 3600 * 1000,
        interval_ms: 60_000,
        seed: 14,
    }
}

fn output_dir() -> anyhow::Result<PathBuf> {
    let dir = target_profile_dir()?.join("test-output").join("querier_ui");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A store gateway over the backfilled blocks (external labels cluster=eu1, replica=a).
async fn store_gateway(dir: &Path) -> anyhow::Result<StrataProcess> {
    let blocks = create_blocks(&generate_openmetrics(&spec()), &dir.join("prom"))?;
    let bucket = dir.join("bucket");
    fill_filesystem_bucket(&blocks, &bucket, &[("cluster", "eu1"), ("replica", "a")])?;
    strata_tests::store_gateway::start(
        &filesystem_objstore_yaml(&bucket),
        &dir.join("store-data"),
        &[],
    )
    .await
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// The metric label sets of the API's answer to the range query the page runs.
async fn api_range_series(base: &str) -> anyhow::Result<Vec<String>> {
    let end = 1_700_013_600; // END
    let body: Value = http_client()?
        .post(format!("{base}{PREFIX}/api/v1/query_range"))
        .form(&[
            ("query", EXPR),
            ("start", &(end - 7200).to_string()),
            ("end", &end.to_string()),
            ("step", "28"),
        ])
        .send()
        .await?
        .json()
        .await?;
    let result = body["data"]["result"]
        .as_array()
        .with_context(|| format!("no matrix in {body}"))?;
    Ok(result
        .iter()
        .map(|series| series["metric"]["job"].as_str().unwrap_or("").to_owned())
        .collect())
}

fn count(browser: &mut Browser, selector: &str) -> anyhow::Result<u64> {
    browser
        .eval(&format!(
            "document.querySelectorAll({}).length",
            json!(selector)
        ))?
        .as_u64()
        .context("a count")
}

fn text(browser: &mut Browser, expression: &str) -> anyhow::Result<String> {
    Ok(browser
        .eval(expression)?
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default())
}

/// Selects the content of the input matching `selector` and types `value` over it.
fn fill(browser: &mut Browser, selector: &str, value: &str) -> anyhow::Result<()> {
    browser.eval(&format!(
        "(() => {{ const e = document.querySelector({}); e.focus(); e.select(); }})()",
        json!(selector)
    ))?;
    browser.type_text(value)
}

/// Waits until the completion list shows entries of `kind` (metric, label, value), and
/// returns its entries.
fn completions(browser: &mut Browser, kind: &str) -> anyhow::Result<Vec<String>> {
    browser.wait_for(
        &format!("document.querySelector('ul.autocomplete:not([hidden]) li[data-kind={kind}]')"),
        WAIT,
    )?;
    let items = browser.eval(
        "[...document.querySelectorAll('ul.autocomplete li .text')].map(e => e.textContent)",
    )?;
    Ok(items
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_page_autocomplete_shared_links_and_stores_in_a_browser() -> anyhow::Result<()> {
    let Some(mut browser) = Browser::launch(1280, 900)? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let gateway = store_gateway(dir.path()).await?;
    let gateway_grpc = gateway
        .grpc_address
        .context("store gateway gRPC address")?
        .to_string();
    // A second endpoint that never answers: the stores page shows it down with its error.
    let dead = "127.0.0.1:1";
    let querier = StrataProcess::start(
        Service::Querier,
        true,
        &[
            &format!("--endpoint={gateway_grpc}"),
            &format!("--endpoint={dead}"),
            "--query.replica-label=replica",
            &format!("--web.route-prefix={PREFIX}"),
        ],
    )
    .await?;
    let base = querier.http_url();
    let out = output_dir()?;

    let want = api_range_series(&base).await?;
    ensure!(
        want.len() == 4,
        "the API answers {} series for {EXPR}: {want:?}",
        want.len()
    );

    // An empty graph page under the prefix.
    browser.navigate(&format!("{base}{PREFIX}/graph"))?;
    browser.wait_for("document.querySelector('textarea.expr')", WAIT)?;
    browser.screenshot(&out.join("01-empty.png"))?;

    // Autocomplete: a metric name after typing its prefix, then label values of that metric.
    browser.click_selector("textarea.expr")?;
    browser.type_text("strata_test_lat")?;
    let offered = completions(&mut browser, "metric")?;
    ensure!(
        offered
            .iter()
            .any(|name| name == "strata_test_latency_seconds_bucket"),
        "metric names offered for strata_test_lat: {offered:?}"
    );
    ensure!(
        offered
            .iter()
            .all(|name| name.starts_with("strata_test_lat")),
        "{offered:?}"
    );
    browser.screenshot(&out.join("02-autocomplete-metric.png"))?;
    // Walk down to the `_count` entry with the arrow keys and accept it with Tab.
    let position = offered
        .iter()
        .position(|name| name == "strata_test_latency_seconds_count")
        .context("_count offered")?;
    for _ in 0..position {
        browser.press("ArrowDown")?;
    }
    browser.press("Tab")?;
    let typed = text(
        &mut browser,
        "document.querySelector('textarea.expr').value",
    )?;
    ensure!(typed == "strata_test_latency_seconds_count", "{typed:?}");
    browser.type_text("{")?;
    let labels = completions(&mut browser, "label")?;
    ensure!(
        labels == ["cluster", "handler", "instance"],
        "label names offered: {labels:?}"
    );
    browser.type_text("handler=\"")?;
    let values = completions(&mut browser, "value")?;
    ensure!(
        values == ["/api/v0", "/api/v1", "/api/v2"],
        "handler values offered: {values:?}"
    );
    browser.screenshot(&out.join("03-autocomplete-label-values.png"))?;
    browser.press("Escape")?;

    // A malformed query shows the API's error.
    fill(&mut browser, "textarea.expr", "sum(rate(")?;
    browser.press("Escape")?;
    browser.press("Enter")?;
    browser.wait_for(
        "document.querySelector('.messages .alert.error')?.textContent.includes('bad_data')",
        WAIT,
    )?;

    // A range query at an end time inside the data: one path and one legend entry per series.
    fill(&mut browser, "textarea.expr", EXPR)?;
    browser.click_selector(".tab[data-tab=graph]")?;
    fill(&mut browser, ".graph-pane .range-input", "2h")?;
    browser.press("Enter")?;
    fill(&mut browser, ".graph-pane .time-input", END)?;
    browser.press("Enter")?;
    browser.wait_for(
        &format!(
            "document.querySelectorAll('.graph-pane svg path.series').length === {} && document.querySelector('.stats').textContent.includes('Result series')",
            want.len()
        ),
        WAIT,
    )?;
    let drawn = browser.eval(
        "[...document.querySelectorAll('.graph-pane svg path.series')].map(p => [p.dataset.series, p.getAttribute('d')])",
    )?;
    let drawn = drawn.as_array().context("paths")?.clone();
    for path in &drawn {
        let d = path[1].as_str().unwrap_or("");
        ensure!(
            d.matches('L').count() > 100,
            "a path with few points: {path}"
        );
    }
    let mut drawn_jobs: Vec<String> = drawn
        .iter()
        .filter_map(|path| {
            let name = path[0].as_str()?;
            let job = name.split_once("job=")?.1;
            serde_json::from_str::<String>(job.trim_end_matches('}')).ok()
        })
        .collect();
    drawn_jobs.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    ensure!(
        drawn_jobs == want_sorted,
        "{drawn_jobs:?} != {want_sorted:?}"
    );
    ensure!(count(&mut browser, ".legend-item")? == want.len() as u64);
    let stats = text(&mut browser, "document.querySelector('.stats').textContent")?;
    ensure!(
        stats.contains("Result series: 4") && stats.contains("Samples touched"),
        "{stats}"
    );

    // Hover: a tooltip with the nearest series' value and labels.
    let (x, y) = browser.center_of(".graph-pane svg .overlay")?;
    browser.mouse_move(x, y)?;
    browser.wait_for(
        "document.querySelector('.graph-tooltip:not([hidden]) .tooltip-labels')",
        WAIT,
    )?;
    let tooltip = text(
        &mut browser,
        "document.querySelector('.graph-tooltip').textContent",
    )?;
    ensure!(
        tooltip.contains("job: ") && tooltip.contains("2023-11-15 0"),
        "{tooltip}"
    );
    browser.screenshot(&out.join("04-graph-hover.png"))?;

    // Legend: a click shows only that series, a second click all of them again.
    browser.click_selector(".legend-item")?;
    browser.wait_for(
        "document.querySelectorAll('.graph-pane svg path.series').length === 1",
        WAIT,
    )?;
    browser.screenshot(&out.join("05-legend-isolated.png"))?;
    browser.click_selector(".legend-item")?;
    browser.wait_for(
        "document.querySelectorAll('.graph-pane svg path.series').length === 4",
        WAIT,
    )?;

    // The URL holds the view in Prometheus's format; opening it reproduces the same paths.
    let url = text(&mut browser, "location.href")?;
    for part in [
        "g0.tab=0",
        "g0.range_input=2h",
        "g0.end_input=2023-11-15%2002%3A00%3A00",
        "g0.moment_input=2023-11-15%2002%3A00%3A00",
        "g0.deduplicate=1",
        "g0.max_source_resolution=0s",
    ] {
        ensure!(url.contains(part), "{part} missing from {url}");
    }
    ensure!(url.starts_with(&format!("{base}{PREFIX}/graph?")), "{url}");
    browser.navigate("about:blank")?;
    browser.navigate(&url)?;
    browser.wait_for(
        "document.querySelectorAll('.graph-pane svg path.series').length === 4",
        WAIT,
    )?;
    let reopened = browser.eval(
        "[...document.querySelectorAll('.graph-pane svg path.series')].map(p => [p.dataset.series, p.getAttribute('d')])",
    )?;
    ensure!(
        reopened.as_array() == Some(&drawn),
        "the shared URL drew different paths"
    );
    ensure!(
        text(
            &mut browser,
            "document.querySelector('textarea.expr').value"
        )? == EXPR
    );
    ensure!(
        text(
            &mut browser,
            "document.querySelector('.graph-pane .time-input').value"
        )? == END
    );
    browser.screenshot(&out.join("06-shared-url.png"))?;

    // A link as Prometheus and Thanos write it: a table panel and a stacked graph panel.
    let instant = "count by (job) (strata_test_requests_total)";
    let link = format!(
        "{base}{PREFIX}/graph?g0.expr={}&g0.tab=1&g0.moment_input=2023-11-15%2001:00:00&g1.expr={}&g1.tab=0&g1.stacked=1&g1.range_input=1h&g1.end_input=2023-11-15%2001:30&g1.step_input=120&g1.deduplicate=0&g1.partial_response=1&g1.max_source_resolution=auto",
        url_encode(instant),
        url_encode(EXPR),
    );
    browser.navigate(&link)?;
    browser.wait_for(
        "document.querySelectorAll('.panel').length === 2 && document.querySelectorAll('.panel')[0].querySelectorAll('table.data tr').length === 5 && document.querySelectorAll('.panel')[1].querySelectorAll('svg path.series.stacked').length === 4",
        WAIT,
    )?;
    let second = browser.eval(
        "(() => { const p = document.querySelectorAll('.panel')[1]; return [p.querySelector('[data-option=dedup]').checked, p.querySelector('.max-source-resolution').value, p.querySelector('.resolution-input').value, p.querySelector('.stats').textContent]; })()",
    )?;
    ensure!(
        second[0] == json!(false) && second[1] == json!("auto") && second[2] == json!("120"),
        "{second}"
    );
    ensure!(
        second[3]
            .as_str()
            .is_some_and(|stats| stats.contains("Resolution: 120s")),
        "{second}"
    );
    browser.screenshot(&out.join("07-prometheus-link.png"))?;

    // The stores page lists each endpoint with its health, label sets and time range.
    browser.navigate(&format!("{base}{PREFIX}/stores"))?;
    browser.wait_for("document.querySelectorAll('tr.store').length === 2", WAIT)?;
    let rows = browser.eval(
        "[...document.querySelectorAll('tr.store')].map(r => [r.dataset.endpoint, r.querySelector('.badge').textContent, r.querySelector('.label-sets').textContent, r.querySelectorAll('td.time')[0].textContent, r.querySelector('.last-error').textContent])",
    )?;
    let rows = rows.as_array().context("store rows")?;
    let row = |endpoint: &str| {
        rows.iter()
            .find(|row| row[0] == json!(endpoint))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let gateway_row = row(&gateway_grpc);
    ensure!(gateway_row[1] == json!("UP"), "{gateway_row}");
    ensure!(
        gateway_row[2]
            .as_str()
            .is_some_and(|labels| labels.contains(r#"cluster="eu1""#)),
        "{gateway_row}"
    );
    ensure!(
        gateway_row[3]
            .as_str()
            .is_some_and(|min| min.starts_with("2023-11-14 23:30")),
        "{gateway_row}"
    );
    let dead_row = row(dead);
    ensure!(
        dead_row[1] == json!("DOWN") && dead_row[4].as_str().is_some_and(|e| !e.is_empty()),
        "{dead_row}"
    );
    browser.screenshot(&out.join("08-stores.png"))?;

    // Flags and status.
    browser.navigate(&format!("{base}{PREFIX}/flags"))?;
    browser.wait_for("document.querySelector('table.flags')", WAIT)?;
    let flag = text(
        &mut browser,
        "[...document.querySelectorAll('table.flags tr')].find(r => r.textContent.startsWith('--web.route-prefix'))?.textContent",
    )?;
    ensure!(flag == format!("--web.route-prefix{PREFIX}"), "{flag:?}");
    browser.screenshot(&out.join("09-flags.png"))?;
    browser.navigate(&format!("{base}{PREFIX}/status"))?;
    browser.wait_for("document.querySelector('table.status')", WAIT)?;
    let status = text(&mut browser, "document.querySelector('main').textContent")?;
    ensure!(
        status.contains(&format!("Version{}", env!("CARGO_PKG_VERSION"))),
        "{status}"
    );
    browser.screenshot(&out.join("10-status.png"))?;

    ensure!(
        browser.page_errors.is_empty(),
        "page errors: {:?}",
        browser.page_errors
    );
    println!("screenshots in {}", out.display());
    Ok(())
}

fn url_encode(text: &str) -> String {
    strata_tests::prom::url_encode(text)
}

async fn get(
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, String, String)> {
    let mut request = http_client()?.get(format!("{base}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Ok((status, location, response.text().await?))
}

#[tokio::test]
async fn web_prefix_flags_move_routes_and_links() -> anyhow::Result<()> {
    // --web.route-prefix: the UI and the API move under it; metrics and probes stay.
    let querier =
        StrataProcess::start(Service::Querier, true, &["--web.route-prefix=/strata/"]).await?;
    let base = querier.http_url();
    assert_eq!(get(&base, "/api/v1/query?query=1", &[]).await?.0, 404);
    let (status, _, body) = get(&base, "/strata/api/v1/query?query=1", &[]).await?;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""resultType":"scalar""#), "{body}");
    assert_eq!(get(&base, "/graph", &[]).await?.0, 404);
    let (status, _, body) = get(&base, "/strata/graph", &[]).await?;
    assert_eq!(status, 200);
    assert!(body.contains(r#"<base href="/strata/">"#), "{body}");
    assert_eq!(get(&base, "/", &[]).await?.1, "/strata/");
    assert_eq!(get(&base, "/strata", &[]).await?.1, "/strata/");
    assert_eq!(get(&base, "/strata/", &[]).await?.1, "/strata/graph");
    assert_eq!(get(&base, "/metrics", &[]).await?.0, 200);
    assert_eq!(get(&base, "/-/ready", &[]).await?.0, 200);

    // --web.external-prefix alone: the route prefix follows it (Thanos's default).
    let querier =
        StrataProcess::start(Service::Querier, true, &["--web.external-prefix=/ext"]).await?;
    let base = querier.http_url();
    let (status, _, body) = get(&base, "/ext/graph", &[]).await?;
    assert_eq!(status, 200);
    assert!(body.contains(r#"<base href="/ext/">"#), "{body}");
    assert_eq!(get(&base, "/ext/api/v1/query?query=1", &[]).await?.0, 200);

    // Behind a proxy that strips /ext: routes at the root, links and redirects on /ext.
    let querier = StrataProcess::start(
        Service::Querier,
        true,
        &["--web.external-prefix=/ext", "--web.route-prefix=/"],
    )
    .await?;
    let base = querier.http_url();
    let (status, _, body) = get(&base, "/graph", &[]).await?;
    assert_eq!(status, 200);
    assert!(body.contains(r#"<base href="/ext/">"#), "{body}");
    assert_eq!(get(&base, "/", &[]).await?.1, "/ext/graph");
    assert_eq!(get(&base, "/api/v1/query?query=1", &[]).await?.0, 200);

    // --web.prefix-header: the prefix comes with each request.
    let querier = StrataProcess::start(
        Service::Querier,
        true,
        &["--web.prefix-header=X-Forwarded-Prefix"],
    )
    .await?;
    let base = querier.http_url();
    let forwarded = [("X-Forwarded-Prefix", "/team-a/strata")];
    let (_, _, body) = get(&base, "/graph", &forwarded).await?;
    assert!(body.contains(r#"<base href="/team-a/strata/">"#), "{body}");
    assert_eq!(get(&base, "/", &forwarded).await?.1, "/team-a/strata/graph");
    let (_, _, body) = get(&base, "/graph", &[]).await?;
    assert!(body.contains(r#"<base href="/">"#), "{body}");

    // A prefix that cannot be used fails start-up naming the flag.
    for (flag, name) in [
        ("--web.route-prefix=/a b", "--web.route-prefix"),
        ("--web.external-prefix=/x\"y", "--web.external-prefix"),
        ("--web.prefix-header=not a header", "--web.prefix-header"),
    ] {
        let (status, _, stderr) = run_to_completion(
            "strata-querier",
            &[
                "query",
                "--http-address=127.0.0.1:0",
                "--grpc-address=127.0.0.1:0",
                flag,
            ],
        )?;
        assert!(!status.success(), "{flag} started");
        assert!(stderr.contains(name), "{flag}: {stderr}");
    }
    Ok(())
}
