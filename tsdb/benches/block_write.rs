//! Block writing throughput: 10k series of one 120-sample XOR chunk each, written through
//! `BlockWriter` (chunk segments, index, tombstones, meta.json, rename).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strata_tsdb::block::{BlockWriter, SeriesChunk, new_ulid};
use strata_tsdb::chunkenc::{Chunk, Encoding, XorAppender};
use strata_tsdb::labels::Labels;
use strata_tsdb::meta::BlockMeta;

fn bench_block_write(c: &mut Criterion) {
    let series: Vec<Labels> = {
        let mut all: Vec<Labels> = (0..10_000)
            .map(|i| {
                Labels::from_pairs([
                    ("__name__".to_string(), format!("metric_{:02}", i % 50)),
                    ("instance".to_string(), format!("host-{:04}", i / 50)),
                    ("job".to_string(), format!("job-{}", i % 7)),
                ])
            })
            .collect();
        all.sort();
        all
    };
    let mut symbols: Vec<String> = series
        .iter()
        .flat_map(|l| l.iter().flat_map(|l| [l.name.clone(), l.value.clone()]))
        .collect();
    symbols.sort();
    symbols.dedup();
    let chunk = {
        let mut app = XorAppender::new();
        for i in 0..120 {
            app.append(i * 15_000, (i * 3) as f64).expect("append");
        }
        SeriesChunk {
            min_time: 0,
            max_time: 119 * 15_000,
            chunk: Chunk::new(Encoding::Xor, app.bytes()),
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut group = c.benchmark_group("block_write");
    group.sample_size(10);
    group.throughput(Throughput::Elements(series.len() as u64));
    group.bench_function("10k_series", |b| {
        b.iter(|| {
            let meta = BlockMeta::new(new_ulid(), 0, 119 * 15_000 + 1);
            let mut writer =
                BlockWriter::create(dir.path(), meta, symbols.clone()).expect("create");
            for labels in &series {
                writer
                    .add_series(labels, std::slice::from_ref(&chunk))
                    .expect("add");
            }
            let (block_dir, _) = writer.finish().expect("finish");
            std::fs::remove_dir_all(block_dir).expect("cleanup");
        })
    });
    group.finish();
}

criterion_group!(benches, bench_block_write);
criterion_main!(benches);
