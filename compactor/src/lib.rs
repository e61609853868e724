//! `strata-compactor`: compacts, downsamples and applies retention to the blocks of a bucket,
//! as `thanos compact` does, without ever needing manual surgery. It must run as a singleton
//! per bucket (or per shard of it, with `--selector.relabel-config`).
//!
//! - [`config`]: Thanos's flags.
//! - [`sync`]: the bucket's blocks through Thanos's filters; [`plan`]: groups, planner,
//!   duplicates; [`worker`]: one iteration (garbage collection, compaction, downsampling,
//!   retention, deletion); [`bucket_blocks`]: upload, download, delete, markers.
//! - The block work itself is `strata_tsdb::compact` and `strata_tsdb::downsample`.
//!
//! Without `--wait` one iteration runs and the process exits 0, or non-zero on failure. With
//! it, iterations repeat every `--wait-interval` (cleanup every `--compact.cleanup-interval`
//! in between) until SIGTERM; a failed iteration is retried at the next interval, and the
//! progress gauges are recomputed every `--compact.progress-interval` in a task of their own.
//! The process is ready once its first bucket sync worked. Where going on could corrupt data
//! (a block it wrote fails its check) or merge what it was not allowed to (overlapping blocks
//! without vertical compaction) it halts as Thanos does: `thanos_compact_halted` 1, the reason
//! logged, no more iterations (cleanup and progress go on), metrics still served; without
//! `--wait` it exits non-zero. An unreadable source block is marked no-compact (or
//! no-downsample) with the reason and the rest carries on.

pub mod bucket_blocks;
mod config;
pub mod error;
pub mod metrics;
pub mod plan;
pub mod sync;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use strata_common::http_server::Prober;
use strata_common::objstore::{Bucket, BucketConfig, BucketMetrics};
use strata_common::relabel::RelabelConfig;
use strata_common::shutdown::Shutdown;
use strata_common::telemetry::MetricsRegistry;
use strata_common::{http_server, telemetry};

pub use config::Config;
pub use error::{Error, Result};

use crate::metrics::CompactorMetrics;
use crate::sync::{SyncConfig, Syncer};
use crate::worker::{Settings, Worker};

/// The Thanos subcommand word this binary accepts as its optional first argument.
pub const SUBCOMMAND: &str = "compact";
/// The component name in `thanos_status` and logs.
pub const COMPONENT: &str = "compact";

/// A started compactor: where it listens, its probe state and its worker.
pub struct Started {
    pub http_address: SocketAddr,
    pub prober: Prober,
    pub worker: Arc<Worker>,
}

/// Builds the worker from flags (also used by `strata-tools bucket`).
pub fn build_worker(config: &Config, bucket: Bucket, metrics: CompactorMetrics) -> Result<Worker> {
    config.validate()?;
    let relabel = RelabelConfig::from_flags(
        config.selector_relabel_config.as_deref(),
        config.selector_relabel_config_file.as_ref(),
    )?;
    metrics.delete_delay.set(config.delete_delay.as_secs_f64());
    let vertical_compaction = config.vertical_compaction();
    if vertical_compaction {
        tracing::info!(
            replica_labels = %config.deduplication_replica_labels.join(","),
            enable_vertical_compaction = config.compact_enable_vertical_compaction,
            deduplication_func = %config.deduplication_func,
            "vertical compaction is enabled: overlapping blocks of a group are merged"
        );
    }
    let syncer = Syncer::new(
        bucket,
        SyncConfig {
            min_time: config.min_time,
            max_time: config.max_time,
            relabel,
            consistency_delay_ms: config.consistency_delay.as_millis() as i64,
            replica_labels: config.deduplication_replica_labels.clone(),
            meta_fetch_concurrency: config.block_meta_fetch_concurrency,
        },
        metrics.clone(),
    );
    Ok(Worker {
        syncer,
        settings: Settings {
            data_dir: config.data_dir.clone(),
            retention_raw: config.retention_resolution_raw,
            retention_5m: config.retention_resolution_5m,
            retention_1h: config.retention_resolution_1h,
            delete_delay: config.delete_delay,
            downsampling_disabled: config.downsampling_disable,
            compact_concurrency: config.compact_concurrency,
            downsample_concurrency: config.downsample_concurrency,
            fetch_concurrency: config.compact_blocks_fetch_concurrency,
            files_concurrency: config.block_files_concurrency,
            vertical_compaction,
            overlap: config.dedup_func(),
            max_index_size: config.compact_block_max_index_size,
        },
        metrics,
        cancel: Arc::new(AtomicBool::new(false)),
    })
}

/// Binds the HTTP server and builds the worker; the process is healthy but not ready.
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
    let (bucket_metrics, compactor_metrics) = metrics.with_registry(|registry| {
        (
            BucketMetrics::register(registry),
            CompactorMetrics::register(registry),
        )
    });
    let bucket =
        Bucket::from_config_with_metrics(&bucket_config, bucket_metrics).map_err(|source| {
            Error::Objstore {
                source: Box::new(source),
            }
        })?;
    let worker = Arc::new(build_worker(config, bucket, compactor_metrics)?);
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| Error::io("create", &config.data_dir, e))?;
    // Working directories of a previous (possibly killed) process are stale.
    for dir in ["compact", "downsample"] {
        let path = config.data_dir.join(dir);
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| Error::io("remove", &path, e))?;
        }
    }
    let prober = Prober::new(COMPONENT, metrics);
    let router = http_server::router(metrics, &prober, axum::Router::new());
    let http_address = http_server::start(&config.http, router, shutdown).await?;
    prober.set_healthy();
    prober.set_not_ready("first bucket sync has not finished");
    // Shutdown stops the blocking compaction and downsampling work at the next series.
    {
        let cancel = Arc::clone(&worker.cancel);
        let token = shutdown.child_token();
        tokio::spawn(async move {
            token.cancelled().await;
            cancel.store(true, Ordering::Relaxed);
        });
    }
    tracing::info!(data_dir = %config.data_dir.display(), wait = config.wait, "starting compact node");
    Ok(Started {
        http_address,
        prober,
        worker,
    })
}

