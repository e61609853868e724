//! Thanos's tracing configuration (`--tracing.config` / `--tracing.config-file`): YAML with a
//! `type` (OTLP, JAEGER, ...) and a provider-specific `config` map. It is parsed and validated
//! (`deny_unknown_fields` for the OTLP fields Thanos defines) so that a Thanos manifest's
//! tracing config that Thanos would reject gets the same parse error; exporting spans is not
//! implemented, so a valid config fails start-up too, saying so (never silently ignored).

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

/// Reads the tracing config named by the flags. Span export is not implemented, so a tracing
/// config fails start-up (a flag is never silently ignored): a malformed one with the parse
/// error, a valid one saying that spans cannot be sent. Both flags at once are refused, as in
/// Thanos. `Ok(None)` means tracing is off, which is the only way Strata runs.
pub fn load_tracing_config(flags: &TracingFlags) -> Result<Option<TracingConfig>> {
    let inline = flags.config.as_ref().filter(|text| !text.trim().is_empty());
    crate::flags::refuse_both_forms(
        "--tracing.config",
        inline.is_some(),
        "--tracing.config-file",
        flags.config_file.is_some(),
    )?;
    let (flag, yaml) = match (inline, &flags.config_file) {
        (Some(text), _) => ("--tracing.config", text.clone()),
        (None, Some(path)) => (
            "--tracing.config-file",
            std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
                what: "tracing config",
                path: path.clone(),
                source,
            })?,
        ),
        (None, None) => return Ok(None),
    };
    if yaml.trim().is_empty() {
        return Ok(None);
    }
    let config = TracingConfig::parse(&yaml)?;
    Err(Error::InvalidFlag {
        flag,
        reason: format!(
            "tracing type {:?} is valid, but Strata cannot export spans; remove the tracing config",
            config.provider
        ),
    })
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
    fn a_tracing_config_fails_start_up() {
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
        let err = load_tracing_config(&flags).expect_err("no span export");
        assert!(err.to_string().contains("--tracing.config-file"), "{err}");
        let both = TracingFlags {
            config: Some("type: JAEGER\n".to_owned()),
            ..flags
        };
        let err = load_tracing_config(&both).expect_err("both forms");
        assert!(err.to_string().contains("both"), "{err}");
        let missing = TracingFlags {
            config_file: Some("/nonexistent/t.yml".into()),
            config: None,
        };
        assert!(load_tracing_config(&missing).is_err());
    }
}
