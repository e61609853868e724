//! The evaluator: walks the AST and evaluates each node for all steps of a range at once.
//!
//! Selectors read each matching series once, over the union of all the windows the steps need,
//! and walk its samples with monotone cursors. Subqueries evaluate their inner expression once
//! over the union of all outer windows (inner steps are absolute multiples of the subquery step,
//! so every outer step sees the same inner points). `@ start()` / `@ end()` resolve to the
//! top-level query bounds, as Prometheus's preprocessing does.

use std::time::{Duration, Instant};

use promql_parser::label::MatchOp;
use promql_parser::parser::{AtModifier, Expr, Offset, SubqueryExpr, VectorSelector};

use super::vector::{LabelsTable, StepVectors};
use super::{
    CancellationToken, EngineOptions, QueryResult, QueryStats, aggregate, binary, functions,
};
use crate::error::{Error, Result};
use crate::labels::{Labels, METRIC_NAME};
use crate::matcher::{MatchType, Matcher};
use crate::storage::{Querier, Queryable, SelectHints, ValueKind};
use crate::value::{Point, Sample, Series, Value, is_stale_nan};

/// Deadline and cancellation of one query.
pub(crate) struct Control {
    pub deadline: Instant,
    pub timeout: Duration,
    pub cancel: CancellationToken,
}

/// The timestamps a node is evaluated at: `start, start+step, ..., end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StepRange {
    pub start: i64,
    pub end: i64,
    /// Always positive; instant evaluations use 1 with `start == end`.
    pub step: i64,
}

impl StepRange {
    /// Number of steps.
    pub fn len(&self) -> usize {
        if self.end < self.start {
            0
        } else {
            usize::try_from(self.end.saturating_sub(self.start) / self.step.max(1))
                .map_or(usize::MAX, |n| n.saturating_add(1))
        }
    }

    /// Timestamp of step `i`.
    pub fn ts(&self, i: usize) -> i64 {
        self.start + self.step * i as i64
    }

    /// The step interval to report in select hints (0 for instant evaluations).
    fn hint_step(&self) -> i64 {
        if self.start == self.end { 0 } else { self.step }
    }
}

/// An evaluated node.
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    Str(String),
    Vector(StepVectors),
    /// Raw series; only a top-level instant query of a range selector or subquery yields this.
    Matrix(Vec<Series>),
}

impl Val {
    fn num_points(&self) -> usize {
        match self {
            Val::Scalar(v) => v.len(),
            Val::Str(_) => 0,
            Val::Vector(v) => v.num_points(),
            Val::Matrix(m) => m.iter().map(|s| s.points.len()).sum(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Str(_) => "string",
            Val::Vector(_) => "instant vector",
            Val::Matrix(_) => "range vector",
        }
    }
}

/// A resolved selector: matchers plus the time shift of its samples.
#[derive(Clone, Debug)]
pub(crate) struct SelectorSpec {
    pub matchers: Vec<Matcher>,
    /// Offset in ms (negative offsets allowed).
    pub offset: i64,
    /// `@` timestamp in ms, with start()/end() resolved.
    pub at: Option<i64>,
}

impl SelectorSpec {
    /// The reference time (`@` or step time, minus offset) for every step of `rng`.
    pub fn ref_times(&self, rng: StepRange) -> Vec<i64> {
        (0..rng.len())
            .map(|i| {
                self.at
                    .unwrap_or_else(|| rng.ts(i))
                    .saturating_sub(self.offset)
            })
            .collect()
    }

