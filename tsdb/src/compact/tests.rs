use std::collections::BTreeMap;

use super::*;
use crate::dedup::VecSource;

type Series = Vec<(Labels, Vec<(i64, f64)>)>;

/// Writes a block with `series` (any order) under `dir`; returns it opened.
pub(crate) fn write_block(dir: &Path, series: &Series) -> Block {
    let mut series = series.clone();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let mut symbols: Vec<String> = series
        .iter()
        .flat_map(|(labels, _)| {
            labels
                .iter()
                .flat_map(|l| [l.name.clone(), l.value.clone()])
        })
        .collect();
    symbols.sort();
    symbols.dedup();
    let min = series
        .iter()
        .filter_map(|s| s.1.first())
        .map(|s| s.0)
        .min()
        .unwrap_or(0);
    let max = series
        .iter()
        .filter_map(|s| s.1.last())
        .map(|s| s.0)
        .max()
        .unwrap_or(0);
    let meta = BlockMeta::new(Ulid::new(), min, max + 1);
    let mut writer = BlockWriter::create(dir, meta, symbols).unwrap();
    for (labels, samples) in &series {
        let chunks = encode_xor(samples.iter().map(|s| Ok::<_, Error>(*s))).unwrap();
        writer.add_series(labels, &chunks).unwrap();
    }
    let (path, _) = writer.finish().unwrap();
    Block::open(&path).unwrap()
}

/// Every series of `block` with its samples.
pub(crate) fn read_all(block: &Block) -> BTreeMap<Labels, Vec<(i64, f64)>> {
    let matchers = crate::labels::parse_selector("{__name__=~'.+'}").unwrap();
    let mut out = BTreeMap::new();
    for series in block.select(&matchers, i64::MIN, i64::MAX).unwrap() {
        let series = series.unwrap();
        let samples: Vec<_> = block
            .samples(&series, i64::MIN, i64::MAX)
            .map(|s| s.unwrap())
            .collect();
        out.insert(series.labels.clone(), samples);
    }
    out
}

fn labels(name: &str, instance: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("instance", instance)])
}

fn samples(from: i64, to: i64, step: i64, value: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
    (0..)
        .map(|i| from + i * step)
        .take_while(|t| *t < to)
        .map(|t| (t, value(t)))
        .collect()
}

fn compact(sources: &[Block], out: &Path, options: &CompactOptions) -> CompactOutput {
    let metas: Vec<&BlockMeta> = sources.iter().map(Block::meta).collect();
    let meta = merged_meta(Ulid::new(), &metas, None);
    compact_blocks(sources, out, meta, options, Ulid::new).unwrap()
}

#[test]
fn adjacent_blocks_merge_with_chunks_copied() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_block(
        dir.path(),
        &vec![
            (
                labels("up", "a"),
                samples(0, 7_200_000, 15_000, |t| t as f64),
            ),
            (labels("up", "c"), samples(0, 3_600_000, 60_000, |_| 1.0)),
        ],
    );
    let b = write_block(
        dir.path(),
        &vec![
            (
                labels("up", "a"),
                samples(7_200_000, 14_400_000, 15_000, |t| t as f64),
            ),
            (
                labels("up", "b"),
                samples(7_200_000, 9_000_000, 15_000, |_| 2.0),
            ),
        ],
    );
    let out = tempfile::tempdir().unwrap();
    let result = compact(&[a, b], out.path(), &CompactOptions::default());
    assert_eq!(result.blocks.len(), 1);
    assert_eq!(result.stats.series, 3);
    assert_eq!(result.stats.series_merged, 0);
    assert_eq!(result.stats.chunks_merged, 0);
    let (dir_out, meta) = &result.blocks[0];
    assert_eq!(meta.compaction.level, 2);
    assert_eq!(meta.compaction.parents.len(), 2);
    assert_eq!(meta.stats.num_series, 3);
    assert_eq!(meta.stats.num_samples, result.stats.samples);
    let merged = read_all(&Block::open(dir_out).unwrap());
    assert_eq!(
        merged[&labels("up", "a")],
        samples(0, 14_400_000, 15_000, |t| t as f64)
    );
    assert_eq!(merged[&labels("up", "b")].len(), 120);
    assert_eq!(merged.len(), 3);
}

