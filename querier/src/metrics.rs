//! The querier's own metrics, named as Thanos names them so its dashboards and alerts work:
//! the query concurrency gate (`thanos_query_concurrent_gate_queries_*`), the connected store
//! nodes (`thanos_store_nodes_grpc_connections`) and endpoint DNS discovery
//! (`thanos_query_endpoints_dns_*`) and the StoreAPI client calls (`grpc_client_*`, as
//! go-grpc-middleware's client metrics). HTTP and gRPC server metrics live in `strata-common`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use strata_common::telemetry::{MetricsRegistry, escape_label_value};

use crate::endpoints::{Endpoint, EndpointInfo};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreNodeLabels {
    pub external_labels: String,
    pub store_type: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcCallLabels {
    pub grpc_method: String,
    pub grpc_service: String,
    pub grpc_type: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcHandledLabels {
    pub grpc_code: String,
    pub grpc_method: String,
    pub grpc_service: String,
    pub grpc_type: String,
}

/// Go's names of gRPC codes (`codes.Code.String()`), as the `grpc_code` label carries them.
pub fn grpc_code_name(code: tonic::Code) -> &'static str {
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

/// `grpc_client_*`: the calls this querier makes to its StoreAPI endpoints.
#[derive(Debug, Clone)]
pub struct GrpcClientMetrics {
    started: Family<GrpcCallLabels, Counter>,
    handled: Family<GrpcHandledLabels, Counter>,
    msg_received: Family<GrpcCallLabels, Counter>,
    handling_seconds: Family<GrpcCallLabels, Histogram>,
}

/// One client call in flight; [`ClientCall::finish`] records its outcome.
#[derive(Debug)]
pub struct ClientCall {
    metrics: GrpcClientMetrics,
    labels: GrpcCallLabels,
    started: std::time::Instant,
}

impl GrpcClientMetrics {
    fn new() -> Self {
        Self {
            started: Family::default(),
            handled: Family::default(),
            msg_received: Family::default(),
            handling_seconds: Family::new_with_constructor(|| {
                Histogram::new([
                    0.001, 0.01, 0.1, 0.3, 0.6, 1.0, 3.0, 6.0, 9.0, 20.0, 30.0, 60.0, 90.0, 120.0,
                ])
            }),
        }
    }

    /// Starts a call of `service`/`method` (`unary` or `server_stream`).
    pub fn start(&self, service: &str, method: &str, grpc_type: &str) -> ClientCall {
        let labels = GrpcCallLabels {
            grpc_method: method.to_owned(),
            grpc_service: service.to_owned(),
            grpc_type: grpc_type.to_owned(),
        };
        self.started.get_or_create(&labels).inc();
        ClientCall {
            metrics: self.clone(),
            labels,
            started: std::time::Instant::now(),
        }
    }
}

impl ClientCall {
    /// Counts one received message.
    pub fn received(&self) {
        self.metrics.msg_received.get_or_create(&self.labels).inc();
    }

    /// Records the call's end with `code`.
    pub fn finish(self, code: tonic::Code) {
        let handled = GrpcHandledLabels {
            grpc_code: grpc_code_name(code).to_owned(),
            grpc_method: self.labels.grpc_method.clone(),
            grpc_service: self.labels.grpc_service.clone(),
            grpc_type: self.labels.grpc_type.clone(),
        };
        self.metrics.handled.get_or_create(&handled).inc();
        self.metrics
            .handling_seconds
            .get_or_create(&self.labels)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// All querier metrics; clones share the underlying series.
#[derive(Debug, Clone)]
pub struct QuerierMetrics {
    pub gate_in_flight: Gauge,
    pub gate_max: Gauge,
    pub gate_total: Counter,
    pub gate_duration_seconds: Histogram,
    pub store_nodes: Family<StoreNodeLabels, Gauge>,
    pub dns_lookups_total: Counter,
    pub dns_failures_total: Counter,
    pub grpc_client: GrpcClientMetrics,
}

impl QuerierMetrics {
    pub fn new(metrics: &MetricsRegistry) -> Self {
        let this = Self {
            gate_in_flight: Gauge::default(),
            gate_max: Gauge::default(),
            gate_total: Counter::default(),
            gate_duration_seconds: Histogram::new([
                0.01, 0.1, 0.3, 0.6, 1.0, 3.0, 6.0, 9.0, 20.0, 30.0, 60.0, 90.0, 120.0, 240.0,
                360.0, 720.0,
            ]),
            store_nodes: Family::default(),
            dns_lookups_total: Counter::default(),
            dns_failures_total: Counter::default(),
            grpc_client: GrpcClientMetrics::new(),
        };
        metrics.with_registry(|registry| {
            registry.register(
                "thanos_query_concurrent_gate_queries_in_flight",
                "Number of queries that are currently in flight.",
                this.gate_in_flight.clone(),
            );
            registry.register(
                "thanos_query_concurrent_gate_queries_max",
                "Maximum number of concurrent queries.",
                this.gate_max.clone(),
            );
            // The OpenMetrics encoder appends `_total`.
            registry.register(
                "thanos_query_concurrent_gate_queries",
                "Total number of queries.",
                this.gate_total.clone(),
            );
            registry.register(
                "thanos_query_concurrent_gate_duration_seconds",
                "How many seconds it took for queries to wait at the gate.",
                this.gate_duration_seconds.clone(),
            );
            registry.register(
                "thanos_store_nodes_grpc_connections",
                "Number of gRPC connection to Store APIs. Opened connection means healthy store APIs available for Querier.",
                this.store_nodes.clone(),
            );
            registry.register(
                "thanos_query_endpoints_dns_lookups",
                "The number of times a DNS lookup was performed for endpoints.",
                this.dns_lookups_total.clone(),
            );
            registry.register(
                "thanos_query_endpoints_dns_failures",
                "The number of DNS lookups that failed for endpoints.",
                this.dns_failures_total.clone(),
            );
            // The OpenMetrics encoder appends `_total` to the counters.
            registry.register(
                "grpc_client_started",
                "Total number of RPCs started on the client.",
                this.grpc_client.started.clone(),
            );
            registry.register(
                "grpc_client_handled",
                "Total number of RPCs completed by the client, regardless of success or failure.",
                this.grpc_client.handled.clone(),
            );
            registry.register(
                "grpc_client_msg_received",
                "Total number of RPC stream messages received by the client.",
                this.grpc_client.msg_received.clone(),
            );
            registry.register(
                "grpc_client_handling_seconds",
                "Histogram of response latency (seconds) of the gRPC until it is finished by the application.",
                this.grpc_client.handling_seconds.clone(),
            );
        });
        this
    }

    /// Sets `thanos_store_nodes_grpc_connections` from the healthy endpoints.
    pub fn set_store_nodes(&self, usable: &[(std::sync::Arc<Endpoint>, EndpointInfo)]) {
        self.store_nodes.clear();
        for (_, info) in usable {
            let external_labels = info
                .label_sets
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",");
            // External label values hold quotes; prometheus-client writes values unescaped.
            self.store_nodes
                .get_or_create(&StoreNodeLabels {
                    external_labels: escape_label_value(&external_labels),
                    store_type: escape_label_value(&info.component_type),
                })
                .inc();
        }
    }
}
