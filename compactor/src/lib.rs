//! `strata-compactor`: compacts, downsamples and applies retention to the blocks of a bucket.
//! It must run as a singleton per bucket (or per shard of it).
//!
//! Today this crate is the service shell: flags ([`Config`], Thanos's names) and the HTTP
//! server (`/metrics`, `/-/healthy`, `/-/ready`) on the shutdown tree; with `--wait` it serves
//! until SIGTERM. Compaction, downsampling and retention come in later issues, so a single
//! run (without `--wait`) fails with an error saying so rather than pretending to succeed.

mod config;

use std::net::SocketAddr;
use std::time::Duration;

use strata_common::error::{Error, Result};
use strata_common::http_server::Prober;
use strata_common::shutdown::Shutdown;
use strata_common::telemetry::MetricsRegistry;
use strata_common::{http_server, telemetry};

pub use config::Config;

/// The Thanos subcommand word this binary accepts as its optional first argument.
pub const SUBCOMMAND: &str = "compact";
/// The component name in `thanos_status` and logs.
pub const COMPONENT: &str = "compact";

/// A started compactor: where it listens and its probe state.
#[derive(Debug, Clone)]
pub struct Started {
    pub http_address: SocketAddr,
    pub prober: Prober,
}

/// Binds the HTTP server and spawns it on `shutdown`'s tree.
pub async fn start(
    config: &Config,
    metrics: &MetricsRegistry,
    shutdown: &Shutdown,
) -> Result<Started> {
    let prober = Prober::new(COMPONENT, metrics);
    let router = http_server::router(metrics, &prober, axum::Router::new());
    let http_address = http_server::start(&config.http, router, shutdown).await?;
    prober.set_healthy();
    prober.set_ready();
    tracing::info!(
        data_dir = %config.data_dir.display(),
        wait = config.wait,
        "starting compact node; compaction, downsampling and retention are not implemented yet"
    );
    Ok(Started {
        http_address,
        prober,
    })
}

/// Runs the compactor: with `--wait` until `shutdown` is cancelled (SIGTERM), then drains.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<()> {
    if !config.wait {
        return Err(Error::InvalidFlag {
            flag: "--wait",
            reason: "a single compaction run is not implemented yet; run with --wait to serve metrics only"
                .to_owned(),
        });
    }
    let metrics = MetricsRegistry::for_process();
    telemetry::load_tracing_config(&config.tracing)?;
    let started = start(&config, &metrics, &shutdown).await?;
    let drain = config.http.http_grace_period + Duration::from_secs(5);
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
            "strata-compactor",
            "--data-dir=/var/thanos/compact",
            "--wait",
            "--retention.resolution-raw=30d",
            "--retention.resolution-5m=90d",
            "--retention.resolution-1h=1y",
            "--delete-delay=0",
            "--deduplication.replica-label=replica",
            "--objstore.config-file=/etc/bucket.yml",
        ])
        .expect("valid flags");
        assert!(config.wait);
        assert_eq!(
            config.retention_resolution_raw,
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(
            config.retention_resolution_1h,
            Duration::from_secs(365 * 86_400)
        );
        assert_eq!(config.delete_delay, Duration::ZERO);
        assert_eq!(
            config.deduplication_replica_labels,
            vec!["replica".to_owned()]
        );
        let defaults = Config::try_parse_from(["strata-compactor"]).expect("defaults");
        assert_eq!(defaults.delete_delay, Duration::from_secs(48 * 3600));
        assert_eq!(defaults.consistency_delay, Duration::from_secs(30 * 60));
    }

    #[tokio::test]
    async fn single_run_is_refused_until_implemented() {
        let config = Config::try_parse_from(["strata-compactor", "--http-address=127.0.0.1:0"])
            .expect("flags");
        let err = run(config, Shutdown::new())
            .await
            .expect_err("not implemented");
        assert!(err.to_string().contains("--wait"), "{err}");
    }

    #[tokio::test]
    async fn starts_and_stops() {
        let config =
            Config::try_parse_from(["strata-compactor", "--wait", "--http-address=127.0.0.1:0"])
                .expect("flags");
        let shutdown = Shutdown::new();
        let started = start(&config, &MetricsRegistry::new(), &shutdown)
            .await
            .expect("start");
        tokio::net::TcpStream::connect(started.http_address)
            .await
            .expect("http listens");
        shutdown.cancel();
        assert!(shutdown.wait(Duration::from_secs(10)).await);
        assert!(shutdown.failure().is_none());
    }
}
