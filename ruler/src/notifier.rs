//! Sends alerts to Alertmanager's API v2 (`POST <am><prefix>/api/v2/alerts`) as Thanos's ruler
//! does (reference/thanos-ruler-deploy.md section 1.5): labels in `--alert.label-drop` removed,
//! the external labels not dropped set (overriding), a queue of 10000 that drops the oldest on
//! overflow, batches of 100 posted concurrently to every resolved Alertmanager of every group,
//! each request with its own timeout, no retry; a batch that reached none is counted in
//! `thanos_alert_sender_alerts_dropped_total`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::endpoints::EndpointGroup;
use crate::metrics::{AlertMetrics, HttpClientMetrics};

pub const QUEUE_CAPACITY: usize = 10_000;
pub const BATCH_SIZE: usize = 100;

/// One alert as Alertmanager's API v2 takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "generatorURL", skip_serializing_if = "String::is_empty")]
    pub generator_url: String,
}

/// RFC3339 with milliseconds in UTC, as the notifier writes alert times.
pub fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The alert queue and its senders.
#[derive(Debug)]
pub struct Notifier {
    queue: Mutex<VecDeque<PostableAlert>>,
    wake: Notify,
    groups: Vec<EndpointGroup>,
    external_labels: BTreeMap<String, String>,
    label_drop: Vec<String>,
    metrics: AlertMetrics,
    http_metrics: HttpClientMetrics,
}

impl Notifier {
    pub fn new(
        groups: Vec<EndpointGroup>,
        external_labels: BTreeMap<String, String>,
        label_drop: Vec<String>,
        metrics: AlertMetrics,
        http_metrics: HttpClientMetrics,
    ) -> Self {
        metrics.queue_capacity.set(QUEUE_CAPACITY as i64);
        Self {
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            groups,
            external_labels,
            label_drop,
            metrics,
            http_metrics,
        }
    }

    /// Whether any Alertmanager is configured.
    pub fn has_alertmanagers(&self) -> bool {
        !self.groups.is_empty()
    }

    /// Applies the label rules and queues `alerts`.
    pub fn send(&self, alerts: Vec<PostableAlert>) {
        if alerts.is_empty() || self.groups.is_empty() {
            return;
        }
        let mut processed = Vec::with_capacity(alerts.len());
        for mut alert in alerts {
            alert
                .labels
                .retain(|name, value| !self.label_drop.contains(name) && !value.is_empty());
            for (name, value) in &self.external_labels {
                if !self.label_drop.contains(name) && !value.is_empty() {
                    alert.labels.insert(name.clone(), value.clone());
                }
            }
            if alert.labels.is_empty() {
                continue;
            }
            processed.push(alert);
        }
        let mut queue = self.queue.lock();
        // An oversized push keeps only its newest alerts.
        if processed.len() > QUEUE_CAPACITY {
            let excess = processed.len() - QUEUE_CAPACITY;
            processed.drain(..excess);
            self.metrics.queue_dropped.inc_by(excess as u64);
        }
        let overflow = (queue.len() + processed.len()).saturating_sub(QUEUE_CAPACITY);
        if overflow > 0 {
            queue.drain(..overflow);
            self.metrics.queue_dropped.inc_by(overflow as u64);
        }
        self.metrics.queue_pushed.inc_by(processed.len() as u64);
        queue.extend(processed);
        self.metrics.queue_length.set(queue.len() as i64);
        drop(queue);
        self.wake.notify_one();
    }

    fn pop_batch(&self) -> Vec<PostableAlert> {
        let mut queue = self.queue.lock();
        let take = queue.len().min(BATCH_SIZE);
        let batch: Vec<PostableAlert> = queue.drain(..take).collect();
        self.metrics.queue_popped.inc_by(batch.len() as u64);
        self.metrics.queue_length.set(queue.len() as i64);
        batch
    }

