use strata_tsdb::chunkenc::XorAppender;

use super::*;

pub(crate) fn xor_chunk(samples: &[(i64, f64)]) -> thanos::AggrChunk {
    let mut appender = XorAppender::new();
    for &(t, v) in samples {
        appender.append(t, v).expect("append");
    }
    let data = appender.bytes();
    thanos::AggrChunk {
        min_time: samples.first().map_or(0, |s| s.0),
        max_time: samples.last().map_or(0, |s| s.0),
        raw: Some(thanos::Chunk {
            r#type: thanos::chunk::Encoding::Xor as i32,
            hash: xxhash_rust::xxh64::xxh64(&data, 0),
            data: data.into(),
        }),
        ..Default::default()
    }
}

fn series_iterator_penalty(
    name: String,
    chunks: Vec<thanos::AggrChunk>,
    mode: ChunkReadMode,
) -> Box<dyn SampleIterator + Send> {
    series_iterator(name, chunks, mode, DedupFunc::Penalty)
}

#[test]
fn chain_merges_every_sample_once() {
    let a = samples(0, 60_000, 15_000, |_| 1.0);
    let b = samples(5_000, 65_000, 15_000, |_| 2.0);
    let out = collect(series_iterator(
        "s".into(),
        vec![
            xor_chunk(&a),
            xor_chunk(&b),
            xor_chunk(&[(0, 1.0), (7_000, 3.0)]),
        ],
        ChunkReadMode::Average,
        DedupFunc::Chain,
    ));
    let timestamps: Vec<i64> = out.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        timestamps,
        vec![
            0, 5_000, 7_000, 15_000, 20_000, 30_000, 35_000, 45_000, 50_000, 60_000, 65_000
        ]
    );
    assert_eq!(DedupFunc::from_flag("chain"), DedupFunc::Chain);
    assert_eq!(DedupFunc::from_flag("penalty"), DedupFunc::Penalty);
}

fn collect(mut iterator: Box<dyn SampleIterator + Send>) -> Vec<(i64, f64)> {
    let mut out = Vec::new();
    while let Some(point) = iterator.next_sample().expect("sample") {
        out.push((point.t, point.v));
    }
    out
}

fn samples(from: i64, to: i64, step: i64, value: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
    (0..)
        .map(|i| from + i * step)
        .take_while(|t| *t <= to)
        .map(|t| (t, value(t)))
        .collect()
}

#[test]
fn one_replica_reads_all_chunks_in_order() {
    let first = samples(0, 60_000, 15_000, |t| t as f64);
    let second = samples(75_000, 120_000, 15_000, |t| t as f64);
    let iterator = series_iterator_penalty(
        "s".into(),
        vec![xor_chunk(&second), xor_chunk(&first)],
        ChunkReadMode::Average,
    );
    let expected: Vec<_> = first.iter().chain(&second).copied().collect();
    assert_eq!(collect(iterator), expected);
}

#[test]
fn seek_skips_chunks() {
    let first = samples(0, 60_000, 15_000, |t| t as f64);
    let second = samples(75_000, 120_000, 15_000, |t| t as f64);
    let mut iterator = ChunkIterator::new(
        "s".into(),
        vec![xor_chunk(&first), xor_chunk(&second)],
        ChunkReadMode::Average,
    );
    let point = iterator.seek(80_000).expect("seek").expect("point");
    assert_eq!((point.t, point.v), (90_000, 90_000.0));
    let next = iterator.next_sample().expect("next").expect("point");
    assert_eq!(next.t, 105_000);
}

/// Only the per-sample methods: `read_range` is the trait's default walk.
struct Walk(ChunkIterator);

impl SampleIterator for Walk {
    fn next_sample(&mut self) -> strata_promql::Result<Option<Point>> {
        self.0.next_sample()
    }

    fn seek(&mut self, ts: i64) -> strata_promql::Result<Option<Point>> {
        self.0.seek(ts)
    }
}

