//! End-to-end: the sidecar ships the blocks of a real Prometheus 2.42 to a FILESYSTEM bucket
//! and to moto S3 (authentication on). Blocks appear within 60 s with the `thanos` meta
//! section, byte-identical index and chunks, and are listed by `strata-tools bucket ls`. A
//! sidecar killed with SIGKILL mid-upload and restarted leaves every block uploaded exactly
//! once, and no block is ever listed before its meta.json exists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use strata_common::objstore::{Bucket, BucketConfig, BucketMetrics};
use strata_tests::faults::TcpProxy;
use strata_tests::prom::{DataSpec, strata_binary};
use strata_tests::s3::S3Server;
use strata_tests::sidecar::{
    BackfilledPrometheus, EXTERNAL_LABELS, http_get, metric_value,
    start_backfilled_prometheus_async, start_sidecar, wait_for,
};

/// Files of a block directory relative to it, with their bytes.
fn block_files(block_dir: &Path) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    files.insert("index".to_owned(), std::fs::read(block_dir.join("index"))?);
    for entry in std::fs::read_dir(block_dir.join("chunks"))? {
        let entry = entry?;
        files.insert(
            format!("chunks/{}", entry.file_name().to_string_lossy()),
            std::fs::read(entry.path())?,
        );
    }
    Ok(files)
}

