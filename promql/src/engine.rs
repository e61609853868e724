//! The query engine: instant and range queries over a [`Queryable`], with Prometheus 2.42
//! semantics, limits (samples, timeout), cancellation and per-query statistics.
//!
//! Evaluation is column-oriented: every node is evaluated once for all steps of the range
//! (see [`vector::StepVectors`]). Selectors read each series from storage once and slide over
//! its samples; range-vector functions slide a window per series instead of re-reading the
//! window at every step.

mod aggregate;
mod binary;
mod eval;
mod functions;
mod plan;
mod rate_lanes;
mod topk;
mod vector;
mod window;
mod window_fold;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use promql_parser::parser::Expr;

use crate::depth;
use crate::error::{Error, Result};
use crate::parser;
use crate::storage::Queryable;
use crate::value::Value;

/// Engine settings (Prometheus's `EngineOpts` and the `--query.*` flags).
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (`--query.lookback-delta`, 5m).
    pub lookback_delta: Duration,
    /// Maximum number of samples a query may hold at once (`--query.max-samples`, 50M).
    pub max_samples: usize,
    /// Maximum wall time of one query (`--query.timeout`, 2m).
    pub timeout: Duration,
    /// Step of subqueries without an explicit step (the global evaluation interval, 1m).
    pub default_subquery_step: Duration,
    /// Threads one query may use for range-function windows (1 = the calling thread only).
    /// Default 1: a querier runs many queries at once, and on a loaded machine extra threads
    /// per query cost more than they buy (see the `_1thread` benchmark group).
    pub threads: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step: Duration::from_secs(60),
            threads: 1,
        }
    }
}

/// A handle that cancels running queries when triggered; clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct CancellationToken(Arc<AtomicBool>);

impl CancellationToken {
    /// A token that has not been cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every query holding this token.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether `cancel` was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Statistics of one query execution.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Series read from storage.
    pub series_touched: u64,
    /// Samples read from storage.
    pub samples_touched: u64,
    /// Peak number of samples held at once (what `max_samples` limits).
    pub peak_samples: usize,
}

/// A query's result and its statistics.
#[derive(Clone, Debug)]
pub struct QueryResult {
    pub value: Value,
    pub stats: QueryStats,
}

/// Evaluates PromQL queries.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    options: EngineOptions,
}

impl Engine {
    /// An engine with the given options.
    pub fn new(options: EngineOptions) -> Self {
        Engine { options }
    }

    /// The engine's options.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Parses and evaluates `query` at `time_ms`.
    pub fn instant_query(
        &self,
        storage: &dyn Queryable,
        query: &str,
        time_ms: i64,
    ) -> Result<QueryResult> {
        let expr = parser::parse(query)?;
        self.exec(
            storage,
            &expr,
            time_ms,
            time_ms,
            0,
            &CancellationToken::new(),
        )
    }

    /// Parses and evaluates `query` from `start_ms` to `end_ms` every `step_ms`.
    pub fn range_query(
        &self,
        storage: &dyn Queryable,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult> {
        let expr = parser::parse(query)?;
        self.exec(
            storage,
            &expr,
            start_ms,
            end_ms,
            step_ms,
            &CancellationToken::new(),
        )
    }

    /// Evaluates a parsed expression. `step_ms == 0` means an instant query at `start_ms`.
    pub fn exec(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        cancel: &CancellationToken,
    ) -> Result<QueryResult> {
        if step_ms < 0 || (step_ms > 0 && end_ms < start_ms) {
            return Err(Error::exec(
                "invalid query range: end before start or negative step",
            ));
        }
        let deadline = Instant::now() + self.options.timeout;
        let control = eval::Control {
            deadline,
            timeout: self.options.timeout,
            cancel: cancel.clone(),
        };
        // The evaluator recurses once per level of the tree: a deep tree runs on a stack sized
        // for it (the parser bounded its depth).
        depth::with_stack_for(depth::expr_depth(expr), || {
            eval::execute(
                storage,
                &self.options,
                &control,
                expr,
                start_ms,
                end_ms,
                step_ms,
            )
        })
    }
}

#[cfg(test)]
mod tests;
