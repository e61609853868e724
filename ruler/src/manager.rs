//! The rules manager: one task per rule group evaluating its rules in file order on the
//! group's interval (first at the group's slot, `hash(name, file) mod interval`, as
//! Prometheus spreads groups), writing samples to the local TSDB, notifying Alertmanager,
//! restoring `for` state once after the second evaluation, and reloading files (SIGHUP,
//! `POST /-/reload`) without losing alert state: a bad file keeps the old rules running.
//!
//! Failed evaluations write nothing; an alerting rule whose queries fail keeps re-sending its
//! firing alerts for `--for-outage-tolerance`, so Alertmanager does not resolve them while
//! the querier is unreachable (Thanos sends nothing and Alertmanager resolves them after
//! `endsAt`, reference/thanos-ruler-deploy.md section 6, #6223).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::metrics::{RuleMetrics, group_labels};
use crate::notifier::Notifier;
use crate::query::QueryClient;
use crate::rulefmt::{Defaults, GroupSpec, Strategy};
use crate::rules::{EvalContext, Health, RuleState, duration_ms};
use crate::storage::LocalTsdb;
use crate::template::{QueryFunc, QuerySample};

/// One group and the state of its rules.
#[derive(Debug, Clone)]
pub struct GroupState {
    pub file: String,
    pub name: String,
    pub interval: Duration,
    pub query_offset: Duration,
    pub limit: usize,
    pub strategy: Strategy,
    pub rules: Vec<RuleState>,
    pub last_evaluation: Option<i64>,
    pub evaluation_seconds: f64,
    /// Restore `for` state after the second evaluation (first load only).
    pub should_restore: bool,
}

impl GroupState {
    fn new(spec: GroupSpec, should_restore: bool) -> Self {
        Self {
            rules: spec
                .rules
                .into_iter()
                .map(|rule| RuleState::new(rule, !should_restore))
                .collect(),
            file: spec.file,
            name: spec.name,
            interval: spec.interval,
            query_offset: spec.query_offset,
            limit: spec.limit,
            strategy: spec.strategy,
            last_evaluation: None,
            evaluation_seconds: 0.0,
            should_restore,
        }
    }

    /// `<file>;<group>`: the `rule_group` label.
    pub fn key(&self) -> String {
        format!("{};{}", self.file, self.name)
    }

    /// The group's evaluation slot offset within its interval.
    fn offset(&self) -> Duration {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.name.hash(&mut hasher);
        self.file.hash(&mut hasher);
        let interval = self.interval.as_nanos().max(1);
        Duration::from_nanos((u128::from(hasher.finish()) % interval) as u64)
    }
}

/// What every group task shares.
#[derive(Debug)]
pub struct Runtime {
    pub query: Arc<QueryClient>,
    pub storage: Arc<LocalTsdb>,
    pub notifier: Arc<Notifier>,
    pub external_labels: BTreeMap<String, String>,
    pub alert_query_url: String,
    pub alert_query_template: String,
    pub resend_delay: Duration,
    pub for_outage_tolerance: Duration,
    pub for_grace_period: Duration,
    pub metrics: RuleMetrics,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A template's `query`, run on the rule's query path from a blocking thread.
struct BlockingQuery {
    handle: tokio::runtime::Handle,
    client: Arc<QueryClient>,
    time_ms: i64,
    strategy: Strategy,
}

impl QueryFunc for BlockingQuery {
    fn query(&self, expr: &str) -> std::result::Result<Vec<QuerySample>, String> {
        let output = self
            .handle
            .block_on(self.client.instant(expr, self.time_ms, self.strategy))
            .map_err(|err| strata_common::error::error_chain(&err))?;
        Ok(output
            .samples
            .into_iter()
            .map(|sample| QuerySample {
                labels: sample.labels,
                value: sample.value,
            })
            .collect())
    }
}

impl Runtime {
    fn generator_url(&self, expr: &str) -> String {
        let escaped = crate::template::query_escape(expr);
        format!(
            "{}{}",
            self.alert_query_url,
            self.alert_query_template.replace("{{.Expr}}", &escaped)
        )
    }

