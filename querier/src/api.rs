//! Prometheus's HTTP query API (`/api/v1/*`, reference/prometheus.md 5) over the fan-out, with
//! Thanos's extensions (thanos.md 4.7): `dedup`, `partial_response`, `max_source_resolution`,
//! `replicaLabels[]` and `/api/v1/stores`.
//!
//! Queries pass the concurrency gate (`--query.max-concurrent`), then run on a blocking thread
//! (the engine is synchronous) with the deadline of `--query.timeout` or the `timeout`
//! parameter, whichever is shorter. A request whose client goes away cancels its query.
//! Responses are written by [`json`] exactly as Prometheus writes them.

pub mod json;
pub mod params;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use strata_common::error::ClassifiedError;
use strata_common::http_server::named_handler;
use strata_promql::{CancellationToken, Engine, EngineOptions};
use strata_tsdb::labels::Matcher;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::metrics::QuerierMetrics;
use crate::proxy::{LabelsQuery, Proxy, SeriesQuery, Warnings};
use crate::queryable::{ProxyQueryable, QueryOptions};
use params::{
    MAX_TIME_MS, MIN_TIME_MS, Params, bad_data, bool_param, invalid_parameter, match_params,
    parse_duration_ms, parse_time, range_params, time_param,
};

/// Largest form body accepted (Prometheus has no limit; long selectors do exist).
const MAX_FORM_BODY: usize = 16 << 20;

/// Settings of the query API, from the flags.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub replica_labels: Vec<String>,
    pub partial_response: bool,
    pub auto_downsampling: bool,
    pub query_timeout: Duration,
    pub lookback_delta: Duration,
    /// `--query.dynamic-lookback-delta`: see [`dynamic_lookback_delta`].
    pub dynamic_lookback_delta: bool,
    pub default_step: Duration,
    pub default_evaluation_interval: Duration,
    pub max_samples: usize,
    /// Set CORS headers and answer OPTIONS (unless `--web.disable-cors`).
    pub cors: bool,
    /// `--deduplication.func`.
    pub dedup_func: crate::dedup::DedupFunc,
    /// `--query.max-concurrent-select`.
    pub max_concurrent_select: usize,
    /// `/api/v1/status/flags`: every flag name (without `--`) and its value.
    pub flags: BTreeMap<String, String>,
}

/// Shared state of the API handlers.
#[derive(Debug)]
pub struct Api {
    pub proxy: Proxy,
    pub config: ApiConfig,
    gate: Semaphore,
    metrics: QuerierMetrics,
}

impl Api {
    pub fn new(
        proxy: Proxy,
        config: ApiConfig,
        max_concurrent: usize,
        metrics: QuerierMetrics,
    ) -> Self {
        let max_concurrent = max_concurrent.max(1);
        metrics
            .gate_max
            .set(i64::try_from(max_concurrent).unwrap_or(i64::MAX));
        Self {
            proxy,
            config,
            gate: Semaphore::new(max_concurrent),
            metrics,
        }
    }
}

type Shared = Arc<Api>;

/// Prometheus's CORS headers (`web/api/v1` `setCORS` with the default origin regex `.*`):
/// allowed headers and methods always, the origin echoed when the request has one.
fn set_cors(response: &mut Response, origin: Option<header::HeaderValue>) {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        header::HeaderValue::from_static("Accept, Authorization, Content-Type, Origin"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        header::HeaderValue::from_static("Date"),
    );
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
}

/// CORS on every API route; OPTIONS is answered 204 without reaching the handler.
async fn cors(request: Request, next: axum::middleware::Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = if request.method() == axum::http::Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    set_cors(&mut response, origin);
    response
}

