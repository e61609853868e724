//! Aggregation operators (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`,
//! `topk`, `bottomk`, `quantile`, `count_values`) with `by` / `without`.
//!
//! Grouping keys are computed once per input series; each step then folds values into the
//! groups in input order, with 2.42's arithmetic (plain `sum`, incremental `avg` with its
//! infinity special cases, Welford for `stddev`/`stdvar`, Go's heap for `topk`/`bottomk`).
//! Groups are emitted in order of first appearance at each step. The folding aggregations over
//! a selector or a range function are fused with it: each input series is folded into its
//! group's per-step accumulators as storage returns it, so `count by (job) (x)` over 10k series
//! and 5,760 steps holds the groups' columns, not the 57.6 M input values (same fold order).

use promql_parser::parser::{AggregateExpr, Expr, LabelModifier, VectorSelector};

use super::eval::{Evaluator, SelectHintsExtra, StepRange, Val};
use super::functions::{go_sort, quantile, unwrap_parens};
use super::vector::{LabelsTable, StepVectors};
use crate::error::{Error, Result};
use crate::labels::{Labels, METRIC_NAME, is_valid_label_name};

/// How output labels are derived from input labels.
#[derive(Clone, Debug)]
pub(crate) struct Grouping {
    pub by: bool,
    pub labels: Vec<String>,
}

impl Grouping {
    pub(crate) fn from_modifier(m: &Option<LabelModifier>) -> Self {
        match m {
            None => Grouping {
                by: true,
                labels: Vec::new(),
            },
            Some(LabelModifier::Include(l)) => Grouping {
                by: true,
                labels: l.labels.clone(),
            },
            Some(LabelModifier::Exclude(l)) => Grouping {
                by: false,
                labels: l.labels.clone(),
            },
        }
    }

    /// The group's label set for a series.
    pub(crate) fn group_labels(&self, l: &Labels) -> Labels {
        if self.by {
            l.keep_only(&self.labels)
        } else {
            let mut out = l.drop_names(&self.labels);
            out.remove(METRIC_NAME);
            out
        }
    }
}

/// Per-group running state at one step.
#[derive(Clone, Debug, Default)]
struct Acc {
    simple: SimpleAcc,
    /// (input series index, value) for topk/bottomk/quantile.
    heap: Vec<(u32, f64)>,
}

/// State of the aggregations that fold one value at a time (all but topk, bottomk, quantile
/// and count_values), with 2.42's arithmetic.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SimpleAcc {
    value: f64,
    mean: f64,
    count: f64,
    seen: bool,
}

impl SimpleAcc {
    /// Starts a group with its first value.
    fn init(&mut self, op: &str, v: f64) {
        self.seen = true;
        self.value = v;
        self.mean = v;
        self.count = 1.0;
        match op {
            "stddev" | "stdvar" => self.value = 0.0,
            "group" => self.value = 1.0,
            _ => {}
        }
    }

    /// Folds in the next value (input order matters: 2.42's sum is plain addition).
    fn fold(&mut self, op: &str, v: f64) {
        match op {
            "sum" => self.value += v,
            "avg" => {
                self.count += 1.0;
                if self.mean.is_infinite() {
                    if v.is_infinite() && (self.mean > 0.0) == (v > 0.0) {
                        return;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        return;
                    }
                }
                self.mean += v / self.count - self.mean / self.count;
            }
            "max" if self.value < v || self.value.is_nan() => self.value = v,
            "min" if self.value > v || self.value.is_nan() => self.value = v,
            "count" => self.count += 1.0,
            "stddev" | "stdvar" => {
                self.count += 1.0;
                let delta = v - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (v - self.mean);
            }
            _ => {}
        }
    }

    /// The group's result.
    fn finish(&self, op: &str) -> f64 {
        match op {
            "avg" => self.mean,
            "count" => self.count,
            "stdvar" => self.value / self.count,
            "stddev" => (self.value / self.count).sqrt(),
            _ => self.value,
        }
    }
}

/// Aggregations that fold one value at a time.
fn is_simple(op: &str) -> bool {
    matches!(
        op,
        "sum" | "avg" | "group" | "max" | "min" | "count" | "stddev" | "stdvar"
    )
}

