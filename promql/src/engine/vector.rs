//! `StepVectors`: the engine's representation of an instant vector evaluated at every step of a
//! query range. Label sets live once in a series table; each step holds `(series index, value)`
//! pairs in output order. Label work (signatures, grouping keys, name dropping) is therefore done
//! once per series instead of once per step, and per-step operators only move numbers.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::labels::Labels;

/// Instant vectors at each step of a range, sharing one series table.
#[derive(Debug, Default, Clone)]
pub(crate) struct StepVectors {
    pub labels: Vec<Labels>,
    pub steps: Vec<Vec<(u32, f64)>>,
}

impl StepVectors {
    /// An empty result over `num_steps` steps.
    pub fn empty(num_steps: usize) -> Self {
        StepVectors {
            labels: Vec::new(),
            steps: vec![Vec::new(); num_steps],
        }
    }

    /// Total number of points held.
    pub fn num_points(&self) -> usize {
        self.steps.iter().map(Vec::len).sum()
    }

    /// Labels of series `idx`.
    pub fn series_labels(&self, idx: u32) -> &Labels {
        static EMPTY: Labels = Labels::empty_const();
        self.labels.get(idx as usize).unwrap_or(&EMPTY)
    }

    /// Applies a label transformation to every series, interning equal results, and checks that
    /// no step holds two elements with the same resulting label set.
    pub fn map_labels(self, f: impl FnMut(&Labels) -> Labels) -> Result<StepVectors> {
        let (labels, remap, merged) = intern_all(&self.labels, f);
        let steps: Vec<Vec<(u32, f64)>> = self
            .steps
            .into_iter()
            .map(|step| {
                step.into_iter()
                    .map(|(i, v)| (remap.get(i as usize).copied().unwrap_or(0), v))
                    .collect()
            })
            .collect();
        let out = StepVectors { labels, steps };
        if merged {
            out.check_duplicates()?;
        }
        Ok(out)
    }

    /// Fails with Prometheus's error when a step holds the same label set twice.
    pub fn check_duplicates(&self) -> Result<()> {
        let mut seen = vec![0u32; self.labels.len()];
        for (step_idx, step) in self.steps.iter().enumerate() {
            let stamp = step_idx as u32 + 1;
            for &(i, _) in step {
                if let Some(slot) = seen.get_mut(i as usize) {
                    if *slot == stamp {
                        return Err(duplicate_labelset());
                    }
                    *slot = stamp;
                }
            }
        }
        Ok(())
    }
}

/// Prometheus's error for two output elements with equal labels.
pub(crate) fn duplicate_labelset() -> Error {
    Error::exec("vector cannot contain metrics with the same labelset")
}

/// Maps each label set through `f` and interns the results; returns the new table, the index
/// mapping, and whether two inputs collapsed into one output.
fn intern_all(
    input: &[Labels],
    mut f: impl FnMut(&Labels) -> Labels,
) -> (Vec<Labels>, Vec<u32>, bool) {
    let mut table = LabelsTable::default();
    let mut merged = false;
    let remap = input
        .iter()
        .map(|l| {
            let (idx, fresh) = table.intern(f(l));
            merged |= !fresh;
            idx
        })
        .collect();
    (table.into_labels(), remap, merged)
}

/// Interns label sets into dense indexes.
#[derive(Default, Debug)]
pub(crate) struct LabelsTable {
    labels: Vec<Labels>,
    index: HashMap<Labels, u32>,
}

impl LabelsTable {
    /// The index of `labels`, adding it if new; the flag says whether it was new.
    pub fn intern(&mut self, labels: Labels) -> (u32, bool) {
        if let Some(&i) = self.index.get(&labels) {
            return (i, false);
        }
        let i = self.labels.len() as u32;
        self.labels.push(labels.clone());
        self.index.insert(labels, i);
        (i, true)
    }

    /// The label set at `idx` (empty if out of range).
    pub fn get(&self, idx: u32) -> &Labels {
        static EMPTY: Labels = Labels::empty_const();
        self.labels.get(idx as usize).unwrap_or(&EMPTY)
    }

    /// Number of distinct label sets.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// The table in index order.
    pub fn into_labels(self) -> Vec<Labels> {
        self.labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_labels_detects_collisions_per_step() {
        let a = Labels::from_pairs([("__name__", "a"), ("x", "1")]);
        let b = Labels::from_pairs([("__name__", "b"), ("x", "1")]);
        // Both present at step 0: collision.
        let v = StepVectors {
            labels: vec![a.clone(), b.clone()],
            steps: vec![vec![(0, 1.0), (1, 2.0)]],
        };
        assert!(v.map_labels(Labels::without_name).is_err());
        // Present at different steps: fine, and merged into one series.
        let v = StepVectors {
            labels: vec![a, b],
            steps: vec![vec![(0, 1.0)], vec![(1, 2.0)]],
        };
        let out = v.map_labels(Labels::without_name);
        assert!(matches!(out, Ok(ref o) if o.labels.len() == 1));
    }
}
