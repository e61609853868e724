use std::collections::BTreeMap;

use super::*;
use crate::compact::tests::write_block;
use crate::dedup::VecSource;
use crate::labels::Labels;

fn stale() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

fn decode(chunk: &Chunk) -> Vec<(i64, f64)> {
    let mut out = Vec::new();
    chunk.xor_iter().unwrap().decode_into(&mut out).unwrap();
    out
}

/// The samples of one aggregate over all `chunks`.
fn aggregate(chunks: &[SeriesChunk], aggr: AggrType) -> Vec<(i64, f64)> {
    chunks
        .iter()
        .flat_map(|c| {
            let decoded = AggrChunk::decode(&c.chunk.data).unwrap();
            decoded.get(aggr).map(decode).unwrap_or_default()
        })
        .collect()
}

fn aggregates(chunks: &[SeriesChunk]) -> Vec<AggrChunk> {
    chunks
        .iter()
        .map(|c| AggrChunk::decode(&c.chunk.data).unwrap())
        .collect()
}

fn counter_iterate(chunks: &[AggrChunk]) -> Vec<(i64, f64)> {
    let sources: Vec<BoxedSource<'static, Error>> = chunks
        .iter()
        .map(|c| {
            Box::new(VecSource::new(decode(c.get(AggrType::Counter).unwrap())))
                as BoxedSource<'static, Error>
        })
        .collect();
    let mut counter = CounterResets::new(sources);
    let mut out = Vec::new();
    while let Some(sample) = counter.next_sample().unwrap() {
        out.push(sample);
    }
    out
}

#[test]
fn raw_windows_aggregate_count_sum_min_max_and_counter() {
    let mut data = Vec::new();
    let chunk = encode_chunk(&[
        (20, 1.0),
        (40, 2.0),
        (60, 3.0),
        (80, 1.0),
        (100, 2.0),
        (101, stale()),
        (120, 5.0),
        (180, 10.0),
        (250, 1.0),
    ]);
    expand_xor(&chunk, &mut data).unwrap();
    let chunks = downsample_raw(&data, 100).unwrap();
    assert_eq!(chunks.len(), 1);
    assert_eq!((chunks[0].min_time, chunks[0].max_time), (99, 250));
    assert_eq!(
        aggregate(&chunks, AggrType::Count),
        [(99, 4.0), (199, 3.0), (250, 1.0)]
    );
    assert_eq!(
        aggregate(&chunks, AggrType::Sum),
        [(99, 7.0), (199, 17.0), (250, 1.0)]
    );
    assert_eq!(
        aggregate(&chunks, AggrType::Min),
        [(99, 1.0), (199, 2.0), (250, 1.0)]
    );
    assert_eq!(
        aggregate(&chunks, AggrType::Max),
        [(99, 3.0), (199, 10.0), (250, 1.0)]
    );
    // First raw value, the windows' running totals with resets applied, last raw value.
    assert_eq!(
        aggregate(&chunks, AggrType::Counter),
        [(20, 1.0), (99, 4.0), (199, 13.0), (250, 14.0), (250, 1.0)]
    );
}

fn encode_chunk(samples: &[(i64, f64)]) -> Chunk {
    let mut appender = XorAppender::new();
    for &(t, v) in samples {
        appender.append(t, v).unwrap();
    }
    Chunk::new(Encoding::Xor, appender.bytes())
}

#[test]
fn expanding_drops_stale_markers_and_steps_back() {
    let chunk = encode_chunk(&[
        (100, 1.0),
        (200, 2.0),
        (200, 3.0),
        (201, 4.0),
        (200, 5.0),
        (300, 6.0),
        (400, stale()),
        (500, 5.0),
    ]);
    let mut out = Vec::new();
    expand_xor(&chunk, &mut out).unwrap();
    assert_eq!(
        out,
        [
            (100, 1.0),
            (200, 2.0),
            (200, 3.0),
            (201, 4.0),
            (300, 6.0),
            (500, 5.0)
        ]
    );
}

