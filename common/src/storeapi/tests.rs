//! Tests of the StoreAPI client against the in-memory store served over real gRPC.

use strata_proto::thanos;
use tokio_util::sync::CancellationToken;

use super::testing::InMemoryStore;
use super::*;
use crate::error::{ClassifiedError, ErrorCode};

fn chunk(min_time: i64, max_time: i64, byte: u8) -> thanos::AggrChunk {
    thanos::AggrChunk {
        min_time,
        max_time,
        raw: Some(thanos::Chunk {
            r#type: 0,
            data: bytes::Bytes::from(vec![byte]),
            hash: 0,
        }),
        ..Default::default()
    }
}

fn series(name: &str, job: &str, chunks: Vec<thanos::AggrChunk>) -> thanos::Series {
    thanos::Series {
        labels: vec![
            thanos::Label::new("__name__", name),
            thanos::Label::new("job", job),
        ],
        chunks,
    }
}

fn store() -> InMemoryStore {
    InMemoryStore::new(vec![
        series("up", "b", vec![chunk(0, 10, 1)]),
        series(
            "up",
            "a",
            vec![chunk(0, 10, 2), chunk(11, 20, 3), chunk(21, 30, 4)],
        ),
        series("down", "a", vec![chunk(100, 200, 5)]),
    ])
}

fn request(selector: &str, batch: i64) -> thanos::SeriesRequest {
    let matchers = strata_tsdb::labels::parse_selector(selector).expect("selector");
    thanos::SeriesRequest {
        min_time: 0,
        max_time: 50,
        matchers: crate::labels::matchers_to_proto(&matchers),
        response_batch_size: batch,
        ..Default::default()
    }
}

async fn connect(store: InMemoryStore) -> (StoreApiClient, CancellationToken) {
    let shutdown = CancellationToken::new();
    let address = store
        .serve_on_loopback(shutdown.clone())
        .await
        .expect("serve");
    let client = StoreApiClient::connect(&address.to_string(), &GrpcClientFlags::default())
        .await
        .expect("connect");
    (client, shutdown)
}

#[tokio::test]
async fn split_frames_are_joined_into_whole_series() {
    let (mut client, shutdown) = connect(
        store()
            .with_max_chunks_per_frame(1)
            .with_warnings(vec!["w1".into()]),
    )
    .await;

    // The raw stream really is split: three frames for up{job="a"}.
    let mut raw = client.series(request("up", 0)).await.expect("series");
    let mut frames = 0;
    while raw.next_frame().await.expect("frame").is_some() {
        frames += 1;
    }
    assert_eq!(frames, 1 + 3 + 1, "warning, three parts of a, one of b");

    let collected = client
        .series(request("up", 0))
        .await
        .expect("series")
        .collect()
        .await
        .expect("collect");
    assert_eq!(collected.warnings, vec!["w1".to_owned()]);
    assert_eq!(collected.series.len(), 2);
    let first = collected.series.first().expect("first series");
    assert_eq!(
        first.labels,
        vec![
            thanos::Label::new("__name__", "up"),
            thanos::Label::new("job", "a")
        ]
    );
    let min_times: Vec<i64> = first.chunks.iter().map(|chunk| chunk.min_time).collect();
    assert_eq!(min_times, vec![0, 11, 21]);
    shutdown.cancel();
}

#[tokio::test]
async fn batches_are_flattened_and_time_range_applies() {
    let (mut client, shutdown) = connect(store()).await;
    let collected = client
        .series(request(r#"{job=~"a|b"}"#, 64))
        .await
        .expect("series")
        .collect()
        .await
        .expect("collect");
    // down{job="a"} has no chunk in [0, 50].
    let jobs: Vec<String> = collected
        .series
        .iter()
        .map(|series| crate::labels::labels_from_proto(series.labels.clone()).to_string())
        .collect();
    assert_eq!(
        jobs,
        vec![
            r#"{__name__="up", job="a"}"#.to_owned(),
            r#"{__name__="up", job="b"}"#.to_owned()
        ]
    );
    shutdown.cancel();
}

#[tokio::test]
async fn errors_carry_codes_and_endpoint() {
    let (mut client, shutdown) = connect(store()).await;
    let bad = thanos::SeriesRequest {
        matchers: vec![thanos::LabelMatcher {
            r#type: 2,
            name: "job".into(),
            value: "(".into(),
        }],
        ..Default::default()
    };
    let err = match client.series(bad).await {
        Ok(stream) => stream.collect().await.expect_err("invalid regex"),
        Err(err) => err,
    };
    assert_eq!(err.error_code(), ErrorCode::BadData);
    assert!(err.to_string().contains(client.endpoint()), "{err}");

    let names = client
        .label_names(thanos::LabelNamesRequest::default())
        .await
        .expect("label names");
    assert_eq!(names.names, vec!["__name__".to_owned(), "job".to_owned()]);
    shutdown.cancel();

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = closed.local_addr().expect("address").to_string();
    drop(closed);
    let err = StoreApiClient::connect(&address, &GrpcClientFlags::default())
        .await
        .expect_err("nothing listens");
    assert_eq!(err.error_code(), ErrorCode::Unavailable);
}

#[test]
fn client_tls_flags_are_validated() {
    let plain = GrpcClientFlags::default();
    assert!(client_tls_config(&plain, "h").expect("plaintext").is_none());
    let half = GrpcClientFlags {
        grpc_client_tls_secure: true,
        grpc_client_tls_cert: "c.pem".into(),
        ..plain.clone()
    };
    assert!(client_tls_config(&half, "h").is_err());
    let skip = GrpcClientFlags {
        grpc_client_tls_secure: true,
        grpc_client_tls_skip_verify: true,
        ..plain
    };
    assert!(client_tls_config(&skip, "h").is_err());
}