#[test]
fn read_range_equals_the_default_walk() {
    // Three chunks, the middle one overlapping the first (its older samples are dropped).
    let chunks = || {
        vec![
            xor_chunk(&samples(0, 60_000, 15_000, |t| t as f64)),
            xor_chunk(&samples(45_000, 150_000, 15_000, |t| -(t as f64))),
            xor_chunk(&samples(165_000, 300_000, 15_000, |t| t as f64 / 3.0)),
        ]
    };
    // A chunk whose declared bounds lie about its samples.
    let lying = || {
        let mut chunk = xor_chunk(&samples(0, 120_000, 15_000, |t| t as f64));
        chunk.max_time = 30_000;
        let mut second = xor_chunk(&samples(135_000, 300_000, 15_000, |t| t as f64));
        second.max_time = 140_000;
        vec![chunk, second]
    };
    let ranges = [
        (0, 300_000),
        (20_000, 200_000),
        (60_000, 60_000),
        (61_000, 74_000),
    ];
    let cases = ranges.into_iter().chain([(400_000, 500_000), (-10, 10)]);
    let sets: [(&dyn Fn() -> Vec<thanos::AggrChunk>, ChunkReadMode); 3] = [
        (&chunks, ChunkReadMode::Average),
        (&chunks, ChunkReadMode::Count),
        (&lying, ChunkReadMode::Average),
    ];
    for ((mint, maxt), (make, mode)) in cases.flat_map(|r| sets.map(|set| (r, set))) {
        let mut fast = ChunkIterator::new("s".into(), make(), mode);
        let mut walk = Walk(ChunkIterator::new("s".into(), make(), mode));
        let (mut got, mut want) = (Vec::new(), Vec::new());
        fast.read_range(mint, maxt, &mut got).expect("read");
        walk.read_range(mint, maxt, &mut want).expect("read");
        let pairs = |points: &[Point]| points.iter().map(|p| (p.t, p.v)).collect::<Vec<_>>();
        assert_eq!(pairs(&got), pairs(&want), "[{mint}, {maxt}]");
        // Both leave the iterator at the same place.
        let next = |it: &mut dyn SampleIterator| it.next_sample().expect("next").map(|p| p.t);
        assert_eq!(next(&mut fast), next(&mut walk), "after [{mint}, {maxt}]");
    }
}

#[test]
fn penalty_dedup_fills_a_gap_from_the_other_replica() {
    // Replica A scrapes at 0, 15s, ... but misses 60s..120s; replica B is offset by 5s.
    let a: Vec<_> = samples(0, 180_000, 15_000, |_| 1.0)
        .into_iter()
        .filter(|(t, _)| !(60_000..=120_000).contains(t))
        .collect();
    let b = samples(5_000, 185_000, 15_000, |_| 2.0);
    let a_chunks = vec![
        xor_chunk(&a[..4]), // 0..45s
        xor_chunk(&a[4..]), // 135s..180s
    ];
    let mut chunks = a_chunks;
    chunks.push(xor_chunk(&b));
    let out = collect(series_iterator_penalty(
        "s".into(),
        chunks,
        ChunkReadMode::Average,
    ));
    // Timestamps strictly increase and no two samples are closer than the scrape offset.
    assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "{out:?}");
    // Starts on A; after A's last sample (45s) B's samples within twice A's interval are
    // skipped (penalty 30s), so B takes over at 80s and, having no gap, keeps the series
    // instead of bouncing back to A at 135s.
    assert_eq!(out.first(), Some(&(0, 1.0)));
    assert!(out.contains(&(45_000, 1.0)), "{out:?}");
    assert!(!out.contains(&(50_000, 2.0)), "{out:?}");
    assert!(out.contains(&(80_000, 2.0)), "{out:?}");
    assert!(out.contains(&(185_000, 2.0)), "{out:?}");
    assert!(!out.contains(&(150_000, 1.0)), "{out:?}");
    // No sample pairs from both replicas within one scrape interval.
    assert!(out.windows(2).all(|w| w[1].0 - w[0].0 >= 10_000), "{out:?}");
}

