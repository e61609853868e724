//! A runner for Prometheus's promqltest files (`load`, `clear`, `eval instant`, `eval_fail`,
//! `eval_ordered`), as the 2.42 harness runs them: every instant evaluation is also re-run with
//! `@ <time>` pinned on every selector at several evaluation times (unless the query uses an
//! @-unsafe function), and as a range query around the evaluation time whose middle step must
//! give the same answer. An eval case passes only if all of its variants pass.
//!
//! Engine settings are the harness's: max samples 10000, timeout 100s, lookback 5m, subquery
//! default step 1m.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::parser::{AtModifier, Expr};

use crate::engine::{CancellationToken, Engine, EngineOptions};
use crate::error::{Error, Result};
use crate::labels::{Labels, METRIC_NAME};
use crate::storage::memory::MemoryStorage;
use crate::value::{Value, stale_nan};

/// One parsed command.
#[derive(Debug, Clone)]
enum Command {
    Load {
        interval_ms: i64,
        series: Vec<(Labels, Vec<Option<f64>>)>,
    },
    Clear,
    Eval(EvalCase),
}

/// An `eval` command with its expectations.
#[derive(Debug, Clone)]
pub struct EvalCase {
    /// 1-based line of the `eval` command.
    pub line: usize,
    pub expr: String,
    pub time_ms: i64,
    pub fail: bool,
    pub ordered: bool,
    /// `(start, end, step)` in ms for `eval range` (HEAD syntax).
    pub range: Option<(i64, i64, i64)>,
    expected: Expected,
}

#[derive(Debug, Clone)]
enum Expected {
    Scalar(f64),
    Vector(Vec<(Labels, f64)>),
    /// Per series, the value expected at each step (`None` = no point).
    Matrix(Vec<(Labels, Vec<Option<f64>>)>),
}

/// A failed eval case.
#[derive(Debug, Clone)]
pub struct Failure {
    pub file: String,
    pub line: usize,
    pub expr: String,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.expr, self.message
        )
    }
}

/// Outcome of running one or more files.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub passed: usize,
    pub failures: Vec<Failure>,
}

impl Summary {
    /// Adds another summary's counts.
    pub fn merge(&mut self, other: Summary) {
        self.passed += other.passed;
        self.failures.extend(other.failures);
    }
}

/// The engine options Prometheus's test harness uses.
pub fn harness_options() -> EngineOptions {
    EngineOptions {
        lookback_delta: Duration::from_secs(300),
        max_samples: 10_000,
        timeout: Duration::from_secs(100),
        default_subquery_step: Duration::from_secs(60),
        ..EngineOptions::default()
    }
}

/// Runs the test script `content` (named `file` in messages).
pub fn run_script(file: &str, content: &str) -> Result<Summary> {
    let commands = parse_script(file, content)?;
    let engine = Engine::new(harness_options());
    let mut storage = MemoryStorage::new();
    let mut summary = Summary::default();
    for cmd in commands {
        match cmd {
            Command::Clear => storage.clear(),
            Command::Load {
                interval_ms,
                series,
            } => {
                for (labels, values) in series {
                    for (i, v) in values.into_iter().enumerate() {
                        if let Some(v) = v {
                            storage.append(&labels, i as i64 * interval_ms, v);
                        }
                    }
                }
            }
            Command::Eval(case) => match run_eval(&engine, &storage, &case) {
                Ok(()) => summary.passed += 1,
                Err(message) => summary.failures.push(Failure {
                    file: file.to_string(),
                    line: case.line,
                    expr: case.expr.clone(),
                    message,
                }),
            },
        }
    }
    Ok(summary)
}

/// Functions whose results depend on the evaluation time itself; the harness does not pin
/// `@` on queries that use them.
const AT_MODIFIER_UNSAFE: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

