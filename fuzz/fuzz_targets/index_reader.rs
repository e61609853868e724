//! Fuzz target: arbitrary bytes as a whole index file, opened with `IndexReader` and walked
//! the way the store gateway and `block dump` do: symbols, label names and values, postings,
//! series entries and their labels, and matcher lookups. Work per input is bounded.
//!
//! Built with `--cfg fuzzing`, the tsdb crate skips CRC verification so that mutated inputs
//! reach the decoders behind the checksums.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strata_tsdb::index::IndexReader;
use strata_tsdb::labels::{MatchType, Matcher};

const LIMIT: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Ok(index) = IndexReader::open(Box::new(Bytes::copy_from_slice(data))) else {
        return;
    };
    let symbols = index.symbols();
    for (i, symbol) in symbols.iter().take(LIMIT).enumerate() {
        let Ok(symbol) = symbol else { break };
        // Symbols are sorted and unique, so lookups agree with positions.
        assert_eq!(symbols.find(symbol), Some(i as u32));
        assert_eq!(symbols.lookup(i as u32).ok(), Some(symbol));
    }
    let _ = symbols.lookup(symbols.len());
    let _ = symbols.find("\u{10FFFF}");

    let names: Vec<String> = index.label_names().take(LIMIT).map(String::from).collect();
    let _ = index.num_label_pairs();
    let mut series_seen = 0;
    let mut visit = |postings: strata_tsdb::index::postings::Postings| {
        for series_ref in postings.iter().take(LIMIT) {
            if series_seen >= 4 * LIMIT {
                return;
            }
            series_seen += 1;
            if let Ok(entry) = index.series(series_ref) {
                let _ = index.labels_of(&entry);
            }
        }
    };
    if let Ok(all) = index.all_postings() {
        visit(all);
    }
    for name in &names {
        let values: Vec<String> = index
            .label_values(name)
            .take(LIMIT)
            .map(String::from)
            .collect();
        for value in &values {
            if let Ok(postings) = index.postings(name, value) {
                visit(postings);
            }
        }
        if let Some(value) = values.first() {
            for kind in [
                MatchType::Equal,
                MatchType::NotEqual,
                MatchType::Regex,
                MatchType::NotRegex,
            ] {
                if let Ok(matcher) = Matcher::new(kind, name.as_str(), value.as_str()) {
                    let _ = index.postings_for_matchers(&[matcher]);
                }
            }
            if let Ok(prefix) = Matcher::new(MatchType::Regex, name.as_str(), format!("{value}.*"))
            {
                let _ = index.postings_for_matchers(&[prefix, Matcher::equal("__name__", "")]);
            }
        }
    }
    let _ = index.postings_at(0);
    let _ = index.series(u32::MAX);
});
