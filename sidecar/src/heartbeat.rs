//! What the sidecar knows about its Prometheus (external labels, oldest sample time, whether
//! it answers) and the heartbeat that keeps it current (reference/thanos.md section 3.1).
//!
//! [`PrometheusMeta`] is shared by the StoreAPI (Info, Series label rules), the shipper (block
//! labels) and the heartbeat, which re-reads `/metrics` and `/api/v1/status/config` every
//! `--prometheus.get_config_interval`. A failed beat sets `thanos_sidecar_prometheus_up` to 0
//! and `/-/ready` to 503 at once; the next good beat restores both, without a restart.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_common::error::error_chain;
use strata_common::http_server::Prober;
use strata_tsdb::labels::Labels;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::metrics::SidecarMetrics;
use crate::prometheus::PrometheusClient;

/// A consistent view of Prometheus's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaSnapshot {
    pub external_labels: Labels,
    /// Oldest sample in Prometheus (ms), `i64::MIN` when unknown or empty.
    pub lowest_timestamp: i64,
    /// Whether the last heartbeat reached Prometheus.
    pub up: bool,
}

/// Shared, updated by the heartbeat.
#[derive(Debug, Clone)]
pub struct PrometheusMeta {
    inner: Arc<RwLock<MetaSnapshot>>,
}

impl PrometheusMeta {
    pub fn new(snapshot: MetaSnapshot) -> Self {
        Self {
            inner: Arc::new(RwLock::new(snapshot)),
        }
    }

    pub fn snapshot(&self) -> MetaSnapshot {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn external_labels(&self) -> Labels {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .external_labels
            .clone()
    }

    fn update(&self, change: impl FnOnce(&mut MetaSnapshot)) {
        change(&mut self.inner.write().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Reads external labels and the lowest timestamp; fails if there are no external labels.
pub async fn fetch(client: &PrometheusClient) -> Result<MetaSnapshot> {
    let external_labels = client.external_labels().await?;
    if external_labels.is_empty() {
        return Err(Error::NoExternalLabels);
    }
    let lowest_timestamp = client.lowest_timestamp_ms().await?;
    Ok(MetaSnapshot {
        external_labels,
        lowest_timestamp,
        up: true,
    })
}

/// Waits until Prometheus answers with its metadata, retrying every `retry`, for at most
/// `timeout`. No external labels is final: Thanos refuses to start without them.
pub async fn wait_for_prometheus(
    client: &PrometheusClient,
    timeout: Duration,
    retry: Duration,
    cancel: &CancellationToken,
) -> Result<MetaSnapshot> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let err = match fetch(client).await {
            Ok(snapshot) => return Ok(snapshot),
            Err(Error::NoExternalLabels) => return Err(Error::NoExternalLabels),
            Err(err) => err,
        };
        let reason = error_chain(&err);
        if tokio::time::Instant::now() + retry > deadline {
            return Err(Error::PrometheusNotReady { timeout, reason });
        }
        tracing::warn!(error = %reason, prometheus = client.base_url(), "prometheus not ready yet; retrying");
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            () = cancel.cancelled() => return Err(Error::PrometheusNotReady { timeout, reason: "shutting down".to_owned() }),
        }
    }
}

/// The heartbeat task: one beat every `interval` until `cancel`.
pub struct Heartbeat {
    pub client: PrometheusClient,
    pub meta: PrometheusMeta,
    pub prober: Prober,
    pub metrics: SidecarMetrics,
    pub interval: Duration,
}

impl Heartbeat {
    /// Records a good start-up read (Prometheus is up, the sidecar is ready).
    pub fn mark_up(&self) {
        self.metrics.prometheus_up.set(1);
        self.metrics.last_heartbeat_success.set(unix_seconds());
        self.prober.set_ready();
    }

    /// One beat: refresh the metadata and the up/ready state.
    pub async fn beat(&self) {
        match fetch(&self.client).await {
            Ok(snapshot) => {
                let was_up = self.meta.snapshot().up;
                if snapshot.external_labels != self.meta.external_labels() {
                    tracing::info!(labels = %snapshot.external_labels, "external labels changed");
                }
                self.meta.update(|current| *current = snapshot);
                self.mark_up();
                if !was_up {
                    tracing::info!("prometheus reachable again");
                }
            }
            Err(err) => {
                let reason = error_chain(&err);
                tracing::warn!(error = %reason, "heartbeat to prometheus failed");
                self.meta.update(|current| current.up = false);
                self.metrics.prometheus_up.set(0);
                self.prober.set_not_ready(&reason);
            }
        }
    }

    pub async fn run(self, cancel: CancellationToken) -> Result<()> {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick fires at once; start-up has just read the metadata.
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = cancel.cancelled() => return Ok(()),
            }
            // A beat bounded by the client's timeout, so a hung Prometheus turns us not ready.
            tokio::select! {
                () = self.beat() => {}
                () = cancel.cancelled() => return Ok(()),
            }
        }
    }
}

fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or(0.0)
}
