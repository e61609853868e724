//! The text format of `promtool tsdb dump` (Prometheus 2.42): one line per float sample,
//! `fmt.Printf("%s %g %d\n", labels, value, timestamp)`:
//!
//! ```text
//! {__name__="up", instance="x:9090", job="a"} 1 1700000000000
//! ```
//!
//! Labels print as `labels.String()` (name order, `", "` separators, values quoted like Go `%q`);
//! values as Go `%g` (shortest digits, exponent form below 1e-4 and from 1e6: `1.234567e+06`,
//! `NaN`, `+Inf`); timestamps in milliseconds. Series come in label order, samples in time order;
//! 2.42 stops a series at its first native-histogram sample.
//!
//! Use [`write_sample`] for one-off lines, or a [`SampleFormatter`] per series to format its
//! labels once.

use std::io::{self, Write};

use crate::gofmt::format_float_g_into;
use crate::labels::Labels;

/// Writes dump lines for one series, formatting its labels once.
#[derive(Debug, Clone)]
pub struct SampleFormatter {
    prefix_len: usize,
    line: String,
}

impl SampleFormatter {
    /// A formatter for the series `labels`.
    pub fn new(labels: &Labels) -> Self {
        let mut line = String::with_capacity(128);
        labels.write_prometheus_string(&mut line);
        line.push(' ');
        SampleFormatter {
            prefix_len: line.len(),
            line,
        }
    }

    /// Write one line: `<labels> <%g value> <timestamp>\n`.
    pub fn write(&mut self, out: &mut impl Write, t: i64, v: f64) -> io::Result<()> {
        use std::fmt::Write as _;
        self.line.truncate(self.prefix_len);
        format_float_g_into(&mut self.line, v);
        let _ = writeln!(self.line, " {t}");
        out.write_all(self.line.as_bytes())
    }
}

/// Write one dump line for a sample of the series `labels`.
pub fn write_sample(out: &mut impl Write, labels: &Labels, t: i64, v: f64) -> io::Result<()> {
    SampleFormatter::new(labels).write(out, t, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_promtool() {
        let labels = Labels::from_pairs([("__name__", "foo"), ("job", "b"), ("instance", "y")]);
        let mut out = Vec::new();
        write_sample(&mut out, &labels, 1_700_000_015_000, 1e21).unwrap();
        let mut formatter = SampleFormatter::new(&labels);
        formatter.write(&mut out, 1, f64::NAN).unwrap();
        formatter.write(&mut out, -5, 3.5).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{__name__=\"foo\", instance=\"y\", job=\"b\"} 1e+21 1700000015000\n\
             {__name__=\"foo\", instance=\"y\", job=\"b\"} NaN 1\n\
             {__name__=\"foo\", instance=\"y\", job=\"b\"} 3.5 -5\n"
        );
    }
}
