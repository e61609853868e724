//! `topk` / `bottomk` over a range function (`topk(5, rate(x[5m]))`) without materialising the
//! inner result: each inner output series is pushed into its group's per-step heaps as it is
//! produced, so memory holds at most k entries per group and step instead of every series at
//! every step. Series arrive in the inner result's order, which is the order the unfused
//! evaluation pushes them in at each step, so heaps, ties and output are the same.

use promql_parser::parser::{Call, Expr};

use super::aggregate::{Grouping, heap_fix, heap_less, heap_up, step_k};
use super::eval::{Evaluator, StepRange, Val};
use super::functions::{go_sort, unwrap_parens};
use super::vector::{LabelsTable, StepVectors};
use crate::error::Result;
use crate::labels::Labels;

/// One group's heaps, one per step, in a flat array: step `i` owns
/// `slots[i * stride .. i * stride + lens[i]]`. The stride grows (doubling, at most to the
/// largest k) as members join, so a small group never reserves k slots per step.
struct GroupHeaps {
    stride: usize,
    members: usize,
    lens: Vec<u32>,
    slots: Vec<(u32, f64)>,
}

impl GroupHeaps {
    fn new(steps: usize) -> Self {
        GroupHeaps {
            stride: 0,
            members: 0,
            lens: vec![0; steps],
            slots: Vec::new(),
        }
    }

    /// Makes room for one more member's entry at every step.
    fn add_member(&mut self, k_max: usize) {
        self.members += 1;
        let needed = self.members.min(k_max);
        if needed <= self.stride {
            return;
        }
        let stride = needed.max(self.stride * 2).min(k_max).max(needed);
        let steps = self.lens.len();
        let mut slots = vec![(0u32, 0.0f64); steps * stride];
        for (i, &len) in self.lens.iter().enumerate() {
            let len = len as usize;
            let (from, to) = (i * self.stride, i * stride);
            if let (Some(src), Some(dst)) = (
                self.slots.get(from..from + len),
                slots.get_mut(to..to + len),
            ) {
                dst.copy_from_slice(src);
            }
        }
        self.stride = stride;
        self.slots = slots;
    }

    /// Go's topk/bottomk step for one sample; returns whether the group was empty at `step`.
    fn push(&mut self, step: usize, k: usize, idx: u32, v: f64, top: bool) -> bool {
        let (Some(len), start) = (self.lens.get_mut(step), step * self.stride) else {
            return false;
        };
        let Some(heap) = self.slots.get_mut(start..start + self.stride) else {
            return false;
        };
        let n = *len as usize;
        let first = n == 0;
        if n < k {
            if let Some(slot) = heap.get_mut(n) {
                *slot = (idx, v);
                *len += 1;
                heap_up(&mut heap[..=n], n, top);
            }
        } else if let Some(&(_, root)) = heap.first() {
            let replace = if top {
                root < v || (root.is_nan() && !v.is_nan())
            } else {
                root > v || (root.is_nan() && !v.is_nan())
            };
            if replace {
                heap[0] = (idx, v);
                if k > 1 {
                    heap_fix(&mut heap[..n], 0, top);
                }
            }
        }
        first
    }

    /// The heap of `step`, sorted as Prometheus outputs it.
    fn sorted(&mut self, step: usize, top: bool) -> &[(u32, f64)] {
        let len = self.lens.get(step).copied().unwrap_or(0) as usize;
        let start = step * self.stride;
        let Some(heap) = self.slots.get_mut(start..start + len) else {
            return &[];
        };
        // sort.Sort(sort.Reverse(heap)): less(i, j) = heapLess(j, i).
        let less = |x: &(u32, f64), y: &(u32, f64)| heap_less(y.1, x.1, top);
        go_sort(heap, &less);
        heap
    }
}

/// Whether `topk`/`bottomk` of `input` can be evaluated by [`eval_fused_k`].
pub(crate) fn fusable(input: &Expr) -> Option<&Call> {
    match input {
        Expr::Call(call)
            if super::window::is_range_function(call.func.name)
                && call.func.name != "absent_over_time" =>
        {
            Some(call)
        }
        _ => None,
    }
}

/// `topk(k, f(x[r]))` / `bottomk(...)` with `params` the k of each step.
pub(crate) fn eval_fused_k(
    ev: &mut Evaluator<'_>,
    top: bool,
    grouping: &Grouping,
    call: &Call,
    params: &[f64],
    rng: StepRange,
) -> Result<Val> {
    let n = rng.len();
    // Out-of-range parameters fail after the inner evaluation, as in the unfused path.
    let ks: Vec<Option<usize>> = (0..n)
        .map(|i| step_k(params.get(i).copied().unwrap_or(f64::NAN)).ok())
        .collect();
    let k_max = ks.iter().flatten().copied().max().unwrap_or(0);
    let args: Vec<&Expr> = call.args.args.iter().map(|a| unwrap_parens(a)).collect();
    let mut groups = LabelsTable::default();
    let mut heaps: Vec<GroupHeaps> = Vec::new();
    let mut labels: Vec<Labels> = Vec::new();
    let mut series_group: Vec<u32> = Vec::new();
    let mut order: Vec<Vec<u32>> = vec![Vec::new(); n];
    super::window::stream_range_function(ev, call.func.name, &args, rng, &mut |idx, l, column| {
        if idx as usize >= labels.len() {
            labels.push(l.clone());
            let (g, fresh) = groups.intern(grouping.group_labels(l));
            if fresh {
                heaps.push(GroupHeaps::new(n));
            }
            if let Some(h) = heaps.get_mut(g as usize) {
                h.add_member(k_max);
            }
            series_group.push(g);
        }
        let g = series_group.get(idx as usize).copied().unwrap_or(0);
        let Some(h) = heaps.get_mut(g as usize) else {
            return Ok(());
        };
        for &(i, v) in column {
            let k = ks.get(i).copied().flatten().unwrap_or(0);
            if k > 0
                && h.push(i, k, idx, v, top)
                && let Some(o) = order.get_mut(i)
            {
                o.push(g);
            }
        }
        Ok(())
    })?;
    for &param in params.iter().take(n) {
        step_k(param)?;
    }
    let mut steps = Vec::with_capacity(n);
    for (i, groups_at_step) in order.into_iter().enumerate() {
        let mut out = Vec::new();
        for g in groups_at_step {
            if let Some(h) = heaps.get_mut(g as usize) {
                out.extend_from_slice(h.sorted(i, top));
            }
        }
        steps.push(out);
    }
    Ok(Val::Vector(StepVectors { labels, steps }))
}
