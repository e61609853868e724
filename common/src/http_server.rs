//! The HTTP server every Strata component runs on `--http-address` (axum): `/metrics` in the
//! OpenMetrics or Prometheus text format (negotiated by `Accept`), `/-/healthy` and `/-/ready`
//! driven by a [`Prober`], and a middleware recording `http_requests_total` and
//! `http_request_duration_seconds` with Thanos's labels `{code, handler, method}`. Services
//! mount their own routes next to these (the querier's `/api/v1/*`), naming each with
//! [`named_handler`] so the `handler` label matches Thanos's.
//!
//! No client can pin the server: request headers must arrive within [`HEADER_READ_TIMEOUT`]
//! (slowloris) and at most [`MAX_CONNECTIONS`] connections are served at once ([`serve`]).

mod connections;
mod prober;

pub use connections::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS, ServerLimits, serve};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::telemetry::MetricsRegistry;

pub use prober::{ProbeState, Prober};

/// Thanos's `http_request_duration_seconds` buckets.
const DURATION_BUCKETS: [f64; 17] = [
    0.001, 0.01, 0.1, 0.3, 0.6, 1.0, 3.0, 6.0, 9.0, 20.0, 30.0, 60.0, 90.0, 120.0, 240.0, 360.0,
    720.0,
];

const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    code: String,
    handler: String,
    method: String,
}

/// The HTTP request metrics, shared by every route of the server.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests_total: Family<RequestLabels, Counter>,
    request_duration_seconds: Family<RequestLabels, Histogram>,
}

impl HttpMetrics {
    pub fn new(metrics: &MetricsRegistry) -> Self {
        let requests_total = Family::<RequestLabels, Counter>::default();
        let request_duration_seconds =
            Family::<RequestLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(DURATION_BUCKETS)
            });
        metrics.with_registry(|registry| {
            // The OpenMetrics encoder appends `_total` to counters.
            registry.register(
                "http_requests",
                "Tracks the number of HTTP requests",
                requests_total.clone(),
            );
            registry.register(
                "http_request_duration_seconds",
                "Tracks the latencies for HTTP requests",
                request_duration_seconds.clone(),
            );
        });
        Self {
            requests_total,
            request_duration_seconds,
        }
    }

    fn observe(&self, handler: &str, method: &str, code: u16, elapsed: Duration) {
        let labels = RequestLabels {
            code: code.to_string(),
            handler: handler.to_owned(),
            method: method.to_ascii_lowercase(),
        };
        self.requests_total.get_or_create(&labels).inc();
        self.request_duration_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }
}

/// The `handler` label of a route, set by [`named_handler`] as a response extension.
#[derive(Debug, Clone, Copy)]
struct HandlerName(&'static str);

/// Names the routes of `router` for the `handler` label (e.g. "query", "query_range").
/// Unnamed routes are labelled with their route pattern.
pub fn named_handler<S: Clone + Send + Sync + 'static>(
    name: &'static str,
    router: axum::routing::MethodRouter<S>,
) -> axum::routing::MethodRouter<S> {
    router.layer(axum::middleware::map_response(
        move |mut response: Response| async move {
            response.extensions_mut().insert(HandlerName(name));
            response
        },
    ))
}

async fn record_metrics(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let response = next.run(request).await;
    let handler = match (
        response.extensions().get::<HandlerName>(),
        matched.as_deref(),
    ) {
        (Some(HandlerName(name)), _) => name,
        (None, Some(pattern)) => pattern,
        // Unrouted paths share one label value so that scanners cannot explode cardinality.
        (None, None) => "not_found",
    };
    metrics.observe(
        handler,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Serves OpenMetrics to scrapers that ask for it (Prometheus does) and the Prometheus text
/// format 0.0.4 to everyone else, as Thanos's `promhttp` handler negotiates.
async fn metrics_handler(
    State(metrics): State<MetricsRegistry>,
    headers: axum::http::HeaderMap,
) -> Response {
    let wants_openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains("application/openmetrics-text"));
    let encoded = if wants_openmetrics {
        metrics
            .encode()
            .map(|text| (OPENMETRICS_CONTENT_TYPE, text))
    } else {
        metrics
            .encode_prometheus_text()
            .map(|text| (PROMETHEUS_TEXT_CONTENT_TYPE, text))
    };
    match encoded {
        Ok((content_type, text)) => ([(header::CONTENT_TYPE, content_type)], text).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encode metrics").into_response(),
    }
}

fn probe_response(ok: bool) -> Response {
    if ok {
        (StatusCode::OK, "OK").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "NOT OK").into_response()
    }
}

/// The routes every component serves: `/metrics`, `/-/healthy`, `/-/ready`, merged with the
/// service's own `routes`, all instrumented.
pub fn router(metrics: &MetricsRegistry, prober: &Prober, routes: Router) -> Router {
    let http_metrics = Arc::new(HttpMetrics::new(metrics));
    let health = {
        let prober = prober.clone();
        move || {
            let prober = prober.clone();
            async move { probe_response(prober.is_healthy()) }
        }
    };
    let ready = {
        let prober = prober.clone();
        move || {
            let prober = prober.clone();
            async move { probe_response(prober.is_ready()) }
        }
    };
    let base = Router::new()
        .route("/metrics", named_handler("metrics", get(metrics_handler)))
        .route("/-/healthy", named_handler("healthy", get(health)))
        .route("/-/ready", named_handler("ready", get(ready)))
        .with_state(metrics.clone());
    base.merge(routes)
        .layer(axum::middleware::from_fn_with_state(
            http_metrics,
            record_metrics,
        ))
}

/// Resolves a `host:port` flag value to one socket address (the first, as Go's listener does).
/// An empty host (`:10901`, what the Prometheus Operator passes the sidecar) means every
/// interface, as in Go.
pub async fn resolve_listen_address(server: &'static str, address: &str) -> Result<SocketAddr> {
    let every_interface;
    let address = if address.starts_with(':') {
        every_interface = format!("0.0.0.0{address}");
        every_interface.as_str()
    } else {
        address
    };
    let mut addresses =
        tokio::net::lookup_host(address)
            .await
            .map_err(|source| Error::ResolveAddress {
                server,
                address: address.to_owned(),
                source,
            })?;
    addresses.next().ok_or_else(|| Error::NoAddress {
        server,
        address: address.to_owned(),
    })
}

/// Binds a TCP listener for `server` on `address`.
pub async fn bind(server: &'static str, address: &str) -> Result<TcpListener> {
    let socket_address = resolve_listen_address(server, address).await?;
    TcpListener::bind(socket_address)
        .await
        .map_err(|source| Error::Bind {
            server,
            address: socket_address,
            source,
        })
}

/// Binds `--http-address` and serves `router` as the task "http-server" of the shutdown tree,
/// draining for `--http-grace-period` on shutdown. Returns the bound address (useful with
/// port 0).
pub async fn start(
    flags: &crate::flags::HttpServerFlags,
    router: Router,
    shutdown: &crate::shutdown::Shutdown,
) -> Result<SocketAddr> {
    let listener = bind("http", &flags.http_address).await?;
    let address = listener.local_addr().map_err(|source| Error::Serve {
        server: "http",
        source,
    })?;
    let grace_period = flags.http_grace_period;
    shutdown.spawn("http-server", move |token| {
        serve(
            listener,
            router,
            token,
            grace_period,
            ServerLimits::default(),
        )
    });
    Ok(address)
}

#[cfg(test)]
mod tests;