#[test]
fn counter_resets_between_chunks_survive_two_levels() {
    // Resets at the chunk boundaries: only the first and last raw values kept in every
    // counter chunk tell them from increases.
    let raw = [
        (10, 1.0),
        (20, 3.0),
        (30, 5.0),
        (50, 1.0),
        (60, 8.0),
        (70, 10.0),
        (120, 1.0),
        (130, 18.0),
        (140, 20.0),
        (160, 21.0),
        (170, 38.0),
        (180, 40.0),
    ];
    let first = downsample_raw_loop(&raw, 50, raw.len() + 1).unwrap();
    assert_eq!(first.len(), 4);
    assert_eq!(
        aggregate(&first, AggrType::Counter),
        [
            (10, 1.0),
            (30, 5.0),
            (30, 5.0),
            (50, 1.0),
            (70, 10.0),
            (70, 10.0),
            (120, 1.0),
            (140, 20.0),
            (140, 20.0),
            (160, 21.0),
            (180, 40.0),
            (180, 40.0)
        ]
    );
    assert_eq!(
        counter_iterate(&aggregates(&first)),
        [
            (10, 1.0),
            (30, 5.0),
            (50, 6.0),
            (70, 15.0),
            (120, 16.0),
            (140, 35.0),
            (160, 36.0),
            (180, 55.0)
        ]
    );
    let second = downsample_aggr_loop(&aggregates(&first), 100, 2).unwrap();
    assert_eq!(second.len(), 2);
    assert_eq!(
        aggregate(&second, AggrType::Counter),
        [
            (10, 1.0),
            (70, 15.0),
            (70, 10.0),
            (120, 1.0),
            (180, 40.0),
            (180, 40.0)
        ]
    );
    assert_eq!(
        counter_iterate(&aggregates(&second)),
        [(10, 1.0), (70, 15.0), (120, 16.0), (180, 55.0)]
    );
    // Counts of counts add up; min and max of minima and maxima.
    assert_eq!(aggregate(&second, AggrType::Count), [(70, 6.0), (180, 6.0)]);
    assert_eq!(aggregate(&second, AggrType::Max), [(70, 10.0), (180, 40.0)]);
    assert_eq!(aggregate(&second, AggrType::Min), [(70, 1.0), (180, 1.0)]);
}

#[test]
fn chunk_count_targets_140_aggregates() {
    // Two days of 15 s samples at 5m: 576 windows, so five chunks.
    assert_eq!(
        target_chunk_count(0, 2 * 86_400_000, 60_000, RES_5M, 11_520),
        5
    );
    assert_eq!(target_chunk_count(0, 0, 60_000, RES_5M, 1), 1);
    assert_eq!(current_window(0, 300_000), 299_999);
    assert_eq!(current_window(300_000, 300_000), 599_999);
}

