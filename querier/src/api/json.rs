//! Prometheus's JSON, byte for byte (reference/prometheus.md 5.2 and 5.5): the envelope with
//! its fixed field order, HTML-escaped strings (jsoniter's standard-library-compatible mode),
//! sample timestamps as seconds with exactly three decimals when not whole, sample values with
//! Go's `FormatFloat` rules (exponent form only below 1e-6 or from 1e21), scalar values never
//! with an exponent, and `NaN`/`+Inf`/`-Inf` as strings.
//!
//! The writer appends to a `String`; results are written series by series, never through an
//! intermediate tree.

use std::fmt::Write;

use strata_promql::format::go_float_f;
use strata_promql::{Labels as PromLabels, Value};

/// Appends `text` as a JSON string, escaped like Go's `encoding/json` with HTML escaping.
pub fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: shortest digits, exponent with a sign and at
/// least two digits (`1e-07`, `1.5e+21`).
fn go_float_e(v: f64) -> String {
    let formatted = strata_promql::format::shortest_e(v);
    match formatted.split_once('e') {
        Some((mantissa, exponent)) => {
            let (sign, digits) = match exponent.strip_prefix('-') {
                Some(digits) => ('-', digits),
                None => ('+', exponent),
            };
            let padded = if digits.len() < 2 {
                format!("0{digits}")
            } else {
                digits.to_owned()
            };
            format!("{mantissa}e{sign}{padded}")
        }
        None => formatted,
    }
}

/// A sample value in a vector or matrix: `'e'` format when `v != 0` and `|v| < 1e-6` or
/// `|v| >= 1e21`, else `'f'`.
pub fn format_sample_value(v: f64) -> String {
    if !v.is_finite() {
        return go_float_f(v);
    }
    let magnitude = v.abs();
    if v != 0.0 && !(1e-6..1e21).contains(&magnitude) {
        go_float_e(v)
    } else {
        go_float_f(v)
    }
}

/// A sample timestamp (ms) as seconds: whole seconds, then `.` and exactly three digits when
/// the milliseconds are not zero.
pub fn write_sample_timestamp(out: &mut String, t: i64) {
    if t < 0 {
        out.push('-');
    }
    let magnitude = t.unsigned_abs();
    let _ = write!(out, "{}", magnitude / 1000);
    let fraction = magnitude % 1000;
    if fraction != 0 {
        let _ = write!(out, ".{fraction:03}");
    }
}

/// A scalar or string result's timestamp: Go's `encoding/json` of `float64(t)/1000`.
fn write_float_timestamp(out: &mut String, t: i64) {
    let seconds = t as f64 / 1000.0;
    let _ = write!(out, "{seconds}");
}

/// Appends a label set as a JSON object (keys in name order).
pub fn write_labels<'a>(out: &mut String, labels: impl Iterator<Item = (&'a str, &'a str)>) {
    out.push('{');
    for (index, (name, value)) in labels.enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_string(out, name);
        out.push(':');
        write_string(out, value);
    }
    out.push('}');
}

fn write_prom_labels(out: &mut String, labels: &PromLabels) {
    write_labels(
        out,
        labels
            .iter()
            .map(|label| (label.name.as_str(), label.value.as_str())),
    );
}

fn write_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    write_sample_timestamp(out, t);
    out.push_str(",\"");
    out.push_str(&format_sample_value(v));
    out.push_str("\"]");
}

