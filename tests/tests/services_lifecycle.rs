//! End-to-end: each of the four service binaries starts (with and without Thanos's subcommand
//! word), serves `/-/healthy`, `/-/ready` and `/metrics` (counting the requests it served),
//! listens for gRPC where Thanos has a gRPC server, and exits 0 promptly on SIGTERM.

use std::time::Duration;

use strata_tests::bins::{Service, StrataProcess};

/// SIGTERM must end an idle service well inside this (the grace periods only apply to
/// in-flight requests).
const PROMPT_EXIT: Duration = Duration::from_secs(5);

async fn get(url: &str) -> anyhow::Result<(reqwest::StatusCode, String)> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await?;
    let status = response.status();
    Ok((status, response.text().await?))
}

async fn check_lifecycle(service: Service, with_subcommand: bool) -> anyhow::Result<()> {
    check_lifecycle_with(service, with_subcommand, &[]).await
}

async fn check_lifecycle_with(
    service: Service,
    with_subcommand: bool,
    args: &[&str],
) -> anyhow::Result<()> {
    let process = StrataProcess::start(service, with_subcommand, args).await?;
    let base = process.http_url();

    let (status, body) = get(&format!("{base}/-/healthy")).await?;
    assert_eq!(
        (status.as_u16(), body.as_str()),
        (200, "OK"),
        "{service:?} /-/healthy"
    );
    let (status, body) = get(&format!("{base}/-/ready")).await?;
    assert_eq!(
        (status.as_u16(), body.as_str()),
        (200, "OK"),
        "{service:?} /-/ready"
    );
    let (status, _) = get(&format!("{base}/no-such-page")).await?;
    assert_eq!(status.as_u16(), 404);

    let (status, metrics) = get(&format!("{base}/metrics")).await?;
    assert_eq!(status.as_u16(), 200);
    // /-/ready was polled until it answered, so its count is at least one; /-/healthy was
    // requested exactly once.
    assert!(
        metrics.contains(r#"http_requests_total{code="200",handler="healthy",method="get"} 1"#),
        "{service:?} metrics:\n{metrics}"
    );
    assert!(
        metrics.contains(r#"http_requests_total{code="200",handler="ready",method="get"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"http_requests_total{code="404",handler="not_found",method="get"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("http_request_duration_seconds_bucket{"),
        "{metrics}"
    );
    assert!(metrics.contains("thanos_build_info{"), "{metrics}");
    let component = match service {
        Service::Sidecar => "sidecar",
        Service::Querier => "query",
        Service::StoreGateway => "store",
        Service::Compactor => "compact",
        Service::Ruler => "rule",
    };
    assert!(
        metrics.contains(&format!(
            r#"thanos_status{{component="{component}",check="ready"}} 1"#
        )),
        "{metrics}"
    );

    check_metrics_with_promtool(&metrics)?;
    let openmetrics = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .header("accept", "application/openmetrics-text;version=1.0.0")
        .send()
        .await?
        .text()
        .await?;
    assert!(
        openmetrics.ends_with("# EOF\n"),
        "OpenMetrics when asked for:\n{openmetrics}"
    );

    match process.grpc_address {
        Some(address) => {
            tokio::net::TcpStream::connect(address).await?;
        }
        None => assert!(!service.has_grpc()),
    }

    let (exit, elapsed) = process.stop(Duration::from_secs(30)).await?;
    assert!(exit.success(), "{service:?} exited with {exit}");
    assert!(
        elapsed < PROMPT_EXIT,
        "{service:?} took {elapsed:?} to exit after SIGTERM"
    );
    Ok(())
}

/// `promtool check metrics` (Prometheus 2.42) accepts the text exposition and its lint finds
/// nothing (e.g. every counter has `_total` and help text).
fn check_metrics_with_promtool(metrics: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let mut child = Command::new(strata_tests::prom::promtool()?)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("promtool stdin"))?
        .write_all(metrics.as_bytes())?;
    let output = child.wait_with_output()?;
    assert!(
        output.status.success(),
        "promtool check metrics: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn sidecar_lifecycle() -> anyhow::Result<()> {
    // Like Thanos's, the sidecar is ready only once its Prometheus answers with external labels.
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().to_path_buf();
    let prometheus = tokio::task::spawn_blocking(move || {
        strata_tests::prom::PrometheusServer::start(
            &data_dir,
            &strata_tests::sidecar::prometheus_config(),
        )
    })
    .await??;
    let url = format!("--prometheus.url={}", prometheus.url());
    check_lifecycle_with(Service::Sidecar, true, &[&url]).await?;
    check_lifecycle_with(Service::Sidecar, false, &[&url]).await
}

#[tokio::test]
async fn querier_lifecycle() -> anyhow::Result<()> {
    check_lifecycle(Service::Querier, true).await?;
    check_lifecycle(Service::Querier, false).await
}

#[tokio::test]
async fn store_gateway_lifecycle() -> anyhow::Result<()> {
    check_lifecycle(Service::StoreGateway, true).await?;
    check_lifecycle(Service::StoreGateway, false).await
}

#[tokio::test]
async fn compactor_lifecycle() -> anyhow::Result<()> {
    check_lifecycle(Service::Compactor, true).await?;
    check_lifecycle(Service::Compactor, false).await
}

#[tokio::test]
async fn ruler_lifecycle() -> anyhow::Result<()> {
    check_lifecycle(Service::Ruler, true).await?;
    check_lifecycle(Service::Ruler, false).await
}

#[tokio::test]
async fn port_in_use_fails_startup_with_nonzero_exit() -> anyhow::Result<()> {
    let first = StrataProcess::start(Service::Querier, true, &[]).await?;
    let grpc_address = Some("127.0.0.1:0".parse()?);
    let mut second = StrataProcess::spawn_at(
        Service::Querier,
        true,
        first.http_address,
        grpc_address,
        &[],
    )?;
    // Wait for the exit itself: polling /-/ready on the shared address would find the first
    // querier's answer.
    let status = second.wait_exit(Duration::from_secs(10)).await?;
    assert!(!status.success(), "{status}");
    let logs = second.logs();
    assert!(logs.contains(&first.http_address.to_string()), "{logs}");
    let (exit, _) = first.stop(Duration::from_secs(30)).await?;
    assert!(exit.success());
    Ok(())
}
