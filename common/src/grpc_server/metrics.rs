//! A tower layer recording go-grpc-middleware's server metrics for every known RPC:
//! `grpc_server_started_total`, `grpc_server_handled_total` (with `grpc_code`) and
//! `grpc_server_handling_seconds`. The code is read where gRPC puts it: the response headers
//! for a trailers-only response, else the trailers at the end of the body; a body dropped
//! before its trailers means the client went away (`Canceled`), as grpc-go reports it.
//! Unknown paths are not recorded, so that probing clients cannot create label values.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use crate::telemetry::MetricsRegistry;

/// Thanos's `grpc_server_handling_seconds` buckets.
const HANDLING_BUCKETS: [f64; 14] = [
    0.001, 0.01, 0.1, 0.3, 0.6, 1.0, 3.0, 6.0, 9.0, 20.0, 30.0, 60.0, 90.0, 120.0,
];

/// The streaming shape of an RPC, as the `grpc_type` label spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcType {
    Unary,
    ServerStream,
}

impl GrpcType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Unary => "unary",
            Self::ServerStream => "server_stream",
        }
    }
}

/// Every RPC Strata serves, with its type. Add new RPCs here.
const KNOWN_METHODS: &[(&str, GrpcType)] = &[
    (strata_proto::paths::STORE_SERIES, GrpcType::ServerStream),
    (strata_proto::paths::STORE_LABEL_NAMES, GrpcType::Unary),
    (strata_proto::paths::STORE_LABEL_VALUES, GrpcType::Unary),
    (strata_proto::paths::STORE_INFO, GrpcType::Unary),
    (strata_proto::paths::INFO_INFO, GrpcType::Unary),
    (strata_proto::paths::HEALTH_CHECK, GrpcType::Unary),
    ("/grpc.health.v1.Health/Watch", GrpcType::ServerStream),
];

/// The type of the RPC at `path`, or `None` for a path Strata does not serve.
pub fn grpc_type_of(path: &str) -> Option<GrpcType> {
    KNOWN_METHODS
        .iter()
        .find(|(known, _)| *known == path)
        .map(|(_, grpc_type)| *grpc_type)
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_type: &'static str,
    grpc_service: String,
    grpc_method: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    grpc_type: &'static str,
    grpc_service: String,
    grpc_method: String,
    grpc_code: &'static str,
}

/// The gRPC server metrics of one process.
#[derive(Debug, Clone)]
pub struct GrpcServerMetrics {
    started: Family<MethodLabels, Counter>,
    handled: Family<HandledLabels, Counter>,
    handling_seconds: Family<MethodLabels, Histogram>,
}

impl GrpcServerMetrics {
    pub fn new(metrics: &MetricsRegistry) -> Self {
        let started = Family::<MethodLabels, Counter>::default();
        let handled = Family::<HandledLabels, Counter>::default();
        let handling_seconds = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(HANDLING_BUCKETS)
        });
        metrics.with_registry(|registry| {
            // The OpenMetrics encoder appends `_total` to counters.
            registry.register("grpc_server_started", "Total number of RPCs started on the server", started.clone());
            registry.register(
                "grpc_server_handled",
                "Total number of RPCs completed on the server, regardless of success or failure",
                handled.clone(),
            );
            registry.register(
                "grpc_server_handling_seconds",
                "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server",
                handling_seconds.clone(),
            );
        });
        Self {
            started,
            handled,
            handling_seconds,
        }
    }
}

/// Go's names for gRPC codes (`codes.Code.String()`), used in `grpc_code`.
fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "Canceled",
        tonic::Code::Unknown => "Unknown",
        tonic::Code::InvalidArgument => "InvalidArgument",
        tonic::Code::DeadlineExceeded => "DeadlineExceeded",
        tonic::Code::NotFound => "NotFound",
        tonic::Code::AlreadyExists => "AlreadyExists",
        tonic::Code::PermissionDenied => "PermissionDenied",
        tonic::Code::ResourceExhausted => "ResourceExhausted",
        tonic::Code::FailedPrecondition => "FailedPrecondition",
        tonic::Code::Aborted => "Aborted",
        tonic::Code::OutOfRange => "OutOfRange",
        tonic::Code::Unimplemented => "Unimplemented",
        tonic::Code::Internal => "Internal",
        tonic::Code::Unavailable => "Unavailable",
        tonic::Code::DataLoss => "DataLoss",
        tonic::Code::Unauthenticated => "Unauthenticated",
    }
}

