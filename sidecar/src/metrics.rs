//! The sidecar's metrics, named as Thanos names them so its dashboards and alerts
//! (`ThanosSidecarNoConnectionToStartedPrometheus`, `ThanosSidecarBucketOperationsFailed`, the
//! shipper panels) work unchanged. The objstore, gRPC and shipper metrics come from
//! `strata_common`.

use std::sync::atomic::AtomicU64;

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
