//! Fuzz target: the pure index section decoders (what the store gateway calls on byte ranges
//! it fetched itself) over arbitrary bytes: header, TOC, tables, symbols, series entries,
//! postings lists and the postings offset table.
//!
//! The first input byte picks the decoder; the rest is its input. For the length-prefixed,
//! CRC-protected tables the harness also wraps the input in a valid length and CRC, so the
//! fuzzer reaches the payload parsers even in a build that verifies checksums.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strata_tsdb::encoding::crc32c;
use strata_tsdb::index::{
    Symbols, Toc, decode_header, decode_postings, decode_postings_offset_table, decode_series,
    decode_table, table_span,
};

/// `len u32 | payload | crc u32`, as every index table is framed.
fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32c(payload).to_be_bytes());
    out
}

fn symbols(table: &[u8]) {
    let Ok(payload) = decode_table(table, "symbols", 0) else {
        return;
    };
    let Ok(symbols) = Symbols::decode(Bytes::copy_from_slice(payload), 0) else {
        return;
    };
    for (i, symbol) in symbols.iter().take(256).enumerate() {
        let symbol = symbol.expect("decode validated every symbol");
        assert_eq!(symbols.find(symbol), Some(i as u32));
        assert_eq!(symbols.lookup(i as u32).expect("in range"), symbol);
    }
    assert!(symbols.lookup(symbols.len()).is_err());
    let _ = symbols.find("");
}

fn postings_table(table: &[u8]) {
    if let Ok(payload) = decode_table(table, "postings offset table", 0) {
        let mut entries = 0usize;
        let _ = decode_postings_offset_table(payload, 0, |name, value, offset| {
            entries += name.len() + value.len() + (offset as usize & 1);
            Ok(())
        });
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    match selector % 8 {
        0 => {
            let _ = decode_header(input);
            let _ = Toc::decode(input, input.len() as u64 + 5);
            let _ = table_span(input, "table", 0);
        }
        1 => symbols(input),
        2 => symbols(&framed(input)),
        3 => {
            let _ = decode_series(input, 16);
        }
        4 => {
            // A series entry with a valid CRC: uvarint length, body, CRC.
            let mut entry = Vec::new();
            let mut len = input.len() as u64;
            while len >= 0x80 {
                entry.push(len as u8 | 0x80);
                len >>= 7;
            }
            entry.push(len as u8);
            entry.extend_from_slice(input);
            entry.extend_from_slice(&crc32c(input).to_be_bytes());
            let decoded = decode_series(&entry, 16);
            // Too short is only possible for a truncated entry, and this one is whole.
            assert!(!matches!(decoded, Ok(None)));
        }
        5 => {
            let _ = decode_postings(input, 0);
            if let Ok(refs) = decode_postings(&framed(input), 0) {
                assert!(refs.windows(2).all(|w| w[0] < w[1]));
            }
        }
        6 => postings_table(input),
        _ => postings_table(&framed(input)),
    }
});
