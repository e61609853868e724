//! Thanos's tracing configuration (`--tracing.config` / `--tracing.config-file`): YAML with a
//! `type` (OTLP, JAEGER, ...) and a provider-specific `config` map. It is parsed and validated
//! (`deny_unknown_fields` for the OTLP fields Thanos defines) so that a Thanos manifest's
//! tracing config is accepted or rejected as Thanos would; exporting spans is not implemented
//! yet, which startup logs as a warning.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::flags::TracingFlags;

/// The providers Thanos knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TracingProvider {
    Otlp,
    Jaeger,
    Stackdriver,
    GoogleCloud,
    ElasticApm,
    Lightstep,
    Datadog,
}

/// A parsed tracing configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    #[serde(rename = "type")]
    pub provider: TracingProvider,
    #[serde(default)]
    pub config: Option<serde_yaml::Value>,
}

/// The OTLP exporter options Thanos accepts (`pkg/tracing/otlp`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    pub client_type: Option<String>,
    pub service_name: Option<String>,
    pub reconnection_period: Option<String>,
    pub compression: Option<String>,
    pub insecure: Option<bool>,
    pub endpoint: Option<String>,
    pub url_path: Option<String>,
    pub timeout: Option<String>,
    pub retry_config: Option<serde_yaml::Value>,
    pub headers: Option<BTreeMap<String, String>>,
    pub tls_config: Option<serde_yaml::Value>,
    pub sampler_type: Option<String>,
    pub sampler_param: Option<String>,
}

impl TracingConfig {
    /// Parses and validates the YAML text of a tracing config.
    pub fn parse(yaml: &str) -> Result<Self> {
        let config: Self =
            serde_yaml::from_str(yaml).map_err(|source| Error::TracingConfig { source })?;
        if config.provider == TracingProvider::Otlp {
            let otlp = config.config.clone().unwrap_or(serde_yaml::Value::Null);
            if !otlp.is_null() {
                serde_yaml::from_value::<OtlpConfig>(otlp)
                    .map_err(|source| Error::TracingConfig { source })?;
            }
        }
        Ok(config)
    }
}

/// Reads the tracing config named by the flags (inline text wins over the file, as in Thanos),
/// validates it and logs that span export is not implemented yet. `Ok(None)` means tracing is
/// off.
pub fn load_tracing_config(flags: &TracingFlags) -> Result<Option<TracingConfig>> {
    let yaml = match (&flags.config, &flags.config_file) {
        (Some(text), _) if !text.trim().is_empty() => text.clone(),
        (_, Some(path)) => std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
            what: "tracing config",
            path: path.clone(),
            source,
        })?,
        _ => return Ok(None),
    };
    if yaml.trim().is_empty() {
        return Ok(None);
    }
    let config = TracingConfig::parse(&yaml)?;
    tracing::warn!(
        provider = ?config.provider,
        "tracing config accepted, but span export is not implemented yet; no spans are sent"
    );
    Ok(Some(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_config_is_validated() {
        let config = TracingConfig::parse(
            "type: OTLP\nconfig:\n  client_type: grpc\n  endpoint: a:4317\n  insecure: true\n",
        )
        .expect("valid config");
        assert_eq!(config.provider, TracingProvider::Otlp);
        let err = TracingConfig::parse("type: OTLP\nconfig:\n  endpont: a:4317\n")
            .expect_err("typo in field");
        assert!(
            crate::error::error_chain(&err).contains("endpont"),
            "{err:?}"
        );
        assert!(TracingConfig::parse("type: ZIPKIN\n").is_err());
        assert!(TracingConfig::parse("type: JAEGER\nextra: 1\n").is_err());
    }

    #[test]
    fn flags_resolution() {
        assert_eq!(
            load_tracing_config(&TracingFlags::default()).expect("no config"),
            None
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tracing.yml");
        std::fs::write(&path, "type: JAEGER\nconfig: {}\n").expect("write");
        let flags = TracingFlags {
            config_file: Some(path),
            config: None,
        };
        let config = load_tracing_config(&flags).expect("file config");
        assert_eq!(
            config.map(|config| config.provider),
            Some(TracingProvider::Jaeger)
        );
        let missing = TracingFlags {
            config_file: Some("/nonexistent/t.yml".into()),
            config: None,
        };
        assert!(load_tracing_config(&missing).is_err());
    }
}