/// The `/api/v1` routes.
pub fn routes(api: Shared) -> Router {
    let with_cors = api.config.cors;
    use axum::routing::MethodRouter;
    let both = |handler: fn(Shared, Params) -> Handled| -> MethodRouter<Shared> {
        get(move |state: State<Shared>, request: Request| serve(state, request, handler))
            .post(move |state: State<Shared>, request: Request| serve(state, request, handler))
    };
    let get_only = |handler: fn(Shared, Params) -> Handled| -> MethodRouter<Shared> {
        get(move |state: State<Shared>, request: Request| serve(state, request, handler))
    };
    let router = Router::new()
        .route("/api/v1/query", named_handler("query", both(query)))
        .route(
            "/api/v1/query_range",
            named_handler("query_range", both(query_range)),
        )
        .route("/api/v1/series", named_handler("series", both(series)))
        .route(
            "/api/v1/labels",
            named_handler("label_names", both(label_names)),
        )
        .route(
            "/api/v1/label/{name}/values",
            named_handler(
                "label_values",
                get(
                    |state: State<Shared>, Path(name): Path<String>, request: Request| async move {
                        let params = match read_params(request).await {
                            Ok(params) => params,
                            Err(err) => return error_response(&err),
                        };
                        respond(label_values(state.0, name, params).await)
                    },
                ),
            ),
        )
        .route(
            "/api/v1/metadata",
            named_handler("metadata", get_only(metadata)),
        )
        .route(
            "/api/v1/query_exemplars",
            named_handler("exemplars", both(query_exemplars)),
        )
        .route(
            "/api/v1/status/buildinfo",
            named_handler("status_build", get_only(buildinfo)),
        )
        .route(
            "/api/v1/status/flags",
            named_handler("status_flags", get_only(status_flags)),
        )
        .route("/api/v1/stores", named_handler("stores", get_only(stores)))
        .route("/api/v1/rules", named_handler("rules", get_only(rules)))
        .route("/api/v1/alerts", named_handler("alerts", get_only(alerts)))
        .route(
            "/api/v1/targets",
            named_handler("targets", get_only(targets)),
        );
    let router = if with_cors {
        router.layer(axum::middleware::from_fn(cors))
    } else {
        router
    };
    router.with_state(api)
}

/// A handler's outcome: the `data` JSON and warnings, or an error.
type Handled =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(String, Vec<String>)>> + Send>>;

async fn read_params(request: Request) -> Result<Params> {
    let query = request.uri().query().map(str::to_owned);
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    let body = if is_form {
        let bytes = axum::body::to_bytes(request.into_body(), MAX_FORM_BODY)
            .await
            .map_err(|err| bad_data(format!("read form body: {err}")))?;
        Some(bytes)
    } else {
        None
    };
    Ok(Params::parse(query.as_deref(), body.as_deref()))
}

async fn serve(
    State(api): State<Shared>,
    request: Request,
    handler: fn(Shared, Params) -> Handled,
) -> Response {
    let params = match read_params(request).await {
        Ok(params) => params,
        Err(err) => return error_response(&err),
    };
    respond(handler(api, params).await)
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response()
}

fn respond(result: Result<(String, Vec<String>)>) -> Response {
    match result {
        Ok((data, warnings)) => json_response(StatusCode::OK, json::success(&data, &warnings)),
        Err(err) => error_response(&err),
    }
}

fn error_response(err: &Error) -> Response {
    let code = err.error_code();
    let message = match err {
        // The engine's storage error wraps the store failure; show the cause, as Thanos does.
        Error::Promql(strata_promql::Error::Storage { source }) => source.to_string(),
        other => other.to_string(),
    };
    json_response(
        code.http_status(),
        json::error(code.prometheus_error_type(), &message),
    )
}

/// Per-request Thanos options shared by queries and series/labels.
struct ThanosParams {
    replica_labels: Vec<String>,
    partial_response: bool,
}

fn thanos_params(api: &Api, params: &Params) -> Result<ThanosParams> {
    let dedup = bool_param(params, "dedup", true)?;
    let partial_response = bool_param(params, "partial_response", api.config.partial_response)?;
    let requested: Vec<String> = params
        .all("replicaLabels[]")
        .into_iter()
        .map(str::to_owned)
        .collect();
    let replica_labels = if !dedup {
        Vec::new()
    } else if requested.is_empty() {
        api.config.replica_labels.clone()
    } else {
        requested
    };
    Ok(ThanosParams {
        replica_labels,
        partial_response,
    })
}

/// `max_source_resolution` in ms: `auto` (or the auto-downsampling flag when absent) is
/// step/5 for range queries and raw for instant queries.
fn max_source_resolution(api: &Api, params: &Params, step_ms: i64) -> Result<i64> {
    let auto = step_ms / 5;
    match params.get("max_source_resolution") {
        None | Some("") => Ok(if api.config.auto_downsampling {
            auto
        } else {
            0
        }),
        Some("auto") => Ok(auto),
        Some(text) => {
            let ms = parse_duration_ms(text).map_err(|message| {
                bad_data(format!("'max_source_resolution' parameter: {message}"))
            })?;
            if ms < 0 {
                return Err(bad_data(
                    "negative 'max_source_resolution' is not accepted. Try a positive integer",
                ));
            }
            Ok(ms)
        }
    }
}

