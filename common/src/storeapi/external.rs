//! The external-label rules every StoreAPI server follows (reference/thanos.md section 1.4), in
//! one place so the sidecar, the store gateway and the querier-as-store agree exactly:
//!
//! - [`matchers_for_store`]: matchers on external label names are evaluated against the store's
//!   external labels. A mismatch means the store has nothing for the request (not an error); a
//!   match drops the matcher before the underlying data is queried. If no matcher remains the
//!   request is rejected with "no matchers specified (excluding external labels)" (InvalidArgument).
//! - [`finalize_labels`]: a series' labels extended with the external labels (the external value
//!   wins on a name clash) and without the request's `without_replica_labels`.
//! - [`sort_by_labels`]: after stripping replica labels the stream order may change; series
//!   must be re-sorted by their final labels (Prometheus `labels.Compare`).
//! - [`label_names_with_external`] / [`label_values_with_external`]: the same rules for the
//!   LabelNames and LabelValues RPCs.

use std::cmp::Ordering;

use strata_tsdb::labels::{Label, Labels, Matcher};

use crate::error::{Error, Result};

/// The matchers left to evaluate against a store's own data, or `Ok(None)` when a matcher on an
/// external label rejects the store's external labels (the store has nothing to return).
///
/// A matcher whose name is an external label is checked against the external value and then
/// dropped. Matchers on other names are kept in their original order. When nothing is left the
/// request selects everything, which StoreAPI servers refuse with
/// [`Error::NoMatchersExcludingExternalLabels`] (gRPC InvalidArgument).
pub fn matchers_for_store(external: &Labels, matchers: &[Matcher]) -> Result<Option<Vec<Matcher>>> {
    let mut remaining = Vec::with_capacity(matchers.len());
    for matcher in matchers {
        match external.get(&matcher.name) {
            Some(value) if matcher.matches(value) => {}
            Some(_) => return Ok(None),
            None => remaining.push(matcher.clone()),
        }
    }
    if remaining.is_empty() {
        return Err(Error::NoMatchersExcludingExternalLabels);
    }
    Ok(Some(remaining))
}

/// Does a store with these external labels possibly hold data for `matchers`? The same test as
/// [`matchers_for_store`] without building the remaining matchers and without the empty check
/// (used by LabelNames/LabelValues, where no matcher at all is valid).
pub fn external_labels_match(external: &Labels, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .all(|matcher| match external.get(&matcher.name) {
            Some(value) => matcher.matches(value),
            None => true,
        })
}

/// The matchers that are not about external label names, in their original order.
pub fn matchers_without_external(external: &Labels, matchers: &[Matcher]) -> Vec<Matcher> {
    matchers
        .iter()
        .filter(|matcher| external.get(&matcher.name).is_none())
        .cloned()
        .collect()
}

/// `series` extended with `external` (the external value wins on a name clash), then without
/// the names in `without_replica`. Both inputs are sorted by name, so this is a merge.
pub fn finalize_labels(series: &Labels, external: &Labels, without_replica: &[String]) -> Labels {
    let keep = |label: &Label| !without_replica.contains(&label.name);
    let mut merged = Vec::with_capacity(series.len() + external.len());
    let mut own = series.iter().peekable();
    let mut ext = external.iter().peekable();
    loop {
        let next = match (own.peek(), ext.peek()) {
            (None, None) => break,
            (Some(_), None) => own.next(),
            (None, Some(_)) => ext.next(),
            (Some(a), Some(b)) => match a.name.cmp(&b.name) {
                Ordering::Less => own.next(),
                Ordering::Greater => ext.next(),
                Ordering::Equal => {
                    // The external value wins; skip the series' own label of that name.
                    own.next();
                    ext.next()
                }
            },
        };
        if let Some(label) = next.filter(|label| keep(label)) {
            merged.push(label.clone());
        }
    }
    Labels::from_sorted(merged)
}

/// Sorts items by their (final) labels in Prometheus `labels.Compare` order. The sort is stable,
/// so items with equal labels (replicas made identical by `without_replica_labels`) keep their
/// relative order and stay adjacent, which lets clients merge them.
pub fn sort_by_labels<T>(items: &mut [T], labels: impl Fn(&T) -> &Labels) {
    items.sort_by(|a, b| labels(a).cmp(labels(b)));
}

/// Label names of a store's own data plus its external label names, minus `without_replica`,
/// sorted and unique.
pub fn label_names_with_external(
    names: impl IntoIterator<Item = String>,
    external: &Labels,
    without_replica: &[String],
) -> Vec<String> {
    let mut all: Vec<String> = names
        .into_iter()
        .chain(external.iter().map(|label| label.name.clone()))
        .filter(|name| !without_replica.contains(name))
        .collect();
    all.sort();
    all.dedup();
    all
}