/// Runs an `eval range` case: the result must be a matrix with exactly the expected points.
fn run_range_eval(
    engine: &Engine,
    storage: &MemoryStorage,
    case: &EvalCase,
    (start, end, step): (i64, i64, i64),
) -> std::result::Result<(), String> {
    let result = crate::parser::parse(&case.expr)
        .and_then(|e| engine.exec(storage, &e, start, end, step, &CancellationToken::new()));
    let value = match (result, case.fail) {
        (Err(_), true) => return Ok(()),
        (Err(e), false) => return Err(format!("unexpected error: {e}")),
        (Ok(_), true) => return Err("expected an error but got none".into()),
        (Ok(r), false) => r.value,
    };
    let Expected::Matrix(want) = &case.expected else {
        return Err("range eval without range expectations".into());
    };
    let Value::Matrix(got) = value else {
        return Err(format!("expected a matrix, got {}", value.type_name()));
    };
    for s in &got {
        let Some((_, values)) = want.iter().find(|(l, _)| *l == s.labels) else {
            return Err(format!("unexpected series {} in result", s.labels));
        };
        for p in &s.points {
            let idx = usize::try_from((p.t - start) / step.max(1)).unwrap_or(usize::MAX);
            match values.get(idx).copied().flatten() {
                Some(v) if almost_equal(v, p.v) => {}
                Some(v) => {
                    return Err(format!(
                        "expected {v} for {} at {}ms but got {}",
                        s.labels, p.t, p.v
                    ));
                }
                None => {
                    return Err(format!(
                        "unexpected point {} at {}ms for {}",
                        p.v, p.t, s.labels
                    ));
                }
            }
        }
        let expected_points = values.iter().filter(|v| v.is_some()).count();
        if expected_points != s.points.len() {
            return Err(format!(
                "expected {expected_points} points for {} but got {}",
                s.labels,
                s.points.len()
            ));
        }
    }
    for (l, values) in want {
        if values.iter().any(Option::is_some) && !got.iter().any(|s| s.labels == *l) {
            return Err(format!("expected series {l} not found"));
        }
    }
    Ok(())
}

/// Parses `from <d> to <d> step <d> <expr>`.
fn parse_range_spec(s: &str) -> Option<((i64, i64, i64), String)> {
    let mut rest = s;
    let mut word = || -> Option<&str> {
        let trimmed = rest.trim_start();
        let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let (w, r) = trimmed.split_at(end);
        rest = r;
        Some(w)
    };
    let (from, start, to, end, step_kw, step) =
        (word()?, word()?, word()?, word()?, word()?, word()?);
    if from != "from" || to != "to" || step_kw != "step" {
        return None;
    }
    let range = (
        parse_duration(start)?,
        parse_duration(end)?,
        parse_duration(step)?,
    );
    let expr = rest.trim().to_string();
    (!expr.is_empty()).then_some((range, expr))
}

fn run_eval(
    engine: &Engine,
    storage: &MemoryStorage,
    case: &EvalCase,
) -> std::result::Result<(), String> {
    if let Some(range) = case.range {
        return run_range_eval(engine, storage, case, range);
    }
    let expr = match crate::parser::parse(&case.expr) {
        Ok(e) => e,
        Err(e) => {
            return if case.fail {
                Ok(())
            } else {
                Err(format!("parse error: {e}"))
            };
        }
    };
    let mut variants: Vec<(Expr, i64)> = vec![(expr.clone(), case.time_ms)];
    let mut pinned = expr.clone();
    let mut unsafe_fn = false;
    pin_at(&mut pinned, case.time_ms, &mut unsafe_fn);
    if !unsafe_fn {
        let t = case.time_ms;
        let times: Vec<i64> = if t == 0 {
            vec![-1000, 0, 1000]
        } else {
            vec![-10 * t, 0, t / 5, t, 10 * t]
        };
        variants.extend(times.into_iter().map(|et| (pinned.clone(), et)));
    }
    let cancel = CancellationToken::new();
    for (i, (e, t)) in variants.iter().enumerate() {
        let which = if i == 0 {
            String::new()
        } else {
            format!(" (with @ pinned, evaluated at {t}ms)")
        };
        let res = engine.exec(storage, e, *t, *t, 0, &cancel);
        let value = match res {
            Err(err) => {
                if case.fail {
                    continue;
                }
                return Err(format!("unexpected error{which}: {err}"));
            }
            Ok(r) => r.value,
        };
        if case.fail {
            return Err(format!("expected an error{which} but got none"));
        }
        compare(case, &value).map_err(|m| format!("{m}{which}"))?;
        // The same query as a range query must give the same answer at the middle step.
        let range = engine
            .exec(storage, e, t - 60_000, t + 60_000, 60_000, &cancel)
            .map_err(|err| format!("error in range mode{which}: {err}"))?;
        if case.ordered {
            continue;
        }
        let Value::Matrix(series) = range.value else {
            return Err(format!(
                "range mode returned {}{which}",
                range.value.type_name()
            ));
        };
        let at_t: Vec<crate::value::Sample> = series
            .iter()
            .filter_map(|s| {
                s.points
                    .iter()
                    .find(|p| p.t == *t)
                    .map(|p| crate::value::Sample {
                        labels: s.labels.clone(),
                        t: *t,
                        v: p.v,
                    })
            })
            .collect();
        let as_value = if matches!(value, Value::Scalar { .. }) {
            match at_t.first() {
                Some(s) => Value::Scalar { t: *t, v: s.v },
                None => {
                    return Err(format!(
                        "range mode returned no scalar at the middle step{which}"
                    ));
                }
            }
        } else {
            Value::Vector(at_t)
        };
        compare(case, &as_value).map_err(|m| format!("in range mode: {m}{which}"))?;
    }
    Ok(())
}

