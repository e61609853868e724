//! Primitive decoding and encoding shared by every on-disk structure: big-endian integers, Go
//! varints, length-prefixed strings and CRC-32C (Castagnoli, stored big-endian).
//!
//! [`Decbuf`] never panics: reading past the end returns [`Error::Corrupt`] naming the section
//! and the absolute offset (the section's base offset plus the position in the slice).

use crate::{Error, Result};

/// CRC-32C of `data`, as every Prometheus on-disk checksum.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Verify that `stored` is the CRC-32C of `data`.
pub fn check_crc(data: &[u8], stored: u32, section: &'static str, offset: u64) -> Result<()> {
    let computed = crc32c(data);
    if computed != stored {
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
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }

    /// Take the next `n` bytes.
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
    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(|_| ())
    }

    /// One byte.
    pub fn byte(&mut self) -> Result<u8> {
        let byte = *self
            .data
            .get(self.pos)
            .ok_or_else(|| self.error("unexpected end of data"))?;
        self.pos += 1;
        Ok(byte)
    }

    /// Big-endian u32.
    pub fn be_u32(&mut self) -> Result<u32> {
        let bytes = self.bytes(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// Big-endian u64.
    pub fn be_u64(&mut self) -> Result<u64> {
        let bytes = self.bytes(8)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        Ok(u64::from_be_bytes(word))
    }

    /// Go `binary.Uvarint`.
    pub fn uvarint(&mut self) -> Result<u64> {
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
    pub fn uvarint_u32(&mut self) -> Result<u32> {
        let value = self.uvarint()?;
        u32::try_from(value).map_err(|_| self.error(format!("value {value} exceeds 32 bits")))
    }

    /// A uvarint used as a length or count.
    pub fn uvarint_usize(&mut self) -> Result<usize> {
        let value = self.uvarint()?;
        usize::try_from(value).map_err(|_| self.error(format!("length {value} too large")))
    }

    /// Go `binary.Varint` (zigzag).
    pub fn varint(&mut self) -> Result<i64> {
        let value = self.uvarint()?;
        Ok(((value >> 1) as i64) ^ -((value & 1) as i64))
    }

    /// A uvarint length followed by that many bytes.
    pub fn uvarint_bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.uvarint_usize()?;
        self.bytes(len)
    }

    /// A uvarint-length-prefixed UTF-8 string.
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        fn garbage_never_panics(data in prop::collection::vec(any::<u8>(), 0..40)) {
            let mut buf = Decbuf::new(&data, "test", 0);
            let _ = buf.uvarint_str();
            let _ = buf.varint();
            let _ = buf.be_u64();
        }
    }
}
