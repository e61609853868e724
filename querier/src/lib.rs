//! `strata-querier`: the global query view. It fans out to StoreAPI endpoints (sidecars, store
//! gateways, other queriers), deduplicates HA replicas and answers Prometheus's HTTP API with
//! PromQL, like `thanos query`.
//!
//! - [`endpoints`]: discovery (static, file SD, DNS) and the endpoint set, refreshed by Info;
//! - [`proxy`]: the concurrent Series fan-out with per-store timeouts, k-way merge, chunk
//!   deduplication and partial response;
//! - [`dedup`]: lazy chunk decoding and replica deduplication (Thanos's penalty algorithm);
//! - [`queryable`]: the fan-out as the PromQL engine's storage;
//! - [`api`]: the HTTP API (`/api/v1/*`) with Prometheus's JSON; [`ui`]: the web UI and the
//!   routing of both under `--web.route-prefix`;
//! - [`store_server`]: the querier's own StoreAPI, for stacking queriers.
//!
//! [`start`] wires them on the shutdown tree; `main` only parses flags and calls [`run`].

pub mod api;
mod config;
pub mod dedup;
pub mod endpoints;
pub mod error;
pub mod metrics;
pub mod proxy;
pub mod queryable;
pub mod series_channel;
pub mod store_server;
pub mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use strata_common::http_server::Prober;
use strata_common::shutdown::Shutdown;
use strata_common::telemetry::MetricsRegistry;
use strata_common::{grpc_server, http_server, telemetry};

pub use config::Config;
use endpoints::EndpointSet;
use endpoints::discovery::{Discovery, Target, parse_endpoint_config, read_endpoint_config_file};
pub use error::{Error, Result};

/// The Thanos subcommand word this binary accepts as its optional first argument.
pub const SUBCOMMAND: &str = "query";
/// The component name in `thanos_status` and logs.
pub const COMPONENT: &str = "query";

/// A started querier: where it listens, its probe state and its endpoint set.
#[derive(Debug, Clone)]
pub struct Started {
    pub http_address: SocketAddr,
    pub grpc_address: SocketAddr,
    pub prober: Prober,
    pub endpoints: Arc<EndpointSet>,
}

fn static_targets(config: &Config) -> Result<Vec<Target>> {
    let mut targets: Vec<Target> = config
        .endpoints
        .iter()
        .chain(&config.stores)
        .chain(&config.endpoint_groups)
        .map(|address| Target {
            address: address.clone(),
            strict: false,
        })
        .chain(
            config
                .endpoints_strict
                .iter()
                .chain(&config.endpoint_groups_strict)
                .map(|address| Target {
                    address: address.clone(),
                    strict: true,
                }),
        )
        .collect();
    if let Some(text) = &config.endpoint_sd_config {
        targets.extend(parse_endpoint_config(text).map_err(|reason| Error::SdFile {
            path: "--endpoint.sd-config".into(),
            reason,
        })?);
    }
    Ok(targets)
}

/// Binds the servers, discovers the endpoints once, and spawns everything on `shutdown`'s
/// tree. The querier is ready after the first endpoint refresh, as Thanos's is.
pub async fn start(
    config: &Config,
    registry: &MetricsRegistry,
    shutdown: &Shutdown,
) -> Result<Started> {
    // Flags are checked before anything listens: a bad one fails start-up.
    config.validate()?;
    let ui_config = ui::UiConfig {
        partial_response: config.partial_response_enabled(),
        auto_downsampling: config.query_auto_downsampling,
        ..ui::UiConfig::from_flags(
            &config.web_route_prefix,
            &config.web_external_prefix,
            &config.web_prefix_header,
        )?
    };
    if ui_config.route_prefix != ui_config.external_prefix {
        tracing::warn!(
            route_prefix = %ui_config.route_prefix,
            external_prefix = %ui_config.external_prefix,
            "different values for --web.route-prefix and --web.external-prefix detected, web UI may not work without a reverse-proxy"
        );
    }
    let prober = Prober::new(COMPONENT, registry);
    let metrics = metrics::QuerierMetrics::new(registry);
    let mut discovery = Discovery::new(
        static_targets(config)?,
        config.store_sd_files.clone(),
        config.store_sd_interval,
        config.store_sd_dns_interval,
        strata_common::dns::Resolver::system(),
        metrics.clone(),
    );
    if let Some(path) = &config.endpoint_sd_config_file {
        // Read now so that a bad file fails start-up; re-read while running.
        let initial = read_endpoint_config_file(path)?;
        discovery = discovery.with_endpoint_config_file(
            path.clone(),
            config.endpoint_sd_config_reload_interval,
            initial,
        );
    }
    // Check the client TLS flags before anything listens: a bad CA path fails startup.
    strata_common::storeapi::client_tls_config(&config.grpc_client, "localhost")?;
    let endpoint_set = Arc::new(EndpointSet::new(
        discovery,
        config.grpc_client.clone(),
        config.store_unhealthy_timeout,
        metrics.clone(),
    ));
    let proxy = proxy::Proxy::new(Arc::clone(&endpoint_set), config.store_response_timeout);

    let (store, info) = store_server::ProxyStore::new(proxy.clone())
        .with_selector_labels(config.selector_labels()?)
        .into_servers();
    let routes = tonic::service::Routes::new(
        grpc_server::HealthService::new(prober.clone(), &["thanos.Store", "thanos.info.Info"])
            .into_server(),
    )
    .add_service(store)
    .add_service(info);
    let grpc_address = grpc_server::start(&config.grpc, registry, routes, shutdown).await?;

    let api_config = api::ApiConfig {
        replica_labels: config.query_replica_labels.clone(),
        partial_response: config.partial_response_enabled(),
        auto_downsampling: config.query_auto_downsampling,
        query_timeout: config.query_timeout,
        lookback_delta: config
            .query_lookback_delta
            .unwrap_or(Duration::from_secs(300)),
        dynamic_lookback_delta: config.query_dynamic_lookback_delta,
        default_step: config.query_default_step,
        default_evaluation_interval: config.query_default_evaluation_interval,
        max_samples: config.query_max_samples,
        dedup_func: dedup::DedupFunc::from_flag(&config.deduplication_func),
        max_concurrent_select: config.query_max_concurrent_select,
        cors: !config.web_disable_cors,
        flags: config.flag_values(),
    };
    let api = Arc::new(api::Api::new(
        proxy,
        api_config,
        config.query_max_concurrent,
        metrics,
    ));
    let app = ui::routes(ui_config, api::routes(api));
    let router = http_server::router(registry, &prober, app);
    let http_address = http_server::start(&config.http, router, shutdown).await?;
    prober.set_healthy();

    endpoint_set.refresh().await;
    let refresher = Arc::clone(&endpoint_set);
    shutdown.spawn("endpoint-set", move |token| refresher.run(token));
    prober.set_ready();
    tracing::info!(
        endpoints = ?config.static_endpoints(),
        replica_labels = ?config.query_replica_labels,
        http = %http_address,
        grpc = %grpc_address,
        "query node ready"
    );
    Ok(Started {
        http_address,
        grpc_address,
        prober,
        endpoints: endpoint_set,
    })
}

/// Runs the querier until `shutdown` is cancelled (SIGTERM), then drains.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<()> {
    let metrics = MetricsRegistry::for_process();
    telemetry::load_tracing_config(&config.tracing)?;
    let started = start(&config, &metrics, &shutdown).await?;
    let drain = config
        .http
        .http_grace_period
        .max(config.grpc.grpc_grace_period)
        + Duration::from_secs(5);
    shutdown
        .run_until_cancelled(|| started.prober.set_shutting_down(), drain)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
