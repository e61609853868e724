//! Merging the replicas of one series: Thanos's penalty deduplication and Prometheus's chained
//! merge (reference/thanos.md 4.4), written once for every caller.
//!
//! The querier runs it at query time over the chunks the stores sent for one series
//! (`dedup=true` across HA replicas); the compactor runs it when it merges overlapping blocks
//! (vertical compaction, `--deduplication.replica-label`). Sharing the implementation is what
//! makes a compacted block answer exactly what the querier answered over its sources.
//!
//! - [`SampleSource`]: a stream of `(t, v)` samples with seek; callers adapt their own
//!   iterators (decoded chunks, the PromQL engine's iterator) to it.
//! - [`overlap_split`]: chunks of a merged series assigned greedily to "virtual replicas"
//!   whose chunks do not overlap.
//! - [`PenaltyDedup`]: stick to one replica and switch only when it has a gap longer than about
//!   twice its scrape interval; in counter mode, a switch to a replica whose counter is lower
//!   adds the difference to that replica's later values so it does not look like a reset.
//! - [`ChainMerge`]: every sample of both replicas in time order, equal timestamps once.
//! - [`merge_replicas`]: folds any number of replicas pairwise with a [`DedupFunc`].

/// Penalty applied to the other replica after the first sample (no previous gap known).
pub const INITIAL_PENALTY_MS: i64 = 5000;

/// A time-ordered stream of float samples `(t, v)`.
pub trait SampleSource {
    /// What reading the stream can fail with.
    type Error;

    /// The next sample, or `None` at the end.
    fn next_sample(&mut self) -> Result<Option<(i64, f64)>, Self::Error>;

    /// Advances to the first sample with a timestamp at or after `t` and returns it. The
    /// default walks forward; chunked sources skip whole chunks.
    fn seek(&mut self, t: i64) -> Result<Option<(i64, f64)>, Self::Error> {
        while let Some(sample) = self.next_sample()? {
            if sample.0 >= t {
                return Ok(Some(sample));
            }
        }
        Ok(None)
    }
}

impl<S: SampleSource + ?Sized> SampleSource for Box<S> {
    type Error = S::Error;

    fn next_sample(&mut self) -> Result<Option<(i64, f64)>, Self::Error> {
        (**self).next_sample()
    }

    fn seek(&mut self, t: i64) -> Result<Option<(i64, f64)>, Self::Error> {
        (**self).seek(t)
    }
}

/// A boxed [`SampleSource`], the unit [`merge_replicas`] folds.
pub type BoxedSource<'a, E> = Box<dyn SampleSource<Error = E> + Send + 'a>;

/// The samples of a vector, in order (tests, and callers that decoded a series already).
#[derive(Debug, Clone, Default)]
pub struct VecSource<E> {
    samples: std::vec::IntoIter<(i64, f64)>,
    error: std::marker::PhantomData<fn() -> E>,
}

impl<E> VecSource<E> {
    /// A source yielding `samples` (which must be in time order).
    pub fn new(samples: Vec<(i64, f64)>) -> Self {
        VecSource {
            samples: samples.into_iter(),
            error: std::marker::PhantomData,
        }
    }
}

impl<E> SampleSource for VecSource<E> {
    type Error = E;

    fn next_sample(&mut self) -> Result<Option<(i64, f64)>, E> {
        Ok(self.samples.next())
    }
}

/// How the replicas of one series are merged (`--deduplication.func`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DedupFunc {
    /// Thanos's default: stick to one replica, switch on gaps ([`PenaltyDedup`]).
    #[default]
    Penalty,
    /// Prometheus's chained merge: every sample of every replica in time order, samples with
    /// equal timestamps collapsed into the first replica's ([`ChainMerge`]).
    Chain,
}

impl DedupFunc {
    /// The flag value: `chain` is the chained merge, anything else the penalty algorithm.
    pub fn from_flag(value: &str) -> Self {
        if value == "chain" {
            Self::Chain
        } else {
            Self::Penalty
        }
    }
}

/// Assigns time-ordered chunks greedily to virtual replicas: a chunk joins the first replica
/// whose last chunk ends before it starts, else it opens a new replica. `chunks` must be sorted
/// by `(min_time, max_time)` (callers break ties their own way); `range` gives a chunk's
/// inclusive `(min_time, max_time)`.
pub fn overlap_split<C>(
    chunks: impl IntoIterator<Item = C>,
    range: impl Fn(&C) -> (i64, i64),
) -> Vec<Vec<C>> {
    let mut replicas: Vec<Vec<C>> = Vec::new();
    for chunk in chunks {
        let (min_time, _) = range(&chunk);
        let target = replicas
            .iter_mut()
            .find(|replica| replica.last().is_some_and(|last| range(last).1 < min_time));
        match target {
            Some(replica) => replica.push(chunk),
            None => replicas.push(vec![chunk]),
        }
    }
    replicas
}

