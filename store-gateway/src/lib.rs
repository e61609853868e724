//! `strata-store-gateway`: serves the blocks of an object-storage bucket over Thanos's
//! StoreAPI (`thanos.Store`, `thanos.info.Info`), reading indexes and chunks by byte range.
//!
//! - [`sync`]: lists the bucket, reads meta.json and applies Thanos's filters (partial uploads,
//!   time partition, relabel shard, consistency delay, deletion marks); the store is ready after
//!   the first sync, and later syncs load new blocks and drop removed ones without a restart.
//! - [`block`] and [`index_header`]: one block; its index-header (symbols and postings offset
//!   table, Thanos's binary format) is built from ranged reads into `--data-dir` and parsed when
//!   the block loads, or with `--store.enable-index-header-lazy-reader` on first use and
//!   dropped when idle.
//! - [`postings`]: matchers to series references with roaring bitmaps.
//! - [`store`]: the loaded block set and the StoreAPI (sorted, streamed Series; LabelNames;
//!   LabelValues; Info), with limits answered by ResourceExhausted.
//! - [`cache`]: byte-bounded moka caches (`--index-cache-size`, `--chunk-pool-size`).
//! - [`metrics`]: Thanos's metric names.
//!
//! A block that fails to load (a corrupt index, missing files) is counted in
//! `thanos_bucket_store_block_load_failures_total` and skipped; the others keep being served.
//! A block that fails during a query is reported as a warning frame (partial response WARN) or
//! fails the call (ABORT).
//!
//! Not implemented: remote index caches (memcached/redis `--index-cache.config` types are
//! refused at start-up), lazy expanded postings, Series response hints with query stats, the
//! `snappy` postings codecs of Thanos's shared caches. Both `--block-discovery-strategy`s find
//! the same blocks: the bucket's top level is listed either way.

pub mod block;
pub mod cache;
mod config;
pub mod error;
pub mod index_cache_config;
pub mod index_header;
pub mod metrics;
pub mod postings;
pub mod ranges;
pub use strata_common::relabel;
pub mod store;
pub mod sync;
#[cfg(test)]
mod testutil;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use strata_common::http_server::Prober;
use strata_common::objstore::{Bucket, BucketConfig, BucketMetrics};
use strata_common::shutdown::Shutdown;
use strata_common::telemetry::MetricsRegistry;
use strata_common::{grpc_server, http_server, telemetry};
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::{Error, Result};

use crate::block::BlockContext;
use crate::cache::Caches;
use crate::metrics::StoreMetrics;
use crate::relabel::RelabelConfig;
use crate::store::{BucketStore, InfoService, StoreConfig, StoreService};
use crate::sync::{FilterConfig, MetaFetcher};

/// The Thanos subcommand word this binary accepts as its optional first argument.
pub const SUBCOMMAND: &str = "store";
/// The component name in `thanos_status` and logs.
pub const COMPONENT: &str = "store";

/// A started store gateway: where it listens, its probe state and its block set.
#[derive(Debug, Clone)]
pub struct Started {
    pub http_address: SocketAddr,
    pub grpc_address: SocketAddr,
    pub prober: Prober,
    pub store: Arc<BucketStore>,
}

/// The smaller non-zero of two limits (0 = unlimited).
fn combined_limit(a: u64, b: u64) -> u64 {
    match (a, b) {
        (0, b) => b,
        (a, 0) => a,
        (a, b) => a.min(b),
    }
}

fn relabel_config(config: &Config) -> Result<RelabelConfig> {
    Ok(RelabelConfig::from_flags(
        config.selector_relabel_config.as_deref(),
        config.selector_relabel_config_file.as_ref(),
    )?)
}

