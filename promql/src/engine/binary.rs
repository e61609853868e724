//! Binary operators: arithmetic, comparisons (with and without `bool`), `atan2`, and the set
//! operators, with vector matching (`on`, `ignoring`, `group_left`, `group_right`).
//!
//! Match signatures and result label sets are computed once per series (or per matched pair)
//! and reused at every step; the per-step work only looks up dense indexes. Error texts and
//! the label rules (which side's labels, when `__name__` goes) are those of Prometheus 2.42.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::eval::{Evaluator, StepRange, Val};
use super::vector::{LabelsTable, StepVectors};
use crate::error::{Error, Result};
use crate::labels::{Labels, METRIC_NAME};

/// Operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "^" => Op::Pow,
            "atan2" => Op::Atan2,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "and" => Op::And,
            "or" => Op::Or,
            "unless" => Op::Unless,
            _ => return None,
        })
    }

    fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    /// Arithmetic drops the metric name; 2.42 keeps it for `atan2`.
    fn drops_name(self) -> bool {
        matches!(
            self,
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Mod | Op::Pow
        )
    }
}

/// Prometheus's `vectorElemBinop` for floats: (value, keep).
fn elem_op(op: Op, l: f64, r: f64) -> (f64, bool) {
    match op {
        Op::Add => (l + r, true),
        Op::Sub => (l - r, true),
        Op::Mul => (l * r, true),
        Op::Div => (l / r, true),
        Op::Mod => (l % r, true),
        Op::Pow => (l.powf(r), true),
        Op::Atan2 => (l.atan2(r), true),
        Op::Eq => (l, l == r),
        Op::Ne => (l, l != r),
        Op::Gt => (l, l > r),
        Op::Lt => (l, l < r),
        Op::Ge => (l, l >= r),
        Op::Le => (l, l <= r),
        Op::And | Op::Or | Op::Unless => (f64::NAN, false),
    }
}

/// Scalar-scalar operation; comparisons give 0/1.
fn scalar_op(op: Op, l: f64, r: f64) -> f64 {
    let (v, keep) = elem_op(op, l, r);
    if op.is_comparison() {
        if keep { 1.0 } else { 0.0 }
    } else {
        v
    }
}

/// Evaluates a binary expression.
pub(crate) fn eval_binary(ev: &mut Evaluator<'_>, b: &BinaryExpr, rng: StepRange) -> Result<Val> {
    let op_string = b.op.to_string();
    let op_text = op_string.as_str();
    let op = Op::parse(op_text)
        .ok_or_else(|| Error::exec(format!("unknown binary operator {op_text}")))?;
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&b.lhs, rng)?;
    let rhs = ev.eval(&b.rhs, rng)?;
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
            l.iter()
                .zip(&r)
                .map(|(&a, &b)| scalar_op(op, a, b))
                .collect(),
        )),
        (Val::Vector(v), Val::Scalar(s)) => vector_scalar(op, v, &s, false, return_bool),
        (Val::Scalar(s), Val::Vector(v)) => vector_scalar(op, v, &s, true, return_bool),
        (Val::Vector(l), Val::Vector(r)) => {
            let (on, matching) = match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
                Some(LabelModifier::Include(ls)) => (true, ls.labels.clone()),
                Some(LabelModifier::Exclude(ls)) => (false, ls.labels.clone()),
                None => (false, Vec::new()),
            };
            let card = b
                .modifier
                .as_ref()
                .map(|m| m.card.clone())
                .unwrap_or(VectorMatchCardinality::OneToOne);
            let matcher = Matching {
                on,
                labels: matching,
            };
            match op {
                Op::And | Op::Or | Op::Unless => set_op(op, l, r, &matcher),
                _ => vector_vector(op, l, r, &matcher, &card, return_bool),
            }
        }
        (l, r) => Err(Error::exec(format!(
            "binary expression must contain only scalar and instant vector types, got {} and {}",
            val_name(&l),
            val_name(&r)
        ))),
    }
}

fn val_name(v: &Val) -> &'static str {
    match v {
        Val::Scalar(_) => "scalar",
        Val::Str(_) => "string",
        Val::Vector(_) => "instant vector",
        Val::Matrix(_) => "range vector",
    }
}