/// The values of label `name` for a store: the external value when `name` is an external label
/// (it overrides whatever the data holds), otherwise `values` from the data, sorted and unique.
/// A replica label that is stripped has no values.
pub fn label_values_with_external(
    name: &str,
    values: impl IntoIterator<Item = String>,
    external: &Labels,
    without_replica: &[String],
) -> Vec<String> {
    if without_replica.iter().any(|replica| replica == name) {
        return Vec::new();
    }
    if let Some(value) = external.get(name) {
        return vec![value.to_owned()];
    }
    let mut all: Vec<String> = values.into_iter().collect();
    all.sort();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use strata_tsdb::labels::{MatchType, parse_selector};

    use super::*;
    use crate::error::ClassifiedError;

    fn ext() -> Labels {
        Labels::from_pairs([("cluster", "eu1"), ("replica", "a")])
    }

    #[test]
    fn external_matchers_are_dropped_or_reject_the_store() {
        let matchers = parse_selector(r#"up{cluster="eu1", job=~"api.*"}"#).expect("selector");
        let remaining = matchers_for_store(&ext(), &matchers)
            .expect("valid")
            .expect("store matches");
        let names: Vec<&str> = remaining.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["__name__", "job"]);

        let other = parse_selector(r#"up{cluster="us1"}"#).expect("selector");
        assert_eq!(matchers_for_store(&ext(), &other).expect("valid"), None);

        // Negative and regex matchers on external labels are evaluated too.
        let negative = parse_selector(r#"up{cluster!="eu1"}"#).expect("selector");
        assert_eq!(matchers_for_store(&ext(), &negative).expect("valid"), None);
        let regex = parse_selector(r#"up{replica=~"a|b"}"#).expect("selector");
        assert_eq!(
            matchers_for_store(&ext(), &regex)
                .expect("valid")
                .map(|m| m.len()),
            Some(1)
        );
        // A matcher on a label the store does not have as external is kept, even if it can only
        // match the empty value.
        let empty = vec![
            Matcher::new(MatchType::Equal, "zone", "").expect("matcher"),
            Matcher::equal("cluster", "eu1"),
        ];
        assert_eq!(
            matchers_for_store(&ext(), &empty).expect("valid"),
            Some(vec![Matcher::equal("zone", "")])
        );
    }

    #[test]
    fn only_external_matchers_is_invalid_argument() {
        let matchers = vec![Matcher::equal("cluster", "eu1")];
        let err = matchers_for_store(&ext(), &matchers).expect_err("nothing left");
        assert_eq!(
            err.to_string(),
            "no matchers specified (excluding external labels)"
        );
        assert_eq!(err.to_grpc_status().code(), tonic::Code::InvalidArgument);
        assert!(matchers_for_store(&ext(), &[]).is_err());
        // A mismatch wins over the empty check: the store simply has nothing.
        let mismatch = vec![Matcher::equal("cluster", "us1")];
        assert_eq!(matchers_for_store(&ext(), &mismatch).expect("valid"), None);
    }

    #[test]
    fn external_labels_extend_and_win_and_replicas_are_stripped() {
        let series = Labels::from_pairs([("__name__", "up"), ("cluster", "inner"), ("zz", "1")]);
        let labels = finalize_labels(&series, &ext(), &[]);
        assert_eq!(
            labels.to_string(),
            r#"{__name__="up", cluster="eu1", replica="a", zz="1"}"#
        );
        let stripped = finalize_labels(&series, &ext(), &["replica".to_owned(), "zz".to_owned()]);
        assert_eq!(stripped.to_string(), r#"{__name__="up", cluster="eu1"}"#);
        assert_eq!(
            finalize_labels(&Labels::default(), &Labels::default(), &[]),
            Labels::default()
        );
    }

    #[test]
    fn sorting_after_stripping_makes_replicas_adjacent() {
        let raw = [
            Labels::from_pairs([("a", "1"), ("replica", "x")]),
            Labels::from_pairs([("a", "1"), ("b", "0"), ("replica", "w")]),
            Labels::from_pairs([("a", "1"), ("replica", "y")]),
        ];
        let mut finished: Vec<(Labels, usize)> = raw
            .iter()
            .enumerate()
            .map(|(i, l)| {
                (
                    finalize_labels(l, &Labels::default(), &["replica".to_owned()]),
                    i,
                )
            })
            .collect();
        sort_by_labels(&mut finished, |(labels, _)| labels);
        let order: Vec<usize> = finished.iter().map(|(_, i)| *i).collect();
        // {a="1"} sorts before {a="1", b="0"}; the two replicas keep their order.
        assert_eq!(order, [0, 2, 1]);
    }

    #[test]
    fn label_names_and_values_follow_external_rules() {
        let names = label_names_with_external(
            [
                "job".to_owned(),
                "__name__".to_owned(),
                "cluster".to_owned(),
            ],
            &ext(),
            &["replica".to_owned()],
        );
        assert_eq!(names, ["__name__", "cluster", "job"]);
        let values = label_values_with_external("cluster", ["inner".to_owned()], &ext(), &[]);
        assert_eq!(values, ["eu1"]);
        let values = label_values_with_external(
            "job",
            ["b".to_owned(), "a".to_owned(), "b".to_owned()],
            &ext(),
            &[],
        );
        assert_eq!(values, ["a", "b"]);
        assert!(
            label_values_with_external("replica", [], &ext(), &["replica".to_owned()]).is_empty()
        );
        let matchers = parse_selector(r#"{cluster="eu1", job="x"}"#).expect("selector");
        assert!(external_labels_match(&ext(), &matchers));
        assert_eq!(matchers_without_external(&ext(), &matchers).len(), 1);
        let matchers = parse_selector(r#"{cluster=~"us.*"}"#).expect("selector");
        assert!(!external_labels_match(&ext(), &matchers));
    }
}