    /// First and last reference times over `rng`.
    pub fn ref_bounds(&self, rng: StepRange) -> (i64, i64) {
        match self.at {
            Some(at) => (
                at.saturating_sub(self.offset),
                at.saturating_sub(self.offset),
            ),
            None => (
                rng.start.saturating_sub(self.offset),
                rng.end.saturating_sub(self.offset),
            ),
        }
    }
}

/// Runs a whole query and converts the result to the public [`Value`] shape.
pub(crate) fn execute(
    storage: &dyn Queryable,
    options: &EngineOptions,
    control: &Control,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
) -> Result<QueryResult> {
    let is_range = step > 0;
    let rng = if is_range {
        StepRange { start, end, step }
    } else {
        StepRange {
            start,
            end: start,
            step: 1,
        }
    };
    if is_range {
        let ty = expr.value_type().to_string();
        if ty != "scalar" && ty != "vector" {
            let shown = if ty == "matrix" {
                "range vector".to_string()
            } else {
                ty
            };
            return Err(Error::InvalidQuery {
                message: format!(
                    "invalid expression type {shown:?} for range query, must be Scalar or instant Vector"
                ),
            });
        }
    }
    let lookback = options.lookback_delta.as_millis() as i64;
    let (mint, maxt) =
        time_bounds(expr, start, rng.end, start, rng.end, lookback).unwrap_or((start, rng.end));
    let querier = storage.querier(mint, maxt)?;
    super::plan::prefetch(
        querier.as_ref(),
        expr,
        options,
        control,
        start,
        rng.end,
        rng,
    );
    let mut ev = Evaluator::new(querier.as_ref(), options, control, start, rng.end);
    ev.check_steps(rng)?;
    let val = ev.eval(expr, rng)?;
    let value = if is_range {
        to_range_value(val, rng)
    } else {
        to_instant_value(val, start)
    };
    Ok(QueryResult {
        value,
        stats: ev.stats,
    })
}

fn to_instant_value(val: Val, t: i64) -> Value {
    match val {
        Val::Scalar(v) => Value::Scalar {
            t,
            v: v.first().copied().unwrap_or(f64::NAN),
        },
        Val::Str(s) => Value::String { t, v: s },
        Val::Matrix(m) => Value::Matrix(m),
        Val::Vector(sv) => {
            let step = sv.steps.into_iter().next().unwrap_or_default();
            Value::Vector(
                step.into_iter()
                    .map(|(i, v)| Sample {
                        labels: sv.labels.get(i as usize).cloned().unwrap_or_default(),
                        t,
                        v,
                    })
                    .collect(),
            )
        }
    }
}

fn to_range_value(val: Val, rng: StepRange) -> Value {
    match val {
        Val::Scalar(values) => Value::Matrix(vec![Series {
            labels: Labels::empty(),
            points: values
                .into_iter()
                .enumerate()
                .map(|(i, v)| Point { t: rng.ts(i), v })
                .collect(),
        }]),
        Val::Str(s) => Value::String { t: rng.start, v: s },
        Val::Matrix(m) => Value::Matrix(m),
        Val::Vector(sv) => {
            let mut series: Vec<Series> = sv
                .labels
                .into_iter()
                .map(|labels| Series {
                    labels,
                    points: Vec::new(),
                })
                .collect();
            for (i, step) in sv.steps.into_iter().enumerate() {
                for (idx, v) in step {
                    if let Some(s) = series.get_mut(idx as usize) {
                        s.points.push(Point { t: rng.ts(i), v });
                    }
                }
            }
            series.retain(|s| !s.points.is_empty());
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            Value::Matrix(series)
        }
    }
}

/// Per-query evaluation state.
pub(crate) struct Evaluator<'a> {
    querier: &'a dyn Querier,
    options: &'a EngineOptions,
    control: &'a Control,
    query_start: i64,
    query_end: i64,
    lookback: i64,
    cur_samples: usize,
    /// Inside a sliding subquery (see `eval_subquery`), selectors read no data after this
    /// evaluation time, as 2.42's per-selector time ranges do.
    eval_time_cap: Option<i64>,
    pub stats: QueryStats,
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(
        querier: &'a dyn Querier,
        options: &'a EngineOptions,
        control: &'a Control,
        query_start: i64,
        query_end: i64,
    ) -> Self {
        Evaluator {
            querier,
            options,
            control,
            query_start,
            query_end,
            lookback: options.lookback_delta.as_millis() as i64,
            cur_samples: 0,
            eval_time_cap: None,
            stats: QueryStats::default(),
        }
    }

