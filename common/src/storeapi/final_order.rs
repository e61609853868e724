//! Streaming series in their final order while buffering only the ones whose order can change.
//!
//! A StoreAPI server reads series sorted by their source labels (a block index, Prometheus's
//! remote read) and must send them sorted by their final labels: external labels added (the
//! external value wins on a name clash) and `without_replica_labels` removed
//! ([`super::external::finalize_labels`]). Both changes can reorder series; the common one is
//! an external label inserted where one series ends and another goes on (`{a="1"}` and
//! `{a="1", b="1"}` with the external `c="x"`: `{a="1", c="x"}` now sorts after
//! `{a="1", b="1", c="x"}`). Buffering everything and re-sorting is correct but makes memory
//! grow with the answer.
//!
//! [`Resorter`] keeps a series only until no later series can sort before it. Take the series
//! `L` just read (source labels) and a later one `L' > L` that first differs from it at
//! position `k` (`L'[k] > L[k]`, or `L` ends at `k`). Labels below `L[k]`'s name come from the
//! shared prefix and the external labels, so `final(L')` starts with `T_k`, the part of
//! `final(L)` below that name. Past `T_k`, `final(L')` goes on with a label greater than `L[k]`
//! unless (a) `L[k]`'s name is an external or replica name (its value can be replaced or the
//! label dropped), or (b) nothing can follow: no external name sorts after `L[k]`'s name while
//! some replica name does (every later label of `L'` could be a dropped replica label), or (c)
//! `k` is the end of `L`. Let `j` be the first position where (a) or (b) holds, or the end of
//! `L`; then `final(L') >= T_j` for every later series, where `T_j` is `final(L)` cut before
//! `L[j]`'s name (at the end: after `L`'s last name), and every buffered series whose final
//! labels sort strictly before `T_j` can be sent. The source order must hold for this; labels
//! below the first external or replica name are untouched by both Prometheus's and our label
//! merging, so it also holds for remote read answers that already carry the external labels
//! (their first external name becomes `j`: a shorter bound, still sound).
//!
//! With the Prometheus Operator's external labels (`prometheus`, `prometheus_replica`) `T`
//! covers nearly every label, and nothing waits longer than one series; with a `cluster`
//! external label the series of one metric name can wait for each other.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use strata_tsdb::labels::{Label, Labels};

/// What a [`Resorter`] orders series by: their final [`Labels`], or an encoding of them that
/// sorts the same way and whose whole-label prefixes compare as the labels' prefixes do.
pub trait ResortKey: Ord {
    /// Whether `self` sorts strictly before the first `prefix` units of `bound` (units of
    /// whole labels: a label count for [`Labels`], a byte length for an encoding).
    fn before_prefix(&self, bound: &Self, prefix: usize) -> bool;
}

impl ResortKey for Labels {
    fn before_prefix(&self, bound: &Self, prefix: usize) -> bool {
        bound
            .as_slice()
            .get(..prefix)
            .is_some_and(|bound| self.as_slice() < bound)
    }
}

/// Re-sorts a stream of series read in source-label order into final-label order, emitting
/// each series as soon as no later one can precede it. Series with equal final labels come out
/// in the order they went in. Series are ordered by `K`: their final labels, or a key that sorts
/// as they do ([`ResortKey`]; the caller then builds keys and bounds itself, with
/// [`Resorter::can_move_later`] deciding as [`Resorter::finalize`] does).
#[derive(Debug)]
pub struct Resorter<T, K = Labels> {
    /// Names whose presence in the source labels can move a series: external and replica
    /// label names, sorted.
    moving_names: Vec<String>,
    /// The greatest external label name that is not also removed, if any.
    last_external: Option<String>,
    /// The greatest replica label name, if any.
    last_replica: Option<String>,
    /// The external labels and removed names the final labels are made with.
    external: Labels,
    without_replica: Vec<String>,
    heap: BinaryHeap<Reverse<Pending<K, T>>>,
    /// The last series pushed, kept out of the heap: it sets the bound.
    current: Option<Pending<K, T>>,
    /// How much of `current`'s final labels forms the bound `T` ([`ResortKey`] units).
    bound_len: usize,
    sequence: u64,
}

