//! Recording and alerting rules at one evaluation: results to samples, the alert state machine
//! (inactive, pending, firing, `for`, `keep_firing_for`, resolved) with `ALERTS` and
//! `ALERTS_FOR_STATE`, stale markers for series that disappear, and which alerts to notify
//! (Prometheus `rules/alerting.go`, `rules/recording.go`, `rules/group.go`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use strata_tsdb::labels::{Label, Labels};

use crate::notifier::{PostableAlert, format_time};
use crate::query::ResultSample;
use crate::rulefmt::{RuleKind, RuleSpec};
use crate::storage::{Sample, stale_nan};
use crate::template::{AlertData, QueryFunc};

/// Inactive alerts are kept this long so their resolution is re-sent.
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Ok,
    Err,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// One alert instance (times in Unix milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Labels including `alertname`.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub value: f64,
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    pub valid_until: i64,
    pub keep_firing_since: Option<i64>,
}

impl Alert {
    /// Prometheus's `needsSending`.
    fn needs_sending(&self, ts: i64, resend_delay: Duration) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        if let Some(resolved) = self.resolved_at
            && self.last_sent_at.is_none_or(|sent| resolved > sent)
        {
            return true;
        }
        self.last_sent_at
            .is_none_or(|sent| sent.saturating_add(duration_ms(resend_delay)) < ts)
    }
}

pub fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn to_labels(map: &BTreeMap<String, String>) -> Labels {
    Labels::new(
        map.iter()
            .map(|(name, value)| Label::new(name.clone(), value.clone()))
            .collect(),
    )
}

/// A rule with its evaluation state.
#[derive(Debug, Clone)]
pub struct RuleState {
    pub spec: RuleSpec,
    pub health: Health,
    pub last_error: Option<String>,
    /// Wall-clock ms of the last evaluation.
    pub last_evaluation: Option<i64>,
    pub evaluation_seconds: f64,
    /// Alerting rules: active alerts by label set.
    pub active: BTreeMap<BTreeMap<String, String>, Alert>,
    /// Series written at the last successful evaluation (for stale markers).
    pub series_written: BTreeSet<Labels>,
    /// Whether `ALERTS`/`ALERTS_FOR_STATE` are written (after the `for`-state restore).
    pub restored: bool,
    /// Since when evaluations fail (ms), for `--for-outage-tolerance`.
    pub failing_since: Option<i64>,
}

/// What the rule needs from outside at evaluation time.
pub struct EvalContext<'a> {
    pub external_labels: &'a BTreeMap<String, String>,
    pub external_url: &'a str,
    pub limit: usize,
    pub query_offset: Duration,
    pub query: &'a dyn QueryFunc,
}

/// The outcome of one rule evaluation.
#[derive(Debug, Default)]
pub struct EvalOutput {
    pub samples: Vec<Sample>,
}

impl RuleState {
    pub fn new(spec: RuleSpec, restored: bool) -> Self {
        Self {
            spec,
            health: Health::Unknown,
            last_error: None,
            last_evaluation: None,
            evaluation_seconds: 0.0,
            active: BTreeMap::new(),
            series_written: BTreeSet::new(),
            restored,
            failing_since: None,
        }
    }

    pub fn is_alerting(&self) -> bool {
        matches!(self.spec.kind, RuleKind::Alerting { .. })
    }

    /// Turns a successful query result at `ts` (ms) into samples (and alert state).
    pub fn eval(
        &mut self,
        result: Vec<ResultSample>,
        ts: i64,
        ctx: &EvalContext<'_>,
    ) -> Result<EvalOutput, String> {
        let sample_ts = ts.saturating_sub(duration_ms(ctx.query_offset));
        let mut samples = match &self.spec.kind {
            RuleKind::Recording { record } => {
                self.eval_recording(record.clone(), result, sample_ts, ctx.limit)?
            }
            RuleKind::Alerting { .. } => self.eval_alerting(result, ts, sample_ts, ctx)?,
        };
        // Stale markers for the series that were written last time and not now.
        let written: BTreeSet<Labels> = samples.iter().map(|s| s.labels.clone()).collect();
        for gone in self.series_written.difference(&written) {
            samples.push(Sample {
                labels: gone.clone(),
                t: sample_ts,
                v: stale_nan(),
            });
        }
        self.series_written = written;
        Ok(EvalOutput { samples })
    }

