//! The XOR (Gorilla) float chunk: [`XorAppender`] encodes, [`XorIterator`] decodes.
//!
//! Layout (Prometheus `tsdb/chunkenc/xor.go`, reference prometheus.md §2.2): u16 sample count,
//! then sample 0 as varint t + 64 raw value bits, sample 1 as uvarint Δt + XOR value, later samples
//! as a delta-of-delta bucket (`0`, `10`+14, `110`+17, `1110`+20, `1111`+64 bits) + XOR value.
//!
//! Byte compatibility with 2.42: its bit stream appends a spare zero byte whenever a whole-byte
//! write starts on a byte boundary, and the spare stays in the chunk when the stream ends right
//! there (every 1-sample chunk ends so). [`XorAppender`] reproduces that (see
//! [`XorAppender::bytes`]) and [`XorIterator`] decodes by sample count, never by length.
//!
//! Speed: the appender makes two writes per sample ([`BitWriter`]): the timestamp bucket prefix
//! and payload together with the value's control bits, then the value bits. The iterator
//! ([`BitReader`]) refills 56+ bits per 8-byte load (one per sample, two for a changed value),
//! checks for truncation once per sample instead of once per read, and chooses the value window
//! with selects (that choice flips unpredictably on real data). The first two samples (byte-aligned varints) take an
//! out-of-line path that takes and returns the decoder state by value, so the hot loop's state
//! stays in registers. Measured and rejected: branch-free delta-of-delta decoding and branch-free
//! 64-bit reads; both lengthen the dependency chain through the bit buffer by more than the
//! mispredictions they save, and are 25-45% slower even on jittery data.

use crate::encoding::{BitReader, BitWriter, Decbuf};
use crate::{Error, Result};

/// Most samples one XOR chunk can hold (the count is a u16 and 2.42 refuses the 65536th).
pub const MAX_SAMPLES: u16 = u16::MAX;

const SECTION: &str = "xor chunk";

#[inline(always)]
fn low_bits(value: u64, n: u32) -> u64 {
    value & ((1u64 << n) - 1)
}

/// Encodes samples into an XOR chunk exactly as Prometheus 2.42 does.
#[derive(Debug, Clone)]
pub struct XorAppender {
    writer: BitWriter,
    /// Kept as u32 (at most `MAX_SAMPLES`): the hot path increments and re-reads it every
    /// sample, and a u16 field invited a wider load of a narrower store, which the CPU cannot
    /// forward from its store buffer (a stall of about 15 cycles per sample).
    num_samples: u32,
    t: i64,
    t_delta: u64,
    value_bits: u64,
    /// Current XOR window; `leading` 0xFF means "no window yet" (no clamped count reaches it).
    leading: u32,
    trailing: u32,
    /// 2.42's bstream ends with a spare zero byte: the last write was whole bytes starting on a
    /// byte boundary.
    spare_byte: bool,
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl XorAppender {
    /// An empty chunk.
    pub fn new() -> Self {
        let mut writer = BitWriter::with_capacity(128);
        // The two header bytes hold the sample count, filled in by `bytes()`.
        writer.write_bytes(&[0, 0]);
        XorAppender {
            writer,
            num_samples: 0,
            t: 0,
            t_delta: 0,
            value_bits: 0,
            leading: 0xFF,
            trailing: 0,
            spare_byte: false,
        }
    }

    /// Number of samples appended so far.
    pub fn num_samples(&self) -> u16 {
        u16::try_from(self.num_samples).unwrap_or(MAX_SAMPLES)
    }

    /// Timestamp of the last sample appended (0 when empty).
    pub fn last_timestamp(&self) -> i64 {
        self.t
    }

    /// Size in bytes of the chunk data as [`XorAppender::bytes`] would return it.
    pub fn len(&self) -> usize {
        self.writer.bit_len().div_ceil(8) + usize::from(self.spare_byte)
    }

    /// True when no sample was appended.
    pub fn is_empty(&self) -> bool {
        self.num_samples == 0
    }

    /// Append one sample. Timestamps should increase; the encoding does not check (as upstream).
    #[inline]
    pub fn append(&mut self, t: i64, v: f64) -> Result<()> {
        if self.num_samples >= 2 && self.num_samples < u32::from(MAX_SAMPLES) {
            self.append_later(t, v.to_bits());
            self.t = t;
            self.num_samples += 1;
            return Ok(());
        }
        self.append_head(t, v)
    }

    /// The first two samples (byte-aligned varints) and the full-chunk error.
    #[inline(never)]
    fn append_head(&mut self, t: i64, v: f64) -> Result<()> {
        if self.num_samples >= u32::from(MAX_SAMPLES) {
            return Err(Error::InvalidInput {
                writer: "xor appender",
                detail: format!("chunk already holds {MAX_SAMPLES} samples"),
            });
        }
        let bits = v.to_bits();
        let mut buf = [0u8; 10];
        match self.num_samples {
            0 => {
                let n = put_varint(&mut buf, t);
                self.writer.write_bytes(buf.get(..n).unwrap_or(&[]));
                self.writer.write_bits(bits, 64);
                self.spare_byte = true;
                self.value_bits = bits;
            }
            1 => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                let n = put_uvarint(&mut buf, t_delta);
                self.writer.write_bytes(buf.get(..n).unwrap_or(&[]));
                self.spare_byte = true;
                self.write_value(bits, 0, 0);
                self.t_delta = t_delta;
            }
            _ => self.append_later(t, bits),
        }
        self.t = t;
        self.num_samples += 1;
        Ok(())
    }