    /// Fails when the query was cancelled or ran out of time.
    pub fn check_control(&self) -> Result<()> {
        if self.control.cancel.is_cancelled() {
            return Err(Error::Canceled {
                stage: "query execution",
            });
        }
        if Instant::now() > self.control.deadline {
            return Err(Error::Timeout {
                stage: "query execution",
                timeout: self.control.timeout,
            });
        }
        Ok(())
    }

    /// Threads a range function may use.
    pub fn threads(&self) -> usize {
        self.options.threads.max(1)
    }

    /// The lookback delta in ms.
    pub fn options_lookback(&self) -> i64 {
        self.lookback
    }

    /// Accounts for `n` more samples held; fails past the limit.
    pub fn add_samples(&mut self, n: usize) -> Result<()> {
        self.cur_samples += n;
        if self.cur_samples > self.stats.peak_samples {
            self.stats.peak_samples = self.cur_samples;
        }
        if self.cur_samples > self.options.max_samples {
            return Err(Error::TooManySamples {
                stage: "query execution",
            });
        }
        Ok(())
    }

    /// Releases `n` samples accounted by `add_samples`.
    pub fn release_samples(&mut self, n: usize) {
        self.cur_samples = self.cur_samples.saturating_sub(n);
    }

    /// Refuses ranges with more steps than the sample limit: every step of a node holds at
    /// least a slot, and Prometheus would run out of samples or time on them anyway.
    pub fn check_steps(&self, rng: StepRange) -> Result<()> {
        let steps = (rng.end.saturating_sub(rng.start) / rng.step.max(1)).saturating_add(1);
        if usize::try_from(steps).map_or(true, |s| s > self.options.max_samples) {
            return Err(Error::TooManySamples {
                stage: "query execution",
            });
        }
        Ok(())
    }

    /// Evaluates `expr` at every step of `rng`.
    pub fn eval(&mut self, expr: &Expr, rng: StepRange) -> Result<Val> {
        self.check_control()?;
        let base = self.cur_samples;
        let val = self.eval_node(expr, rng)?;
        // Children are dropped by now; only this node's output stays alive.
        self.cur_samples = base;
        self.add_samples(val.num_points())?;
        Ok(val)
    }