    /// Sends queued batches until cancelled; what is queued at shutdown is sent first.
    pub async fn run(
        self: Arc<Self>,
        cancel: CancellationToken,
    ) -> Result<(), std::convert::Infallible> {
        loop {
            let batch = self.pop_batch();
            if batch.is_empty() {
                if cancel.is_cancelled() {
                    return Ok(());
                }
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = cancel.cancelled() => {}
                }
                continue;
            }
            self.send_batch(&batch).await;
        }
    }

    /// Posts one batch to every Alertmanager at once.
    pub async fn send_batch(&self, batch: &[PostableAlert]) {
        let body = match serde_json::to_vec(batch) {
            Ok(body) => body,
            Err(err) => {
                tracing::error!(error = %err, "encode alerts");
                return;
            }
        };
        let mut sends = Vec::new();
        for group in &self.groups {
            for (host, url) in group.urls("/api/v2/alerts").await {
                let request = group
                    .authorize(group.client.post(&url))
                    .timeout(group.timeout)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
                sends.push(async move {
                    let started = std::time::Instant::now();
                    let result = request.send().await;
                    (host, started.elapsed(), result)
                });
            }
        }
        let mut any_success = false;
        for (host, elapsed, result) in futures::future::join_all(sends).await {
            let labels = vec![("alertmanager".to_owned(), host.clone())];
            match result {
                Ok(response) if response.status().is_success() => {
                    self.http_metrics.observe(
                        "alertmanager",
                        response.status().as_u16(),
                        "POST",
                        elapsed,
                    );
                    any_success = true;
                    self.metrics
                        .sent
                        .get_or_create(&labels)
                        .inc_by(batch.len() as u64);
                    self.metrics
                        .latency
                        .get_or_create(&labels)
                        .observe(elapsed.as_secs_f64());
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    self.http_metrics
                        .observe("alertmanager", status, "POST", elapsed);
                    let text = response.text().await.unwrap_or_default();
                    tracing::warn!(alertmanager = %host, status, body = %text.chars().take(256).collect::<String>(), "sending alerts failed");
                    self.metrics.errors.get_or_create(&labels).inc();
                }
                Err(err) => {
                    self.http_metrics
                        .observe("alertmanager", 0, "POST", elapsed);
                    tracing::warn!(alertmanager = %host, error = %err, "sending alerts failed");
                    self.metrics.errors.get_or_create(&labels).inc();
                }
            }
        }
        if !any_success {
            self.metrics.dropped.inc_by(batch.len() as u64);
        }
    }

    /// Alerts waiting to be sent.
    pub fn queue_len(&self) -> usize {
        self.queue.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(name: &str) -> PostableAlert {
        PostableAlert {
            labels: BTreeMap::from([
                ("alertname".to_owned(), name.to_owned()),
                ("rule_replica".to_owned(), "a".to_owned()),
                ("empty".to_owned(), String::new()),
            ]),
            annotations: BTreeMap::new(),
            starts_at: format_time(1_700_000_000_000),
            ends_at: format_time(1_700_000_240_000),
            generator_url: String::new(),
        }
    }

    #[test]
    fn payload_shape_and_times() {
        let json = serde_json::to_string(&[alert("A")]).expect("encode");
        assert_eq!(
            json,
            r#"[{"labels":{"alertname":"A","empty":"","rule_replica":"a"},"startsAt":"2023-11-14T22:13:20.000Z","endsAt":"2023-11-14T22:17:20.000Z"}]"#
        );
    }

    #[test]
    fn label_drop_external_labels_and_queue_bound() {
        let registry = strata_common::telemetry::MetricsRegistry::new();
        let metrics = AlertMetrics::register(&registry);
        let http =
            HttpClientMetrics::for_client("alertmanager", HttpClientMetrics::register(&registry));
        let group = EndpointGroup::from_url(
            "http://127.0.0.1:1",
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(60),
            &strata_common::dns::Resolver::system(),
            Default::default(),
        )
        .expect("group");
        let notifier = Notifier::new(
            vec![group],
            BTreeMap::from([
                ("rule_replica".to_owned(), "a".to_owned()),
                ("cluster".to_owned(), "eu".to_owned()),
            ]),
            vec!["rule_replica".to_owned()],
            metrics.clone(),
            http,
        );
        notifier.send(vec![alert("A")]);
        let batch = notifier.pop_batch();
        assert_eq!(batch.len(), 1);
        assert_eq!(
            batch[0].labels,
            BTreeMap::from([
                ("alertname".to_owned(), "A".to_owned()),
                ("cluster".to_owned(), "eu".to_owned()),
            ])
        );
        let many: Vec<PostableAlert> = (0..QUEUE_CAPACITY + 5)
            .map(|i| alert(&i.to_string()))
            .collect();
        notifier.send(many);
        assert_eq!(notifier.queue_len(), QUEUE_CAPACITY);
        assert_eq!(metrics.queue_dropped.get(), 5);
        // The oldest went: the first queued alert is number 5.
        let batch = notifier.pop_batch();
        assert_eq!(batch.len(), BATCH_SIZE);
        assert_eq!(
            batch[0].labels.get("alertname").map(String::as_str),
            Some("5")
        );
    }
}
