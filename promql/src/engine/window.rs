//! Range-vector functions (`rate`, `*_over_time`, `deriv`, `holt_winters`, ...).
//!
//! Each input series is read once; a window `[ref - range, ref]` (closed, as in 2.42) slides over
//! its samples with two monotone cursors as the steps advance, so a range query touches every
//! sample a constant number of times instead of re-reading the window at every step. The
//! arithmetic of each function follows Prometheus 2.42 operation by operation (plain vs Kahan
//! sums, the 2.42 rate extrapolation order) so results match to the last bit where it matters.
//!
//! `count_over_time` over a range selector whose storage series carries pre-aggregated counts
//! ([`ValueKind::RawSampleCounts`], downsampled data) sums them, so it counts raw samples.

use promql_parser::parser::Expr;

use super::eval::{Evaluator, SelectHintsExtra, SelectorSpec, StepRange, Val, duration_ms};
use super::functions::quantile;
use super::rate_lanes::{self, RateWindow};
use super::vector::{LabelsTable, StepVectors, duplicate_labelset};
use super::window_fold::{Avg, Stddev, Stdvar, Sum, fold, fold_all, fold_all_avg};
use crate::error::{Error, Result};
use crate::labels::Labels;
use crate::storage::ValueKind;
use crate::value::{Point, Series};

/// The range-vector functions, resolved once per call instead of per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RangeFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Deriv,
    PredictLinear,
    HoltWinters,
    Changes,
    Resets,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    SumOverTime,
    CountOverTime,
    QuantileOverTime,
    StddevOverTime,
    StdvarOverTime,
    LastOverTime,
    PresentOverTime,
    AbsentOverTime,
}

impl RangeFn {
    fn parse(name: &str) -> Option<RangeFn> {
        Some(match name {
            "rate" => RangeFn::Rate,
            "increase" => RangeFn::Increase,
            "delta" => RangeFn::Delta,
            "irate" => RangeFn::Irate,
            "idelta" => RangeFn::Idelta,
            "deriv" => RangeFn::Deriv,
            "predict_linear" => RangeFn::PredictLinear,
            "holt_winters" => RangeFn::HoltWinters,
            "changes" => RangeFn::Changes,
            "resets" => RangeFn::Resets,
            "avg_over_time" => RangeFn::AvgOverTime,
            "min_over_time" => RangeFn::MinOverTime,
            "max_over_time" => RangeFn::MaxOverTime,
            "sum_over_time" => RangeFn::SumOverTime,
            "count_over_time" => RangeFn::CountOverTime,
            "quantile_over_time" => RangeFn::QuantileOverTime,
            "stddev_over_time" => RangeFn::StddevOverTime,
            "stdvar_over_time" => RangeFn::StdvarOverTime,
            "last_over_time" => RangeFn::LastOverTime,
            "present_over_time" => RangeFn::PresentOverTime,
            "absent_over_time" => RangeFn::AbsentOverTime,
            _ => return None,
        })
    }
}

/// Names of the functions taking a range vector.
pub(crate) fn is_range_function(name: &str) -> bool {
    RangeFn::parse(name).is_some()
}

/// Per-step inputs of a window function besides the samples.
struct WindowCtx {
    /// Step (evaluation) timestamp.
    ts: i64,
    /// Window bounds.
    range_start: i64,
    range_end: i64,
    /// Selector range in ms.
    range: i64,
    /// Scalar arguments at this step, in argument order (the matrix argument excluded).
    scalars: [f64; 2],
}

/// Receives each output series of a range function: its dense index, its labels (name already
/// dropped where the function drops it) and its (step index, value) column.
pub(crate) type SeriesSink<'s> = dyn FnMut(u32, &Labels, &[(usize, f64)]) -> Result<()> + 's;