    /// Sample 2 onwards: delta-of-delta timestamp, then the XOR value.
    #[inline(always)]
    fn append_later(&mut self, t: i64, bits: u64) {
        let t_delta = t.wrapping_sub(self.t) as u64;
        let dod = (t_delta as i64).wrapping_sub(self.t_delta as i64);
        self.t_delta = t_delta;
        // The bucket prefix and payload as one field (<= 24 bits), written together with the
        // value's control bits.
        let (field, width) = if dod == 0 {
            (0, 1)
        } else if bit_range(dod, 14) {
            ((0b10 << 14) | low_bits(dod as u64, 14), 16)
        } else if bit_range(dod, 17) {
            ((0b110 << 17) | low_bits(dod as u64, 17), 20)
        } else if bit_range(dod, 20) {
            ((0b1110 << 20) | low_bits(dod as u64, 20), 24)
        } else {
            self.writer.write_bits(0b1111, 4);
            self.writer.write_bits(dod as u64, 64);
            (0, 0)
        };
        self.write_value(bits, field, width);
    }

    /// Go's `xorWrite`, after the `width` (<= 24) bits of `prefix`.
    #[inline(always)]
    fn write_value(&mut self, bits: u64, prefix: u64, width: u32) {
        let delta = bits ^ self.value_bits;
        self.value_bits = bits;
        if delta == 0 {
            self.writer.write_bits(prefix << 1, width + 1);
            self.spare_byte = false;
            return;
        }
        let leading = delta.leading_zeros().min(31);
        let trailing = delta.trailing_zeros();
        // Reuse the window when the new significant bits fall inside it. With no window yet,
        // `self.leading` is 0xFF and this is false. Selects, not branches: on real data the
        // choice flips unpredictably.
        let reuse = leading >= self.leading && trailing >= self.trailing;
        let new_sig = 64 - leading - trailing;
        // `11`, 5 bits of leading zeros, 6 bits of significant bits (64 is written as 0).
        let new_control = (0b11 << 11) | (u64::from(leading) << 6) | u64::from(new_sig & 63);
        let (control, control_width) = if reuse { (0b10, 2) } else { (new_control, 13) };
        self.leading = if reuse { self.leading } else { leading };
        self.trailing = if reuse { self.trailing } else { trailing };
        self.writer
            .write_bits((prefix << control_width) | control, width + control_width);
        let sig = 64 - self.leading - self.trailing;
        // 2.42 leaves a spare byte when this, the chunk's last write so far, is whole bytes
        // starting on a byte boundary (see the module docs).
        self.spare_byte = self.writer.is_byte_aligned() && sig.is_multiple_of(8);
        self.writer.write_bits(delta >> self.trailing, sig);
    }

