//! Tests of the index format: byte-exact agreement with an index written by Prometheus 2.42,
//! reader/writer round trips, matcher lookup semantics and corruption handling.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::labels::{Labels, MatchType, Matcher, parse_selector};
use crate::source::ByteSource;

fn promtool_block() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/promtool-2.42/01M89TEE59XZBKFF6HB3W7MRMX")
}

fn read_all_series(reader: &IndexReader) -> Vec<(Labels, Vec<ChunkMeta>)> {
    reader
        .all_postings()
        .unwrap()
        .iter()
        .map(|r| reader.series_with_labels(r).unwrap())
        .collect()
}

fn symbols_of(reader: &IndexReader) -> Vec<String> {
    reader
        .symbols()
        .iter()
        .map(|s| s.unwrap().to_string())
        .collect()
}

#[test]
fn reads_promtool_index() {
    let reader = IndexReader::open_file(&promtool_block().join("index")).unwrap();
    assert_eq!(reader.version(), 2);
    assert_eq!(
        *reader.toc(),
        Toc {
            symbols: 5,
            series: 59,
            label_indices: 145,
            label_indices_table: 344,
            postings: 220,
            postings_table: 387
        }
    );
    assert_eq!(
        symbols_of(&reader),
        [
            "", "__name__", "a", "b", "foo", "instance", "job", "single", "x", "y"
        ]
    );
    let series = read_all_series(&reader);
    let names: Vec<String> = series.iter().map(|(l, _)| l.to_string()).collect();
    assert_eq!(
        names,
        [
            "{__name__=\"foo\", instance=\"x\", job=\"a\"}",
            "{__name__=\"foo\", instance=\"y\", job=\"b\"}",
            "{__name__=\"single\"}"
        ]
    );
    assert_eq!(series[0].1[0].chunk_ref.0, 8);
    assert_eq!(
        reader.label_names().collect::<Vec<_>>(),
        ["__name__", "instance", "job"]
    );
    assert_eq!(reader.label_values("job").collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(reader.symbols().find("job"), Some(6));
    assert_eq!(reader.symbols().find("zzz"), None);
    assert_eq!(reader.symbols().find(""), Some(0));
}

#[test]
fn writer_reproduces_promtool_index_byte_for_byte() {
    let original = std::fs::read(promtool_block().join("index")).unwrap();
    let reader = IndexReader::open(Box::new(Bytes::from(original.clone()))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let mut writer = IndexWriter::create(&path, symbols_of(&reader)).unwrap();
    for (labels, chunks) in read_all_series(&reader) {
        writer.add_series(&labels, &chunks).unwrap();
    }
    let size = writer.finish().unwrap();
    let written = std::fs::read(&path).unwrap();
    assert_eq!(size, written.len() as u64);
    assert_eq!(written, original);
}

fn select(reader: &IndexReader, selector: &str) -> Vec<String> {
    let matchers = parse_selector(selector).unwrap();
    reader
        .postings_for_matchers(&matchers)
        .unwrap()
        .iter()
        .map(|r| reader.series_with_labels(r).unwrap().0.to_string())
        .collect()
}

/// Builds an index of `n` series `m{i="<n>", even="true|false", [odd_only="x"]}`.
fn test_index(n: u32) -> (tempfile::TempDir, IndexReader) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let mut series: Vec<Labels> = (0..n)
        .map(|i| {
            let mut pairs = vec![
                ("__name__".to_string(), "m".to_string()),
                ("i".to_string(), format!("{i:05}")),
                ("even".to_string(), (i % 2 == 0).to_string()),
            ];
            if i % 2 == 1 {
                pairs.push(("odd_only".to_string(), "x".to_string()));
            }
            Labels::from_pairs(pairs)
        })
        .collect();
    series.sort();
    let mut symbols: Vec<String> = series
        .iter()
        .flat_map(|l| l.iter().flat_map(|l| [l.name.clone(), l.value.clone()]))
        .collect();
    symbols.sort();
    symbols.dedup();
    let mut writer = IndexWriter::create(&path, symbols).unwrap();
    for (i, labels) in series.iter().enumerate() {
        let chunk = ChunkMeta {
            min_time: i as i64,
            max_time: i as i64 + 10,
            chunk_ref: crate::chunks::ChunkRef(8 + i as u64 * 20),
        };
        writer.add_series(labels, &[chunk]).unwrap();
    }
    writer.finish().unwrap();
    let reader = IndexReader::open_file(&path).unwrap();
    (dir, reader)
}

#[test]
fn matcher_lookup_follows_prometheus_semantics() {
    let (_dir, reader) = test_index(20);
    assert_eq!(select(&reader, "m").len(), 20);
    assert_eq!(select(&reader, r#"{i="00003"}"#).len(), 1);
    assert_eq!(select(&reader, r#"{i=~"0000[0-4]"}"#).len(), 5);
    assert_eq!(select(&reader, r#"{i=~"00001|00002|nope"}"#).len(), 2);
    assert_eq!(select(&reader, r#"{i=~"0001.*"}"#).len(), 10);
    assert_eq!(
        select(&reader, r#"m{odd_only=""}"#).len(),
        10,
        "label absent"
    );
    assert_eq!(select(&reader, r#"m{odd_only!=""}"#).len(), 10);
    assert_eq!(select(&reader, r#"m{odd_only!="x"}"#).len(), 10);
    assert_eq!(select(&reader, r#"m{even!="true"}"#).len(), 10);
    assert_eq!(select(&reader, r#"m{even!~"t.*"}"#).len(), 10);
    assert_eq!(select(&reader, r#"m{even=~"t.*|"}"#).len(), 10);
    assert_eq!(
        select(&reader, r#"{odd_only=~".+", i!~"0000[0-5]"}"#).len(),
        7
    );
    assert_eq!(select(&reader, r#"{nope=~".+"}"#).len(), 0);
    assert_eq!(select(&reader, r#"{i="00003", even="true"}"#).len(), 0);
    assert_eq!(select(&reader, r#"{__name__=~".*", i="00004"}"#).len(), 1);
    let all = select(&reader, "m");
    let mut sorted = all.clone();
    sorted.sort();
    // Labels strings sort like label sets here (all share the same names up to `i`).
    assert_eq!(all.len(), sorted.len());
    // Every result must satisfy the matchers when checked directly.
    let matchers = parse_selector(r#"{even!="true", i=~"000[01].*"}"#).unwrap();
    let expected: usize = (0..20).filter(|i| i % 2 == 1 && *i < 20).count();
    assert_eq!(
        reader.postings_for_matchers(&matchers).unwrap().len(),
        expected
    );
    let none = reader.postings_for_matchers(&[]).unwrap();
    assert!(none.is_empty());
    let not_regex = Matcher::new(MatchType::NotRegex, "i", "0000[0-9]|0001[0-8]").unwrap();
    assert_eq!(
        reader
            .postings_for_matchers(&[Matcher::equal("__name__", "m"), not_regex])
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn writer_rejects_out_of_order_series_and_unknown_symbols() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer =
        IndexWriter::create(&dir.path().join("index"), vec!["a".into(), "b".into()]).unwrap();
    writer
        .add_series(&Labels::from_pairs([("a", "b")]), &[])
        .unwrap();
    assert!(
        writer
            .add_series(&Labels::from_pairs([("a", "a")]), &[])
            .is_err()
    );
    assert!(
        writer
            .add_series(&Labels::from_pairs([("b", "c")]), &[])
            .is_err()
    );
    assert!(IndexWriter::create(&dir.path().join("i2"), vec!["b".into(), "a".into()]).is_err());
}

/// Open `bytes` as an index and read everything; must never panic.
fn read_everything(bytes: Vec<u8>) -> crate::Result<usize> {
    let reader = IndexReader::open(Box::new(Bytes::from(bytes)))?;
    let mut n = 0;
    for name in reader.label_names().map(str::to_string).collect::<Vec<_>>() {
        for value in reader
            .label_values(&name)
            .map(str::to_string)
            .collect::<Vec<_>>()
        {
            for r in reader.postings(&name, &value)?.iter() {
                let (labels, chunks) = reader.series_with_labels(r)?;
                n += labels.len() + chunks.len();
            }
        }
    }
    Ok(n)
}

#[test]
fn every_truncation_is_an_error() {
    let original = std::fs::read(promtool_block().join("index")).unwrap();
    assert!(read_everything(original.clone()).is_ok());
    for len in 0..original.len() {
        assert!(
            read_everything(original[..len].to_vec()).is_err(),
            "truncated to {len}"
        );
    }
}

proptest! {
    #[test]
    fn bit_flips_are_errors_or_harmless(position in 0usize..537, bit in 0u8..8) {
        let mut bytes = std::fs::read(promtool_block().join("index")).unwrap();
        prop_assume!(position < bytes.len());
        bytes[position] ^= 1 << bit;
        // Padding bytes are not covered by any CRC; everything else must be detected.
        let _ = read_everything(bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = read_everything(bytes.clone());
        let _ = decode_series(&bytes, 0);
        let _ = decode_postings(&bytes, 0);
        let _ = decode_postings_offset_table(&bytes, 0, |_, _, _| Ok(()));
        let _ = Toc::decode(&bytes, bytes.len() as u64);
        let _ = Symbols::decode(Bytes::from(bytes), 0);
    }

    #[test]
    fn index_round_trips(raw in prop::collection::btree_set(
        prop::collection::btree_map("[a-c_]{1,3}", "[ -~é]{0,4}", 1..4), 1..40)) {
        let series: Vec<Labels> = raw.into_iter().map(Labels::from_pairs).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let mut symbols: Vec<String> = series.iter().flat_map(|l| l.iter().flat_map(|l| [l.name.clone(), l.value.clone()])).collect();
        symbols.sort();
        symbols.dedup();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let mut writer = IndexWriter::create(&path, symbols).unwrap();
        let mut expected = Vec::new();
        for (i, labels) in series.iter().enumerate() {
            let chunks: Vec<ChunkMeta> = (0..(i % 4) as i64).map(|c| ChunkMeta {
                min_time: -1000 + c * 100, max_time: -1000 + c * 100 + 50,
                chunk_ref: crate::chunks::ChunkRef(8 + (i as u64) * 1000 + c as u64 * 10) }).collect();
            writer.add_series(labels, &chunks).unwrap();
            expected.push((labels.clone(), chunks));
        }
        writer.finish().unwrap();
        let reader = IndexReader::open_file(&path).unwrap();
        prop_assert_eq!(read_all_series(&reader), expected.clone());
        for (labels, _) in &expected {
            for label in labels {
                let postings = reader.postings(&label.name, &label.value).unwrap();
                let want = expected.iter().filter(|(l, _)| l.get(&label.name) == Some(label.value.as_str())).count();
                prop_assert_eq!(postings.len(), want);
            }
        }
        let source: Box<dyn ByteSource> = Box::new(Bytes::from(std::fs::read(&path).unwrap()));
        prop_assert_eq!(source.len(), std::fs::metadata(&path).unwrap().len());
    }
}
