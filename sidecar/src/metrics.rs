//! The sidecar's metrics, named as Thanos names them so its dashboards and alerts
//! (`ThanosSidecarNoConnectionToStartedPrometheus`, `ThanosSidecarBucketOperationsFailed`, the
//! shipper panels) work unchanged. The objstore, gRPC and shipper metrics come from
//! `strata_common`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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

/// The label of `thanos_sidecar_reloader_info`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadMethodLabel {
    pub method: String,
}

/// `thanos_sidecar_reloader_*`: Thanos's `pkg/reloader` metrics, which its sidecar registers
/// with the `thanos_sidecar_` prefix. Counter names get their `_total` suffix from
/// `prometheus-client`.
#[derive(Debug, Clone, Default)]
pub struct ReloaderMetrics {
    pub reloads: Counter,
    pub reloads_failed: Counter,
    /// 1 if the last reload attempt succeeded, else 0.
    pub last_reload_successful: Gauge,
    pub last_reload_success_timestamp: Gauge<f64, AtomicU64>,
    /// Applies after the initial one (Thanos counts those only).
    pub config_apply_operations: Counter,
    pub config_apply_operations_failed: Counter,
    /// Unset variables met by the last expansion (Thanos stops at the first: 0 or 1).
    pub config_environment_variable_expansion_errors: Gauge,
    /// 1, labelled with the reload method.
    pub info: Family<ReloadMethodLabel, Gauge>,
    /// Paths watched: the config file and its directory, and each rule directory.
    pub watches: Gauge,
    /// Changes of the watched files seen by polling (Thanos counts fsnotify events).
    pub watch_events: Counter,
    /// Failures to read the watched files while polling (Thanos: fsnotify errors).
    pub watch_errors: Counter,
}

impl ReloaderMetrics {
    pub fn register(metrics: &MetricsRegistry) -> Self {
        let this = Self::default();
        metrics.with_registry(|registry| {
            registry.register(
                "thanos_sidecar_reloader_reloads",
                "Total number of reload requests.",
                this.reloads.clone(),
            );
            registry.register(
                "thanos_sidecar_reloader_reloads_failed",
                "Total number of reload requests that failed.",
                this.reloads_failed.clone(),
            );
            registry.register(
                "thanos_sidecar_reloader_last_reload_successful",
                "Whether the last reload attempt was successful",
                this.last_reload_successful.clone(),
            );
            registry.register(
                "thanos_sidecar_reloader_last_reload_success_timestamp_seconds",
                "Timestamp of the last successful reload",
                this.last_reload_success_timestamp.clone(),
            );
            registry.register(
                "thanos_sidecar_reloader_config_apply_operations",
                "Total number of config apply operations.",
                this.config_apply_operations.clone(),
            );
            registry.register(
                "thanos_sidecar_reloader_config_apply_operations_failed",
                "Total number of config apply operations that failed.",
                this.config_apply_operations_failed.clone(),
            );
            registry.register(
                "thanos_sidecar_reloader_config_environment_variable_expansion_errors",
                "Number of environment variable expansions that failed during the last operation.",
                this.config_environment_variable_expansion_errors.clone(),
            );
            registry.register(
                "thanos_sidecar_reloader_info",
                "A metric with a constant '1' value labeled by reload method (either 'http' or 'signal').",
                this.info.clone(),
            );
            registry.register(
                "thanos_sidecar_reloader_watches",
                "Number of resources watched by the reloader.",
                this.watches.clone(),
            );
            registry.register(
                "thanos_sidecar_reloader_watch_events",
                "Total number of events received by the reloader from the watcher.",
                this.watch_events.clone(),
            );
            registry.register(
                "thanos_sidecar_reloader_watch_errors",
                "Total number of errors received by the reloader from the watcher.",
                this.watch_errors.clone(),
            );
        });
        this
    }
}
