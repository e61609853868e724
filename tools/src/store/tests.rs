//! Tests of `store series` against the in-memory StoreAPI server over real gRPC.

use strata_common::shutdown::CancellationToken;
use strata_common::storeapi::testing::InMemoryStore;
use strata_proto::thanos;
use strata_tsdb::chunkenc::XorAppender;

use super::*;

fn xor_chunk(samples: &[(i64, f64)]) -> thanos::AggrChunk {
    let mut appender = XorAppender::new();
    for &(t, v) in samples {
        appender.append(t, v).expect("append");
    }
    thanos::AggrChunk {
        min_time: samples.first().map_or(0, |s| s.0),
        max_time: samples.last().map_or(0, |s| s.0),
        raw: Some(thanos::Chunk {
            r#type: thanos::chunk::Encoding::Xor as i32,
            data: appender.bytes().into(),
            hash: 0,
        }),
        ..Default::default()
    }
}

fn series(labels: &[(&str, &str)], chunks: Vec<thanos::AggrChunk>) -> thanos::Series {
    thanos::Series {
        labels: labels
            .iter()
            .map(|(n, v)| thanos::Label::new(*n, *v))
            .collect(),
        chunks,
    }
}

fn args(endpoint: String, selector: &str, min_time: i64, max_time: i64) -> SeriesArgs {
    SeriesArgs {
        endpoint,
        selector: selector.to_owned(),
        min_time,
        max_time,
        stats: false,
        tls: GrpcClientFlags::default(),
    }
}

async fn dump(
    store: InMemoryStore,
    selector: &str,
    min_time: i64,
    max_time: i64,
) -> anyhow::Result<String> {
    let shutdown = CancellationToken::new();
    let address = store.serve_on_loopback(shutdown.clone()).await?;
    let mut out = Vec::new();
    let result = dump_series(
        &args(address.to_string(), selector, min_time, max_time),
        &mut out,
    )
    .await;
    shutdown.cancel();
    result.map(|()| String::from_utf8_lossy(&out).into_owned())
}

fn test_store() -> InMemoryStore {
    InMemoryStore::new(vec![
        series(
            &[("__name__", "up"), ("job", "b")],
            vec![xor_chunk(&[(1000, 1.0), (2000, 0.0)])],
        ),
        series(
            &[("__name__", "up"), ("job", "a")],
            vec![
                xor_chunk(&[(1000, 1234567.0), (2000, 0.00001234)]),
                xor_chunk(&[(3000, f64::NAN), (4000, 3.5)]),
                xor_chunk(&[(5000, 1e20)]),
            ],
        ),
        series(&[("__name__", "other")], vec![xor_chunk(&[(1000, 7.0)])]),
    ])
    // Force the series of job="a" over three frames.
    .with_max_chunks_per_frame(1)
}

#[tokio::test]
async fn prints_promtool_dump_lines_in_label_order() {
    let text = dump(test_store(), "up", i64::MIN, i64::MAX)
        .await
        .expect("dump");
    let expected = [
        r#"{__name__="up", job="a"} 1.234567e+06 1000"#,
        r#"{__name__="up", job="a"} 1.234e-05 2000"#,
        r#"{__name__="up", job="a"} NaN 3000"#,
        r#"{__name__="up", job="a"} 3.5 4000"#,
        r#"{__name__="up", job="a"} 1e+20 5000"#,
        r#"{__name__="up", job="b"} 1 1000"#,
        r#"{__name__="up", job="b"} 0 2000"#,
    ];
    assert_eq!(
        text,
        expected
            .iter()
            .map(|line| format!("{line}\n"))
            .collect::<String>()
    );
}

#[tokio::test]
async fn trims_to_the_time_range() {
    let text = dump(test_store(), r#"{job="a"}"#, 2000, 4000)
        .await
        .expect("dump");
    let timestamps: Vec<&str> = text
        .lines()
        .filter_map(|line| line.rsplit(' ').next())
        .collect();
    assert_eq!(timestamps, vec!["2000", "3000", "4000"]);
}

#[tokio::test]
async fn merges_a_series_sent_twice() {
    let store = InMemoryStore::new(vec![
        series(
            &[("__name__", "m")],
            vec![xor_chunk(&[(1000, 1.0), (2000, 2.0)])],
        ),
        series(
            &[("__name__", "m")],
            vec![xor_chunk(&[(2000, 2.0), (3000, 3.0)])],
        ),
    ]);
    let text = dump(store, "m", i64::MIN, i64::MAX).await.expect("dump");
    assert_eq!(
        text,
        "{__name__=\"m\"} 1 1000\n{__name__=\"m\"} 2 2000\n{__name__=\"m\"} 3 3000\n"
    );
}

#[tokio::test]
async fn reports_bad_input() {
    assert!(dump(test_store(), "up{", 0, 1).await.is_err());
    assert!(dump(test_store(), "up", 5, 1).await.is_err());
    let corrupt = InMemoryStore::new(vec![thanos::Series {
        labels: vec![thanos::Label::new("__name__", "bad")],
        chunks: vec![thanos::AggrChunk {
            raw: Some(thanos::Chunk {
                r#type: 0,
                data: vec![0xFF].into(),
                hash: 0,
            }),
            ..Default::default()
        }],
    }]);
    let err = dump(corrupt, "bad", i64::MIN, i64::MAX)
        .await
        .expect_err("corrupt chunk");
    assert!(format!("{err:#}").contains("bad"), "{err:#}");
}

#[tokio::test]
async fn stats_count_what_the_endpoint_sent() {
    let shutdown = CancellationToken::new();
    let address = test_store()
        .serve_on_loopback(shutdown.clone())
        .await
        .expect("serve");
    let mut out = Vec::new();
    let mut args = args(address.to_string(), "up", i64::MIN, i64::MAX);
    args.stats = true;
    let result = stream_stats(&args, &mut out).await;
    shutdown.cancel();
    result.expect("stats");
    let text = String::from_utf8_lossy(&out);
    // job="a" comes in three frames but is one series of three chunks and five samples.
    assert!(
        text.starts_with("series=2 chunks=4 samples=7 chunk_bytes="),
        "{text}"
    );
    assert!(text.contains(" warnings=0 seconds="), "{text}");
}