/// Evaluates a range-vector function call into step vectors.
pub(crate) fn eval_range_function(
    ev: &mut Evaluator<'_>,
    name: &str,
    args: &[&Expr],
    rng: StepRange,
) -> Result<Val> {
    let n = rng.len();
    let mut steps: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
    let mut labels: Vec<Labels> = Vec::new();
    stream_range_function(ev, name, args, rng, &mut |idx, l, column| {
        if idx as usize >= labels.len() {
            labels.push(l.clone());
        }
        for &(i, v) in column {
            if let Some(step) = steps.get_mut(i) {
                step.push((idx, v));
            }
        }
        Ok(())
    })?;
    if name == "absent_over_time" {
        // One series, 1 at each step where no input series had a sample.
        let matrix_arg = args.first().copied();
        let labels = matrix_arg
            .map(super::functions::absent_labels)
            .unwrap_or_default();
        let mut out = StepVectors::empty(n);
        let covered: Vec<bool> = steps.iter().map(|s| !s.is_empty()).collect();
        out.labels.push(labels);
        for (step, covered) in out.steps.iter_mut().zip(covered) {
            if !covered {
                step.push((0, 1.0));
            }
        }
        return Ok(Val::Vector(out));
    }
    Ok(Val::Vector(StepVectors { labels, steps }))
}

/// Evaluates a range-vector function one input series at a time, handing each output series
/// to `sink` in input order (output indexes are dense and assigned in first-output order).
pub(crate) fn stream_range_function(
    ev: &mut Evaluator<'_>,
    name: &str,
    args: &[&Expr],
    rng: StepRange,
    sink: &mut SeriesSink<'_>,
) -> Result<()> {
    let matrix_idx = usize::from(name == "quantile_over_time");
    let matrix_arg = args
        .get(matrix_idx)
        .copied()
        .ok_or_else(|| Error::exec(format!("missing range argument to {name}")))?;
    let mut scalar_args: Vec<Vec<f64>> = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        if i != matrix_idx {
            scalar_args.push(ev.eval_scalar(arg, rng)?);
        }
    }
    let func = RangeFn::parse(name)
        .ok_or_else(|| Error::exec(format!("unknown range function {name}")))?;
    let keep_name = func == RangeFn::LastOverTime;
    let mut table = LabelsTable::default();
    // How many input series produced at least one point for each output label set.
    let mut contributors: Vec<u32> = Vec::new();

    // Output side: name dropping, the whole-matrix duplicate check, and the sink, in input order.
    let mut emit = |labels: Labels, column: Vec<(usize, f64)>| -> Result<()> {
        if column.is_empty() {
            return Ok(());
        }
        let out_labels = if keep_name {
            labels
        } else {
            labels.without_name()
        };
        let (idx, fresh) = table.intern(out_labels);
        if fresh {
            contributors.push(0);
        }
        if let Some(c) = contributors.get_mut(idx as usize) {
            *c += 1;
            if *c > 1 && func != RangeFn::AbsentOverTime {
                // Prometheus checks the whole result matrix of a range function at once
                // (after absent_over_time has already returned its own single series).
                return Err(duplicate_labelset());
            }
        }
        sink(idx, table.get(idx), &column)
    };

    match matrix_arg {
        Expr::MatrixSelector(ms) => {
            let spec = ev.selector_spec(&ms.vs)?;
            let range = duration_ms(&ms.range);
            let sliding = func == RangeFn::PredictLinear && spec.at.is_some();
            let ref_times = window_ref_times(&spec, rng, sliding);
            let job = ColumnJob {
                func,
                rng,
                ref_times: &ref_times,
                range,
                scalar_args: &scalar_args,
                threads: ev.threads(),
            };
            let extra = SelectHintsExtra {
                func: Some(name.to_string()),
                ..Default::default()
            };
            // Series are read one at a time, then their windows are computed in parallel in
            // bounded batches and emitted in input order, so results do not depend on threads.
            if job.threads <= 1 {
                // One thread: compute each series' column straight from the storage buffer.
                ev.stream_matrix(&spec, range, rng, &extra, &mut |labels, kind, points| {
                    let column = compute_column(&job, kind, points)?;
                    emit(labels, column)
                })?;
                return Ok(());
            }
            let mut batch: Vec<(Labels, ValueKind, Vec<Point>)> = Vec::new();
            let mut batch_points = 0usize;
            ev.stream_matrix(&spec, range, rng, &extra, &mut |labels, kind, points| {
                batch_points += points.len();
                batch.push((labels, kind, points.to_vec()));
                if batch.len() >= BATCH_SERIES || batch_points >= BATCH_POINTS {
                    batch_points = 0;
                    flush_batch(&job, &mut batch, &mut emit)?;
                }
                Ok(())
            })?;
            flush_batch(&job, &mut batch, &mut emit)?;
        }
        Expr::Subquery(sq) => {
            let (series, spec, range): (Vec<Series>, SelectorSpec, i64) =
                ev.eval_subquery(sq, rng, func == RangeFn::PredictLinear)?;
            let sliding = func == RangeFn::PredictLinear && spec.at.is_some();
            let ref_times = window_ref_times(&spec, rng, sliding);
            let job = ColumnJob {
                func,
                rng,
                ref_times: &ref_times,
                range,
                scalar_args: &scalar_args,
                threads: ev.threads(),
            };
            // A subquery's points are evaluated values, whatever its selectors read.
            let mut batch: Vec<(Labels, ValueKind, Vec<Point>)> = series
                .into_iter()
                .map(|s| (s.labels, ValueKind::Observed, s.points))
                .collect();
            flush_batch(&job, &mut batch, &mut emit)?;
        }
        _ => {
            return Err(Error::exec(format!(
                "expected range vector argument to {name}"
            )));
        }
    }
    Ok(())
}

