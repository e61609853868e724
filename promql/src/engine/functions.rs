//! Instant-vector and scalar functions of Prometheus 2.42 (everything except the range-vector
//! functions in `window.rs`): math, clamping, rounding, date functions, `label_replace`,
//! `label_join`, `histogram_quantile` over classic buckets, `absent`, `scalar`, `vector`,
//! `sort`, `timestamp`. Go's `math` semantics are reproduced where Rust differs (`Max`/`Min`
//! with NaN and infinities, `round` ties toward +Inf).

use std::collections::HashMap;

use promql_parser::parser::{Call, Expr};

use super::eval::{Evaluator, StepRange, Val};
use super::vector::{LabelsTable, StepVectors};
use super::window;
use crate::error::{Error, Result};
use crate::labels::{Labels, METRIC_NAME, is_valid_label_name};
use crate::matcher::compile_anchored;

/// Strips any number of enclosing parentheses.
pub(crate) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

/// Evaluates a function call.
pub(crate) fn eval_call(ev: &mut Evaluator<'_>, call: &Call, rng: StepRange) -> Result<Val> {
    let name = call.func.name;
    let args: Vec<&Expr> = call.args.args.iter().map(|a| unwrap_parens(a)).collect();
    if window::is_range_function(name) {
        return window::eval_range_function(ev, name, &args, rng);
    }
    let n = rng.len();
    match name {
        "time" => Ok(Val::Scalar(
            (0..n).map(|i| rng.ts(i) as f64 / 1000.0).collect(),
        )),
        "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; n])),
        "vector" => {
            let values = ev.eval_scalar(arg(&args, 0, name)?, rng)?;
            let mut out = StepVectors::empty(n);
            out.labels.push(Labels::empty());
            for (step, v) in out.steps.iter_mut().zip(values) {
                step.push((0, v));
            }
            Ok(Val::Vector(out))
        }
        "scalar" => {
            let v = ev.eval_vector(arg(&args, 0, name)?, rng)?;
            Ok(Val::Scalar(
                v.steps
                    .iter()
                    .map(|s| match s.as_slice() {
                        [(_, x)] => *x,
                        _ => f64::NAN,
                    })
                    .collect(),
            ))
        }
        "timestamp" => {
            let a = arg(&args, 0, name)?;
            let v = if let Expr::VectorSelector(vs) = a {
                let mut spec = ev.selector_spec(vs)?;
                let mut extra = super::eval::SelectHintsExtra::default();
                if let Some(at) = spec.at {
                    // 2.42 quirk: timestamp() re-derives the offset of an @-pinned selector from
                    // @ alone (dropping `offset`), while the data read is still limited to the
                    // range the selector with its offset asked for.
                    let lookback = ev.options_lookback();
                    let end = at.saturating_sub(spec.offset);
                    extra.clip = Some((end.saturating_sub(lookback), end));
                    spec.offset = 0;
                }
                ev.eval_vector_selector(&spec, rng, true, &extra)?
            } else {
                let mut v = ev.eval_vector(a, rng)?;
                for (i, step) in v.steps.iter_mut().enumerate() {
                    for (_, x) in step.iter_mut() {
                        *x = rng.ts(i) as f64 / 1000.0;
                    }
                }
                v
            };
            Ok(Val::Vector(v.map_labels(Labels::without_name)?))
        }
        "absent" => {
            let a = arg(&args, 0, name)?;
            let v = ev.eval_vector(a, rng)?;
            let mut out = StepVectors::empty(n);
            out.labels.push(absent_labels(a));
            for (o, s) in out.steps.iter_mut().zip(&v.steps) {
                if s.is_empty() {
                    o.push((0, 1.0));
                }
            }
            Ok(Val::Vector(out))
        }
        "sort" | "sort_desc" => {
            let mut v = ev.eval_vector(arg(&args, 0, name)?, rng)?;
            for step in &mut v.steps {
                go_sort_by_value(step, name == "sort_desc");
            }
            Ok(Val::Vector(v))
        }
        "label_replace" => label_replace(ev, &args, rng),
        "label_join" => label_join(ev, &args, rng),
        "histogram_quantile" => histogram_quantile(ev, &args, rng),
        "histogram_count" | "histogram_sum" | "histogram_fraction" => {
            // Native histograms only; float samples produce nothing.
            for a in &args {
                ev.eval(a, rng)?;
            }
            Ok(Val::Vector(StepVectors::empty(n)))
        }
        "round" => {
            let v = ev.eval_vector(arg(&args, 0, name)?, rng)?;
            let to = match args.get(1) {
                Some(a) => ev.eval_scalar(a, rng)?,
                None => vec![1.0; n],
            };
            map_values(v, |i, x| {
                let inverse = 1.0 / to.get(i).copied().unwrap_or(1.0);
                Some((x * inverse + 0.5).floor() / inverse)
            })
        }
        "clamp" => {
            let v = ev.eval_vector(arg(&args, 0, name)?, rng)?;
            let min = ev.eval_scalar(arg(&args, 1, name)?, rng)?;
            let max = ev.eval_scalar(arg(&args, 2, name)?, rng)?;
            map_values(v, |i, x| {
                let (lo, hi) = (
                    min.get(i).copied().unwrap_or(f64::NAN),
                    max.get(i).copied().unwrap_or(f64::NAN),
                );
                if hi < lo {
                    None
                } else {
                    Some(go_max(lo, go_min(hi, x)))
                }
            })
        }
        "clamp_min" | "clamp_max" => {
            let v = ev.eval_vector(arg(&args, 0, name)?, rng)?;
            let bound = ev.eval_scalar(arg(&args, 1, name)?, rng)?;
            let is_min = name == "clamp_min";
            map_values(v, |i, x| {
                let b = bound.get(i).copied().unwrap_or(f64::NAN);
                Some(if is_min { go_max(b, x) } else { go_min(b, x) })
            })
        }
        "minute" | "hour" | "day_of_week" | "day_of_month" | "day_of_year" | "days_in_month"
        | "month" | "year" => {
            if let Some(a) = args.first() {
                let v = ev.eval_vector(a, rng)?;
                map_values(v, |_, x| Some(date_part(name, x as i64)))
            } else {
                let mut out = StepVectors::empty(n);
                out.labels.push(Labels::empty());
                for (i, step) in out.steps.iter_mut().enumerate() {
                    // Go: time.Unix(ts/1000, 0), a truncating division.
                    step.push((0, date_part(name, rng.ts(i) / 1000)));
                }
                Ok(Val::Vector(out))
            }
        }
        _ => {
            let f = simple_function(name)
                .ok_or_else(|| Error::exec(format!("unknown function with name {name:?}")))?;
            let v = ev.eval_vector(arg(&args, 0, name)?, rng)?;
            map_values(v, |_, x| Some(f(x)))
        }
    }
}