/// The query's timeout: `--query.timeout`, shortened by the `timeout` parameter.
fn query_timeout(api: &Api, params: &Params) -> Result<Duration> {
    match params.get("timeout") {
        None | Some("") => Ok(api.config.query_timeout),
        Some(text) => {
            let ms =
                parse_duration_ms(text).map_err(|message| invalid_parameter("timeout", message))?;
            let requested = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
            Ok(requested.min(api.config.query_timeout))
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Cancels the query when the request future is dropped (the client went away).
struct CancelOnDrop(CancellationToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

struct Evaluation {
    expr: strata_promql::ParsedExpr,
    start: i64,
    end: i64,
    step: i64,
    options: QueryOptions,
    timeout: Duration,
    lookback_delta: Duration,
    /// The `stats` parameter was given: add Prometheus's query statistics to `data`.
    stats: bool,
}

/// Prometheus's `stats` object (timings in seconds, sample counts), plus the series read from
/// the stores as `series.totalQueryableSeries` (Strata's; the UI shows it).
fn write_stats(
    out: &mut String,
    queue: Duration,
    eval: Duration,
    total: Duration,
    stats: &strata_promql::QueryStats,
) {
    let eval = eval.as_secs_f64();
    out.push_str(&format!(
        "\"stats\":{{\"timings\":{{\"evalTotalTime\":{eval},\"resultSortTime\":0,\"queryPreparationTime\":0,\"innerEvalTime\":{eval},\"execQueueTime\":{},\"execTotalTime\":{}}},\"samples\":{{\"totalQueryableSamples\":{},\"peakSamples\":{}}},\"series\":{{\"totalQueryableSeries\":{}}}}}",
        queue.as_secs_f64(),
        total.as_secs_f64(),
        stats.samples_touched,
        stats.peak_samples,
        stats.series_touched,
    ));
}

/// Runs one evaluation through the gate on a blocking thread.
async fn evaluate(api: Shared, evaluation: Evaluation) -> Result<(String, Vec<String>)> {
    let queued = Instant::now();
    let permit = tokio::time::timeout(evaluation.timeout, api.gate.acquire())
        .await
        .map_err(|_| Error::QueueTimeout)?
        .map_err(|_| Error::Task {
            reason: "query gate closed".into(),
        })?;
    api.metrics
        .gate_duration_seconds
        .observe(queued.elapsed().as_secs_f64());
    api.metrics.gate_total.inc();
    api.metrics.gate_in_flight.inc();
    let _in_flight = InFlight(api.metrics.clone());
    let remaining = evaluation.timeout.saturating_sub(queued.elapsed());
    let warnings = Warnings::default();
    let mut options = evaluation.options;
    options.deadline = Some(Instant::now() + remaining);
    let queryable = ProxyQueryable::new(
        api.proxy.clone(),
        tokio::runtime::Handle::current(),
        options,
        warnings.clone(),
    );
    let engine = Engine::new(EngineOptions {
        lookback_delta: evaluation.lookback_delta,
        max_samples: api.config.max_samples,
        timeout: remaining,
        default_subquery_step: api.config.default_evaluation_interval,
        // Anything the engine adds later (e.g. its thread count) keeps the engine's default.
        ..EngineOptions::default()
    });
    let cancel = CancellationToken::new();
    let _cancel_on_drop = CancelOnDrop(cancel.clone());
    let (start, end, step, expr) = (
        evaluation.start,
        evaluation.end,
        evaluation.step,
        evaluation.expr,
    );
    let want_stats = evaluation.stats;
    let queue_time = queued.elapsed();
    let result = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let result = engine.exec(&queryable, &expr, start, end, step, &cancel);
        let eval_time = started.elapsed();
        let mut data = String::new();
        result.map(|result| {
            json::write_query_data(&mut data, &result.value);
            if want_stats {
                // Insert the stats object before the closing brace of `data`.
                data.pop();
                data.push(',');
                write_stats(
                    &mut data,
                    queue_time,
                    eval_time,
                    queue_time + eval_time,
                    &result.stats,
                );
                data.push('}');
            }
            data
        })
    })
    .await
    .map_err(|err| Error::Task {
        reason: err.to_string(),
    })?;
    drop(permit);
    let data = result?;
    Ok((data, warnings.take()))
}

struct InFlight(QuerierMetrics);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.gate_in_flight.dec();
    }
}

