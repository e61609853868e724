//! `strata-tools bucket ls` end to end: the real binary against a FILESYSTEM bucket and against
//! the real S3 server, holding complete blocks, a partial upload, a block marked for deletion,
//! a corrupt meta.json and non-block objects; plus bad objstore configs, whose errors must name
//! the offending field and never print secrets.

use std::path::Path;
use std::process::{Command, Output};

use anyhow::{Context, Result};
use bytes::Bytes;
use serde_json::Value;
use strata_common::objstore::{Bucket, BucketConfig, BucketMetrics};
use strata_tests::s3::S3Server;

const RAW_BLOCK: &str = "01HQ8K1Z6R0000000000000001";
const DOWNSAMPLED_BLOCK: &str = "01HQ8K1Z6R0000000000000002";
const DELETED_BLOCK: &str = "01HQ8K1Z6R0000000000000003";
const PARTIAL_BLOCK: &str = "01HQ8K1Z6R0000000000000004";
const CORRUPT_BLOCK: &str = "01HQ8K1Z6R0000000000000005";

/// A sidecar-style raw block whose meta lists its files with sizes.
fn raw_meta() -> String {
    format!(
        r#"{{
	"ulid": "{RAW_BLOCK}",
	"minTime": 1700000000000,
	"maxTime": 1700007200000,
	"stats": {{"numSamples": 1200, "numSeries": 10, "numChunks": 20}},
	"compaction": {{"level": 1, "sources": ["{RAW_BLOCK}"]}},
	"version": 1,
	"thanos": {{
		"labels": {{"cluster": "eu-1", "replica": "a"}},
		"downsample": {{"resolution": 0}},
		"source": "sidecar",
		"files": [
			{{"rel_path": "chunks/000001", "size_bytes": 1000}},
			{{"rel_path": "index", "size_bytes": 234}},
			{{"rel_path": "meta.json"}}
		]
	}}
}}
"#
    )
}

/// A compactor-made 5m block without a file list (size comes from the listing).
fn downsampled_meta() -> String {
    format!(
        r#"{{
	"ulid": "{DOWNSAMPLED_BLOCK}",
	"minTime": 1699000000000,
	"maxTime": 1700209600000,
	"stats": {{"numSamples": 99}},
	"compaction": {{"level": 3, "sources": ["{RAW_BLOCK}"]}},
	"version": 1,
	"thanos": {{
		"labels": {{"cluster": "us-2"}},
		"downsample": {{"resolution": 300000}},
		"source": "compactor"
	}}
}}
"#
    )
}

fn plain_meta(ulid: &str) -> String {
    format!(
        r#"{{"ulid": "{ulid}", "minTime": 0, "maxTime": 7200000, "stats": {{}}, "compaction": {{"level": 1}}, "version": 1}}"#
    )
}

