//! End-to-end: `strata-sidecar` beside a real Prometheus 2.42 (backfilled with promtool and
//! scraping itself). Series through the sidecar print exactly the samples `promtool tsdb dump`
//! prints for the same matchers, plus the external labels; matchers on external labels are
//! settled by the sidecar; Prometheus going away turns the sidecar not ready within one
//! heartbeat and Series Unavailable, and it recovers when Prometheus returns.

use std::time::Duration;

use strata_tests::prom::{DataSpec, DumpOptions, promtool_dump};
use strata_tests::sidecar::{
    EXTERNAL_LABELS, http_get, metric_value, start_backfilled_prometheus_async, start_sidecar,
    store_series, wait_for,
};

/// `promtool tsdb dump` lines with the external labels added in label order (all backfilled
/// metric names sort before `cluster`, and `i`/`le`/... sit between it and `replica`).
fn with_external_labels(promtool_line: &str) -> String {
    let (labels, sample) = promtool_line
        .split_once("} ")
        .expect("dump line has labels and a sample");
    let labels = labels.trim_start_matches('{');
    let mut pairs: Vec<(String, String)> = labels
        .split(", ")
        .map(|pair| {
            let (name, value) = pair.split_once('=').expect("name=value");
            (name.to_owned(), value.to_owned())
        })
        .collect();
    for (name, value) in EXTERNAL_LABELS {
        pairs.retain(|(existing, _)| existing != name);
        pairs.push((name.to_owned(), format!("\"{value}\"")));
    }
    pairs.sort();
    let joined: Vec<String> = pairs
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    format!("{{{}}} {sample}", joined.join(", "))
}

#[tokio::test(flavor = "multi_thread")]
async fn sidecar_series_equal_promtool_dump_plus_external_labels() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let spec = DataSpec {
        series: 60,
        ..DataSpec::default()
    };
    let prometheus =
        start_backfilled_prometheus_async(dir.path().join("prom"), spec.clone()).await?;
    let sidecar = start_sidecar(&prometheus.server.url(), &prometheus.data_dir, &[]).await?;

    let selector = r#"{__name__=~"strata_test_.+"}"#;
    // A window crossing the block boundary and cutting chunks on both ends.
    let range = (
        spec.start_ms + 10 * 60 * 1000 + 7,
        spec.start_ms + 70 * 60 * 1000 - 7,
    );
    for (range, label) in [(None, "whole"), (Some(range), "window")] {
        let options = DumpOptions {
            selector: Some(selector.to_owned()),
            min_time: range.map(|r| r.0),
            max_time: range.map(|r| r.1),
        };
        let data_dir = prometheus.data_dir.clone();
        let expected =
            tokio::task::spawn_blocking(move || promtool_dump(&data_dir, &options)).await??;
        assert!(
            expected.lines().count() > 1000,
            "{label}: promtool dump has data"
        );
        let expected: Vec<String> = expected.lines().map(with_external_labels).collect();
        let output = store_series(&sidecar, selector, range)?;
        assert!(
            output.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let actual = String::from_utf8(output.stdout)?;
        let actual: Vec<&str> = actual.lines().collect();
        assert_eq!(actual.len(), expected.len(), "{label}: sample count");
        for (index, (got, want)) in actual.iter().zip(&expected).enumerate() {
            assert_eq!(got, want, "{label}: line {index}");
        }
    }

    // Matchers on external labels: a match is dropped, a mismatch selects nothing.
    let matching = store_series(
        &sidecar,
        r#"{cluster="e2e", replica=~"r.", __name__="strata_test_requests_total"}"#,
        None,
    )?;
    assert!(matching.status.success());
    let plain = store_series(&sidecar, r#"{__name__="strata_test_requests_total"}"#, None)?;
    assert!(!plain.stdout.is_empty());
    assert_eq!(matching.stdout, plain.stdout);
    let other = store_series(
        &sidecar,
        r#"{cluster="elsewhere", __name__="strata_test_requests_total"}"#,
        None,
    )?;
    assert!(other.status.success());
    assert!(other.stdout.is_empty());

    // Live head data: Prometheus's own scrape, with the external labels.
    let up = wait_for("self-scrape visible", Duration::from_secs(20), || async {
        let output = store_series(&sidecar, r#"{__name__="up", job="prometheus"}"#, None)?;
        let text = String::from_utf8(output.stdout)?;
        Ok(text.lines().next().map(str::to_owned))
    })
    .await?;
    assert!(
        up.starts_with(r#"{__name__="up", cluster="e2e", instance="#)
            && up.contains(r#"job="prometheus", replica="r0"} 1 "#),
        "{up}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sidecar_follows_prometheus_down_and_back() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let spec = DataSpec {
        series: 10,
        ..DataSpec::default()
    };
    let prometheus = start_backfilled_prometheus_async(dir.path().join("prom"), spec).await?;
    let sidecar = start_sidecar(&prometheus.server.url(), &prometheus.data_dir, &[]).await?;
    let mut server = prometheus.server;
    let ready_url = format!("{}/-/ready", sidecar.http_url());
    let metrics_url = format!("{}/metrics", sidecar.http_url());
    let selector = r#"{__name__="strata_test_requests_total"}"#;
    assert!(!store_series(&sidecar, selector, None)?.stdout.is_empty());
    let (_, metrics) = http_get(&metrics_url).await?;
    assert_eq!(
        metric_value(&metrics, "thanos_sidecar_prometheus_up"),
        Some(1.0)
    );

    server = tokio::task::spawn_blocking(move || server.stop().map(|()| server)).await??;
    let stopped_at = std::time::Instant::now();
    // One heartbeat is 1s (plus its 1s timeout at worst).
    wait_for("sidecar not ready", Duration::from_secs(3), || async {
        Ok((http_get(&ready_url).await?.0 == 503).then_some(()))
    })
    .await?;
    let not_ready_after = stopped_at.elapsed();
    let (_, metrics) = http_get(&metrics_url).await?;
    assert_eq!(
        metric_value(&metrics, "thanos_sidecar_prometheus_up"),
        Some(0.0)
    );
    let failed = store_series(&sidecar, selector, None)?;
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("Unavailable") || stderr.contains("unavailable"),
        "{stderr}"
    );
    eprintln!("sidecar not ready {not_ready_after:?} after prometheus was killed");

    let server = tokio::task::spawn_blocking(move || server.restart().map(|()| server)).await??;
    wait_for("sidecar ready again", Duration::from_secs(5), || async {
        Ok((http_get(&ready_url).await?.0 == 200).then_some(()))
    })
    .await?;
    assert!(!store_series(&sidecar, selector, None)?.stdout.is_empty());
    let (_, metrics) = http_get(&metrics_url).await?;
    assert_eq!(
        metric_value(&metrics, "thanos_sidecar_prometheus_up"),
        Some(1.0)
    );
    drop(server);
    Ok(())
}
