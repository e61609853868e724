//! End-to-end on Docker, as users run Strata: `tests/e2e/compose.yml` brings up two cluster
//! networks (cluster 1 an HA pair of Prometheus 2.42 + sidecar, cluster 2 one pair), the moto S3
//! server as a container, two store gateways sharded by `--selector.relabel-config` hashmod, the
//! compactor, and two queriers behind one address (a small load balancer in front of a Docker
//! network alias). Every Prometheus holds a few hours of backfilled blocks that its sidecar ships;
//! the sidecars serve only the last hour, so older data comes from the store gateways alone.
//!
//! Scenarios, in order, each asserted:
//! 1. the global view equals the per-cluster truth: range queries over the shipped history and an
//!    instant query over live scrapes, through the querier address, equal what each cluster's own
//!    Prometheus answers (replicas deduplicated);
//! 2. a network partition of cluster 2 (`docker network disconnect`) answers cluster 1 in full with
//!    a partial-response warning (an error with `partial_response=false`), keeps cluster 2's
//!    history, and healing it restores full answers, the partition's minutes included;
//! 3. a store gateway killed with SIGKILL: every answer is complete, or warns, or fails; never a
//!    silent hole; its restart restores full answers;
//! 4. a rolling restart of both queriers under steady query load fails no query and changes no
//!    answer.
//!
//! Skipped, with the reason printed, where Docker or compose is not available. The Strata images
//! are built from this build's binaries (`docker/build-images.sh --bin-dir`); with
//! `STRATA_E2E_IMAGES=release` the test runs the images of `make images` (`strata/<c>:latest`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use serde_json::Value;
use strata_tests::compose::{Images, Project, docker_compose, workspace_root};
use strata_tests::prom::{self, DataSpec, url_encode};
use strata_tests::s3::{S3Server, moto_launcher, moto_python};

const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;
/// Strata components the topology runs.
const COMPONENTS: [&str; 4] = ["sidecar", "querier", "store-gateway", "compactor"];
/// Every Prometheus of the topology, with the cluster it belongs to.
const PROMETHEUSES: [(&str, &str); 3] = [
    ("prom-1a", "cluster-1"),
    ("prom-1b", "cluster-1"),
    ("prom-2a", "cluster-2"),
];
/// Range queries over the shipped history; `{by}` is `cluster, ` through the querier and empty
/// against one cluster's Prometheus.
const HISTORY_QUERIES: [&str; 4] = [
    "sum by ({by}job) (rate(strata_test_requests_total[10m]))",
    "count by ({by}sensor) (strata_test_temperature)",
    "histogram_quantile(0.9, sum by ({by}le) (rate(strata_test_latency_seconds_bucket[10m])))",
    "max by ({by}code) (max_over_time(strata_test_requests_total[30m]))",
];
/// An instant query over live scrapes.
const LIVE_QUERY: &str = "count by ({by}job) (up)";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or_default()
}

fn global(template: &str) -> String {
    template.replace("{by}", "cluster, ")
}

fn local(template: &str) -> String {
    template.replace("{by}", "")
}

/// The history: where the backfilled data lies and the query window inside it.
#[derive(Debug, Clone, Copy)]
struct History {
    start_ms: i64,
    end_ms: i64,
}

impl History {
    /// Five hours ending 90 minutes ago: before the sidecars' `--min-time=-1h`.
    fn new(now_ms: i64) -> Self {
        let start_ms = (now_ms - 6 * HOUR_MS - 30 * MINUTE_MS) / MINUTE_MS * MINUTE_MS;
        History {
            start_ms,
            end_ms: start_ms + 5 * HOUR_MS,
        }
    }

    fn spec(&self, seed: u64) -> DataSpec {
        DataSpec {
            series: 200,
            start_ms: self.start_ms,
            duration_ms: self.end_ms - self.start_ms,
            interval_ms: 30_000,
            seed,
        }
    }

    /// `start`, `end` and `step` of the range queries (seconds): inside the data, 5m steps.
    fn range(&self) -> (i64, i64, i64) {
        (
            (self.start_ms + 30 * MINUTE_MS) / 1000,
            (self.end_ms - 30 * MINUTE_MS) / 1000,
            300,
        )
    }
}

