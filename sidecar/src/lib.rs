//! `strata-sidecar`: runs beside a Prometheus server, serves its recent data over Thanos's
//! StoreAPI and ships its finished blocks to object storage.
//!
//! Today this crate is the service shell: flags ([`Config`], Thanos's names), the HTTP server
//! (`/metrics`, `/-/healthy`, `/-/ready`) and the gRPC server (health service) on the shutdown
//! tree. The StoreAPI over remote read and the shipper come in later issues; until then
//! `/thanos.Store/*` answers `Unimplemented`.

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
pub const SUBCOMMAND: &str = "sidecar";
/// The component name in `thanos_status` and logs.
pub const COMPONENT: &str = "sidecar";

/// A started sidecar: where it listens and its probe state.
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
    // Not yet: Thanos is ready only once Prometheus's external labels are loaded.
    prober.set_ready();
    tracing::info!(
        prometheus_url = %config.prometheus_url,
        tsdb_path = %config.tsdb_path.display(),
        "starting sidecar; StoreAPI and shipper are not implemented yet"
    );
    Ok(Started {
        http_address,
        grpc_address,
        prober,
    })
}

/// Runs the sidecar until `shutdown` is cancelled (SIGTERM), then drains.
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
            "strata-sidecar",
            "--prometheus.url=http://prom:9090",
            "--tsdb.path=/prometheus",
            "--shipper.upload-compacted",
            "--min-time=-2h",
            "--objstore.config-file=/etc/bucket.yml",
            "--grpc-address=127.0.0.1:0",
        ])
        .expect("valid flags");
        assert_eq!(config.prometheus_url, "http://prom:9090");
        assert!(config.shipper_upload_compacted);
        assert_eq!(
            config.min_time,
            strata_common::flags::TimeOrDuration::Relative(-7_200_000)
        );
        assert_eq!(config.grpc.grpc_address, "127.0.0.1:0");
        assert_eq!(config.http.http_address, "0.0.0.0:10902");
    }

    #[tokio::test]
    async fn starts_and_stops() {
        let config = Config::try_parse_from([
            "strata-sidecar",
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
        assert!(started.prober.is_ready());
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