#[test]
fn counter_switch_to_a_lower_replica_is_adjusted() {
    // A counts 100, 110, ... and stops at 45s; B is 50 lower throughout.
    let a = samples(0, 45_000, 15_000, |t| 100.0 + (t / 1_500) as f64);
    let b = samples(5_000, 120_000, 15_000, |t| 50.0 + (t / 1_500) as f64);
    let chunks = vec![xor_chunk(&a), xor_chunk(&b)];
    let counter = collect(series_iterator_penalty(
        "s".into(),
        chunks.clone(),
        ChunkReadMode::Counter,
    ));
    assert!(
        counter.windows(2).all(|w| w[1].1 >= w[0].1),
        "counter went down: {counter:?}"
    );
    let plain = collect(series_iterator_penalty(
        "s".into(),
        chunks,
        ChunkReadMode::Average,
    ));
    assert!(
        plain.windows(2).any(|w| w[1].1 < w[0].1),
        "without counter mode the switch shows as a reset: {plain:?}"
    );
}

#[test]
fn identical_chunks_from_two_stores_are_dropped() {
    let data = samples(0, 60_000, 15_000, |t| t as f64);
    let mut chunks = vec![xor_chunk(&data), xor_chunk(&data)];
    chunks[1].raw.as_mut().expect("raw").hash = 0;
    dedup_chunks(&mut chunks);
    assert_eq!(chunks.len(), 1);
    assert_eq!(overlap_split(chunks).len(), 1);
}

#[test]
fn average_of_downsampled_chunks() {
    let sums = xor_chunk(&[(300_000, 10.0), (600_000, 30.0)]);
    let counts = xor_chunk(&[(300_000, 2.0), (600_000, 3.0)]);
    let chunk = thanos::AggrChunk {
        min_time: 300_000,
        max_time: 600_000,
        sum: sums.raw,
        count: counts.raw,
        ..Default::default()
    };
    let mut out = Vec::new();
    decode_chunk(&chunk, ChunkReadMode::Average, &mut out).expect("decode");
    assert_eq!(out, vec![(300_000, 5.0), (600_000, 10.0)]);
    assert_eq!(
        ChunkReadMode::for_function(Some("rate")),
        ChunkReadMode::Counter
    );
    assert_eq!(
        ChunkReadMode::for_function(Some("sum")),
        ChunkReadMode::Average
    );
}

#[test]
fn corrupt_chunk_is_an_error_not_a_panic() {
    let chunk = thanos::AggrChunk {
        min_time: 0,
        max_time: 10,
        raw: Some(thanos::Chunk {
            r#type: 0,
            data: vec![0, 9, 1].into(),
            hash: 0,
        }),
        ..Default::default()
    };
    let mut iterator = series_iterator_penalty("s".into(), vec![chunk], ChunkReadMode::Average);
    let mut failed = false;
    for _ in 0..20 {
        match iterator.next_sample() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed);
}

#[test]
fn counter_aggregates_are_read_with_resets_applied() {
    // Two 5m aggregate chunks of a counter that reset between them: raw 1, 3, 5 | 1, 8, 10.
    // Each counter chunk holds its first raw value, the window totals and its last raw value.
    let aggregate = |counter: &[(i64, f64)]| thanos::AggrChunk {
        min_time: counter[1].0,
        max_time: counter[counter.len() - 1].0,
        counter: xor_chunk(counter).raw,
        ..Default::default()
    };
    let chunks = vec![
        aggregate(&[(10, 1.0), (30, 5.0), (30, 5.0)]),
        aggregate(&[(50, 1.0), (70, 10.0), (70, 10.0)]),
    ];
    let out = collect(series_iterator_penalty(
        "s".into(),
        chunks,
        ChunkReadMode::Counter,
    ));
    assert_eq!(out, vec![(10, 1.0), (30, 5.0), (50, 6.0), (70, 15.0)]);
}

