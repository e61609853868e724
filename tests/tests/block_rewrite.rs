//! `strata-tools block rewrite` writes a block that Prometheus 2.42 cannot tell from the source:
//! `promtool tsdb dump` prints the same samples, `promtool tsdb analyze` accepts it, and a real
//! Prometheus serving it answers range queries exactly as one serving the source block.

use std::process::Command;

use strata_tests::prom::{
    DataSpec, DumpOptions, PrometheusServer, copy_block, create_blocks, generate_openmetrics,
    promtool_analyze, promtool_dump, run_checked, strata_binary,
};

#[test]
fn rewritten_block_is_equivalent_for_promtool_and_prometheus() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let spec = DataSpec {
        series: 1000,
        duration_ms: 60 * 60 * 1000,
        start_ms: 1_700_006_400_000, // 2h-aligned: one block
        ..DataSpec::default()
    };
    let blocks = create_blocks(&generate_openmetrics(&spec), &tmp.path().join("data"))?;
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    let source_data = tmp.path().join("source");
    let source_block = copy_block(&blocks[0], &source_data)?;
    let rewritten_data = tmp.path().join("rewritten");

    let stdout = run_checked(
        Command::new(strata_binary("strata-tools")?)
            .args(["block", "rewrite"])
            .arg(&source_block)
            .arg(&rewritten_data),
    )?;
    let rewritten_block = std::path::PathBuf::from(stdout.trim());
    assert_eq!(rewritten_block.parent(), Some(rewritten_data.as_path()));
    assert_ne!(
        rewritten_block.file_name(),
        source_block.file_name(),
        "new ULID"
    );
    assert!(rewritten_block.join("meta.json").is_file());

    // Same samples for promtool.
    let want = promtool_dump(&source_data, &DumpOptions::default())?;
    let got = promtool_dump(&rewritten_data, &DumpOptions::default())?;
    assert!(
        want.lines().count() > 100_000,
        "{} samples",
        want.lines().count()
    );
    assert!(got == want, "promtool dump of the rewritten block differs");

    // promtool analyze reads symbols, postings and the postings offset table.
    let id = rewritten_block
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let report = promtool_analyze(&rewritten_data, &id)?;
    assert!(report.contains(&format!("Block ID: {id}")), "{report}");
    let source_id = source_block
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let source_report = promtool_analyze(&source_data, &source_id)?;
    let stats = |r: &str| -> Vec<String> {
        r.lines()
            .filter(|l| {
                l.starts_with("Series:")
                    || l.starts_with("Label names:")
                    || l.starts_with("Postings")
            })
            .map(str::to_string)
            .collect()
    };
    assert_eq!(stats(&report), stats(&source_report));
    assert_eq!(stats(&report).len(), 4, "{report}");

    // Byte-level: our encoder and index writer reproduce what Prometheus 2.42 wrote.
    for file in ["index", "chunks/000001", "tombstones"] {
        let a = std::fs::read(source_block.join(file))?;
        let b = std::fs::read(rewritten_block.join(file))?;
        assert!(a == b, "{file} differs ({} vs {} bytes)", a.len(), b.len());
    }

    // A real Prometheus answers the same on both.
    let source = PrometheusServer::start(&source_data, "")?;
    let rewritten = PrometheusServer::start(&rewritten_data, "")?;
    let start = spec.start_ms;
    let end = spec.start_ms + spec.duration_ms;
    let queries = [
        ("strata_test_requests_total", 60_000),
        (
            "sum by (code) (rate(strata_test_requests_total[5m]))",
            30_000,
        ),
        (
            "histogram_quantile(0.9, sum by (le) (rate(strata_test_latency_seconds_bucket[5m])))",
            60_000,
        ),
        (
            "max_over_time(strata_test_temperature{sensor=~\"s[01]\"}[10m])",
            120_000,
        ),
        ("count({__name__=~\"strata_test_.*\"})", 15_000),
        (
            "strata_test_temperature{instance!~\"host-000.*\"} > 50",
            300_000,
        ),
    ];
    for (query, step) in queries {
        let a = source.query_range(query, start, end, step)?;
        let b = rewritten.query_range(query, start, end, step)?;
        assert!(a.contains("\"status\":\"success\""), "{a}");
        assert!(a.len() > 200, "query {query} returned almost nothing: {a}");
        assert!(a == b, "query {query} differs");
    }
    Ok(())
}
