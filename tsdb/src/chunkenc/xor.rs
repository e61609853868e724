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
//! Speed: the writer packs bits into a 64-bit accumulator and flushes whole words; the reader
//! keeps up to 64 buffered bits, refills 8 bytes at a time and decodes bucket prefixes with
//! `leading_ones` instead of bit-by-bit branching.

use crate::{Error, Result};

/// Most samples one XOR chunk can hold (the count is a u16 and 2.42 refuses the 65536th).
pub const MAX_SAMPLES: u16 = u16::MAX;

const SECTION: &str = "xor chunk";

/// MSB-first bit writer over a byte vector with a 64-bit accumulator.
#[derive(Debug, Clone)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    nacc: u32,
}

impl BitWriter {
    /// Write the low `n` bits of `value` (1 <= n <= 64; higher bits of `value` must be zero).
    #[inline(always)]
    fn write_bits(&mut self, value: u64, n: u32) {
        let free = 64 - self.nacc;
        if n < free {
            self.acc = (self.acc << n) | value;
            self.nacc += n;
        } else {
            let rest = n - free;
            let high = if free == 64 { 0 } else { self.acc << free };
            let word = high | (value >> rest);
            self.out.extend_from_slice(&word.to_be_bytes());
            self.acc = if rest == 0 {
                0
            } else {
                value & ((1u64 << rest) - 1)
            };
            self.nacc = rest;
        }
    }

    #[inline(always)]
    fn bit_len(&self) -> usize {
        self.out.len() * 8 + self.nacc as usize
    }

    /// The stream padded with zero bits to a whole byte.
    fn to_bytes(&self, extra: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.out.len() + 9 + extra);
        bytes.extend_from_slice(&self.out);
        if self.nacc > 0 {
            let aligned = self.acc << (64 - self.nacc);
            let nbytes = self.nacc.div_ceil(8) as usize;
            bytes.extend_from_slice(&aligned.to_be_bytes()[..nbytes]);
        }
        bytes
    }
}

#[inline(always)]
fn low_bits(value: u64, n: u32) -> u64 {
    if n >= 64 {
        value
    } else {
        value & ((1u64 << n) - 1)
    }
}

/// Encodes samples into an XOR chunk exactly as Prometheus 2.42 does.
#[derive(Debug, Clone)]
pub struct XorAppender {
    writer: BitWriter,
    num_samples: u16,
    t: i64,
    t_delta: u64,
    value_bits: u64,
    leading: u8,
    trailing: u8,
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
        XorAppender {
            writer: BitWriter {
                // The two header bytes hold the sample count, filled in by `bytes()`.
                out: Vec::with_capacity(128),
                acc: 0,
                nacc: 16,
            },
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
        self.num_samples
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
    pub fn append(&mut self, t: i64, v: f64) -> Result<()> {
        if self.num_samples == MAX_SAMPLES {
            return Err(Error::InvalidInput {
                writer: "xor appender",
                detail: format!("chunk already holds {MAX_SAMPLES} samples"),
            });
        }
        let bits = v.to_bits();
        match self.num_samples {
            0 => {
                let mut buf = [0u8; 10];
                let n = put_varint(&mut buf, t);
                for byte in buf.iter().take(n) {
                    self.writer.write_bits(u64::from(*byte), 8);
                }
                self.writer.write_bits(bits, 64);
                self.spare_byte = true;
                self.value_bits = bits;
            }
            1 => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                let mut buf = [0u8; 10];
                let n = put_uvarint(&mut buf, t_delta);
                for byte in buf.iter().take(n) {
                    self.writer.write_bits(u64::from(*byte), 8);
                }
                self.spare_byte = true;
                self.write_value(bits);
                self.t_delta = t_delta;
            }
            _ => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                let dod = (t_delta as i64).wrapping_sub(self.t_delta as i64);
                if dod == 0 {
                    self.writer.write_bits(0, 1);
                    self.spare_byte = false;
                } else if bit_range(dod, 14) {
                    self.writer.write_bits(0b10, 2);
                    self.writer.write_bits(low_bits(dod as u64, 14), 14);
                    self.spare_byte = false;
                } else if bit_range(dod, 17) {
                    self.writer.write_bits(0b110, 3);
                    self.writer.write_bits(low_bits(dod as u64, 17), 17);
                    self.spare_byte = false;
                } else if bit_range(dod, 20) {
                    self.writer.write_bits(0b1110, 4);
                    self.writer.write_bits(low_bits(dod as u64, 20), 20);
                    self.spare_byte = false;
                } else {
                    self.writer.write_bits(0b1111, 4);
                    let aligned = self.writer.bit_len().is_multiple_of(8);
                    self.writer.write_bits(dod as u64, 64);
                    self.spare_byte = aligned;
                }
                self.write_value(bits);
                self.t_delta = t_delta;
            }
        }
        self.t = t;
        self.num_samples += 1;
        Ok(())
    }

    #[inline(always)]
    fn write_value(&mut self, bits: u64) {
        let delta = bits ^ self.value_bits;
        self.value_bits = bits;
        if delta == 0 {
            self.writer.write_bits(0, 1);
            self.spare_byte = false;
            return;
        }
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != 0xFF && leading >= self.leading && trailing >= self.trailing {
            self.writer.write_bits(0b10, 2);
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            let aligned = self.writer.bit_len().is_multiple_of(8);
            self.writer.write_bits(delta >> self.trailing, sig);
            self.spare_byte = aligned && sig.is_multiple_of(8);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        let sig = 64 - u32::from(leading) - u32::from(trailing);
        // `11`, 5 bits of leading zeros, 6 bits of significant bits (64 is written as 0).
        let control = (0b11 << 11) | (u64::from(leading) << 6) | u64::from(sig & 63);
        self.writer.write_bits(control, 13);
        let aligned = self.writer.bit_len().is_multiple_of(8);
        self.writer.write_bits(delta >> trailing, sig);
        self.spare_byte = aligned && sig.is_multiple_of(8);
    }

    /// The chunk data as 2.42 would store it (count header, bit stream, 2.42's spare byte).
    pub fn bytes(&self) -> Vec<u8> {
        let mut bytes = self.writer.to_bytes(1);
        if let Some(header) = bytes.get_mut(0..2) {
            header.copy_from_slice(&self.num_samples.to_be_bytes());
        }
        if self.spare_byte {
            bytes.push(0);
        }
        bytes
    }
}

