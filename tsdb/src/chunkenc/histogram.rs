//! Native histogram chunk headers (encodings 2 and 3).
//!
//! Strata targets Prometheus 2.42 semantics where `promtool tsdb dump` stops a series at its first
//! histogram sample and classic histograms are ordinary float series; full native-histogram
//! decoding is not needed to serve or rewrite such blocks (their chunks are copied as bytes).
//! This module reads the 3-byte header so histogram chunks can be counted and skipped.

use crate::{Error, Result};

/// The counter-reset hint in the top two bits of the histogram chunk's flags byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterResetHeader {
    /// `00`: unknown.
    Unknown,
    /// `01`: no counter reset since the previous chunk.
    NotCounterReset,
    /// `10`: a counter reset happened.
    CounterReset,
    /// `11`: gauge histogram.
    GaugeType,
}

/// The header of a histogram or float histogram chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistogramChunkHeader {
    /// Number of samples in the chunk.
    pub num_samples: u16,
    /// The counter-reset hint.
    pub counter_reset: CounterResetHeader,
}

impl HistogramChunkHeader {
    /// Decode the header of histogram chunk data.
    pub fn decode(data: &[u8]) -> Result<Self> {
        let [high, low, flags, ..] = *data else {
            return Err(Error::corrupt(
                "histogram chunk",
                0,
                "chunk shorter than its 3-byte header",
            ));
        };
        let counter_reset = match flags >> 6 {
            0b00 => CounterResetHeader::Unknown,
            0b01 => CounterResetHeader::NotCounterReset,
            0b10 => CounterResetHeader::CounterReset,
            _ => CounterResetHeader::GaugeType,
        };
        Ok(HistogramChunkHeader {
            num_samples: u16::from_be_bytes([high, low]),
            counter_reset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_header() {
        let header = HistogramChunkHeader::decode(&[0, 7, 0b1100_0000, 1]).unwrap();
        assert_eq!(header.num_samples, 7);
        assert_eq!(header.counter_reset, CounterResetHeader::GaugeType);
        assert!(HistogramChunkHeader::decode(&[0, 7]).is_err());
    }
}