/// Fills a bucket with blocks and debris through the real Bucket API.
async fn populate(bucket: &Bucket) -> Result<()> {
    let put = |path: String, data: Vec<u8>| async move {
        bucket
            .put(&path, Bytes::from(data))
            .await
            .with_context(|| format!("put {path}"))
    };
    put(format!("{RAW_BLOCK}/chunks/000001"), vec![1; 1000]).await?;
    put(format!("{RAW_BLOCK}/index"), vec![2; 234]).await?;
    put(format!("{RAW_BLOCK}/meta.json"), raw_meta().into_bytes()).await?;

    put(format!("{DOWNSAMPLED_BLOCK}/chunks/000001"), vec![3; 4096]).await?;
    put(format!("{DOWNSAMPLED_BLOCK}/index"), vec![4; 100]).await?;
    put(
        format!("{DOWNSAMPLED_BLOCK}/meta.json"),
        downsampled_meta().into_bytes(),
    )
    .await?;

    put(format!("{DELETED_BLOCK}/index"), vec![5; 10]).await?;
    put(
        format!("{DELETED_BLOCK}/meta.json"),
        plain_meta(DELETED_BLOCK).into_bytes(),
    )
    .await?;
    put(
        format!("{DELETED_BLOCK}/deletion-mark.json"),
        format!(r#"{{"id": "{DELETED_BLOCK}", "version": 1, "deletion_time": 1700000000}}"#)
            .into_bytes(),
    )
    .await?;

    // meta.json is uploaded last, so this one is still being uploaded.
    put(format!("{PARTIAL_BLOCK}/chunks/000001"), vec![6; 10]).await?;
    put(format!("{CORRUPT_BLOCK}/meta.json"), b"{not json".to_vec()).await?;
    put("debug/metas/whatever.json".to_string(), b"{}".to_vec()).await?;
    put(
        "not-a-block/meta.json".to_string(),
        plain_meta(RAW_BLOCK).into_bytes(),
    )
    .await?;
    Ok(())
}

fn strata_tools(args: &[&str]) -> Result<Output> {
    let binary = strata_tests::bins::binary("strata-tools")?;
    Command::new(&binary)
        .args(args)
        .output()
        .with_context(|| format!("run {}", binary.display()))
}

fn ls_json(config_flag: &str) -> Result<(Vec<Value>, String)> {
    let output = strata_tools(&["bucket", "ls", config_flag, "-o", "json"])?;
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    anyhow::ensure!(output.status.success(), "bucket ls failed: {stderr}");
    let blocks: Vec<Value> = serde_json::from_slice(&output.stdout).context("parse ls JSON")?;
    Ok((blocks, stderr))
}

fn check_listing(blocks: &[Value], stderr: &str, downsampled_size: u64) {
    let ulids: Vec<&str> = blocks.iter().filter_map(|b| b["ulid"].as_str()).collect();
    assert_eq!(
        ulids,
        vec![RAW_BLOCK, DOWNSAMPLED_BLOCK, DELETED_BLOCK],
        "stderr: {stderr}"
    );

    let raw = &blocks[0];
    assert_eq!(raw["minTime"], 1_700_000_000_000i64);
    assert_eq!(raw["maxTime"], 1_700_007_200_000i64);
    assert_eq!(raw["resolution"], 0);
    assert_eq!(raw["level"], 1);
    assert_eq!(raw["labels"]["cluster"], "eu-1");
    assert_eq!(raw["labels"]["replica"], "a");
    assert_eq!(raw["sizeBytes"], 1234, "size from thanos.files");
    assert_eq!(raw["sizeSource"], "meta");
    assert_eq!(raw["numSeries"], 10);
    assert_eq!(raw["markedForDeletion"], false);

    let downsampled = &blocks[1];
    assert_eq!(downsampled["resolution"], 300_000);
    assert_eq!(downsampled["level"], 3);
    assert_eq!(downsampled["labels"]["cluster"], "us-2");
    assert_eq!(
        downsampled["sizeBytes"], downsampled_size,
        "size summed from the listing"
    );
    assert_eq!(downsampled["sizeSource"], "listing");

    assert_eq!(blocks[2]["markedForDeletion"], true);
    assert_eq!(blocks[2]["labels"], serde_json::json!({}));

    assert!(
        stderr.contains(PARTIAL_BLOCK) && stderr.contains("partial"),
        "{stderr}"
    );
    assert!(
        stderr.contains(CORRUPT_BLOCK),
        "corrupt meta reported: {stderr}"
    );
    assert!(
        !stderr.contains("not-a-block") && !stderr.contains("debug"),
        "{stderr}"
    );
}

#[tokio::test]
async fn objstore_bucket_ls_filesystem() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let bucket_dir = dir.path().join("bucket");
    let yaml = format!(
        "type: FILESYSTEM\nconfig:\n  directory: {}\n",
        bucket_dir.display()
    );
    let config_file = dir.path().join("objstore.yml");
    std::fs::write(&config_file, &yaml)?;
    let bucket = Bucket::from_config_with_metrics(
        &BucketConfig::parse(&yaml)?,
        BucketMetrics::unregistered(),
    )?;
    populate(&bucket).await?;

    let flag = format!("--objstore.config-file={}", config_file.display());
    let (blocks, stderr) = ls_json(&flag)?;
    let downsampled_size = 4096 + 100 + downsampled_meta().len() as u64;
    check_listing(&blocks, &stderr, downsampled_size);

    // Inline config gives the same answer.
    let (inline_blocks, _) = ls_json(&format!("--objstore.config={yaml}"))?;
    assert_eq!(inline_blocks, blocks);

    let output = strata_tools(&["bucket", "ls", &flag, "--exclude-delete"])?;
    assert!(output.status.success());
    let table = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "header and two blocks:\n{table}");
    for column in [
        "ULID",
        "FROM",
        "UNTIL",
        "RESOLUTION",
        "LEVEL",
        "SIZE",
        "LABELS",
    ] {
        assert!(lines[0].contains(column), "{table}");
    }
    assert!(lines[1].starts_with(RAW_BLOCK), "{table}");
    assert!(lines[1].contains("2023-11-14T22:13:20.000Z"), "{table}");
    assert!(lines[1].contains("1.2KiB"), "{table}");
    assert!(
        lines[1].contains(r#"{cluster="eu-1", replica="a"}"#),
        "{table}"
    );
    assert!(
        lines[2].starts_with(DOWNSAMPLED_BLOCK) && lines[2].contains("5m"),
        "{table}"
    );
    assert!(!table.contains(DELETED_BLOCK), "{table}");

    // An empty bucket lists nothing, successfully.
    let empty_dir = dir.path().join("empty");
    let (none, _) = ls_json(&format!(
        "--objstore.config=type: FILESYSTEM\nconfig:\n  directory: {}\n",
        empty_dir.display()
    ))?;
    assert!(none.is_empty());
    Ok(())
}

