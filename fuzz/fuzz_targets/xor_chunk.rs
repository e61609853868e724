//! Fuzz target: arbitrary bytes as the data of every chunk encoding Strata decodes: the XOR
//! iterator (driven all three ways), Thanos's aggregate chunk and the histogram chunk header.
//! Properties: no panic; the three ways agree; an iterator that stops early reports an error.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strata_tsdb::chunkenc::{AggrChunk, AggrType, HistogramChunkHeader, XorIterator};

/// Decode with `advance`/`at` and check it against `decode_into` and the `Iterator` impl.
fn check_xor(data: &[u8]) {
    let Ok(mut it) = XorIterator::new(data) else {
        assert!(
            data.len() < 2,
            "only a missing header fails at construction"
        );
        return;
    };
    let total = usize::from(it.num_samples());
    let mut by_advance = Vec::new();
    while it.advance() {
        by_advance.push(it.at());
    }
    assert!(by_advance.len() <= total);
    assert_eq!(it.err().is_some(), by_advance.len() < total);
    assert!(!it.advance(), "iteration stays finished");

    let mut by_decode_into = Vec::new();
    let result = XorIterator::new(data)
        .expect("header checked above")
        .decode_into(&mut by_decode_into);
    assert_eq!(result.is_err(), by_advance.len() < total);

    let mut by_iterator = Vec::new();
    let mut errors = 0;
    for sample in XorIterator::new(data).expect("header checked above") {
        match sample {
            Ok(sample) => by_iterator.push(sample),
            Err(_) => errors += 1,
        }
    }
    assert!(
        errors <= 1,
        "an error is reported once, then iteration ends"
    );
    for other in [&by_decode_into, &by_iterator] {
        assert_eq!(other.len(), by_advance.len());
        for (a, b) in other.iter().zip(&by_advance) {
            assert_eq!((a.0, a.1.to_bits()), (b.0, b.1.to_bits()));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_xor(data);
    let _ = HistogramChunkHeader::decode(data);
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(aggr) = AggrChunk::decode(&bytes) {
        for kind in [
            AggrType::Count,
            AggrType::Sum,
            AggrType::Min,
            AggrType::Max,
            AggrType::Counter,
        ] {
            if let Some(chunk) = aggr.get(kind) {
                check_xor(&chunk.data);
            }
        }
        // What was decoded re-encodes to something that decodes the same.
        let again = AggrChunk::decode(&Bytes::from(aggr.encode())).expect("re-encoded aggr chunk");
        assert_eq!(format!("{again:?}"), format!("{aggr:?}"));
    }
});