/// Series per parallel batch.
const BATCH_SERIES: usize = 512;
/// Samples per parallel batch (bounds the memory a batch holds).
const BATCH_POINTS: usize = 1 << 20;
/// Below this many window evaluations a batch runs on the calling thread.
const PARALLEL_MIN_WINDOWS: usize = 200_000;

/// The window end of every step.
fn window_ref_times(spec: &SelectorSpec, rng: StepRange, sliding: bool) -> Vec<i64> {
    let mut ref_times = spec.ref_times(rng);
    if sliding {
        // Prometheus 2.42 quirk: an @-pinned range under an @-unsafe function (only
        // predict_linear takes a range) keeps the offset computed for the first step, so its
        // window slides with the steps; samples stay capped at the @ time because the
        // selector's time range was computed from it.
        for (i, t) in ref_times.iter_mut().enumerate() {
            *t = t.saturating_add(rng.ts(i) - rng.start);
        }
    }
    ref_times
}

/// Everything needed to compute one series' output column.
struct ColumnJob<'a> {
    func: RangeFn,
    rng: StepRange,
    ref_times: &'a [i64],
    range: i64,
    scalar_args: &'a [Vec<f64>],
    threads: usize,
}

/// Computes the columns of a batch (in parallel when it pays) and emits them in order.
fn flush_batch(
    job: &ColumnJob<'_>,
    batch: &mut Vec<(Labels, ValueKind, Vec<Point>)>,
    emit: &mut dyn FnMut(Labels, Vec<(usize, f64)>) -> Result<()>,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let threads = job.threads.min(batch.len());
    let windows = batch.len().saturating_mul(job.ref_times.len());
    let columns: Vec<Result<Vec<(usize, f64)>>> = if threads <= 1 || windows < PARALLEL_MIN_WINDOWS
    {
        batch
            .iter()
            .map(|(_, kind, points)| compute_column(job, *kind, points))
            .collect()
    } else {
        let chunk = batch.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let mut parts = batch.chunks(chunk);
            let first = parts.next().unwrap_or(&[]);
            let handles: Vec<_> = parts
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|(_, kind, p)| compute_column(job, *kind, p))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let mut out: Vec<Result<Vec<(usize, f64)>>> = first
                .iter()
                .map(|(_, kind, p)| compute_column(job, *kind, p))
                .collect();
            for h in handles {
                match h.join() {
                    Ok(cols) => out.extend(cols),
                    Err(_) => out.push(Err(Error::exec("range function worker panicked"))),
                }
            }
            out
        })
    };
    for ((labels, _, _), column) in batch.drain(..).zip(columns) {
        emit(labels, column?)?;
    }
    Ok(())
}