/// The query's lookback delta: a positive `lookback_delta` parameter, else the configured one,
/// raised to the resolution of the data the query may read (`--query.dynamic-lookback-delta`).
fn lookback_delta(api: &Api, params: &Params, max_source_resolution: i64) -> Result<Duration> {
    let configured = if api.config.dynamic_lookback_delta {
        dynamic_lookback_delta(api.config.lookback_delta, max_source_resolution)
    } else {
        api.config.lookback_delta
    };
    match params.get("lookback_delta") {
        None | Some("") => Ok(configured),
        Some(text) => {
            let ms = parse_duration_ms(text)
                .map_err(|message| invalid_parameter("lookback_delta", message))?;
            Ok(match u64::try_from(ms) {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => configured,
            })
        }
    }
}

/// Downsampled resolutions in ms (raw, 5m, 1h).
const RESOLUTIONS: [i64; 3] = [0, 300_000, 3_600_000];

/// Thanos's dynamic lookback delta: a query allowed data coarser than both the next finer
/// resolution and `base` looks back at least one window of the coarser resolution, so an
/// instant selector over hourly points finds one at every step. With the default 5m: 1h once
/// `max_source_resolution` exceeds 5m, else 5m.
pub fn dynamic_lookback_delta(base: Duration, max_source_resolution: i64) -> Duration {
    let base_ms = i64::try_from(base.as_millis()).unwrap_or(i64::MAX);
    for level in (1..RESOLUTIONS.len()).rev() {
        let finer = RESOLUTIONS[level - 1].max(base_ms);
        if finer < max_source_resolution {
            let window = Duration::from_millis(u64::try_from(RESOLUTIONS[level]).unwrap_or(0));
            return base.max(window);
        }
    }
    base
}

fn query(api: Shared, params: Params) -> Handled {
    Box::pin(async move {
        let time = match params.get("time") {
            None | Some("") => now_ms(),
            Some(text) => parse_time(text).map_err(|message| {
                invalid_parameter("time", format!("Invalid time value for 'time': {message}"))
            })?,
        };
        let timeout = query_timeout(&api, &params)?;
        let expr = parse_query(&params)
            .await?
            .map_err(|err| invalid_parameter("query", err))?;
        let thanos = thanos_params(&api, &params)?;
        let resolution = max_source_resolution(&api, &params, 0)?;
        let lookback_delta = lookback_delta(&api, &params, resolution)?;
        let evaluation = Evaluation {
            expr,
            start: time,
            end: time,
            step: 0,
            options: QueryOptions {
                replica_labels: thanos.replica_labels,
                partial_response: thanos.partial_response,
                max_source_resolution: resolution,
                deadline: None,
                dedup_func: api.config.dedup_func,
                max_concurrent_select: api.config.max_concurrent_select,
            },
            timeout,
            lookback_delta,
            stats: !params.value("stats").is_empty(),
        };
        evaluate(api, evaluation).await
    })
}

fn query_range(api: Shared, params: Params) -> Handled {
    Box::pin(async move {
        let default_step = i64::try_from(api.config.default_step.as_millis()).unwrap_or(1000);
        let (start, end, step) = range_params(&params, default_step)?;
        let timeout = query_timeout(&api, &params)?;
        // A parse error has no `invalid parameter` prefix on this endpoint (2.42).
        let expr = parse_query(&params).await??;
        let thanos = thanos_params(&api, &params)?;
        let resolution = max_source_resolution(&api, &params, step)?;
        let lookback_delta = lookback_delta(&api, &params, resolution)?;
        let evaluation = Evaluation {
            expr,
            start,
            end,
            step,
            options: QueryOptions {
                replica_labels: thanos.replica_labels,
                partial_response: thanos.partial_response,
                max_source_resolution: resolution,
                deadline: None,
                dedup_func: api.config.dedup_func,
                max_concurrent_select: api.config.max_concurrent_select,
            },
            timeout,
            lookback_delta,
            stats: !params.value("stats").is_empty(),
        };
        evaluate(api, evaluation).await
    })
}

/// Parses the `query` parameter off the async workers: a long or deeply nested query takes
/// the parser a while (its nesting is bounded, see `strata_promql::depth`).
async fn parse_query(
    params: &Params,
) -> Result<std::result::Result<strata_promql::ParsedExpr, strata_promql::Error>> {
    let text = params.value("query").to_owned();
    tokio::task::spawn_blocking(move || strata_promql::parser::parse(&text))
        .await
        .map_err(|err| Error::Task {
            reason: err.to_string(),
        })
}

