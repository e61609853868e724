//! Chunk encodings: the [`Encoding`] byte, the [`Chunk`] value (encoding + data bytes), the XOR
//! float codec ([`XorAppender`], [`XorIterator`]), the histogram chunk header (enough to count
//! and skip histogram chunks) and Thanos's aggregate chunk ([`AggrChunk`], encoding 0xFF) used in
//! downsampled blocks.
//!
//! Reference: prometheus.md §2 (Prometheus `tsdb/chunkenc`), thanos.md §6.6.

mod aggr;
mod histogram;
mod xor;

pub use aggr::{AggrChunk, AggrType};
pub use histogram::{CounterResetHeader, HistogramChunkHeader};
pub use xor::{MAX_SAMPLES, XorAppender, XorIterator, put_uvarint, put_varint};

use bytes::Bytes;

use crate::{Error, Result};

/// The encoding byte stored before every chunk in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// 0: no encoding (never in blocks).
    None,
    /// 1: XOR float chunk.
    Xor,
    /// 2: integer native histogram chunk.
    Histogram,
    /// 3: float native histogram chunk.
    FloatHistogram,
    /// 0xFF: Thanos's aggregate chunk of downsampled blocks.
    Aggr,
    /// Anything else (newer Prometheus encodings such as XOR2 = 4).
    Unknown(u8),
}

impl Encoding {
    /// Decode the byte.
    pub fn from_u8(byte: u8) -> Encoding {
        match byte {
            0 => Encoding::None,
            1 => Encoding::Xor,
            2 => Encoding::Histogram,
            3 => Encoding::FloatHistogram,
            0xFF => Encoding::Aggr,
            other => Encoding::Unknown(other),
        }
    }

    /// The byte.
    pub fn to_u8(self) -> u8 {
        match self {
            Encoding::None => 0,
            Encoding::Xor => 1,
            Encoding::Histogram => 2,
            Encoding::FloatHistogram => 3,
            Encoding::Aggr => 0xFF,
            Encoding::Unknown(other) => other,
        }
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Encoding::None => f.write_str("none"),
            Encoding::Xor => f.write_str("XOR"),
            Encoding::Histogram => f.write_str("histogram"),
            Encoding::FloatHistogram => f.write_str("floathistogram"),
            Encoding::Aggr => f.write_str("aggr"),
            Encoding::Unknown(byte) => write!(f, "<unknown {byte}>"),
        }
    }
}

/// One chunk: its encoding and its data bytes (without length prefix and CRC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// How `data` is encoded.
    pub encoding: Encoding,
    /// The encoded data.
    pub data: Bytes,
}

impl Chunk {
    /// A chunk from parts.
    pub fn new(encoding: Encoding, data: impl Into<Bytes>) -> Self {
        Chunk {
            encoding,
            data: data.into(),
        }
    }

    /// Number of samples, from the header (XOR and histogram chunks); `None` for encodings
    /// without a sample count (aggregate chunks) or a too-short header.
    pub fn num_samples(&self) -> Option<u16> {
        match self.encoding {
            Encoding::Xor | Encoding::Histogram | Encoding::FloatHistogram => {
                let header = self.data.get(0..2)?;
                Some(u16::from_be_bytes([header[0], header[1]]))
            }
            _ => None,
        }
    }

    /// Iterate the float samples of an XOR chunk.
    pub fn xor_iter(&self) -> Result<XorIterator<'_>> {
        match self.encoding {
            Encoding::Xor => XorIterator::new(&self.data),
            other => Err(Error::UnsupportedEncoding {
                encoding: other.to_u8(),
            }),
        }
    }
}