    fn eval_recording(
        &self,
        record: String,
        result: Vec<ResultSample>,
        ts: i64,
        limit: usize,
    ) -> Result<Vec<Sample>, String> {
        let mut seen = BTreeSet::new();
        let mut samples = Vec::with_capacity(result.len());
        for sample in result {
            let mut labels = sample.labels;
            labels.insert("__name__".to_owned(), record.clone());
            for (name, value) in &self.spec.labels {
                if value.is_empty() {
                    labels.remove(name);
                } else {
                    labels.insert(name.clone(), value.clone());
                }
            }
            let labels = to_labels(&labels);
            if !seen.insert(labels.clone()) {
                return Err(
                    "vector contains metrics with the same labelset after applying rule labels"
                        .to_owned(),
                );
            }
            samples.push(Sample {
                labels,
                t: ts,
                v: sample.value,
            });
        }
        if limit > 0 && samples.len() > limit {
            return Err(format!(
                "exceeded limit of {limit} with {} series",
                samples.len()
            ));
        }
        Ok(samples)
    }

    fn eval_alerting(
        &mut self,
        result: Vec<ResultSample>,
        ts: i64,
        sample_ts: i64,
        ctx: &EvalContext<'_>,
    ) -> Result<Vec<Sample>, String> {
        let RuleKind::Alerting {
            name,
            hold,
            keep_firing_for,
            label_templates,
            annotations,
        } = &self.spec.kind
        else {
            return Ok(Vec::new());
        };
        let hold = duration_ms(*hold);
        let keep_firing_for = duration_ms(*keep_firing_for);
        let mut current: BTreeMap<BTreeMap<String, String>, (BTreeMap<String, String>, f64)> =
            BTreeMap::new();
        for sample in result {
            let data = AlertData {
                labels: sample.labels.clone(),
                external_labels: ctx.external_labels.clone(),
                external_url: ctx.external_url.to_owned(),
                value: sample.value,
            };
            let mut labels = sample.labels;
            labels.remove("__name__");
            for (label, text, template) in label_templates {
                let value = match template {
                    Some(template) => template.expand_alert(&data, ctx.query),
                    None => text.clone(),
                };
                if value.is_empty() {
                    labels.remove(label);
                } else {
                    labels.insert(label.clone(), value);
                }
            }
            labels.insert("alertname".to_owned(), name.clone());
            let expanded: BTreeMap<String, String> = annotations
                .iter()
                .map(|(key, _, template)| (key.clone(), template.expand_alert(&data, ctx.query)))
                .collect();
            if current.contains_key(&labels) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .to_owned(),
                );
            }
            current.insert(labels, (expanded, sample.value));
        }
        for (labels, (annotations, value)) in &current {
            match self.active.get_mut(labels) {
                Some(alert) if alert.state != AlertState::Inactive => {
                    alert.value = *value;
                    alert.annotations = annotations.clone();
                }
                _ => {
                    self.active.insert(
                        labels.clone(),
                        Alert {
                            labels: labels.clone(),
                            annotations: annotations.clone(),
                            state: AlertState::Pending,
                            value: *value,
                            active_at: ts,
                            fired_at: None,
                            resolved_at: None,
                            last_sent_at: None,
                            valid_until: 0,
                            keep_firing_since: None,
                        },
                    );
                }
            }
        }
        let retention = duration_ms(RESOLVED_RETENTION);
        let mut samples = Vec::new();
        let mut active_or_pending = 0usize;
        let mut remove = Vec::new();
        for (key, alert) in &mut self.active {
            if !current.contains_key(key) {
                let mut keep_firing = false;
                if alert.state == AlertState::Firing && keep_firing_for > 0 {
                    let since = *alert.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts.saturating_sub(since) < keep_firing_for;
                }
                if alert.state == AlertState::Pending
                    || alert
                        .resolved_at
                        .is_some_and(|resolved| ts.saturating_sub(resolved) > retention)
                {
                    remove.push(key.clone());
                }
                if alert.state != AlertState::Inactive && !keep_firing {
                    alert.state = AlertState::Inactive;
                    alert.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                alert.keep_firing_since = None;
            }
            active_or_pending += 1;
            if alert.state == AlertState::Pending && ts.saturating_sub(alert.active_at) >= hold {
                alert.state = AlertState::Firing;
                alert.fired_at = Some(ts);
            }
            if self.restored {
                let mut labels = alert.labels.clone();
                labels.insert("__name__".to_owned(), "ALERTS".to_owned());
                labels.insert("alertstate".to_owned(), alert.state.as_str().to_owned());
                samples.push(Sample {
                    labels: to_labels(&labels),
                    t: sample_ts,
                    v: 1.0,
                });
                let mut labels = alert.labels.clone();
                labels.insert("__name__".to_owned(), "ALERTS_FOR_STATE".to_owned());
                samples.push(Sample {
                    labels: to_labels(&labels),
                    t: sample_ts,
                    v: (alert.active_at / 1000) as f64,
                });
            }
        }
        for key in remove {
            self.active.remove(&key);
        }
        if ctx.limit > 0 && active_or_pending > ctx.limit {
            self.active.clear();
            return Err(format!(
                "exceeded limit of {} with {active_or_pending} alerts",
                ctx.limit
            ));
        }
        Ok(samples)
    }

    /// Alerts due for (re-)sending at `ts`, marked as sent; `interval` is the group's.
    pub fn alerts_to_send(
        &mut self,
        ts: i64,
        resend_delay: Duration,
        interval: Duration,
        generator_url: &str,
    ) -> Vec<PostableAlert> {
        let delta = duration_ms(resend_delay.max(interval));
        let mut out = Vec::new();
        for alert in self.active.values_mut() {
            if !alert.needs_sending(ts, resend_delay) {
                continue;
            }
            alert.last_sent_at = Some(ts);
            alert.valid_until = ts.saturating_add(delta.saturating_mul(4));
            let ends_at = alert.resolved_at.unwrap_or(alert.valid_until);
            out.push(PostableAlert {
                labels: alert.labels.clone(),
                annotations: alert.annotations.clone(),
                starts_at: format_time(alert.fired_at.unwrap_or(alert.active_at)),
                ends_at: format_time(ends_at),
                generator_url: generator_url.to_owned(),
            });
        }
        out
    }

    /// The rule's state for the API: firing if any alert fires, else pending if any is
    /// pending, else inactive.
    pub fn state(&self) -> AlertState {
        let mut state = AlertState::Inactive;
        for alert in self.active.values() {
            match alert.state {
                AlertState::Firing => return AlertState::Firing,
                AlertState::Pending => state = AlertState::Pending,
                AlertState::Inactive => {}
            }
        }
        state
    }

    /// Keeps the alerts and staleness state of `old` (same rule across a reload).
    pub fn copy_state(&mut self, old: &RuleState) {
        self.active = old.active.clone();
        self.series_written = old.series_written.clone();
        self.health = old.health;
        self.last_error = old.last_error.clone();
        self.last_evaluation = old.last_evaluation;
        self.evaluation_seconds = old.evaluation_seconds;
        self.restored = old.restored;
        self.failing_since = old.failing_since;
    }

    /// `for`-state restore from the last `ALERTS_FOR_STATE` sample of each pending alert
    /// (Prometheus `RestoreForState`); `last` looks a series up in the local TSDB.
    pub fn restore_for_state(
        &mut self,
        now: i64,
        grace_period: Duration,
        mut last: impl FnMut(&Labels) -> Option<(i64, f64)>,
    ) {
        let RuleKind::Alerting { hold, .. } = &self.spec.kind else {
            return;
        };
        let hold = duration_ms(*hold);
        let grace = duration_ms(grace_period);
        if hold < grace {
            self.restored = true;
            return;
        }
        for alert in self.active.values_mut() {
            let mut labels = alert.labels.clone();
            labels.insert("__name__".to_owned(), "ALERTS_FOR_STATE".to_owned());
            let Some((down_at, value)) = last(&to_labels(&labels)) else {
                continue;
            };
            if crate::storage::is_stale_nan(value) || !value.is_finite() {
                continue;
            }
            let down_at = down_at.div_euclid(1000).saturating_mul(1000);
            let mut restored_active_at = (value as i64).saturating_mul(1000);
            let pending = down_at.saturating_sub(restored_active_at);
            let remaining = hold.saturating_sub(pending);
            if remaining <= 0 {
                // It was firing when the ruler went down; the next evaluation fires it again.
            } else if remaining < grace {
                restored_active_at = now.saturating_add(grace).saturating_sub(hold);
            } else {
                restored_active_at = restored_active_at.saturating_add(now.saturating_sub(down_at));
            }
            alert.active_at = restored_active_at;
            tracing::debug!(alert = ?alert.labels, active_at = restored_active_at, "restored for state");
        }
        self.restored = true;
    }
}

#[cfg(test)]
mod tests;