/// Slides the window over one series' samples and computes the function at every step.
fn compute_column(
    job: &ColumnJob<'_>,
    kind: ValueKind,
    points: &[Point],
) -> Result<Vec<(usize, f64)>> {
    match job.func {
        RangeFn::AvgOverTime => return Ok(fold_all_avg(&windows(job, points))),
        RangeFn::SumOverTime => return Ok(fold_all::<Sum>(&windows(job, points))),
        RangeFn::StdvarOverTime => return Ok(fold_all::<Stdvar>(&windows(job, points))),
        RangeFn::StddevOverTime => return Ok(fold_all::<Stddev>(&windows(job, points))),
        _ => {}
    }
    let rate_like = match job.func {
        RangeFn::Rate => Some((true, true)),
        RangeFn::Increase => Some((true, false)),
        RangeFn::Delta => Some((false, false)),
        _ => None,
    };
    if let Some((is_counter, is_rate)) = rate_like {
        return Ok(rate_column(job, points, is_counter, is_rate));
    }
    let mut column: Vec<(usize, f64)> = Vec::new();
    let scalar = |k: usize, i: usize| {
        job.scalar_args
            .get(k)
            .and_then(|v| v.get(i))
            .copied()
            .unwrap_or(f64::NAN)
    };
    for (i, ref_t, lo, hi) in window_bounds(job, points) {
        let window = points.get(lo..hi).unwrap_or(&[]);
        let start = ref_t.saturating_sub(job.range);
        let ctx = WindowCtx {
            ts: job.rng.ts(i),
            range_start: start,
            range_end: ref_t,
            range: job.range,
            scalars: [scalar(0, i), scalar(1, i)],
        };
        if let Some(v) = apply(job.func, kind, window, &ctx)? {
            column.push((i, v));
        }
    }
    Ok(column)
}

/// `rate`, `increase` or `delta` at every step, [`rate_lanes::LANES`] windows at a time.
fn rate_column(
    job: &ColumnJob<'_>,
    points: &[Point],
    is_counter: bool,
    is_rate: bool,
) -> Vec<(usize, f64)> {
    let mut column = Vec::new();
    let mut lanes: Vec<RateWindow<'_>> = Vec::with_capacity(rate_lanes::LANES);
    // Counter resets, found as the windows slide: samples `1..compared` were compared with the
    // one before, and `last_reset` is the latest that dropped (0: none). A window `lo..hi` has
    // a reset inside when that latest one at or before `hi - 1` comes after `lo`; the lanes
    // then walk the window to add them up.
    let (mut compared, mut last_reset) = (1usize, 0usize);
    for (step, end, lo, hi) in window_bounds(job, points) {
        let has_reset = is_counter && {
            while compared < hi {
                if let (Some(prev), Some(p)) = (points.get(compared - 1), points.get(compared))
                    && p.v < prev.v
                {
                    last_reset = compared;
                }
                compared += 1;
            }
            last_reset > lo
        };
        lanes.push(RateWindow {
            step,
            points: points.get(lo..hi).unwrap_or(&[]),
            start: end.saturating_sub(job.range),
            end,
            has_reset,
        });
        if lanes.len() == rate_lanes::LANES {
            rate_lanes::extrapolated_rates(&lanes, job.range, is_counter, is_rate, &mut column);
            lanes.clear();
        }
    }
    rate_lanes::extrapolated_rates(&lanes, job.range, is_counter, is_rate, &mut column);
    column
}

/// The non-empty window of every step, as `(step, samples)`, for the folds that compute
/// several windows at once ([`super::window_fold`]).
fn windows<'p>(job: &ColumnJob<'_>, points: &'p [Point]) -> Vec<(usize, &'p [Point])> {
    window_bounds(job, points)
        .map(|(i, _, lo, hi)| (i, points.get(lo..hi).unwrap_or(&[])))
        .collect()
}

/// Every step's non-empty window `[ref - range, ref]` over `points`, as `(step, ref, lo, hi)`
/// (`points[lo..hi]`), found by two cursors that only move forward.
fn window_bounds<'a>(
    job: &'a ColumnJob<'_>,
    points: &'a [Point],
) -> impl Iterator<Item = (usize, i64, usize, usize)> + 'a {
    let (mut lo, mut hi) = (0usize, 0usize);
    job.ref_times
        .iter()
        .enumerate()
        .filter_map(move |(i, &ref_t)| {
            while points.get(hi).is_some_and(|p| p.t <= ref_t) {
                hi += 1;
            }
            let start = ref_t.saturating_sub(job.range);
            while lo < hi && points.get(lo).is_some_and(|p| p.t < start) {
                lo += 1;
            }
            (lo < hi).then_some((i, ref_t, lo, hi))
        })
}

