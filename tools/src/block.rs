//! `strata-tools block ...`: work on local Prometheus TSDB block directories.
//!
//! - `dump`: every float sample in `promtool tsdb dump` format (byte-identical output).
//! - `rewrite`: read a block and write it anew with Strata's writer under a new ULID.
//! - `inspect`: meta.json, stats and label cardinalities.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use strata_tsdb::block::{Block, BlockWriter, SeriesChunk};
use strata_tsdb::chunkenc::{Chunk, Encoding, XorAppender};
use strata_tsdb::dump::SampleFormatter;
use strata_tsdb::labels::parse_selector;
use strata_tsdb::meta::BlockMeta;

/// promtool's default selector: every series.
const DEFAULT_MATCH: &str = "{__name__=~'(?s:.*)'}";

/// Block subcommands.
#[derive(clap::Subcommand)]
pub enum BlockCommand {
    /// Print every sample of a block, in the format of `promtool tsdb dump`.
    Dump {
        /// The block directory (`<data dir>/<ULID>`).
        block_dir: PathBuf,
        /// Series selector, e.g. `up{job="x"}`.
        #[arg(long = "match", default_value = DEFAULT_MATCH)]
        selector: String,
        /// Minimum timestamp (ms, inclusive).
        #[arg(long, default_value_t = i64::MIN, allow_negative_numbers = true)]
        min_time: i64,
        /// Maximum timestamp (ms, inclusive).
        #[arg(long, default_value_t = i64::MAX, allow_negative_numbers = true)]
        max_time: i64,
    },
    /// Read a block and write it again with Strata's writer (new ULID); prints the new block dir.
    Rewrite {
        /// The source block directory.
        src_block_dir: PathBuf,
        /// The data directory to write the new block into.
        out_data_dir: PathBuf,
        /// Set a Thanos external label on the new block (`NAME=VALUE`, repeatable), as a
        /// sidecar or `thanos tools bucket upload-blocks --label` would.
        #[arg(long = "label", value_parser = parse_external_label)]
        labels: Vec<(String, String)>,
    },
    /// Show a block's meta, stats and label cardinalities.
    Inspect {
        /// The block directory.
        block_dir: PathBuf,
        /// How many label names to list by cardinality.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

/// Run a block subcommand.
pub fn run(command: BlockCommand) -> anyhow::Result<ExitCode> {
    match command {
        BlockCommand::Dump {
            block_dir,
            selector,
            min_time,
            max_time,
        } => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
            dump(&block_dir, &selector, min_time, max_time, &mut out)?;
            out.flush().context("write output")?;
        }
        BlockCommand::Rewrite {
            src_block_dir,
            out_data_dir,
            labels,
        } => {
            let dir = rewrite(&src_block_dir, &out_data_dir, &labels)?;
            println!("{}", dir.display());
        }
        BlockCommand::Inspect { block_dir, limit } => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            inspect(&block_dir, limit, &mut out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Write the samples of the series matching `selector` in `[min_time, max_time]`.
pub fn dump(
    block_dir: &Path,
    selector: &str,
    min_time: i64,
    max_time: i64,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let matchers = parse_selector(selector)?;
    let block = Block::open(block_dir)?;
    for series in block.select(&matchers, min_time, max_time)? {
        let series = series?;
        let mut formatter = SampleFormatter::new(&series.labels);
        for sample in block.samples(&series, min_time, max_time) {
            let (t, v) = sample?;
            formatter.write(out, t, v).context("write output")?;
        }
    }
    Ok(())
}

/// Re-encode an XOR chunk with Strata's encoder; other encodings are copied unchanged.
fn reencode(chunk: Chunk) -> anyhow::Result<Chunk> {
    if chunk.encoding != Encoding::Xor {
        return Ok(chunk);
    }
    let mut appender = XorAppender::new();
    for sample in chunk.xor_iter()? {
        let (t, v) = sample?;
        appender.append(t, v)?;
    }
    Ok(Chunk::new(Encoding::Xor, appender.bytes()))
}

/// Parse `NAME=VALUE` for `--label`.
fn parse_external_label(arg: &str) -> Result<(String, String), String> {
    let (name, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("label {arg:?} is not of the form NAME=VALUE"))?;
    let value = value.trim_matches('"');
    let valid_name = !name.is_empty()
        && name
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if !valid_name {
        return Err(format!(
            "label name {name:?} is not a valid Prometheus label name"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

/// Rewrite `src_block_dir` into `out_data_dir` under a new ULID; returns the new block dir.
/// `external_labels`, when given, become the block's Thanos external labels.
pub fn rewrite(
    src_block_dir: &Path,
    out_data_dir: &Path,
    external_labels: &[(String, String)],
) -> anyhow::Result<PathBuf> {
    let block = Block::open(src_block_dir)?;
    let source = block.meta().clone();
    let ulid = strata_tsdb::block::new_ulid();
    let mut meta = BlockMeta {
        ulid,
        ..source.clone()
    };
    // A level-1 block names itself as its source; keep that true for the copy.
    for id in &mut meta.compaction.sources {
        if *id == source.ulid {
            *id = ulid;
        }
    }
    meta.compaction.sources.sort();
    if let Some(thanos) = meta.thanos.as_mut() {
        thanos.source = "bucket.rewrite".into();
        thanos.rewrites.push(strata_tsdb::meta::ThanosRewrite {
            sources: source.compaction.sources.clone(),
            ..Default::default()
        });
    }
    if !external_labels.is_empty() {
        let thanos = meta
            .thanos
            .get_or_insert_with(|| strata_tsdb::meta::ThanosMeta {
                source: "bucket.rewrite".into(),
                ..Default::default()
            });
        thanos.labels = external_labels.iter().cloned().collect();
    }
    let symbols = block
        .index()
        .symbols()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("read symbols of block {}", block.name()))?;
    std::fs::create_dir_all(out_data_dir)
        .with_context(|| format!("create {}", out_data_dir.display()))?;
    let mut writer = BlockWriter::create(out_data_dir, meta, symbols)?;
    let all = block
        .index()
        .all_postings()
        .with_context(|| format!("read all-postings list of index of block {}", block.name()))?;
    let mut chunks = Vec::new();
    for series_ref in all.iter() {
        let (labels, metas) = block.series(series_ref)?;
        chunks.clear();
        for meta in metas {
            let chunk = reencode(block.chunk(meta.chunk_ref)?).with_context(|| {
                format!(
                    "re-encode chunk of series {labels} of block {}",
                    block.name()
                )
            })?;
            chunks.push(SeriesChunk {
                min_time: meta.min_time,
                max_time: meta.max_time,
                chunk,
            });
        }
        writer.add_series(&labels, &chunks)?;
    }
    let (dir, _) = writer.finish()?;
    Ok(dir)
}

/// Print meta, stats and label cardinalities.
pub fn inspect(block_dir: &Path, limit: usize, out: &mut impl Write) -> anyhow::Result<()> {
    let block = Block::open(block_dir)?;
    let meta = block.meta();
    let index = block.index();
    writeln!(out, "Block ID: {}", meta.ulid)?;
    writeln!(
        out,
        "Time range: {} - {} ({} ms)",
        meta.min_time,
        meta.max_time,
        meta.max_time.saturating_sub(meta.min_time)
    )?;
    writeln!(
        out,
        "Compaction level: {} (sources: {})",
        meta.compaction.level,
        meta.compaction.sources.len()
    )?;
    if let Some(thanos) = &meta.thanos {
        let labels: Vec<String> = thanos
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={}", strata_tsdb::gofmt::quote(v)))
            .collect();
        writeln!(out, "External labels: {{{}}}", labels.join(", "))?;
        writeln!(out, "Resolution: {} ms", thanos.downsample.resolution)?;
        writeln!(out, "Source: {}", thanos.source)?;
    }
    writeln!(out, "Series: {}", meta.stats.num_series)?;
    writeln!(out, "Chunks: {}", meta.stats.num_chunks)?;
    writeln!(out, "Samples: {}", meta.stats.num_samples)?;
    writeln!(out, "Tombstones: {}", block.tombstones().num_intervals())?;
    writeln!(out, "Index size: {} bytes", index.size())?;
    writeln!(out, "Chunks size: {} bytes", block.chunk_reader().size())?;
    writeln!(out, "Symbols: {}", index.symbols().len())?;
    let names: Vec<&str> = index.label_names().collect();
    writeln!(out, "Label names: {}", names.len())?;
    writeln!(
        out,
        "Postings (unique label pairs): {}",
        index.num_label_pairs()
    )?;
    let mut cardinalities: Vec<(usize, &str)> = names
        .iter()
        .map(|name| (index.label_values(name).count(), *name))
        .collect();
    cardinalities.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    writeln!(out, "Highest cardinality labels:")?;
    for (count, name) in cardinalities.iter().take(limit) {
        writeln!(out, "{count} {name}")?;
    }
    Ok(())
}
