//! Fuzz target: the store gateway's own block reader paths over arbitrary bytes, the code that
//! reads what a bucket (or a stale local disk) hands the gateway. The first byte picks the path:
//! - 0: the rest is a whole index file: an index-header is built from it (as on a block's first
//!   use), parsed back (a header the gateway built must parse) and walked;
//! - 1: the rest is an index-header file read from local disk, maybe corrupt: parsed, walked;
//! - 2: the rest is a fetched range of the series section: entries decoded at the first refs.
//!
//! Walking means what queries do: label names, values, exact entries and prefix scans. Work per
//! input is bounded by `LIMIT`. Built with `--cfg fuzzing` (CRC checks skipped in tsdb).

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strata_store_gateway::block::decode_series_entry;
use strata_store_gateway::index_header::{IndexHeader, build_from_index};
use ulid::Ulid;

const LIMIT: usize = 32;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let block = Ulid::nil();
    match mode % 3 {
        0 => {
            if let Ok(header) = build_from_index(block, rest) {
                let parsed = IndexHeader::parse(block, Bytes::from(header));
                match parsed {
                    Ok(parsed) => walk(&parsed),
                    Err(err) => panic!("an index-header built from an index fails to parse: {err}"),
                }
            }
        }
        1 => {
            if let Ok(parsed) = IndexHeader::parse(block, Bytes::copy_from_slice(rest)) {
                walk(&parsed);
            }
        }
        _ => {
            let refs = (rest.len() / 16).min(LIMIT);
            for series_ref in 0..refs {
                let _ = decode_series_entry(rest, series_ref as u32);
            }
            let _ = decode_series_entry(rest, u32::MAX);
        }
    }
});

fn walk(header: &IndexHeader) {
    let _ = header.size_bytes();
    let _ = header.symbols();
    for name in header.label_names().into_iter().take(LIMIT) {
        let values = header.label_values(&name);
        for value in values.iter().take(LIMIT) {
            let entry = header.entry(&name, value);
            assert!(
                entry.as_ref().is_none_or(|entry| entry.range.start <= entry.range.end),
                "postings range runs backwards: {entry:?}"
            );
            let prefix: String = value.chars().take(2).collect();
            let _ = header.entries(&name, Some(&prefix), |_| true);
        }
        let _ = header.entry(&name, "");
        let _ = header.entry(&name, "\u{10ffff}");
    }
    let _ = header.label_values("");
}
