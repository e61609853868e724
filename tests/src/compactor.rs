//! Compactor harness: test data whose samples never sit on a 5-minute boundary (so windowed
//! queries over raw and 5m data see the same samples), promtool backfill into 2h blocks
//! shipped with external labels, `strata-compactor` single runs, the bucket's blocks read
//! back (and dumped with promtool), and a store gateway + querier pair to ask PromQL.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use strata_common::objstore::{Bucket, BucketConfig, BucketMetrics};
use strata_compactor::bucket_blocks::{BlockObjects, download_block, list_blocks, read_meta};
use strata_tsdb::meta::BlockMeta;
use ulid::Ulid;

use crate::bins::{Service, StrataProcess, binary};
use crate::prom::{DumpOptions, SplitMix64, promtool_dump};

/// 2 days in ms: compaction windows of 2d start on multiples of it.
pub const TWO_DAYS: i64 = 2 * 86_400_000;

/// OpenMetrics text with `counters` counters (with resets) and `gauges` gauges, one sample
/// every `interval_ms` at `start_ms + offset_ms + n * interval_ms` for `duration_ms`; `gap`
/// leaves out samples in `[from, to)`.
// The parameters are the data set's description; a struct would only repeat their names.
#[allow(clippy::too_many_arguments)]
pub fn openmetrics(
    seed: u64,
    counters: usize,
    gauges: usize,
    start_ms: i64,
    duration_ms: i64,
    interval_ms: i64,
    offset_ms: i64,
    gap: Option<(i64, i64)>,
) -> String {
    let mut rng = SplitMix64::new(seed);
    let mut out = String::new();
    // Values are functions of the scrape's index, not of its time, and counters keep counting
    // through gaps: two replicas of one target scraped at different offsets agree, as HA
    // Prometheus pairs do.
    let times: Vec<i64> = (0..)
        .map(|n| start_ms + offset_ms + n * interval_ms)
        .take_while(|t| *t < start_ms + duration_ms)
        .collect();
    let in_gap = |t: i64| gap.is_some_and(|(from, to)| t >= from && t < to);
    let seconds = |t: i64| format!("{}.{:03}", t / 1000, t % 1000);
    let _ = writeln!(out, "# TYPE compactor_requests_total counter");
    for i in 0..counters {
        let mut value = rng.below(100) as f64;
        for t in &times {
            // Deterministic in the timestamp, so two replicas of one target agree.
            let mut tick =
                SplitMix64::new(seed ^ (*t as u64 / interval_ms as u64) ^ (i as u64) << 40);
            if tick.below(500) == 0 {
                value = 0.0;
            } else {
                value += tick.below(10) as f64;
            }
            let _ = writeln!(
                out,
                "compactor_requests_total{{instance=\"host-{i}\",job=\"api\"}} {value} {}",
                seconds(*t)
            );
        }
    }
    let _ = writeln!(out, "# TYPE compactor_temperature gauge");
    for i in 0..gauges {
        for (n, t) in times.iter().enumerate() {
            if in_gap(*t) {
                continue;
            }
            let mut tick = SplitMix64::new(seed ^ (n as u64) ^ ((i as u64) << 48));
            let value = (tick.below(10_000) as f64) / 100.0 - 20.0;
            let _ = writeln!(
                out,
                "compactor_temperature{{instance=\"host-{i}\",job=\"db\"}} {value} {}",
                seconds(*t)
            );
        }
    }
    out.push_str("# EOF\n");
    out
}

/// A bucket handle for `objstore_yaml`.
pub fn bucket(objstore_yaml: &str) -> anyhow::Result<Bucket> {
    let config = BucketConfig::parse(objstore_yaml)?;
    Ok(Bucket::from_config_with_metrics(
        &config,
        BucketMetrics::unregistered(),
    )?)
}

/// Every complete block in the bucket (meta.json present) with its objects.
pub async fn blocks(bucket: &Bucket) -> anyhow::Result<Vec<(BlockMeta, BlockObjects)>> {
    let mut out = Vec::new();
    for (ulid, objects) in list_blocks(bucket).await? {
        if objects.has_meta {
            out.push((read_meta(bucket, ulid).await?, objects));
        }
    }
    out.sort_by_key(|(m, _)| (m.min_time, m.ulid));
    Ok(out)
}