fn series(api: Shared, params: Params) -> Handled {
    Box::pin(async move {
        if params.all("match[]").is_empty() {
            return Err(bad_data("no match[] parameter provided"));
        }
        let start = time_param(&params, "start", MIN_TIME_MS)?;
        let end = time_param(&params, "end", MAX_TIME_MS)?;
        let selectors = match_params(&params)?;
        let thanos = thanos_params(&api, &params)?;
        let deadline = Some(Instant::now() + api.config.query_timeout);
        let warnings = Warnings::default();
        let mut all = Vec::new();
        for matchers in selectors {
            let query = SeriesQuery {
                min_time: start,
                max_time: end,
                matchers,
                replica_labels: thanos.replica_labels.clone(),
                partial_response: thanos.partial_response,
                skip_chunks: true,
                deadline,
                ..Default::default()
            };
            let mut receiver = api.proxy.series(query, warnings.clone())?;
            while let Some(series) = receiver.recv().await {
                all.push(series?.labels);
            }
        }
        all.sort();
        all.dedup();
        let mut data = String::from("[");
        for (index, labels) in all.iter().enumerate() {
            if index > 0 {
                data.push(',');
            }
            json::write_labels(
                &mut data,
                labels
                    .iter()
                    .map(|label| (label.name.as_str(), label.value.as_str())),
            );
        }
        data.push(']');
        Ok((data, warnings.take()))
    })
}

fn labels_query(api: &Api, params: &Params, matchers: Vec<Matcher>) -> Result<LabelsQuery> {
    let thanos = thanos_params(api, params)?;
    Ok(LabelsQuery {
        min_time: time_param(params, "start", MIN_TIME_MS)?,
        max_time: time_param(params, "end", MAX_TIME_MS)?,
        matchers,
        replica_labels: thanos.replica_labels,
        partial_response: thanos.partial_response,
        deadline: Some(Instant::now() + api.config.query_timeout),
    })
}

/// Runs a label query once without matchers, or once per `match[]` selector (merged).
async fn per_selector<F, Fut>(api: &Api, params: &Params, run: F) -> Result<(String, Vec<String>)>
where
    F: Fn(LabelsQuery) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>>>,
{
    let selectors = match_params(params)?;
    let mut all = Vec::new();
    if selectors.is_empty() {
        all = run(labels_query(api, params, Vec::new())?).await?;
    } else {
        for matchers in selectors {
            all.extend(run(labels_query(api, params, matchers)?).await?);
        }
        all.sort();
        all.dedup();
    }
    let mut data = String::new();
    json::write_string_array(&mut data, &all);
    Ok((data, Vec::new()))
}

fn label_names(api: Shared, params: Params) -> Handled {
    Box::pin(async move {
        let warnings = Warnings::default();
        let (data, _) = per_selector(&api, &params, |query| {
            let api = Arc::clone(&api);
            let warnings = warnings.clone();
            async move { api.proxy.label_names(query, &warnings).await }
        })
        .await?;
        Ok((data, warnings.take()))
    })
}

async fn label_values(api: Shared, name: String, params: Params) -> Result<(String, Vec<String>)> {
    if !strata_promql::labels::is_valid_label_name(&name) {
        return Err(bad_data(format!("invalid label name: {name:?}")));
    }
    let warnings = Warnings::default();
    let (data, _) = per_selector(&api, &params, |query| {
        let api = Arc::clone(&api);
        let warnings = warnings.clone();
        let name = name.clone();
        async move { api.proxy.label_values(&name, query, &warnings).await }
    })
    .await?;
    Ok((data, warnings.take()))
}

fn metadata(_api: Shared, params: Params) -> Handled {
    Box::pin(async move {
        if let Some(limit) = params.get("limit").filter(|limit| !limit.is_empty())
            && limit.parse::<i64>().is_err()
        {
            return Err(bad_data("limit must be a number"));
        }
        // No StoreAPI endpoint serves the metadata API yet, so there is none to merge.
        Ok(("{}".to_owned(), Vec::new()))
    })
}