/// Series of one answer keyed by their labels, each with its `(time, value)` points.
type SeriesSet = BTreeMap<String, Vec<(String, String)>>;
/// The truth per cluster.
type Truth = BTreeMap<&'static str, SeriesSet>;

/// One answer of the Prometheus HTTP API.
#[derive(Debug, Clone)]
struct Answer {
    http_status: u16,
    body: Value,
}

impl Answer {
    fn is_success(&self) -> bool {
        self.http_status == 200 && self.body["status"] == "success"
    }

    fn warnings(&self) -> Vec<String> {
        self.body["warnings"]
            .as_array()
            .map(|warnings| {
                warnings
                    .iter()
                    .map(|warning| warning.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Series keyed by their labels (minus `drop_label`), each with its `(time, value)` points.
    fn series(&self, drop_label: Option<&str>) -> SeriesSet {
        let mut out = BTreeMap::new();
        for series in self.body["data"]["result"].as_array().into_iter().flatten() {
            let mut labels: Vec<(String, String)> = series["metric"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(name, _)| Some(name.as_str()) != drop_label)
                .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_owned()))
                .collect();
            labels.sort();
            let key = labels
                .iter()
                .map(|(name, value)| format!("{name}={value:?}"))
                .collect::<Vec<_>>()
                .join(",");
            let points = match series.get("values") {
                Some(values) => values.as_array().cloned().unwrap_or_default(),
                None => vec![series["value"].clone()],
            };
            let points = points
                .iter()
                .map(|point| {
                    (
                        point[0].to_string(),
                        point[1].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect();
            out.insert(key, points);
        }
        out
    }

    /// The series of `cluster` (with the `cluster` label removed).
    fn cluster(&self, cluster: &str) -> SeriesSet {
        let mut filtered = Answer {
            http_status: self.http_status,
            body: self.body.clone(),
        };
        if let Some(result) = filtered.body["data"]["result"].as_array_mut() {
            result.retain(|series| series["metric"]["cluster"] == cluster);
        }
        filtered.series(Some("cluster"))
    }
}

/// Where two answers' series differ (`None` when equal within 1e-9 relative).
fn difference(expected: &SeriesSet, actual: &SeriesSet) -> Option<String> {
    if expected.keys().ne(actual.keys()) {
        return Some(format!(
            "series differ: expected {:?}, got {:?}",
            expected.keys().collect::<Vec<_>>(),
            actual.keys().collect::<Vec<_>>()
        ));
    }
    for (key, points) in expected {
        let other = &actual[key];
        if points.len() != other.len() {
            return Some(format!(
                "{key}: {} points expected, {} got",
                points.len(),
                other.len()
            ));
        }
        for ((time, value), (other_time, other_value)) in points.iter().zip(other) {
            let equal = match (value.parse::<f64>(), other_value.parse::<f64>()) {
                (Ok(a), Ok(b)) => {
                    (a.is_nan() && b.is_nan())
                        || a == b
                        || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
                }
                _ => value == other_value,
            };
            if time != other_time || !equal {
                return Some(format!(
                    "{key}: ({time}, {value}) expected, ({other_time}, {other_value}) got"
                ));
            }
        }
    }
    None
}

/// A Prometheus HTTP API client that opens a new connection per request, as a load balancer
/// sees independent clients.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
}

impl Api {
    fn new() -> anyhow::Result<Self> {
        Ok(Api {
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    async fn get(&self, base: &str, path_and_query: &str) -> anyhow::Result<Answer> {
        let response = self
            .client
            .get(format!("{base}{path_and_query}"))
            .send()
            .await
            .with_context(|| format!("GET {base}{path_and_query}"))?;
        let http_status = response.status().as_u16();
        let text = response.text().await.context("read answer")?;
        let body = serde_json::from_str(&text)
            .with_context(|| format!("answer of {path_and_query} is not JSON: {text}"))?;
        Ok(Answer { http_status, body })
    }

    async fn range(
        &self,
        base: &str,
        query: &str,
        (start, end, step): (i64, i64, i64),
        extra: &str,
    ) -> anyhow::Result<Answer> {
        self.get(
            base,
            &format!(
                "/api/v1/query_range?query={}&start={start}&end={end}&step={step}{extra}",
                url_encode(query)
            ),
        )
        .await
    }

    async fn instant(
        &self,
        base: &str,
        query: &str,
        time_s: f64,
        extra: &str,
    ) -> anyhow::Result<Answer> {
        self.get(
            base,
            &format!(
                "/api/v1/query?query={}&time={time_s:.3}{extra}",
                url_encode(query)
            ),
        )
        .await
    }
}

/// The running topology: the compose project and its published addresses.
struct Topology {
    project: Project,
    /// The querier address (the load balancer in front of both queriers).
    querier: String,
    /// Prometheus per service name.
    prometheus: BTreeMap<&'static str, String>,
    history: History,
    api: Api,
}

impl Topology {
    async fn http(&self, service: &str, port: u16) -> anyhow::Result<String> {
        Ok(format!(
            "http://{}",
            self.project.published(service, port).await?
        ))
    }

    /// Both queriers' own addresses (bypassing the balancer).
    async fn queriers(&self) -> anyhow::Result<Vec<String>> {
        Ok(vec![
            self.http("querier-1", 9090).await?,
            self.http("querier-2", 9090).await?,
        ])
    }

    /// The truth for `template` over the history: each cluster's answer from its first
    /// Prometheus, asked directly.
    async fn history_truth(&self, template: &str) -> anyhow::Result<Truth> {
        let mut truth = BTreeMap::new();
        for (service, cluster) in [("prom-1a", "cluster-1"), ("prom-2a", "cluster-2")] {
            let answer = self
                .api
                .range(
                    &self.prometheus[service],
                    &local(template),
                    self.history.range(),
                    "",
                )
                .await?;
            ensure!(answer.is_success(), "{service}: {:?}", answer.body);
            let series = answer.series(None);
            ensure!(!series.is_empty(), "{service} has no data for {template}");
            truth.insert(cluster, series);
        }
        Ok(truth)
    }

    /// The global answer of `template` over the history compared with `truth`.
    fn compare_history(answer: &Answer, truth: &Truth) -> Option<String> {
        truth.iter().find_map(|(cluster, expected)| {
            difference(expected, &answer.cluster(cluster)).map(|diff| format!("{cluster}: {diff}"))
        })
    }

    /// The live truth at `time_s`: every cluster's answer from its first Prometheus.
    async fn live_truth(&self, time_s: f64) -> anyhow::Result<Truth> {
        let mut truth = BTreeMap::new();
        for (service, cluster) in [("prom-1a", "cluster-1"), ("prom-2a", "cluster-2")] {
            let answer = self
                .api
                .instant(&self.prometheus[service], &local(LIVE_QUERY), time_s, "")
                .await?;
            ensure!(answer.is_success(), "{service}: {:?}", answer.body);
            truth.insert(cluster, answer.series(None));
        }
        Ok(truth)
    }

    async fn fail_with_logs(&self, error: anyhow::Error) -> anyhow::Error {
        error.context(format!(
            "container logs:\n{}",
            self.project.logs_tail(30).await
        ))
    }
}

/// Backfills each Prometheus's data directory: cluster 1's replicas hold the same samples
/// (their own block ULIDs), cluster 2 other samples. Returns the number of blocks.
fn backfill(dir: &Path, history: History) -> anyhow::Result<usize> {
    let mut blocks = 0;
    for (service, cluster) in PROMETHEUSES {
        let data = dir.join(service);
        std::fs::create_dir_all(&data)?;
        let seed = if cluster == "cluster-1" { 1 } else { 2 };
        let openmetrics = prom::generate_openmetrics(&history.spec(seed));
        blocks += prom::create_blocks(&openmetrics, &data)?.len();
        make_world_writable(&data)?;
    }
    Ok(blocks)
}

/// Prometheus runs as root in its container, the sidecar as nobody; the sidecar writes its
/// shipper state into the Prometheus data directory.
fn make_world_writable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
        .with_context(|| format!("chmod {}", path.display()))
}

/// Polls `check` every 500 ms until it returns `Some`, for at most `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + limit;
    loop {
        let last = match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => "not yet".to_owned(),
            Err(err) => format!("{err:#}"),
        };
        if Instant::now() > deadline {
            bail!("{what}: not within {limit:?} (last: {last})");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn metric_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn start(dir: &Path, images: &Images) -> anyhow::Result<(Topology, usize)> {
    let history = History::new(now_ms());
    let blocks = tokio::task::spawn_blocking({
        let dir = dir.to_path_buf();
        move || backfill(&dir, history)
    })
    .await??;
    let config = dir.join("config");
    let moto = dir.join("moto");
    std::fs::create_dir_all(&config)?;
    std::fs::create_dir_all(&moto)?;
    std::fs::write(moto.join("moto_server_strata.py"), moto_launcher())?;

    let python = moto_python()?;
    let prefixes = prom::run_checked(
        std::process::Command::new(&python)
            .args(["-c", "import sys; print(sys.executable); print(sys.prefix)"]),
    )?;
    let mut lines = prefixes.lines();
    let executable = lines.next().context("python executable")?.to_owned();
    let prefix = lines.next().context("python prefix")?.to_owned();

    let envs = vec![
        ("STRATA_IMAGE_PREFIX".to_owned(), images.prefix.clone()),
        ("STRATA_IMAGE_TAG".to_owned(), images.tag.clone()),
        ("STRATA_E2E_HOSTFS".to_owned(), images.hostfs.clone()),
        ("STRATA_E2E_DIR".to_owned(), dir.display().to_string()),
        ("STRATA_E2E_PYTHON".to_owned(), executable),
        ("STRATA_E2E_PYTHON_PREFIX".to_owned(), prefix),
    ];
    let command = docker_compose()
        .await
        .map_err(|reason| anyhow::anyhow!(reason))?;
    let project = Project::new(
        command,
        &workspace_root().join("tests/e2e/compose.yml"),
        envs,
    );

    project.compose(&["up", "-d", "s3"]).await?;
    let s3_address = project.published("s3", 5000).await?;
    let s3 = S3Server::attach_moto(&s3_address.to_string(), Duration::from_secs(60)).await?;
    let objstore = s3.objstore_yaml().replace(&s3.endpoint, "s3:5000");
    std::fs::write(config.join("objstore.yml"), objstore)?;

    project.compose(&["up", "-d"]).await?;
    let mut prometheus = BTreeMap::new();
    for (service, _) in PROMETHEUSES {
        prometheus.insert(
            service,
            format!("http://{}", project.published(service, 9090).await?),
        );
    }
    let querier = format!("http://{}", project.published("querier-lb", 9090).await?);
    Ok((
        Topology {
            project,
            querier,
            prometheus,
            history,
            api: Api::new()?,
        },
        blocks,
    ))
}

/// Waits until every Prometheus and Strata service is ready and every block is loaded by
/// exactly one store gateway, both shards holding some.
async fn wait_ready(topology: &Topology, blocks: usize) -> anyhow::Result<()> {
    let limit = Duration::from_secs(120);
    for url in topology.prometheus.values() {
        Project::wait_http_ok(&format!("{url}/-/ready"), limit).await?;
    }
    for service in [
        "sidecar-1a",
        "sidecar-1b",
        "sidecar-2a",
        "store-0",
        "store-1",
        "compactor",
    ] {
        let url = topology.http(service, 10902).await?;
        Project::wait_http_ok(&format!("{url}/-/ready"), limit).await?;
    }
    for service in ["querier-1", "querier-2"] {
        let url = topology.http(service, 9090).await?;
        Project::wait_http_ok(&format!("{url}/-/ready"), limit).await?;
    }
    let stores = [
        topology.http("store-0", 10902).await?,
        topology.http("store-1", 10902).await?,
    ];
    let loaded = eventually("every shipped block loaded", limit, || async {
        let mut loaded = Vec::new();
        for store in &stores {
            let metrics = reqwest::get(format!("{store}/metrics"))
                .await?
                .text()
                .await?;
            loaded.push(metric_sum(&metrics, "thanos_bucket_store_blocks_loaded") as usize);
        }
        Ok((loaded.iter().sum::<usize>() == blocks).then_some(loaded))
    })
    .await?;
    ensure!(
        loaded.iter().all(|&count| count > 0),
        "hashmod put every block on one shard: {loaded:?}"
    );
    // Every Prometheus scrapes all its targets (cluster 1: both Prometheus servers and both
    // sidecars; cluster 2: one of each), and keeps them a few scrapes long, before the live
    // data is compared.
    for (service, cluster) in PROMETHEUSES {
        let targets = if cluster == "cluster-1" { 4.0 } else { 2.0 };
        let url = &topology.prometheus[service];
        eventually(
            &format!("{service} scraping its targets"),
            limit,
            || async {
                let answer = topology
                    .api
                    .instant(url, "count(up == 1)", now_ms() as f64 / 1000.0, "")
                    .await?;
                let up = answer.body["data"]["result"][0]["value"][1]
                    .as_str()
                    .and_then(|value| value.parse::<f64>().ok());
                Ok((up == Some(targets)).then_some(()))
            },
        )
        .await?;
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    Ok(())
}

/// Scenario 1: the global view equals each cluster's own answers.
async fn global_equals_truth(topology: &Topology) -> anyhow::Result<()> {
    for template in HISTORY_QUERIES {
        let truth = topology.history_truth(template).await?;
        eventually(
            &format!("global {template} equal to the clusters'"),
            Duration::from_secs(60),
            || async {
                let answer = topology
                    .api
                    .range(
                        &topology.querier,
                        &global(template),
                        topology.history.range(),
                        "",
                    )
                    .await?;
                ensure!(answer.is_success(), "{:?}", answer.body);
                ensure!(answer.warnings().is_empty(), "{:?}", answer.warnings());
                match Topology::compare_history(&answer, &truth) {
                    None => Ok(Some(())),
                    Some(diff) => bail!("{diff}"),
                }
            },
        )
        .await?;
    }
    // Replicas are deduplicated: without dedup cluster 1's two replicas show.
    let (start, end, step) = topology.history.range();
    let replicas = topology
        .api
        .range(
            &topology.querier,
            "count by (cluster, prometheus_replica) (strata_test_temperature)",
            (start, end, step),
            "&dedup=false",
        )
        .await?;
    ensure!(
        replicas.series(None).len() == 3,
        "dedup=false should show replicas a, b of cluster-1 and a of cluster-2: {:?}",
        replicas.series(None).keys()
    );
    // Live data, from the sidecars.
    eventually(
        "live answer equal to the clusters'",
        Duration::from_secs(60),
        || async {
            let time_s = (now_ms() - 5_000) as f64 / 1000.0;
            let truth = topology.live_truth(time_s).await?;
            let answer = topology
                .api
                .instant(&topology.querier, &global(LIVE_QUERY), time_s, "")
                .await?;
            ensure!(
                answer.is_success() && answer.warnings().is_empty(),
                "{:?}",
                answer.body
            );
            Ok(Topology::compare_history(&answer, &truth)
                .is_none()
                .then_some(()))
        },
    )
    .await
}

/// Scenario 2: cluster 2 partitioned from the central network, then healed.
async fn partition_and_heal(topology: &Topology) -> anyhow::Result<()> {
    let history_truth = topology.history_truth(HISTORY_QUERIES[0]).await?;
    topology.project.disconnect("central", "sidecar-2a").await?;
    let partitioned_at = now_ms();
    let partial = eventually(
        "a partial-response warning for cluster 2",
        Duration::from_secs(60),
        || async {
            let time_s = (now_ms() - 3_000) as f64 / 1000.0;
            let answer = topology
                .api
                .instant(&topology.querier, &global(LIVE_QUERY), time_s, "")
                .await?;
            ensure!(answer.is_success(), "{:?}", answer.body);
            Ok((!answer.warnings().is_empty()).then_some((answer, time_s)))
        },
    )
    .await?;
    let (answer, time_s) = partial;
    ensure!(
        answer.cluster("cluster-2").is_empty(),
        "cluster 2 is cut off, yet answered: {:?}",
        answer.body
    );
    let truth = topology.live_truth(time_s).await?;
    ensure!(
        difference(&truth["cluster-1"], &answer.cluster("cluster-1")).is_none(),
        "cluster 1 must be answered in full during the partition: {:?} vs {:?}",
        truth["cluster-1"],
        answer.body
    );
    let strict = topology
        .api
        .instant(
            &topology.querier,
            &global(LIVE_QUERY),
            time_s,
            "&partial_response=false",
        )
        .await?;
    ensure!(
        !strict.is_success(),
        "partial_response=false must fail while a cluster is cut off: {:?}",
        strict.body
    );
    // Cluster 2's history is in the bucket: still answered in full, without warnings.
    let history = topology
        .api
        .range(
            &topology.querier,
            &global(HISTORY_QUERIES[0]),
            topology.history.range(),
            "",
        )
        .await?;
    ensure!(
        history.is_success() && history.warnings().is_empty(),
        "history during the partition: {:?}",
        history.body
    );
    if let Some(diff) = Topology::compare_history(&history, &history_truth) {
        bail!("history during the partition: {diff}");
    }
    // Let the partition last a few scrapes, then heal it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during_s = (partitioned_at + 4_000) as f64 / 1000.0;
    topology.project.connect("central", "sidecar-2a").await?;
    // Each querier notices on its own (its next Info round): ask both, not the balancer.
    for querier in topology.queriers().await? {
        eventually(
            "full answers after healing",
            Duration::from_secs(90),
            || async {
                let time_s = (now_ms() - 3_000) as f64 / 1000.0;
                let answer = topology
                    .api
                    .instant(&querier, &global(LIVE_QUERY), time_s, "")
                    .await?;
                if !answer.is_success() || !answer.warnings().is_empty() {
                    return Ok(None);
                }
                let truth = topology.live_truth(time_s).await?;
                Ok(Topology::compare_history(&answer, &truth)
                    .is_none()
                    .then_some(()))
            },
        )
        .await?;
    }
    // Prometheus kept scraping during the partition: those minutes are answered too.
    let truth = topology.live_truth(during_s).await?;
    let answer = topology
        .api
        .instant(&topology.querier, &global(LIVE_QUERY), during_s, "")
        .await?;
    ensure!(
        answer.is_success() && answer.warnings().is_empty(),
        "{:?}",
        answer.body
    );
    if let Some(diff) = Topology::compare_history(&answer, &truth) {
        bail!("the partition's minutes after healing: {diff}");
    }
    Ok(())
}

/// Scenario 3: a store gateway killed: never a silent hole.
async fn killed_store_gateway(topology: &Topology) -> anyhow::Result<()> {
    let template = HISTORY_QUERIES[0];
    let truth = topology.history_truth(template).await?;
    topology.project.compose(&["kill", "store-0"]).await?;
    let (mut complete, mut partial, mut failed) = (0, 0, 0);
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        let answer = topology
            .api
            .range(
                &topology.querier,
                &global(template),
                topology.history.range(),
                "",
            )
            .await?;
        if !answer.is_success() {
            failed += 1;
        } else if !answer.warnings().is_empty() {
            partial += 1;
        } else if let Some(diff) = Topology::compare_history(&answer, &truth) {
            bail!("a silent hole: an answer without warning misses data: {diff}");
        } else {
            complete += 1;
        }
    }
    ensure!(
        partial > 0,
        "no answer warned about the killed store gateway ({complete} complete, {failed} failed)"
    );
    println!(
        "store gateway killed: {complete} complete, {partial} partial with a warning, {failed} failed answers"
    );
    let strict = topology
        .api
        .range(
            &topology.querier,
            &global(template),
            topology.history.range(),
            "&partial_response=false",
        )
        .await?;
    ensure!(
        !strict.is_success(),
        "partial_response=false must fail without a store gateway: {:?}",
        strict.body
    );
    topology.project.compose(&["start", "store-0"]).await?;
    for querier in topology.queriers().await? {
        eventually(
            "full answers after the store gateway's restart",
            Duration::from_secs(90),
            || async {
                let answer = topology
                    .api
                    .range(&querier, &global(template), topology.history.range(), "")
                    .await?;
                Ok((answer.is_success()
                    && answer.warnings().is_empty()
                    && Topology::compare_history(&answer, &truth).is_none())
                .then_some(()))
            },
        )
        .await?;
    }
    Ok(())
}

/// Scenario 4: both queriers restarted one after the other under steady load.
async fn rolling_restart_under_load(topology: &Topology) -> anyhow::Result<()> {
    let template = HISTORY_QUERIES[0];
    let truth = Arc::new(topology.history_truth(template).await?);
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let api = topology.api.clone();
        let base = topology.querier.clone();
        let range = topology.history.range();
        let truth = Arc::clone(&truth);
        let stop = Arc::clone(&stop);
        workers.push(tokio::spawn(async move {
            let (mut done, mut failures) = (0usize, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let outcome = if (done + worker) % 2 == 0 {
                    api.range(&base, &global(template), range, "")
                        .await
                        .map(|answer| (answer, true))
                } else {
                    api.instant(
                        &base,
                        "count by (cluster) (up)",
                        (now_ms() - 5_000) as f64 / 1000.0,
                        "",
                    )
                    .await
                    .map(|answer| (answer, false))
                };
                done += 1;
                match outcome {
                    Err(err) => failures.push(format!("{err:#}")),
                    Ok((answer, _)) if !answer.is_success() || !answer.warnings().is_empty() => {
                        failures.push(format!("{}: {}", answer.http_status, answer.body))
                    }
                    Ok((answer, true)) => {
                        if let Some(diff) = Topology::compare_history(&answer, &truth) {
                            failures.push(format!("wrong answer: {diff}"));
                        }
                    }
                    Ok((answer, false)) => {
                        let counts = answer.series(None);
                        if counts.len() != 2 {
                            failures.push(format!("clusters missing: {:?}", answer.body));
                        }
                    }
                }
            }
            (done, failures)
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut restarted = Vec::new();
    for querier in ["querier-1", "querier-2"] {
        let before = topology.project.started_at(querier).await?;
        topology
            .project
            .compose(&["restart", "-t", "30", querier])
            .await?;
        let url = topology.http(querier, 9090).await?;
        Project::wait_http_ok(&format!("{url}/-/ready"), Duration::from_secs(60)).await?;
        // The load balancer checks readiness every 200 ms.
        tokio::time::sleep(Duration::from_secs(2)).await;
        restarted.push((querier, before, topology.project.started_at(querier).await?));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut total, mut failures) = (0, Vec::new());
    for worker in workers {
        let (done, worker_failures) = worker.await?;
        total += done;
        failures.extend(worker_failures);
    }
    for (querier, before, after) in restarted {
        ensure!(before != after, "{querier} was not restarted");
    }
    ensure!(
        total >= 20,
        "only {total} queries ran during the rolling restart"
    );
    ensure!(
        failures.is_empty(),
        "{} of {total} queries failed during the rolling restart: {:?}",
        failures.len(),
        failures.iter().take(5).collect::<Vec<_>>()
    );
    println!("rolling restart: {total} queries, none failed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clusters_survive_partition_store_loss_and_rolling_restart() -> anyhow::Result<()> {
    if let Err(reason) = docker_compose().await {
        println!("skipped: the compose e2e test needs Docker with compose: {reason}");
        return Ok(());
    }
    let started = Instant::now();
    let images = match std::env::var("STRATA_E2E_IMAGES").as_deref() {
        Ok("release") => Images::existing("strata/", "latest").await?,
        _ => Images::build(&COMPONENTS).await?,
    };
    println!("images ready after {:?}", started.elapsed());
    let dir = tempfile::tempdir()?;
    make_world_writable(dir.path())?;
    let (topology, blocks) = start(dir.path(), &images).await?;
    println!("containers started after {:?}", started.elapsed());
    let scenarios = async {
        wait_ready(&topology, blocks).await?;
        println!("ready after {:?}", started.elapsed());
        global_equals_truth(&topology)
            .await
            .context("scenario 1: global view")?;
        println!(
            "scenario 1 (global view) passed after {:?}",
            started.elapsed()
        );
        partition_and_heal(&topology)
            .await
            .context("scenario 2: partition of cluster 2")?;
        println!(
            "scenario 2 (partition) passed after {:?}",
            started.elapsed()
        );
        killed_store_gateway(&topology)
            .await
            .context("scenario 3: killed store gateway")?;
        println!(
            "scenario 3 (store gateway killed) passed after {:?}",
            started.elapsed()
        );
        rolling_restart_under_load(&topology)
            .await
            .context("scenario 4: rolling restart")?;
        anyhow::Ok(())
    };
    if let Err(err) = scenarios.await {
        return Err(topology.fail_with_logs(err).await);
    }
    println!("compose e2e passed in {:?}", started.elapsed());
    Ok(())
}
