//! `strata-tools bucket inspect|verify|mark|cleanup|downsample`, like `thanos tools bucket`
//! (reference/thanos.md 6.7). The bucket-level work is the compactor's own code
//! (`strata_compactor`), so a one-off run does exactly what the service does.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;
use strata_common::flags::ObjstoreFlags;
use strata_common::objstore::{Bucket, BucketConfig, BucketMetrics};
use strata_compactor::bucket_blocks::{download_block, list_blocks, read_meta, write_marker};
use strata_compactor::metrics::CompactorMetrics;
use strata_compactor::plan;
use strata_tsdb::meta::{
    BlockMeta, DELETION_MARK_FILENAME, DeletionMark, MARKER_VERSION_1, NO_COMPACT_MARK_FILENAME,
    NO_DOWNSAMPLE_MARK_FILENAME, NoCompactMark, NoCompactReason, NoDownsampleMark,
};
use ulid::Ulid;

use super::{format_duration_ms, format_time_ms, labels_text};

#[derive(clap::Args)]
pub struct InspectArgs {
    #[command(flatten)]
    objstore: ObjstoreFlags,
    /// Selects blocks by external label, `key="value"` (repeatable; all must match).
    #[arg(short = 'l', long = "selector")]
    selector: Vec<String>,
    /// Sort by these columns.
    #[arg(long = "sort-by", value_delimiter = ',', default_value = "FROM", value_parser = ["FROM", "UNTIL", "RANGE", "#SERIES", "#SAMPLES", "#CHUNKS", "COMP-LEVEL", "RESOLUTION"])]
    sort_by: Vec<String>,
    /// Output format.
    #[arg(long = "output", default_value = "table", value_parser = ["table", "csv", "tsv"])]
    output: String,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    objstore: ObjstoreFlags,
    /// Issues to look for: overlapped_blocks, index_known_issues, duplicated_compaction.
    #[arg(
        short = 'i',
        long = "issues",
        value_delimiter = ',',
        default_value = "overlapped_blocks,index_known_issues,duplicated_compaction",
        value_parser = ["overlapped_blocks", "index_known_issues", "duplicated_compaction"]
    )]
    issues: Vec<String>,
    /// Only these blocks (index checks download each block).
    #[arg(long = "id")]
    ids: Vec<Ulid>,
}

#[derive(clap::Args)]
pub struct MarkArgs {
    #[command(flatten)]
    objstore: ObjstoreFlags,
    /// Blocks to mark.
    #[arg(long = "id", required = true)]
    ids: Vec<Ulid>,
    /// The marker to write.
    #[arg(long = "marker", value_parser = [DELETION_MARK_FILENAME, NO_COMPACT_MARK_FILENAME, NO_DOWNSAMPLE_MARK_FILENAME])]
    marker: String,
    /// Why (stored in the marker).
    #[arg(long = "details", default_value = "")]
    details: String,
    /// Remove the marker instead.
    #[arg(long = "remove")]
    remove: bool,
}

#[derive(clap::Args)]
pub struct CompactorArgs {
    /// The compactor's flags (`--objstore.config`, `--delete-delay`, `--consistency-delay`,
    /// `--data-dir`, `--deduplication.replica-label`, ...), after `--`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    flags: Vec<String>,
}

fn bucket(flags: &ObjstoreFlags) -> Result<Bucket> {
    let config = BucketConfig::load(flags.config.as_deref(), flags.config_file.as_deref())?;
    Ok(Bucket::from_config_with_metrics(
        &config,
        BucketMetrics::unregistered(),
    )?)
}

/// The complete blocks with their marks.
async fn metas(bucket: &Bucket) -> Result<Vec<(BlockMeta, bool)>> {
    let mut out = Vec::new();
    for (ulid, objects) in list_blocks(bucket).await? {
        if !objects.has_meta {
            continue;
        }
        match read_meta(bucket, ulid).await {
            Ok(meta) => out.push((meta, objects.has_deletion_mark)),
            Err(err) => eprintln!("warning: block {ulid}: {err}"),
        }
    }
    Ok(out)
}