    /// Evaluates every rule of the group at `ts` (ms).
    async fn evaluate(&self, state: &Arc<Mutex<GroupState>>, ts: i64) {
        let started = Instant::now();
        // Until its samples are appended, no window holding `ts` is cut by the clock.
        let _pending = self.storage.begin_write(ts);
        let (rule_count, strategy, group_key, query_offset, limit, interval) = {
            let group = state.lock();
            (
                group.rules.len(),
                group.strategy,
                group.key(),
                group.query_offset,
                group.limit,
                group.interval,
            )
        };
        let labels = group_labels(&group_key, strategy.lower());
        let mut total_samples = 0usize;
        let mut rule_seconds = 0.0;
        for index in 0..rule_count {
            let rule_started = Instant::now();
            let expr = {
                let group = state.lock();
                match group.rules.get(index) {
                    Some(rule) => rule.spec.expr.clone(),
                    None => break,
                }
            };
            self.metrics.evaluations.get_or_create(&labels).inc();
            let query_time = ts.saturating_sub(duration_ms(query_offset));
            let result = self.query.instant(&expr, query_time, strategy).await;
            let outcome = match result {
                Ok(output) => {
                    if !output.warnings.is_empty() {
                        self.metrics
                            .evaluation_with_warnings
                            .get_or_create(&vec![(
                                "strategy".to_owned(),
                                strategy.lower().to_owned(),
                            )])
                            .inc();
                        tracing::warn!(group = %group_key, rule = %expr, warnings = ?output.warnings, "rule evaluation returned warnings");
                    }
                    // Evaluated on a copy, so the API never waits for a template's query.
                    let snapshot = state.lock().rules.get(index).cloned();
                    let handle = tokio::runtime::Handle::current();
                    let client = Arc::clone(&self.query);
                    let external_labels = self.external_labels.clone();
                    let external_url = self.alert_query_url.clone();
                    // Templates may call `query`, which blocks: run the rule off the workers.
                    tokio::task::spawn_blocking(move || {
                        let query = BlockingQuery {
                            handle,
                            client,
                            time_ms: query_time,
                            strategy,
                        };
                        let ctx = EvalContext {
                            external_labels: &external_labels,
                            external_url: &external_url,
                            limit,
                            query_offset,
                            query: &query,
                        };
                        snapshot.map(|mut rule| {
                            let result = rule.eval(output.samples, ts, &ctx);
                            (rule, result)
                        })
                    })
                    .await
                    .map_err(|err| format!("rule evaluation task: {err}"))
                    .and_then(|evaluated| {
                        let Some((rule, result)) = evaluated else {
                            return Ok(Default::default());
                        };
                        // Only this task changes its group's rules (a reload waits for it).
                        if let Some(slot) = state.lock().rules.get_mut(index) {
                            *slot = rule;
                        }
                        result
                    })
                }
                Err(err) => Err(strata_common::error::error_chain(&err)),
            };
            let elapsed = rule_started.elapsed().as_secs_f64();
            rule_seconds += elapsed;
            let mut to_append = Vec::new();
            {
                let mut group = state.lock();
                let Some(rule) = group.rules.get_mut(index) else {
                    break;
                };
                rule.last_evaluation = Some(now_ms());
                rule.evaluation_seconds = elapsed;
                match outcome {
                    Ok(output) => {
                        rule.health = Health::Ok;
                        rule.last_error = None;
                        rule.failing_since = None;
                        total_samples += output.samples.len();
                        to_append = output.samples;
                        if rule.is_alerting() {
                            let url = self.generator_url(&rule.spec.expr);
                            let alerts = rule.alerts_to_send(ts, self.resend_delay, interval, &url);
                            self.notifier.send(alerts);
                        }
                    }
                    Err(reason) => {
                        self.metrics
                            .evaluation_failures
                            .get_or_create(&labels)
                            .inc();
                        tracing::warn!(group = %group_key, rule = %rule.spec.name(), error = %reason, "rule evaluation failed");
                        rule.health = Health::Err;
                        rule.last_error = Some(reason);
                        let since = *rule.failing_since.get_or_insert(ts);
                        if rule.is_alerting()
                            && ts.saturating_sub(since) < duration_ms(self.for_outage_tolerance)
                        {
                            // Keep firing alerts alive in Alertmanager through the outage.
                            let url = self.generator_url(&rule.spec.expr);
                            let alerts = rule.alerts_to_send(ts, self.resend_delay, interval, &url);
                            self.notifier.send(alerts);
                        }
                    }
                }
            }
            if !to_append.is_empty() {
                let storage = Arc::clone(&self.storage);
                let now = now_ms();
                let appended =
                    tokio::task::spawn_blocking(move || storage.append(&to_append, now)).await;
                match appended {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        tracing::error!(group = %group_key, error = %strata_common::error::error_chain(&err), "append rule samples to the local TSDB failed");
                    }
                    Err(err) => {
                        tracing::error!(group = %group_key, error = %err, "append task failed");
                    }
                }
            }
        }
        let out_of_bounds = self
            .storage
            .out_of_bounds
            .swap(0, std::sync::atomic::Ordering::Relaxed);
        if out_of_bounds > 0 {
            self.metrics.tsdb_out_of_bounds.inc_by(out_of_bounds);
        }
        let elapsed = started.elapsed().as_secs_f64();
        {
            let mut group = state.lock();
            group.last_evaluation = Some(now_ms());
            group.evaluation_seconds = elapsed;
        }
        self.metrics
            .last_duration
            .get_or_create(&labels)
            .set(elapsed);
        self.metrics
            .last_rule_duration_sum
            .get_or_create(&labels)
            .set(rule_seconds);
        self.metrics
            .last_evaluation_timestamp
            .get_or_create(&labels)
            .set(ts as f64 / 1000.0);
        self.metrics
            .last_evaluation_samples
            .get_or_create(&labels)
            .set(total_samples as i64);
    }

