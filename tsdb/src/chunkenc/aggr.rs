//! Thanos's aggregate chunk (encoding 0xFF), the chunk of downsampled blocks.
//!
//! Payload (thanos.md §6.6): for count, sum, min, max, counter in that order,
//! `uvarint(len(data))` then, when the length is non-zero, one encoding byte and `data`
//! (an XOR or float-histogram chunk). A zero length means the aggregate is absent.

use bytes::{BufMut, Bytes};

use super::{Chunk, Encoding, put_uvarint};
use crate::encoding::Decbuf;
use crate::{Error, Result};

/// The aggregates of a downsampled chunk, in their on-disk order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggrType {
    /// Number of raw samples per window.
    Count = 0,
    /// Sum of the raw values per window.
    Sum = 1,
    /// Minimum per window.
    Min = 2,
    /// Maximum per window.
    Max = 3,
    /// Counter value with resets applied.
    Counter = 4,
}

impl AggrType {
    /// All aggregates in on-disk order.
    pub const ALL: [AggrType; 5] = [
        AggrType::Count,
        AggrType::Sum,
        AggrType::Min,
        AggrType::Max,
        AggrType::Counter,
    ];
}

/// A decoded aggregate chunk: one optional sub-chunk per [`AggrType`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AggrChunk {
    chunks: [Option<Chunk>; 5],
}

impl AggrChunk {
    /// Build from sub-chunks indexed by [`AggrType`] order.
    pub fn new(chunks: [Option<Chunk>; 5]) -> Self {
        AggrChunk { chunks }
    }

    /// The sub-chunk of one aggregate, if present.
    pub fn get(&self, aggr: AggrType) -> Option<&Chunk> {
        self.chunks.get(aggr as usize).and_then(Option::as_ref)
    }

    /// Decode the payload of an 0xFF chunk. Sub-chunk data is sliced from `data`, not copied.
    pub fn decode(data: &Bytes) -> Result<Self> {
        let mut chunks: [Option<Chunk>; 5] = Default::default();
        let mut buf = Decbuf::new(data, "aggr chunk", 0);
        for slot in chunks.iter_mut() {
            if buf.is_empty() {
                // Tolerate trailing absent aggregates without their zero length.
                break;
            }
            let len = buf.uvarint_usize()?;
            if len == 0 {
                continue;
            }
            let encoding = Encoding::from_u8(buf.byte()?);
            let start = buf.position();
            buf.skip(len)?;
            *slot = Some(Chunk::new(encoding, data.slice(start..start + len)));
        }
        if !buf.is_empty() {
            return Err(Error::corrupt(
                "aggr chunk",
                buf.position() as u64,
                format!("{} trailing bytes", buf.remaining()),
            ));
        }
        Ok(AggrChunk { chunks })
    }

    /// Encode as the payload of an 0xFF chunk.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut varint = [0u8; 10];
        for chunk in &self.chunks {
            match chunk {
                None => out.push(0),
                Some(chunk) => {
                    let n = put_uvarint(&mut varint, chunk.data.len() as u64);
                    out.extend_from_slice(&varint[..n]);
                    out.put_u8(chunk.encoding.to_u8());
                    out.extend_from_slice(&chunk.data);
                }
            }
        }
        out
    }

    /// This aggregate chunk as a [`Chunk`] with encoding 0xFF.
    pub fn to_chunk(&self) -> Chunk {
        Chunk::new(Encoding::Aggr, self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunkenc::XorAppender;

    fn xor(samples: &[(i64, f64)]) -> Chunk {
        let mut app = XorAppender::new();
        for &(t, v) in samples {
            app.append(t, v).unwrap();
        }
        Chunk::new(Encoding::Xor, app.bytes())
    }

    #[test]
    fn round_trips_with_absent_aggregates() {
        let count = xor(&[(299_999, 5.0)]);
        let sum = xor(&[(299_999, 15.0)]);
        let counter = xor(&[(0, 1.0), (299_999, 7.0), (299_999, 7.0)]);
        let aggr = AggrChunk::new([
            Some(count.clone()),
            Some(sum),
            None,
            None,
            Some(counter.clone()),
        ]);
        let bytes = Bytes::from(aggr.encode());
        let decoded = AggrChunk::decode(&bytes).unwrap();
        assert_eq!(decoded, aggr);
        assert_eq!(decoded.get(AggrType::Count), Some(&count));
        assert_eq!(decoded.get(AggrType::Min), None);
        let values: Vec<_> = decoded
            .get(AggrType::Counter)
            .unwrap()
            .xor_iter()
            .unwrap()
            .map(|s| s.unwrap().1)
            .collect();
        assert_eq!(values, [1.0, 7.0, 7.0]);
    }

    #[test]
    fn rejects_overlong_lengths() {
        let bytes = Bytes::from_static(&[5, 1, 0, 1]);
        assert!(AggrChunk::decode(&bytes).is_err());
    }
}
