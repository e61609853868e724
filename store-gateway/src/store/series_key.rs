//! A series' final labels as one byte string that sorts as the labels do.
//!
//! A Series call reads the same series from every block that holds it (a day of 2h blocks: 12
//! copies) and the merge keeps one. Built as [`Labels`], each copy cost two string allocations
//! per label, and every merge comparison walked the labels one string at a time. A
//! [`SeriesKey`] is one allocation, built straight from the block's symbols, and compares with
//! one `memcmp`; the strings are made once per series sent ([`SeriesKey::into_proto`]).
//!
//! Encoding: per label, name then value, each followed by `00 00`; a `00` byte inside a string
//! is written `00 FF`. Bytewise order of keys is then the order of [`Labels`] (label by label,
//! name then value, bytewise, a prefix first): the terminator `00 00` sorts below any byte a
//! longer string could continue with (`00 FF` or anything above `00`). Keys of label prefixes
//! are byte prefixes of the key, so a prefix of whole labels compares as the labels would.

use std::borrow::Cow;

use strata_common::storeapi::final_order::ResortKey;
use strata_proto::thanos;
use strata_tsdb::labels::{Label, Labels};

/// Final labels, encoded to sort bytewise (see the module comment).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct SeriesKey(Vec<u8>);

impl SeriesKey {
    /// An empty key with room for about `bytes` bytes.
    pub fn with_capacity(bytes: usize) -> Self {
        SeriesKey(Vec::with_capacity(bytes))
    }

    /// Appends a label (labels must come in name order).
    pub fn push(&mut self, name: &str, value: &str) {
        push_escaped(&mut self.0, name);
        push_escaped(&mut self.0, value);
    }

    /// The key of `labels`.
    #[cfg(test)]
    pub fn from_labels(labels: &Labels) -> Self {
        let mut key = SeriesKey::default();
        for label in labels {
            key.push(&label.name, &label.value);
        }
        key
    }

    /// Encoded length so far (a prefix length for [`ResortKey`]).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The labels, in order.
    pub fn labels(&self) -> KeyLabels<'_> {
        KeyLabels { rest: &self.0 }
    }

    /// The labels as [`Labels`].
    pub fn to_labels(&self) -> Labels {
        Labels::from_sorted(
            self.labels()
                .map(|(name, value)| Label::new(name, value))
                .collect(),
        )
    }

    /// The labels for the wire.
    pub fn into_proto(self) -> Vec<thanos::Label> {
        self.labels()
            .map(|(name, value)| thanos::Label {
                name: name.into_owned(),
                value: value.into_owned(),
            })
            .collect()
    }
}

impl ResortKey for SeriesKey {
    fn before_prefix(&self, other: &Self, prefix: usize) -> bool {
        other
            .0
            .get(..prefix)
            .is_some_and(|bound| self.0.as_slice() < bound)
    }
}

fn push_escaped(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if !bytes.contains(&0) {
        out.extend_from_slice(bytes);
    } else {
        for &byte in bytes {
            out.push(byte);
            if byte == 0 {
                out.push(0xff);
            }
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// The labels of a key, as `(name, value)`.
#[derive(Debug)]
pub(super) struct KeyLabels<'a> {
    rest: &'a [u8],
}

impl<'a> KeyLabels<'a> {
    /// The next string: up to the `00 00` terminator, `00 FF` read as `00`.
    fn next_string(&mut self) -> Option<Cow<'a, str>> {
        let mut end = 0;
        let mut escaped = false;
        loop {
            let zero = self.rest.get(end..)?.iter().position(|&b| b == 0)? + end;
            match self.rest.get(zero + 1) {
                Some(0) => {
                    end = zero;
                    break;
                }
                Some(_) => {
                    escaped = true;
                    end = zero + 2;
                }
                None => return None,
            }
        }
        let raw = self.rest.get(..end)?;
        self.rest = self.rest.get(end + 2..).unwrap_or(&[]);
        // Keys are built from `&str`s, so the bytes are UTF-8; anything else ends the labels.
        if !escaped {
            return std::str::from_utf8(raw).ok().map(Cow::Borrowed);
        }
        let mut bytes = Vec::with_capacity(raw.len());
        let mut iter = raw.iter();
        while let Some(&byte) = iter.next() {
            bytes.push(byte);
            if byte == 0 {
                iter.next();
            }
        }
        String::from_utf8(bytes).ok().map(Cow::Owned)
    }
}

impl<'a> Iterator for KeyLabels<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let name = self.next_string()?;
        let value = self.next_string()?;
        Some((name, value))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(labels: &Labels) -> SeriesKey {
        SeriesKey::from_labels(labels)
    }

    fn label_sets() -> impl Strategy<Value = Labels> {
        // Short names and values over a tiny alphabet with NUL and 0xFF-adjacent characters,
        // so prefixes, equal names and escapes are common.
        let text = prop::collection::vec(prop::sample::select(vec!['a', 'b', '\0', 'ÿ']), 0..3)
            .prop_map(|chars| chars.into_iter().collect::<String>());
        prop::collection::vec((text.clone(), text), 0..4).prop_map(Labels::from_pairs)
    }

    proptest! {
        #[test]
        fn keys_sort_and_decode_as_labels(a in label_sets(), b in label_sets()) {
            let (ka, kb) = (key(&a), key(&b));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!(ka.to_labels(), a.clone());
            let wire: Vec<(String, String)> =
                kb.into_proto().into_iter().map(|l| (l.name, l.value)).collect();
            let want: Vec<(String, String)> =
                b.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
            prop_assert_eq!(wire, want);
        }

        #[test]
        fn label_prefixes_compare_as_labels(a in label_sets(), b in label_sets(), n in 0usize..4) {
            let n = n.min(b.len());
            let mut prefix = SeriesKey::default();
            for label in b.iter().take(n) {
                prefix.push(&label.name, &label.value);
            }
            let labels_before = a.as_slice() < b.as_slice().get(..n).unwrap_or(&[]);
            prop_assert_eq!(key(&a).before_prefix(&key(&b), prefix.len()), labels_before);
        }
    }
}