    /// Restores `for` state of every alerting rule of the group from the local TSDB.
    fn restore(&self, state: &Arc<Mutex<GroupState>>) {
        let started = Instant::now();
        let now = now_ms();
        let mint = now.saturating_sub(duration_ms(self.for_outage_tolerance));
        let mut group = state.lock();
        let labels = group_labels(&group.key(), group.strategy.lower());
        for rule in &mut group.rules {
            let storage = &self.storage;
            rule.restore_for_state(now, self.for_grace_period, |series| {
                match storage.last_sample(series, mint, now) {
                    Ok(found) => found,
                    Err(err) => {
                        tracing::warn!(error = %strata_common::error::error_chain(&err), "read ALERTS_FOR_STATE for restore");
                        None
                    }
                }
            });
            rule.restored = true;
        }
        group.should_restore = false;
        self.metrics
            .last_restore_duration
            .get_or_create(&labels)
            .set(started.elapsed().as_secs_f64());
    }

    /// Runs one group until `cancel`.
    async fn run_group(
        self: Arc<Self>,
        state: Arc<Mutex<GroupState>>,
        cancel: CancellationToken,
    ) -> std::result::Result<(), std::convert::Infallible> {
        let (interval, offset, strategy, key) = {
            let group = state.lock();
            (group.interval, group.offset(), group.strategy, group.key())
        };
        let labels = group_labels(&key, strategy.lower());
        let interval_ms = duration_ms(interval).max(1);
        let offset_ms = duration_ms(offset);
        // The latest slot at or before now, then the next one.
        let now = now_ms();
        let adjusted = now.saturating_sub(offset_ms);
        let mut slot = adjusted
            .saturating_sub(adjusted.rem_euclid(interval_ms))
            .saturating_add(offset_ms)
            .saturating_add(interval_ms);
        let mut evaluations = 0u64;
        loop {
            let wait = slot.saturating_sub(now_ms()).max(0);
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                () = cancel.cancelled() => return Ok(()),
            }
            self.metrics.iterations.get_or_create(&labels).inc();
            self.evaluate(&state, slot).await;
            evaluations += 1;
            let should_restore = state.lock().should_restore;
            if should_restore && evaluations >= 2 {
                self.restore(&state);
            }
            slot = slot.saturating_add(interval_ms);
            let now = now_ms();
            if now > slot.saturating_add(interval_ms) {
                let missed = (now - slot) / interval_ms;
                slot = slot.saturating_add(missed.saturating_mul(interval_ms));
                self.metrics
                    .iterations_missed
                    .get_or_create(&labels)
                    .inc_by(missed as u64);
                self.metrics
                    .iterations
                    .get_or_create(&labels)
                    .inc_by(missed as u64);
            }
        }
    }
}

struct Running {
    state: Arc<Mutex<GroupState>>,
    cancel: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

/// The loaded groups and their tasks.
pub struct Manager {
    runtime: Arc<Runtime>,
    rule_files: Vec<String>,
    defaults: Defaults,
    root: CancellationToken,
    running: tokio::sync::Mutex<Vec<Running>>,
    loaded_once: std::sync::atomic::AtomicBool,
    /// Serialises reloads.
    reload_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("rule_files", &self.rule_files)
            .finish_non_exhaustive()
    }
}