fn arg<'e>(args: &[&'e Expr], i: usize, name: &str) -> Result<&'e Expr> {
    args.get(i)
        .copied()
        .ok_or_else(|| Error::exec(format!("missing argument {} to {name}", i + 1)))
}

/// Maps values (dropping elements where `f` returns `None`) and drops the metric name.
fn map_values(mut v: StepVectors, mut f: impl FnMut(usize, f64) -> Option<f64>) -> Result<Val> {
    for (i, step) in v.steps.iter_mut().enumerate() {
        step.retain_mut(|(_, x)| match f(i, *x) {
            Some(y) => {
                *x = y;
                true
            }
            None => false,
        });
    }
    Ok(Val::Vector(v.map_labels(Labels::without_name)?))
}

/// The one-argument math functions.
fn simple_function(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        "sgn" => |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

/// Go's `math.Max`: +Inf wins over NaN, NaN wins over everything else, +0 over -0.
pub(crate) fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        return f64::INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && y == 0.0 {
        return if x.is_sign_negative() { y } else { x };
    }
    if x > y { x } else { y }
}

/// Go's `math.Min`: -Inf wins over NaN, NaN wins over everything else, -0 over +0.
pub(crate) fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && y == 0.0 {
        return if x.is_sign_negative() { x } else { y };
    }
    if x < y { x } else { y }
}

