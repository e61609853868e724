//! The store gateway serves promtool-written blocks (Prometheus 2.42) from a FILESYSTEM bucket
//! and from a real S3 server (moto, authentication on): `strata-tools store series` prints,
//! for several selectors and time ranges, exactly what `promtool tsdb dump --match` prints for
//! the same blocks plus the external labels. A block with a bit-flipped index is skipped and
//! counted; the others keep being served.

use std::path::{Path, PathBuf};

use strata_tests::prom::{
    DataSpec, DumpOptions, create_blocks, generate_openmetrics, promtool_dump,
};
use strata_tests::s3::S3Server;
use strata_tests::store_gateway::{
    filesystem_objstore_yaml, fill_filesystem_bucket, start, store_series, upload_blocks,
    with_external_labels,
};

const EXTERNAL: [(&str, &str); 2] = [("cluster", "eu1"), ("replica", "a")];

/// 1,500 series over 6 h keeps CI quick; `STRATA_TEST_SERIES=10000 STRATA_TEST_HOURS=24` runs
/// the issue's full-size data set through the same checks.
fn spec() -> DataSpec {
    let env = |name: &str, default: i64| -> i64 {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    DataSpec {
        series: usize::try_from(env("STRATA_TEST_SERIES", 1500)).unwrap_or(1500),
        // Across 2h block boundaries: promtool writes several blocks.
        start_ms: 1_700_006_400_000 - 30 * 60 * 1000,
        duration_ms: env("STRATA_TEST_HOURS", 6) * 3600 * 1000,
        interval_ms: 60_000,
        seed: 7,
    }
}

/// (selector sent to the store gateway, selector for promtool, min time, max time).
fn cases(spec: &DataSpec) -> Vec<(String, String, Option<i64>, Option<i64>)> {
    let middle = spec.start_ms + spec.duration_ms / 2;
    vec![
        (
            r#"{__name__=~".+"}"#.into(),
            r#"{__name__=~".+"}"#.into(),
            None,
            None,
        ),
        (
            r#"strata_test_requests_total{code="500"}"#.into(),
            r#"strata_test_requests_total{code="500"}"#.into(),
            None,
            None,
        ),
        (
            r#"{__name__=~"strata_test_latency.*", le=~"0\\.[0-9]+|\\+Inf", cluster="eu1"}"#.into(),
            r#"{__name__=~"strata_test_latency.*", le=~"0\\.[0-9]+|\\+Inf"}"#.into(),
            Some(middle - 3_600_000),
            Some(middle + 1_800_000),
        ),
        (
            r#"{__name__=~".+", job!="api", sensor!~"s[12]", replica=~"a|b"}"#.into(),
            r#"{__name__=~".+", job!="api", sensor!~"s[12]"}"#.into(),
            Some(middle),
            None,
        ),
        (
            r#"strata_test_temperature{job="", sensor=~"s[0-2]"}"#.into(),
            r#"strata_test_temperature{job="", sensor=~"s[0-2]"}"#.into(),
            None,
            Some(spec.start_ms + 2 * 3_600_000),
        ),
    ]
}

fn check_against_promtool(endpoint: &str, data_dir: &Path, spec: &DataSpec) -> anyhow::Result<()> {
    for (store_selector, promtool_selector, min_time, max_time) in cases(spec) {
        let want = with_external_labels(
            &promtool_dump(
                data_dir,
                &DumpOptions {
                    selector: Some(promtool_selector),
                    min_time,
                    max_time,
                },
            )?,
            &EXTERNAL,
        )?;
        let got = store_series(endpoint, &store_selector, min_time, max_time)?;
        assert!(
            !want.is_empty(),
            "{store_selector}: promtool printed nothing"
        );
        if got != want {
            let first_diff = got
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(got.lines().count().min(want.lines().count()));
            panic!(
                "{store_selector} [{min_time:?}, {max_time:?}]: {} lines from the store gateway, {} from promtool; first difference at line {first_diff}:\n got: {:?}\nwant: {:?}",
                got.lines().count(),
                want.lines().count(),
                got.lines().nth(first_diff),
                want.lines().nth(first_diff)
            );
        }
    }
    // A selector only on external labels is refused; one that excludes them returns nothing.
    assert!(store_series(endpoint, r#"{cluster="eu1"}"#, None, None).is_err());
    assert_eq!(
        store_series(endpoint, r#"{__name__=~".+", cluster="us1"}"#, None, None)?,
        ""
    );
    Ok(())
}

fn promtool_blocks(dir: &Path, spec: &DataSpec) -> anyhow::Result<(PathBuf, Vec<PathBuf>)> {
    let data_dir = dir.join("prom");
    let blocks = create_blocks(&generate_openmetrics(spec), &data_dir)?;
    assert!(blocks.len() >= 3, "{blocks:?}");
    Ok((data_dir, blocks))
}

#[tokio::test]
async fn filesystem_bucket_series_equal_promtool_dump() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let spec = spec();
    let (data_dir, blocks) = promtool_blocks(dir.path(), &spec)?;
    let bucket_dir = dir.path().join("bucket");
    fill_filesystem_bucket(&blocks, &bucket_dir, &EXTERNAL)?;
    let gateway = start(
        &filesystem_objstore_yaml(&bucket_dir),
        &dir.path().join("store-data"),
        &[],
    )
    .await?;
    let endpoint = gateway.grpc_address.expect("grpc").to_string();
    let check_data = data_dir.clone();
    let check_spec = spec.clone();
    tokio::task::spawn_blocking(move || {
        check_against_promtool(&endpoint, &check_data, &check_spec)
    })
    .await??;

    // The index-headers were built into the data directory; Thanos's metric names are exported.
    for block in &blocks {
        let name = block.file_name().expect("name");
        assert!(
            dir.path()
                .join("store-data")
                .join(name)
                .join("index-header")
                .is_file()
        );
    }
    let metrics = reqwest::get(format!("{}/metrics", gateway.http_url()))
        .await?
        .text()
        .await?;
    for expected in [
        format!("thanos_bucket_store_blocks_loaded {}", blocks.len()),
        format!("thanos_bucket_store_block_loads_total {}", blocks.len()),
        "thanos_bucket_store_block_load_failures_total 0".to_owned(),
        r#"thanos_store_index_cache_requests_total{item_type="Postings"}"#.to_owned(),
        r#"thanos_blocks_meta_synced{state="loaded"}"#.to_owned(),
        r#"grpc_server_handled_total{grpc_type="server_stream",grpc_service="thanos.Store",grpc_method="Series",grpc_code="OK"}"#.to_owned(),
        r#"thanos_objstore_bucket_operations_total{bucket="#.to_owned(),
    ] {
        assert!(
            metrics.contains(&expected),
            "missing {expected}:\n{metrics}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn s3_bucket_series_equal_promtool_dump() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // 400 series keep CI quick; with STRATA_TEST_SERIES set, the full-size set goes to S3 too.
    let spec = match std::env::var_os("STRATA_TEST_SERIES") {
        Some(_) => spec(),
        None => DataSpec {
            series: 400,
            ..spec()
        },
    };
    let (data_dir, blocks) = promtool_blocks(dir.path(), &spec)?;
    let s3 = S3Server::start().await?;
    upload_blocks(&s3.objstore_yaml(), &blocks, &EXTERNAL).await?;
    let gateway = start(&s3.objstore_yaml(), &dir.path().join("store-data"), &[]).await?;
    let endpoint = gateway.grpc_address.expect("grpc").to_string();
    tokio::task::spawn_blocking(move || check_against_promtool(&endpoint, &data_dir, &spec))
        .await??;
    Ok(())
}

#[tokio::test]
async fn bit_flipped_index_is_skipped_counted_and_the_rest_served() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let spec = DataSpec {
        series: 300,
        ..spec()
    };
    let (_, blocks) = promtool_blocks(dir.path(), &spec)?;
    let bucket_dir = dir.path().join("bucket");
    fill_filesystem_bucket(&blocks, &bucket_dir, &EXTERNAL)?;
    // Flip one bit in the symbol table of the first block's index.
    let broken = bucket_dir.join(blocks[0].file_name().expect("name"));
    let index_path = broken.join("index");
    let mut index = std::fs::read(&index_path)?;
    index[40] ^= 0x08;
    std::fs::write(&index_path, &index)?;

    let gateway = start(
        &filesystem_objstore_yaml(&bucket_dir),
        &dir.path().join("store-data"),
        &[],
    )
    .await?;
    let metrics = reqwest::get(format!("{}/metrics", gateway.http_url()))
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("thanos_bucket_store_block_load_failures_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "thanos_bucket_store_blocks_loaded {}",
            blocks.len() - 1
        )),
        "{metrics}"
    );

    // The other blocks answer exactly as promtool dumps them.
    let healthy = dir.path().join("healthy");
    for block in &blocks[1..] {
        strata_tests::prom::copy_block(block, &healthy)?;
    }
    let want = with_external_labels(
        &promtool_dump(
            &healthy,
            &DumpOptions {
                selector: Some(r#"strata_test_requests_total{code="200"}"#.into()),
                ..Default::default()
            },
        )?,
        &EXTERNAL,
    )?;
    let endpoint = gateway.grpc_address.expect("grpc").to_string();
    let got = tokio::task::spawn_blocking(move || {
        store_series(
            &endpoint,
            r#"strata_test_requests_total{code="200"}"#,
            None,
            None,
        )
    })
    .await??;
    assert!(!want.is_empty());
    assert_eq!(got, want);
    Ok(())
}