impl Manager {
    pub fn new(
        runtime: Arc<Runtime>,
        rule_files: Vec<String>,
        defaults: Defaults,
        root: CancellationToken,
    ) -> Self {
        Self {
            runtime,
            rule_files,
            defaults,
            root,
            running: tokio::sync::Mutex::new(Vec::new()),
            loaded_once: std::sync::atomic::AtomicBool::new(false),
            reload_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Loads (or reloads) the rule files. On error the running groups are left alone.
    pub async fn reload(&self) -> Result<()> {
        let _serial = self.reload_lock.lock().await;
        let patterns = self.rule_files.clone();
        let defaults = self.defaults;
        let loaded =
            tokio::task::spawn_blocking(move || crate::rulefmt::load_all(&patterns, defaults))
                .await
                .map_err(|err| Error::Config {
                    what: "load rules",
                    reason: err.to_string(),
                })
                .and_then(|result| result);
        let specs = match loaded {
            Ok(specs) => specs,
            Err(err) => {
                self.runtime.metrics.config_last_reload_successful.set(0);
                return Err(err);
            }
        };
        let first = !self
            .loaded_once
            .swap(true, std::sync::atomic::Ordering::SeqCst);
        let mut running = self.running.lock().await;
        // Stop the old tasks (an evaluation in progress finishes first), keep their state.
        let mut old_states: BTreeMap<(String, String), GroupState> = BTreeMap::new();
        for group in running.drain(..) {
            group.cancel.cancel();
            let _ = group.handle.await;
            let state = group.state.lock().clone();
            old_states.insert((state.file.clone(), state.name.clone()), state);
        }
        let metrics = &self.runtime.metrics;
        for old in old_states.values() {
            let labels = group_labels(&old.key(), old.strategy.lower());
            metrics.interval_seconds.remove(&labels);
            metrics.rules.remove(&labels);
            metrics.loaded_rules.remove(&loaded_labels(old));
        }
        let mut new_running = Vec::new();
        for spec in specs {
            let mut state = GroupState::new(spec, first);
            if let Some(old) = old_states.get(&(state.file.clone(), state.name.clone())) {
                copy_group_state(&mut state, old);
            }
            let labels = group_labels(&state.key(), state.strategy.lower());
            metrics
                .interval_seconds
                .get_or_create(&labels)
                .set(state.interval.as_secs_f64());
            metrics
                .rules
                .get_or_create(&labels)
                .set(state.rules.len() as i64);
            metrics
                .loaded_rules
                .get_or_create(&loaded_labels(&state))
                .set(state.rules.len() as i64);
            let state = Arc::new(Mutex::new(state));
            let cancel = self.root.child_token();
            let runtime = Arc::clone(&self.runtime);
            let task_state = Arc::clone(&state);
            let task_cancel = cancel.clone();
            let handle = tokio::spawn(async move {
                let _ = runtime.run_group(task_state, task_cancel).await;
            });
            new_running.push(Running {
                state,
                cancel,
                handle,
            });
        }
        tracing::info!(groups = new_running.len(), "rules loaded");
        *running = new_running;
        metrics.config_last_reload_successful.set(1);
        metrics
            .config_last_reload_success_timestamp
            .set(now_ms() as f64 / 1000.0);
        Ok(())
    }

    /// A copy of every group's state, in load order (for the API).
    pub async fn groups(&self) -> Vec<GroupState> {
        let running = self.running.lock().await;
        running
            .iter()
            .map(|group| group.state.lock().clone())
            .collect()
    }

    /// Stops every group task (at shutdown).
    pub async fn stop(&self) {
        let mut running = self.running.lock().await;
        for group in running.drain(..) {
            group.cancel.cancel();
            let _ = group.handle.await;
        }
    }
}

fn loaded_labels(state: &GroupState) -> Vec<(String, String)> {
    vec![
        ("strategy".to_owned(), state.strategy.upper().to_owned()),
        ("file".to_owned(), state.file.clone()),
        ("group".to_owned(), state.name.clone()),
    ]
}

/// Copies rule state from `old` to rules of `new` with the same name and labels, in order.
fn copy_group_state(new: &mut GroupState, old: &GroupState) {
    let mut used = vec![false; old.rules.len()];
    for rule in &mut new.rules {
        let found = old.rules.iter().enumerate().find(|(i, candidate)| {
            !used.get(*i).copied().unwrap_or(true)
                && candidate.spec.name() == rule.spec.name()
                && candidate.spec.labels == rule.spec.labels
        });
        if let Some((i, old_rule)) = found {
            if let Some(slot) = used.get_mut(i) {
                *slot = true;
            }
            rule.copy_state(old_rule);
        }
    }
    new.last_evaluation = old.last_evaluation;
    new.evaluation_seconds = old.evaluation_seconds;
    new.should_restore = old.should_restore;
}