/// Sets `@ t` on every selector and subquery that has none (not inside subqueries), and reports
/// whether an @-unsafe function occurs outside subqueries.
fn pin_at(e: &mut Expr, t_ms: i64, unsafe_fn: &mut bool) {
    let at = || {
        let t = if t_ms >= 0 {
            UNIX_EPOCH + Duration::from_millis(t_ms.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_millis(t_ms.unsigned_abs())
        };
        Some(AtModifier::At(t))
    };
    match e {
        Expr::VectorSelector(vs) => {
            if vs.at.is_none() {
                vs.at = at();
            }
        }
        Expr::MatrixSelector(ms) => {
            if ms.vs.at.is_none() {
                ms.vs.at = at();
            }
        }
        Expr::Subquery(sq) => {
            if sq.at.is_none() {
                sq.at = at();
            }
        }
        Expr::Call(call) => {
            if AT_MODIFIER_UNSAFE.contains(&call.func.name) {
                *unsafe_fn = true;
            }
            for a in call.args.args.iter_mut() {
                pin_at(a, t_ms, unsafe_fn);
            }
        }
        Expr::Aggregate(agg) => {
            pin_at(&mut agg.expr, t_ms, unsafe_fn);
            if let Some(p) = agg.param.as_mut() {
                pin_at(p, t_ms, unsafe_fn);
            }
        }
        Expr::Binary(b) => {
            pin_at(&mut b.lhs, t_ms, unsafe_fn);
            pin_at(&mut b.rhs, t_ms, unsafe_fn);
        }
        Expr::Unary(u) => pin_at(&mut u.expr, t_ms, unsafe_fn),
        Expr::Paren(p) => pin_at(&mut p.expr, t_ms, unsafe_fn),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Prometheus's `almostEqual` with relative tolerance 1e-6.
pub fn almost_equal(a: f64, b: f64) -> bool {
    const EPSILON: f64 = 0.000001;
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || diff < MIN_NORMAL {
        return diff < EPSILON * MIN_NORMAL;
    }
    diff / (a.abs() + b.abs()) < EPSILON
}

fn compare(case: &EvalCase, value: &Value) -> std::result::Result<(), String> {
    match (&case.expected, value) {
        (Expected::Scalar(want), Value::Scalar { v, .. }) => {
            if almost_equal(*want, *v) {
                Ok(())
            } else {
                Err(format!("expected scalar {want} but got {v}"))
            }
        }
        (Expected::Vector(want), Value::Vector(got)) => {
            for (pos, s) in got.iter().enumerate() {
                let Some(exp_pos) = want.iter().position(|(l, _)| *l == s.labels) else {
                    return Err(format!("unexpected metric {} in result", s.labels));
                };
                if case.ordered && exp_pos != pos {
                    return Err(format!(
                        "expected metric {} at position {} but was at {}",
                        s.labels,
                        exp_pos + 1,
                        pos + 1
                    ));
                }
                let want_v = want.get(exp_pos).map(|w| w.1).unwrap_or(f64::NAN);
                if !almost_equal(want_v, s.v) {
                    return Err(format!(
                        "expected {} for {} but got {}",
                        want_v, s.labels, s.v
                    ));
                }
            }
            for (l, v) in want {
                if !got.iter().any(|s| s.labels == *l) {
                    return Err(format!("expected metric {l} with {v} not found"));
                }
            }
            Ok(())
        }
        (Expected::Matrix(_), other) => {
            Err(format!("expected matrix result, got {}", other.type_name()))
        }
        (Expected::Scalar(_), other) => {
            Err(format!("expected scalar result, got {}", other.type_name()))
        }
        (Expected::Vector(_), other) => {
            Err(format!("expected vector result, got {}", other.type_name()))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Script parsing.

fn script_error(file: &str, line: usize, message: impl Into<String>) -> Error {
    Error::TestFile {
        file: file.to_string(),
        line,
        message: message.into(),
    }
}

/// Parses a whole test script.
fn parse_script(file: &str, content: &str) -> Result<Vec<Command>> {
    let lines: Vec<String> = content
        .lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let mut commands = Vec::new();
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        let lineno = i + 1;
        if line.is_empty() {
            i += 1;
            continue;
        }
        let mut words = line.split_whitespace();
        let keyword = words.next().unwrap_or("");
        match keyword {
            "clear" => {
                commands.push(Command::Clear);
                i += 1;
            }
            "load" => {
                let interval = words
                    .next()
                    .ok_or_else(|| script_error(file, lineno, "load needs an interval"))?;
                let interval_ms = parse_duration(interval).ok_or_else(|| {
                    script_error(file, lineno, format!("invalid interval {interval:?}"))
                })?;
                let mut series = Vec::new();
                i += 1;
                while let Some(def) = lines.get(i) {
                    if def.is_empty() {
                        break;
                    }
                    let (labels, rest) =
                        parse_metric(def).map_err(|m| script_error(file, i + 1, m))?;
                    let values = parse_values(rest).map_err(|m| script_error(file, i + 1, m))?;
                    // Within one load block a repeated series replaces the earlier definition.
                    series.retain(|(l, _): &(Labels, Vec<Option<f64>>)| *l != labels);
                    series.push((labels, values));
                    i += 1;
                }
                commands.push(Command::Load {
                    interval_ms,
                    series,
                });
            }
            k if k.starts_with("eval") => {
                let (fail, ordered) = match k {
                    "eval" => (false, false),
                    "eval_fail" => (true, false),
                    "eval_ordered" => (false, true),
                    other => {
                        return Err(script_error(
                            file,
                            lineno,
                            format!("unsupported command {other:?}"),
                        ));
                    }
                };
                let rest = line.get(k.len()..).unwrap_or("").trim_start();
                if let Some(range_spec) = rest.strip_prefix("range") {
                    let (range, expr) =
                        parse_range_spec(range_spec.trim_start()).ok_or_else(|| {
                            script_error(
                                file,
                                lineno,
                                "expected 'eval range from <d> to <d> step <d> <expr>'",
                            )
                        })?;
                    let mut expected = Vec::new();
                    i += 1;
                    while let Some(def) = lines.get(i) {
                        if def.is_empty() {
                            break;
                        }
                        let (labels, rest) =
                            parse_metric(def).map_err(|m| script_error(file, i + 1, m))?;
                        let values =
                            parse_values(rest).map_err(|m| script_error(file, i + 1, m))?;
                        expected.push((labels, values));
                        i += 1;
                    }
                    commands.push(Command::Eval(EvalCase {
                        line: lineno,
                        expr,
                        time_ms: range.0,
                        fail,
                        ordered,
                        range: Some(range),
                        expected: Expected::Matrix(expected),
                    }));
                    continue;
                }
                let rest = rest
                    .strip_prefix("instant")
                    .ok_or_else(|| {
                        script_error(file, lineno, "expected 'eval instant' or 'eval range'")
                    })?
                    .trim_start();
                let (time_ms, expr) = match rest.strip_prefix("at ") {
                    Some(r) => {
                        let r = r.trim_start();
                        let (dur, expr) = r
                            .split_once(char::is_whitespace)
                            .ok_or_else(|| script_error(file, lineno, "missing expression"))?;
                        let t = parse_duration(dur).ok_or_else(|| {
                            script_error(file, lineno, format!("invalid time {dur:?}"))
                        })?;
                        (t, expr.trim().to_string())
                    }
                    None => (0, rest.to_string()),
                };
                let mut expected_vec = Vec::new();
                let mut expected_scalar = None;
                i += 1;
                while let Some(def) = lines.get(i) {
                    if def.is_empty() {
                        break;
                    }
                    if let Some(f) = parse_number(def) {
                        expected_scalar = Some(f);
                        i += 1;
                        break;
                    }
                    let (labels, rest) =
                        parse_metric(def).map_err(|m| script_error(file, i + 1, m))?;
                    let values = parse_values(rest).map_err(|m| script_error(file, i + 1, m))?;
                    let [Some(v)] = values.as_slice() else {
                        return Err(script_error(
                            file,
                            i + 1,
                            "expected exactly one value in instant evaluation",
                        ));
                    };
                    expected_vec.push((labels, *v));
                    i += 1;
                }
                let expected = match expected_scalar {
                    Some(f) => Expected::Scalar(f),
                    None => Expected::Vector(expected_vec),
                };
                commands.push(Command::Eval(EvalCase {
                    line: lineno,
                    expr,
                    time_ms,
                    fail,
                    ordered,
                    range: None,
                    expected,
                }));
            }
            other => {
                return Err(script_error(
                    file,
                    lineno,
                    format!("unknown command {other:?}"),
                ));
            }
        }
    }
    Ok(commands)
}

/// Prometheus duration (`1h30m`, `5m`, `10s`, `1ms`, `2d`, `1w`, `1y`) in ms.
pub fn parse_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: i64 = rest.get(..digits)?.parse().ok()?;
        rest = rest.get(digits..)?;
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = rest.get(..unit_len)?;
        let mult = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
        rest = rest.get(unit_len..)?;
    }
    Some(total)
}

/// Go's `parseNumber` of the harness: an integer (any base prefix) or a float.
fn parse_number(s: &str) -> Option<f64> {
    parse_int_any_base(s)
        .map(|v| v as f64)
        .or_else(|| parse_float(s))
}

fn parse_int_any_base(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') && body.chars().all(|c| c.is_ascii_digit()) {
        i64::from_str_radix(body.get(1..)?, 8).ok()?
    } else if !body.is_empty() && body.chars().all(|c| c.is_ascii_digit()) {
        body.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

/// A float as Go's `ParseFloat` or a PromQL number literal (`Inf`, `NaN`, hex).
fn parse_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let (neg, body) = match lower.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, lower.strip_prefix('+').unwrap_or(&lower)),
    };
    let v = match body {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => {
            if let Some(h) = body.strip_prefix("0x") {
                i64::from_str_radix(h, 16).ok()? as f64
            } else if body
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
                && !body.is_empty()
            {
                body.parse::<f64>().ok()?
            } else {
                return None;
            }
        }
    };
    Some(if neg { -v } else { v })
}

/// Splits `metric{labels} rest` into the label set and the rest of the line.
fn parse_metric(line: &str) -> std::result::Result<(Labels, &str), String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = line.get(..name_end).unwrap_or("");
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        pairs.push((METRIC_NAME.to_string(), name.to_string()));
    }
    let mut rest = line.get(name_end..).unwrap_or("");
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut end = None;
        loop {
            // Skip separators.
            while chars
                .peek()
                .is_some_and(|(_, c)| c.is_whitespace() || *c == ',')
            {
                chars.next();
            }
            let Some(&(start, c)) = chars.peek() else {
                break;
            };
            if c == '}' {
                end = Some(start + 1);
                break;
            }
            let mut label = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c.is_alphanumeric() || c == '_' || c == ':' {
                    label.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('=') {
                return Err(format!("expected '=' after label {label:?} in {line:?}"));
            }
            while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                chars.next();
            }
            let quote = match chars.next() {
                Some((_, q @ ('"' | '\'' | '`'))) => q,
                _ => {
                    return Err(format!(
                        "expected quoted value for label {label:?} in {line:?}"
                    ));
                }
            };
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated label value in {line:?}")),
                    Some((_, c)) if c == quote => break,
                    Some((_, '\\')) if quote != '`' => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, 't')) => value.push('\t'),
                        Some((_, 'r')) => value.push('\r'),
                        Some((_, c)) => value.push(c),
                        None => return Err(format!("unterminated escape in {line:?}")),
                    },
                    Some((_, c)) => value.push(c),
                }
            }
            pairs.push((label, value));
        }
        let end = end.ok_or_else(|| format!("unterminated label set in {line:?}"))?;
        rest = body.get(end..).unwrap_or("");
    }
    Ok((Labels::from_pairs(pairs), rest.trim()))
}