/// A series' final labels and its bound, from [`Resorter::finalize`].
#[derive(Debug)]
pub struct Finalized<K = Labels> {
    pub labels: K,
    bound_len: usize,
}

impl<K> Finalized<K> {
    /// Final labels (as a key) and the length of their bound `T_j` in [`ResortKey`] units.
    pub fn new(labels: K, bound_len: usize) -> Self {
        Finalized { labels, bound_len }
    }

    /// The length of the bound in [`ResortKey`] units.
    pub fn bound_len(&self) -> usize {
        self.bound_len
    }
}

#[derive(Debug)]
struct Pending<K, T> {
    labels: K,
    sequence: u64,
    item: T,
}

impl<K: Ord, T> PartialEq for Pending<K, T> {
    fn eq(&self, other: &Self) -> bool {
        self.labels == other.labels && self.sequence == other.sequence
    }
}

impl<K: Ord, T> Eq for Pending<K, T> {}

impl<K: Ord, T> PartialOrd for Pending<K, T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord, T> Ord for Pending<K, T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.labels
            .cmp(&other.labels)
            .then(self.sequence.cmp(&other.sequence))
    }
}

impl<T, K: ResortKey> Resorter<T, K> {
    /// A re-sorter for series finalized with `external` labels and without `without_replica`.
    pub fn new(external: &Labels, without_replica: &[String]) -> Self {
        let mut moving_names: Vec<String> = external
            .iter()
            .map(|label| label.name.clone())
            .chain(without_replica.iter().cloned())
            .collect();
        moving_names.sort();
        moving_names.dedup();
        Resorter {
            moving_names,
            last_external: external
                .iter()
                .map(|label| &label.name)
                .filter(|name| !without_replica.contains(name))
                .max()
                .cloned(),
            last_replica: without_replica.iter().max().cloned(),
            external: external.clone(),
            without_replica: without_replica.to_vec(),
            heap: BinaryHeap::new(),
            current: None,
            bound_len: 0,
            sequence: 0,
        }
    }

    /// Whether the transformation can reorder anything at all: without external and replica
    /// names, final order is source order.
    pub fn is_identity(&self) -> bool {
        self.moving_names.is_empty()
    }

    /// Adds the next series in source order as [`Resorter::finalize`] made it.
    pub fn push_finalized(&mut self, finalized: Finalized<K>, item: T) {
        if let Some(previous) = self.current.take() {
            self.heap.push(Reverse(previous));
        }
        self.bound_len = finalized.bound_len;
        self.current = Some(Pending {
            labels: finalized.labels,
            sequence: self.sequence,
            item,
        });
        self.sequence += 1;
    }

    /// The next series that no later series can precede, if any.
    pub fn pop_ready(&mut self) -> Option<(K, T)> {
        let current = self.current.as_ref()?;
        let Reverse(first) = self.heap.peek()?;
        if first.labels.before_prefix(&current.labels, self.bound_len) {
            let Reverse(first) = self.heap.pop()?;
            return Some((first.labels, first.item));
        }
        None
    }

    /// After the last push: the remaining series in final order, one per call.
    pub fn pop_finished(&mut self) -> Option<(K, T)> {
        if let Some(current) = self.current.take() {
            self.heap.push(Reverse(current));
        }
        self.heap
            .pop()
            .map(|Reverse(pending)| (pending.labels, pending.item))
    }

    /// Series held back so far.
    pub fn buffered(&self) -> usize {
        self.heap.len() + usize::from(self.current.is_some())
    }

    /// The external labels final labels are made with.
    pub fn external(&self) -> &Labels {
        &self.external
    }

    /// Whether final labels drop a source label named `name` (a replica label).
    pub fn drops(&self, name: &str) -> bool {
        self.without_replica.iter().any(|other| other == name)
    }

    /// Whether a later series can sort before the current one from a source label named
    /// `name` on: (a) or (b) of the module comment.
    pub fn can_move_later(&self, name: &str) -> bool {
        let moving = self
            .moving_names
            .binary_search_by(|other| other.as_str().cmp(name))
            .is_ok();
        let external_follows = self
            .last_external
            .as_deref()
            .is_some_and(|last| last > name);
        let replica_follows = self.last_replica.as_deref().is_some_and(|last| last > name);
        moving || (!external_follows && replica_follows)
    }
}