    /// The chunk data as 2.42 would store it (count header, bit stream, 2.42's spare byte).
    pub fn bytes(&self) -> Vec<u8> {
        let mut bytes = self.writer.to_bytes(1);
        if let Some(header) = bytes.get_mut(0..2) {
            header.copy_from_slice(&self.num_samples().to_be_bytes());
        }
        if self.spare_byte {
            bytes.push(0);
        }
        bytes
    }
}

/// Go's `bitRange`: can `x` be stored in `nbits` bits with the XOR chunk's decoding rule,
/// i.e. `-(2^(nbits-1) - 1) <= x <= 2^(nbits-1)`? Shifted into one unsigned comparison.
#[inline(always)]
fn bit_range(x: i64, nbits: u32) -> bool {
    let half = 1i64 << (nbits - 1);
    (x.wrapping_add(half - 1) as u64) < (1u64 << nbits)
}

/// Go `binary.PutVarint`: zigzag then uvarint. Returns bytes written.
pub fn put_varint(buf: &mut [u8; 10], value: i64) -> usize {
    put_uvarint(buf, ((value << 1) ^ (value >> 63)) as u64)
}

/// Go `binary.PutUvarint`. Returns bytes written.
pub fn put_uvarint(buf: &mut [u8; 10], mut value: u64) -> usize {
    let mut i = 0;
    while value >= 0x80 && i < 9 {
        buf[i] = (value as u8) | 0x80;
        value >>= 7;
        i += 1;
    }
    buf[i] = value as u8;
    i + 1
}

/// The decoder's state after a sample: the bit stream position and what the next sample is
/// relative to. `Copy` so the out-of-line head path can take and return it by value, which
/// lets the compiler keep the hot loop's copy in registers.
#[derive(Debug, Clone, Copy)]
struct DecodeState<'a> {
    reader: BitReader<'a>,
    t: i64,
    t_delta: i64,
    value_bits: u64,
    leading: u32,
    trailing: u32,
}

