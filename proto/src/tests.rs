//! Wire-format facts that must hold for Thanos and Prometheus to understand us: field tags,
//! proto3 default elision, fixed64 sample values, packed enums and the gRPC method paths.

use std::sync::{Arc, Mutex};

use prost::Message;

use crate::conversions::{AnyMessage, thanos_encoding_from_remote_read};
use crate::hintspb::SeriesResponseHints;
use crate::{prometheus, thanos};

#[test]
fn series_request_field_tags() {
    let request = thanos::SeriesRequest {
        min_time: 1,
        max_time: 2,
        matchers: vec![thanos::LabelMatcher {
            r#type: thanos::label_matcher::Type::Re as i32,
            name: "a".into(),
            value: "b".into(),
        }],
        aggregates: vec![thanos::Aggr::Count as i32, thanos::Aggr::Sum as i32],
        partial_response_strategy: thanos::PartialResponseStrategy::Abort as i32,
        response_batch_size: 64,
        ..Default::default()
    };
    let bytes = request.encode_to_vec();
    let expected: Vec<u8> = vec![
        0x08, 0x01, // 1 min_time varint
        0x10, 0x02, // 2 max_time varint
        0x1a, 0x08, 0x08, 0x02, 0x12, 0x01, b'a', 0x1a, 0x01,
        b'b', // 3 matchers {1 type=RE, 2, 3}
        0x2a, 0x02, 0x01, 0x02, // 5 aggregates, packed
        0x38, 0x01, // 7 partial_response_strategy = ABORT
        0x80, 0x01, 0x40, // 16 response_batch_size: two-byte tag, then 64
    ];
    assert_eq!(bytes, expected);
    assert_eq!(thanos::SeriesRequest::decode(bytes.as_slice()), Ok(request));
}

#[test]
fn negative_times_are_ten_byte_varints() {
    let request = thanos::SeriesRequest {
        min_time: -1,
        ..Default::default()
    };
    let bytes = request.encode_to_vec();
    assert_eq!(bytes.len(), 1 + 10);
    assert_eq!(bytes.first(), Some(&0x08));
}

#[test]
fn xor_chunk_type_is_elided_and_decodes_as_default() {
    let chunk = thanos::Chunk {
        r#type: thanos::chunk::Encoding::Xor as i32,
        data: bytes::Bytes::from_static(&[0, 1, 2]),
        hash: 0,
    };
    assert_eq!(chunk.encode_to_vec(), vec![0x12, 0x03, 0, 1, 2]);
    let histogram = thanos::Chunk {
        r#type: thanos::chunk::Encoding::Histogram as i32,
        ..chunk
    };
    assert_eq!(
        histogram.encode_to_vec(),
        vec![0x08, 0x01, 0x12, 0x03, 0, 1, 2]
    );
}

#[test]
fn series_response_oneof_tags() {
    let series = thanos::SeriesResponse::from_series(thanos::Series {
        labels: vec![thanos::Label::new("a", "b")],
        chunks: vec![],
    });
    assert_eq!(
        series.encode_to_vec(),
        vec![0x0a, 0x08, 0x0a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'b']
    );
    assert_eq!(
        thanos::SeriesResponse::from_warning("w").encode_to_vec(),
        vec![0x12, 0x01, b'w']
    );
    let batch = thanos::SeriesResponse::from_batch(vec![thanos::Series::default()]);
    assert_eq!(batch.encode_to_vec(), vec![0x22, 0x02, 0x0a, 0x00]);
}

#[test]
fn aggr_chunk_fields() {
    let aggr = thanos::AggrChunk {
        min_time: 5,
        max_time: 6,
        counter: Some(thanos::Chunk::default()),
        ..Default::default()
    };
    assert_eq!(
        aggr.encode_to_vec(),
        vec![0x08, 0x05, 0x10, 0x06, 0x42, 0x00]
    );
}

