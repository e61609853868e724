//! Go-compatible float formatting. Prometheus renders label values (`count_values`), error
//! messages and JSON with Go's `strconv`, which differs from Rust's formatting for infinities
//! (`+Inf`) and exponents (`1e-07` vs `1e-7`).

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip digits, never an exponent.
pub fn go_float_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        // Rust's Display prints the shortest round-trip digits without an exponent.
        format!("{v}")
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
    let sci = format!("{v:e}");
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => return sci,
    };
    if (-4..21).contains(&exp) {
        format!("{v}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