fn code_from_headers(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let value = headers.get("grpc-status")?;
    let number: i32 = value.to_str().ok()?.trim().parse().ok()?;
    Some(tonic::Code::from_i32(number))
}

/// Records the end of one RPC exactly once.
struct CallRecorder {
    metrics: Arc<GrpcServerMetrics>,
    labels: MethodLabels,
    started: Instant,
}

impl CallRecorder {
    fn finish(self, code: tonic::Code) {
        let handled = HandledLabels {
            grpc_type: self.labels.grpc_type,
            grpc_service: self.labels.grpc_service.clone(),
            grpc_method: self.labels.grpc_method.clone(),
            grpc_code: code_name(code),
        };
        self.metrics.handled.get_or_create(&handled).inc();
        self.metrics
            .handling_seconds
            .get_or_create(&self.labels)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// The layer to add to the tonic server.
#[derive(Debug, Clone)]
pub struct GrpcMetricsLayer {
    metrics: Arc<GrpcServerMetrics>,
}

impl GrpcMetricsLayer {
    pub fn new(metrics: GrpcServerMetrics) -> Self {
        Self {
            metrics: Arc::new(metrics),
        }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// The service produced by [`GrpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: Arc<GrpcServerMetrics>,
}

impl<S, RequestBody, ResponseBody> tower::Service<http::Request<RequestBody>>
    for GrpcMetricsService<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
    S::Future: Send + 'static,
    ResponseBody: Body,
{
    type Response = http::Response<MeteredBody<ResponseBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let path = request.uri().path();
        let recorder = grpc_type_of(path).and_then(|grpc_type| {
            let (service, method) = path.strip_prefix('/')?.split_once('/')?;
            let labels = MethodLabels {
                grpc_type: grpc_type.as_str(),
                grpc_service: service.to_owned(),
                grpc_method: method.to_owned(),
            };
            self.metrics.started.get_or_create(&labels).inc();
            Some(CallRecorder {
                metrics: Arc::clone(&self.metrics),
                labels,
                started: Instant::now(),
            })
        });
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = match future.await {
                Ok(response) => response,
                Err(err) => {
                    if let Some(recorder) = recorder {
                        recorder.finish(tonic::Code::Unknown);
                    }
                    return Err(err);
                }
            };
            // A trailers-only response (an immediate error) carries the status in its headers.
            let recorder = match (recorder, code_from_headers(response.headers())) {
                (Some(recorder), Some(code)) => {
                    recorder.finish(code);
                    None
                }
                (recorder, _) => recorder,
            };
            Ok(response.map(|body| MeteredBody {
                inner: Box::pin(body),
                recorder,
            }))
        })
    }
}

/// A response body that records the RPC's code when its trailers pass by.
pub struct MeteredBody<B> {
    inner: Pin<Box<B>>,
    recorder: Option<CallRecorder>,
}

impl<B: Body> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = self.inner.as_mut().poll_frame(cx);
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame
                .trailers_ref()
                .map(|trailers| code_from_headers(trailers).unwrap_or(tonic::Code::Unknown)),
            Poll::Ready(Some(Err(_))) => Some(tonic::Code::Unknown),
            // A gRPC body always ends with trailers; ending without them is a broken call.
            Poll::Ready(None) => Some(tonic::Code::Unknown),
            Poll::Pending => None,
        };
        if let Some(code) = code
            && let Some(recorder) = self.recorder.take()
        {
            recorder.finish(code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for MeteredBody<B> {
    fn drop(&mut self) {
        // Dropped before the trailers: the client cancelled or the connection broke.
        if let Some(recorder) = self.recorder.take() {
            recorder.finish(tonic::Code::Cancelled);
        }
    }
}
