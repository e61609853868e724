//! Postings lists (sorted series references) and the matcher lookup that turns label matchers
//! into the set of matching series, with Prometheus 2.42 `PostingsForMatchers` semantics:
//!
//! - a matcher that matches `""` also selects series *without* the label, so it is evaluated as
//!   "all series minus those whose value does not match" via the all-postings list;
//! - `l!="v"` / `l!~"re"` on a label that another matcher requires to be set are subtracted;
//! - regexes that are alternations of literals (`a|b|c`) look up those values directly, and a
//!   literal prefix narrows the scan over sorted label values.

use super::SeriesRef;
use super::reader::IndexReader;
use crate::Result;
use crate::labels::{MatchType, Matcher};

/// A sorted, deduplicated list of series references.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Postings(Vec<SeriesRef>);

impl Postings {
    /// From references already sorted and unique.
    pub fn from_sorted(refs: Vec<SeriesRef>) -> Self {
        debug_assert!(refs.windows(2).all(|w| w[0] < w[1]));
        Postings(refs)
    }

    /// From references in any order.
    pub fn from_unsorted(mut refs: Vec<SeriesRef>) -> Self {
        refs.sort_unstable();
        refs.dedup();
        Postings(refs)
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no series.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The references.
    pub fn as_slice(&self) -> &[SeriesRef] {
        &self.0
    }

    /// Iterate the references.
    pub fn iter(&self) -> std::iter::Copied<std::slice::Iter<'_, SeriesRef>> {
        self.0.iter().copied()
    }

    /// Consume into the vector.
    pub fn into_vec(self) -> Vec<SeriesRef> {
        self.0
    }

    /// Union of many lists.
    pub fn union(mut lists: Vec<Postings>) -> Postings {
        match lists.len() {
            0 => Postings::default(),
            1 => lists.pop().unwrap_or_default(),
            2 => {
                let b = lists.pop().unwrap_or_default();
                let a = lists.pop().unwrap_or_default();
                a.merge(&b)
            }
            _ => {
                let total = lists.iter().map(Postings::len).sum();
                let mut all = Vec::with_capacity(total);
                for list in lists {
                    all.extend(list.0);
                }
                Postings::from_unsorted(all)
            }
        }
    }

    fn merge(&self, other: &Postings) -> Postings {
        let (a, b) = (&self.0, &other.0);
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => {
                    out.push(a[i]);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(b[j]);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push(a[i]);
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        Postings(out)
    }

    /// Series in both lists.
    pub fn intersect(&self, other: &Postings) -> Postings {
        let (small, large) = if self.len() <= other.len() {
            (&self.0, &other.0)
        } else {
            (&other.0, &self.0)
        };
        let mut out = Vec::with_capacity(small.len());
        // Galloping through the larger list keeps a small ∩ huge intersection cheap.
        let mut rest: &[SeriesRef] = large;
        for &value in small {
            let skip = rest.partition_point(|&x| x < value);
            rest = &rest[skip..];
            match rest.first() {
                Some(&x) if x == value => {
                    out.push(value);
                    rest = &rest[1..];
                }
                Some(_) => {}
                None => break,
            }
        }
        Postings(out)
    }

    /// Series in `self` but not in `other`.
    pub fn without(&self, other: &Postings) -> Postings {
        let mut out = Vec::with_capacity(self.len());
        let mut j = 0;
        for &value in &self.0 {
            while j < other.0.len() && other.0[j] < value {
                j += 1;
            }
            if other.0.get(j) != Some(&value) {
                out.push(value);
            }
        }
        Postings(out)
    }
}

/// Postings of the series whose value of `m.name` is present and satisfies `m`.
fn postings_for_matcher(index: &IndexReader, m: &Matcher) -> Result<Postings> {
    match m.kind {
        MatchType::Equal => return index.postings(&m.name, &m.value),
        MatchType::Regex => {
            if let Some(values) = m.set_matches() {
                let mut lists = Vec::with_capacity(values.len());
                for value in &values {
                    lists.push(index.postings(&m.name, value)?);
                }
                return Ok(Postings::union(lists));
            }
        }
        MatchType::NotEqual | MatchType::NotRegex => {}
    }
    let prefix = m.literal_prefix();
    index.postings_for_values(&m.name, prefix.as_deref(), |value| m.matches(value))
}

/// Postings of the series that have label `m.name` with a value that does *not* satisfy `m`.
fn inverse_postings_for_matcher(index: &IndexReader, m: &Matcher) -> Result<Postings> {
    match m.kind {
        // The inverse of `l!="v"` is exactly `l="v"`.
        MatchType::NotEqual => index.postings(&m.name, &m.value),
        MatchType::NotRegex if m.set_matches().is_some() => {
            postings_for_matcher(index, &m.inverse())
        }
        _ => index.postings_for_values(&m.name, None, |value| !m.matches(value)),
    }
}

/// Series matching every matcher (a missing label counts as `""`). No matchers: no series.
pub fn postings_for_matchers(index: &IndexReader, matchers: &[Matcher]) -> Result<Postings> {
    if matchers.is_empty() {
        return Ok(Postings::default());
    }
    let label_must_be_set = |name: &str| matchers.iter().any(|m| m.name == name && !m.matches(""));
    let mut intersect: Vec<Postings> = Vec::new();
    let mut subtract: Vec<Postings> = Vec::new();
    for m in matchers {
        let matches_empty = m.matches("");
        if label_must_be_set(&m.name) {
            let negative = m.kind.is_negative();
            if negative && matches_empty {
                // `l!="foo"` where l must be set: subtract `l="foo"`.
                subtract.push(postings_for_matcher(index, &m.inverse())?);
            } else if negative {
                // `l!=""`-like: the values that do not match the inverse.
                let list = inverse_postings_for_matcher(index, &m.inverse())?;
                if list.is_empty() {
                    return Ok(Postings::default());
                }
                intersect.push(list);
            } else {
                let list = postings_for_matcher(index, m)?;
                if list.is_empty() {
                    return Ok(Postings::default());
                }
                intersect.push(list);
            }
        } else {
            // Matches "" (so also series without the label): remove the values that do not match.
            subtract.push(inverse_postings_for_matcher(index, m)?);
        }
    }
    if intersect.is_empty() {
        intersect.push(index.all_postings()?);
    }
    intersect.sort_by_key(Postings::len);
    let mut iter = intersect.into_iter();
    let mut result = iter.next().unwrap_or_default();
    for list in iter {
        if result.is_empty() {
            break;
        }
        result = result.intersect(&list);
    }
    for list in &subtract {
        result = result.without(list);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(refs: &[u32]) -> Postings {
        Postings::from_sorted(refs.to_vec())
    }

    #[test]
    fn set_operations() {
        assert_eq!(p(&[1, 3, 5, 7]).intersect(&p(&[3, 4, 5, 100])), p(&[3, 5]));
        assert_eq!(p(&[1, 3, 5, 7]).without(&p(&[3, 4, 5, 100])), p(&[1, 7]));
        assert_eq!(
            Postings::union(vec![p(&[1, 5]), p(&[2, 5]), p(&[9])]),
            p(&[1, 2, 5, 9])
        );
        assert_eq!(Postings::union(vec![p(&[1, 5]), p(&[2, 5])]), p(&[1, 2, 5]));
        assert!(Postings::union(vec![]).is_empty());
    }
}