#[test]
fn overlapping_blocks_are_merged_sample_by_sample() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_block(
        dir.path(),
        &vec![(labels("up", "a"), samples(0, 600_000, 30_000, |_| 1.0))],
    );
    // Overlaps `a`, shares every other timestamp with it.
    let b = write_block(
        dir.path(),
        &vec![(
            labels("up", "a"),
            samples(300_000, 900_000, 15_000, |_| 2.0),
        )],
    );
    let out = tempfile::tempdir().unwrap();
    let result = compact(&[a, b], out.path(), &CompactOptions::default());
    assert_eq!(result.stats.series_merged, 1);
    let merged = read_all(&Block::open(&result.blocks[0].0).unwrap());
    let got = &merged[&labels("up", "a")];
    let mut want: BTreeMap<i64, f64> = samples(300_000, 900_000, 15_000, |_| 2.0)
        .into_iter()
        .collect();
    // On equal timestamps the first replica (the earlier chunk) wins.
    for (t, v) in samples(0, 600_000, 30_000, |_| 1.0) {
        want.insert(t, v);
    }
    assert_eq!(got, &want.into_iter().collect::<Vec<_>>());
}

#[test]
fn identical_blocks_are_kept_once_without_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let series = vec![(
        labels("up", "a"),
        samples(0, 3_600_000, 15_000, |t| t as f64),
    )];
    let a = write_block(dir.path(), &series);
    let b = write_block(dir.path(), &series);
    let out = tempfile::tempdir().unwrap();
    let result = compact(&[a, b], out.path(), &CompactOptions::default());
    assert_eq!(result.stats.series_merged, 0);
    assert_eq!(result.stats.chunks_merged, 0);
    let merged = read_all(&Block::open(&result.blocks[0].0).unwrap());
    assert_eq!(merged[&labels("up", "a")], series[0].1);
}

#[test]
fn replicas_are_deduplicated_as_the_querier_does() {
    let dir = tempfile::tempdir().unwrap();
    // Replica A misses ten minutes; B scrapes 5 s later.
    let a: Vec<_> = samples(0, 3_600_000, 15_000, |t| t as f64)
        .into_iter()
        .filter(|(t, _)| !(1_200_000..1_800_000).contains(t))
        .collect();
    let b = samples(5_000, 3_600_000, 15_000, |t| t as f64);
    let block_a = write_block(dir.path(), &vec![(labels("up", "x"), a.clone())]);
    let block_b = write_block(dir.path(), &vec![(labels("up", "x"), b.clone())]);
    let out = tempfile::tempdir().unwrap();
    let options = CompactOptions {
        overlap: DedupFunc::Penalty,
        ..Default::default()
    };
    let result = compact(&[block_a, block_b], out.path(), &options);
    let merged = read_all(&Block::open(&result.blocks[0].0).unwrap());

    // The same chunks through the shared algorithm directly.
    let chunks_a = encode_xor(a.iter().map(|s| Ok::<_, Error>(*s))).unwrap();
    let chunks_b = encode_xor(b.iter().map(|s| Ok::<_, Error>(*s))).unwrap();
    let mut all: Vec<SeriesChunk> = chunks_a.into_iter().chain(chunks_b).collect();
    all.sort_by(|x, y| {
        (x.min_time, x.max_time)
            .cmp(&(y.min_time, y.max_time))
            .then_with(|| x.chunk.data.cmp(&y.chunk.data))
    });
    let replicas = dedup::overlap_split(all, |c| (c.min_time, c.max_time));
    let sources = replicas.into_iter().map(|replica| {
        let mut decoded = Vec::new();
        for c in replica {
            c.chunk
                .xor_iter()
                .unwrap()
                .decode_into(&mut decoded)
                .unwrap();
        }
        Box::new(VecSource::<()>::new(decoded)) as BoxedSource<'static, ()>
    });
    let mut want_source = dedup::merge_replicas(sources, DedupFunc::Penalty, false).unwrap();
    let mut want = Vec::new();
    while let Some(sample) = want_source.next_sample().unwrap() {
        want.push(sample);
    }
    assert_eq!(merged[&labels("up", "x")], want);
    // The gap is filled from B and no sample pair is closer than the scrape offset.
    assert!(want.iter().any(|(t, _)| (1_200_000..1_800_000).contains(t)));
    assert!(want.windows(2).all(|w| w[1].0 - w[0].0 >= 10_000));
}

