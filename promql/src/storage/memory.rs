//! An in-memory `Queryable`: series with float samples kept in vectors. It backs the promqltest
//! runner, unit tests and benchmarks. Unsorted selects return series in insertion order, as
//! Prometheus's head block does, which keeps tie orders in ordered test cases identical.

use std::collections::HashMap;

use crate::error::Result;
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::storage::{Querier, Queryable, SampleIterator, SelectHints, SeriesSet, StorageSeries};
use crate::value::Point;

/// Series held in memory.
#[derive(Default, Debug, Clone)]
pub struct MemoryStorage {
    series: Vec<(Labels, Vec<Point>)>,
    index: HashMap<Labels, usize>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a sample; samples of one series must come in increasing time order, and a sample
    /// at an existing timestamp replaces the old one.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) {
        let idx = match self.index.get(labels) {
            Some(&i) => i,
            None => {
                self.series.push((labels.clone(), Vec::new()));
                let i = self.series.len() - 1;
                self.index.insert(labels.clone(), i);
                i
            }
        };
        if let Some((_, points)) = self.series.get_mut(idx) {
            match points.last_mut() {
                Some(last) if last.t == t => last.v = v,
                Some(last) if last.t > t => {
                    let pos = points.partition_point(|p| p.t < t);
                    match points.get_mut(pos) {
                        Some(p) if p.t == t => p.v = v,
                        _ => points.insert(pos, Point { t, v }),
                    }
                }
                _ => points.push(Point { t, v }),
            }
        }
    }

    /// Drops all data.
    pub fn clear(&mut self) {
        self.series.clear();
        self.index.clear();
    }

    /// Number of series.
    pub fn num_series(&self) -> usize {
        self.series.len()
    }
}

impl Queryable for MemoryStorage {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>> {
        Ok(Box::new(MemoryQuerier {
            storage: self,
            mint,
            maxt,
        }))
    }
}

struct MemoryQuerier<'a> {
    storage: &'a MemoryStorage,
    mint: i64,
    maxt: i64,
}

impl Querier for MemoryQuerier<'_> {
    fn select(
        &self,
        sorted: bool,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Box<dyn SeriesSet + '_>> {
        let mut selected: Vec<usize> = self
            .storage
            .series
            .iter()
            .enumerate()
            .filter(|(_, (labels, _))| matchers.iter().all(|m| m.matches_labels(labels)))
            .map(|(i, _)| i)
            .collect();
        if sorted {
            selected.sort_by(|&a, &b| {
                let la = self.storage.series.get(a).map(|s| &s.0);
                let lb = self.storage.series.get(b).map(|s| &s.0);
                la.cmp(&lb)
            });
        }
        // Hints narrow the range the same way a block querier would.
        let (mint, maxt) = if hints.start != 0 || hints.end != 0 {
            (self.mint.max(hints.start), self.maxt.min(hints.end))
        } else {
            (self.mint, self.maxt)
        };
        Ok(Box::new(MemorySeriesSet {
            storage: self.storage,
            selected,
            pos: 0,
            mint,
            maxt,
        }))
    }
}

struct MemorySeriesSet<'a> {
    storage: &'a MemoryStorage,
    selected: Vec<usize>,
    pos: usize,
    mint: i64,
    maxt: i64,
}

impl SeriesSet for MemorySeriesSet<'_> {
    fn next_series(&mut self) -> Result<Option<StorageSeries<'_>>> {
        loop {
            let Some(&idx) = self.selected.get(self.pos) else {
                return Ok(None);
            };
            self.pos += 1;
            let Some((labels, points)) = self.storage.series.get(idx) else {
                continue;
            };
            let lo = points.partition_point(|p| p.t < self.mint);
            let hi = points.partition_point(|p| p.t <= self.maxt);
            let slice = points.get(lo..hi).unwrap_or(&[]);
            if slice.is_empty() {
                // Like a block querier, a series without samples in range is not returned.
                continue;
            }
            return Ok(Some(StorageSeries::new(
                labels.clone(),
                Box::new(SliceIterator {
                    points: slice,
                    pos: 0,
                }),
            )));
        }
    }
}

struct SliceIterator<'a> {
    points: &'a [Point],
    pos: usize,
}

impl SampleIterator for SliceIterator<'_> {
    fn next_sample(&mut self) -> Result<Option<Point>> {
        let p = self.points.get(self.pos).copied();
        if p.is_some() {
            self.pos += 1;
        }
        Ok(p)
    }

    fn seek(&mut self, ts: i64) -> Result<Option<Point>> {
        let rest = self.points.get(self.pos..).unwrap_or(&[]);
        self.pos += rest.partition_point(|p| p.t < ts);
        self.next_sample()
    }

    fn read_range(&mut self, mint: i64, maxt: i64, out: &mut Vec<Point>) -> Result<()> {
        let rest = self.points.get(self.pos..).unwrap_or(&[]);
        let lo = rest.partition_point(|p| p.t < mint);
        let hi = rest.partition_point(|p| p.t <= maxt).max(lo);
        out.extend_from_slice(rest.get(lo..hi).unwrap_or(&[]));
        self.pos += hi;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::MatchType;

    #[test]
    fn select_filters_by_matchers_and_range() -> Result<()> {
        let mut s = MemoryStorage::new();
        let a = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
        let b = Labels::from_pairs([("__name__", "x"), ("job", "b")]);
        for t in 0..10 {
            s.append(&a, t * 1000, t as f64);
        }
        s.append(&b, 50_000, 1.0);
        let q = s.querier(2000, 4000)?;
        let m = [Matcher::new(MatchType::Equal, "__name__", "x")?];
        let mut set = q.select(true, &SelectHints::default(), &m)?;
        let mut got = Vec::new();
        while let Some(mut series) = set.next_series()? {
            while let Some(p) = series.samples.next_sample()? {
                got.push((series.labels.get_or_empty("job").to_string(), p.t));
            }
        }
        assert_eq!(
            got,
            vec![
                ("a".to_string(), 2000),
                ("a".to_string(), 3000),
                ("a".to_string(), 4000)
            ]
        );
        Ok(())
    }
}
