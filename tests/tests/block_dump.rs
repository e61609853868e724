//! `strata-tools block dump` prints exactly what `promtool tsdb dump` (Prometheus 2.42) prints for
//! the same block, on backfilled data with more than 1000 series (counters with resets, gauges
//! with NaN and extreme values, classic histograms, series that start and stop), with and
//! without `--match`, `--min-time` and `--max-time`.

use std::path::Path;
use std::process::Command;

use strata_tests::prom::{
    DataSpec, DumpOptions, copy_block, create_blocks, generate_openmetrics, promtool_dump,
    run_checked, strata_binary,
};

fn strata_dump(block_dir: &Path, options: &DumpOptions) -> anyhow::Result<String> {
    run_checked(
        Command::new(strata_binary("strata-tools")?)
            .args(["block", "dump"])
            .arg(block_dir)
            .args(options.args()),
    )
}

#[test]
fn block_dump_is_byte_identical_to_promtool() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let spec = DataSpec {
        series: 1200,
        ..DataSpec::default()
    };
    let blocks = create_blocks(&generate_openmetrics(&spec), &tmp.path().join("data"))?;
    // The data crosses a 2h boundary, so promtool writes two blocks.
    assert_eq!(blocks.len(), 2, "{blocks:?}");

    let middle = spec.start_ms + spec.duration_ms / 2;
    let cases = [
        DumpOptions::default(),
        DumpOptions {
            selector: Some(r#"strata_test_requests_total{code="500"}"#.into()),
            ..Default::default()
        },
        DumpOptions {
            selector: Some(
                r#"{__name__=~"strata_test_latency.*", le=~"0\\.[0-9]+|\\+Inf"}"#.into(),
            ),
            ..Default::default()
        },
        DumpOptions {
            selector: Some(r#"{__name__=~".+", job!="api", sensor!~"s[12]"}"#.into()),
            min_time: Some(middle - 600_000),
            ..Default::default()
        },
        DumpOptions {
            min_time: Some(spec.start_ms + 1_000_000),
            max_time: Some(middle),
            ..Default::default()
        },
    ];
    for (i, block) in blocks.iter().enumerate() {
        let single = tmp.path().join(format!("single-{i}"));
        copy_block(block, &single)?;
        for options in &cases {
            let want = promtool_dump(&single, options)?;
            let got = strata_dump(block, options)?;
            assert!(
                !want.is_empty() || options.selector.is_some(),
                "promtool printed nothing"
            );
            if got != want {
                let line = got
                    .lines()
                    .zip(want.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or(got.lines().count().min(want.lines().count()));
                panic!(
                    "dump of {} with {:?} differs at line {line}:\n strata:   {:?}\n promtool: {:?}\n({} vs {} lines)",
                    block.display(),
                    options.args(),
                    got.lines().nth(line),
                    want.lines().nth(line),
                    got.lines().count(),
                    want.lines().count()
                );
            }
        }
    }
    let full = promtool_dump(&tmp.path().join("single-0"), &DumpOptions::default())?;
    let series: std::collections::HashSet<&str> = full
        .lines()
        .filter_map(|l| l.rsplitn(3, ' ').nth(2))
        .collect();
    assert!(
        series.len() >= 1000,
        "only {} series in the first block",
        series.len()
    );
    assert!(full.contains(" NaN "), "NaN values are covered");
    assert!(full.contains("e+"), "exponent formatting is covered");
    Ok(())
}

#[test]
fn block_dump_reports_corrupt_index_with_block_and_file() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let spec = DataSpec {
        series: 50,
        duration_ms: 20 * 60 * 1000,
        ..DataSpec::default()
    };
    let blocks = create_blocks(&generate_openmetrics(&spec), &tmp.path().join("data"))?;
    let block = &blocks[0];
    let index = block.join("index");
    let mut bytes = std::fs::read(&index)?;
    // Flip a bit inside the first series entry (the TOC's second u64 is the series offset).
    let toc = bytes.len() - 52;
    let series = u64::from_be_bytes(bytes[toc + 8..toc + 16].try_into()?) as usize;
    bytes[series + 16 + 3] ^= 0x40;
    std::fs::write(&index, &bytes)?;
    let output = Command::new(strata_binary("strata-tools")?)
        .args(["block", "dump"])
        .arg(block)
        .output()?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let name = block.file_name().unwrap().to_string_lossy();
    assert!(
        stderr.contains(&*name) && stderr.contains("index"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    Ok(())
}