/// Per-group, per-step accumulators of an aggregation fed one inner series at a time. The fold
/// order per step is the inner series order, exactly as the unfused evaluation would see it,
/// and groups come out per step in order of first appearance, as there.
struct FusedGroups<'a> {
    op: &'a str,
    groups: LabelsTable,
    accs: Vec<Vec<SimpleAcc>>,
    order: Vec<Vec<u32>>,
}

impl<'a> FusedGroups<'a> {
    fn new(op: &'a str, steps: usize) -> Self {
        Self {
            op,
            groups: LabelsTable::default(),
            accs: Vec::new(),
            order: vec![Vec::new(); steps],
        }
    }

    /// The group of an inner series with `labels`.
    fn group_of(&mut self, grouping: &Grouping, labels: &Labels) -> u32 {
        let (g, fresh) = self.groups.intern(grouping.group_labels(labels));
        if fresh {
            self.accs.push(vec![SimpleAcc::default(); self.order.len()]);
        }
        g
    }

    /// Folds one inner series' column into group `g`.
    fn fold(&mut self, g: u32, column: &[(usize, f64)]) {
        let Some(group_accs) = self.accs.get_mut(g as usize) else {
            return;
        };
        for &(i, v) in column {
            let Some(acc) = group_accs.get_mut(i) else {
                continue;
            };
            if acc.seen {
                acc.fold(self.op, v);
            } else {
                acc.init(self.op, v);
                if let Some(o) = self.order.get_mut(i) {
                    o.push(g);
                }
            }
        }
    }

    fn finish(self) -> Val {
        let (op, accs) = (self.op, self.accs);
        let steps = self
            .order
            .into_iter()
            .enumerate()
            .map(|(i, groups)| {
                groups
                    .into_iter()
                    .map(|g| {
                        let v = accs
                            .get(g as usize)
                            .and_then(|a| a.get(i))
                            .map_or(f64::NAN, |a| a.finish(op));
                        (g, v)
                    })
                    .collect()
            })
            .collect();
        Val::Vector(StepVectors {
            labels: self.groups.into_labels(),
            steps,
        })
    }
}

/// `agg(range_function(selector[r]))` without materialising the inner result: each inner output
/// series is folded into its group's per-step accumulators as it is produced.
fn eval_fused(
    ev: &mut Evaluator<'_>,
    op: &str,
    grouping: &Grouping,
    call: &promql_parser::parser::Call,
    rng: StepRange,
) -> Result<Val> {
    let name = call.func.name;
    let args: Vec<&Expr> = call.args.args.iter().map(|a| unwrap_parens(a)).collect();
    let mut fused = FusedGroups::new(op, rng.len());
    let mut series_group: Vec<u32> = Vec::new();
    super::window::stream_range_function(ev, name, &args, rng, &mut |idx, labels, column| {
        if idx as usize >= series_group.len() {
            series_group.push(fused.group_of(grouping, labels));
        }
        let g = series_group.get(idx as usize).copied().unwrap_or(0);
        fused.fold(g, column);
        Ok(())
    })?;
    Ok(fused.finish())
}

/// `agg(selector)` without materialising the selector's step vectors (for a range query, every
/// series' value at every step): each series is folded into its group as storage returns it.
fn eval_fused_selector(
    ev: &mut Evaluator<'_>,
    op: &str,
    grouping: &Grouping,
    vs: &VectorSelector,
    rng: StepRange,
) -> Result<Val> {
    let spec = ev.selector_spec(vs)?;
    let extra = aggregation_hints(op, grouping);
    let mut fused = FusedGroups::new(op, rng.len());
    ev.stream_vector_selector(&spec, rng, false, &extra, &mut |labels, column| {
        let g = fused.group_of(grouping, &labels);
        fused.fold(g, column);
        Ok(())
    })?;
    Ok(fused.finish())
}

/// What an aggregation directly over a selector tells storage.
fn aggregation_hints(op: &str, grouping: &Grouping) -> SelectHintsExtra {
    SelectHintsExtra {
        func: Some(op.to_string()),
        grouping: grouping.labels.clone(),
        by: grouping.by,
        clip: None,
    }
}