/// Vector op scalar (`swap` when the scalar is on the left).
fn vector_scalar(
    op: Op,
    mut v: StepVectors,
    s: &[f64],
    swap: bool,
    return_bool: bool,
) -> Result<Val> {
    for (i, step) in v.steps.iter_mut().enumerate() {
        let sv = s.get(i).copied().unwrap_or(f64::NAN);
        step.retain_mut(|(_, x)| {
            let (l, r) = if swap { (sv, *x) } else { (*x, sv) };
            let (mut value, mut keep) = elem_op(op, l, r);
            if op.is_comparison() && swap {
                value = r;
            }
            if return_bool {
                value = if keep { 1.0 } else { 0.0 };
                keep = true;
            }
            if keep {
                *x = value;
            }
            keep
        });
    }
    if op.drops_name() || return_bool {
        Ok(Val::Vector(v.map_labels(Labels::without_name)?))
    } else {
        Ok(Val::Vector(v))
    }
}

/// `on(...)` / `ignoring(...)`.
struct Matching {
    on: bool,
    labels: Vec<String>,
}

impl Matching {
    /// The match signature of a series as a label set.
    fn signature(&self, l: &Labels) -> Labels {
        if self.on {
            l.keep_only(&self.labels)
        } else {
            let mut out = l.drop_names(&self.labels);
            out.remove(METRIC_NAME);
            out
        }
    }
}

/// Interns the signatures of both sides into one index space.
fn signatures(
    m: &Matching,
    l: &StepVectors,
    r: &StepVectors,
) -> (Vec<u32>, Vec<u32>, usize, Vec<Labels>) {
    let mut table = LabelsTable::default();
    let ls = l
        .labels
        .iter()
        .map(|x| table.intern(m.signature(x)).0)
        .collect();
    let rs = r
        .labels
        .iter()
        .map(|x| table.intern(m.signature(x)).0)
        .collect();
    let n = table.len();
    (ls, rs, n, table.into_labels())
}

fn set_op(op: Op, l: StepVectors, r: StepVectors, m: &Matching) -> Result<Val> {
    let (lsig, rsig, nsig, _) = signatures(m, &l, &r);
    // Output series table: left series first, then right series.
    let offset = l.labels.len() as u32;
    let mut stamp = vec![usize::MAX; nsig];
    let mut steps = Vec::with_capacity(l.steps.len());
    for (i, (ls, rs)) in l.steps.iter().zip(&r.steps).enumerate() {
        let mut out = Vec::new();
        match op {
            Op::And | Op::Unless => {
                if op == Op::And && (ls.is_empty() || rs.is_empty()) {
                    steps.push(out);
                    continue;
                }
                for &(idx, _) in rs {
                    if let Some(s) = rsig
                        .get(idx as usize)
                        .and_then(|&g| stamp.get_mut(g as usize))
                    {
                        *s = i;
                    }
                }
                for &(idx, v) in ls {
                    let present =
                        lsig.get(idx as usize).and_then(|&g| stamp.get(g as usize)) == Some(&i);
                    if present == (op == Op::And) {
                        out.push((idx, v));
                    }
                }
            }
            _ => {
                for &(idx, v) in ls {
                    if let Some(s) = lsig
                        .get(idx as usize)
                        .and_then(|&g| stamp.get_mut(g as usize))
                    {
                        *s = i;
                    }
                    out.push((idx, v));
                }
                for &(idx, v) in rs {
                    let present =
                        rsig.get(idx as usize).and_then(|&g| stamp.get(g as usize)) == Some(&i);
                    if !present {
                        out.push((idx + offset, v));
                    }
                }
            }
        }
        steps.push(out);
    }
    let mut labels = l.labels;
    labels.extend(r.labels);
    // Equal label sets from the two sides must become one series (they can meet in `or`).
    let merged = StepVectors { labels, steps };
    Ok(Val::Vector(merged.map_labels(Labels::clone)?))
}