fn block_name(block_dir: &Path) -> String {
    block_dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn bucket(yaml: &str) -> anyhow::Result<Bucket> {
    Ok(Bucket::from_config_with_metrics(
        &BucketConfig::parse(yaml)?,
        BucketMetrics::unregistered(),
    )?)
}

/// Waits until every local block has its meta.json in the bucket.
async fn wait_shipped(bucket: &Bucket, blocks: &[PathBuf]) -> anyhow::Result<()> {
    wait_for("all blocks shipped", Duration::from_secs(120), || async {
        for block in blocks {
            if !bucket
                .exists(&format!("{}/meta.json", block_name(block)))
                .await?
            {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })
    .await
}

/// Each local block is in the bucket with the same index and chunks and a correct meta.
async fn check_shipped(bucket: &Bucket, blocks: &[PathBuf]) -> anyhow::Result<()> {
    for block in blocks {
        let name = block_name(block);
        let meta: serde_json::Value =
            serde_json::from_slice(&bucket.get(&format!("{name}/meta.json")).await?)?;
        let local: serde_json::Value =
            serde_json::from_slice(&std::fs::read(block.join("meta.json"))?)?;
        for key in [
            "ulid",
            "minTime",
            "maxTime",
            "stats",
            "compaction",
            "version",
        ] {
            assert_eq!(meta[key], local[key], "{name}: {key}");
        }
        let thanos = &meta["thanos"];
        assert_eq!(thanos["source"], "sidecar", "{name}");
        assert_eq!(thanos["downsample"]["resolution"], 0, "{name}");
        for (label, value) in EXTERNAL_LABELS {
            assert_eq!(thanos["labels"][label], value, "{name}");
        }
        let files = block_files(block)?;
        let listed: Vec<&str> = thanos["files"]
            .as_array()
            .context("thanos.files")?
            .iter()
            .filter_map(|file| file["rel_path"].as_str())
            .collect();
        let mut expected: Vec<&str> = files.keys().map(String::as_str).collect();
        expected.push("meta.json");
        expected.sort();
        assert_eq!(listed, expected, "{name}: thanos.files");
        for (rel_path, bytes) in &files {
            let remote = bucket.get(&format!("{name}/{rel_path}")).await?;
            assert!(
                remote.as_ref() == bytes.as_slice(),
                "{name}/{rel_path} differs"
            );
            let size = thanos["files"]
                .as_array()
                .and_then(|files| files.iter().find(|f| f["rel_path"] == rel_path.as_str()))
                .and_then(|file| file["size_bytes"].as_u64());
            assert_eq!(size, Some(bytes.len() as u64), "{name}/{rel_path} size");
        }
    }
    Ok(())
}

fn bucket_ls(yaml: &str) -> anyhow::Result<String> {
    let output = Command::new(strata_binary("strata-tools")?)
        .args(["bucket", "ls", "-o", "json"])
        .arg(format!("--objstore.config={yaml}"))
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "bucket ls: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// Prometheus with `blocks` backfilled 2h blocks (starting on a 2h boundary).
async fn backfilled(dir: &Path, blocks: usize) -> anyhow::Result<BackfilledPrometheus> {
    let spec = DataSpec {
        series: 40,
        start_ms: 1_700_006_400_000,
        duration_ms: blocks as i64 * 7_200_000 - 60_000,
        ..DataSpec::default()
    };
    let prometheus = start_backfilled_prometheus_async(dir.join("prom"), spec).await?;
    anyhow::ensure!(
        prometheus.blocks.len() == blocks,
        "expected {blocks} blocks, promtool made {:?}",
        prometheus.blocks
    );
    Ok(prometheus)
}

/// SIGKILL, as an OOM kill or a node failure would end the sidecar.
fn kill_9(process: &strata_tests::bins::StrataProcess) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args(["-KILL", &process.pid().to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -KILL failed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sidecar_ships_blocks_to_filesystem_bucket() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let prometheus = backfilled(dir.path(), 2).await?;
    let yaml = format!(
        "type: FILESYSTEM\nconfig:\n  directory: {}\n",
        dir.path().join("bucket").display()
    );
    let objstore = format!("--objstore.config={yaml}");
    let sidecar =
        start_sidecar(&prometheus.server.url(), &prometheus.data_dir, &[&objstore]).await?;
    let bucket = bucket(&yaml)?;
    let started = std::time::Instant::now();
    wait_shipped(&bucket, &prometheus.blocks).await?;
    eprintln!(
        "{} blocks shipped in {:?}",
        prometheus.blocks.len(),
        started.elapsed()
    );
    check_shipped(&bucket, &prometheus.blocks).await?;

    let listing = bucket_ls(&yaml)?;
    for block in &prometheus.blocks {
        assert!(listing.contains(&block_name(block)), "{listing}");
    }
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(
        prometheus.data_dir.join("thanos.shipper.json"),
    )?)?;
    assert_eq!(state["version"], 1);
    assert_eq!(
        state["uploaded"].as_array().map(Vec::len),
        Some(prometheus.blocks.len())
    );
    let (_, metrics) = http_get(&format!("{}/metrics", sidecar.http_url())).await?;
    assert_eq!(
        metric_value(&metrics, "thanos_shipper_uploads_total"),
        Some(prometheus.blocks.len() as f64)
    );
    assert_eq!(
        metric_value(&metrics, "thanos_shipper_upload_failures_total"),
        Some(0.0)
    );
    assert!(
        metrics.contains("thanos_objstore_bucket_operations_total{"),
        "{metrics}"
    );
    // Prometheus's own block files are untouched.
    for block in &prometheus.blocks {
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(block.join("meta.json"))?)?;
        assert!(meta.get("thanos").is_none());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sidecar_ships_to_s3_exactly_once_across_sigkill() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s3 = S3Server::start().await?;
    let prefix = format!("sidecar-{}", std::process::id());
    let yaml = format!("{}prefix: {prefix}\n", s3.objstore_yaml());
    let prometheus = backfilled(dir.path(), 6).await?;
    // The sidecar reaches S3 through a throttling proxy, so uploads take long enough to be
    // caught in the middle; the test looks at the bucket directly.
    let proxy = TcpProxy::start_throttled(&s3.endpoint, Some(Duration::from_millis(100))).await?;
    let objstore = format!(
        "--objstore.config={}",
        yaml.replace(&s3.endpoint, &proxy.address.to_string())
    );
    let bucket = bucket(&yaml)?;

    let first = start_sidecar(&prometheus.server.url(), &prometheus.data_dir, &[&objstore]).await?;
    // Kill once a block is complete and another one's directory exists without its meta.json
    // (an upload in progress).
    // Generous: on a busy machine the sidecar, moto and the throttling proxy all crawl.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let mut last_listing = Vec::new();
    let partial_seen = loop {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "no upload in progress seen in 180s; last listing {last_listing:?}; sidecar logs:\n{}",
            first.logs()
        );
        // One recursive listing per look (a LIST per block would miss short uploads).
        let objects = bucket.list_recursive("").await?;
        let mut dirs: BTreeMap<String, bool> = BTreeMap::new();
        for object in &objects {
            if let Some((dir, rest)) = object.path.split_once('/') {
                *dirs.entry(dir.to_owned()).or_default() |= rest == "meta.json";
            }
        }
        last_listing = dirs
            .iter()
            .map(|(dir, meta)| format!("{dir} meta={meta}"))
            .collect();
        let complete = dirs.values().filter(|meta| **meta).count();
        let partial = dirs
            .iter()
            .find(|(_, meta)| !**meta)
            .map(|(dir, _)| dir.clone());
        if let (Some(dir), true) = (partial, complete > 0) {
            break dir;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    kill_9(&first)?;
    // Let requests already on the wire land in S3 before looking.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Every block listed in the bucket now has its meta.json: partial uploads are not blocks.
    let listing = bucket_ls(&yaml)?;
    for block in &prometheus.blocks {
        let name = block_name(block);
        let has_meta = bucket.exists(&format!("{name}/meta.json")).await?;
        assert_eq!(listing.contains(&name), has_meta, "{name}: {listing}");
    }
    // What the killed sidecar completed, read after the kill so no upload can race it.
    let mut metas_before = BTreeMap::new();
    for block in &prometheus.blocks {
        let name = block_name(block);
        if bucket.exists(&format!("{name}/meta.json")).await? {
            metas_before.insert(
                name.clone(),
                bucket.get(&format!("{name}/meta.json")).await?,
            );
        }
    }
    let started_dirs = bucket.list_with_delimiter("").await?.prefixes.len();
    eprintln!(
        "killed while {partial_seen} was uploading: {} of {} blocks complete, {started_dirs} block directories started",
        metas_before.len(),
        prometheus.blocks.len(),
    );

    let second =
        start_sidecar(&prometheus.server.url(), &prometheus.data_dir, &[&objstore]).await?;
    wait_shipped(&bucket, &prometheus.blocks).await?;
    check_shipped(&bucket, &prometheus.blocks).await?;
    // Blocks complete before the kill were not uploaded again (same meta.json, same upload
    // time), and the restarted sidecar uploaded only the others.
    for (name, before) in &metas_before {
        assert_eq!(
            &bucket.get(&format!("{name}/meta.json")).await?,
            before,
            "{name}"
        );
    }
    // The restarted sidecar uploaded exactly the blocks the killed one had not completed.
    let remaining = (prometheus.blocks.len() - metas_before.len()) as f64;
    wait_for("uploads counted", Duration::from_secs(10), || async {
        let (_, metrics) = http_get(&format!("{}/metrics", second.http_url())).await?;
        let uploads = metric_value(&metrics, "thanos_shipper_uploads_total");
        anyhow::ensure!(
            uploads <= Some(remaining),
            "{uploads:?} uploads, {remaining} expected"
        );
        Ok((uploads == Some(remaining)).then_some(()))
    })
    .await?;
    // One block directory per local block and nothing else under the prefix.
    let objects = bucket.list_with_delimiter("").await?;
    assert_eq!(
        objects.prefixes.len(),
        prometheus.blocks.len(),
        "{:?}",
        objects.prefixes
    );
    Ok(())
}

/// Sum of every sample of `name` (all label sets) in a /metrics text.
fn metric_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| {
            line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn sidecar_retries_uploads_while_s3_is_unreachable() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s3 = S3Server::start().await?;
    let proxy = TcpProxy::start(&s3.endpoint).await?;
    proxy.set_up(false);
    let prefix = format!("outage-{}", std::process::id());
    let yaml = format!(
        "{}prefix: {prefix}\n",
        s3.objstore_yaml_with("max_retries: 1")
            .replace(&s3.endpoint, &proxy.address.to_string())
    );
    let prometheus = backfilled(dir.path(), 3).await?;
    let objstore = format!("--objstore.config={yaml}");
    let sidecar =
        start_sidecar(&prometheus.server.url(), &prometheus.data_dir, &[&objstore]).await?;
    let metrics_url = format!("{}/metrics", sidecar.http_url());

    // While S3 is unreachable: failed syncs and bucket operations are counted, nothing lands.
    let outage = std::time::Instant::now();
    wait_for("failures counted", Duration::from_secs(30), || async {
        let (_, metrics) = http_get(&metrics_url).await?;
        let syncs = metric_value(&metrics, "thanos_shipper_dir_sync_failures_total").unwrap_or(0.0);
        let operations = metric_sum(&metrics, "thanos_objstore_bucket_operation_failures_total");
        Ok((syncs >= 2.0 && operations >= 2.0).then_some(()))
    })
    .await?;
    // 3 s keeps CI quick; STRATA_TEST_S3_OUTAGE_SECS=120 replays the two-minute outage.
    let outage_secs = std::env::var("STRATA_TEST_S3_OUTAGE_SECS")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .unwrap_or(3);
    tokio::time::sleep(Duration::from_secs(outage_secs).saturating_sub(outage.elapsed())).await;
    let (_, metrics) = http_get(&metrics_url).await?;
    assert_eq!(
        metric_value(&metrics, "thanos_shipper_uploads_total"),
        Some(0.0)
    );

    proxy.set_up(true);
    let bucket = bucket(&yaml)?;
    wait_shipped(&bucket, &prometheus.blocks).await?;
    check_shipped(&bucket, &prometheus.blocks).await?;
    let (_, metrics) = http_get(&metrics_url).await?;
    assert_eq!(
        metric_value(&metrics, "thanos_shipper_uploads_total"),
        Some(prometheus.blocks.len() as f64),
        "no block skipped"
    );
    Ok(())
}
