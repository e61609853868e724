//! The ruler's metrics, named and labelled as Thanos's ruler exposes them
//! (reference/thanos-ruler-deploy.md section 1.7) so the Thanos mixin's rule dashboard and
//! alerts (`ThanosRuleHighRuleEvaluationFailures`, `ThanosNoRuleEvaluations`,
//! `ThanosRuleSenderIsFailingAlerts`, ...) work unchanged. Rule metrics carry `rule_group`
//! (`<file>;<group>`) and `strategy` (`abort`/`warn`).

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use strata_common::telemetry::MetricsRegistry;

use crate::discovery::DnsMetrics;

pub type LabelSet = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// Rule group and rule evaluation metrics.
#[derive(Debug, Clone, Default)]
pub struct RuleMetrics {
    pub evaluations: Family<LabelSet, Counter>,
    pub evaluation_failures: Family<LabelSet, Counter>,
    pub iterations: Family<LabelSet, Counter>,
    pub iterations_missed: Family<LabelSet, Counter>,
    pub interval_seconds: Family<LabelSet, FloatGauge>,
    pub last_evaluation_timestamp: Family<LabelSet, FloatGauge>,
    pub last_duration: Family<LabelSet, FloatGauge>,
    pub last_rule_duration_sum: Family<LabelSet, FloatGauge>,
    pub last_restore_duration: Family<LabelSet, FloatGauge>,
    pub rules: Family<LabelSet, Gauge>,
    pub last_evaluation_samples: Family<LabelSet, Gauge>,
    pub evaluation_with_warnings: Family<LabelSet, Counter>,
    pub loaded_rules: Family<LabelSet, Gauge>,
    pub config_last_reload_successful: Gauge,
    pub config_last_reload_success_timestamp: FloatGauge,
    pub query_dns: DnsMetrics,
    pub alertmanagers_dns: DnsMetrics,
    pub tsdb_out_of_bounds: Counter,
}

impl RuleMetrics {
    pub fn register(metrics: &MetricsRegistry) -> Self {
        let this = Self::default();
        metrics.with_registry(|registry| {
            registry.register(
                "prometheus_rule_evaluations",
                "The total number of rule evaluations.",
                this.evaluations.clone(),
            );
            registry.register(
                "prometheus_rule_evaluation_failures",
                "The total number of rule evaluation failures.",
                this.evaluation_failures.clone(),
            );
            registry.register(
                "prometheus_rule_group_iterations",
                "The total number of scheduled rule group evaluations, whether executed or missed.",
                this.iterations.clone(),
            );
            registry.register(
                "prometheus_rule_group_iterations_missed",
                "The total number of rule group evaluations missed due to slow rule group evaluation.",
                this.iterations_missed.clone(),
            );
            registry.register(
                "prometheus_rule_group_interval_seconds",
                "The interval of a rule group.",
                this.interval_seconds.clone(),
            );
            registry.register(
                "prometheus_rule_group_last_evaluation_timestamp_seconds",
                "The timestamp of the last rule group evaluation in seconds.",
                this.last_evaluation_timestamp.clone(),
            );
            registry.register(
                "prometheus_rule_group_last_duration_seconds",
                "The duration of the last rule group evaluation.",
                this.last_duration.clone(),
            );
            registry.register(
                "prometheus_rule_group_last_rule_duration_sum_seconds",
                "The sum of time in seconds it took to evaluate each rule in the group regardless of concurrency.",
                this.last_rule_duration_sum.clone(),
            );
            registry.register(
                "prometheus_rule_group_last_restore_duration_seconds",
                "The duration of the last alert rules alerts restoration using the `ALERTS_FOR_STATE` series.",
                this.last_restore_duration.clone(),
            );
            registry.register(
                "prometheus_rule_group_rules",
                "The number of rules.",
                this.rules.clone(),
            );
            registry.register(
                "prometheus_rule_group_last_evaluation_samples",
                "The number of samples returned during the last rule group evaluation.",
                this.last_evaluation_samples.clone(),
            );
            registry.register(
                "thanos_rule_evaluation_with_warnings",
                "The total number of rule evaluation that were successful but had warnings which can indicate partial error.",
                this.evaluation_with_warnings.clone(),
            );
            registry.register(
                "thanos_rule_loaded_rules",
                "Loaded rules partitioned by file and group.",
                this.loaded_rules.clone(),
            );
            registry.register(
                "thanos_rule_config_last_reload_successful",
                "Whether the last configuration reload attempt was successful.",
                this.config_last_reload_successful.clone(),
            );
            registry.register(
                "thanos_rule_config_last_reload_success_timestamp_seconds",
                "Timestamp of the last successful configuration reload.",
                this.config_last_reload_success_timestamp.clone(),
            );
            registry.register(
                "thanos_rule_query_apis_dns_lookups",
                "The number of times we tried to resolve query API addresses.",
                this.query_dns.lookups.clone(),
            );
            registry.register(
                "thanos_rule_query_apis_dns_failures",
                "The number of failed DNS lookups of query API addresses.",
                this.query_dns.failures.clone(),
            );
            registry.register(
                "thanos_rule_alertmanagers_dns_lookups",
                "The number of times we tried to resolve Alertmanager addresses.",
                this.alertmanagers_dns.lookups.clone(),
            );
            registry.register(
                "thanos_rule_alertmanagers_dns_failures",
                "The number of failed DNS lookups of Alertmanager addresses.",
                this.alertmanagers_dns.failures.clone(),
            );
            registry.register(
                "prometheus_tsdb_out_of_bound_samples",
                "Total number of out of bound samples ingestion failed attempts.",
                this.tsdb_out_of_bounds.clone(),
            );
        });
        // Both strategies are pre-created at 0, as Thanos does.
        for strategy in ["abort", "warn"] {
            let _ = this
                .evaluation_with_warnings
                .get_or_create(&vec![("strategy".to_owned(), strategy.to_owned())]);
        }
        this
    }
}

