//! `strata-tools bucket ...`: look at the blocks in an object-storage bucket, like
//! `thanos tools bucket`.
//!
//! `ls` lists complete blocks: top-level directories whose name is a ULID and that hold a
//! `meta.json` (reference/thanos.md section 2: meta.json is uploaded last, so a ULID directory
//! without it is a partial upload and is skipped; so is anything whose name is not a ULID, such
//! as `debug/`). A meta.json that cannot be parsed is reported on stderr and skipped, so one bad
//! block does not hide the others.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use strata_common::flags::ObjstoreFlags;
use strata_common::objstore::{Bucket, BucketConfig, BucketMetrics};
use strata_tsdb::meta::{BlockMeta, DELETION_MARK_FILENAME, META_FILENAME};

mod ops;

#[derive(clap::Subcommand)]
pub enum BucketCommand {
    /// List the blocks in the bucket: ULID, time range, resolution, level, size, external labels.
    Ls(LsArgs),
    /// Table of the blocks with their stats, like `thanos tools bucket inspect`.
    Inspect(ops::InspectArgs),
    /// Look for overlapping blocks, index problems and duplicate series, duplicated compactions.
    Verify(ops::VerifyArgs),
    /// Write (or with --remove delete) a deletion, no-compact or no-downsample marker.
    Mark(ops::MarkArgs),
    /// Delete blocks marked longer than --delete-delay ago and old partial uploads
    /// (compactor flags after `--`).
    Cleanup(ops::CompactorArgs),
    /// Downsample every block that is due, once (compactor flags after `--`).
    Downsample(ops::CompactorArgs),
}

#[derive(clap::Args)]
pub struct LsArgs {
    #[command(flatten)]
    objstore: ObjstoreFlags,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    /// Leave out blocks marked for deletion (with a deletion-mark.json).
    #[arg(long = "exclude-delete")]
    exclude_delete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    Table,
    Json,
}

pub async fn run(command: BucketCommand) -> Result<ExitCode> {
    match command {
        BucketCommand::Ls(args) => ls(args).await,
        BucketCommand::Inspect(args) => ops::inspect(args).await,
        BucketCommand::Verify(args) => ops::verify(args).await,
        BucketCommand::Mark(args) => ops::mark(args).await,
        BucketCommand::Cleanup(args) => ops::cleanup(args).await,
        BucketCommand::Downsample(args) => ops::downsample(args).await,
    }
}

/// What `ls` shows about one block.
#[derive(Debug, Clone, PartialEq)]
struct BlockRow {
    meta: BlockMeta,
    size_bytes: u64,
    /// Where the size came from: "meta" (thanos.files) or "listing".
    size_source: &'static str,
    marked_for_deletion: bool,
}

async fn ls(args: LsArgs) -> Result<ExitCode> {
    let config = BucketConfig::load(
        args.objstore.config.as_deref(),
        args.objstore.config_file.as_deref(),
    )?;
    let bucket = Bucket::from_config_with_metrics(&config, BucketMetrics::unregistered())?;
    let listing = list_blocks(&bucket, args.exclude_delete).await?;
    for warning in &listing.warnings {
        eprintln!("warning: {warning}");
    }
    let text = match args.output {
        OutputFormat::Table => render_table(&listing.blocks),
        OutputFormat::Json => render_json(&listing.blocks)?,
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Default)]
struct BlockListing {
    blocks: Vec<BlockRow>,
    warnings: Vec<String>,
}

/// Reads every complete block's meta.json (concurrently; the bucket bounds the requests).
async fn list_blocks(bucket: &Bucket, exclude_delete: bool) -> Result<BlockListing> {
    let top = bucket
        .list_with_delimiter("")
        .await
        .context("list the top level of the bucket")?;
    let mut tasks = tokio::task::JoinSet::new();
    for dir in top.prefixes {
        if !is_ulid(&dir) {
            continue;
        }
        let bucket = bucket.clone();
        tasks.spawn(async move {
            let outcome = read_block(&bucket, &dir, exclude_delete).await;
            (dir, outcome)
        });
    }
    let mut listing = BlockListing::default();
    let mut partial = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (dir, outcome) = joined.context("block listing task")?;
        match outcome {
            Ok(BlockOutcome::Block(row)) => listing.blocks.push(*row),
            Ok(BlockOutcome::Partial) => partial.push(dir),
            Ok(BlockOutcome::Excluded) => {}
            Err(error) => listing
                .warnings
                .push(format!("skip block {dir}: {error:#}")),
        }
    }
    if !partial.is_empty() {
        partial.sort();
        listing.warnings.push(format!(
            "skipped {} partial upload(s) without {META_FILENAME}: {}",
            partial.len(),
            partial.join(", ")
        ));
    }
    listing.blocks.sort_by_key(|block| block.meta.ulid);
    listing.warnings.sort();
    Ok(listing)
}

enum BlockOutcome {
    Block(Box<BlockRow>),
    Partial,
    Excluded,
}

