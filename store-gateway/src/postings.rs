//! Matchers to series references with Prometheus semantics (a missing label is the empty
//! string), planned against the index-header and evaluated with roaring bitmaps.
//!
//! Each matcher becomes a posting group: when the matcher does not match `""`, an *add* group,
//! the union of the postings of the values it matches; when it does match `""` (series without
//! the label match too), a *remove* group, the union of the postings of the values it rejects.
//! The result is the intersection of the add groups (the all-postings list when there is none)
//! minus the remove groups. Shortcuts: `=` looks up one value, set regexes (`a|b|c`) look up
//! their literals, and regexes with a literal prefix only scan the values with that prefix.

use roaring::RoaringBitmap;
use strata_tsdb::index::ALL_POSTINGS_KEY;
use strata_tsdb::labels::{MatchType, Matcher};

use crate::index_header::{IndexHeader, PostingsEntry};

/// One posting group: the lists to union, and whether the union is subtracted.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub entries: Vec<PostingsEntry>,
    pub remove: bool,
}

/// The posting groups of a query on one block; `None` when the result is certainly empty.
pub fn plan(header: &IndexHeader, matchers: &[Matcher]) -> Option<Vec<Group>> {
    let mut groups = Vec::with_capacity(matchers.len() + 1);
    for matcher in matchers {
        let matches_empty = matcher.matches("");
        // Values whose postings the group needs: matching ones for an add group, rejected ones
        // for a remove group.
        let wanted = |value: &str| matcher.matches(value) != matches_empty;
        let entries = match (matcher.kind, matches_empty) {
            (MatchType::Equal, false) => header
                .entry(&matcher.name, &matcher.value)
                .into_iter()
                .collect(),
            (MatchType::NotEqual, true) => header
                .entry(&matcher.name, &matcher.value)
                .into_iter()
                .collect(),
            (MatchType::Regex, false) | (MatchType::NotRegex, true) => {
                match matcher.set_matches() {
                    Some(values) => values
                        .iter()
                        .filter_map(|value| header.entry(&matcher.name, value))
                        .collect(),
                    None => {
                        let prefix = matcher.literal_prefix();
                        let prefix = if matcher.kind == MatchType::Regex {
                            prefix
                        } else {
                            None
                        };
                        header.entries(&matcher.name, prefix.as_deref(), wanted)
                    }
                }
            }
            _ => header.entries(&matcher.name, None, wanted),
        };
        if !matches_empty && entries.is_empty() {
            return None;
        }
        if matches_empty && entries.is_empty() {
            // Removes nothing.
            continue;
        }
        groups.push(Group {
            name: matcher.name.clone(),
            entries,
            remove: matches_empty,
        });
    }
    if groups.iter().all(|group| group.remove) {
        let all = header.entry(ALL_POSTINGS_KEY.0, ALL_POSTINGS_KEY.1)?;
        groups.push(Group {
            name: ALL_POSTINGS_KEY.0.to_owned(),
            entries: vec![all],
            remove: false,
        });
    }
    Some(groups)
}

/// Evaluates groups whose lists have been fetched (`lists[i]` holds group `i`'s lists).
pub fn evaluate(groups: &[Group], lists: &[Vec<std::sync::Arc<RoaringBitmap>>]) -> RoaringBitmap {
    let mut result: Option<RoaringBitmap> = None;
    let mut removed = RoaringBitmap::new();
    let mut adds: Vec<RoaringBitmap> = Vec::new();
    for (group, lists) in groups.iter().zip(lists) {
        let mut union = RoaringBitmap::new();
        for list in lists {
            union |= list.as_ref();
        }
        if group.remove {
            removed |= union;
        } else {
            adds.push(union);
        }
    }
    // Intersect smallest first: the running result only shrinks.
    adds.sort_by_key(RoaringBitmap::len);
    for add in adds {
        result = Some(match result {
            None => add,
            Some(acc) => acc & add,
        });
    }
    let mut result = result.unwrap_or_default();
    result -= removed;
    result
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use strata_tsdb::index::{IndexReader, decode_postings};
    use strata_tsdb::labels::parse_selector;

    use super::*;
    use crate::index_header::build;
    use crate::testutil::{bucket, numbered_series, write_block};

    #[tokio::test]
    async fn matchers_select_what_the_reference_reader_selects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut series = numbered_series(100, 3);
        // Some series carry an extra label so empty-value matchers have something to do.
        for (i, (labels, _)) in series.iter_mut().enumerate().filter(|(i, _)| i % 10 == 0) {
            let mut pairs: Vec<(String, String)> = labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            pairs.push(("extra".into(), format!("e{}", i % 20)));
            *labels = strata_tsdb::labels::Labels::from_pairs(pairs);
        }
        let block = write_block(dir.path(), &[], &series);
        let index_path = dir.path().join(format!("{block}/index"));
        let size = std::fs::metadata(&index_path).expect("index").len();
        let header = crate::index_header::IndexHeader::parse(
            block,
            Bytes::from(
                build(&bucket(dir.path()), block, size)
                    .await
                    .expect("build"),
            ),
        )
        .expect("parse");
        let index = std::fs::read(&index_path).expect("read");
        let reader = IndexReader::open_file(&index_path).expect("reader");
        for selector in [
            r#"{__name__="metric"}"#,
            r#"{i="0042"}"#,
            r#"{i=~"00[1-3].*"}"#,
            r#"{i=~"0001|0002|0099|nope"}"#,
            r#"{__name__="metric", mod!="1"}"#,
            r#"{__name__="metric", mod!~"1|2"}"#,
            r#"{__name__="metric", extra=""}"#,
            r#"{__name__="metric", extra!=""}"#,
            r#"{__name__="metric", extra=~"e1.*|"}"#,
            r#"{__name__="metric", extra!~"e0"}"#,
            r#"{mod=~".*", i=~"009."}"#,
            r#"{__name__="nope"}"#,
            r#"{__name__=~".+", nolabel=""}"#,
            r#"{__name__=~".+", nolabel="x"}"#,
        ] {
            let matchers = parse_selector(selector).expect("selector");
            let expected: Vec<u32> = reader
                .postings_for_matchers(&matchers)
                .expect("reference")
                .into_vec();
            let got: Vec<u32> = match plan(&header, &matchers) {
                None => Vec::new(),
                Some(groups) => {
                    let lists: Vec<Vec<Arc<RoaringBitmap>>> = groups
                        .iter()
                        .map(|group| {
                            group
                                .entries
                                .iter()
                                .map(|entry| {
                                    let data = &index
                                        [entry.range.start as usize..entry.range.end as usize];
                                    let refs =
                                        decode_postings(data, entry.range.start).expect("postings");
                                    Arc::new(refs.into_iter().collect::<RoaringBitmap>())
                                })
                                .collect()
                        })
                        .collect();
                    evaluate(&groups, &lists).iter().collect()
                }
            };
            assert_eq!(got, expected, "{selector}");
        }
    }
}