/// Labels of `absent()`'s output: the equality matchers of a selector argument, minus the
/// name and any label that also has another matcher.
pub(crate) fn absent_labels(e: &Expr) -> Labels {
    let vs = match unwrap_parens(e) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::empty(),
    };
    let mut out = Labels::empty();
    let mut dropped: Vec<String> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, promql_parser::label::MatchOp::Equal) && out.get(&m.name).is_none() {
            out.set(&m.name, &m.value);
        } else {
            dropped.push(m.name.clone());
        }
    }
    for d in dropped {
        out.remove(&d);
    }
    out
}

/// Prometheus's `quantile` over a set of values (sorted ascending with NaN first).
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    let lo = values.get(lower as usize).copied().unwrap_or(f64::NAN);
    let hi = values.get(upper as usize).copied().unwrap_or(f64::NAN);
    lo * (1.0 - weight) + hi * weight
}

/// `sort` / `sort_desc` as 2.42 does them: `sort.Sort(sort.Reverse(heap))` with the value-heap
/// orderings, whose `Less` puts NaN first; reversed, NaN ends up last in both directions. Small
/// inputs use Go's insertion sort so tie order matches too.
fn go_sort_by_value(step: &mut [(u32, f64)], descending: bool) {
    // less(i, j) of the heap type; the reversed sort uses less(j, i).
    let heap_less = |a: f64, b: f64| -> bool {
        if a.is_nan() {
            return true;
        }
        if descending { a < b } else { a > b }
    };
    let less = |x: &(u32, f64), y: &(u32, f64)| heap_less(y.1, x.1);
    go_sort(step, &less);
}