/// Evaluates an aggregation.
pub(crate) fn eval_aggregate(
    ev: &mut Evaluator<'_>,
    agg: &AggregateExpr,
    rng: StepRange,
) -> Result<Val> {
    let op_string = agg.op.to_string();
    let op = op_string.as_str();
    let grouping = Grouping::from_modifier(&agg.modifier);
    let n = rng.len();
    let mut param_scalar: Option<Vec<f64>> = None;
    let mut param_string: Option<String> = None;
    if let Some(p) = &agg.param {
        match unwrap_parens(p) {
            Expr::StringLiteral(s) => param_string = Some(s.val.clone()),
            other => param_scalar = Some(ev.eval_scalar(other, rng)?),
        }
    }
    let input_expr = unwrap_parens(&agg.expr);
    if is_simple(op)
        && let Expr::Call(call) = input_expr
        && super::window::is_range_function(call.func.name)
        && call.func.name != "absent_over_time"
    {
        return eval_fused(ev, op, &grouping, call, rng);
    }
    if is_simple(op)
        && let Expr::VectorSelector(vs) = input_expr
    {
        return eval_fused_selector(ev, op, &grouping, vs, rng);
    }
    if matches!(op, "topk" | "bottomk")
        && let Some(call) = super::topk::fusable(input_expr)
    {
        let params = param_scalar.unwrap_or_else(|| vec![f64::NAN; n]);
        return super::topk::eval_fused_k(ev, op == "topk", &grouping, call, &params, rng);
    }
    let input = match input_expr {
        Expr::VectorSelector(vs) => {
            let spec = ev.selector_spec(vs)?;
            let extra = aggregation_hints(op, &grouping);
            ev.eval_vector_selector(&spec, rng, false, &extra)?
        }
        other => ev.eval_vector(other, rng)?,
    };
    if op == "count_values" {
        let label =
            param_string.ok_or_else(|| Error::exec("count_values requires a string parameter"))?;
        return count_values(input, &grouping, &label);
    }
    let params = param_scalar.unwrap_or_else(|| vec![f64::NAN; n]);
    let is_k = matches!(op, "topk" | "bottomk");

    // Group of each input series (not used by topk/bottomk output labels, which keep the input's).
    let mut group_table = LabelsTable::default();
    let series_group: Vec<u32> = input
        .labels
        .iter()
        .map(|l| group_table.intern(grouping.group_labels(l)).0)
        .collect();
    let num_groups = group_table.len();
    let group_labels = group_table.into_labels();

    let mut accs: Vec<Acc> = vec![Acc::default(); num_groups];
    let mut stamps: Vec<usize> = vec![usize::MAX; num_groups];
    let mut order: Vec<u32> = Vec::new();
    let mut out_steps: Vec<Vec<(u32, f64)>> = Vec::with_capacity(n);
    for (step_idx, step) in input.steps.iter().enumerate() {
        let param = params.get(step_idx).copied().unwrap_or(f64::NAN);
        let mut k = 0usize;
        if is_k {
            k = step_k(param)?.min(step.len().max(1));
            if k == 0 {
                out_steps.push(Vec::new());
                continue;
            }
        }
        order.clear();
        for &(idx, v) in step {
            let g = series_group.get(idx as usize).copied().unwrap_or(0);
            let gi = g as usize;
            let Some(acc) = accs.get_mut(gi) else {
                continue;
            };
            if stamps.get(gi) != Some(&step_idx) {
                if let Some(s) = stamps.get_mut(gi) {
                    *s = step_idx;
                }
                order.push(g);
                acc.simple.init(op, v);
                acc.heap.clear();
                if matches!(op, "topk" | "bottomk" | "quantile") {
                    acc.heap.push((idx, v));
                }
                continue;
            }
            match op {
                "sum" | "avg" | "group" | "max" | "min" | "count" | "stddev" | "stdvar" => {
                    acc.simple.fold(op, v);
                }
                "topk" | "bottomk" => {
                    let top = op == "topk";
                    if acc.heap.len() < k {
                        acc.heap.push((idx, v));
                        let last = acc.heap.len() - 1;
                        heap_up(&mut acc.heap, last, top);
                    } else if let Some(&(_, root)) = acc.heap.first() {
                        let replace = if top {
                            root < v || (root.is_nan() && !v.is_nan())
                        } else {
                            root > v || (root.is_nan() && !v.is_nan())
                        };
                        if replace {
                            if let Some(r) = acc.heap.first_mut() {
                                *r = (idx, v);
                            }
                            if k > 1 {
                                heap_fix(&mut acc.heap, 0, top);
                            }
                        }
                    }
                }
                "quantile" => acc.heap.push((idx, v)),
                other => return Err(Error::exec(format!("unknown aggregation {other}"))),
            }
        }
        let mut out = Vec::with_capacity(order.len());
        for &g in &order {
            let Some(acc) = accs.get_mut(g as usize) else {
                continue;
            };
            let value = match op {
                "quantile" => {
                    let mut values: Vec<f64> = acc.heap.iter().map(|&(_, v)| v).collect();
                    quantile(param, &mut values)
                }
                "topk" | "bottomk" => {
                    let top = op == "topk";
                    // sort.Sort(sort.Reverse(heap)): less(i, j) = heapLess(j, i).
                    let less = |x: &(u32, f64), y: &(u32, f64)| heap_less(y.1, x.1, top);
                    go_sort(&mut acc.heap, &less);
                    // Output indexes refer to input series here; remapped below.
                    for &(idx, v) in &acc.heap {
                        out.push((idx, v));
                    }
                    continue;
                }
                _ => acc.simple.finish(op),
            };
            out.push((g, value));
        }
        out_steps.push(out);
    }
    let labels = if is_k { input.labels } else { group_labels };
    Ok(Val::Vector(StepVectors {
        labels,
        steps: out_steps,
    }))
}