/// Runs the compactor: one iteration, or with `--wait` iterations until SIGTERM.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<()> {
    let metrics = MetricsRegistry::for_process();
    telemetry::load_tracing_config(&config.tracing)?;
    let started = start(&config, &metrics, &shutdown).await?;
    let drain = config.http.http_grace_period + Duration::from_secs(5);
    if !config.wait {
        let result = tokio::select! {
            result = run_once(&started) => result,
            () = shutdown.cancelled() => Err(Error::Halted { reason: "interrupted by a signal".to_owned() }),
        };
        started.prober.set_shutting_down();
        shutdown.cancel();
        shutdown.wait(drain).await;
        return result;
    }
    if !config.compact_progress_interval.is_zero() {
        let worker = Arc::clone(&started.worker);
        let interval = config.compact_progress_interval;
        shutdown.spawn("compact-progress", move |token| async move {
            progress_loop(worker, interval, token).await;
            Ok::<(), Error>(())
        });
    }
    {
        let worker = Arc::clone(&started.worker);
        let prober = started.prober.clone();
        let interval = config.wait_interval;
        let cleanup_interval = config.compact_cleanup_interval;
        shutdown.spawn("compact", move |token| async move {
            wait_loop(worker, prober, interval, cleanup_interval, token).await;
            Ok::<(), Error>(())
        });
    }
    let prober = started.prober.clone();
    Ok(shutdown
        .run_until_cancelled(|| prober.set_shutting_down(), drain)
        .await?)
}

async fn run_once(started: &Started) -> Result<()> {
    let prober = started.prober.clone();
    let result = started.worker.iteration(&move || prober.set_ready()).await;
    match &result {
        Ok(()) => {
            started.worker.metrics.iterations.inc();
        }
        Err(err) => {
            started.worker.metrics.iterations_failed.inc();
            if err.is_halt() {
                started.worker.metrics.halted.set(1);
            }
        }
    }
    result
}

async fn wait_loop(
    worker: Arc<Worker>,
    prober: Prober,
    interval: Duration,
    cleanup_interval: Duration,
    token: tokio_util::sync::CancellationToken,
) {
    loop {
        let ready = prober.clone();
        let on_synced = move || ready.set_ready();
        let result = tokio::select! {
            result = worker.iteration(&on_synced) => result,
            () = token.cancelled() => return,
        };
        match result {
            Ok(()) => {
                worker.metrics.iterations.inc();
            }
            Err(err) => {
                worker.metrics.iterations_failed.inc();
                let message = strata_common::error::error_chain(&err);
                if err.is_halt() {
                    worker.metrics.halted.set(1);
                    tracing::error!(error = %message, "critical error detected; halting: compaction stops, the process stays up for inspection");
                    // Thanos's compaction loop blocks forever here while its cleanup and
                    // progress loops go on.
                    loop {
                        if cleanup_interval.is_zero() {
                            token.cancelled().await;
                            return;
                        }
                        tokio::select! {
                            () = tokio::time::sleep(cleanup_interval) => {}
                            () = token.cancelled() => return,
                        }
                        background_cleanup(&worker).await;
                    }
                }
                worker.metrics.retries.inc();
                tracing::error!(error = %message, "compaction iteration failed; retrying after the wait interval");
            }
        }
        let deadline = tokio::time::Instant::now() + interval;
        loop {
            let next_cleanup = if cleanup_interval.is_zero() {
                deadline
            } else {
                (tokio::time::Instant::now() + cleanup_interval).min(deadline)
            };
            tokio::select! {
                () = tokio::time::sleep_until(next_cleanup) => {}
                () = token.cancelled() => return,
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            background_cleanup(&worker).await;
        }
    }
}

/// One `--compact.cleanup-interval` round between (or after halted) iterations.
async fn background_cleanup(worker: &Worker) {
    if let Err(err) = worker.cleanup().await {
        tracing::warn!(error = %strata_common::error::error_chain(&err), "background cleanup failed");
    }
}

/// Recomputes the `thanos_compact_todo_*` gauges from a fresh sync every `interval`, the
/// first time at once, as Thanos's progress calculators do beside the compaction loop (also
/// after a halt). A failed sync is retried at the next interval.
async fn progress_loop(
    worker: Arc<Worker>,
    interval: Duration,
    token: tokio_util::sync::CancellationToken,
) {
    loop {
        let result = tokio::select! {
            result = worker.update_progress() => result,
            () = token.cancelled() => return,
        };
        if let Err(err) = result {
            worker.metrics.retries.inc();
            tracing::warn!(error = %strata_common::error::error_chain(&err), "calculating compaction progress failed; retrying after the progress interval");
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = token.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests;