/// Folds `replicas` pairwise with `func`: `f(f(r1, r2), r3)...`. `counter` turns on the
/// penalty algorithm's counter adjustment (the query reads a counter: rate, increase, ...).
/// `None` when there is no replica.
pub fn merge_replicas<'a, E: 'a>(
    replicas: impl IntoIterator<Item = BoxedSource<'a, E>>,
    func: DedupFunc,
    counter: bool,
) -> Option<BoxedSource<'a, E>> {
    let mut replicas = replicas.into_iter();
    let first = replicas.next()?;
    Some(replicas.fold(first, |merged, next| match func {
        DedupFunc::Penalty => Box::new(PenaltyDedup::new(merged, next, counter)),
        DedupFunc::Chain => Box::new(ChainMerge::new(merged, next)),
    }))
}

/// Penalty-based deduplication of two replicas of one series.
pub struct PenaltyDedup<'a, E> {
    a: BoxedSource<'a, E>,
    b: BoxedSource<'a, E>,
    a_current: Option<(i64, f64)>,
    b_current: Option<(i64, f64)>,
    last_t: Option<i64>,
    penalty_a: i64,
    penalty_b: i64,
    /// Counter mode: offsets added to each replica's values, and where the last sample came
    /// from (true = a).
    counter: bool,
    offset_a: f64,
    offset_b: f64,
    last_value: Option<f64>,
    last_from_a: Option<bool>,
    started: bool,
}

impl<'a, E> PenaltyDedup<'a, E> {
    /// Deduplicates `a` and `b` (ties go to `a`); `counter` adjusts switches to a lower
    /// counter.
    pub fn new(a: BoxedSource<'a, E>, b: BoxedSource<'a, E>, counter: bool) -> Self {
        PenaltyDedup {
            a,
            b,
            a_current: None,
            b_current: None,
            last_t: None,
            penalty_a: 0,
            penalty_b: 0,
            counter,
            offset_a: 0.0,
            offset_b: 0.0,
            last_value: None,
            last_from_a: None,
            started: false,
        }
    }

    /// Advances `current` of one replica to its first sample at or after `target`.
    fn seek_replica(
        source: &mut BoxedSource<'a, E>,
        current: &mut Option<(i64, f64)>,
        target: i64,
    ) -> Result<(), E> {
        if let Some((t, _)) = *current
            && t < target
        {
            *current = source.seek(target)?;
        }
        Ok(())
    }

    fn emit(&mut self, from_a: bool, (t, v): (i64, f64)) -> (i64, f64) {
        let mut value = v;
        if self.counter {
            let offset = if from_a {
                &mut self.offset_a
            } else {
                &mut self.offset_b
            };
            value += *offset;
            if let (Some(last), Some(last_from_a)) = (self.last_value, self.last_from_a)
                && last_from_a != from_a
                && value < last
                && !v.is_nan()
            {
                *offset += last - value;
                value = last;
            }
        }
        self.last_value = Some(value);
        self.last_from_a = Some(from_a);
        self.last_t = Some(t);
        (t, value)
    }
}

impl<E> SampleSource for PenaltyDedup<'_, E> {
    type Error = E;

    fn next_sample(&mut self) -> Result<Option<(i64, f64)>, E> {
        if !self.started {
            self.started = true;
            self.a_current = self.a.next_sample()?;
            self.b_current = self.b.next_sample()?;
        } else if let Some(last_t) = self.last_t {
            let target_a = last_t.saturating_add(1).saturating_add(self.penalty_a);
            let target_b = last_t.saturating_add(1).saturating_add(self.penalty_b);
            Self::seek_replica(&mut self.a, &mut self.a_current, target_a)?;
            Self::seek_replica(&mut self.b, &mut self.b_current, target_b)?;
        }
        let gap_penalty = |last_t: Option<i64>, t: i64| match last_t {
            Some(last) => t.saturating_sub(last).saturating_mul(2),
            None => INITIAL_PENALTY_MS,
        };
        let pick_a = match (self.a_current, self.b_current) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                self.penalty_a = 0;
                true
            }
            (None, Some(_)) => {
                self.penalty_b = 0;
                false
            }
            (Some(a), Some(b)) => {
                if a.0 <= b.0 {
                    self.penalty_b = gap_penalty(self.last_t, a.0);
                    self.penalty_a = 0;
                    true
                } else {
                    self.penalty_a = gap_penalty(self.last_t, b.0);
                    self.penalty_b = 0;
                    false
                }
            }
        };
        let sample = if pick_a {
            self.a_current
        } else {
            self.b_current
        };
        Ok(sample.map(|sample| self.emit(pick_a, sample)))
    }
}

/// Sample-level merge of two replicas: the earlier sample first, equal timestamps once (the
/// first replica's value wins).
pub struct ChainMerge<'a, E> {
    a: BoxedSource<'a, E>,
    b: BoxedSource<'a, E>,
    a_current: Option<(i64, f64)>,
    b_current: Option<(i64, f64)>,
    started: bool,
}