impl DecodeState<'_> {
    /// Sample 2 onwards. False on an invalid value window (truncation is checked by the caller).
    #[inline(always)]
    fn read_later(&mut self) -> bool {
        // One refill serves the timestamp (<= 24 bits unless the rare 64-bit case, which
        // refills itself) and the value's control bits (<= 13).
        self.reader.refill();
        if self.reader.peek() >> 63 == 0 {
            // The common case: same interval as before.
            self.reader.consume(1);
        } else {
            let dod = self.read_dod();
            self.t_delta = self.t_delta.wrapping_add(dod);
        }
        self.t = self.t.wrapping_add(self.t_delta);
        self.read_value()
    }

    /// A non-zero delta-of-delta: `10`+14, `110`+17, `1110`+20 or `1111`+64 bits. The buffer
    /// holds at least 56 bits.
    #[inline(always)]
    fn read_dod(&mut self) -> i64 {
        let ones = self.reader.peek().leading_ones();
        if ones < 4 {
            let width = 11 + 3 * ones;
            self.reader.consume(ones + 1);
            let raw = self.reader.take(width);
            // The field is the low `width` bits of the two's complement; values above half
            // the range are negative.
            let negative = raw > (1u64 << (width - 1));
            raw as i64 - (i64::from(negative) << width)
        } else {
            self.reader.consume(4);
            self.reader.read_bits(64) as i64
        }
    }

    /// Go's `xorRead`: `0` unchanged, `10` + bits in the current window, `11` + 5 bits of
    /// leading zeros + 6 bits of significant bits (0 means 64) + the bits. The buffer must hold
    /// at least 13 bits.
    #[inline(always)]
    fn read_value(&mut self) -> bool {
        let control = self.reader.peek();
        if control >> 63 == 0 {
            self.reader.consume(1);
            return true;
        }
        // Selects, not branches, between reusing the window and a new one: on real data the
        // choice flips unpredictably.
        let new_window = control & (1 << 62) != 0;
        let new_leading = ((control >> 57) & 31) as u32;
        let new_sig = match ((control >> 51) & 63) as u32 {
            0 => 64,
            sig => sig,
        };
        // A corrupt stream can claim more bits than a u64 holds.
        if new_window && new_leading + new_sig > 64 {
            return false;
        }
        self.leading = if new_window {
            new_leading
        } else {
            self.leading
        };
        self.trailing = if new_window {
            64 - new_leading - new_sig
        } else {
            self.trailing
        };
        self.reader.consume(if new_window { 13 } else { 2 });
        // 1 <= sig <= 64, so trailing <= 63.
        let sig = 64 - self.leading - self.trailing;
        // The refill before the timestamp left at least 56 - 1 - 13 = 42 bits: most values'
        // significant bits are already buffered, and skipping the refill keeps its load off
        // the chain from one sample to the next.
        let bits = if sig <= self.reader.buffered() {
            self.reader.take(sig)
        } else {
            self.reader.read_bits(sig)
        };
        self.value_bits ^= bits << self.trailing;
        true
    }
}

/// Samples 0 and 1, which are byte-aligned: `read` says which. Returns the new state and the
/// byte position after the sample, or `None` on malformed or truncated data.
#[inline(never)]
fn read_head<'a>(
    data: &'a [u8],
    head_pos: usize,
    mut state: DecodeState<'a>,
    read: u32,
) -> Option<(DecodeState<'a>, usize)> {
    let mut buf = Decbuf::new(data, SECTION, 0);
    buf.skip(head_pos).ok()?;
    if read == 0 {
        state.t = buf.varint().ok()?;
        state.value_bits = buf.be_u64().ok()?;
        return Some((state, buf.position()));
    }
    state.t_delta = buf.uvarint().ok()? as i64;
    state.t = state.t.wrapping_add(state.t_delta);
    state.reader = BitReader::new(data, buf.position());
    state.reader.refill();
    state.read_value().then_some((state, buf.position()))
}

/// Decodes an XOR chunk's samples, by the sample count in its header.
///
/// Yields `Ok((t, v))` per sample; a malformed stream yields one `Err` and then ends.
#[derive(Debug, Clone)]
pub struct XorIterator<'a> {
    data: &'a [u8],
    state: DecodeState<'a>,
    /// Byte position of the next varint while reading samples 0 and 1.
    head_pos: usize,
    total: u16,
    /// Samples decoded so far. u32 like `end` (both at most `total`) so the per-sample
    /// increment and compare stay plain 32-bit operations.
    read: u32,
    /// Where iteration stops: `total`, or the failing sample.
    end: u32,
    failed: bool,
}

impl<'a> XorIterator<'a> {
    /// Start decoding chunk data (the bytes after the encoding byte).
    pub fn new(data: &'a [u8]) -> Result<Self> {
        let [high, low, ..] = *data else {
            return Err(Error::corrupt(
                SECTION,
                0,
                "chunk shorter than its 2-byte header",
            ));
        };
        let total = u16::from_be_bytes([high, low]);
        Ok(XorIterator {
            data,
            state: DecodeState {
                reader: BitReader::new(data, 2),
                t: 0,
                t_delta: 0,
                value_bits: 0,
                leading: 0,
                trailing: 0,
            },
            head_pos: 2,
            total,
            read: 0,
            end: u32::from(total),
            failed: false,
        })
    }

