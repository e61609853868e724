//! Building blocks of the sidecar's end-to-end tests: a real Prometheus 2.42 holding
//! backfilled data, scraping itself every second and carrying external labels; a
//! `strata-sidecar` beside it; `strata-tools store series` against the sidecar.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bins::{Service, StrataProcess};
use crate::prom::{self, DataSpec, EQUAL_BLOCK_DURATIONS, PrometheusServer};

/// The external labels every test Prometheus carries.
pub const EXTERNAL_LABELS: [(&str, &str); 2] = [("cluster", "e2e"), ("replica", "r0")];

/// Prometheus config: external labels, scraping itself every second.
pub fn prometheus_config() -> String {
    let mut yaml = String::from("global:\n  scrape_interval: 1s\n  external_labels:\n");
    for (name, value) in EXTERNAL_LABELS {
        yaml.push_str(&format!("    {name}: \"{value}\"\n"));
    }
    yaml.push_str(
        "scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: [\"127.0.0.1:$PORT\"]\n",
    );
    yaml
}

/// A Prometheus data directory backfilled with `spec` (blocks written by promtool).
pub struct BackfilledPrometheus {
    pub data_dir: PathBuf,
    pub blocks: Vec<PathBuf>,
    pub server: PrometheusServer,
}

/// Backfills `spec` into `data_dir` and starts Prometheus on it with local compaction off
/// (min = max block duration = 2h, as shipping requires). Blocking: call from
/// `spawn_blocking` in async tests.
pub fn start_backfilled_prometheus(
    data_dir: &Path,
    spec: &DataSpec,
) -> anyhow::Result<BackfilledPrometheus> {
    let blocks = prom::create_blocks(&prom::generate_openmetrics(spec), data_dir)?;
    let server =
        PrometheusServer::start_with(data_dir, &prometheus_config(), &EQUAL_BLOCK_DURATIONS)?;
    Ok(BackfilledPrometheus {
        data_dir: data_dir.to_path_buf(),
        blocks,
        server,
    })
}

/// Async wrapper of [`start_backfilled_prometheus`].
pub async fn start_backfilled_prometheus_async(
    data_dir: PathBuf,
    spec: DataSpec,
) -> anyhow::Result<BackfilledPrometheus> {
    tokio::task::spawn_blocking(move || start_backfilled_prometheus(&data_dir, &spec))
        .await
        .context("join prometheus start")?
}

/// Starts `strata-sidecar sidecar` for `prometheus_url` and `tsdb_path` plus `args`, with a
/// one-second heartbeat and shipper interval, and waits until it is ready.
pub async fn start_sidecar(
    prometheus_url: &str,
    tsdb_path: &Path,
    args: &[&str],
) -> anyhow::Result<StrataProcess> {
    start_sidecar_with_env(prometheus_url, tsdb_path, args, &[]).await
}

/// [`start_sidecar`] with environment variables `env` set for the sidecar.
pub async fn start_sidecar_with_env(
    prometheus_url: &str,
    tsdb_path: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<StrataProcess> {
    let mut all = vec![
        format!("--prometheus.url={prometheus_url}"),
        format!("--tsdb.path={}", tsdb_path.display()),
        "--prometheus.get_config_interval=1s".to_owned(),
        "--prometheus.get_config_timeout=1s".to_owned(),
        "--prometheus.ready_timeout=30s".to_owned(),
        "--shipper.sync-interval=1s".to_owned(),
    ];
    all.extend(args.iter().map(|arg| (*arg).to_owned()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    StrataProcess::start_with_env(Service::Sidecar, true, &refs, env).await
}

/// `strata-tools store series --endpoint <grpc> --match <selector> [--min-time --max-time]`.
pub fn store_series(
    sidecar: &StrataProcess,
    selector: &str,
    range: Option<(i64, i64)>,
) -> anyhow::Result<Output> {
    let endpoint = sidecar
        .grpc_address
        .context("the sidecar has a gRPC address")?
        .to_string();
    let mut command = Command::new(prom::strata_binary("strata-tools")?);
    command.args([
        "store",
        "series",
        "--endpoint",
        &endpoint,
        "--match",
        selector,
    ]);
    if let Some((min, max)) = range {
        command.arg(format!("--min-time={min}"));
        command.arg(format!("--max-time={max}"));
    }
    command.output().context("run strata-tools store series")
}

/// GET `url`; `(status, body)`.
pub async fn http_get(url: &str) -> anyhow::Result<(u16, String)> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("{what}: not reached within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of an unlabelled sample `name` in a /metrics text.
pub fn metric_value(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}
