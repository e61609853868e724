//! The readiness and health state of a component, as Thanos's `prober` package keeps it:
//! `/-/healthy` is OK from start until shutdown begins, `/-/ready` only while the component
//! says it is ready (sidecar: external labels loaded; store: first block sync done; ...).
//! The gRPC health service watches the same state, and `thanos_status` exports it.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;

use crate::telemetry::MetricsRegistry;

/// A snapshot of the probe state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeState {
    pub healthy: bool,
    pub ready: bool,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    component: String,
    check: String,
}

/// Shared probe state of one component. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Prober {
    state: Arc<watch::Sender<ProbeState>>,
    status: Family<StatusLabels, Gauge>,
    component: &'static str,
}

impl Prober {
    /// A prober for `component` (e.g. "sidecar"), registering `thanos_status` in `metrics`.
    /// It starts neither healthy nor ready.
    pub fn new(component: &'static str, metrics: &MetricsRegistry) -> Self {
        let status = Family::<StatusLabels, Gauge>::default();
        metrics.with_registry(|registry| {
            registry.register(
                "thanos_status",
                "Represents status (0 indicates failure, 1 indicates success) of the component",
                status.clone(),
            );
        });
        let prober = Self {
            state: Arc::new(watch::Sender::new(ProbeState::default())),
            status,
            component,
        };
        prober.publish(ProbeState::default());
        prober
    }

    pub fn component(&self) -> &'static str {
        self.component
    }

    pub fn state(&self) -> ProbeState {
        *self.state.borrow()
    }

    pub fn is_ready(&self) -> bool {
        self.state().ready
    }

    pub fn is_healthy(&self) -> bool {
        self.state().healthy
    }

    /// Watch state changes (used by the gRPC health `Watch` RPC).
    pub fn subscribe(&self) -> watch::Receiver<ProbeState> {
        self.state.subscribe()
    }

    pub fn set_healthy(&self) {
        self.update(|state| state.healthy = true);
    }

    pub fn set_ready(&self) {
        if !self.is_ready() {
            tracing::info!(component = self.component, "changing probe status: ready");
        }
        self.update(|state| state.ready = true);
    }

    /// Marks the component not ready, e.g. while its Prometheus is down.
    pub fn set_not_ready(&self, reason: &str) {
        if self.is_ready() {
            tracing::warn!(
                component = self.component,
                reason,
                "changing probe status: not ready"
            );
        }
        self.update(|state| state.ready = false);
    }

    /// Shutdown began: neither healthy nor ready any more.
    pub fn set_shutting_down(&self) {
        self.update(|state| *state = ProbeState::default());
    }

    fn update(&self, change: impl FnOnce(&mut ProbeState)) {
        self.state.send_modify(change);
        self.publish(self.state());
    }

    fn publish(&self, state: ProbeState) {
        for (check, ok) in [("healthy", state.healthy), ("ready", state.ready)] {
            let labels = StatusLabels {
                component: self.component.to_owned(),
                check: check.to_owned(),
            };
            self.status.get_or_create(&labels).set(i64::from(ok));
        }
    }
}