#[test]
fn output_is_cut_before_the_index_limit() {
    let dir = tempfile::tempdir().unwrap();
    let series: Series = (0..200)
        .map(|i| {
            (
                labels("metric", &format!("host-{i:03}")),
                samples(0, 600_000, 60_000, |_| i as f64),
            )
        })
        .collect();
    let a = write_block(dir.path(), &series);
    let out = tempfile::tempdir().unwrap();
    let options = CompactOptions {
        max_index_size: 8 * 1024,
        ..Default::default()
    };
    let result = compact(&[a], out.path(), &options);
    assert!(result.blocks.len() > 1, "{} blocks", result.blocks.len());
    let mut union = BTreeMap::new();
    for (path, meta) in &result.blocks {
        assert!(std::fs::metadata(path.join("index")).unwrap().len() <= 8 * 1024);
        assert_eq!((meta.min_time, meta.max_time), (0, 540_001));
        union.extend(read_all(&Block::open(path).unwrap()));
    }
    let want: BTreeMap<_, _> = series.into_iter().collect();
    assert_eq!(union, want);
    let ulids: std::collections::BTreeSet<_> = result.blocks.iter().map(|b| b.1.ulid).collect();
    assert_eq!(ulids.len(), result.blocks.len());
}

#[test]
fn corrupt_source_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_block(
        dir.path(),
        &vec![(labels("up", "a"), samples(0, 600_000, 15_000, |_| 1.0))],
    );
    let bad = write_block(
        dir.path(),
        &vec![(
            labels("up", "a"),
            samples(600_000, 1_200_000, 15_000, |_| 1.0),
        )],
    );
    let bad_dir = bad.dir().to_path_buf();
    let bad_name = bad.name().to_owned();
    drop(bad);
    let segment = bad_dir.join("chunks/000001");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[12] ^= 0xFF;
    std::fs::write(&segment, bytes).unwrap();
    let bad = Block::open(&bad_dir).unwrap();
    let out = tempfile::tempdir().unwrap();
    let metas = [good.meta(), bad.meta()];
    let meta = merged_meta(Ulid::new(), &metas, None);
    let err = compact_blocks(
        &[good, bad],
        out.path(),
        meta,
        &Default::default(),
        Ulid::new,
    )
    .unwrap_err();
    assert_eq!(err.unreadable_block(), Some(bad_name.as_str()), "{err}");
}

#[test]
fn tombstones_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let block = write_block(
        dir.path(),
        &vec![(labels("up", "a"), samples(0, 600_000, 15_000, |_| 1.0))],
    );
    let path = block.dir().to_path_buf();
    let series_ref = block.index().all_postings().unwrap().as_slice()[0];
    drop(block);
    let mut tombstones = crate::tombstones::Tombstones::default();
    tombstones.add(series_ref, 100_000, 200_000);
    tombstones.write_to_dir(&path).unwrap();
    let block = Block::open(&path).unwrap();
    let out = tempfile::tempdir().unwrap();
    let result = compact(&[block], out.path(), &CompactOptions::default());
    let merged = read_all(&Block::open(&result.blocks[0].0).unwrap());
    let want: Vec<_> = samples(0, 600_000, 15_000, |_| 1.0)
        .into_iter()
        .filter(|(t, _)| !(100_000..=200_000).contains(t))
        .collect();
    assert_eq!(merged[&labels("up", "a")], want);
}

#[test]
fn cancel_stops_the_merge() {
    let dir = tempfile::tempdir().unwrap();
    let block = write_block(
        dir.path(),
        &vec![(labels("up", "a"), samples(0, 600_000, 15_000, |_| 1.0))],
    );
    let options = CompactOptions::default();
    options.cancel.store(true, AtomicOrdering::Relaxed);
    let out = tempfile::tempdir().unwrap();
    let meta = merged_meta(Ulid::new(), &[block.meta()], None);
    let err = compact_blocks(&[block], out.path(), meta, &options, Ulid::new).unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
}