    /// Evaluates `expr` and requires an instant vector.
    pub fn eval_vector(&mut self, expr: &Expr, rng: StepRange) -> Result<StepVectors> {
        match self.eval(expr, rng)? {
            Val::Vector(v) => Ok(v),
            other => Err(Error::exec(format!(
                "expected instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates `expr` and requires a scalar.
    pub fn eval_scalar(&mut self, expr: &Expr, rng: StepRange) -> Result<Vec<f64>> {
        match self.eval(expr, rng)? {
            Val::Scalar(v) => Ok(v),
            other => Err(Error::exec(format!(
                "expected scalar, got {}",
                other.type_name()
            ))),
        }
    }

    fn eval_node(&mut self, expr: &Expr, rng: StepRange) -> Result<Val> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; rng.len()])),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, rng),
            Expr::Unary(u) => match self.eval(&u.expr, rng)? {
                Val::Scalar(v) => Ok(Val::Scalar(v.into_iter().map(|x| -x).collect())),
                Val::Vector(mut sv) => {
                    for step in &mut sv.steps {
                        for (_, v) in step.iter_mut() {
                            *v = -*v;
                        }
                    }
                    Ok(Val::Vector(sv.map_labels(Labels::without_name)?))
                }
                other => Err(Error::exec(format!("unary minus on {}", other.type_name()))),
            },
            Expr::VectorSelector(vs) => {
                let spec = self.selector_spec(vs)?;
                Ok(Val::Vector(self.eval_vector_selector(
                    &spec,
                    rng,
                    false,
                    &SelectHintsExtra::default(),
                )?))
            }
            Expr::MatrixSelector(ms) => {
                let spec = self.selector_spec(&ms.vs)?;
                let range = duration_ms(&ms.range);
                let series = self.load_matrix(&spec, range, rng, &SelectHintsExtra::default())?;
                Ok(Val::Matrix(window_at(series, &spec, range, rng)))
            }
            Expr::Subquery(sq) => {
                let (series, spec, range) = self.eval_subquery(sq, rng, false)?;
                Ok(Val::Matrix(window_at(series, &spec, range, rng)))
            }
            Expr::Call(call) => functions::eval_call(self, call, rng),
            Expr::Aggregate(agg) => aggregate::eval_aggregate(self, agg, rng),
            Expr::Binary(b) => binary::eval_binary(self, b, rng),
            Expr::Extension(_) => Err(Error::exec("extension expressions are not supported")),
        }
    }

    /// Resolves an `@` modifier to ms.
    pub fn resolve_at(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.query_start),
            Some(AtModifier::End) => Some(self.query_end),
            Some(AtModifier::At(t)) => Some(system_time_ms(*t)),
        }
    }

    /// Converts a parsed selector into matchers and time shifts.
    pub fn selector_spec(&self, vs: &VectorSelector) -> Result<SelectorSpec> {
        if !vs.matchers.or_matchers.is_empty() {
            return Err(Error::exec(
                "'or' in label matchers is not supported by Prometheus 2.42",
            ));
        }
        let mut matchers = Vec::with_capacity(vs.matchers.matchers.len() + 1);
        if let Some(name) = &vs.name {
            matchers.push(Matcher::new(MatchType::Equal, METRIC_NAME, name)?);
        }
        for m in &vs.matchers.matchers {
            let kind = match m.op {
                MatchOp::Equal => MatchType::Equal,
                MatchOp::NotEqual => MatchType::NotEqual,
                MatchOp::Re(_) => MatchType::Regex,
                MatchOp::NotRe(_) => MatchType::NotRegex,
            };
            matchers.push(Matcher::new(kind, &m.name, &m.value)?);
        }
        Ok(SelectorSpec {
            matchers,
            offset: offset_ms(&vs.offset),
            at: self.resolve_at(&vs.at),
        })
    }

    /// The data range a selector reads: its own windows, narrowed by an explicit clip or by the
    /// evaluation-time cap of an enclosing sliding subquery.
    fn data_range(
        &self,
        spec: &SelectorSpec,
        start: i64,
        end: i64,
        extra: &SelectHintsExtra,
    ) -> (i64, i64) {
        if let Some((lo, hi)) = extra.clip {
            return (lo, hi);
        }
        match (self.eval_time_cap, spec.at) {
            (Some(cap), None) => (start, end.min(cap.saturating_sub(spec.offset))),
            _ => (start, end),
        }
    }

    /// Evaluates an instant vector selector. With `timestamps`, values are the samples' own
    /// timestamps in seconds (for `timestamp()`).
    pub fn eval_vector_selector(
        &mut self,
        spec: &SelectorSpec,
        rng: StepRange,
        timestamps: bool,
        extra: &SelectHintsExtra,
    ) -> Result<StepVectors> {
        let mut table = LabelsTable::default();
        let mut steps: Vec<Vec<(u32, f64)>> = vec![Vec::new(); rng.len()];
        self.stream_vector_selector(spec, rng, timestamps, extra, &mut |labels, column| {
            let (idx, _) = table.intern(labels);
            for &(i, v) in column {
                if let Some(step) = steps.get_mut(i) {
                    step.push((idx, v));
                }
            }
            Ok(())
        })?;
        Ok(StepVectors {
            labels: table.into_labels(),
            steps,
        })
    }

    /// Streams each series of an instant vector selector to `sink` as its column of
    /// `(step, value)` pairs, in storage order, one series in memory at a time (an aggregation
    /// folds them without holding the selector's whole result).
    pub fn stream_vector_selector(
        &mut self,
        spec: &SelectorSpec,
        rng: StepRange,
        timestamps: bool,
        extra: &SelectHintsExtra,
        sink: &mut ColumnSink<'_>,
    ) -> Result<()> {
        let (first_ref, last_ref) = spec.ref_bounds(rng);
        let (data_start, data_end) = self.data_range(
            spec,
            first_ref.saturating_sub(self.lookback),
            last_ref,
            extra,
        );
        let hints = SelectHints {
            start: data_start,
            end: data_end,
            step: rng.hint_step(),
            range: 0,
            func: extra.func.clone(),
            grouping: extra.grouping.clone(),
            by: extra.by,
        };
        let ref_times = spec.ref_times(rng);
        let querier = self.querier;
        let mut set = querier.select(false, &hints, &spec.matchers)?;
        let mut buf: Vec<Point> = Vec::new();
        let mut column: Vec<(usize, f64)> = Vec::new();
        while let Some(mut series) = set.next_series()? {
            self.check_control()?;
            buf.clear();
            series
                .samples
                .read_range(hints.start, hints.end, &mut buf)?;
            self.stats.series_touched += 1;
            self.stats.samples_touched += buf.len() as u64;
            column.clear();
            let mut hi = 0usize;
            for (i, &ref_t) in ref_times.iter().enumerate() {
                while buf.get(hi).is_some_and(|p| p.t <= ref_t) {
                    hi += 1;
                }
                let Some(p) = hi.checked_sub(1).and_then(|i| buf.get(i)) else {
                    continue;
                };
                if p.t < ref_t.saturating_sub(self.lookback) || is_stale_nan(p.v) {
                    continue;
                }
                column.push((i, if timestamps { p.t as f64 / 1000.0 } else { p.v }));
            }
            self.add_samples(column.len())?;
            sink(series.labels, &column)?;
        }
        Ok(())
    }

    /// Loads the series of a range selector over the union of all step windows, stale markers
    /// removed. One series at a time is read from storage.
    pub fn load_matrix(
        &mut self,
        spec: &SelectorSpec,
        range: i64,
        rng: StepRange,
        extra: &SelectHintsExtra,
    ) -> Result<Vec<Series>> {
        let mut out = Vec::new();
        // A top-level range vector shows the samples as storage returned them.
        self.stream_matrix(
            spec,
            range,
            rng,
            extra,
            &mut |labels, _value_kind, points| {
                out.push(Series {
                    labels,
                    points: points.to_vec(),
                });
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Streams each series of a range selector (samples over the union of all step windows,
    /// stale markers removed) to `sink` with what its values stand for, one series in memory
    /// at a time.
    pub fn stream_matrix(
        &mut self,
        spec: &SelectorSpec,
        range: i64,
        rng: StepRange,
        extra: &SelectHintsExtra,
        sink: &mut MatrixSink<'_>,
    ) -> Result<()> {
        let (first_ref, last_ref) = spec.ref_bounds(rng);
        let (data_start, data_end) =
            self.data_range(spec, first_ref.saturating_sub(range), last_ref, extra);
        let hints = SelectHints {
            start: data_start,
            end: data_end,
            step: rng.hint_step(),
            range,
            func: extra.func.clone(),
            grouping: extra.grouping.clone(),
            by: extra.by,
        };
        let querier = self.querier;
        let mut set = querier.select(false, &hints, &spec.matchers)?;
        let mut buf: Vec<Point> = Vec::new();
        while let Some(mut series) = set.next_series()? {
            self.check_control()?;
            buf.clear();
            series
                .samples
                .read_range(hints.start, hints.end, &mut buf)?;
            // Range vectors never contain stale markers.
            buf.retain(|p| !is_stale_nan(p.v));
            self.stats.series_touched += 1;
            self.stats.samples_touched += buf.len() as u64;
            // The series' samples are held while its windows are evaluated.
            self.add_samples(buf.len())?;
            let labels = series.labels;
            let result = sink(labels, series.value_kind, &buf);
            self.release_samples(buf.len());
            result?;
        }
        Ok(())
    }

    /// Evaluates a subquery's inner expression over the union of all outer windows. Returns the
    /// inner series (points at inner step times), the window shift, and the window range.
    pub fn eval_subquery(
        &mut self,
        sq: &SubqueryExpr,
        rng: StepRange,
        sliding: bool,
    ) -> Result<(Vec<Series>, SelectorSpec, i64)> {
        let spec = SelectorSpec {
            matchers: Vec::new(),
            offset: offset_ms(&sq.offset),
            at: self.resolve_at(&sq.at),
        };
        let range = duration_ms(&sq.range);
        let step = match &sq.step {
            Some(d) if !d.is_zero() => duration_ms(d),
            _ => self.options.default_subquery_step.as_millis() as i64,
        };
        if step <= 0 {
            return Err(Error::exec("subquery step must be positive"));
        }
        let (first_ref, mut last_ref) = spec.ref_bounds(rng);
        // 2.42 quirk (see window.rs): under predict_linear an @-pinned subquery keeps the offset
        // of the first step, so its inner range extends by the query length while its selectors
        // read no data after the pinned time.
        let cap = match (sliding, spec.at) {
            (true, Some(_)) => {
                let pinned = last_ref;
                last_ref = last_ref.saturating_add(rng.end - rng.start);
                Some(pinned)
            }
            _ => None,
        };
        let target = first_ref.saturating_sub(range);
        // First absolute multiple of the step at or after the earliest window start (Go's
        // truncating division, then corrected upwards).
        let mut inner_start = step * (target / step);
        if inner_start < target {
            inner_start = inner_start.saturating_add(step);
        }
        if inner_start > last_ref {
            return Ok((Vec::new(), spec, range));
        }
        let inner = StepRange {
            start: inner_start,
            end: last_ref,
            step,
        };
        self.check_steps(inner)?;
        let saved_cap = self.eval_time_cap;
        if cap.is_some() {
            self.eval_time_cap = cap;
        }
        let val = self.eval(&sq.expr, inner);
        self.eval_time_cap = saved_cap;
        let val = val?;
        let series = match val {
            Val::Vector(sv) => {
                let mut series: Vec<Series> = sv
                    .labels
                    .into_iter()
                    .map(|labels| Series {
                        labels,
                        points: Vec::new(),
                    })
                    .collect();
                for (i, step_vals) in sv.steps.into_iter().enumerate() {
                    for (idx, v) in step_vals {
                        if let Some(s) = series.get_mut(idx as usize) {
                            s.points.push(Point { t: inner.ts(i), v });
                        }
                    }
                }
                series.retain(|s| !s.points.is_empty());
                series
            }
            Val::Scalar(values) => vec![Series {
                labels: Labels::empty(),
                points: values
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| Point { t: inner.ts(i), v })
                    .collect(),
            }],
            other => {
                return Err(Error::exec(format!(
                    "subquery is only allowed on instant vector, got {}",
                    other.type_name()
                )));
            }
        };
        Ok((series, spec, range))
    }
}

/// Receives one series of an instant selector: its labels and its `(step, value)` column.
pub(crate) type ColumnSink<'a> = dyn FnMut(Labels, &[(usize, f64)]) -> Result<()> + 'a;

/// Receives each series of a range selector: its labels, what its values stand for, and its
/// samples over the union of all step windows.
pub(crate) type MatrixSink<'s> = dyn FnMut(Labels, ValueKind, &[Point]) -> Result<()> + 's;

/// Hints about the enclosing function or aggregation, passed to storage.
#[derive(Clone, Debug, Default)]
pub(crate) struct SelectHintsExtra {
    pub func: Option<String>,
    pub grouping: Vec<String>,
    pub by: bool,
    /// Explicit data range, overriding the one derived from the selector (2.42 quirks only).
    pub clip: Option<(i64, i64)>,
}

/// The time range of samples a query can read (Prometheus's `FindMinMaxTime`), so stores can be
/// pruned before anything is selected. `None` when the expression reads no series.
/// `[start, end]` is the evaluation range of `expr`; `query_*` are the top-level bounds that
/// `@ start()` / `@ end()` refer to.
pub(crate) fn time_bounds(
    expr: &Expr,
    start: i64,
    end: i64,
    query_start: i64,
    query_end: i64,
    lookback: i64,
) -> Option<(i64, i64)> {
    let resolve = |at: &Option<AtModifier>| match at {
        None => None,
        Some(AtModifier::Start) => Some(query_start),
        Some(AtModifier::End) => Some(query_end),
        Some(AtModifier::At(t)) => Some(system_time_ms(*t)),
    };
    let shifted = |at: &Option<AtModifier>, offset: &Option<Offset>| {
        let o = offset_ms(offset);
        match resolve(at) {
            Some(a) => (a.saturating_sub(o), a.saturating_sub(o)),
            None => (start.saturating_sub(o), end.saturating_sub(o)),
        }
    };
    let merge = |a: Option<(i64, i64)>, b: Option<(i64, i64)>| match (a, b) {
        (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
        (a, None) => a,
        (None, b) => b,
    };
    let recurse = |e: &Expr| time_bounds(e, start, end, query_start, query_end, lookback);
    match expr {
        Expr::VectorSelector(vs) => {
            let (lo, hi) = shifted(&vs.at, &vs.offset);
            Some((lo.saturating_sub(lookback), hi))
        }
        Expr::MatrixSelector(ms) => {
            let (lo, hi) = shifted(&ms.vs.at, &ms.vs.offset);
            Some((lo.saturating_sub(duration_ms(&ms.range)), hi))
        }
        Expr::Subquery(sq) => {
            let (lo, hi) = shifted(&sq.at, &sq.offset);
            time_bounds(
                &sq.expr,
                lo.saturating_sub(duration_ms(&sq.range)),
                hi,
                query_start,
                query_end,
                lookback,
            )
        }
        Expr::Paren(p) => recurse(&p.expr),
        Expr::Unary(u) => recurse(&u.expr),
        Expr::Binary(b) => merge(recurse(&b.lhs), recurse(&b.rhs)),
        Expr::Aggregate(a) => merge(recurse(&a.expr), a.param.as_ref().and_then(|p| recurse(p))),
        Expr::Call(c) => c
            .args
            .args
            .iter()
            .fold(None, |acc, a| merge(acc, recurse(a))),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => None,
    }
}

/// Restricts raw series to the window of the (single) step of an instant query.
fn window_at(series: Vec<Series>, spec: &SelectorSpec, range: i64, rng: StepRange) -> Vec<Series> {
    let ref_t = spec.at.unwrap_or(rng.start) - spec.offset;
    series
        .into_iter()
        .filter_map(|s| {
            let points: Vec<Point> = s
                .points
                .into_iter()
                .filter(|p| p.t >= ref_t.saturating_sub(range) && p.t <= ref_t)
                .collect();
            (!points.is_empty()).then_some(Series {
                labels: s.labels,
                points,
            })
        })
        .collect()
}

/// A duration in ms.
pub(crate) fn duration_ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A signed offset in ms.
pub(crate) fn offset_ms(offset: &Option<Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

/// A `SystemTime` as ms since the epoch (negative before it).
pub(crate) fn system_time_ms(t: std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => duration_ms(&d),
        Err(e) => -duration_ms(&e.duration()),
    }
}
