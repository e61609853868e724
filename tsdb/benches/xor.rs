//! XOR chunk encode and decode throughput (samples per second) on realistic data: 120-sample
//! chunks at a 15s scrape interval with occasional jitter, counters and float gauges.

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use strata_tsdb::chunkenc::{XorAppender, XorIterator};

const CHUNKS: usize = 1000;
const SAMPLES: usize = 120;

/// Mixed data: half counters with random increments, half gauges with random values (the hard
/// case: most values need a new XOR window).
fn series(seed: u64) -> Vec<Vec<(i64, f64)>> {
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..CHUNKS)
        .map(|c| {
            let mut t = 1_700_000_000_000i64 + c as i64 * 1000;
            let mut v = (next() % 1000) as f64;
            (0..SAMPLES)
                .map(|_| {
                    t += 15_000
                        + if next() % 10 == 0 {
                            (next() % 5) as i64
                        } else {
                            0
                        };
                    if c % 2 == 0 {
                        v += (next() % 10) as f64; // counter
                    } else {
                        v = (next() % 100_000) as f64 / 7.0; // gauge
                    }
                    (t, v)
                })
                .collect()
        })
        .collect()
}

/// Regular scrapes of steadily growing counters and unchanged gauges: the common case in
/// real blocks (1-bit timestamps, small or empty value deltas).
fn regular_series() -> Vec<Vec<(i64, f64)>> {
    (0..CHUNKS)
        .map(|c| {
            (0..SAMPLES)
                .map(|i| {
                    let t = 1_700_000_000_000 + i as i64 * 15_000;
                    let v = if c % 2 == 0 { (i * 60) as f64 } else { 42.0 };
                    (t, v)
                })
                .collect()
        })
        .collect()
}

fn bench_xor(c: &mut Criterion) {
    bench_data(c, "xor_mixed", series(0x9E37_79B9_7F4A_7C15));
    bench_data(c, "xor_regular", regular_series());
}

fn bench_data(c: &mut Criterion, name: &str, data: Vec<Vec<(i64, f64)>>) {
    let chunks: Vec<Vec<u8>> = data
        .iter()
        .map(|samples| {
            let mut app = XorAppender::new();
            for &(t, v) in samples {
                app.append(t, v).expect("append");
            }
            app.bytes()
        })
        .collect();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements((CHUNKS * SAMPLES) as u64));
    group.bench_function("encode", |b| {
        b.iter(|| {
            let mut total = 0;
            for samples in &data {
                let mut app = XorAppender::new();
                for &(t, v) in samples {
                    app.append(t, v).expect("append");
                }
                total += app.bytes().len();
            }
            black_box(total)
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut sum = 0i64;
            for chunk in &chunks {
                let mut it = XorIterator::new(chunk).expect("header");
                while it.advance() {
                    let (t, v) = it.at();
                    sum = sum.wrapping_add(t ^ v.to_bits() as i64);
                }
            }
            black_box(sum)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_xor);
criterion_main!(benches);
