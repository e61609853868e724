//! A logfmt event formatter for `tracing-subscriber`, matching the shape of Thanos's go-kit
//! logs: `ts=2024-01-02T03:04:05.678Z level=info caller=strata_sidecar msg="starting" key=value`.
//! Values are quoted (with Rust's escaping, close to Go's `%q`) when they contain spaces,
//! quotes, `=` or control characters, or are empty.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub(super) struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let level = match *metadata.level() {
            Level::TRACE => "debug",
            Level::DEBUG => "debug",
            Level::INFO => "info",
            Level::WARN => "warn",
            Level::ERROR => "error",
        };
        let timestamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        write!(
            writer,
            "ts={timestamp} level={level} caller={}",
            metadata.target()
        )?;
        let mut line = String::new();
        event.record(&mut LogfmtVisitor { line: &mut line });
        writer.write_str(&line)?;
        writeln!(writer)
    }
}

struct LogfmtVisitor<'a> {
    line: &'a mut String,
}

impl LogfmtVisitor<'_> {
    fn push(&mut self, field: &Field, value: &str) {
        let key = match field.name() {
            "message" => "msg",
            name => name,
        };
        self.line.push(' ');
        self.line.push_str(key);
        self.line.push('=');
        push_value(self.line, value);
    }
}

impl Visit for LogfmtVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, &crate::error::error_chain(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, &format!("{value:?}"));
    }
}

fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value
            .chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c.is_control())
}

fn push_value(line: &mut String, value: &str) {
    if needs_quotes(value) {
        let _ = write!(line, "{value:?}");
    } else {
        line.push_str(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let mut line = String::new();
        push_value(&mut line, "plain");
        line.push(' ');
        push_value(&mut line, "two words");
        line.push(' ');
        push_value(&mut line, "");
        line.push(' ');
        push_value(&mut line, "a=\"b\"\n");
        assert_eq!(line, r#"plain "two words" "" "a=\"b\"\n""#);
    }
}
