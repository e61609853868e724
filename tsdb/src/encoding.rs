//! Primitive decoding and encoding shared by every on-disk structure: big-endian integers, Go
//! varints, length-prefixed strings, CRC-32C (Castagnoli, stored big-endian) and the MSB-first
//! bit streams of chunk encodings ([`BitReader`], [`BitWriter`]).
//!
//! [`Decbuf`] never panics: reading past the end returns [`Error::Corrupt`] naming the section
//! and the absolute offset (the section's base offset plus the position in the slice).
//!
//! The bit reader and writer are the inner loop of XOR chunk decoding and encoding, so they are
//! built for speed without `unsafe`: the reader refills a 64-bit buffer from one unaligned
//! big-endian 8-byte load and never checks for the end of data per read (it reads zeros past the
//! end and the caller asks [`BitReader::overrun`] once per sample); the writer packs fields into a
//! 64-bit accumulator and stores whole 8-byte words.

use crate::{Error, Result};

/// CRC-32C of `data`, as every Prometheus on-disk checksum.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Verify that `stored` is the CRC-32C of `data`.
///
/// Fuzz builds (`--cfg fuzzing`, set by `scripts/fuzz.sh` and cargo-fuzz) accept any checksum:
/// otherwise nearly every mutated input would stop here and the decoders behind the checksums
/// would never see it.
// `fuzzing` is not a Cargo feature, so the check-cfg lint does not know it.
#[allow(unexpected_cfgs)]
pub fn check_crc(data: &[u8], stored: u32, section: &'static str, offset: u64) -> Result<()> {
    let computed = crc32c(data);
    if computed != stored && !cfg!(fuzzing) {
        return Err(Error::Checksum {
            section,
            offset,
            stored,
            computed,
        });
    }
    Ok(())
}

/// A cursor over a byte slice that reports malformed input as errors.
#[derive(Debug, Clone)]
pub struct Decbuf<'a> {
    data: &'a [u8],
    pos: usize,
    section: &'static str,
    base: u64,
}

impl<'a> Decbuf<'a> {
    /// A cursor over `data`, which starts at absolute offset `base` of its file.
    #[inline]
    pub fn new(data: &'a [u8], section: &'static str, base: u64) -> Self {
        Decbuf {
            data,
            pos: 0,
            section,
            base,
        }
    }

    /// An error at the current position.
    pub fn error(&self, detail: impl Into<String>) -> Error {
        Error::corrupt(self.section, self.base + self.pos as u64, detail)
    }

    /// Position within the slice.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// True when nothing is left.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }

    /// Take the next `n` bytes.
    #[inline]
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| self.error(format!("need {n} bytes, {} left", self.remaining())))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// Skip `n` bytes.
    #[inline]
    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(|_| ())
    }

    /// One byte.
    #[inline]
    pub fn byte(&mut self) -> Result<u8> {
        let byte = *self
            .data
            .get(self.pos)
            .ok_or_else(|| self.error("unexpected end of data"))?;
        self.pos += 1;
        Ok(byte)
    }

    /// Big-endian u32.
    #[inline]
    pub fn be_u32(&mut self) -> Result<u32> {
        let bytes = self.bytes(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// Big-endian u64.
    #[inline]
    pub fn be_u64(&mut self) -> Result<u64> {
        let bytes = self.bytes(8)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        Ok(u64::from_be_bytes(word))
    }

    /// Go `binary.Uvarint`.
    #[inline]
    pub fn uvarint(&mut self) -> Result<u64> {
        // Most varints of an index (symbol lengths, label refs, chunk deltas) are one byte.
        if let Some(&byte) = self.data.get(self.pos)
            && byte < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(byte));
        }
        self.uvarint_long()
    }

    #[inline(never)]
    fn uvarint_long(&mut self) -> Result<u64> {
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let byte = self.byte()?;
            if shift == 63 && byte > 1 {
                return Err(self.error("uvarint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7F) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
            shift += 7;
            if shift > 63 {
                return Err(self.error("uvarint overflows 64 bits"));
            }
        }
    }

    /// A uvarint that must fit a u32.
    #[inline]
    pub fn uvarint_u32(&mut self) -> Result<u32> {
        let value = self.uvarint()?;
        u32::try_from(value).map_err(|_| self.error(format!("value {value} exceeds 32 bits")))
    }

    /// A uvarint used as a length or count.
    #[inline]
    pub fn uvarint_usize(&mut self) -> Result<usize> {
        let value = self.uvarint()?;
        usize::try_from(value).map_err(|_| self.error(format!("length {value} too large")))
    }

    /// Go `binary.Varint` (zigzag).
    #[inline]
    pub fn varint(&mut self) -> Result<i64> {
        let value = self.uvarint()?;
        Ok(((value >> 1) as i64) ^ -((value & 1) as i64))
    }

    /// A uvarint length followed by that many bytes.
    #[inline]
    pub fn uvarint_bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.uvarint_usize()?;
        self.bytes(len)
    }

    /// A uvarint-length-prefixed UTF-8 string.
    #[inline]
    pub fn uvarint_str(&mut self) -> Result<&'a str> {
        let start = self.pos;
        let bytes = self.uvarint_bytes()?;
        std::str::from_utf8(bytes).map_err(|_| {
            Error::corrupt(
                self.section,
                self.base + start as u64,
                "string is not valid UTF-8",
            )
        })
    }
}

