//! Runs Prometheus 2.42's promqltest conformance files and Strata's own regression files
//! against the engine. The 2.42 files live outside the repository, in
//! `<workspace>/../shared/promqltest/v2.42` or `$STRATA_PROMQLTEST_DIR`. When they are missing
//! the suite is skipped with a line saying how to run it (a fresh clone has no `../shared`);
//! with `CI=true` missing files fail the test.

use std::path::{Path, PathBuf};

use strata_promql::promqltest::{Summary, run_script};

fn run_dir(dir: &Path) -> Summary {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read promqltest directory {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .test files in {}", dir.display());
    let mut summary = Summary::default();
    for file in files {
        let content = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        let s = run_script(&file.display().to_string(), &content)
            .unwrap_or_else(|e| panic!("parse {}: {e}", file.display()));
        summary.merge(s);
    }
    for f in &summary.failures {
        eprintln!("FAIL {f}");
    }
    summary
}

#[test]
fn prometheus_2_42_conformance_suite() {
    let dir = std::env::var_os("STRATA_PROMQLTEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/promqltest/v2.42")
        });
    if !dir.is_dir() {
        let message = format!(
            "Prometheus 2.42's promqltest files not found at {}: to run the PromQL conformance \
             suite, put Prometheus v2.42.0's promql/testdata/*.test there or set \
             STRATA_PROMQLTEST_DIR",
            dir.display()
        );
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{message} (CI=true: missing files fail)"
        );
        println!("skipped: {message}");
        return;
    }
    let summary = run_dir(&dir);
    println!(
        "{} passed, {} failed",
        summary.passed,
        summary.failures.len()
    );
    assert_eq!(summary.failures.len(), 0, "conformance failures");
    assert_eq!(summary.passed, 566, "the 2.42 suite has 566 eval cases");
}

#[test]
fn strata_regression_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let summary = run_dir(&dir);
    assert_eq!(summary.failures.len(), 0, "regression failures");
    assert!(summary.passed > 0);
}
