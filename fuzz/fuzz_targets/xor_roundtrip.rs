//! Fuzz target: samples built from the input are XOR-encoded and decoded back bit-exactly, and
//! truncating the encoding never yields wrong samples.
//!
//! Each 17-byte record is one sample: a selector byte, 8 timestamp bytes and 8 value bytes. The
//! selector shifts the timestamp step right (small steps reach every delta-of-delta bucket) and
//! can repeat the previous value (the unchanged-value path).

#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_tsdb::chunkenc::{MAX_SAMPLES, XorAppender, XorIterator};

fn samples(data: &[u8]) -> Vec<(i64, f64)> {
    let mut out: Vec<(i64, f64)> = Vec::new();
    let mut t = 0i64;
    for record in data.chunks_exact(17).take(usize::from(MAX_SAMPLES)) {
        let selector = record[0];
        let raw_t = i64::from_be_bytes(record[1..9].try_into().expect("8 bytes"));
        let raw_v = u64::from_be_bytes(record[9..17].try_into().expect("8 bytes"));
        t = t.wrapping_add(raw_t >> (selector & 63));
        let v = match out.last() {
            Some(&(_, previous)) if selector & 0x40 != 0 => previous,
            _ => f64::from_bits(raw_v),
        };
        out.push((t, v));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let samples = samples(data);
    let mut appender = XorAppender::new();
    for &(t, v) in &samples {
        appender.append(t, v).expect("below the sample limit");
    }
    let bytes = appender.bytes();
    assert_eq!(bytes.len(), appender.len());
    assert_eq!(usize::from(appender.num_samples()), samples.len());

    let mut decoded = Vec::new();
    XorIterator::new(&bytes)
        .expect("header")
        .decode_into(&mut decoded)
        .expect("own encoding decodes");
    assert_eq!(decoded.len(), samples.len());
    for (got, want) in decoded.iter().zip(&samples) {
        assert_eq!((got.0, got.1.to_bits()), (want.0, want.1.to_bits()));
    }

    // A truncated chunk decodes a prefix of the samples and then fails, unless the cut only
    // removed padding (then everything is still there).
    for cut in [bytes.len() / 2, bytes.len().saturating_sub(2)] {
        let Some(prefix) = bytes.get(..cut) else {
            continue;
        };
        let Ok(mut it) = XorIterator::new(prefix) else {
            continue;
        };
        let mut n = 0;
        while it.advance() {
            let (t, v) = it.at();
            assert_eq!((t, v.to_bits()), (samples[n].0, samples[n].1.to_bits()));
            n += 1;
        }
        assert_eq!(it.err().is_some(), n < samples.len());
    }
});