fn parse_selector(selector: &[String]) -> Result<Vec<(String, String)>> {
    selector
        .iter()
        .map(|s| {
            let (key, value) = s
                .split_once('=')
                .context("selector must be key=\"value\"")?;
            Ok((
                key.trim().to_owned(),
                value.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect()
}

pub async fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let bucket = bucket(&args.objstore)?;
    let selector = parse_selector(&args.selector)?;
    let mut rows: Vec<BlockMeta> = metas(&bucket)
        .await?
        .into_iter()
        .map(|(m, _)| m)
        .filter(|m| {
            let labels = m.thanos.as_ref().map(|t| &t.labels);
            selector
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .collect();
    for column in args.sort_by.iter().rev() {
        let key = |m: &BlockMeta| -> i64 {
            match column.as_str() {
                "UNTIL" => m.max_time,
                "RANGE" => m.max_time - m.min_time,
                "#SERIES" => m.stats.num_series as i64,
                "#SAMPLES" => m.stats.num_samples as i64,
                "#CHUNKS" => m.stats.num_chunks as i64,
                "COMP-LEVEL" => m.compaction.level,
                "RESOLUTION" => m.resolution(),
                _ => m.min_time,
            }
        };
        rows.sort_by_key(|m| key(m));
    }
    print!("{}", render_inspect(&rows, &args.output));
    Ok(ExitCode::SUCCESS)
}

/// Thanos's `tools bucket inspect` columns.
fn render_inspect(rows: &[BlockMeta], output: &str) -> String {
    let header = [
        "ULID",
        "FROM",
        "UNTIL",
        "RANGE",
        "UNTIL-DOWN",
        "#SERIES",
        "#SAMPLES",
        "#CHUNKS",
        "COMP-LEVEL",
        "COMP-FAILED",
        "LABELS",
        "RESOLUTION",
        "SOURCE",
    ];
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|m| {
            let thanos = m.thanos.clone().unwrap_or_default();
            // Time left until the block is due for downsampling (raw 40h, 5m 10d).
            let until_down = match m.resolution() {
                0 => strata_tsdb::downsample::RANGE_FOR_5M,
                300_000 => strata_tsdb::downsample::RANGE_FOR_1H,
                _ => 0,
            };
            let left = until_down - (m.max_time - m.min_time);
            vec![
                m.ulid.to_string(),
                format_time_ms(m.min_time),
                format_time_ms(m.max_time),
                format_duration_ms(m.max_time - m.min_time),
                if until_down == 0 || left <= 0 {
                    "-".to_owned()
                } else {
                    format_duration_ms(left)
                },
                m.stats.num_series.to_string(),
                m.stats.num_samples.to_string(),
                m.stats.num_chunks.to_string(),
                m.compaction.level.to_string(),
                m.compaction.failed.to_string(),
                labels_text(&thanos.labels),
                format_duration_ms(m.resolution()),
                thanos.source.clone(),
            ]
        })
        .collect();
    let mut out = String::new();
    match output {
        "csv" | "tsv" => {
            let sep = if output == "csv" { "," } else { "\t" };
            let quote = |s: &str| {
                if output == "csv" && (s.contains(',') || s.contains('"')) {
                    format!("\"{}\"", s.replace('"', "\"\""))
                } else {
                    s.to_owned()
                }
            };
            let _ = writeln!(out, "{}", header.join(sep));
            for line in &lines {
                let cells: Vec<String> = line.iter().map(|c| quote(c)).collect();
                let _ = writeln!(out, "{}", cells.join(sep));
            }
        }
        _ => {
            let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
            for line in &lines {
                for (width, cell) in widths.iter_mut().zip(line) {
                    *width = (*width).max(cell.chars().count());
                }
            }
            let row = |cells: Vec<&str>| {
                let padded: Vec<String> = cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!(" {c:<w$} "))
                    .collect();
                format!("|{}|", padded.join("|"))
            };
            let rule = format!(
                "|{}|",
                widths
                    .iter()
                    .map(|w| "-".repeat(w + 2))
                    .collect::<Vec<_>>()
                    .join("|")
            );
            let _ = writeln!(out, "{}", row(header.to_vec()));
            let _ = writeln!(out, "{rule}");
            for line in &lines {
                let _ = writeln!(out, "{}", row(line.iter().map(String::as_str).collect()));
            }
        }
    }
    out
}

pub async fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let bucket = bucket(&args.objstore)?;
    let all: Vec<BlockMeta> = metas(&bucket)
        .await?
        .into_iter()
        .filter(|(_, marked)| !marked)
        .map(|(m, _)| m)
        .collect();
    let selected = |m: &BlockMeta| args.ids.is_empty() || args.ids.contains(&m.ulid);
    let mut issues = 0usize;
    if args.issues.iter().any(|i| i == "overlapped_blocks") {
        for group in plan::groups(all.clone()) {
            let refs: Vec<&BlockMeta> = group.blocks.iter().collect();
            let overlapping = plan::select_all_overlapping(&refs);
            if !overlapping.is_empty() {
                issues += 1;
                let ids: Vec<String> = overlapping
                    .iter()
                    .map(|m| {
                        format!(
                            "{} [{}, {})",
                            m.ulid,
                            format_time_ms(m.min_time),
                            format_time_ms(m.max_time)
                        )
                    })
                    .collect();
                println!(
                    "overlapped_blocks: group {} {}: {}",
                    group.key,
                    labels_text(&group.labels),
                    ids.join(", ")
                );
            }
        }
    }
    if args.issues.iter().any(|i| i == "duplicated_compaction") {
        for ulid in plan::duplicates(&all) {
            issues += 1;
            println!("duplicated_compaction: block {ulid}: its sources are all in another block");
        }
    }
    if args.issues.iter().any(|i| i == "index_known_issues") {
        let dir = tempfile::tempdir()?;
        for meta in all.iter().filter(|m| selected(m)) {
            let path = download_block(&bucket, meta.ulid, dir.path(), 4).await?;
            let report = tokio::task::spawn_blocking(move || -> Result<_> {
                let block = strata_tsdb::Block::open(&path)?;
                let report = strata_tsdb::verify::verify_block(&block, true)?;
                std::fs::remove_dir_all(&path)?;
                Ok(report)
            })
            .await?;
            match report {
                Ok(report) => {
                    for problem in &report.problems {
                        issues += 1;
                        println!("index_known_issues: block {}: {problem}", meta.ulid);
                    }
                }
                Err(err) => {
                    issues += 1;
                    println!("index_known_issues: block {}: {err:#}", meta.ulid);
                }
            }
        }
    }
    println!("{issues} issue(s) found in {} block(s)", all.len());
    Ok(if issues == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub async fn mark(args: MarkArgs) -> Result<ExitCode> {
    let bucket = bucket(&args.objstore)?;
    let now = chrono::Utc::now().timestamp();
    for ulid in args.ids {
        if args.remove {
            bucket.delete(&format!("{ulid}/{}", args.marker)).await?;
            println!("removed {} of block {ulid}", args.marker);
            continue;
        }
        if !bucket.exists(&format!("{ulid}/meta.json")).await? {
            bail!("block {ulid} does not exist in the bucket");
        }
        match args.marker.as_str() {
            DELETION_MARK_FILENAME => {
                write_marker(
                    &bucket,
                    ulid,
                    &DeletionMark {
                        id: ulid,
                        version: MARKER_VERSION_1,
                        details: args.details.clone(),
                        deletion_time: now,
                    },
                )
                .await?
            }
            NO_COMPACT_MARK_FILENAME => {
                write_marker(
                    &bucket,
                    ulid,
                    &NoCompactMark {
                        id: ulid,
                        version: MARKER_VERSION_1,
                        details: args.details.clone(),
                        no_compact_time: now,
                        reason: NoCompactReason::Manual,
                    },
                )
                .await?
            }
            _ => {
                write_marker(
                    &bucket,
                    ulid,
                    &NoDownsampleMark {
                        id: ulid,
                        version: MARKER_VERSION_1,
                        details: args.details.clone(),
                        no_downsample_time: now,
                        reason: "manual".to_owned(),
                    },
                )
                .await?
            }
        }
        println!("marked block {ulid} with {}", args.marker);
    }
    Ok(ExitCode::SUCCESS)
}

/// Compactor flags about the long-running service, which a one-shot bucket command has no use
/// for: refused rather than ignored.
const SERVICE_ONLY_FLAGS: [&str; 8] = [
    "-w",
    "--wait",
    "--wait-interval",
    "--http-address",
    "--http-grace-period",
    "--web.disable",
    "--compact.progress-interval",
    "--compact.cleanup-interval",
];

fn worker(args: &CompactorArgs) -> Result<strata_compactor::worker::Worker> {
    for flag in &args.flags {
        let name = flag.split_once('=').map_or(flag.as_str(), |(name, _)| name);
        if SERVICE_ONLY_FLAGS.contains(&name) {
            bail!("{name} applies to the compactor service, not to a one-shot bucket command");
        }
    }
    let mut argv = vec!["strata-compactor".to_owned()];
    argv.extend(args.flags.iter().cloned());
    let config = strata_compactor::Config::try_parse_from(argv)?;
    let bucket_config = BucketConfig::load(
        config.objstore.config.as_deref(),
        config.objstore.config_file.as_deref(),
    )?;
    let bucket = Bucket::from_config_with_metrics(&bucket_config, BucketMetrics::unregistered())?;
    let worker = strata_compactor::build_worker(&config, bucket, CompactorMetrics::unregistered())?;
    Ok(worker)
}

/// Deletes blocks marked longer than `--delete-delay` ago and partial uploads older than it.
pub async fn cleanup(args: CompactorArgs) -> Result<ExitCode> {
    let worker = worker(&args)?;
    worker.cleanup().await?;
    println!("deleted {} block(s)", worker.metrics.blocks_cleaned.get());
    Ok(ExitCode::SUCCESS)
}

/// Downsamples every block due (two passes, as the compactor does).
pub async fn downsample(args: CompactorArgs) -> Result<ExitCode> {
    let worker = worker(&args)?;
    worker.downsample().await?;
    let done: u64 = ["0", "300000"]
        .iter()
        .map(|r| {
            worker
                .metrics
                .downsamples
                .get_or_create(&strata_compactor::metrics::ResolutionLabels {
                    resolution: (*r).to_owned(),
                })
                .get()
        })
        .sum();
    println!("downsampled {done} block(s)");
    Ok(ExitCode::SUCCESS)
}