/// Computes one function over one non-empty window of samples whose values are `kind`.
fn apply(func: RangeFn, kind: ValueKind, w: &[Point], ctx: &WindowCtx) -> Result<Option<f64>> {
    let Some(first) = w.first() else {
        return Ok(None);
    };
    let Some(last) = w.last() else {
        return Ok(None);
    };
    Ok(match func {
        // Computed in lanes by `rate_column`; one window here the same way, walked for resets.
        RangeFn::Rate => one_rate(w, ctx, true, true, true),
        RangeFn::Increase => one_rate(w, ctx, true, false, true),
        RangeFn::Delta => one_rate(w, ctx, false, false, false),
        RangeFn::Irate => instant_value(w, true),
        RangeFn::Idelta => instant_value(w, false),
        RangeFn::Deriv => {
            if w.len() < 2 {
                None
            } else {
                Some(linear_regression(w, first.t).0)
            }
        }
        RangeFn::PredictLinear => {
            if w.len() < 2 {
                None
            } else {
                let (slope, intercept) = linear_regression(w, ctx.ts);
                Some(slope * ctx.scalars[0] + intercept)
            }
        }
        RangeFn::HoltWinters => holt_winters(w, ctx.scalars[0], ctx.scalars[1])?,
        RangeFn::Changes => {
            let mut changes = 0u32;
            let mut prev = first.v;
            for p in w.iter().skip(1) {
                if p.v != prev && !(p.v.is_nan() && prev.is_nan()) {
                    changes += 1;
                }
                prev = p.v;
            }
            Some(f64::from(changes))
        }
        RangeFn::Resets => {
            let mut resets = 0u32;
            let mut prev = first.v;
            for p in w.iter().skip(1) {
                if p.v < prev {
                    resets += 1;
                }
                prev = p.v;
            }
            Some(f64::from(resets))
        }
        RangeFn::AvgOverTime => Some(fold::<Avg>(w)),
        RangeFn::MinOverTime => {
            let mut min = first.v;
            for p in w {
                if p.v < min || min.is_nan() {
                    min = p.v;
                }
            }
            Some(min)
        }
        RangeFn::MaxOverTime => {
            let mut max = first.v;
            for p in w {
                if p.v > max || max.is_nan() {
                    max = p.v;
                }
            }
            Some(max)
        }
        RangeFn::SumOverTime => Some(fold::<Sum>(w)),
        RangeFn::CountOverTime => Some(match kind {
            ValueKind::Observed => w.len() as f64,
            // Pre-aggregated counts (downsampled data): the raw samples they stand for. Counts
            // are integers, so the plain sum is exact.
            ValueKind::RawSampleCounts => w.iter().map(|p| p.v).sum(),
        }),
        RangeFn::QuantileOverTime => {
            let mut values: Vec<f64> = w.iter().map(|p| p.v).collect();
            Some(quantile(ctx.scalars[0], &mut values))
        }
        RangeFn::StddevOverTime => Some(fold::<Stddev>(w)),
        RangeFn::StdvarOverTime => Some(fold::<Stdvar>(w)),
        RangeFn::LastOverTime => Some(last.v),
        RangeFn::PresentOverTime | RangeFn::AbsentOverTime => Some(1.0),
    })
}

/// Neumaier-compensated addition, as Prometheus's `kahanSumInc`.
pub(crate) fn kahan_sum_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// `rate`, `increase` or `delta` of one window, through [`rate_lanes`].
fn one_rate(
    w: &[Point],
    ctx: &WindowCtx,
    is_counter: bool,
    is_rate: bool,
    has_reset: bool,
) -> Option<f64> {
    let mut out = Vec::with_capacity(1);
    let window = RateWindow {
        step: 0,
        points: w,
        start: ctx.range_start,
        end: ctx.range_end,
        has_reset,
    };
    rate_lanes::extrapolated_rates(&[window], ctx.range, is_counter, is_rate, &mut out);
    out.first().map(|&(_, v)| v)
}