/// Appends `{"resultType":...,"result":...}` for a query result.
pub fn write_query_data(out: &mut String, value: &Value) {
    out.push_str("{\"resultType\":\"");
    out.push_str(value.type_name());
    out.push_str("\",\"result\":");
    match value {
        Value::Scalar { t, v } => {
            out.push('[');
            write_float_timestamp(out, *t);
            out.push(',');
            write_string(out, &go_float_f(*v));
            out.push(']');
        }
        Value::String { t, v } => {
            out.push('[');
            write_float_timestamp(out, *t);
            out.push(',');
            write_string(out, v);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push('[');
            for (index, sample) in samples.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_prom_labels(out, &sample.labels);
                out.push_str(",\"value\":");
                write_point(out, sample.t, sample.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push('[');
            for (index, one) in series.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_prom_labels(out, &one.labels);
                out.push_str(",\"values\":[");
                for (position, point) in one.points.iter().enumerate() {
                    if position > 0 {
                        out.push(',');
                    }
                    write_point(out, point.t, point.v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
}

/// Appends a JSON array of strings.
pub fn write_string_array(out: &mut String, values: &[String]) {
    out.push('[');
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_string(out, value);
    }
    out.push(']');
}

/// `{"status":"success","data":<data>[,"warnings":[...]]}`.
pub fn success(data: &str, warnings: &[String]) -> String {
    let mut out = String::with_capacity(data.len() + 64);
    out.push_str("{\"status\":\"success\",\"data\":");
    out.push_str(data);
    if !warnings.is_empty() {
        out.push_str(",\"warnings\":");
        write_string_array(&mut out, warnings);
    }
    out.push('}');
    out
}

/// `{"status":"error","errorType":<type>,"error":<message>}` (errors carry no warnings, as in
/// 2.42).
pub fn error(error_type: &str, message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 64);
    out.push_str("{\"status\":\"error\",\"errorType\":");
    write_string(&mut out, error_type);
    out.push_str(",\"error\":");
    write_string(&mut out, message);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use strata_promql::{Point, Sample, Series};

    use super::*;

    #[test]
    fn sample_values_format_like_go() {
        for (value, expected) in [
            (1e-7, "1e-07"),
            (1e21, "1e+21"),
            (0.0000012345678, "0.0000012345678"),
            (1234567.8, "1234567.8"),
            (-0.5, "-0.5"),
            (100.0, "100"),
            (0.0, "0"),
            (1.5e300, "1.5e+300"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(format_sample_value(value), expected, "{value}");
        }
    }

    #[test]
    fn timestamps_keep_three_decimals() {
        for (t, expected) in [
            (1_700_000_060_500, "1700000060.500"),
            (10, "0.010"),
            (-1, "-0.001"),
            (1_700_000_060_000, "1700000060"),
            (i64::MIN, "-9223372036854775.808"),
        ] {
            let mut out = String::new();
            write_sample_timestamp(&mut out, t);
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn results_have_prometheus_shapes() {
        let labels = PromLabels::from_pairs([("__name__", "up"), ("job", "a<b>&")]);
        let mut out = String::new();
        write_query_data(
            &mut out,
            &Value::Vector(vec![Sample {
                labels: labels.clone(),
                t: 1_700_000_031_500,
                v: 1.0,
            }]),
        );
        assert_eq!(
            out,
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\u003cb\u003e\u0026"},"value":[1700000031.500,"1"]}]}"#
        );
        let mut out = String::new();
        write_query_data(
            &mut out,
            &Value::Matrix(vec![Series {
                labels: PromLabels::empty(),
                points: vec![Point { t: 0, v: 2.5 }, Point { t: 15_000, v: 1e-7 }],
            }]),
        );
        assert_eq!(
            out,
            r#"{"resultType":"matrix","result":[{"metric":{},"values":[[0,"2.5"],[15,"1e-07"]]}]}"#
        );
        let mut out = String::new();
        write_query_data(
            &mut out,
            &Value::Scalar {
                t: 1_700_000_031_500,
                v: 1.5e-7,
            },
        );
        assert_eq!(
            out,
            r#"{"resultType":"scalar","result":[1700000031.5,"0.00000015"]}"#
        );
        let mut out = String::new();
        write_query_data(&mut out, &Value::Vector(Vec::new()));
        assert_eq!(out, r#"{"resultType":"vector","result":[]}"#);
        assert_eq!(
            success("[]", &["w".into()]),
            r#"{"status":"success","data":[],"warnings":["w"]}"#
        );
        assert_eq!(
            error("bad_data", "x \"y\"\n"),
            r#"{"status":"error","errorType":"bad_data","error":"x \"y\"\n"}"#
        );
    }
}
