//! `strata-querier`: the global query view. It fans out to StoreAPI endpoints (sidecars, store
//! gateways, other queriers), deduplicates replicas and answers Prometheus's HTTP API.
//!
//! Today this crate is the service shell: flags ([`Config`], Thanos's names), the HTTP server
//! (`/metrics`, `/-/healthy`, `/-/ready`) and the gRPC server (health service) on the shutdown
//! tree. Endpoint discovery, the proxy store and the PromQL API come in later issues.

mod config;

use std::net::SocketAddr;
use std::time::Duration;

use strata_common::error::Result;
use strata_common::http_server::Prober;
use strata_common::shutdown::Shutdown;
use strata_common::telemetry::MetricsRegistry;
use strata_common::{grpc_server, http_server, telemetry};

pub use config::Config;

/// The Thanos subcommand word this binary accepts as its optional first argument.
pub const SUBCOMMAND: &str = "query";
/// The component name in `thanos_status` and logs.
pub const COMPONENT: &str = "query";

/// A started querier: where it listens and its probe state.
#[derive(Debug, Clone)]
pub struct Started {
    pub http_address: SocketAddr,
    pub grpc_address: SocketAddr,
    pub prober: Prober,
}

/// Binds the servers and spawns them on `shutdown`'s tree.
pub async fn start(
    config: &Config,
    metrics: &MetricsRegistry,
    shutdown: &Shutdown,
) -> Result<Started> {
    let prober = Prober::new(COMPONENT, metrics);
    let routes = tonic::service::Routes::new(
        grpc_server::HealthService::new(prober.clone(), &[]).into_server(),
    );
    let grpc_address = grpc_server::start(&config.grpc, metrics, routes, shutdown).await?;
    let router = http_server::router(metrics, &prober, axum::Router::new());
    let http_address = http_server::start(&config.http, router, shutdown).await?;
    prober.set_healthy();
    prober.set_ready();
    tracing::info!(
        endpoints = ?config.static_endpoints(),
        replica_labels = ?config.query_replica_labels,
        "starting query node; the query API is not implemented yet"
    );
    Ok(Started {
        http_address,
        grpc_address,
        prober,
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
        .await
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn thanos_flags_parse() {
        let config = Config::try_parse_from([
            "strata-querier",
            "--endpoint=a:10901",
            "--endpoint",
            "b:10901",
            "--store=a:10901",
            "--query.replica-label=replica",
            "--query.replica-label=rule_replica",
            "--query.timeout=30s",
            "--query.max-concurrent=5",
            "--query.lookback-delta=15m",
            "--query.auto-downsampling",
            "--no-query.partial-response",
            "--store.response-timeout=10s",
            "--store.sd-files=/etc/sd.yml",
        ])
        .expect("valid flags");
        assert_eq!(
            config.static_endpoints(),
            vec!["a:10901".to_owned(), "b:10901".to_owned()]
        );
        assert_eq!(
            config.query_replica_labels,
            vec!["replica".to_owned(), "rule_replica".to_owned()]
        );
        assert_eq!(config.query_timeout, Duration::from_secs(30));
        assert_eq!(config.query_max_concurrent, 5);
        assert_eq!(config.query_lookback_delta, Some(Duration::from_secs(900)));
        assert!(config.query_auto_downsampling);
        assert!(!config.partial_response_enabled());
        assert_eq!(config.store_response_timeout, Duration::from_secs(10));

        let defaults = Config::try_parse_from(["strata-querier"]).expect("defaults");
        assert!(defaults.partial_response_enabled());
        assert_eq!(defaults.query_lookback_delta, None);
        assert_eq!(defaults.query_max_concurrent, 20);
        let explicit = Config::try_parse_from(["strata-querier", "--query.partial-response=false"])
            .expect("explicit");
        assert!(!explicit.partial_response_enabled());
    }

    #[tokio::test]
    async fn starts_and_stops() {
        let config = Config::try_parse_from([
            "strata-querier",
            "--http-address=127.0.0.1:0",
            "--grpc-address=127.0.0.1:0",
            "--http-grace-period=1s",
            "--grpc-grace-period=1s",
        ])
        .expect("valid flags");
        let shutdown = Shutdown::new();
        let started = start(&config, &MetricsRegistry::new(), &shutdown)
            .await
            .expect("start");
        tokio::net::TcpStream::connect(started.http_address)
            .await
            .expect("http listens");
        tokio::net::TcpStream::connect(started.grpc_address)
            .await
            .expect("grpc listens");
        shutdown.cancel();
        assert!(shutdown.wait(Duration::from_secs(10)).await);
        assert!(shutdown.failure().is_none());
    }
}
