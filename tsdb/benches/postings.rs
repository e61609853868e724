//! Postings lookup on a 100k-series index: equality, set regex, prefix regex, general regex and
//! negative matchers, through the same `IndexReader` the block reader uses (index in memory).

use bytes::Bytes;
use criterion::{Criterion, black_box, criterion_group, criterion_main};
use strata_tsdb::index::{ChunkMeta, IndexReader, IndexWriter};
use strata_tsdb::labels::{Labels, parse_selector};

fn build_index() -> IndexReader {
    let mut series: Vec<Labels> = Vec::with_capacity(100_000);
    for metric in 0..100 {
        for instance in 0..1000 {
            series.push(Labels::from_pairs([
                ("__name__".to_string(), format!("metric_{metric:03}")),
                ("instance".to_string(), format!("host-{instance:04}:9100")),
                ("job".to_string(), format!("job-{}", instance % 10)),
                ("zone".to_string(), format!("zone-{}", instance % 3)),
            ]));
        }
    }
    series.sort();
    let mut symbols: Vec<String> = series
        .iter()
        .flat_map(|l| l.iter().flat_map(|l| [l.name.clone(), l.value.clone()]))
        .collect();
    symbols.sort();
    symbols.dedup();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("index");
    let mut writer = IndexWriter::create(&path, symbols).expect("create");
    for (i, labels) in series.iter().enumerate() {
        let meta = ChunkMeta {
            min_time: 0,
            max_time: 7_199_999,
            chunk_ref: strata_tsdb::chunks::ChunkRef(8 + i as u64 * 200),
        };
        writer.add_series(labels, &[meta]).expect("add");
    }
    writer.finish().expect("finish");
    let bytes = Bytes::from(std::fs::read(&path).expect("read"));
    IndexReader::open(Box::new(bytes)).expect("open")
}

fn bench_postings(c: &mut Criterion) {
    let index = build_index();
    let mut group = c.benchmark_group("postings_100k");
    for (name, selector) in [
        (
            "eq_one_series",
            r#"{__name__="metric_042",instance="host-0420:9100"}"#,
        ),
        ("eq_job", r#"{job="job-3"}"#),
        (
            "eq_metric_and_job",
            r#"{__name__="metric_042",job="job-3"}"#,
        ),
        (
            "regex_set",
            r#"{__name__=~"metric_001|metric_002|metric_003"}"#,
        ),
        ("regex_prefix", r#"{instance=~"host-01.*"}"#),
        (
            "regex_general",
            r#"{__name__="metric_042",instance=~".*-0[0-4]0.*"}"#,
        ),
        (
            "negative",
            r#"{__name__="metric_042",job!="job-3",zone!~"zone-[12]"}"#,
        ),
    ] {
        let matchers = parse_selector(selector).expect("selector");
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(
                    index
                        .postings_for_matchers(&matchers)
                        .expect("lookup")
                        .len(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_postings);
criterion_main!(benches);
