//! Store gateway harness: turn promtool-written blocks into bucket blocks (a `thanos` section
//! with external labels in meta.json), put them into a FILESYSTEM directory or any bucket
//! (meta.json last, as Thanos uploads), start `strata-store-gateway` on them, and run
//! `strata-tools store series` against it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use strata_common::objstore::{Bucket, BucketConfig, BucketMetrics};

use crate::bins::{Service, StrataProcess};
use crate::prom::{run_checked, strata_binary};

/// Adds a `thanos` section with `external` labels to the meta.json of `block_dir`.
pub fn add_thanos_section(block_dir: &Path, external: &[(&str, &str)]) -> anyhow::Result<()> {
    let path = block_dir.join("meta.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let mut meta: serde_json::Value = serde_json::from_str(&text)?;
    let labels: serde_json::Map<String, serde_json::Value> = external
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
        .collect();
    let object = meta.as_object_mut().context("meta.json is not an object")?;
    object.insert(
        "thanos".to_owned(),
        serde_json::json!({
            "labels": labels,
            "downsample": {"resolution": 0},
            "source": "test",
        }),
    );
    std::fs::write(&path, serde_json::to_vec_pretty(&meta)?)?;
    Ok(())
}

/// Copies `blocks` into the FILESYSTEM bucket directory `bucket_dir` with `external` labels.
pub fn fill_filesystem_bucket(
    blocks: &[PathBuf],
    bucket_dir: &Path,
    external: &[(&str, &str)],
) -> anyhow::Result<()> {
    for block in blocks {
        let copy = crate::prom::copy_block(block, bucket_dir)?;
        add_thanos_section(&copy, external)?;
    }
    Ok(())
}

/// Uploads `blocks` (with `external` labels) into the bucket of `objstore_yaml`: chunks, index,
/// then meta.json.
pub async fn upload_blocks(
    objstore_yaml: &str,
    blocks: &[PathBuf],
    external: &[(&str, &str)],
) -> anyhow::Result<()> {
    let config = BucketConfig::parse(objstore_yaml)?;
    let bucket = Bucket::from_config_with_metrics(&config, BucketMetrics::unregistered())?;
    let staging = tempfile::tempdir()?;
    for block in blocks {
        let copy = crate::prom::copy_block(block, staging.path())?;
        add_thanos_section(&copy, external)?;
        let id = copy
            .file_name()
            .context("block without a name")?
            .to_string_lossy()
            .into_owned();
        let mut files = Vec::new();
        for entry in std::fs::read_dir(copy.join("chunks"))? {
            let entry = entry?;
            files.push(format!("chunks/{}", entry.file_name().to_string_lossy()));
        }
        files.sort();
        files.push("index".to_owned());
        files.push("meta.json".to_owned());
        for file in files {
            bucket
                .upload_file(&format!("{id}/{file}"), &copy.join(&file))
                .await
                .with_context(|| format!("upload {id}/{file}"))?;
        }
    }
    Ok(())
}

/// objstore.yml of a FILESYSTEM bucket in `dir`.
pub fn filesystem_objstore_yaml(dir: &Path) -> String {
    format!(
        "type: FILESYSTEM\nconfig:\n  directory: {}\n",
        dir.display()
    )
}

/// Starts the store gateway on the bucket of `objstore_yaml` with `--data-dir=data_dir` and
/// `extra` flags; waits until ready.
pub async fn start(
    objstore_yaml: &str,
    data_dir: &Path,
    extra: &[&str],
) -> anyhow::Result<StrataProcess> {
    let objstore = format!("--objstore.config={objstore_yaml}");
    let data = format!("--data-dir={}", data_dir.display());
    let mut args: Vec<&str> = vec![&objstore, &data];
    args.extend_from_slice(extra);
    let mut process = StrataProcess::spawn(Service::StoreGateway, true, &args).await?;
    process.wait_ready(Duration::from_secs(60)).await?;
    Ok(process)
}

/// `strata-tools store series --endpoint=<endpoint> --match=<selector>` (plus time bounds).
pub fn store_series(
    endpoint: &str,
    selector: &str,
    min_time: Option<i64>,
    max_time: Option<i64>,
) -> anyhow::Result<String> {
    let mut command = Command::new(strata_binary("strata-tools")?);
    command
        .args(["store", "series"])
        .arg(format!("--endpoint={endpoint}"))
        .arg(format!("--match={selector}"));
    if let Some(t) = min_time {
        command.arg(format!("--min-time={t}"));
    }
    if let Some(t) = max_time {
        command.arg(format!("--max-time={t}"));
    }
    run_checked(&mut command)
}

/// `promtool tsdb dump` output with `external` labels added to every series line (external
/// values win), re-sorted by series as the StoreAPI orders them.
pub fn with_external_labels(dump: &str, external: &[(&str, &str)]) -> anyhow::Result<String> {
    use strata_tsdb::labels::{Label, Labels};
    let mut lines: Vec<(Labels, usize, String)> = Vec::new();
    for (index, line) in dump.lines().enumerate() {
        // `{a="b", c="d"} <value> <timestamp>`: the label set ends at the last `} `.
        let split = line.rfind("} ").context("dump line without labels")?;
        let (labels_text, rest) = line.split_at(split + 1);
        let inner = labels_text
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .context("dump labels not braced")?;
        let matchers = strata_tsdb::labels::parse_selector(&format!("{{{inner}}}"))?;
        let mut labels: Vec<Label> = matchers
            .into_iter()
            .filter(|m| !external.iter().any(|(k, _)| *k == m.name))
            .map(|m| Label::new(m.name, m.value))
            .collect();
        labels.extend(external.iter().map(|(k, v)| Label::new(*k, *v)));
        let labels = Labels::new(labels);
        lines.push((labels.clone(), index, format!("{labels}{rest}")));
    }
    // Stable by original position: samples of a series stay in time order.
    lines.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut out = String::with_capacity(dump.len() + lines.len() * 32);
    for (_, _, line) in lines {
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}
