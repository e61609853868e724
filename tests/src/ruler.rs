//! Building blocks of the ruler's end-to-end tests: a real Alertmanager (Debian's
//! `prometheus-alertmanager`) on loopback, a scrape target whose `strata_test_switch` value the
//! test flips, live Prometheus 2.42 servers (one per cluster, scraping themselves and the
//! switch every second) with sidecars, and `strata-ruler` started on them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bins::{Service, StrataProcess, free_port};
use crate::prom::PrometheusServer;

/// Debian's Alertmanager binary.
pub fn alertmanager_binary() -> anyhow::Result<PathBuf> {
    let path = PathBuf::from("/usr/bin/prometheus-alertmanager");
    if !path.is_file() {
        bail!(
            "{} not found: install Debian's prometheus-alertmanager (scripts/install-deps.sh)",
            path.display()
        );
    }
    Ok(path)
}

/// A real Alertmanager on 127.0.0.1 (clustering off), killed when dropped.
#[derive(Debug)]
pub struct Alertmanager {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// Groups alerts by `alertname` only, so replicas' copies of one alert land in one group.
const ALERTMANAGER_CONFIG: &str = "route:\n  receiver: 'null'\n  group_by: ['alertname']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: 'null'\n";

impl Alertmanager {
    /// Starts Alertmanager and waits for `/-/ready`.
    pub async fn start() -> anyhow::Result<Self> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let dir = tempfile::tempdir()?;
            std::fs::write(dir.path().join("alertmanager.yml"), ALERTMANAGER_CONFIG)?;
            let port = free_port()?;
            let log = std::fs::File::create(dir.path().join("alertmanager.log"))?;
            let child = Command::new(alertmanager_binary()?)
                .arg(format!(
                    "--config.file={}",
                    dir.path().join("alertmanager.yml").display()
                ))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("start alertmanager")?;
            let mut am = Alertmanager { child, port, dir };
            match am.wait_ready(Duration::from_secs(30)).await {
                Ok(()) => return Ok(am),
                Err(err) if attempt < 5 && am.log().contains("address already in use") => {
                    eprintln!("alertmanager lost port {port}, retrying: {err:#}");
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let client = reqwest::Client::new();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("alertmanager exited with {status}: {}", self.log());
            }
            if let Ok(response) = client
                .get(format!("{}/-/ready", self.url()))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("alertmanager not ready after {timeout:?}: {}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }

    async fn get_json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let text = reqwest::Client::new()
            .get(format!("{}{path}", self.url()))
            .timeout(Duration::from_secs(5))
            .send()
            .await?
            .text()
            .await?;
        serde_json::from_str(&text).with_context(|| format!("parse {path}: {text}"))
    }

    /// `GET /api/v2/alerts`: the alerts Alertmanager holds as active (not resolved).
    pub async fn alerts(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let value = self.get_json("/api/v2/alerts").await?;
        Ok(value.as_array().cloned().unwrap_or_default())
    }

    /// `GET /api/v2/alerts/groups`.
    pub async fn groups(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let value = self.get_json("/api/v2/alerts/groups").await?;
        Ok(value.as_array().cloned().unwrap_or_default())
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scrape target serving `strata_test_switch <value>` that the test sets.
#[derive(Debug)]
pub struct SwitchTarget {
    pub address: SocketAddr,
    value: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl SwitchTarget {
    pub async fn start(initial: f64) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let value = Arc::new(AtomicU64::new(initial.to_bits()));
        let served = Arc::clone(&value);
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let served = Arc::clone(&served);
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 4096];
                    let mut request = Vec::new();
                    while let Ok(n) = socket.read(&mut buffer).await {
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buffer[..n]);
                        if request.windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    let body = format!(
                        "# TYPE strata_test_switch gauge\nstrata_test_switch {}\n",
                        f64::from_bits(served.load(Ordering::SeqCst))
                    );
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Ok(Self {
            address,
            value,
            task,
        })
    }

    pub fn set(&self, value: f64) {
        self.value.store(value.to_bits(), Ordering::SeqCst);
    }
}

impl Drop for SwitchTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Prometheus config for one live cluster: external labels, scraping itself and the switch
/// every second, evaluating `rule_files` every second.
pub fn live_prometheus_config(
    cluster: &str,
    switch: SocketAddr,
    rule_file: Option<&Path>,
) -> String {
    let mut yaml = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels:\n    cluster: \"{cluster}\"\n    replica: \"r0\"\n"
    );
    if let Some(path) = rule_file {
        yaml.push_str(&format!("rule_files:\n  - {}\n", path.display()));
    }
    yaml.push_str(&format!(
        "scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: [\"127.0.0.1:$PORT\"]\n  - job_name: switch\n    static_configs:\n      - targets: [\"{switch}\"]\n"
    ));
    yaml
}

/// One live cluster: Prometheus and its sidecar.
pub struct LiveCluster {
    pub prometheus: PrometheusServer,
    pub sidecar: StrataProcess,
    pub _dir: tempfile::TempDir,
}

impl LiveCluster {
    pub async fn start(
        cluster: &str,
        switch: SocketAddr,
        rule_file: Option<PathBuf>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("prometheus");
        std::fs::create_dir_all(&data)?;
        let config = live_prometheus_config(cluster, switch, rule_file.as_deref());
        let data_for_start = data.clone();
        let prometheus = tokio::task::spawn_blocking(move || {
            PrometheusServer::start_with(
                &data_for_start,
                &config,
                &crate::prom::EQUAL_BLOCK_DURATIONS,
            )
        })
        .await??;
        let sidecar = crate::sidecar::start_sidecar(&prometheus.url(), &data, &[]).await?;
        Ok(Self {
            prometheus,
            sidecar,
            _dir: dir,
        })
    }

    pub fn grpc(&self) -> anyhow::Result<SocketAddr> {
        self.sidecar.grpc_address.context("sidecar gRPC address")
    }
}

/// Starts a querier over `endpoints` deduplicating on `replica` and `rule_replica`.
pub async fn start_querier(endpoints: &[SocketAddr]) -> anyhow::Result<StrataProcess> {
    let mut args: Vec<String> = endpoints
        .iter()
        .map(|address| format!("--endpoint={address}"))
        .collect();
    args.push("--query.replica-label=replica".to_owned());
    args.push("--query.replica-label=rule_replica".to_owned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    StrataProcess::start(Service::Querier, true, &refs).await
}

/// Starts `strata-ruler rule` with `args` and waits until it is ready.
pub async fn start_ruler(args: &[String]) -> anyhow::Result<StrataProcess> {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    StrataProcess::start(Service::Ruler, true, &refs).await
}

/// The value of the sample `name{labels...}` in a /metrics text, labels given as
/// `key="value"` fragments that must all appear on the line.
pub fn labelled_metric(metrics: &str, name: &str, fragments: &[&str]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        if !rest.starts_with('{') && !rest.starts_with(' ') {
            return None;
        }
        if !fragments.iter().all(|fragment| rest.contains(fragment)) {
            return None;
        }
        rest.rsplit(' ').next()?.parse().ok()
    })
}

/// GET a JSON document.
pub async fn get_json(url: &str) -> anyhow::Result<serde_json::Value> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let text = response.text().await?;
    serde_json::from_str(&text).with_context(|| format!("parse {url}: {text}"))
}