/// Go's `sort.Sort` for small slices (insertion sort, stable); larger slices fall back to a
/// stable merge sort, which Go does not guarantee but which orders equal keys deterministically.
pub(crate) fn go_sort<T>(v: &mut [T], less: &dyn Fn(&T, &T) -> bool) {
    if v.len() <= 12 {
        for i in 1..v.len() {
            let mut j = i;
            while j > 0 && less(&v[j], &v[j - 1]) {
                v.swap(j, j - 1);
                j -= 1;
            }
        }
    } else {
        v.sort_by(|a, b| {
            if less(a, b) {
                std::cmp::Ordering::Less
            } else if less(b, a) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
    }
}

fn string_arg(e: &Expr, func: &str) -> Result<String> {
    match unwrap_parens(e) {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        _ => Err(Error::exec(format!(
            "expected string literal argument to {func}"
        ))),
    }
}

/// Applies a per-series label rewrite (computed once per input series) and checks collisions.
fn relabel(v: StepVectors, mut f: impl FnMut(&Labels) -> Labels) -> Result<Val> {
    let mut table = LabelsTable::default();
    let remap: Vec<u32> = v.labels.iter().map(|l| table.intern(f(l)).0).collect();
    let steps = v
        .steps
        .into_iter()
        .map(|s| {
            s.into_iter()
                .map(|(i, x)| (remap.get(i as usize).copied().unwrap_or(0), x))
                .collect()
        })
        .collect();
    let out = StepVectors {
        labels: table.into_labels(),
        steps,
    };
    out.check_duplicates()?;
    Ok(Val::Vector(out))
}

fn label_replace(ev: &mut Evaluator<'_>, args: &[&Expr], rng: StepRange) -> Result<Val> {
    let name = "label_replace";
    let v = ev.eval_vector(arg(args, 0, name)?, rng)?;
    let dst = string_arg(arg(args, 1, name)?, name)?;
    let repl = string_arg(arg(args, 2, name)?, name)?;
    let src = string_arg(arg(args, 3, name)?, name)?;
    let regex_str = string_arg(arg(args, 4, name)?, name)?;
    let re = compile_anchored(&regex_str).map_err(|_| {
        Error::exec(format!(
            "invalid regular expression in label_replace(): {regex_str}"
        ))
    })?;
    if !is_valid_label_name(&dst) {
        return Err(Error::exec(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    relabel(v, |l| {
        let src_val = l.get_or_empty(&src);
        match re.captures(src_val) {
            None => l.clone(),
            Some(caps) => {
                let mut res = String::new();
                caps.expand(&repl, &mut res);
                let mut out = l.clone();
                out.set(&dst, &res);
                out
            }
        }
    })
}

fn label_join(ev: &mut Evaluator<'_>, args: &[&Expr], rng: StepRange) -> Result<Val> {
    let name = "label_join";
    let v = ev.eval_vector(arg(args, 0, name)?, rng)?;
    let dst = string_arg(arg(args, 1, name)?, name)?;
    let sep = string_arg(arg(args, 2, name)?, name)?;
    let mut srcs = Vec::new();
    for a in args.iter().skip(3) {
        let s = string_arg(a, name)?;
        if !is_valid_label_name(&s) {
            return Err(Error::exec(format!(
                "invalid source label name in label_join(): {s}"
            )));
        }
        srcs.push(s);
    }
    if !is_valid_label_name(&dst) {
        return Err(Error::exec(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    relabel(v, |l| {
        let joined = srcs
            .iter()
            .map(|s| l.get_or_empty(s))
            .collect::<Vec<_>>()
            .join(&sep);
        let mut out = l.clone();
        out.set(&dst, &joined);
        out
    })
}

/// Parses a float as Go's `strconv.ParseFloat` does for the forms that occur in `le` labels.
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => {
            return Some(if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            });
        }
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if let Some(hex) = lower.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok().map(|v| v as f64);
    }
    if lower.contains("inf") || lower.contains("nan") {
        return None;
    }
    s.parse::<f64>().ok()
}

fn histogram_quantile(ev: &mut Evaluator<'_>, args: &[&Expr], rng: StepRange) -> Result<Val> {
    let name = "histogram_quantile";
    let q = ev.eval_scalar(arg(args, 0, name)?, rng)?;
    let v = ev.eval_vector(arg(args, 1, name)?, rng)?;
    // Per input series: its group (all labels but `le`, name included) and upper bound.
    let mut group_table = LabelsTable::default();
    let mut out_table = LabelsTable::default();
    let mut group_out: Vec<u32> = Vec::new();
    let per_series: Vec<Option<(u32, f64)>> = v
        .labels
        .iter()
        .map(|l| {
            let ub = parse_go_float(l.get("le")?)?;
            let mut key = l.clone();
            key.remove("le");
            let (g, fresh) = group_table.intern(key.clone());
            if fresh {
                let (o, _) = out_table.intern(key.without_name());
                group_out.push(o);
            }
            Some((g, ub))
        })
        .collect();
    let mut out = StepVectors {
        labels: Vec::new(),
        steps: Vec::with_capacity(v.steps.len()),
    };
    let mut buckets: HashMap<u32, Vec<(f64, f64)>> = HashMap::new();
    let mut order: Vec<u32> = Vec::new();
    for (i, step) in v.steps.iter().enumerate() {
        buckets.clear();
        order.clear();
        for &(idx, x) in step {
            let Some(Some((g, ub))) = per_series.get(idx as usize) else {
                continue;
            };
            let entry = buckets.entry(*g).or_insert_with(|| {
                order.push(*g);
                Vec::new()
            });
            entry.push((*ub, x));
        }
        let qi = q.get(i).copied().unwrap_or(f64::NAN);
        let mut out_step = Vec::with_capacity(order.len());
        for g in &order {
            let Some(b) = buckets.get_mut(g) else {
                continue;
            };
            let o = group_out.get(*g as usize).copied().unwrap_or(0);
            out_step.push((o, bucket_quantile(qi, b)));
        }
        out.steps.push(out_step);
    }
    out.labels = out_table.into_labels();
    out.check_duplicates()?;
    Ok(Val::Vector(out))
}

/// 2.42's `bucketQuantile` over (upper bound, cumulative count) pairs.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(&(ub, _)) if ub == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // Coalesce equal upper bounds.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(ub, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    // Force monotonic counts.
    let mut max = f64::NEG_INFINITY;
    for b in merged.iter_mut() {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    let n = merged.len();
    if n < 2 {
        return f64::NAN;
    }
    let observations = merged[n - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // Go's sort.Search over the first n-1 buckets.
    let (mut i, mut j) = (0usize, n - 1);
    while i < j {
        let h = (i + j) / 2;
        if merged[h].1 >= rank {
            j = h;
        } else {
            i = h + 1;
        }
    }
    let b = i;
    if b == n - 1 {
        return merged[n - 2].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let mut bucket_start = 0.0;
    let bucket_end = merged[b].0;
    let mut count = merged[b].1;
    if b > 0 {
        bucket_start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

/// A date component of unix time `secs` (UTC), as Go's `time` package computes it.
fn date_part(name: &str, secs: i64) -> f64 {
    let days = secs.div_euclid(86_400);
    let secs_of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match name {
        "minute" => ((secs_of_day / 60) % 60) as f64,
        "hour" => (secs_of_day / 3600) as f64,
        // 1970-01-01 was a Thursday (4).
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_month" => day as f64,
        "day_of_year" => {
            const CUMULATIVE: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
            let before = CUMULATIVE.get((month - 1) as usize).copied().unwrap_or(0);
            (before + day + i64::from(leap && month > 2)) as f64
        }
        "days_in_month" => match month {
            2 => {
                if leap {
                    29.0
                } else {
                    28.0
                }
            }
            4 | 6 | 9 | 11 => 30.0,
            _ => 31.0,
        },
        "month" => month as f64,
        "year" => year as f64,
        _ => f64::NAN,
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_min_max_special_cases() {
        assert_eq!(go_max(f64::NAN, f64::INFINITY), f64::INFINITY);
        assert!(go_max(f64::NAN, 1.0).is_nan());
        assert_eq!(go_min(f64::NAN, f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert!(go_min(1.0, f64::NAN).is_nan());
    }

    #[test]
    fn dates() {
        // 2020-02-29T12:34:56Z = 1582979696
        let t = 1_582_979_696;
        assert_eq!(date_part("year", t), 2020.0);
        assert_eq!(date_part("month", t), 2.0);
        assert_eq!(date_part("day_of_month", t), 29.0);
        assert_eq!(date_part("days_in_month", t), 29.0);
        assert_eq!(date_part("day_of_year", t), 60.0);
        assert_eq!(date_part("hour", t), 12.0);
        assert_eq!(date_part("minute", t), 34.0);
        assert_eq!(date_part("day_of_week", t), 6.0);
        assert_eq!(date_part("year", -1), 1969.0);
    }

    #[test]
    fn bucket_quantile_interpolates() {
        let mut b = vec![(0.1, 10.0), (0.2, 20.0), (f64::INFINITY, 20.0)];
        let v = bucket_quantile(0.5, &mut b);
        assert!((v - 0.1).abs() < 1e-12, "{v}");
        let mut unsorted = vec![(f64::INFINITY, 4.0), (1.0, 2.0), (1.0, 2.0)];
        assert!((bucket_quantile(0.5, &mut unsorted) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn quantile_edges() {
        assert!(quantile(f64::NAN, &mut [1.0]).is_nan());
        assert_eq!(quantile(-1.0, &mut [1.0]), f64::NEG_INFINITY);
        assert_eq!(quantile(0.5, &mut [1.0, 3.0]), 2.0);
    }
}
