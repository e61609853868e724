//! Go-compatible float formatting. Prometheus renders label values (`count_values`), error
//! messages and JSON with Go's `strconv`, which differs from Rust's formatting for infinities
//! (`+Inf`) and exponents (`1e-07` vs `1e-7`).

/// The shortest round-trip digits of finite `v` as `d.ddde<exp>` (Rust's `{:e}`), with Go's
/// choice when the exact value lies halfway between two shortest candidates (possible only at
/// 16-17 digits): Rust rounds such a tie up, Go to even, as Rust's fixed-precision form does.
pub fn shortest_e(v: f64) -> String {
    let sci = format!("{v:e}");
    let digits = sci
        .split('e')
        .next()
        .map_or(0, |m| m.bytes().filter(u8::is_ascii_digit).count());
    if digits >= 16 {
        let even = format!("{v:.*e}", digits - 1);
        if even.parse::<f64>() == Ok(v) {
            return even;
        }
    }
    sci
}

/// `d.ddde<exp>` written out without an exponent.
fn plain(sci: &str) -> String {
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    if exponent < 0 {
        let zeros = "0".repeat(usize::try_from(-exponent - 1).unwrap_or(0));
        return format!("{sign}0.{zeros}{digits}");
    }
    let int_len = usize::try_from(exponent).unwrap_or(0) + 1;
    if digits.len() <= int_len {
        format!("{sign}{digits}{}", "0".repeat(int_len - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip digits, never an exponent.
pub fn go_float_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else if v == 0.0 {
        // Rust's Display and Go agree on zeros ("0", "-0").
        format!("{v}")
    } else {
        plain(&shortest_e(v))
    }
}

/// Go's `%v` / `strconv.FormatFloat(v, 'g', -1, 64)` with `%v`'s exponent threshold of 21:
/// plain digits for exponents in [-4, 21), otherwise `d.ddde±XX` with at least two exponent digits.
pub fn go_float_g(v: f64) -> String {
    if !v.is_finite() {
        return go_float_f(v);
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".to_string()
        } else {
            "0".to_string()
        };
    }
    let sci = shortest_e(v);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => return sci,
    };
    if (-4..21).contains(&exp) {
        plain(&sci)
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_round_to_even_like_go() {
        // Exactly 1193744643.76953125: Go prints ...312, Rust's shortest form ...313.
        let tie = 1_193_744_643.769_531_2_f64;
        assert_eq!(go_float_f(tie), "1193744643.7695312");
        assert_eq!(go_float_g(tie), "1193744643.7695312");
        assert_eq!(shortest_e(tie), "1.1937446437695312e9");
        assert_eq!(go_float_f(-0.000123), "-0.000123");
        assert_eq!(go_float_f(123456789.0), "123456789");
        assert_eq!(go_float_f(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(go_float_f(1.5e300).len(), 301);
    }

    #[test]
    fn f_format() {
        assert_eq!(go_float_f(1e21), "1000000000000000000000");
        assert_eq!(go_float_f(1e-7), "0.0000001");
        assert_eq!(go_float_f(f64::INFINITY), "+Inf");
        assert_eq!(go_float_f(2.5), "2.5");
    }

    #[test]
    fn g_format() {
        assert_eq!(go_float_g(1e21), "1e+21");
        assert_eq!(go_float_g(1e-7), "1e-07");
        assert_eq!(go_float_g(123.5), "123.5");
        assert_eq!(go_float_g(1.5e-5), "1.5e-05");
        assert_eq!(go_float_g(f64::NEG_INFINITY), "-Inf");
    }
}