impl<T> Resorter<T, Labels> {
    /// Adds the next series in source order: `source` its labels as read, `labels` its final
    /// labels. Call [`Resorter::pop_ready`] afterwards to take what can be sent.
    pub fn push(&mut self, source: &Labels, labels: Labels, item: T) {
        if let Some(previous) = self.current.take() {
            self.heap.push(Reverse(previous));
        }
        self.bound_len = self.bound_len_for(source, &labels);
        self.current = Some(Pending {
            labels,
            sequence: self.sequence,
            item,
        });
        self.sequence += 1;
    }

    /// The final labels of `source` ([`finalize_labels`] with this re-sorter's external labels
    /// and removed names), made by moving the source's own labels rather than copying them,
    /// with the bound [`Resorter::push_finalized`] needs.
    ///
    /// [`finalize_labels`]: super::external::finalize_labels
    pub fn finalize(&self, source: Labels) -> Finalized {
        let source = source.into_vec();
        // The bound is every final label below the first source label that can move (or, if
        // none can, up to the source's last name): own labels before that position, external
        // labels whose name sorts below it. Decided up front, so the labels can be moved.
        let stop = source
            .iter()
            .position(|label| self.can_move_later(&label.name));
        let external_below: Vec<bool> = self
            .external
            .iter()
            .map(|label| match stop.and_then(|at| source.get(at)) {
                Some(stop) => label.name < stop.name,
                None => source.last().is_some_and(|last| label.name <= last.name),
            })
            .collect();
        let own_below = |index: usize| stop.is_none_or(|stop| index < stop);
        let keep = |name: &str| !self.without_replica.iter().any(|other| other == name);
        let mut merged = Vec::with_capacity(source.len() + self.external.len());
        let mut bound_len = 0;
        let mut below = true;
        let mut push = |label: Label, is_below: bool, merged: &mut Vec<Label>| {
            if keep(&label.name) {
                below &= is_below;
                bound_len += usize::from(below);
                merged.push(label);
            }
        };
        let mut own = source.into_iter().enumerate().peekable();
        let mut ext = self.external.iter().zip(external_below).peekable();
        loop {
            let take_own = match (own.peek(), ext.peek()) {
                (None, None) => break,
                (Some(_), None) => Some(true),
                (None, Some(_)) => Some(false),
                (Some((_, a)), Some((b, _))) => match a.name.cmp(&b.name) {
                    std::cmp::Ordering::Less => Some(true),
                    std::cmp::Ordering::Greater => Some(false),
                    // The external value wins; the series' own label of that name is dropped.
                    std::cmp::Ordering::Equal => None,
                },
            };
            match take_own {
                Some(true) => {
                    if let Some((index, label)) = own.next() {
                        push(label, own_below(index), &mut merged);
                    }
                }
                Some(false) => {
                    if let Some((label, is_below)) = ext.next() {
                        push(label.clone(), is_below, &mut merged);
                    }
                }
                None => {
                    own.next();
                    if let Some((label, is_below)) = ext.next() {
                        push(label.clone(), is_below, &mut merged);
                    }
                }
            }
        }
        Finalized {
            labels: Labels::from_sorted(merged),
            bound_len,
        }
    }