/// Append Go `binary.PutUvarint(value)` to `out`.
pub fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Append Go `binary.PutVarint(value)` to `out`.
pub fn put_varint(out: &mut Vec<u8>, value: i64) {
    put_uvarint(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Append a uvarint length and the bytes.
pub fn put_uvarint_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_uvarint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Number of bytes `put_uvarint(value)` writes.
pub fn uvarint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

/// MSB-first bit reader over a byte slice.
///
/// The stream is read as if it were followed by infinitely many zero bytes, so reads never fail
/// and never branch on the end of data; a decoder checks [`BitReader::overrun`] after each
/// logical record (one sample) to learn whether it consumed bits that are not in the data.
///
/// Refill scheme ("variant 4" of Fabian Giesen's bit reader series): `buf` holds `nbits` valid
/// bits at its top; the bits below them are either zero or the true following stream bits, so
/// OR-ing in the next 8 bytes shifted right by `nbits` is always correct, and afterwards
/// 56 <= `nbits` <= 63.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte of `data` to load into `buf`; passes `data.len()` once zeros past the end are
    /// buffered.
    pos: usize,
    buf: u64,
    nbits: u32,
    /// The last 8 bytes of `data` (zero-padded at the front when shorter), to serve refills
    /// near the end without a byte loop.
    tail: u64,
}

impl<'a> BitReader<'a> {
    /// A reader at byte `start` of `data` (past the end reads zeros, and overruns at once).
    pub(crate) fn new(data: &'a [u8], start: usize) -> Self {
        let mut tail = [0u8; 8];
        let last = data.get(data.len().saturating_sub(8)..).unwrap_or(&[]);
        if let Some(dest) = tail.get_mut(8 - last.len()..) {
            dest.copy_from_slice(last);
        }
        BitReader {
            data,
            pos: start,
            buf: 0,
            nbits: 0,
            tail: u64::from_be_bytes(tail),
        }
    }

    /// The 8 stream bytes at `pos`, big-endian.
    #[inline(always)]
    fn word_at(&self, pos: usize) -> u64 {
        match self.data.get(pos..pos.wrapping_add(8)) {
            Some(bytes) => u64::from_be_bytes(<[u8; 8]>::try_from(bytes).unwrap_or([0; 8])),
            None => self.tail_word_at(pos),
        }
    }

    /// The 8 stream bytes at `pos` when fewer than 8 data bytes are left: the end of `tail`,
    /// then zeros.
    #[inline]
    fn tail_word_at(&self, pos: usize) -> u64 {
        // `tail` holds stream bytes `len - 8 .. len`; we want them from `pos` on.
        let skip = (pos + 8).saturating_sub(self.data.len());
        u32::try_from(skip * 8)
            .ok()
            .and_then(|shift| self.tail.checked_shl(shift))
            .unwrap_or(0)
    }

    /// Top up the buffer to at least 56 valid bits.
    #[inline(always)]
    pub(crate) fn refill(&mut self) {
        let word = self.word_at(self.pos);
        self.buf |= word >> self.nbits;
        self.pos += ((63 - self.nbits) >> 3) as usize;
        self.nbits |= 56;
    }

    /// The buffered bits, MSB first; only the top `nbits` are counted, the
    /// rest are zero or the true following bits.
    #[inline(always)]
    pub(crate) fn peek(&self) -> u64 {
        self.buf
    }

    /// Bits buffered (after a refill, 56 to 63).
    #[inline(always)]
    pub(crate) fn buffered(&self) -> u32 {
        self.nbits
    }

    /// Drop `n` buffered bits (`n <= nbits`, so `n < 64`).
    #[inline(always)]
    pub(crate) fn consume(&mut self, n: u32) {
        debug_assert!(n <= self.nbits);
        self.buf <<= n;
        self.nbits -= n;
    }

    /// Take `n` buffered bits, 1 <= n <= `nbits`.
    #[inline(always)]
    pub(crate) fn take(&mut self, n: u32) -> u64 {
        debug_assert!((1..=self.nbits).contains(&n));
        let value = self.buf >> (64 - n);
        self.consume(n);
        value
    }

    /// Read `n` bits, 1 <= n <= 64.
    #[inline(always)]
    pub(crate) fn read_bits(&mut self, n: u32) -> u64 {
        self.refill();
        if n <= 56 {
            self.take(n)
        } else {
            let high = self.take(n - 32);
            self.refill();
            (high << 32) | self.take(32)
        }
    }

    /// True when more bits were consumed than `data` holds (the reader went past the end).
    #[inline(always)]
    pub(crate) fn overrun(&self) -> bool {
        // Consumed bits = 8 * pos - nbits; compare with 8 * len without multiplying lengths.
        self.pos > self.data.len() && (self.pos - self.data.len()) * 8 > self.nbits as usize
    }
}

/// MSB-first bit writer into a byte vector.
///
/// `acc` holds the `nacc` (< 64) pending bits right-aligned. A field that fits is shifted in;
/// one that fills the word completes it, the word is stored as the next 8 output bytes, and the
/// field's remaining low bits start the new `acc`. Callers write few, wide fields (the XOR
/// appender writes two per sample), so the full-word branch is rare for small fields and
/// predictable for wide ones. (A branch-free variant that stores on every write measured about
/// 10% slower on mixed data and 30% slower on regular data.)
///
/// `out` is kept at least 8 bytes longer than `len` (the committed bytes), so a word store is
/// one bounds-checked 8-byte copy.
#[derive(Debug, Clone)]
pub(crate) struct BitWriter {
    out: Vec<u8>,
    /// Committed bytes at the front of `out`.
    len: usize,
    acc: u64,
    nacc: u32,
}

impl BitWriter {
    /// An empty stream whose buffer can take `capacity` bytes before growing.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        BitWriter {
            out: vec![0; capacity.max(16)],
            len: 0,
            acc: 0,
            nacc: 0,
        }
    }

    /// Append the low `n` bits of `value`, 1 <= n <= 64 (higher bits of `value` must be zero).
    #[inline(always)]
    pub(crate) fn write_bits(&mut self, value: u64, n: u32) {
        debug_assert!((1..=64).contains(&n));
        debug_assert!(n == 64 || value >> n == 0);
        let free = 64 - self.nacc;
        if n < free {
            self.acc = (self.acc << n) | value;
            self.nacc += n;
            return;
        }
        let rest = n - free;
        let word = self.acc.checked_shl(free).unwrap_or(0) | (value >> rest);
        match self.out.get_mut(self.len..self.len + 8) {
            Some(dest) => dest.copy_from_slice(&word.to_be_bytes()),
            None => self.grow_and_store(word),
        }
        self.len += 8;
        self.acc = value & (1u64 << rest).wrapping_sub(1);
        self.nacc = rest;
    }

    #[cold]
    #[inline(never)]
    fn grow_and_store(&mut self, word: u64) {
        let size = (self.out.len() * 2).max(self.len + 16);
        self.out.resize(size, 0);
        if let Some(dest) = self.out.get_mut(self.len..self.len + 8) {
            dest.copy_from_slice(&word.to_be_bytes());
        }
    }

    /// Append whole bytes.
    pub(crate) fn write_bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_bits(u64::from(byte), 8);
        }
    }

    /// True when the stream ends on a byte boundary.
    #[inline(always)]
    pub(crate) fn is_byte_aligned(&self) -> bool {
        self.nacc.is_multiple_of(8)
    }

    /// Length of the stream in bits.
    #[inline(always)]
    pub(crate) fn bit_len(&self) -> usize {
        self.len * 8 + self.nacc as usize
    }

    /// The stream padded with zero bits to a whole byte, with room for `extra` more bytes.
    pub(crate) fn to_bytes(&self, extra: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.len + 8 + extra);
        bytes.extend_from_slice(self.out.get(..self.len).unwrap_or(&[]));
        if self.nacc > 0 {
            let aligned = self.acc << (64 - self.nacc);
            let partial = self.nacc.div_ceil(8) as usize;
            bytes.extend_from_slice(aligned.to_be_bytes().get(..partial).unwrap_or(&[]));
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reference MSB-first packing, one bit at a time.
    fn pack(fields: &[(u64, u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut nbits = 0usize;
        for &(value, width) in fields {
            for i in (0..width).rev() {
                if nbits.is_multiple_of(8) {
                    out.push(0);
                }
                if (value >> i) & 1 == 1
                    && let Some(last) = out.last_mut()
                {
                    *last |= 0x80 >> (nbits % 8);
                }
                nbits += 1;
            }
        }
        out
    }

    fn field_strategy() -> impl Strategy<Value = Vec<(u64, u32)>> {
        prop::collection::vec(
            (any::<u64>(), 1u32..=64)
                .prop_map(|(v, n)| (if n == 64 { v } else { v >> (64 - n) }, n)),
            0..60,
        )
    }

    #[test]
    fn crc_is_castagnoli() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    proptest! {
        #[test]
        fn varints_round_trip(u in any::<u64>(), i in any::<i64>()) {
            let mut out = Vec::new();
            put_uvarint(&mut out, u);
            prop_assert_eq!(out.len(), uvarint_len(u));
            put_varint(&mut out, i);
            let mut buf = Decbuf::new(&out, "test", 0);
            prop_assert_eq!(buf.uvarint().unwrap(), u);
            prop_assert_eq!(buf.varint().unwrap(), i);
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn bit_writer_and_reader_match_reference(fields in field_strategy()) {
            let mut writer = BitWriter::with_capacity(0);
            for &(value, width) in &fields {
                writer.write_bits(value, width);
            }
            let bytes = writer.to_bytes(0);
            prop_assert_eq!(writer.bit_len(), fields.iter().map(|f| f.1 as usize).sum::<usize>());
            prop_assert_eq!(&bytes, &pack(&fields));
            let mut reader = BitReader::new(&bytes, 0);
            for &(value, width) in &fields {
                prop_assert_eq!(reader.read_bits(width), value);
                prop_assert!(!reader.overrun());
            }
            // Past the end: zeros, and an overrun once a bit beyond the padding is consumed.
            let padding = bytes.len() * 8 - writer.bit_len();
            if padding > 0 {
                prop_assert_eq!(reader.read_bits(padding as u32), 0);
                prop_assert!(!reader.overrun());
            }
            prop_assert_eq!(reader.read_bits(1), 0);
            prop_assert!(reader.overrun());
        }

        #[test]
        fn bit_reader_reads_any_offset(data in prop::collection::vec(any::<u8>(), 0..24), skip in 0usize..200, n in 1u32..=64) {
            let mut reader = BitReader::new(&data, 0);
            let mut skipped = skip;
            while skipped > 0 {
                let step = skipped.min(32) as u32;
                reader.read_bits(step);
                skipped -= step as usize;
            }
            let got = reader.read_bits(n);
            let want = (0..n as usize).fold(0u64, |acc, i| {
                let bit = skip + i;
                let byte = data.get(bit / 8).copied().unwrap_or(0);
                (acc << 1) | u64::from((byte >> (7 - bit % 8)) & 1)
            });
            prop_assert_eq!(got, want);
            prop_assert_eq!(reader.overrun(), skip + n as usize > data.len() * 8);
        }

        #[test]
        fn garbage_never_panics(data in prop::collection::vec(any::<u8>(), 0..40)) {
            let mut buf = Decbuf::new(&data, "test", 0);
            let _ = buf.uvarint_str();
            let _ = buf.varint();
            let _ = buf.be_u64();
        }
    }
}
