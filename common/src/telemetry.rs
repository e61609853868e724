//! Telemetry shared by every Strata process:
//!
//! - logging: `tracing` events printed as logfmt (Thanos's default) or JSON, filtered by
//!   `--log.level` (see [`init_logging`]);
//! - metrics: a [`MetricsRegistry`] (a `prometheus-client` registry passed explicitly, never a
//!   global) holding `thanos_build_info` and the `process_*` metrics;
//! - tracing: Thanos's `--tracing.config[-file]` YAML is parsed and validated
//!   ([`load_tracing_config`]), but spans are not exported: any tracing config fails start-up
//!   with an error saying so.

mod logfmt;
mod process;
mod tracing_config;

use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

use crate::error::{Error, Result};
use crate::flags::{LogFlags, LogFormat, LogLevel};

pub use tracing_config::{TracingConfig, TracingProvider, load_tracing_config};

/// The metric registry of one process, shared by its components. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct MetricsRegistry {
    registry: Arc<Mutex<Registry>>,
}

/// Labels of `thanos_build_info`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildInfoLabels {
    version: String,
    revision: String,
    branch: String,
    goversion: String,
}

impl MetricsRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding the metrics every Strata process exports: `thanos_build_info` and
    /// the Linux `process_*` metrics.
    pub fn for_process() -> Self {
        let metrics = Self::new();
        let build_info = Family::<BuildInfoLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildInfoLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                revision: option_env!("STRATA_GIT_REVISION")
                    .unwrap_or("unknown")
                    .to_owned(),
                branch: option_env!("STRATA_GIT_BRANCH")
                    .unwrap_or("unknown")
                    .to_owned(),
                // Thanos reports the Go version; Strata reports that it is Rust.
                goversion: "rust".to_owned(),
            })
            .set(1);
        metrics.with_registry(|registry| {
            registry.register(
                "thanos_build_info",
                "A metric with a constant '1' value labeled by version, revision, branch, and goversion from which thanos was built",
                build_info,
            );
            registry.register_collector(Box::new(process::ProcessCollector::new()));
        });
        metrics
    }

    /// Runs `register` with the registry locked, to register metrics.
    pub fn with_registry<R>(&self, register: impl FnOnce(&mut Registry) -> R) -> R {
        register(&mut self.lock())
    }

    /// The registry in the OpenMetrics text format (which Prometheus scrapes natively).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.lock())?;
        Ok(text)
    }

    /// The registry in the Prometheus text format 0.0.4, for scrapers that do not ask for
    /// OpenMetrics (curl, older agents). See [`openmetrics_to_prometheus_text`].
    pub fn encode_prometheus_text(&self) -> Result<String, std::fmt::Error> {
        Ok(openmetrics_to_prometheus_text(&self.encode()?))
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave a registry half-updated in a way that
        // matters for scraping, so a poisoned lock is still used.
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A label value escaped for the exposition formats (`\`, `"` and newlines), which
/// `prometheus-client` 0.23 writes as they are. Use it for label values that come from outside
/// (external labels of stores, ...): one unescaped quote makes the whole `/metrics` page
/// unreadable to Prometheus.
pub fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Rewrites `prometheus-client`'s OpenMetrics output as Prometheus text format 0.0.4: counter
/// families are named with their `_total` suffix (OpenMetrics names the family without it),
/// `info` families become gauges named `<name>_info`, `unknown` becomes `untyped`, and the
/// `# UNIT` and `# EOF` lines and counter `_created` samples are dropped.
pub fn openmetrics_to_prometheus_text(openmetrics: &str) -> String {
    let mut text = String::with_capacity(openmetrics.len());
    // HELP comes before TYPE in OpenMetrics; hold it until the TYPE says how to rename.
    let mut pending_help: Option<(&str, &str)> = None;
    let mut counter_family: Option<&str> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            pending_help = Some((name, help));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, metric_type) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (text_name, text_type) = match metric_type {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gauge" | "histogram" | "summary" => (name.to_owned(), metric_type),
                _ => (name.to_owned(), "untyped"),
            };
            counter_family = (metric_type == "counter").then_some(name);
            if let Some((help_name, help)) = pending_help.take()
                && help_name == name
            {
                text.push_str(&format!("# HELP {text_name} {help}\n"));
            }
            text.push_str(&format!("# TYPE {text_name} {text_type}\n"));
            continue;
        }
        if let Some(family) = counter_family {
            let sample_name = line.split(['{', ' ']).next().unwrap_or_default();
            if sample_name.strip_prefix(family) == Some("_created") {
                continue;
            }
        }
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// Installs the global `tracing` subscriber for `--log.level` and `--log.format`. `RUST_LOG`,
/// when set, overrides the level with its own directives.
pub fn init_logging(flags: &LogFlags) -> Result<()> {
    let level = match flags.log_level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    // The HTTP/2 stack is very chatty at debug level; keep it at info unless asked for.
    let directives = format!("{level},h2=info,hyper=info,hyper_util=info,tower=info,rustls=info");
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => EnvFilter::try_new(env),
        _ => EnvFilter::try_new(directives),
    }
    .map_err(|err| Error::Logging {
        reason: err.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match flags.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Logfmt => builder.event_format(logfmt::Logfmt).try_init(),
    };
    installed.map_err(|err| Error::Logging {
        reason: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            escape_label_value("{cluster=\"a\\b\"}\n"),
            "{cluster=\\\"a\\\\b\\\"}\\n"
        );
        assert_eq!(escape_label_value("plain"), "plain");
    }

    #[test]
    fn process_registry_exports_build_info_and_process_metrics() {
        let metrics = MetricsRegistry::for_process();
        let text = metrics.encode().expect("encode");
        assert!(text.contains("thanos_build_info{"), "{text}");
        assert!(text.contains("version=\"0.1.0\""), "{text}");
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert!(text.contains("process_cpu_seconds_total "), "{text}");
        assert!(text.contains("process_open_fds "), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn prometheus_text_names_counters_with_total() {
        let openmetrics = "# HELP http_requests Tracks requests.\n# TYPE http_requests counter\n\
            http_requests_total{code=\"200\"} 1\nhttp_requests_created{code=\"200\"} 1.7e9\n\
            # HELP up Is up.\n# TYPE up gauge\n# UNIT up seconds\nup 1\n\
            # HELP build Build.\n# TYPE build info\nbuild_info{v=\"1\"} 1\n# EOF\n";
        let expected = "# HELP http_requests_total Tracks requests.\n# TYPE http_requests_total counter\n\
            http_requests_total{code=\"200\"} 1\n# HELP up Is up.\n# TYPE up gauge\nup 1\n\
            # HELP build_info Build.\n# TYPE build_info gauge\nbuild_info{v=\"1\"} 1\n";
        assert_eq!(openmetrics_to_prometheus_text(openmetrics), expected);
    }
}