fn query_exemplars(_api: Shared, params: Params) -> Handled {
    Box::pin(async move {
        strata_promql::parser::parse(params.value("query"))
            .map_err(|err| invalid_parameter("query", err))?;
        time_param(&params, "start", MIN_TIME_MS)?;
        time_param(&params, "end", MAX_TIME_MS)?;
        // No endpoint serves the exemplars API yet: the answer is empty, as for a
        // Prometheus without exemplar storage.
        Ok(("[]".to_owned(), Vec::new()))
    })
}

// No endpoint serves the Rules or Targets APIs yet (no ruler, and sidecars do not proxy them),
// so these answer with Prometheus's empty shapes: Grafana asks for rules and alerts when it
// connects and should see "none" rather than an error.
fn rules(_api: Shared, _params: Params) -> Handled {
    Box::pin(async move { Ok((r#"{"groups":[]}"#.to_owned(), Vec::new())) })
}

fn alerts(_api: Shared, _params: Params) -> Handled {
    Box::pin(async move { Ok((r#"{"alerts":[]}"#.to_owned(), Vec::new())) })
}

fn targets(_api: Shared, _params: Params) -> Handled {
    Box::pin(async move {
        Ok((
            r#"{"activeTargets":[],"droppedTargets":[]}"#.to_owned(),
            Vec::new(),
        ))
    })
}

fn buildinfo(_api: Shared, _params: Params) -> Handled {
    Box::pin(async move {
        let mut data = String::from("{");
        let fields = [
            ("version", env!("CARGO_PKG_VERSION")),
            (
                "revision",
                option_env!("STRATA_GIT_REVISION").unwrap_or("unknown"),
            ),
            (
                "branch",
                option_env!("STRATA_GIT_BRANCH").unwrap_or("unknown"),
            ),
            (
                "buildUser",
                option_env!("STRATA_BUILD_USER").unwrap_or("unknown"),
            ),
            (
                "buildDate",
                option_env!("STRATA_BUILD_DATE").unwrap_or("unknown"),
            ),
            ("goVersion", concat!("rust", env!("CARGO_PKG_RUST_VERSION"))),
        ];
        for (index, (name, value)) in fields.iter().enumerate() {
            if index > 0 {
                data.push(',');
            }
            json::write_string(&mut data, name);
            data.push(':');
            json::write_string(&mut data, value);
        }
        data.push('}');
        Ok((data, Vec::new()))
    })
}

fn status_flags(api: Shared, _params: Params) -> Handled {
    Box::pin(async move {
        let mut data = String::new();
        json::write_labels(
            &mut data,
            api.config
                .flags
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        );
        Ok((data, Vec::new()))
    })
}

/// RFC 3339 with nanoseconds, as Go marshals `time.Time`.
fn rfc3339(time: SystemTime) -> String {
    let datetime: chrono::DateTime<chrono::Utc> = time.into();
    datetime.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn stores(api: Shared, _params: Params) -> Handled {
    Box::pin(async move {
        let mut by_type: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (endpoint, status) in api.proxy.endpoints.for_display() {
            let info = status.info.clone().unwrap_or_default();
            let component = if info.component_type.is_empty() {
                "unknown".to_owned()
            } else {
                info.component_type.clone()
            };
            let mut entry = String::from("{\"name\":");
            json::write_string(&mut entry, endpoint.address());
            entry.push_str(",\"lastCheck\":");
            match status.last_check {
                Some(at) => json::write_string(&mut entry, &rfc3339(at)),
                None => json::write_string(&mut entry, "0001-01-01T00:00:00Z"),
            }
            entry.push_str(",\"lastError\":");
            match &status.last_error {
                Some(error) => json::write_string(&mut entry, error),
                None => entry.push_str("null"),
            }
            entry.push_str(",\"labelSets\":[");
            for (index, set) in info.label_sets.iter().enumerate() {
                if index > 0 {
                    entry.push(',');
                }
                json::write_labels(
                    &mut entry,
                    set.iter()
                        .map(|label| (label.name.as_str(), label.value.as_str())),
                );
            }
            entry.push_str("],");
            entry.push_str(&format!(
                "\"minTime\":{},\"maxTime\":{}}}",
                info.min_time, info.max_time
            ));
            by_type.entry(component).or_default().push(entry);
        }
        let mut data = String::from("{");
        for (index, (component, entries)) in by_type.iter().enumerate() {
            if index > 0 {
                data.push(',');
            }
            json::write_string(&mut data, component);
            data.push_str(":[");
            data.push_str(&entries.join(","));
            data.push(']');
        }
        data.push('}');
        Ok((data, Vec::new()))
    })
}