/// Builds the store from flags, binds the servers and starts the sync loop on `shutdown`'s
/// tree. The store becomes ready (HTTP `/-/ready`, gRPC health, Info) after the first sync.
pub async fn start(
    config: &Config,
    metrics: &MetricsRegistry,
    shutdown: &Shutdown,
) -> Result<Started> {
    let bucket_config = BucketConfig::load(
        config.objstore.config.as_deref(),
        config.objstore.config_file.as_deref(),
    )
    .map_err(|source| Error::Objstore {
        source: Box::new(source),
    })?;
    let relabel = relabel_config(config)?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let (bucket_metrics, store_metrics) = metrics.with_registry(|registry| {
        (
            BucketMetrics::register(registry),
            StoreMetrics::register(registry),
        )
    });
    let bucket =
        Bucket::from_config_with_metrics(&bucket_config, bucket_metrics).map_err(|source| {
            Error::Objstore {
                source: Box::new(source),
            }
        })?;
    let index_cache = config.index_cache()?;
    let caches = Caches::new(
        index_cache.max_size,
        config.chunk_pool_size,
        store_metrics.clone(),
    )
    .with_index_item_limits(index_cache.max_item_size, index_cache.enabled_items);
    let context = BlockContext {
        bucket: bucket.clone(),
        data_dir: config.data_dir.clone(),
        caches,
        metrics: store_metrics.clone(),
        keep_header_files: config.cache_index_header_enabled(),
        lazy_headers: config.enable_index_header_lazy_reader,
    };
    let store = Arc::new(BucketStore::new(
        context,
        StoreConfig {
            min_time: config.min_time,
            max_time: config.max_time,
            series_limit: combined_limit(config.request_series_limit, config.touched_series_limit),
            samples_limit: combined_limit(config.request_samples_limit, config.series_sample_limit),
            bytes_limit: config.downloaded_bytes_limit,
            max_concurrency: config.series_max_concurrency,
            block_sync_concurrency: config.block_sync_concurrency,
        },
    ));
    let fetcher = Arc::new(MetaFetcher::new(
        bucket,
        FilterConfig {
            min_time: config.min_time,
            max_time: config.max_time,
            consistency_delay: config.consistency_delay,
            ignore_deletion_marks_delay: config.ignore_deletion_marks_delay,
            relabel,
            meta_fetch_concurrency: config.block_meta_fetch_concurrency,
        },
        store_metrics,
    ));

    let prober = Prober::new(COMPONENT, metrics);
    let routes = tonic::service::Routes::new(
        grpc_server::HealthService::new(prober.clone(), &["thanos.Store", "thanos.info.Info"])
            .into_server(),
    )
    .add_service(StoreService::new(Arc::clone(&store)).into_server())
    .add_service(InfoService::new(Arc::clone(&store)).into_server());
    let grpc_address = grpc_server::start(&config.grpc, metrics, routes, shutdown).await?;
    let router = http_server::router(metrics, &prober, axum::Router::new());
    let http_address = http_server::start(&config.http, router, shutdown).await?;
    prober.set_healthy();
    prober.set_not_ready("initial block sync has not finished");

    let interval = config.sync_block_duration.max(Duration::from_secs(1));
    // Idle headers are unloaded only by the lazy reader, and never with a timeout of 0.
    let idle = Some(config.index_header_idle_timeout)
        .filter(|idle| config.enable_index_header_lazy_reader && !idle.is_zero());
    {
        let store = Arc::clone(&store);
        let prober = prober.clone();
        shutdown.spawn("block-sync", move |token| {
            sync_loop(store, fetcher, prober, interval, idle, token)
        });
    }
    tracing::info!(data_dir = %config.data_dir.display(), "starting store node");
    Ok(Started {
        http_address,
        grpc_address,
        prober,
        store,
    })
}

/// Syncs until cancelled: the first sync is retried until it succeeds (then the store is
/// ready); later failures are logged and the previous block set keeps being served.
async fn sync_loop(
    store: Arc<BucketStore>,
    fetcher: Arc<MetaFetcher>,
    prober: Prober,
    interval: Duration,
    idle: Option<Duration>,
    token: CancellationToken,
) -> Result<()> {
    let mut retry = Duration::from_millis(500);
    loop {
        let started = std::time::Instant::now();
        match fetcher.fetch().await {
            Ok(metas) => {
                let outcome = store.sync_blocks(metas).await;
                tracing::info!(
                    loaded = outcome.loaded,
                    failed = outcome.failed,
                    dropped = outcome.dropped,
                    blocks = store.blocks().len(),
                    elapsed = ?started.elapsed(),
                    "synced blocks"
                );
                if !store.is_ready() {
                    store.set_ready();
                    prober.set_ready();
                }
                break;
            }
            Err(err) => {
                tracing::warn!(error = %strata_common::error::error_chain(&err), "initial block sync failed; retrying");
                tokio::select! {
                    () = token.cancelled() => return Ok(()),
                    () = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(Duration::from_secs(30));
            }
        }
    }
    let mut sync_tick = tokio::time::interval(interval);
    sync_tick.tick().await;
    let unload_every = idle.map_or(Duration::from_secs(3600), |idle| {
        (idle / 4).max(Duration::from_secs(1))
    });
    let mut unload_tick = tokio::time::interval(unload_every);
    loop {
        tokio::select! {
            () = token.cancelled() => return Ok(()),
            _ = unload_tick.tick(), if idle.is_some() => {
                let unloaded = idle.map_or(0, |idle| store.unload_idle_headers(idle));
                if unloaded > 0 {
                    tracing::debug!(unloaded, "unloaded idle index-headers");
                }
            }
            _ = sync_tick.tick() => {
                match fetcher.fetch().await {
                    Ok(metas) => {
                        let outcome = store.sync_blocks(metas).await;
                        if outcome != store::SyncOutcome::default() {
                            tracing::info!(loaded = outcome.loaded, failed = outcome.failed, dropped = outcome.dropped, "synced blocks");
                        }
                    }
                    Err(err) => tracing::warn!(error = %strata_common::error::error_chain(&err), "block sync failed; serving the previous block set"),
                }
            }
        }
    }
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
        .map_err(Error::from)
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
    async fn starts_syncs_and_stops() {
        let bucket_dir = tempfile::tempdir().expect("tempdir");
        let data_dir = tempfile::tempdir().expect("tempdir");
        testutil::write_block(
            bucket_dir.path(),
            &[("cluster", "a")],
            &testutil::numbered_series(5, 10),
        );
        let objstore = format!(
            "--objstore.config=type: FILESYSTEM\nconfig:\n  directory: {}\n",
            bucket_dir.path().display()
        );
        let data = format!("--data-dir={}", data_dir.path().display());
        let config = Config::try_parse_from([
            "strata-store-gateway",
            "--http-address=127.0.0.1:0",
            "--grpc-address=127.0.0.1:0",
            "--http-grace-period=1s",
            "--grpc-grace-period=1s",
            &objstore,
            &data,
        ])
        .expect("valid flags");
        let shutdown = Shutdown::new();
        let started = start(&config, &MetricsRegistry::new(), &shutdown)
            .await
            .expect("start");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !started.prober.is_ready() {
            assert!(std::time::Instant::now() < deadline, "not ready after 10s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(started.store.blocks().len(), 1);
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
