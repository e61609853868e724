//! Go's text formatting rules that Prometheus output depends on: `strconv.Quote` (`%q`, used for
//! label values in `labels.String()`) and `strconv.FormatFloat(v, 'g', -1, 64)` (`%g`, used by
//! `promtool tsdb dump`). Byte-identical output with promtool needs both exactly.

use std::fmt::Write as _;

/// Append `value` quoted as Go's `strconv.Quote` does: `"` delimiters, `\a \b \f \n \r \t \v \\ \"`
/// escapes, `\xNN` for other ASCII control bytes, `\uNNNN`/`\UNNNNNNNN` for non-printable runes.
///
/// Go's `unicode.IsPrint` is approximated with Rust's character properties: control, format and
/// non-ASCII space characters are escaped. Letters, marks, numbers, punctuation and symbols print
/// as themselves, as in Go. (Unassigned code points, which Go escapes, print as themselves here;
/// they do not occur in practice.)
pub fn quote_into(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0B}' => out.push_str("\\v"),
            ' '..='~' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7F}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

/// `strconv.Quote(value)`.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    quote_into(&mut out, value);
    out
}

fn is_go_printable(c: char) -> bool {
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    // Format characters (Unicode category Cf) and private use / noncharacters that Go escapes.
    !matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xE000..=0xF8FF | 0xFFFE..=0xFFFF | 0x110BD | 0x110CD | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F | 0xF0000..)
}

/// Append `value` formatted as Go's `%g` (`strconv.FormatFloat(v, 'g', -1, 64)`): the shortest
/// round-trip digits, in exponent form when the decimal exponent is < -4 or >= 6 (Go uses 6, not
/// the digit count, for the shortest form), with a signed exponent of at least two digits; `NaN`,
/// `+Inf`, `-Inf`.
pub fn format_float_g_into(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
        return;
    }
    if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if value == 0.0 {
        out.push_str(if value.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits as `d.ddddde<exp>`.
    let mut sci = String::with_capacity(32);
    let _ = write!(sci, "{value:e}");
    // When the exact value lies halfway between two shortest candidates (possible only at
    // 16-17 digits), Rust rounds the tie up and Go to even: Rust's fixed-precision form is
    // correctly rounded half to even, so take it when it round-trips too.
    let shortest_digits = sci
        .split('e')
        .next()
        .map_or(0, |m| m.bytes().filter(u8::is_ascii_digit).count());
    if shortest_digits >= 16 {
        let even = format!("{value:.*e}", shortest_digits - 1);
        if even.parse::<f64>() == Ok(value) {
            sci = even;
        }
    }
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if negative {
        out.push('-');
    }
    if !(-4..6).contains(&exponent) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exponent < 0 { '-' } else { '+' });
        let _ = write!(out, "{:02}", exponent.unsigned_abs());
    } else if exponent < 0 {
        out.push_str("0.");
        for _ in 0..(-exponent - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exponent as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
}

/// `strconv.FormatFloat(value, 'g', -1, 64)`.
pub fn format_float_g(value: f64) -> String {
    let mut out = String::with_capacity(24);
    format_float_g_into(&mut out, value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_formatting_matches_go() {
        let cases: &[(f64, &str)] = &[
            (1234567.0, "1.234567e+06"),
            (123456.0, "123456"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (1e20, "1e+20"),
            (1e21, "1e+21"),
            (3.5, "3.5"),
            (100.0, "100"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (-0.0, "-0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (1e-300, "1e-300"),
            (0.1, "0.1"),
            (999999.0, "999999"),
            (1000000.0, "1e+06"),
            (1.5e-5, "1.5e-05"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (12.000001, "12.000001"),
            // Exactly halfway between two 17-digit strings: Go rounds to even.
            (1_193_744_643.769_531_2, "1.1937446437695312e+09"),
        ];
        for (value, want) in cases {
            assert_eq!(format_float_g(*value), *want, "{value:?}");
        }
    }

    #[test]
    fn quoting_matches_go() {
        assert_eq!(quote("plain"), "\"plain\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("\n\t\u{7}\u{1}\u{7f}"), "\"\\n\\t\\a\\x01\\x7f\"");
        assert_eq!(quote("héllo ✓"), "\"héllo ✓\"");
        assert_eq!(quote("\u{a0}\u{200b}"), "\"\\u00a0\\u200b\"");
    }
}
