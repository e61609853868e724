//! Fuzz target: arbitrary bytes as a chunk segment file. It is scanned from the header chunk by
//! chunk with `decode_chunk`, and read at random offsets through `ChunkReader` (as the index's
//! chunk references would); every chunk found is decoded. The scan and the reader must agree.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strata_tsdb::chunkenc::{AggrChunk, Chunk, Encoding};
use strata_tsdb::chunks::{ChunkReader, ChunkRef, check_segment_header, decode_chunk};
use strata_tsdb::source::ByteSource;

fn exercise(chunk: &Chunk) {
    let _ = chunk.num_samples();
    match chunk.encoding {
        Encoding::Xor => {
            if let Ok(mut it) = chunk.xor_iter() {
                while it.advance() {
                    let _ = it.at();
                }
            }
        }
        Encoding::Aggr => {
            let _ = AggrChunk::decode(&chunk.data);
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let mut scanned = Vec::new();
    if check_segment_header(data).is_ok() {
        let mut offset = 8usize;
        while offset < data.len() && scanned.len() < 256 {
            match decode_chunk(&bytes.slice(offset..), offset as u64) {
                Ok(Some((chunk, span))) => {
                    assert!(span > 0 && offset + span <= data.len());
                    exercise(&chunk);
                    scanned.push((offset, chunk));
                    offset += span;
                }
                _ => break,
            }
        }
    }

    let source: Box<dyn ByteSource> = Box::new(bytes.clone());
    let Ok(reader) = ChunkReader::new(vec![("000001".to_string(), source)]) else {
        assert!(scanned.is_empty(), "the scan saw a valid header");
        return;
    };
    for (offset, chunk) in &scanned {
        let read = reader
            .chunk(ChunkRef::new(0, *offset as u32))
            .expect("a chunk the scan decoded reads back");
        assert_eq!(&read, chunk);
    }
    // Arbitrary references, as a corrupt index would give.
    for offset in (0..data.len().min(512)).chain([data.len(), u32::MAX as usize]) {
        if let Ok(chunk) = reader.chunk(ChunkRef::new(0, offset as u32)) {
            exercise(&chunk);
        }
    }
    assert!(reader.chunk(ChunkRef::new(1, 8)).is_err());
});
