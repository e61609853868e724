//! `strata-tools promql ...`: PromQL utilities. `promql test FILE...` runs Prometheus
//! promqltest-format files against the Strata engine over an in-memory store, prints one line
//! per failing eval case and a closing `N passed, M failed` line, and exits 1 on any failure.
//!
//! Without FILE arguments it runs every `*.test` file in `$STRATA_PROMQLTEST_DIR`, or else in
//! `../shared/promqltest/v2.42` (Prometheus 2.42's conformance files, relative to the workspace).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use strata_promql::promqltest;

#[derive(clap::Subcommand)]
pub enum PromqlCommand {
    /// Run promqltest files (load / clear / eval instant / eval_fail / eval_ordered).
    Test {
        /// Test files; default: every *.test in $STRATA_PROMQLTEST_DIR or ../shared/promqltest/v2.42.
        files: Vec<PathBuf>,
    },
}

pub fn run(command: PromqlCommand) -> anyhow::Result<ExitCode> {
    match command {
        PromqlCommand::Test { files } => run_tests(files),
    }
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