/// The k of `topk`/`bottomk` at one step: Prometheus's error for a parameter outside int64,
/// 0 (an empty step) below 1.
pub(crate) fn step_k(param: f64) -> Result<usize> {
    if !(param <= i64::MAX as f64 && param >= i64::MIN as f64) {
        return Err(Error::exec(format!(
            "Scalar value {} overflows int64",
            go_float_v(param)
        )));
    }
    let k = param as i64;
    Ok(if k < 1 {
        0
    } else {
        usize::try_from(k).unwrap_or(usize::MAX)
    })
}

/// Go's vectorByValueHeap (topk) / vectorByReverseValueHeap (bottomk) `Less`.
pub(crate) fn heap_less(a: f64, b: f64, top: bool) -> bool {
    if a.is_nan() {
        return true;
    }
    if top { a < b } else { a > b }
}

/// container/heap `up`.
pub(crate) fn heap_up(h: &mut [(u32, f64)], mut j: usize, top: bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if !heap_less(h[j].1, h[i].1, top) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

/// container/heap `down`; returns whether the element moved.
fn heap_down(h: &mut [(u32, f64)], i0: usize, top: bool) -> bool {
    let n = h.len();
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && heap_less(h[j2].1, h[j1].1, top) {
            j = j2;
        }
        if !heap_less(h[j].1, h[i].1, top) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    i > i0
}

/// container/heap `Fix`.
pub(crate) fn heap_fix(h: &mut [(u32, f64)], i: usize, top: bool) {
    if !heap_down(h, i, top) {
        heap_up(h, i, top);
    }
}

/// Formats a float like Go's `%v`.
fn go_float_v(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        crate::format::go_float_g(v)
    }
}

/// `count_values`: counts of each distinct value per group, the value added as a label.
fn count_values(input: StepVectors, grouping: &Grouping, label: &str) -> Result<Val> {
    if !is_valid_label_name(label) {
        return Err(Error::exec(format!("invalid label name {label:?}")));
    }
    let mut grouping = grouping.clone();
    if grouping.by {
        grouping.labels.push(label.to_string());
    }
    let mut table = LabelsTable::default();
    let mut steps = Vec::with_capacity(input.steps.len());
    for step in &input.steps {
        let mut order: Vec<u32> = Vec::new();
        let mut counts: std::collections::HashMap<u32, f64> = std::collections::HashMap::new();
        for &(idx, v) in step {
            let mut l = input.series_labels(idx).clone();
            l.set(label, &crate::format::go_float_f(v));
            let (g, _) = table.intern(grouping.group_labels(&l));
            let c = counts.entry(g).or_insert_with(|| {
                order.push(g);
                0.0
            });
            *c += 1.0;
        }
        steps.push(
            order
                .iter()
                .map(|g| (*g, counts.get(g).copied().unwrap_or(0.0)))
                .collect(),
        );
    }
    Ok(Val::Vector(StepVectors {
        labels: table.into_labels(),
        steps,
    }))
}