#[test]
fn count_mode_reads_raw_samples_as_one_each() {
    let stale = f64::from_bits(strata_promql::value::STALE_NAN_BITS);
    let raw = xor_chunk(&[
        (1_000, 7.5),
        (2_000, -3.0),
        (3_000, stale),
        (4_000, f64::NAN),
    ]);
    let mut out = Vec::new();
    decode_chunk(&raw, ChunkReadMode::Count, &mut out).expect("decode");
    let values: Vec<u64> = out.iter().map(|(_, v)| v.to_bits()).collect();
    // A stale marker still ends the series; any other sample (NaN too) is one raw sample.
    assert_eq!(
        values,
        [
            1.0_f64.to_bits(),
            1.0_f64.to_bits(),
            stale.to_bits(),
            1.0_f64.to_bits()
        ]
    );
    // The other modes read raw values as they are.
    out.clear();
    decode_chunk(&raw, ChunkReadMode::Max, &mut out).expect("decode");
    assert_eq!(out[0], (1_000, 7.5));

    assert_eq!(
        ChunkReadMode::for_function(Some("count_over_time")).value_kind(),
        strata_promql::ValueKind::RawSampleCounts
    );
    assert_eq!(
        ChunkReadMode::for_function(Some("count")).value_kind(),
        strata_promql::ValueKind::RawSampleCounts
    );
    // count_values groups by value: it reads the average, not the count aggregate.
    assert_eq!(
        ChunkReadMode::for_function(Some("count_values")),
        ChunkReadMode::Average
    );
    assert_eq!(
        ChunkReadMode::for_function(Some("sum_over_time")).value_kind(),
        strata_promql::ValueKind::Observed
    );
}

/// A way to read a series, returning what it read.
type Operation = dyn Fn(&mut dyn SampleIterator) -> Vec<(i64, f64)>;

