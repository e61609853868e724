//! `strata-sidecar`: runs beside a Prometheus server, serves its data over Thanos's StoreAPI
//! and ships its finished blocks to object storage (reference/thanos.md section 3).
//!
//! Start-up follows Thanos: the HTTP server answers `/-/healthy` at once and `/-/ready` with
//! 503 until Prometheus has been reached; with a bucket configured, the block duration flags
//! are checked (`/api/v1/status/flags`); the external labels are read (the sidecar refuses to
//! start without any); only then does the gRPC server listen. A heartbeat keeps
//! `thanos_sidecar_prometheus_up` and readiness true to life afterwards.
//!
//! Modules: [`config`] (flags), [`prometheus`] (HTTP client), [`remote_read`] (frame and
//! chunk decoding), [`heartbeat`] (shared metadata and its refresh), [`store`] (StoreAPI and
//! Info), [`reloader`] (config and rule watching, Prometheus reloads), [`metrics`], [`error`].
//! The shipper (uploads) is `strata_common::shipper`, shared with the ruler.

mod config;
pub mod error;
pub mod heartbeat;
pub mod metrics;
pub mod prometheus;
pub mod reloader;
pub mod remote_read;
pub mod store;

use std::net::SocketAddr;
use std::time::Duration;

use strata_common::http_server::Prober;
use strata_common::objstore::{Bucket, BucketConfig};
use strata_common::shipper::{LabelsSource, Shipper, ShipperConfig, ShipperMetrics};
use strata_common::shutdown::Shutdown;
use strata_common::telemetry::MetricsRegistry;
use strata_common::{grpc_server, http_server, telemetry};

pub use config::Config;
pub use error::{Error, Result};

use crate::heartbeat::{Heartbeat, PrometheusMeta};
use crate::metrics::{ReloaderMetrics, SidecarMetrics};
use crate::prometheus::{HttpClientConfig, PrometheusClient};
use crate::reloader::{Reloader, ReloaderConfig};
use crate::store::{Limits, SidecarStore};

/// The Thanos subcommand word this binary accepts as its optional first argument.
pub const SUBCOMMAND: &str = "sidecar";
/// The component name in `thanos_status` and logs.
pub const COMPONENT: &str = "sidecar";
/// The block duration Thanos recommends (and warns about when different).
const RECOMMENDED_BLOCK_DURATION: &str = "2h";

/// A started sidecar: where it listens and its probe state.
#[derive(Debug, Clone)]
pub struct Started {
    pub http_address: SocketAddr,
    pub grpc_address: SocketAddr,
    pub prober: Prober,
    pub meta: PrometheusMeta,
}

/// The bucket from `--objstore.config[-file]`, or `None` (serve, don't ship).
fn bucket(config: &Config, metrics: &MetricsRegistry) -> Result<Option<Bucket>> {
    let inline = config.objstore.config.as_deref();
    let file = config.objstore.config_file.as_deref();
    if inline.is_none_or(|text| text.trim().is_empty()) && file.is_none() {
        return Ok(None);
    }
    let bucket_config =
        BucketConfig::load(inline, file).map_err(|source| Error::ObjstoreConfig {
            source: Box::new(source),
        })?;
    let bucket = metrics
        .with_registry(|registry| Bucket::from_config(&bucket_config, registry).map_err(Box::new))
        .map_err(|source| Error::ObjstoreConfig { source })?;
    Ok(Some(bucket))
}

/// Checks Prometheus's block duration flags before shipping: local compaction must be off
/// (min == max block duration), else uploaded blocks would later be compacted into overlaps.
async fn check_block_durations(
    client: &PrometheusClient,
    config: &Config,
    retry: Duration,
    shutdown: &Shutdown,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + config.prometheus_ready_timeout;
    let flags = loop {
        match client.tsdb_flags().await {
            Ok(flags) => break flags,
            Err(err) if tokio::time::Instant::now() + retry < deadline => {
                tracing::warn!(error = %strata_common::error::error_chain(&err), "read prometheus flags; retrying");
                tokio::select! {
                    () = tokio::time::sleep(retry) => {}
                    () = shutdown.cancelled() => return Ok(()),
                }
            }
            Err(err) => return Err(err),
        }
    };
    let Some(flags) = flags else {
        tracing::warn!("prometheus has no /api/v1/status/flags; block durations not checked");
        return Ok(());
    };
    if let Some(path) = &flags.delay_compact_file {
        let expected = config.tsdb_path.join(&config.shipper_meta_file_name);
        if std::path::Path::new(path) != expected {
            tracing::warn!(prometheus = %path, expected = %expected.display(), "storage.tsdb.delay-compact-file.path differs from the shipper state file");
        }
        return Ok(());
    }
    if flags.min_block_duration != flags.max_block_duration {
        if config.shipper_ignore_unequal_block_size {
            tracing::warn!(min = %flags.min_block_duration, max = %flags.max_block_duration, "unequal block durations ignored; local compaction may cause overlaps in the bucket");
        } else {
            return Err(Error::UnequalBlockDurations {
                min: flags.min_block_duration,
                max: flags.max_block_duration,
            });
        }
    }
    if flags.min_block_duration != RECOMMENDED_BLOCK_DURATION {
        tracing::warn!(duration = %flags.min_block_duration, "block duration is not the recommended 2h");
    }
    Ok(())
}