impl<'a, E> ChainMerge<'a, E> {
    /// Merges `a` and `b`.
    pub fn new(a: BoxedSource<'a, E>, b: BoxedSource<'a, E>) -> Self {
        ChainMerge {
            a,
            b,
            a_current: None,
            b_current: None,
            started: false,
        }
    }
}

impl<E> SampleSource for ChainMerge<'_, E> {
    type Error = E;

    fn next_sample(&mut self) -> Result<Option<(i64, f64)>, E> {
        if !self.started {
            self.started = true;
            self.a_current = self.a.next_sample()?;
            self.b_current = self.b.next_sample()?;
        }
        match (self.a_current, self.b_current) {
            (None, None) => Ok(None),
            (Some(a), None) => {
                self.a_current = self.a.next_sample()?;
                Ok(Some(a))
            }
            (None, Some(b)) => {
                self.b_current = self.b.next_sample()?;
                Ok(Some(b))
            }
            (Some(a), Some(b)) => {
                if a.0 <= b.0 {
                    if a.0 == b.0 {
                        self.b_current = self.b.next_sample()?;
                    }
                    self.a_current = self.a.next_sample()?;
                    Ok(Some(a))
                } else {
                    self.b_current = self.b.next_sample()?;
                    Ok(Some(b))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Source = BoxedSource<'static, ()>;

    fn source(samples: Vec<(i64, f64)>) -> Source {
        Box::new(VecSource::new(samples))
    }

    fn collect(mut source: Source) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        while let Some(sample) = source.next_sample().expect("sample") {
            out.push(sample);
        }
        out
    }

    fn samples(from: i64, to: i64, step: i64, value: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
        (0..)
            .map(|i| from + i * step)
            .take_while(|t| *t <= to)
            .map(|t| (t, value(t)))
            .collect()
    }

    #[test]
    fn penalty_sticks_to_one_replica_and_fills_gaps() {
        // A misses 60s..120s; B is offset by 5s.
        let a: Vec<_> = samples(0, 180_000, 15_000, |_| 1.0)
            .into_iter()
            .filter(|(t, _)| !(60_000..=120_000).contains(t))
            .collect();
        let b = samples(5_000, 185_000, 15_000, |_| 2.0);
        let merged = merge_replicas([source(a), source(b)], DedupFunc::Penalty, false);
        let out = collect(merged.expect("merged"));
        assert_eq!(out.first(), Some(&(0, 1.0)));
        assert!(out.contains(&(45_000, 1.0)), "{out:?}");
        assert!(!out.contains(&(50_000, 2.0)), "{out:?}");
        assert!(out.contains(&(80_000, 2.0)), "{out:?}");
        assert!(!out.contains(&(150_000, 1.0)), "{out:?}");
        assert!(out.windows(2).all(|w| w[1].0 - w[0].0 >= 10_000), "{out:?}");
    }

    #[test]
    fn counter_mode_hides_the_switch_to_a_lower_replica() {
        let a = samples(0, 45_000, 15_000, |t| 100.0 + (t / 1_500) as f64);
        let b = samples(5_000, 120_000, 15_000, |t| 50.0 + (t / 1_500) as f64);
        let counter = collect(
            merge_replicas(
                [source(a.clone()), source(b.clone())],
                DedupFunc::Penalty,
                true,
            )
            .expect("merged"),
        );
        assert!(counter.windows(2).all(|w| w[1].1 >= w[0].1), "{counter:?}");
        let plain = collect(
            merge_replicas([source(a), source(b)], DedupFunc::Penalty, false).expect("merged"),
        );
        assert!(plain.windows(2).any(|w| w[1].1 < w[0].1), "{plain:?}");
    }

    #[test]
    fn chain_keeps_every_timestamp_once() {
        let a = samples(0, 60_000, 15_000, |_| 1.0);
        let b = samples(0, 65_000, 5_000, |_| 2.0);
        let out = collect(merge_replicas([source(a), source(b)], DedupFunc::Chain, false).unwrap());
        let timestamps: Vec<i64> = out.iter().map(|s| s.0).collect();
        assert_eq!(
            timestamps,
            samples(0, 65_000, 5_000, |_| 0.0)
                .iter()
                .map(|s| s.0)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            out[0],
            (0, 1.0),
            "equal timestamps keep the first replica's value"
        );
        assert_eq!(out[1], (5_000, 2.0));
    }

    #[test]
    fn overlap_split_assigns_greedily() {
        let chunks = vec![(0, 10), (5, 15), (11, 20), (16, 30), (21, 25)];
        let replicas = overlap_split(chunks, |c| *c);
        assert_eq!(
            replicas,
            vec![vec![(0, 10), (11, 20), (21, 25)], vec![(5, 15), (16, 30)]]
        );
        assert!(merge_replicas(Vec::<Source>::new(), DedupFunc::Penalty, false).is_none());
    }
}
