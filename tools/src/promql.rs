//! `strata-tools promql ...`: PromQL utilities. `promql test FILE...` runs Prometheus
//! promqltest-format files against the Strata engine over an in-memory store, prints one line
//! per failing eval case and a closing `N passed, M failed` line, and exits 1 on any failure.
//!
//! Without FILE arguments it runs every `*.test` file in `$STRATA_PROMQLTEST_DIR`, or else in
//! `../shared/promqltest/v2.42` (Prometheus 2.42's conformance files, relative to the workspace).
//!
//! `promql query --data-dir DIR EXPR` evaluates PromQL offline over the blocks in a directory (a
//! Prometheus data dir or a FILESYSTEM bucket), with each block's Thanos external labels, and
//! prints the result like `promtool query`.

mod local_blocks;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use strata_promql::{Engine, EngineOptions, Value, promqltest};

use local_blocks::LocalBlocks;

#[derive(clap::Subcommand)]
pub enum PromqlCommand {
    /// Run promqltest files (load / clear / eval instant / eval_fail / eval_ordered).
    Test {
        /// Test files; default: every *.test in $STRATA_PROMQLTEST_DIR or ../shared/promqltest/v2.42.
        files: Vec<PathBuf>,
    },
    /// Evaluate a PromQL expression over the blocks in a local directory.
    Query {
        /// Directory holding block directories (a Prometheus data dir or a FILESYSTEM bucket).
        #[arg(long)]
        data_dir: PathBuf,
        /// Evaluation time (Unix seconds, may be fractional) for an instant query; default now.
        #[arg(long, conflicts_with_all = ["start", "end"])]
        time: Option<f64>,
        /// Start of a range query (Unix seconds).
        #[arg(long, requires_all = ["end"])]
        start: Option<f64>,
        /// End of a range query (Unix seconds).
        #[arg(long, requires_all = ["start"])]
        end: Option<f64>,
        /// Step of a range query in seconds.
        #[arg(long, default_value_t = 60.0)]
        step: f64,
        /// How far back an instant selector looks for a sample, in seconds.
        #[arg(long, default_value_t = 300.0)]
        lookback_delta: f64,
        /// The PromQL expression.
        expr: String,
    },
}

pub fn run(command: PromqlCommand) -> anyhow::Result<ExitCode> {
    match command {
        PromqlCommand::Test { files } => run_tests(files),
        PromqlCommand::Query {
            data_dir,
            time,
            start,
            end,
            step,
            lookback_delta,
            expr,
        } => {
            let range = start.zip(end).map(|(start, end)| (start, end, step));
            query(&data_dir, time, range, lookback_delta, &expr)
        }
    }
}

fn seconds_to_ms(seconds: f64, what: &str) -> anyhow::Result<i64> {
    if !seconds.is_finite() || seconds.abs() > 9.2e15 {
        anyhow::bail!("{what} {seconds} is not a valid time in seconds");
    }
    Ok((seconds * 1000.0).round() as i64)
}

fn query(
    data_dir: &Path,
    time: Option<f64>,
    range: Option<(f64, f64, f64)>,
    lookback_delta: f64,
    expr: &str,
) -> anyhow::Result<ExitCode> {
    if !(lookback_delta.is_finite() && lookback_delta > 0.0) {
        anyhow::bail!("--lookback-delta must be a positive number of seconds");
    }
    let blocks = LocalBlocks::open(data_dir)?;
    if blocks.len() == 0 {
        anyhow::bail!("no blocks under {}", data_dir.display());
    }
    let engine = Engine::new(EngineOptions {
        lookback_delta: std::time::Duration::from_secs_f64(lookback_delta),
        ..EngineOptions::default()
    });
    let result = match range {
        Some((start, end, step)) => {
            let step_ms = seconds_to_ms(step, "--step")?;
            if step_ms <= 0 {
                anyhow::bail!("--step must be positive");
            }
            engine.range_query(
                &blocks,
                expr,
                seconds_to_ms(start, "--start")?,
                seconds_to_ms(end, "--end")?,
                step_ms,
            )?
        }
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default();
            engine.instant_query(&blocks, expr, seconds_to_ms(time.unwrap_or(now), "--time")?)?
        }
    };
    print!("{}", format_value(&result.value));
    Ok(ExitCode::SUCCESS)
}

/// `promtool query` text output: `labels => value @[seconds]`, one line per sample, and for
/// matrices one line per series with all its points.
fn format_value(value: &Value) -> String {
    use strata_promql::format::go_float_g;
    let seconds = |t: i64| format!("{:.3}", t as f64 / 1000.0);
    let mut out = String::new();
    match value {
        Value::Scalar { t, v } => {
            out.push_str(&format!("scalar: {} @[{}]\n", go_float_g(*v), seconds(*t)))
        }
        Value::String { t, v } => out.push_str(&format!("string: {v:?} @[{}]\n", seconds(*t))),
        Value::Vector(samples) => {
            for sample in samples {
                out.push_str(&format!(
                    "{} => {} @[{}]\n",
                    sample.labels,
                    go_float_g(sample.v),
                    seconds(sample.t)
                ));
            }
        }
        Value::Matrix(series) => {
            for s in series {
                let points: Vec<String> = s
                    .points
                    .iter()
                    .map(|p| format!("{} @[{}]", go_float_g(p.v), seconds(p.t)))
                    .collect();
                out.push_str(&format!("{} =>\n{}\n", s.labels, points.join("\n")));
            }
        }
    }
    out
}

fn default_files() -> anyhow::Result<Vec<PathBuf>> {
    let dir = std::env::var_os("STRATA_PROMQLTEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/promqltest/v2.42"));
    test_files_in(&dir)
}

fn test_files_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("read promqltest directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    Ok(files)
}

fn run_tests(files: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    let files = if files.is_empty() {
        default_files()?
    } else {
        files
    };
    let mut summary = promqltest::Summary::default();
    let mut broken_files = 0usize;
    for file in &files {
        let content = std::fs::read_to_string(file)
            .with_context(|| format!("read test file {}", file.display()))?;
        match promqltest::run_script(&file.display().to_string(), &content) {
            Ok(s) => {
                for failure in &s.failures {
                    println!("FAIL {failure}");
                }
                summary.merge(s);
            }
            Err(err) => {
                println!("FAIL {}: {err}", file.display());
                broken_files += 1;
            }
        }
    }
    let failed = summary.failures.len() + broken_files;
    println!("{} passed, {} failed", summary.passed, failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