    /// The length of the prefix `T_j` of `labels` (final) below which no later series can sort.
    fn bound_len_for(&self, source: &Labels, labels: &Labels) -> usize {
        let stop = source.iter().find(|label| self.can_move_later(&label.name));
        let below = |label: &Label| match stop {
            Some(stop) => label.name < stop.name,
            None => source
                .as_slice()
                .last()
                .is_some_and(|last| label.name <= last.name),
        };
        labels.iter().take_while(|label| below(label)).count()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::storeapi::external::finalize_labels;

    fn run(source: &[Labels], external: &Labels, without: &[String]) -> (Vec<Labels>, usize) {
        let mut resorter = Resorter::new(external, without);
        let mut out = Vec::new();
        let mut most_buffered = 0;
        for (index, labels) in source.iter().enumerate() {
            resorter.push(labels, finalize_labels(labels, external, without), index);
            most_buffered = most_buffered.max(resorter.buffered());
            while let Some((labels, _)) = resorter.pop_ready() {
                out.push(labels);
            }
        }
        while let Some((labels, _)) = resorter.pop_finished() {
            out.push(labels);
        }
        (out, most_buffered)
    }

    fn sorted_final(source: &[Labels], external: &Labels, without: &[String]) -> Vec<Labels> {
        let mut all: Vec<Labels> = source
            .iter()
            .map(|labels| finalize_labels(labels, external, without))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn an_inserted_external_label_moves_a_shorter_series_behind_a_longer_one() {
        let source = vec![
            Labels::from_pairs([("a", "1")]),
            Labels::from_pairs([("a", "1"), ("b", "1")]),
            Labels::from_pairs([("a", "2")]),
        ];
        let external = Labels::from_pairs([("c", "x")]);
        let (out, _) = run(&source, &external, &[]);
        assert_eq!(out, sorted_final(&source, &external, &[]));
        assert_eq!(
            out.first().map(ToString::to_string).as_deref(),
            Some(r#"{a="1", b="1", c="x"}"#)
        );
    }

    #[test]
    fn regular_series_are_not_held_back() {
        // Same label names everywhere and external labels after them: nothing reorders, so
        // nothing waits longer than the one series that sets the bound.
        let source: Vec<Labels> = (0..1000)
            .map(|i| {
                Labels::from_pairs([
                    ("__name__", format!("metric_{}", i / 100)),
                    ("instance", format!("host-{:04}", i % 100)),
                    ("job", "node".to_owned()),
                ])
            })
            .collect();
        let external = Labels::from_pairs([("prometheus", "ns/k8s"), ("replica", "0")]);
        let without = vec!["replica".to_owned()];
        let (out, most_buffered) = run(&source, &external, &without);
        assert_eq!(out, sorted_final(&source, &external, &without));
        assert!(most_buffered <= 2, "buffered {most_buffered}");
    }

    #[test]
    fn a_clash_with_an_external_label_is_resorted() {
        let source = vec![
            Labels::from_pairs([("__name__", "up"), ("cluster", "a"), ("x", "2")]),
            Labels::from_pairs([("__name__", "up"), ("cluster", "b"), ("x", "1")]),
        ];
        let external = Labels::from_pairs([("cluster", "eu")]);
        let (out, _) = run(&source, &external, &[]);
        assert_eq!(out, sorted_final(&source, &external, &[]));
    }

    fn arbitrary_labels() -> impl Strategy<Value = Labels> {
        proptest::collection::btree_map(
            prop::sample::select(vec!["__name__", "a", "b", "c", "d", "e", "r"]),
            prop::sample::select(vec!["", "0", "1", "2"]),
            0..6,
        )
        .prop_map(|map| Labels::from_pairs(map.into_iter().filter(|(_, value)| !value.is_empty())))
    }

    proptest! {
        #[test]
        fn output_is_the_sorted_final_labels(
            mut source in proptest::collection::vec(arbitrary_labels(), 0..40),
            external in proptest::collection::btree_map(
                prop::sample::select(vec!["b", "c", "e", "z"]),
                prop::sample::select(vec!["0", "1", "x"]),
                0..3,
            ),
            strip_r in any::<bool>(),
            strip_c in any::<bool>(),
        ) {
            source.sort();
            source.dedup();
            let external = Labels::from_pairs(external);
            let mut without = Vec::new();
            if strip_r { without.push("r".to_owned()); }
            if strip_c { without.push("c".to_owned()); }
            let (out, _) = run(&source, &external, &without);
            prop_assert_eq!(out, sorted_final(&source, &external, &without));
            // The moving path makes the same labels and bounds as the copying one.
            let resorter: Resorter<()> = Resorter::new(&external, &without);
            for labels in &source {
                let copied = finalize_labels(labels, &external, &without);
                let bound = resorter.bound_len_for(labels, &copied);
                let moved = resorter.finalize(labels.clone());
                prop_assert_eq!(&moved.labels, &copied);
                prop_assert_eq!(moved.bound_len, bound);
            }
        }
    }
}
