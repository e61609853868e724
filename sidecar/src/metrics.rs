//! The sidecar's metrics, named as Thanos names them so its dashboards and alerts
//! (`ThanosSidecarNoConnectionToStartedPrometheus`, `ThanosSidecarBucketOperationsFailed`, the
//! shipper panels) work unchanged. The objstore and gRPC metrics come from `strata_common`.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use strata_common::telemetry::MetricsRegistry;

/// `thanos_sidecar_*`: the heartbeat's view of Prometheus.
#[derive(Debug, Clone, Default)]
pub struct SidecarMetrics {
    /// 1 while the last heartbeat reached Prometheus, else 0.
    pub prometheus_up: Gauge,
    /// Unix time (seconds) of the last successful heartbeat.
    pub last_heartbeat_success: Gauge<f64, AtomicU64>,
}

impl SidecarMetrics {
    pub fn register(metrics: &MetricsRegistry) -> Self {
        let this = Self::default();
        metrics.with_registry(|registry| {
            registry.register(
                "thanos_sidecar_prometheus_up",
                "Boolean indicator whether the sidecar can reach its Prometheus peer.",
                this.prometheus_up.clone(),
            );
            registry.register(
                "thanos_sidecar_last_heartbeat_success_time_seconds",
                "Timestamp of the last successful heartbeat in seconds.",
                this.last_heartbeat_success.clone(),
            );
        });
        this
    }
}

/// `thanos_shipper_*`: what the shipper did.
#[derive(Debug, Clone, Default)]
pub struct ShipperMetrics {
    pub dir_syncs: Counter,
    pub dir_sync_failures: Counter,
    pub uploads: Counter,
    pub upload_failures: Counter,
    pub corrupted_blocks: Counter,
    /// 1 once every compacted block present at start-up is uploaded (with
    /// `--shipper.upload-compacted`).
    pub upload_compacted_done: Gauge,
}

impl ShipperMetrics {
    pub fn register(metrics: &MetricsRegistry) -> Self {
        let this = Self::default();
        metrics.with_registry(|registry| {
            registry.register(
                "thanos_shipper_dir_syncs",
                "Total number of dir syncs",
                this.dir_syncs.clone(),
            );
            registry.register(
                "thanos_shipper_dir_sync_failures",
                "Total number of failed dir syncs",
                this.dir_sync_failures.clone(),
            );
            registry.register(
                "thanos_shipper_uploads",
                "Total number of uploaded blocks",
                this.uploads.clone(),
            );
            registry.register(
                "thanos_shipper_upload_failures",
                "Total number of block upload failures",
                this.upload_failures.clone(),
            );
            registry.register(
                "thanos_shipper_corrupted_blocks",
                "Total number of corrupted blocks",
                this.corrupted_blocks.clone(),
            );
            registry.register(
                "thanos_shipper_upload_compacted_done",
                "If 1 it means shipper uploaded all compacted blocks from the filesystem.",
                this.upload_compacted_done.clone(),
            );
        });
        this
    }
}