/// Series decoded ahead of the engine read exactly as the lazy iterator reads them (sample by
/// sample, by seeks and by ranges, leaving it at the same place); what cannot be decoded ahead
/// with that guarantee (overlapping replicas, lying chunk bounds, counter aggregates, too many
/// samples) is left to the lazy path.
#[test]
fn decoded_ahead_reads_like_the_lazy_iterator() {
    let plain = || {
        vec![
            xor_chunk(&samples(165_000, 300_000, 15_000, |t| t as f64 / 3.0)),
            xor_chunk(&samples(0, 60_000, 15_000, |t| t as f64)),
            xor_chunk(&samples(75_000, 150_000, 15_000, |t| -(t as f64))),
        ]
    };
    let operations: [&Operation; 5] = [
        &|it| {
            let mut out = Vec::new();
            while let Some(p) = it.next_sample().expect("next") {
                out.push((p.t, p.v));
            }
            out
        },
        &|it| {
            let mut out = Vec::new();
            for ts in [10_000, 10_000, 80_000, 299_999, 400_000] {
                out.extend(it.seek(ts).expect("seek").map(|p| (p.t, p.v)));
            }
            out
        },
        &|it| {
            let mut out = Vec::new();
            for (mint, maxt) in [(0, 59_000), (60_000, 60_000), (61_000, 200_000), (0, 10)] {
                let mut points = Vec::new();
                it.read_range(mint, maxt, &mut points).expect("read");
                out.extend(points.iter().map(|p| (p.t, p.v)));
                out.extend(it.next_sample().expect("next").map(|p| (-p.t, p.v)));
            }
            out
        },
        &|it| {
            let mut points = Vec::new();
            it.read_range(-10, 1_000_000, &mut points).expect("read");
            points.iter().map(|p| (p.t, p.v)).collect()
        },
        &|it| {
            let mut points = Vec::new();
            it.read_range(400_000, 500_000, &mut points).expect("read");
            points.iter().map(|p| (p.t, p.v)).collect()
        },
    ];
    for mode in [
        ChunkReadMode::Average,
        ChunkReadMode::Count,
        ChunkReadMode::Counter,
    ] {
        for operation in operations {
            let mut chunks = plain();
            let points =
                decode_ahead(&mut chunks, mode, i64::MIN, i64::MAX).expect("decoded ahead");
            let mut ahead = DecodedSamples::new(points);
            let mut lazy = series_iterator("s".into(), plain(), mode, DedupFunc::default());
            assert_eq!(operation(&mut ahead), operation(lazy.as_mut()), "{mode:?}");
        }
    }
    // A chunk whose timestamps repeat or go back: decoded ahead sample by sample, each one
    // not after the one before dropped as the lazy iterator drops it.
    let unordered = || {
        let mut chunks = plain();
        chunks.push(xor_chunk(&[
            (310_000, 1.0),
            (325_000, 2.0),
            (325_000, 3.0),
            (320_000, 4.0),
            (340_000, 5.0),
        ]));
        chunks
    };
    for operation in operations {
        let mut chunks = unordered();
        let points = decode_ahead(&mut chunks, ChunkReadMode::Average, i64::MIN, i64::MAX)
            .expect("decoded ahead");
        assert_eq!(points.len(), 24);
        let mut ahead = DecodedSamples::new(points);
        let mut lazy = series_iterator(
            "s".into(),
            unordered(),
            ChunkReadMode::Average,
            DedupFunc::default(),
        );
        assert_eq!(operation(&mut ahead), operation(lazy.as_mut()));
    }
    // Decoded for a select range: only the samples in it are kept (the engine reads no
    // others), and chunks wholly outside it are not even decoded.
    for (mint, maxt) in [
        (20_000, 200_000),
        (60_000, 165_000),
        (0, 300_000),
        (301_000, 400_000),
    ] {
        let mut chunks = plain();
        chunks.push(thanos::AggrChunk {
            min_time: 500_000,
            max_time: 600_000,
            raw: Some(thanos::Chunk {
                r#type: thanos::chunk::Encoding::Xor as i32,
                hash: 0,
                data: vec![0, 9, 0xff].into(),
            }),
            ..Default::default()
        });
        let points =
            decode_ahead(&mut chunks, ChunkReadMode::Average, mint, maxt).expect("decoded ahead");
        assert!(points.iter().all(|p| (mint..=maxt).contains(&p.t)));
        let mut taken = Vec::new();
        DecodedSamples::new(points)
            .read_range(mint, maxt, &mut taken)
            .expect("read");
        let mut want = Vec::new();
        series_iterator(
            "s".into(),
            plain(),
            ChunkReadMode::Average,
            DedupFunc::default(),
        )
        .read_range(mint, maxt, &mut want)
        .expect("read");
        assert_eq!(taken, want, "[{mint}, {maxt}]");
    }
    // Overlapping chunks: two replicas, merged by the dedup algorithm.
    let mut overlapping = plain();
    overlapping.push(xor_chunk(&samples(5_000, 65_000, 15_000, |t| t as f64)));
    assert!(decode_ahead(&mut overlapping, ChunkReadMode::Average, i64::MIN, i64::MAX).is_none());
    // A chunk whose samples run past its declared end.
    let mut lying = plain();
    lying[1].max_time = 30_000;
    assert!(decode_ahead(&mut lying, ChunkReadMode::Average, i64::MIN, i64::MAX).is_none());
    // Longer than the decode-ahead budget.
    let mut long: Vec<_> = (0..200)
        .map(|i| {
            xor_chunk(&samples(
                i * 1_800_000,
                i * 1_800_000 + 1_785_000,
                15_000,
                |t| t as f64,
            ))
        })
        .collect();
    assert!(decode_ahead(&mut long, ChunkReadMode::Average, i64::MIN, i64::MAX).is_none());
    // Counter aggregates of downsampled chunks take the counter-resetting reader.
    let mut aggregated = plain();
    if let Some(chunk) = aggregated.first_mut() {
        chunk.counter = chunk.raw.take();
    }
    assert!(decode_ahead(&mut aggregated, ChunkReadMode::Counter, i64::MIN, i64::MAX).is_none());
}
