//! Real Prometheus 2.42 for end-to-end tests: locating `promtool`/`prometheus`, a deterministic
//! OpenMetrics data generator, backfilling blocks with `promtool tsdb create-blocks-from
//! openmetrics`, `promtool tsdb dump`/`analyze`, and a real Prometheus server on a free
//! 127.0.0.1 port serving a data directory.
//!
//! Everything here fails with a message that says what to install or build, never silently.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

/// A Prometheus tool binary: `/usr/bin/<name>` (Debian's package), else the first one on `PATH`.
fn prometheus_tool(name: &str) -> anyhow::Result<PathBuf> {
    let debian = Path::new("/usr/bin").join(name);
    if debian.is_file() {
        return Ok(debian);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!("{name} not found in /usr/bin or PATH: install Debian's `prometheus` package (2.42)")
}

/// Path of `promtool`.
pub fn promtool() -> anyhow::Result<PathBuf> {
    prometheus_tool("promtool")
}

/// Path of `prometheus`.
pub fn prometheus() -> anyhow::Result<PathBuf> {
    prometheus_tool("prometheus")
}

/// Path of a Strata binary (`strata-tools`, ...) built into the same target directory as the
/// running test (`target/<profile>/<name>`). Fails with a message saying how to build it.
pub fn strata_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locate the test executable")?;
    // Test executables live in target/<profile>/deps/.
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test executable is not inside target/<profile>/deps")?;
    let binary = profile_dir.join(name);
    ensure!(
        binary.is_file(),
        "{} does not exist: build the binaries first (`cargo build --bins`, same profile as the tests)",
        binary.display()
    );
    Ok(binary)
}

/// Run a command, failing with its stderr when it exits non-zero; returns stdout.
pub fn run_checked(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .output()
        .with_context(|| format!("run {command:?}"))?;
    ensure!(
        output.status.success(),
        "{command:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).context("command output is not UTF-8")
}

/// Parameters of [`generate_openmetrics`].
#[derive(Debug, Clone)]
pub struct DataSpec {
    /// Approximate number of series (split among counters, gauges and histograms).
    pub series: usize,
    /// First timestamp (ms).
    pub start_ms: i64,
    /// Length of the data (ms).
    pub duration_ms: i64,
    /// Scrape interval (ms); timestamps get a few ms of deterministic jitter.
    pub interval_ms: i64,
    /// Seed of the value generator.
    pub seed: u64,
}

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec {
            series: 1000,
            // 30 minutes before a 2h block boundary (2023-11-15 00:00:00 UTC), so the default
            // 90 minutes of data make two blocks.
            start_ms: 1_700_004_600_000,
            duration_ms: 90 * 60 * 1000,
            interval_ms: 15_000,
            seed: 42,
        }
    }
}

/// Deterministic pseudo-random numbers (splitmix64), so test data is identical on every run.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The window `[start, end)` (ms) in which one series has samples: most series cover the whole
/// range; some start late, some stop early, some do both.
fn active_window(rng: &mut SplitMix64, spec: &DataSpec) -> (i64, i64) {
    let end = spec.start_ms + spec.duration_ms;
    let span = spec.duration_ms.max(1) as u64;
    match rng.below(6) {
        0 => (spec.start_ms + rng.below(span / 2) as i64, end),
        1 => (spec.start_ms, end - rng.below(span / 2) as i64),
        2 => {
            let from = spec.start_ms + rng.below(span / 3) as i64;
            (from, from + (span / 4) as i64)
        }
        _ => (spec.start_ms, end),
    }
}

/// Timestamps of one series: every interval, with 0..=3 ms jitter and an occasional missed scrape.
fn timestamps(rng: &mut SplitMix64, spec: &DataSpec, window: (i64, i64)) -> Vec<i64> {
    let mut out = Vec::new();
    let mut t = spec.start_ms;
    while t < window.1 {
        if t >= window.0 && rng.below(50) != 0 {
            out.push(t + rng.below(4) as i64);
        }
        t += spec.interval_ms;
    }
    out
}

fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// OpenMetrics text (ending in `# EOF`) with about `spec.series` series: counters with resets
/// (`strata_test_requests_total`), gauges with NaN and extreme values (`strata_test_temperature`),
/// classic histograms (`strata_test_latency_seconds_{bucket,sum,count}`), and series that start
/// late or stop early. Identical for identical specs.
pub fn generate_openmetrics(spec: &DataSpec) -> String {
    let mut rng = SplitMix64::new(spec.seed);
    let mut out = String::with_capacity(
        spec.series * 200 * (spec.duration_ms / spec.interval_ms.max(1)) as usize / 4,
    );
    let buckets = ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"];
    let histogram_sets = (spec.series * 3 / 10) / (buckets.len() + 2);
    let counters = spec.series * 4 / 10;
    let gauges = spec
        .series
        .saturating_sub(counters + histogram_sets * (buckets.len() + 2));
    let jobs = ["api", "db", "web\"quoted\"", "ünïcode"];
    let codes = ["200", "404", "500"];

    let _ = writeln!(out, "# HELP strata_test_requests_total Requests.");
    let _ = writeln!(out, "# TYPE strata_test_requests_total counter");
    for i in 0..counters {
        let window = active_window(&mut rng, spec);
        let labels = format!(
            "code=\"{}\",instance=\"host-{:04}:9100\",job=\"{}\"",
            codes[i % codes.len()],
            i / codes.len(),
            jobs[i % jobs.len()].replace('"', "\\\"")
        );
        let mut value = rng.below(1000) as f64;
        for t in timestamps(&mut rng, spec, window) {
            if rng.below(100) == 0 {
                value = rng.below(10) as f64; // counter reset
            } else {
                value += rng.below(20) as f64 + if i % 2 == 0 { 0.5 } else { 0.0 };
            }
            let _ = writeln!(
                out,
                "strata_test_requests_total{{{labels}}} {value} {}",
                seconds(t)
            );
        }
    }

    let _ = writeln!(out, "# HELP strata_test_temperature A gauge.");
    let _ = writeln!(out, "# TYPE strata_test_temperature gauge");
    for i in 0..gauges {
        let window = active_window(&mut rng, spec);
        let labels = format!("instance=\"host-{:04}:9100\",sensor=\"s{}\"", i / 4, i % 4);
        let scale = [1.0, 1e-7, 1e7, 1e21, 0.001][i % 5];
        let mut value = rng.next_f64() * 100.0;
        for t in timestamps(&mut rng, spec, window) {
            let text = match rng.below(40) {
                0 => "NaN".to_string(),
                1 => value.to_string(),
                2 => "+Inf".to_string(),
                _ => {
                    value += (rng.next_f64() - 0.5) * 4.0;
                    // Some gauges hold integers, some long fractions.
                    if i % 3 == 0 {
                        format!("{}", (value * scale).round())
                    } else {
                        format!("{}", value * scale)
                    }
                }
            };
            let _ = writeln!(
                out,
                "strata_test_temperature{{{labels}}} {text} {}",
                seconds(t)
            );
        }
    }

    let _ = writeln!(
        out,
        "# HELP strata_test_latency_seconds A classic histogram."
    );
    let _ = writeln!(out, "# TYPE strata_test_latency_seconds histogram");
    for i in 0..histogram_sets {
        let window = active_window(&mut rng, spec);
        let labels = format!(
            "handler=\"/api/v{}\",instance=\"host-{:04}:9100\"",
            i % 3,
            i
        );
        let mut counts = vec![0u64; buckets.len()];
        let mut sum = 0.0f64;
        for t in timestamps(&mut rng, spec, window) {
            if rng.below(200) == 0 {
                counts.iter_mut().for_each(|c| *c = 0);
                sum = 0.0;
            }
            for _ in 0..rng.below(30) {
                let latency = rng.next_f64().powi(3) * 6.0;
                sum += latency;
                for (bucket, count) in buckets.iter().zip(counts.iter_mut()) {
                    let bound: f64 = bucket.parse().unwrap_or(f64::INFINITY);
                    if latency <= bound {
                        *count += 1;
                    }
                }
            }
            let ts = seconds(t);
            for (bucket, count) in buckets.iter().zip(&counts) {
                let _ = writeln!(
                    out,
                    "strata_test_latency_seconds_bucket{{{labels},le=\"{bucket}\"}} {count} {ts}"
                );
            }
            let total = counts.last().copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "strata_test_latency_seconds_count{{{labels}}} {total} {ts}"
            );
            let _ = writeln!(
                out,
                "strata_test_latency_seconds_sum{{{labels}}} {sum} {ts}"
            );
        }
    }
    out.push_str("# EOF\n");
    out
}