fn vector_vector(
    op: Op,
    l: StepVectors,
    r: StepVectors,
    m: &Matching,
    card: &VectorMatchCardinality,
    return_bool: bool,
) -> Result<Val> {
    let (lsig, rsig, nsig, sig_labels) = signatures(m, &l, &r);
    let one_to_many = matches!(card, VectorMatchCardinality::OneToMany(_));
    let include: Vec<String> = match card {
        VectorMatchCardinality::ManyToOne(ls) | VectorMatchCardinality::OneToMany(ls) => {
            ls.labels.clone()
        }
        _ => Vec::new(),
    };
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    // For one-to-many, swap sides so the right side is always the "one" side.
    let (many, one, many_sig, one_sig) = if one_to_many {
        (&r, &l, &rsig, &lsig)
    } else {
        (&l, &r, &lsig, &rsig)
    };

    let mut out_table = LabelsTable::default();
    let mut pair_out: HashMap<(u32, u32), u32> = HashMap::new();
    let mut one_at: Vec<(usize, u32, f64)> = vec![(usize::MAX, 0, 0.0); nsig];
    let mut matched: Vec<usize> = vec![usize::MAX; nsig];
    let mut inserted: HashSet<(u32, u32)> = HashSet::new();
    let mut steps = Vec::with_capacity(l.steps.len());
    let num_steps = l.steps.len().min(r.steps.len());
    for i in 0..num_steps {
        let many_step: &[(u32, f64)] = many.steps.get(i).map(Vec::as_slice).unwrap_or(&[]);
        let one_step: &[(u32, f64)] = one.steps.get(i).map(Vec::as_slice).unwrap_or(&[]);
        for &(idx, v) in one_step {
            let g = one_sig.get(idx as usize).copied().unwrap_or(0) as usize;
            let Some(slot) = one_at.get_mut(g) else {
                continue;
            };
            if slot.0 == i {
                let side = if one_to_many { "left" } else { "right" };
                let prev = one.series_labels(slot.1);
                let cur = one.series_labels(idx);
                let group = sig_labels.get(g).cloned().unwrap_or_default();
                return Err(Error::exec(format!(
                    "found duplicate series for the match group {group} on the {side} hand-side of the operation: [{cur}, {prev}];many-to-many matching not allowed: matching labels must be unique on one side"
                )));
            }
            *slot = (i, idx, v);
        }
        inserted.clear();
        let mut out = Vec::new();
        for &(idx, v) in many_step {
            let g = many_sig.get(idx as usize).copied().unwrap_or(0) as usize;
            let Some(&(stamp, one_idx, one_v)) = one_at.get(g) else {
                continue;
            };
            if stamp != i {
                continue;
            }
            let (vl, vr) = if one_to_many { (one_v, v) } else { (v, one_v) };
            let (mut value, keep) = elem_op(op, vl, vr);
            if return_bool {
                value = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                continue;
            }
            let out_idx = match pair_out.get(&(idx, one_idx)) {
                Some(&o) => o,
                None => {
                    let labels = result_labels(
                        op,
                        many.series_labels(idx),
                        one.series_labels(one_idx),
                        m,
                        one_to_one,
                        &include,
                        return_bool,
                    );
                    let (o, _) = out_table.intern(labels);
                    pair_out.insert((idx, one_idx), o);
                    o
                }
            };
            if one_to_one {
                if let Some(s) = matched.get_mut(g) {
                    if *s == i {
                        return Err(Error::exec(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                        ));
                    }
                    *s = i;
                }
            } else if !inserted.insert((g as u32, out_idx)) {
                return Err(Error::exec(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                ));
            }
            out.push((out_idx, value));
        }
        steps.push(out);
    }
    let result = StepVectors {
        labels: out_table.into_labels(),
        steps,
    };
    result.check_duplicates()?;
    Ok(Val::Vector(result))
}

/// Prometheus's `resultMetric`: labels of an output element from its "many" and "one" inputs.
fn result_labels(
    op: Op,
    many: &Labels,
    one: &Labels,
    m: &Matching,
    one_to_one: bool,
    include: &[String],
    return_bool: bool,
) -> Labels {
    let mut out = many.clone();
    if op.drops_name() || return_bool {
        out.remove(METRIC_NAME);
    }
    if one_to_one {
        out = if m.on {
            out.keep_only(&m.labels)
        } else {
            out.drop_names(&m.labels)
        };
    }
    for name in include {
        match one.get(name) {
            Some(v) if !v.is_empty() => out.set(name, v),
            _ => out.remove(name),
        }
    }
    out
}