async fn read_block(bucket: &Bucket, dir: &str, exclude_delete: bool) -> Result<BlockOutcome> {
    let meta_path = format!("{dir}/{META_FILENAME}");
    let bytes = match bucket.get(&meta_path).await {
        Ok(bytes) => bytes,
        Err(error) if error.is_not_found() => return Ok(BlockOutcome::Partial),
        Err(error) => return Err(error.into()),
    };
    let meta = BlockMeta::from_json(&bytes).with_context(|| format!("parse {meta_path}"))?;
    if !meta.ulid.to_string().eq_ignore_ascii_case(dir) {
        anyhow::bail!("{meta_path} names block {} instead", meta.ulid);
    }
    let marked_for_deletion = bucket
        .exists(&format!("{dir}/{DELETION_MARK_FILENAME}"))
        .await?;
    if exclude_delete && marked_for_deletion {
        return Ok(BlockOutcome::Excluded);
    }
    let files = meta
        .thanos
        .as_ref()
        .map(|t| t.files.as_slice())
        .unwrap_or(&[]);
    let (size_bytes, size_source) = if files.iter().any(|file| file.size_bytes > 0) {
        let total = files
            .iter()
            .map(|file| u64::try_from(file.size_bytes).unwrap_or(0))
            .sum();
        (total, "meta")
    } else {
        // Old blocks (and Prometheus's own) have no file list: add up what is there.
        let objects = bucket.list_recursive(dir).await?;
        (objects.iter().map(|object| object.size).sum(), "listing")
    };
    Ok(BlockOutcome::Block(Box::new(BlockRow {
        meta,
        size_bytes,
        size_source,
        marked_for_deletion,
    })))
}

/// A ULID in its canonical text form: 26 Crockford base-32 characters, the first at most '7'
/// (128 bits). Case-insensitive, as ULID parsers are.
fn is_ulid(name: &str) -> bool {
    const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    name.len() == 26
        && name
            .chars()
            .all(|c| ALPHABET.contains(c.to_ascii_uppercase()))
        && name.chars().next().is_some_and(|c| c <= '7')
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    let body: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect();
    format!("{{{}}}", body.join(", "))
}

fn render_table(blocks: &[BlockRow]) -> String {
    let header = [
        "ULID",
        "FROM",
        "UNTIL",
        "RANGE",
        "RESOLUTION",
        "LEVEL",
        "SIZE",
        "LABELS",
    ];
    let rows: Vec<[String; 8]> = blocks
        .iter()
        .map(|block| {
            let meta = &block.meta;
            let labels = meta
                .thanos
                .as_ref()
                .map(|t| labels_text(&t.labels))
                .unwrap_or_else(|| "{}".to_string());
            let ulid = if block.marked_for_deletion {
                format!("{} (deletion marked)", meta.ulid)
            } else {
                meta.ulid.to_string()
            };
            [
                ulid,
                format_time_ms(meta.min_time),
                format_time_ms(meta.max_time),
                format_duration_ms(meta.max_time.saturating_sub(meta.min_time)),
                format_duration_ms(meta.resolution()),
                meta.compaction.level.to_string(),
                format_bytes(block.size_bytes),
                labels,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row.iter()) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths.iter()).enumerate() {
            if index + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

fn render_json(blocks: &[BlockRow]) -> Result<String> {
    let values: Vec<serde_json::Value> = blocks
        .iter()
        .map(|block| {
            let meta = &block.meta;
            let thanos = meta.thanos.as_ref();
            json!({
                "ulid": meta.ulid.to_string(),
                "minTime": meta.min_time,
                "maxTime": meta.max_time,
                "resolution": meta.resolution(),
                "level": meta.compaction.level,
                "labels": thanos.map(|t| t.labels.clone()).unwrap_or_default(),
                "source": thanos.map(|t| t.source.clone()).unwrap_or_default(),
                "sizeBytes": block.size_bytes,
                "sizeSource": block.size_source,
                "numSeries": meta.stats.num_series,
                "numSamples": meta.stats.num_samples,
                "numChunks": meta.stats.num_chunks,
                "markedForDeletion": block.marked_for_deletion,
            })
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&values).context("encode JSON")?;
    text.push('\n');
    Ok(text)
}

/// RFC 3339 UTC with milliseconds, from Unix milliseconds (proleptic Gregorian calendar).
fn format_time_ms(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// A duration in milliseconds as `1d2h30m`, `5m`, `0s`.
fn format_duration_ms(ms: i64) -> String {
    if ms <= 0 {
        return "0s".to_string();
    }
    let mut rest = ms;
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if rest >= size {
            let _ = write!(out, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    out
}

fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulids_are_recognised() {
        assert!(is_ulid("01H8Z8MZ5T4Q4G3W6Y7X9ABCDE"));
        assert!(is_ulid("01h8z8mz5t4q4g3w6y7x9abcde"));
        assert!(!is_ulid("debug"));
        assert!(!is_ulid("01H8Z8MZ5T4Q4G3W6Y7X9ABCD")); // 25 characters
        assert!(!is_ulid("01H8Z8MZ5T4Q4G3W6Y7X9ABCDI")); // I is not Crockford
        assert!(!is_ulid("81H8Z8MZ5T4Q4G3W6Y7X9ABCDE")); // more than 128 bits
    }

    #[test]
    fn times_format_as_rfc3339() {
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_time_ms(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(format_time_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_time_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn durations_and_sizes_format_compactly() {
        assert_eq!(format_duration_ms(7_200_000), "2h");
        assert_eq!(format_duration_ms(300_000), "5m");
        assert_eq!(format_duration_ms(0), "0s");
        assert_eq!(format_duration_ms(90_061_001), "1d1h1m1s1ms");
        assert_eq!(format_bytes(512), "512B");
        assert_eq!(format_bytes(1536), "1.5KiB");
        assert_eq!(format_bytes(5 * 1024 * 1024 * 1024), "5.0GiB");
    }
}