#[test]
fn info_response_fields() {
    let info = thanos::info::InfoResponse {
        component_type: "store".into(),
        store: Some(thanos::info::StoreInfo {
            supports_without_replica_labels: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        info.encode_to_vec(),
        vec![
            0x12, 0x05, b's', b't', b'o', b'r', b'e', 0x1a, 0x02, 0x28, 0x01
        ]
    );
}

#[test]
fn remote_read_sample_value_is_fixed64() {
    let sample = prometheus::Sample {
        value: 1.0,
        timestamp: 3,
    };
    let mut expected = vec![0x09];
    expected.extend_from_slice(&1.0f64.to_le_bytes());
    expected.extend_from_slice(&[0x10, 0x03]);
    assert_eq!(sample.encode_to_vec(), expected);
}

#[test]
fn remote_read_request_fields() {
    let request = prometheus::ReadRequest {
        queries: vec![prometheus::Query {
            start_timestamp_ms: 1,
            end_timestamp_ms: 2,
            matchers: vec![],
            hints: None,
        }],
        accepted_response_types: vec![
            prometheus::read_request::ResponseType::StreamedXorChunks as i32,
        ],
    };
    assert_eq!(
        request.encode_to_vec(),
        vec![0x0a, 0x04, 0x08, 0x01, 0x10, 0x02, 0x12, 0x01, 0x01]
    );
    let chunk = prometheus::Chunk {
        min_time_ms: 1,
        max_time_ms: 2,
        r#type: 1,
        data: bytes::Bytes::new(),
    };
    assert_eq!(
        chunk.encode_to_vec(),
        vec![0x08, 0x01, 0x10, 0x02, 0x18, 0x01]
    );
    let frame = prometheus::ChunkedReadResponse {
        chunked_series: vec![],
        query_index: 3,
    };
    assert_eq!(frame.encode_to_vec(), vec![0x10, 0x03]);
}

#[test]
fn remote_read_encoding_is_thanos_plus_one() {
    assert_eq!(thanos_encoding_from_remote_read(0), None);
    assert_eq!(
        thanos_encoding_from_remote_read(1),
        Some(thanos::chunk::Encoding::Xor)
    );
    assert_eq!(
        thanos_encoding_from_remote_read(2),
        Some(thanos::chunk::Encoding::Histogram)
    );
    assert_eq!(
        thanos_encoding_from_remote_read(3),
        Some(thanos::chunk::Encoding::FloatHistogram)
    );
    assert_eq!(thanos_encoding_from_remote_read(9), None);
}

#[test]
fn hints_any_round_trip_with_thanos_type_url() {
    let hints = SeriesResponseHints {
        queried_blocks: vec![crate::hintspb::Block { id: "01ABC".into() }],
        query_stats: None,
    };
    let any = hints.to_any();
    assert_eq!(
        any.type_url,
        "type.googleapis.com/hintspb.SeriesResponseHints"
    );
    assert_eq!(SeriesResponseHints::from_any(&any), Ok(Some(hints)));
    let other = prost_types::Any {
        type_url: "type.googleapis.com/hintspb.Block".into(),
        value: vec![],
    };
    assert_eq!(SeriesResponseHints::from_any(&other), Ok(None));
}

/// Calls a generated client against a fake transport and returns the HTTP/2 path it used.
async fn client_path<F, Fut>(call: F) -> String
where
    F: FnOnce(CapturingTransport) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let seen = Arc::new(Mutex::new(String::new()));
    call(CapturingTransport {
        seen: Arc::clone(&seen),
    })
    .await;
    seen.lock().map(|path| path.clone()).unwrap_or_default()
}

/// A transport that records the request path and answers `Unimplemented` (trailers-only).
#[derive(Clone)]
struct CapturingTransport {
    seen: Arc<Mutex<String>>,
}

impl tower::Service<http::Request<tonic::body::Body>> for CapturingTransport {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = request.uri().path().to_owned();
        }
        let response = http::Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", "12")
            .body(tonic::body::Body::empty())
            .unwrap_or_default();
        std::future::ready(Ok(response))
    }
}

#[tokio::test]
async fn generated_clients_use_thanos_method_paths() {
    let uri = http::Uri::from_static("http://store.invalid");
    let series = client_path(|transport| async {
        let mut client = thanos::store_client::StoreClient::with_origin(transport, uri.clone());
        let status = client.series(thanos::SeriesRequest::default()).await.err();
        assert_eq!(
            status.map(|status| status.code()),
            Some(tonic::Code::Unimplemented)
        );
    })
    .await;
    assert_eq!(series, crate::paths::STORE_SERIES);

    let label_values = client_path(|transport| async {
        let mut client = thanos::store_client::StoreClient::with_origin(transport, uri.clone());
        let _ = client
            .label_values(thanos::LabelValuesRequest::default())
            .await;
    })
    .await;
    assert_eq!(label_values, crate::paths::STORE_LABEL_VALUES);

    let info = client_path(|transport| async {
        let mut client = thanos::info::info_client::InfoClient::with_origin(transport, uri.clone());
        let _ = client.info(thanos::info::InfoRequest {}).await;
    })
    .await;
    assert_eq!(info, crate::paths::INFO_INFO);

    let health = client_path(|transport| async {
        let mut client = crate::grpc::health::v1::health_client::HealthClient::with_origin(
            transport,
            uri.clone(),
        );
        let _ = client
            .check(crate::grpc::health::v1::HealthCheckRequest::default())
            .await;
    })
    .await;
    assert_eq!(health, crate::paths::HEALTH_CHECK);

    assert_eq!(thanos::store_server::SERVICE_NAME, "thanos.Store");
    assert_eq!(thanos::info::info_server::SERVICE_NAME, "thanos.info.Info");
}