/// Block directories (sorted) directly inside a data directory.
pub fn block_dirs(data_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in
        std::fs::read_dir(data_dir).with_context(|| format!("list {}", data_dir.display()))?
    {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().join("meta.json").is_file() && name.len() == 26 {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Backfill `openmetrics` into `data_dir` with `promtool tsdb create-blocks-from openmetrics`;
/// returns the block directories created.
pub fn create_blocks(openmetrics: &str, data_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(data_dir)?;
    let input = data_dir.join("input.om.txt");
    std::fs::write(&input, openmetrics)?;
    run_checked(
        Command::new(promtool()?)
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
            .arg(&input)
            .arg(data_dir),
    )?;
    std::fs::remove_file(&input)?;
    block_dirs(data_dir)
}

/// Copy one block directory into `data_dir` (creating it), e.g. to give promtool or Prometheus a
/// data directory holding exactly that block. Returns the copy's path.
pub fn copy_block(block_dir: &Path, data_dir: &Path) -> anyhow::Result<PathBuf> {
    let name = block_dir.file_name().context("block dir has no name")?;
    let target = data_dir.join(name);
    copy_dir(block_dir, &target)?;
    Ok(target)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Options of `promtool tsdb dump`.
#[derive(Debug, Clone, Default)]
pub struct DumpOptions {
    /// `--match` selector.
    pub selector: Option<String>,
    /// `--min-time` (ms).
    pub min_time: Option<i64>,
    /// `--max-time` (ms).
    pub max_time: Option<i64>,
}

impl DumpOptions {
    /// The flags, as both promtool and `strata-tools block dump` take them.
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(selector) = &self.selector {
            args.push(format!("--match={selector}"));
        }
        if let Some(t) = self.min_time {
            args.push(format!("--min-time={t}"));
        }
        if let Some(t) = self.max_time {
            args.push(format!("--max-time={t}"));
        }
        args
    }
}

/// `promtool tsdb dump` of a data directory (creates the `wal/` directory 2.42 insists on).
pub fn promtool_dump(data_dir: &Path, options: &DumpOptions) -> anyhow::Result<String> {
    std::fs::create_dir_all(data_dir.join("wal"))?;
    run_checked(
        Command::new(promtool()?)
            .args(["tsdb", "dump"])
            .args(options.args())
            .arg(data_dir),
    )
}

/// `promtool tsdb analyze` of one block in a data directory; returns its report.
pub fn promtool_analyze(data_dir: &Path, block_id: &str) -> anyhow::Result<String> {
    std::fs::create_dir_all(data_dir.join("wal"))?;
    run_checked(
        Command::new(promtool()?)
            .args(["tsdb", "analyze", "--extended"])
            .arg(data_dir)
            .arg(block_id),
    )
}

/// A port for a test Prometheus (it cannot report the port it bound: see [`crate::bins::free_port`]).
pub use crate::bins::free_port;

/// Prometheus flags that turn local compaction off, as Thanos's sidecar requires for shipping.
pub const EQUAL_BLOCK_DURATIONS: [&str; 2] = [
    "--storage.tsdb.min-block-duration=2h",
    "--storage.tsdb.max-block-duration=2h",
];

fn spawn_prometheus(
    config_dir: &Path,
    data_dir: &Path,
    port: u16,
    extra_args: &[String],
) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config_dir.join("prometheus.log"))?;
    Command::new(prometheus()?)
        .arg(format!(
            "--config.file={}",
            config_dir.join("prometheus.yml").display()
        ))
        .arg(format!("--storage.tsdb.path={}", data_dir.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=100y")
        .arg("--web.enable-admin-api")
        .args(extra_args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("start prometheus")
}

/// A real Prometheus server on 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct PrometheusServer {
    child: Child,
    port: u16,
    data_dir: PathBuf,
    extra_args: Vec<String>,
    _config_dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Start Prometheus on `data_dir` with `config_yaml` (no scrape jobs when empty), retention
    /// long enough to keep old test blocks, and wait until `/-/ready` answers.
    pub fn start(data_dir: &Path, config_yaml: &str) -> anyhow::Result<Self> {
        Self::start_with(data_dir, config_yaml, &[])
    }

    /// Like [`PrometheusServer::start`], with `$PORT` in `config_yaml` replaced by the
    /// server's own port (to scrape itself) and `extra_args` added to the command line (e.g.
    /// [`EQUAL_BLOCK_DURATIONS`]).
    pub fn start_with(
        data_dir: &Path,
        config_yaml: &str,
        extra_args: &[&str],
    ) -> anyhow::Result<Self> {
        let extra_args: Vec<String> = extra_args.iter().map(|arg| (*arg).to_owned()).collect();
        // Prometheus cannot bind port 0 and say which port it got, so the harness picks one;
        // when another process takes it first, Prometheus exits with "address already in use"
        // and it is started again on another port.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let config_dir = tempfile::tempdir()?;
            let port = free_port()?;
            std::fs::write(
                config_dir.path().join("prometheus.yml"),
                if config_yaml.is_empty() {
                    "global: {}\n".to_owned()
                } else {
                    config_yaml.replace("$PORT", &port.to_string())
                },
            )?;
            let child = spawn_prometheus(config_dir.path(), data_dir, port, &extra_args)?;
            let mut server = PrometheusServer {
                child,
                port,
                data_dir: data_dir.to_path_buf(),
                extra_args: extra_args.clone(),
                _config_dir: config_dir,
            };
            match server.wait_ready(Duration::from_secs(30)) {
                Ok(()) => return Ok(server),
                Err(error) if attempt < 5 && server.lost_its_port() => {
                    eprintln!(
                        "prometheus lost port {port} to another process, retrying: {error:#}"
                    );
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Kills the server (SIGKILL) and waits for it to exit; [`PrometheusServer::restart`]
    /// brings it back on the same port and data.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let _ = self.child.kill();
        self.child.wait().context("wait for prometheus to exit")?;
        Ok(())
    }

    /// Starts the server again after [`PrometheusServer::stop`], same port, config and data.
    /// The port must stay the same (clients know it): while another process holds it, this
    /// retries for up to half a minute.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_none() {
            self.stop()?;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.child = spawn_prometheus(
                self._config_dir.path(),
                &self.data_dir,
                self.port,
                &self.extra_args,
            )?;
            match self.wait_ready(Duration::from_secs(30)) {
                Err(_) if self.lost_its_port() && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(500));
                }
                result => return result,
            }
        }
    }

    /// Whether the process exited because its port was taken.
    fn lost_its_port(&mut self) -> bool {
        let exited = matches!(self.child.try_wait(), Ok(Some(_)));
        exited && self.log().contains("address already in use")
    }

    /// Waits until this server (not another process that took its port) answers `/-/ready`.
    fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let client = http_client::blocking_client()?;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "prometheus exited with {status} before becoming ready: {}",
                    self.log()
                );
            }
            if self.answers_as_itself(&client) {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "prometheus not ready after {timeout:?}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `/-/ready` answers 200 and `/api/v1/status/flags` names this server's data directory.
    fn answers_as_itself(&self, client: &http_client::BlockingClient) -> bool {
        let ready = client
            .get(&format!("{}/-/ready", self.url()))
            .send()
            .is_ok_and(|response| response.status().is_success());
        if !ready {
            return false;
        }
        let flags: Option<serde_json::Value> = client
            .get(&format!("{}/api/v1/status/flags", self.url()))
            .send()
            .and_then(|response| response.text())
            .ok()
            .and_then(|body| serde_json::from_str(&body).ok());
        let path = flags
            .as_ref()
            .and_then(|flags| flags["data"]["storage.tsdb.path"].as_str())
            .map(PathBuf::from);
        path.is_some_and(|path| path == self.data_dir)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._config_dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The `--config.file` the server was started with (a reloader may rewrite it).
    pub fn config_path(&self) -> PathBuf {
        self._config_dir.path().join("prometheus.yml")
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// GET `<url><path_and_query>` and return the body, failing on a non-2xx status.
    pub fn get(&self, path_and_query: &str) -> anyhow::Result<String> {
        let client = http_client::blocking_client()?;
        let response = client
            .get(&format!("{}{path_and_query}", self.url()))
            .send()
            .with_context(|| format!("GET {path_and_query}"))?;
        let status = response.status();
        let body = response.text()?;
        ensure!(
            status.is_success(),
            "GET {path_and_query}: {status}: {body}"
        );
        Ok(body)
    }

    /// `/api/v1/query_range` with the query URL-encoded; returns the JSON body.
    pub fn query_range(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> anyhow::Result<String> {
        self.get(&format!(
            "/api/v1/query_range?query={}&start={}&end={}&step={}",
            url_encode(query),
            seconds(start_ms),
            seconds(end_ms),
            seconds(step_ms)
        ))
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encode a query-string value.
pub fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A tiny blocking HTTP client (reqwest's async client on a private runtime), so harness users
/// need no async context.
mod http_client {
    pub use reqwest::StatusCode;

    pub struct BlockingClient {
        runtime: tokio::runtime::Runtime,
        client: reqwest::Client,
    }

    pub struct RequestBuilder<'a> {
        runtime: &'a tokio::runtime::Runtime,
        request: reqwest::RequestBuilder,
    }

    pub struct Response {
        status: StatusCode,
        body: String,
    }

    pub fn blocking_client() -> anyhow::Result<BlockingClient> {
        Ok(BlockingClient {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?,
        })
    }

    impl BlockingClient {
        pub fn get(&self, url: &str) -> RequestBuilder<'_> {
            RequestBuilder {
                runtime: &self.runtime,
                request: self.client.get(url),
            }
        }
    }

    impl RequestBuilder<'_> {
        pub fn send(self) -> anyhow::Result<Response> {
            self.runtime.block_on(async move {
                let response = self.request.send().await?;
                let status = response.status();
                let body = response.text().await?;
                Ok(Response { status, body })
            })
        }
    }

    impl Response {
        pub fn status(&self) -> StatusCode {
            self.status
        }
        pub fn text(self) -> anyhow::Result<String> {
            Ok(self.body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_is_deterministic_and_well_formed() {
        let spec = DataSpec {
            series: 100,
            duration_ms: 10 * 60 * 1000,
            ..DataSpec::default()
        };
        let a = generate_openmetrics(&spec);
        assert_eq!(a, generate_openmetrics(&spec));
        assert!(a.ends_with("# EOF\n"));
        assert!(a.contains("NaN"));
        assert!(a.contains("le=\"+Inf\""));
        let other = generate_openmetrics(&DataSpec { seed: 7, ..spec });
        assert_ne!(a, other);
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(
            url_encode("rate(a{b=\"c\"}[5m])"),
            "rate%28a%7Bb%3D%22c%22%7D%5B5m%5D%29"
        );
    }
}