/// Go's `bitRange`: can `x` be stored in `nbits` bits with the XOR chunk's decoding rule?
#[inline(always)]
fn bit_range(x: i64, nbits: u32) -> bool {
    -((1i64 << (nbits - 1)) - 1) <= x && x <= (1i64 << (nbits - 1))
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

/// Decodes an XOR chunk's samples, by the sample count in its header.
///
/// Yields `Ok((t, v))` per sample; a malformed stream yields one `Err` and then ends.
#[derive(Debug, Clone)]
pub struct XorIterator<'a> {
    data: &'a [u8],
    /// Next byte of `data` to load into `buf`.
    pos: usize,
    /// Buffered bits, MSB first; bits past `nbits` are zero or the true upcoming stream bits.
    buf: u64,
    nbits: u32,
    total: u16,
    read: u16,
    t: i64,
    t_delta: i64,
    value_bits: u64,
    leading: u32,
    trailing: u32,
    done: bool,
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
        Ok(XorIterator {
            data,
            pos: 2,
            buf: 0,
            nbits: 0,
            total: u16::from_be_bytes([high, low]),
            read: 0,
            t: 0,
            t_delta: 0,
            value_bits: 0,
            leading: 0,
            trailing: 0,
            done: false,
            failed: false,
        })
    }

    /// Number of samples the header announces.
    pub fn num_samples(&self) -> u16 {
        self.total
    }

    #[inline(always)]
    fn refill(&mut self) {
        if let Some(word) = self.data.get(self.pos..self.pos + 8) {
            let word = u64::from_be_bytes(<[u8; 8]>::try_from(word).unwrap_or([0; 8]));
            let take = (64 - self.nbits) / 8;
            if self.nbits < 64 {
                self.buf |= word >> self.nbits;
            }
            self.pos += take as usize;
            self.nbits += take * 8;
        } else {
            self.refill_tail();
        }
    }

    #[cold]
    fn refill_tail(&mut self) {
        while self.nbits <= 56 {
            let Some(&byte) = self.data.get(self.pos) else {
                return;
            };
            self.buf |= u64::from(byte) << (56 - self.nbits);
            self.pos += 1;
            self.nbits += 8;
        }
    }

    /// Read `n` bits, 1 <= n <= 56.
    #[inline(always)]
    fn read_bits(&mut self, n: u32) -> Option<u64> {
        if self.nbits < n {
            self.refill();
            if self.nbits < n {
                return None;
            }
        }
        let value = self.buf >> (64 - n);
        self.buf <<= n;
        self.nbits -= n;
        Some(value)
    }

    /// Read `n` bits, 1 <= n <= 64.
    #[inline(always)]
    fn read_bits_wide(&mut self, n: u32) -> Option<u64> {
        if n <= 56 {
            self.read_bits(n)
        } else {
            let high = self.read_bits(n - 32)?;
            let low = self.read_bits(32)?;
            Some((high << 32) | low)
        }
    }

    /// Read up to `max` leading one bits and the terminating zero (if fewer than `max` ones).
    #[inline(always)]
    fn read_prefix(&mut self, max: u32) -> Option<u32> {
        if self.nbits < max {
            self.refill();
        }
        let ones = (!self.buf).leading_zeros().min(max);
        let consumed = if ones < max { ones + 1 } else { max };
        if consumed > self.nbits {
            return None;
        }
        self.buf <<= consumed;
        self.nbits -= consumed;
        Some(ones)
    }

    /// Consume `n` buffered bits (caller checked `n <= nbits`, 1 <= n <= 63).
    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.buf <<= n;
        self.nbits -= n;
    }

    #[inline(always)]
    fn read_value(&mut self) -> Option<()> {
        if self.nbits < 13 {
            self.refill();
        }
        // Control bits: `0` unchanged, `10` reuse the window, `11` new window (+5+6 bits).
        if (self.buf as i64) >= 0 {
            if self.nbits < 1 {
                return None;
            }
            self.consume(1);
            return Some(());
        }
        if self.buf & (1 << 62) == 0 {
            if self.nbits < 2 {
                return None;
            }
            self.consume(2);
        } else {
            if self.nbits < 13 {
                return None;
            }
            let control = (self.buf >> 51) as u32;
            self.consume(13);
            self.leading = (control >> 6) & 31;
            let mut sig = control & 63;
            if sig == 0 {
                sig = 64;
            }
            // A corrupt stream can claim more bits than a u64 holds.
            self.trailing = 64u32.checked_sub(self.leading + sig)?;
        }
        let sig = 64 - self.leading - self.trailing;
        let bits = self.read_bits_wide(sig)?;
        self.value_bits ^= bits << self.trailing;
        Some(())
    }

    fn read_first(&mut self) -> Option<()> {
        self.t = read_varint_bits(self)?;
        self.value_bits = self.read_bits_wide(64)?;
        Some(())
    }

    fn read_second(&mut self) -> Option<()> {
        let mut delta: u64 = 0;
        let mut shift = 0u32;
        loop {
            let byte = self.read_bits(8)?;
            if shift >= 64 {
                return None;
            }
            delta |= (byte & 0x7F) << shift;
            if byte < 0x80 {
                break;
            }
            shift += 7;
        }
        self.t_delta = delta as i64;
        self.t = self.t.wrapping_add(self.t_delta);
        self.read_value()
    }

    #[inline(always)]
    fn read_later(&mut self) -> Option<()> {
        if self.nbits < 56 {
            self.refill();
        }
        if (self.buf as i64) >= 0 && self.nbits >= 1 {
            // The common case: same interval as before.
            self.consume(1);
            self.t = self.t.wrapping_add(self.t_delta);
            return self.read_value();
        }
        let dod = match self.read_prefix(4)? {
            0 => 0,
            ones => {
                let width = match ones {
                    1 => 14,
                    2 => 17,
                    3 => 20,
                    _ => 64,
                };
                let raw = self.read_bits_wide(width)?;
                if width == 64 {
                    raw as i64
                } else if raw > (1u64 << (width - 1)) {
                    raw as i64 - (1i64 << width)
                } else {
                    raw as i64
                }
            }
        };
        self.t_delta = self.t_delta.wrapping_add(dod);
        self.t = self.t.wrapping_add(self.t_delta);
        self.read_value()
    }

    /// Go-style iteration (`Next()`/`At()`/`Err()`), the fastest way to decode: move to the
    /// next sample and return true, or return false at the end or on malformed data (then
    /// [`XorIterator::err`] says which).
    #[inline]
    pub fn advance(&mut self) -> bool {
        if self.done || self.read >= self.total {
            return false;
        }
        let ok = match self.read {
            0 => self.read_first(),
            1 => self.read_second(),
            _ => self.read_later(),
        };
        if ok.is_none() {
            self.done = true;
            self.failed = true;
            return false;
        }
        self.read += 1;
        true
    }

    /// The current sample (after [`XorIterator::advance`] returned true).
    #[inline]
    pub fn at(&self) -> (i64, f64) {
        (self.t, f64::from_bits(self.value_bits))
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
        out.reserve(usize::from(self.total.saturating_sub(self.read)));
        while self.advance() {
            out.push(self.at());
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

fn read_varint_bits(it: &mut XorIterator<'_>) -> Option<i64> {
    let mut value: u64 = 0;
    let mut shift = 0u32;
    loop {
        let byte = it.read_bits(8)?;
        if shift >= 64 {
            return None;
        }
        value |= (byte & 0x7F) << shift;
        if byte < 0x80 {
            break;
        }
        shift += 7;
    }
    Some(((value >> 1) as i64) ^ -((value & 1) as i64))
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
        let left = usize::from(self.total - self.read.min(self.total));
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

    proptest! {
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