/// Starts the sidecar on `shutdown`'s tree: HTTP and the reloader at once, then (once
/// Prometheus answers) the StoreAPI, the heartbeat and the shipper. Returns when all are
/// running.
pub async fn start(
    config: &Config,
    metrics: &MetricsRegistry,
    shutdown: &Shutdown,
) -> Result<Started> {
    let reloader_config = ReloaderConfig::from_flags(config)?;
    let prober = Prober::new(COMPONENT, metrics);
    let router = http_server::router(metrics, &prober, axum::Router::new());
    let http_address = http_server::start(&config.http, router, shutdown).await?;
    prober.set_healthy();
    prober.set_not_ready("waiting for prometheus");

    let bucket = bucket(config, metrics)?;
    let http_client = HttpClientConfig::load(
        config.prometheus_http_client.as_deref(),
        config.prometheus_http_client_file.as_deref(),
    )?;
    let client = PrometheusClient::with_read_idle_timeout(
        &config.prometheus_url,
        config.prometheus_get_config_timeout,
        config.remote_read_idle_timeout,
        &http_client,
    )?;
    // Before waiting for Prometheus, which may need the substituted config file to start.
    let reloader_metrics = ReloaderMetrics::register(metrics);
    match reloader_config {
        Some(reloader_config) => {
            let reloader = Reloader::new(reloader_config, client.clone(), reloader_metrics);
            shutdown.spawn("reloader", move |token| reloader.run(token));
        }
        None => tracing::info!("reloader: nothing to be watched"),
    }
    let retry = config
        .prometheus_get_config_interval
        .min(Duration::from_secs(2));
    tracing::info!(prometheus = %config.prometheus_url, tsdb_path = %config.tsdb_path.display(), shipping = bucket.is_some(), "starting sidecar");
    if bucket.is_some() {
        check_block_durations(&client, config, retry, shutdown).await?;
    }
    let snapshot = heartbeat::wait_for_prometheus(
        &client,
        config.prometheus_ready_timeout,
        retry,
        shutdown.token(),
    )
    .await?;
    tracing::info!(labels = %snapshot.external_labels, min_time = snapshot.lowest_timestamp, "prometheus reached");
    let meta = PrometheusMeta::new(snapshot);

    let store = SidecarStore::new(
        client.clone(),
        meta.clone(),
        prober.clone(),
        config.min_time,
        Limits {
            series: config.store_limits_request_series,
            samples: config.store_limits_request_samples,
        },
        strata_common::storeapi::streaming::SeriesStreamMetrics::register(metrics),
    );
    let (store_server, info_server) = store.into_servers();
    let routes = tonic::service::Routes::new(
        grpc_server::HealthService::new(prober.clone(), &["thanos.Store", "thanos.info.Info"])
            .into_server(),
    )
    .add_service(store_server)
    .add_service(info_server);
    let grpc_address = grpc_server::start(&config.grpc, metrics, routes, shutdown).await?;

    let heartbeat = Heartbeat {
        client,
        meta: meta.clone(),
        prober: prober.clone(),
        metrics: SidecarMetrics::register(metrics),
        interval: config.prometheus_get_config_interval,
    };
    heartbeat.mark_up();
    shutdown.spawn("prometheus-heartbeat", move |token| heartbeat.run(token));

    if let Some(bucket) = bucket {
        let shipper = Shipper::new(
            ShipperConfig {
                tsdb_path: config.tsdb_path.clone(),
                source: "sidecar",
                state_file_name: config.shipper_meta_file_name.clone(),
                upload_compacted: config.shipper_upload_compacted,
                skip_corrupted: config.shipper_skip_corrupted_blocks,
                hash_sha256: config.hash_func == "SHA256",
                upload_concurrency: config.shipper_upload_concurrency,
                allow_out_of_order_uploads: config.shipper_allow_out_of_order_uploads,
                interval: config.shipper_sync_interval,
            },
            bucket,
            {
                let meta = meta.clone();
                LabelsSource::new(move || meta.external_labels())
            },
            ShipperMetrics::register(metrics),
        );
        shutdown.spawn("shipper", move |token| shipper.run(token));
    }
    Ok(Started {
        http_address,
        grpc_address,
        prober,
        meta,
    })
}

/// Runs the sidecar until `shutdown` is cancelled (SIGTERM), then drains.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<()> {
    let metrics = MetricsRegistry::for_process();
    telemetry::load_tracing_config(&config.tracing)?;
    let drain = config
        .http
        .http_grace_period
        .max(config.grpc.grpc_grace_period)
        + Duration::from_secs(5);
    let started = match start(&config, &metrics, &shutdown).await {
        Ok(started) => started,
        Err(err) => {
            let stopping = shutdown.is_cancelled();
            // Stop the HTTP server already running before reporting the start-up failure.
            shutdown.cancel();
            shutdown.wait(drain).await;
            // A task that failed (the reloader's first apply) stopped the start-up: its error
            // is the one to report.
            if let Some(failure) = shutdown.failure() {
                return Err(strata_common::error::Error::TaskFailed {
                    task: failure.task,
                    reason: failure.error.clone(),
                }
                .into());
            }
            // SIGTERM while waiting for Prometheus is a clean stop, not a failure.
            return if stopping { Ok(()) } else { Err(err) };
        }
    };
    shutdown
        .run_until_cancelled(|| started.prober.set_shutting_down(), drain)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