#[test]
fn blocks_downsample_to_5m_and_1h() {
    let dir = tempfile::tempdir().unwrap();
    let step = 15_000;
    let hours = 50;
    let series: Vec<(Labels, Vec<(i64, f64)>)> = (0..3)
        .map(|i| {
            let samples: Vec<(i64, f64)> = (0..hours * 240)
                .map(|n| {
                    let t = n * step + i;
                    // A counter that resets every 7 hours.
                    (t, ((n % (7 * 240)) * (i + 1)) as f64)
                })
                .collect();
            (
                Labels::from_pairs([("__name__", "requests_total"), ("i", &i.to_string())]),
                samples,
            )
        })
        .collect();
    let raw = write_block(dir.path(), &series);
    let out = tempfile::tempdir().unwrap();
    let meta = downsampled_meta(raw.meta(), Ulid::new(), RES_5M);
    let (path, meta, stats) =
        downsample_block(&raw, out.path(), meta, &AtomicBool::new(false)).unwrap();
    assert_eq!(meta.resolution(), RES_5M);
    assert_eq!(stats.series, 3);
    assert_eq!(stats.samples_in, 3 * hours as u64 * 240);
    let five = Block::open(&path).unwrap();
    // Per series: the same chunks as downsampling its samples directly.
    for (labels, samples) in &series {
        let want = downsample_raw(samples, RES_5M).unwrap();
        let matchers = crate::labels::parse_selector(&format!(
            "{{__name__='requests_total', i='{}'}}",
            labels.get("i").unwrap()
        ))
        .unwrap();
        let got = five
            .select(&matchers, i64::MIN, i64::MAX)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(got.chunks.len(), want.len());
        for (meta, want) in got.chunks.iter().zip(&want) {
            assert_eq!(
                (meta.min_time, meta.max_time),
                (want.min_time, want.max_time)
            );
            assert_eq!(five.chunk(meta.chunk_ref).unwrap(), want.chunk);
        }
        // Sum and count over the whole series equal the raw sum and count.
        let count: f64 = aggregate(&want, AggrType::Count).iter().map(|s| s.1).sum();
        let sum: f64 = aggregate(&want, AggrType::Sum).iter().map(|s| s.1).sum();
        assert_eq!(count, samples.len() as f64);
        assert_eq!(sum, samples.iter().map(|s| s.1).sum::<f64>());
        // The counter aggregate read back is the raw counter with resets applied.
        let counter = counter_iterate(&aggregates(&want));
        let raw_total = counter_iterate(&[AggrChunk::new([
            None,
            None,
            None,
            None,
            Some(encode_chunk(samples)),
        ])]);
        let at_end = raw_total.last().unwrap();
        assert_eq!(counter.last().unwrap(), at_end);
    }

    let out_1h = tempfile::tempdir().unwrap();
    let meta = downsampled_meta(five.meta(), Ulid::new(), RES_1H);
    let (path, meta, _) =
        downsample_block(&five, out_1h.path(), meta, &AtomicBool::new(false)).unwrap();
    assert_eq!(meta.resolution(), RES_1H);
    assert_eq!(meta.compaction, raw.meta().compaction);
    let hour = Block::open(&path).unwrap();
    let matchers = crate::labels::parse_selector("{__name__='requests_total'}").unwrap();
    let mut totals = BTreeMap::new();
    for series in hour.select(&matchers, i64::MIN, i64::MAX).unwrap() {
        let series = series.unwrap();
        let mut chunks = Vec::new();
        for meta in &series.chunks {
            let chunk = hour.chunk(meta.chunk_ref).unwrap();
            chunks.push(AggrChunk::decode(&chunk.data).unwrap());
        }
        let count: f64 = chunks
            .iter()
            .flat_map(|c| decode(c.get(AggrType::Count).unwrap()))
            .map(|s| s.1)
            .sum();
        totals.insert(series.labels.clone(), count);
        // Window ends are on the hour (or the last sample).
        for (t, _) in decode(chunks[0].get(AggrType::Count).unwrap()) {
            assert!(t % RES_1H == RES_1H - 1 || t == series.chunks.last().unwrap().max_time);
        }
    }
    assert_eq!(totals.len(), 3);
    assert!(totals.values().all(|&c| c == (hours * 240) as f64));
}

#[test]
fn wrong_target_and_cancel_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let raw = write_block(
        dir.path(),
        &vec![(
            Labels::from_pairs([("__name__", "x")]),
            vec![(0, 1.0), (1000, 2.0)],
        )],
    );
    let out = tempfile::tempdir().unwrap();
    let meta = downsampled_meta(raw.meta(), Ulid::new(), RES_RAW);
    assert!(downsample_block(&raw, out.path(), meta, &AtomicBool::new(false)).is_err());
    let cancel = AtomicBool::new(true);
    let meta = downsampled_meta(raw.meta(), Ulid::new(), RES_5M);
    assert!(matches!(
        downsample_block(&raw, out.path(), meta, &cancel),
        Err(Error::Cancelled)
    ));
}
