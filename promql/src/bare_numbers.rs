//! Bare numbers where PromQL 2.42 wants a duration: `x[5]`, `x[1m:5]`, `x offset 5`.
//!
//! The parser crate reads a number there as seconds (and panics converting a huge one to a
//! `Duration`, which the fuzzer found); Prometheus 2.42 refuses them. This scan runs before the
//! crate and answers with 2.42's message and position: "missing unit character in duration"
//! for a range, `unexpected number "5" in subquery selector, expected duration or "]"` for a
//! subquery step, `unexpected number "5" in offset, expected duration` after `offset`. String
//! literals and comments are skipped; everything else is left to the parser.

use crate::error::Error;

/// Words after which `offset` is not the offset modifier (a binary operator or grouping
/// keyword precedes something else there).
const KEYWORDS: [&str; 10] = [
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
];

/// The first bare number in a duration position, as 2.42's parse error.
pub(crate) fn check(query: &str) -> Result<(), Error> {
    let bytes = query.as_bytes();
    let mut i = 0usize;
    // Inside `[...]`: false before the colon, true after it.
    let mut bracket: Option<bool> = None;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' | b'\'' | b'`' => {
                i = skip_string(bytes, i);
                continue;
            }
            b'#' => {
                while bytes.get(i).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
                continue;
            }
            b'[' => {
                bracket = Some(false);
                let at = skip_spaces(bytes, i + 1);
                if bare_number(bytes, at).is_some() {
                    return Err(error(query, at, "missing unit character in duration"));
                }
                if starts_with_word(bytes, at, "inf") || starts_with_word(bytes, at, "nan") {
                    return Err(error(query, at, "bad duration syntax: \"\""));
                }
            }
            b':' if bracket == Some(false) => {
                bracket = Some(true);
                let at = skip_spaces(bytes, i + 1);
                if let Some(end) = bare_number(bytes, at) {
                    let number = query.get(at..end).unwrap_or("");
                    let message = format!(
                        "unexpected number \"{number}\" in subquery selector, expected duration or \"]\""
                    );
                    return Err(error(query, at, &message));
                }
            }
            b']' => bracket = None,
            _ if is_word_start(bytes, i) => {
                let end = word_end(bytes, i);
                let word = query.get(i..end).unwrap_or("");
                if word.eq_ignore_ascii_case("offset") && offset_modifier(query, i) {
                    let mut at = skip_spaces(bytes, end);
                    if bytes.get(at) == Some(&b'-') {
                        at = skip_spaces(bytes, at + 1);
                    }
                    if let Some(number_end) = bare_number(bytes, at) {
                        let number = query.get(at..number_end).unwrap_or("");
                        let message =
                            format!("unexpected number \"{number}\" in offset, expected duration");
                        return Err(error(query, at, &message));
                    }
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

fn error(query: &str, at: usize, message: &str) -> Error {
    Error::Parse {
        position: super::parser::offset_to_position(query, at),
        message: message.to_owned(),
    }
}

/// Is the `offset` at `start` the modifier: after a selector, a range or a parenthesis, not
/// after an operator keyword?
fn offset_modifier(query: &str, start: usize) -> bool {
    let before = query.get(..start).unwrap_or("").trim_end();
    match before.as_bytes().last() {
        Some(b'}' | b']' | b')') => true,
        Some(&c) if c.is_ascii_alphanumeric() || c == b'_' || c == b':' => {
            let word_start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(0, |p| p + 1);
            let word = before.get(word_start..).unwrap_or("");
            !KEYWORDS.iter().any(|k| word.eq_ignore_ascii_case(k))
        }
        _ => false,
    }
}

fn is_word_start(bytes: &[u8], i: usize) -> bool {
    let b = bytes.get(i).copied().unwrap_or(0);
    let prev = i.checked_sub(1).and_then(|p| bytes.get(p)).copied();
    (b.is_ascii_alphabetic() || b == b'_')
        && !prev.is_some_and(|p| p.is_ascii_alphanumeric() || p == b'_' || p == b':')
}

fn word_end(bytes: &[u8], mut i: usize) -> usize {
    while bytes
        .get(i)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b':')
    {
        i += 1;
    }
    i
}

fn starts_with_word(bytes: &[u8], at: usize, word: &str) -> bool {
    let end = at + word.len();
    bytes
        .get(at..end)
        .is_some_and(|w| w.eq_ignore_ascii_case(word.as_bytes()))
        && !bytes
            .get(end)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

fn skip_spaces(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// The end of a string literal starting at `start` (backslash escapes in `"` and `'`).
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes.get(start).copied().unwrap_or(b'"');
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' && quote != b'`' {
            i += 2;
            continue;
        }
        i += 1;
        if b == quote {
            break;
        }
    }
    i
}

/// The end of a number at `at` (decimal with fraction and exponent, or hexadecimal) that no
/// letter, digit or underscore follows: a number without a unit.
fn bare_number(bytes: &[u8], at: usize) -> Option<usize> {
    let digit = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    let mut i = at;
    if bytes.get(i) == Some(&b'0') && matches!(bytes.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        let digits = i;
        while bytes.get(i).is_some_and(u8::is_ascii_hexdigit) {
            i += 1;
        }
        if i == digits {
            return None;
        }
    } else {
        let digits = i;
        while digit(i) {
            i += 1;
        }
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            while digit(i) {
                i += 1;
            }
        }
        if i == digits || (i == digits + 1 && bytes.get(digits) == Some(&b'.')) {
            return None;
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(bytes.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if digit(j) {
                while digit(j) {
                    j += 1;
                }
                i = j;
            }
        }
    }
    let unit_follows = bytes
        .get(i)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    (!unit_follows).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(query: &str) -> Option<String> {
        check(query).err().map(|e| e.to_string())
    }

    /// Prometheus 2.42's answers to the same queries (its HTTP API, this machine).
    #[test]
    fn bare_numbers_get_prometheus_errors() {
        let huge = "7".repeat(90);
        let cases = [
            (
                "mat[5]",
                "1:5: parse error: missing unit character in duration",
            ),
            (
                &format!("mat[{huge}]"),
                "1:5: parse error: missing unit character in duration",
            ),
            (
                "mat[ 5 ]",
                "1:6: parse error: missing unit character in duration",
            ),
            (
                "mat[5:1m]",
                "1:5: parse error: missing unit character in duration",
            ),
            (
                "rate(mat[5])",
                "1:10: parse error: missing unit character in duration",
            ),
            (
                "mat[0x10]",
                "1:5: parse error: missing unit character in duration",
            ),
            (
                "mat[1.5]",
                "1:5: parse error: missing unit character in duration",
            ),
            (
                "sum(mat)[5:]",
                "1:10: parse error: missing unit character in duration",
            ),
            ("mat[Inf]", "1:5: parse error: bad duration syntax: \"\""),
            (
                "mat[1m:5]",
                "1:8: parse error: unexpected number \"5\" in subquery selector, expected duration or \"]\"",
            ),
            (
                "mat offset 5",
                "1:12: parse error: unexpected number \"5\" in offset, expected duration",
            ),
            (
                "mat offset -5",
                "1:13: parse error: unexpected number \"5\" in offset, expected duration",
            ),
            (
                "mat[1m] offset 5",
                "1:16: parse error: unexpected number \"5\" in offset, expected duration",
            ),
            (
                "mat offset  1.5e3",
                "1:13: parse error: unexpected number \"1.5e3\" in offset, expected duration",
            ),
        ];
        for (query, want) in cases {
            assert_eq!(message(query).as_deref(), Some(want), "{query}");
        }
    }

    #[test]
    fn durations_strings_and_comments_pass() {
        for query in [
            "mat[5m]",
            "mat[1m:5m]",
            "mat[1h30m] offset 5m",
            "mat{a=\"[5]\"}[1m]",
            "mat{a='x[5]'} # [5] in a comment\n",
            "sum(rate(x[5m])) by (offset)",
            "x and offset",
            "mat[5u]",
            "x offset 1m0s",
            "mat[",
            "",
        ] {
            assert_eq!(message(query), None, "{query}");
        }
    }
}