/// `thanos_alert_queue_*` and `thanos_alert_sender_*`.
#[derive(Debug, Clone)]
pub struct AlertMetrics {
    pub queue_pushed: Counter,
    pub queue_popped: Counter,
    pub queue_dropped: Counter,
    pub queue_capacity: Gauge,
    pub queue_length: Gauge,
    pub sent: Family<LabelSet, Counter>,
    pub errors: Family<LabelSet, Counter>,
    pub latency: Family<LabelSet, Histogram>,
    pub dropped: Counter,
}

impl AlertMetrics {
    pub fn register(metrics: &MetricsRegistry) -> Self {
        let this = Self {
            queue_pushed: Counter::default(),
            queue_popped: Counter::default(),
            queue_dropped: Counter::default(),
            queue_capacity: Gauge::default(),
            queue_length: Gauge::default(),
            sent: Family::default(),
            errors: Family::default(),
            latency: Family::new_with_constructor(histogram),
            dropped: Counter::default(),
        };
        metrics.with_registry(|registry| {
            registry.register(
                "thanos_alert_queue_alerts_pushed",
                "Total number of alerts pushed to queue.",
                this.queue_pushed.clone(),
            );
            registry.register(
                "thanos_alert_queue_alerts_popped",
                "Total number of alerts popped from queue.",
                this.queue_popped.clone(),
            );
            registry.register(
                "thanos_alert_queue_alerts_dropped",
                "Total number of alerts that were dropped from queue.",
                this.queue_dropped.clone(),
            );
            registry.register(
                "thanos_alert_queue_capacity",
                "Capacity of the alert queue.",
                this.queue_capacity.clone(),
            );
            registry.register(
                "thanos_alert_queue_length",
                "Length of the alert queue.",
                this.queue_length.clone(),
            );
            registry.register(
                "thanos_alert_sender_alerts_sent",
                "Total number of alerts sent by alertmanager.",
                this.sent.clone(),
            );
            registry.register(
                "thanos_alert_sender_errors",
                "Total number of errors while sending alerts to alertmanager.",
                this.errors.clone(),
            );
            registry.register(
                "thanos_alert_sender_latency_seconds",
                "Latency for sending alert notifications (not including dropped notifications).",
                this.latency.clone(),
            );
            registry.register(
                "thanos_alert_sender_alerts_dropped",
                "Total number of alerts dropped in case of all sends to alertmanagers failed.",
                this.dropped.clone(),
            );
        });
        this
    }
}

/// `http_client_request_duration_seconds{client,code,method}` for the query and
/// Alertmanager clients.
#[derive(Debug, Clone)]
pub struct HttpClientMetrics {
    client: &'static str,
    pub duration: Family<LabelSet, Histogram>,
}

impl HttpClientMetrics {
    pub fn register(metrics: &MetricsRegistry) -> Family<LabelSet, Histogram> {
        let family: Family<LabelSet, Histogram> = Family::new_with_constructor(histogram);
        metrics.with_registry(|registry| {
            registry.register(
                "http_client_request_duration_seconds",
                "Tracks the latency of HTTP client requests.",
                family.clone(),
            );
        });
        family
    }

    pub fn for_client(client: &'static str, duration: Family<LabelSet, Histogram>) -> Self {
        Self { client, duration }
    }

    /// Records one request (`code` 0 when no response came back).
    pub fn observe(&self, _what: &str, code: u16, method: &str, elapsed: std::time::Duration) {
        self.duration
            .get_or_create(&vec![
                ("client".to_owned(), self.client.to_owned()),
                ("code".to_owned(), code.to_string()),
                ("method".to_owned(), method.to_lowercase()),
            ])
            .observe(elapsed.as_secs_f64());
    }
}

/// The labels of one rule group's metrics.
pub fn group_labels(rule_group: &str, strategy: &str) -> LabelSet {
    vec![
        ("rule_group".to_owned(), rule_group.to_owned()),
        ("strategy".to_owned(), strategy.to_owned()),
    ]
}