/// `irate` / `idelta`: the last two samples only.
fn instant_value(w: &[Point], is_rate: bool) -> Option<f64> {
    let n = w.len();
    if n < 2 {
        return None;
    }
    let last = w.get(n - 1)?;
    let prev = w.get(n - 2)?;
    let mut result = if is_rate && last.v < prev.v {
        last.v
    } else {
        last.v - prev.v
    };
    let interval = last.t - prev.t;
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Least-squares fit with x in seconds relative to `intercept_time`; returns (slope, intercept).
pub(crate) fn linear_regression(w: &[Point], intercept_time: i64) -> (f64, f64) {
    let init_y = w.first().map(|p| p.v).unwrap_or(f64::NAN);
    let mut const_y = true;
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    for (i, p) in w.iter().enumerate() {
        if const_y && i > 0 && p.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t as f64 - intercept_time as f64) / 1e3;
        (sum_x, c_x) = kahan_sum_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_sum_inc(p.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_sum_inc(x * p.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_sum_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let sum_x = sum_x + c_x;
    let sum_y = sum_y + c_y;
    let sum_xy = sum_xy + c_xy;
    let sum_x2 = sum_x2 + c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// 2.42's `holt_winters` (double exponential smoothing) with its argument validation.
fn holt_winters(w: &[Point], sf: f64, tf: f64) -> Result<Option<f64>> {
    if sf <= 0.0 || sf >= 1.0 {
        return Err(Error::exec(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
        )));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(Error::exec(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
        )));
    }
    if w.len() < 2 {
        return Ok(None);
    }
    let v0 = w.first().map(|p| p.v).unwrap_or(0.0);
    let v1 = w.get(1).map(|p| p.v).unwrap_or(0.0);
    let (mut s0, mut s1, mut b) = (0.0f64, v0, v1 - v0);
    for (i, p) in w.iter().enumerate().skip(1) {
        let x = sf * p.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Ok(Some(s1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prometheus 2.42's `extrapolatedRate` (zero-point clip before the threshold test), one
    /// window at a time as 2.42 writes it: the reference the lanes are checked against.
    fn extrapolated_rate(
        w: &[Point],
        ctx: &WindowCtx,
        is_counter: bool,
        is_rate: bool,
        has_reset: bool,
    ) -> Option<f64> {
        if w.len() < 2 {
            return None;
        }
        let first = w.first()?;
        let last = w.last()?;
        let mut result = last.v - first.v;
        if is_counter && has_reset {
            let mut prev = first.v;
            for p in w.iter().skip(1) {
                if p.v < prev {
                    result += prev;
                }
                prev = p.v;
            }
        }
        let mut duration_to_start = first.t.wrapping_sub(ctx.range_start) as f64 / 1000.0;
        let duration_to_end = ctx.range_end.wrapping_sub(last.t) as f64 / 1000.0;
        let sampled_interval = last.t.wrapping_sub(first.t) as f64 / 1000.0;
        let avg_between = sampled_interval / (w.len() - 1) as f64;
        if is_counter && result > 0.0 && first.v >= 0.0 {
            let duration_to_zero = sampled_interval * (first.v / result);
            if duration_to_zero < duration_to_start {
                duration_to_start = duration_to_zero;
            }
        }
        let threshold = avg_between * 1.1;
        let mut interval = sampled_interval;
        interval += if duration_to_start < threshold {
            duration_to_start
        } else {
            avg_between / 2.0
        };
        interval += if duration_to_end < threshold {
            duration_to_end
        } else {
            avg_between / 2.0
        };
        let mut factor = interval / sampled_interval;
        if is_rate {
            factor /= ctx.range as f64 / 1000.0;
        }
        Some(result * factor)
    }

    /// Running count of counter resets: `out[i]` = resets among samples `0..=i`.
    fn reset_prefix(points: &[Point]) -> Vec<u32> {
        let mut out = Vec::with_capacity(points.len());
        let mut count = 0u32;
        let mut prev: Option<f64> = None;
        for p in points {
            if prev.is_some_and(|pv| p.v < pv) {
                count += 1;
            }
            out.push(count);
            prev = Some(p.v);
        }
        out
    }

    fn pts(vals: &[(i64, f64)]) -> Vec<Point> {
        vals.iter().map(|&(t, v)| Point { t, v }).collect()
    }

    #[test]
    fn rate_matches_reference_example() {
        // Samples 1, 2, 3.5, 3.5, 100 at 0..60s: rate(foo[1m]) at 60s = 1.65, increase = 99.
        let w = pts(&[
            (0, 1.0),
            (15_000, 2.0),
            (30_000, 3.5),
            (45_000, 3.5),
            (60_000, 100.0),
        ]);
        let ctx = WindowCtx {
            ts: 60_000,
            range_start: 0,
            range_end: 60_000,
            range: 60_000,
            scalars: [0.0; 2],
        };
        let rate = extrapolated_rate(&w, &ctx, true, true, false).unwrap_or(f64::NAN);
        let increase = extrapolated_rate(&w, &ctx, true, false, false).unwrap_or(f64::NAN);
        assert!((rate - 1.65).abs() < 1e-9, "{rate}");
        assert!((increase - 99.0).abs() < 1e-9, "{increase}");
    }

    /// The lockstep rate ([`rate_lanes`]) gives the one-window version's exact bits, for
    /// every lane count, with resets, negative and non-finite values, short windows and edges
    /// near the samples.
    #[test]
    fn lockstep_rates_equal_the_one_window_rate_bit_for_bit() {
        let values = [
            0.0,
            1.5,
            -3.0,
            1e308,
            -1e-300,
            7.25,
            f64::INFINITY,
            f64::NAN,
            2.0,
            1.0,
            1e9,
            3.0,
        ];
        let points: Vec<Point> = (0..64)
            .map(|i: i64| Point {
                t: i * 15_000 + (i * i) % 7 * 1000,
                v: values[(i as usize * 5) % values.len()] + (i as f64) * 0.5,
            })
            .collect();
        let resets = reset_prefix(&points);
        for (is_counter, is_rate) in [(true, true), (true, false), (false, false)] {
            for range in [30_000i64, 61_000, 300_000] {
                let mut windows = Vec::new();
                for end in (0..1_000_000i64).step_by(13_000) {
                    let start = end - range;
                    let lo = points.partition_point(|p| p.t < start);
                    let hi = points.partition_point(|p| p.t <= end);
                    if lo >= hi {
                        continue;
                    }
                    let has_reset = is_counter && resets[hi - 1] > resets[lo];
                    windows.push(RateWindow {
                        step: windows.len(),
                        points: &points[lo..hi],
                        start,
                        end,
                        has_reset,
                    });
                }
                let want: Vec<(usize, u64)> = windows
                    .iter()
                    .filter_map(|w| {
                        let ctx = WindowCtx {
                            ts: w.end,
                            range_start: w.start,
                            range_end: w.end,
                            range,
                            scalars: [0.0; 2],
                        };
                        extrapolated_rate(w.points, &ctx, is_counter, is_rate, w.has_reset)
                            .map(|v| (w.step, v.to_bits()))
                    })
                    .collect();
                // The whole column as queries compute it: windows ending every 13 s, resets
                // found as the windows slide.
                let ends: Vec<i64> = (0..1_000_000i64).step_by(13_000).collect();
                let job = ColumnJob {
                    func: RangeFn::Rate,
                    rng: StepRange {
                        start: 0,
                        end: 1_000_000,
                        step: 13_000,
                    },
                    ref_times: &ends,
                    range,
                    scalar_args: &[],
                    threads: 1,
                };
                let column: Vec<(usize, u64)> = rate_column(&job, &points, is_counter, is_rate)
                    .iter()
                    .map(|&(step, v)| (step, v.to_bits()))
                    .collect();
                let want_by_end: Vec<(usize, u64)> = want
                    .iter()
                    .map(|&(i, v)| (ends.binary_search(&windows[i].end).unwrap_or(usize::MAX), v))
                    .collect();
                assert_eq!(
                    column, want_by_end,
                    "column: counter {is_counter} range {range}"
                );
                for lanes in 1..=rate_lanes::LANES {
                    let mut got = Vec::new();
                    for group in windows.chunks(lanes) {
                        rate_lanes::extrapolated_rates(group, range, is_counter, is_rate, &mut got);
                    }
                    let got: Vec<(usize, u64)> =
                        got.iter().map(|&(step, v)| (step, v.to_bits())).collect();
                    assert_eq!(
                        got, want,
                        "counter {is_counter} rate {is_rate} range {range}"
                    );
                }
            }
        }
    }

    #[test]
    fn holt_winters_validates_factors() {
        let w = pts(&[(0, 1.0), (1000, 2.0)]);
        let err = holt_winters(&w, 1.5, 0.5).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid smoothing factor. Expected: 0 < sf < 1, got: 1.500000")
        );
    }

    #[test]
    fn regression_constant_series() {
        let w = pts(&[(0, 5.0), (1000, 5.0)]);
        assert_eq!(linear_regression(&w, 0), (0.0, 5.0));
        let inf = pts(&[(0, f64::INFINITY), (1000, f64::INFINITY)]);
        assert!(linear_regression(&inf, 0).0.is_nan());
    }
}