    /// Number of samples the header announces.
    pub fn num_samples(&self) -> u16 {
        self.total
    }

    /// Go-style iteration (`Next()`/`At()`/`Err()`), the fastest way to decode: move to the
    /// next sample and return true, or return false at the end or on malformed data (then
    /// [`XorIterator::err`] says which).
    #[inline(always)]
    pub fn advance(&mut self) -> bool {
        if self.read >= self.end {
            return false;
        }
        let ok = if self.read >= 2 {
            self.state.read_later()
        } else {
            match read_head(self.data, self.head_pos, self.state, self.read) {
                Some((state, head_pos)) => {
                    self.state = state;
                    self.head_pos = head_pos;
                    true
                }
                None => false,
            }
        };
        if !ok || self.state.reader.overrun() {
            self.end = self.read;
            self.failed = true;
            return false;
        }
        self.read += 1;
        true
    }

    /// The current sample (after [`XorIterator::advance`] returned true).
    #[inline]
    pub fn at(&self) -> (i64, f64) {
        (self.state.t, f64::from_bits(self.state.value_bits))
    }

    /// The decoding error, if iteration stopped on malformed data.
    pub fn err(&self) -> Option<Error> {
        self.failed.then(|| {
            Error::corrupt(
                SECTION,
                0,
                format!(
                    "sample {} of {}: unexpected end of data or invalid value encoding",
                    self.read, self.total
                ),
            )
        })
    }

    /// Decode all remaining samples into `out`.
    pub fn decode_into(&mut self, out: &mut Vec<(i64, f64)>) -> Result<()> {
        out.reserve(self.end.saturating_sub(self.read) as usize);
        while self.advance() {
            out.push(self.at());
        }
        self.err().map_or(Ok(()), Err)
    }

    /// Decode all remaining samples, handing each to `sink` (no intermediate buffer).
    #[inline]
    pub fn decode_each(&mut self, mut sink: impl FnMut(i64, f64)) -> Result<()> {
        while self.advance() {
            let (t, v) = self.at();
            sink(t, v);
        }
        self.err().map_or(Ok(()), Err)
    }

    /// Decode the next sample; `Ok(None)` at the end.
    #[inline]
    pub fn next_sample(&mut self) -> Result<Option<(i64, f64)>> {
        if self.advance() {
            return Ok(Some(self.at()));
        }
        self.err().map_or(Ok(None), Err)
    }
}

