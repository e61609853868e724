//! `strata-store-gateway`: serves the blocks of an object-storage bucket over Thanos's
//! StoreAPI, reading index headers and chunks by byte range.
//!
//! Today this crate is the service shell: flags ([`Config`], Thanos's names), the HTTP server
//! (`/metrics`, `/-/healthy`, `/-/ready`) and the gRPC server (health service) on the shutdown
//! tree. Block sync and the bucket store come in later issues.

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
pub const SUBCOMMAND: &str = "store";
/// The component name in `thanos_status` and logs.
pub const COMPONENT: &str = "store";

/// A started store gateway: where it listens and its probe state.
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
    // Not yet: Thanos is ready only after the initial block sync.
    prober.set_ready();
    tracing::info!(
        data_dir = %config.data_dir.display(),
        "starting store node; block sync and the bucket store are not implemented yet"
    );
    Ok(Started {
        http_address,
        grpc_address,
        prober,
    })
}

/// Runs the store gateway until `shutdown` is cancelled (SIGTERM), then drains.
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
            "strata-store-gateway",
            "--data-dir=/var/thanos/store",
            "--index-cache-size=1GB",
            "--chunk-pool-size=500MB",
            "--sync-block-duration=3m",
            "--min-time=-4w",
            "--max-time=2024-01-01T00:00:00Z",
            "--no-cache-index-header",
            "--objstore.config-file=/etc/bucket.yml",
        ])
        .expect("valid flags");
        assert_eq!(config.index_cache_size, 1 << 30);
        assert_eq!(config.chunk_pool_size, 500 << 20);
        assert_eq!(config.sync_block_duration, Duration::from_secs(180));
        assert_eq!(
            config.min_time,
            strata_common::flags::TimeOrDuration::Relative(-28 * 86_400_000)
        );
        assert_eq!(
            config.max_time,
            strata_common::flags::TimeOrDuration::Absolute(1_704_067_200_000)
        );
        assert!(!config.cache_index_header_enabled());
        let defaults = Config::try_parse_from(["strata-store-gateway"]).expect("defaults");
        assert_eq!(defaults.index_cache_size, 250 << 20);
        assert!(defaults.cache_index_header_enabled());
        assert!(
            Config::try_parse_from(["strata-store-gateway", "--index-cache-size=lots"]).is_err()
        );
    }

    #[tokio::test]
    async fn starts_and_stops() {
        let config = Config::try_parse_from([
            "strata-store-gateway",
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