/// Every ULID directory (complete or not) with its objects.
pub async fn directories(bucket: &Bucket) -> anyhow::Result<BTreeMap<Ulid, BlockObjects>> {
    Ok(list_blocks(bucket).await?)
}

/// `promtool tsdb dump` of `ulids` downloaded from the bucket into one data directory.
pub async fn dump_bucket_blocks(bucket: &Bucket, ulids: &[Ulid]) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    for ulid in ulids {
        download_block(bucket, *ulid, dir.path(), 4).await?;
        let tombstones = dir.path().join(ulid.to_string()).join("tombstones");
        if !tombstones.exists() {
            std::fs::write(&tombstones, [0x01, 0x30, 0xBA, 0x30, 1, 0, 0, 0, 0])?;
        }
    }
    let path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || promtool_dump(&path, &DumpOptions::default())).await?
}

/// `promtool tsdb dump` of local block directories.
pub fn dump_local_blocks(blocks: &[PathBuf]) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    for block in blocks {
        crate::prom::copy_block(block, dir.path())?;
    }
    promtool_dump(dir.path(), &DumpOptions::default())
}

/// Runs `strata-compactor compact` once on the bucket with `extra` flags; returns its exit
/// status and logs.
pub fn run_once(
    objstore_yaml: &str,
    data_dir: &Path,
    extra: &[&str],
) -> anyhow::Result<(ExitStatus, String)> {
    let output = Command::new(binary(Service::Compactor.binary_name())?)
        .arg("compact")
        .arg(format!("--objstore.config={objstore_yaml}"))
        .arg(format!("--data-dir={}", data_dir.display()))
        .arg("--http-address=127.0.0.1:0")
        .arg("--consistency-delay=0s")
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .context("run strata-compactor")?;
    Ok((
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// A store gateway on the bucket and a querier in front of it.
pub struct QueryStack {
    pub store: StrataProcess,
    pub querier: StrataProcess,
    _data: tempfile::TempDir,
}

impl QueryStack {
    /// Starts both; the querier deduplicates by `replica`. Waits until the store answers.
    pub async fn start(objstore_yaml: &str, querier_flags: &[&str]) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let store = crate::store_gateway::start(objstore_yaml, data.path(), &[]).await?;
        let endpoint = format!(
            "--endpoint={}",
            store.grpc_address.context("store gateway without gRPC")?
        );
        let mut args = vec![endpoint.as_str(), "--query.replica-label=replica"];
        args.extend_from_slice(querier_flags);
        let querier = StrataProcess::start(Service::Querier, true, &args).await?;
        let stack = QueryStack {
            store,
            querier,
            _data: data,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let stores = reqwest::get(format!("{}/api/v1/stores", stack.querier.http_url()))
                .await?
                .text()
                .await?;
            if stores.contains("\"store\"") {
                return Ok(stack);
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "store not registered: {stores}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `/api/v1/query_range` with extra parameters (`&dedup=false`...); returns the result
    /// matrix as `labels -> [(t, value text)]`.
    pub async fn query_range(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        extra: &str,
    ) -> anyhow::Result<BTreeMap<String, Vec<(f64, String)>>> {
        let url = format!(
            "{}/api/v1/query_range?query={}&start={}&end={}&step={}{extra}",
            self.querier.http_url(),
            crate::prom::url_encode(query),
            start_ms as f64 / 1000.0,
            end_ms as f64 / 1000.0,
            step_ms as f64 / 1000.0,
        );
        let body: serde_json::Value = reqwest::Client::new()
            .get(&url)
            .timeout(Duration::from_secs(60))
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(body["status"] == "success", "{query}: {body}");
        let mut out = BTreeMap::new();
        for series in body["data"]["result"].as_array().context("result")? {
            let values = series["values"]
                .as_array()
                .context("values")?
                .iter()
                .map(|v| {
                    (
                        v[0].as_f64().unwrap_or(0.0),
                        v[1].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect();
            out.insert(series["metric"].to_string(), values);
        }
        Ok(out)
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.querier.stop(Duration::from_secs(10)).await?;
        self.store.stop(Duration::from_secs(10)).await?;
        Ok(())
    }
}