impl Iterator for XorIterator<'_> {
    type Item = Result<(i64, f64)>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.advance() {
            return Some(Ok(self.at()));
        }
        // Report a failure once, then end.
        let err = self.err()?;
        self.failed = false;
        Some(Err(err))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end.saturating_sub(self.read) as usize;
        (0, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut app = XorAppender::new();
        for &(t, v) in samples {
            app.append(t, v).unwrap();
        }
        let bytes = app.bytes();
        assert_eq!(bytes.len(), app.len());
        bytes
    }

    fn decode(data: &[u8]) -> Vec<(i64, f64)> {
        XorIterator::new(data)
            .unwrap()
            .map(|s| s.unwrap())
            .collect()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn matches_prometheus_242_worked_example() {
        let t0 = 1_700_000_000_000;
        let samples = [
            (t0, 1.0),
            (t0 + 15_000, 2.0),
            (t0 + 30_000, 3.5),
            (t0 + 45_000, 3.5),
            (t0 + 60_000, 100.0),
        ];
        let bytes = encode(&samples);
        assert_eq!(
            hex(&bytes),
            "000580a0abfef9623ff00000000000009875c25fff6c0b1a47aa"
        );
        assert_eq!(decode(&bytes), samples);
    }

    #[test]
    fn one_sample_chunk_has_242_spare_byte() {
        let bytes = encode(&[(1_700_000_000_000, 1.0)]);
        assert_eq!(bytes.len(), 17);
        assert_eq!(bytes.last(), Some(&0));
        assert_eq!(decode(&bytes), [(1_700_000_000_000, 1.0)]);
    }

    #[test]
    fn reuse_path_with_zero_window_decodes_64_bits() {
        // count=2, t0=0 (varint 0), v0=0.0, Δt=1, value: `1 0` then 64 bits of XOR with the
        // decoder's initial zero window.
        let mut data = vec![0, 2, 0];
        data.extend_from_slice(&0u64.to_be_bytes());
        data.push(1);
        let value = 2.5f64.to_bits();
        let stream: u128 = (0b10u128 << 64) | u128::from(value);
        let bits = stream << (128 - 66);
        data.extend_from_slice(&bits.to_be_bytes()[..9]);
        assert_eq!(decode(&data), [(0, 0.0), (1, 2.5)]);
    }

    #[test]
    fn truncated_chunks_fail_cleanly() {
        let samples: Vec<(i64, f64)> = (0..50)
            .map(|i| (i * 1000 + (i % 3), i as f64 * 0.7))
            .collect();
        let bytes = encode(&samples);
        for cut in 0..bytes.len() - 1 {
            let result: Result<Vec<_>> = match XorIterator::new(&bytes[..cut]) {
                Ok(it) => it.collect(),
                Err(err) => Err(err),
            };
            // Either an error, or the cut only removed padding and the samples are all there.
            if cut + 2 < bytes.len() {
                assert!(result.is_err(), "cut {cut} of {}", bytes.len());
            }
            if let Ok(decoded) = result {
                assert_eq!(decoded, samples, "cut {cut}");
            }
        }
        assert!(XorIterator::new(&[]).is_err());
    }

    #[test]
    fn full_chunk_refuses_more() {
        let mut app = XorAppender::new();
        for i in 0..i64::from(MAX_SAMPLES) {
            app.append(i, 1.0).unwrap();
        }
        assert!(app.append(1 << 40, 1.0).is_err());
        assert_eq!(
            XorIterator::new(&app.bytes()).unwrap().count(),
            usize::from(MAX_SAMPLES)
        );
    }

    fn sample_strategy() -> impl Strategy<Value = Vec<(i64, f64)>> {
        let value = prop_oneof![
            any::<f64>(),
            (0i32..100).prop_map(f64::from),
            Just(f64::NAN),
            Just(f64::from_bits(0x7FF0_0000_0000_0002)),
            Just(0.0),
        ];
        let step = prop_oneof![
            Just(15_000i64),
            -100_000i64..100_000,
            any::<i32>().prop_map(i64::from),
            any::<i64>().prop_map(|x| x >> 2),
        ];
        (
            any::<i64>().prop_map(|x| x >> 2),
            prop::collection::vec((step, value), 0..300),
        )
            .prop_map(|(start, steps)| {
                let mut t = start;
                steps
                    .into_iter()
                    .map(|(step, v)| {
                        t = t.wrapping_add(step);
                        (t, v)
                    })
                    .collect()
            })
    }

    /// A literal model of Prometheus 2.42's `bstream` and `xorAppender`, bit by bit, spare byte
    /// included: the byte-exact reference for the optimized encoder.
    struct Go242Bstream {
        stream: Vec<u8>,
        count: u8,
    }

    impl Go242Bstream {
        fn write_bit(&mut self, bit: bool) {
            if self.count == 0 {
                self.stream.push(0);
                self.count = 8;
            }
            if bit {
                *self.stream.last_mut().unwrap() |= 1 << (self.count - 1);
            }
            self.count -= 1;
        }

        fn write_byte(&mut self, byte: u8) {
            if self.count == 0 {
                self.stream.push(0);
                self.count = 8;
            }
            *self.stream.last_mut().unwrap() |= byte >> (8 - self.count);
            self.stream
                .push(((u16::from(byte) << self.count) & 0xFF) as u8);
        }

        fn write_bits(&mut self, value: u64, nbits: u32) {
            let mut u = value << (64 - nbits);
            let mut left = nbits;
            while left >= 8 {
                self.write_byte((u >> 56) as u8);
                u <<= 8;
                left -= 8;
            }
            while left > 0 {
                self.write_bit(u >> 63 == 1);
                u <<= 1;
                left -= 1;
            }
        }
    }

    fn go242_encode(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut b = Go242Bstream {
            stream: vec![0, 0],
            count: 0,
        };
        let (mut t, mut t_delta, mut v, mut leading, mut trailing) =
            (0i64, 0u64, 0u64, 0xFFu32, 0u32);
        for (i, &(ts, value)) in samples.iter().enumerate() {
            let bits = value.to_bits();
            let mut buf = [0u8; 10];
            if i == 0 {
                let n = put_varint(&mut buf, ts);
                buf[..n].iter().for_each(|&byte| b.write_byte(byte));
                b.write_bits(bits, 64);
            } else {
                let delta = ts.wrapping_sub(t) as u64;
                if i == 1 {
                    let n = put_uvarint(&mut buf, delta);
                    buf[..n].iter().for_each(|&byte| b.write_byte(byte));
                } else {
                    let dod = (delta as i64).wrapping_sub(t_delta as i64);
                    let in_range =
                        |n: u32| -((1i64 << (n - 1)) - 1) <= dod && dod <= 1i64 << (n - 1);
                    let mask = |n: u32| (dod as u64) & ((1u64 << n) - 1);
                    if dod == 0 {
                        b.write_bit(false);
                    } else if in_range(14) {
                        b.write_bits(0b10, 2);
                        b.write_bits(mask(14), 14);
                    } else if in_range(17) {
                        b.write_bits(0b110, 3);
                        b.write_bits(mask(17), 17);
                    } else if in_range(20) {
                        b.write_bits(0b1110, 4);
                        b.write_bits(mask(20), 20);
                    } else {
                        b.write_bits(0b1111, 4);
                        b.write_bits(dod as u64, 64);
                    }
                }
                t_delta = delta;
                let x = bits ^ v;
                if x == 0 {
                    b.write_bit(false);
                } else {
                    b.write_bit(true);
                    let new_leading = x.leading_zeros().min(31);
                    let new_trailing = x.trailing_zeros();
                    if leading != 0xFF && new_leading >= leading && new_trailing >= trailing {
                        b.write_bit(false);
                        b.write_bits(x >> trailing, 64 - leading - trailing);
                    } else {
                        leading = new_leading;
                        trailing = new_trailing;
                        let sig = 64 - leading - trailing;
                        b.write_bit(true);
                        b.write_bits(u64::from(leading), 5);
                        b.write_bits(u64::from(sig & 63), 6);
                        b.write_bits(x >> trailing, sig);
                    }
                }
            }
            t = ts;
            v = bits;
        }
        let count = samples.len() as u16;
        b.stream[..2].copy_from_slice(&count.to_be_bytes());
        b.stream
    }

    proptest! {
        #[test]
        fn byte_identical_to_go_242_model(samples in sample_strategy()) {
            prop_assert_eq!(hex(&encode(&samples)), hex(&go242_encode(&samples)));
        }

        #[test]
        fn round_trips(samples in sample_strategy()) {
            let bytes = encode(&samples);
            let decoded = decode(&bytes);
            prop_assert_eq!(decoded.len(), samples.len());
            for (got, want) in decoded.iter().zip(&samples) {
                prop_assert_eq!(got.0, want.0);
                prop_assert_eq!(got.1.to_bits(), want.1.to_bits());
            }
        }

        #[test]
        fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(it) = XorIterator::new(&data) {
                for sample in it {
                    if sample.is_err() { break; }
                }
            }
        }
    }
}