/// Parses a value sequence: `1 2 _ _x3 stale 0+10x100 1-1x4 5x3`.
fn parse_values(s: &str) -> std::result::Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        if tok == "_" {
            out.push(None);
            continue;
        }
        if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n
                .parse()
                .map_err(|_| format!("invalid repetition {tok:?}"))?;
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        if tok == "stale" {
            out.push(Some(stale_nan()));
            continue;
        }
        // `<a>[(+|-)<b>]x<n>`. As in Prometheus's series lexer, `0x10` is "0 repeated", not hex.
        let expansion = tok.rfind('x').and_then(|xi| {
            let (head, count) = (tok.get(..xi)?, tok.get(xi + 1..)?);
            if head.is_empty() || count.is_empty() || !count.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            Some((head, count))
        });
        match expansion {
            None => out.push(Some(
                parse_float(tok).ok_or_else(|| format!("invalid value {tok:?}"))?,
            )),
            Some((head, count)) => {
                let n: usize = count
                    .parse()
                    .map_err(|_| format!("invalid repetition {tok:?}"))?;
                // Find the operator splitting start and increment (not a leading sign, not an
                // exponent sign).
                let bytes = head.as_bytes();
                let op_pos = (1..bytes.len()).find(|&i| {
                    matches!(bytes.get(i), Some(b'+' | b'-'))
                        && !matches!(bytes.get(i - 1), Some(b'e' | b'E'))
                });
                match op_pos {
                    None => {
                        let v =
                            parse_float(head).ok_or_else(|| format!("invalid value {tok:?}"))?;
                        out.extend(std::iter::repeat_n(Some(v), n + 1));
                    }
                    Some(p) => {
                        let start = parse_float(head.get(..p).unwrap_or(""))
                            .ok_or_else(|| format!("invalid value {tok:?}"))?;
                        let inc = parse_float(head.get(p..).unwrap_or(""))
                            .ok_or_else(|| format!("invalid increment {tok:?}"))?;
                        let mut v = start;
                        out.push(Some(v));
                        for _ in 0..n {
                            v += inc;
                            out.push(Some(v));
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Milliseconds to a `SystemTime` (for callers building `@` modifiers).
pub fn system_time(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_notation() -> std::result::Result<(), String> {
        let v = parse_values("0+10x3 _ _x2 stale 5x1 1-1x2")?;
        let shown: Vec<String> = v
            .iter()
            .map(|x| {
                x.map_or("_".into(), |f| {
                    if crate::value::is_stale_nan(f) {
                        "stale".into()
                    } else {
                        f.to_string()
                    }
                })
            })
            .collect();
        assert_eq!(
            shown,
            [
                "0", "10", "20", "30", "_", "_", "_", "stale", "5", "5", "1", "0", "-1"
            ]
        );
        Ok(())
    }

    #[test]
    fn metric_lines() -> std::result::Result<(), String> {
        let (l, rest) = parse_metric(r#"http_requests{job="api", instance="0"}	0+10x10"#)?;
        assert_eq!(l.get("__name__"), Some("http_requests"));
        assert_eq!(l.get("instance"), Some("0"));
        assert_eq!(rest, "0+10x10");
        let (l, rest) = parse_metric(r#"{a="b\"c"} 3"#)?;
        assert_eq!(l.get("a"), Some("b\"c"));
        assert_eq!(rest, "3");
        Ok(())
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("50m"), Some(3_000_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration("1ms"), Some(1));
        assert_eq!(parse_duration("x"), None);
    }

    #[test]
    fn script_runs_and_reports_failures() -> Result<()> {
        let script = "load 1m\n  m{a=\"1\"} 0+1x10\n\neval instant at 5m m\n  m{a=\"1\"} 5\n\neval instant at 5m m\n  m{a=\"1\"} 6\n";
        let summary = run_script("inline", script)?;
        assert_eq!(summary.passed, 1);
        assert_eq!(summary.failures.len(), 1);
        assert_eq!(summary.failures.first().map(|f| f.line), Some(7));
        Ok(())
    }
}