#[tokio::test]
async fn objstore_bucket_ls_s3() -> Result<()> {
    let server = S3Server::start().await?;
    let dir = tempfile::tempdir()?;
    // A prefix keeps this test's blocks apart from anything else in a shared external bucket.
    let prefix = format!("ls-test-{}", std::process::id());
    let yaml = format!("{}prefix: {prefix}\n", server.objstore_yaml());
    let config_file = dir.path().join("objstore.yml");
    std::fs::write(&config_file, &yaml)?;
    let bucket = Bucket::from_config_with_metrics(
        &BucketConfig::parse(&yaml)?,
        BucketMetrics::unregistered(),
    )?;
    populate(&bucket).await?;

    let (blocks, stderr) = ls_json(&format!("--objstore.config-file={}", config_file.display()))?;
    let downsampled_size = 4096 + 100 + downsampled_meta().len() as u64;
    check_listing(&blocks, &stderr, downsampled_size);

    // Wrong credentials: a clear error, and the secret is not printed.
    let wrong_secret = "NOTTHERIGHTSECRET0123456789";
    let bad = format!(
        "{}prefix: {prefix}\n",
        server.objstore_yaml_for(&server.access_key, wrong_secret, "")
    );
    let output = strata_tools(&["bucket", "ls", &format!("--objstore.config={bad}")])?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "wrong credentials must fail");
    assert!(stderr.contains("access denied"), "{stderr}");
    assert!(!stderr.contains(wrong_secret), "secret leaked: {stderr}");

    for object in bucket.list_recursive("").await? {
        bucket.delete(&object.path).await?;
    }
    Ok(())
}

fn expect_config_error(config: &str, needles: &[&str]) -> Result<()> {
    let output = strata_tools(&["bucket", "ls", &format!("--objstore.config={config}")])?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "config {config:?} must be rejected"
    );
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} missing from: {stderr}");
    }
    Ok(())
}

#[test]
fn objstore_bucket_ls_bad_configs_name_the_field() -> Result<()> {
    expect_config_error(
        "type: S3\nconfig:\n  bukcet: blocks\n  endpoint: 127.0.0.1:1\n",
        &["bukcet"],
    )?;
    expect_config_error(
        "type: S3\nconfig:\n  endpoint: 127.0.0.1:1\n",
        &["config.bucket"],
    )?;
    expect_config_error(
        "type: S3\nconfig:\n  bucket: b\n  insecure: sometimes\n",
        &["config.insecure"],
    )?;
    expect_config_error(
        "type: S3\nconfig:\n  bucket: b\n  part_size: big\n",
        &["config.part_size"],
    )?;
    expect_config_error("type: DROPBOX\nconfig: {}\n", &["`type`", "DROPBOX"])?;
    expect_config_error("type: FILESYSTEM\nconfig: {}\n", &["config.directory"])?;
    // A secret in a rejected config is not echoed back.
    expect_config_error(
        "type: S3\nconfig:\n  bucket: b\n  access_key: AK\n  secret_key: TOPSECRETVALUE\n  typo_field: 1\n",
        &["typo_field"],
    )?;
    let output = strata_tools(&[
        "bucket",
        "ls",
        "--objstore.config=type: S3\nconfig:\n  bucket: b\n  access_key: AK\n  secret_key: TOPSECRETVALUE\n  typo_field: 1\n",
    ])?;
    assert!(!String::from_utf8_lossy(&output.stderr).contains("TOPSECRETVALUE"));

    let missing = Path::new("/nonexistent/objstore.yml");
    let output = strata_tools(&[
        "bucket",
        "ls",
        &format!("--objstore.config-file={}", missing.display()),
    ])?;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/objstore.yml"));

    let output = strata_tools(&["bucket", "ls"])?;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--objstore.config"));
    Ok(())
}
