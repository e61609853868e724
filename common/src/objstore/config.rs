//! Thanos's objstore.yml: parsing, validation and redaction.
//!
//! The file has three top-level keys, `type`, `config` and `prefix`; only the first YAML document
//! counts and `$(VAR)` is replaced by the environment variable `VAR` before parsing. Every struct
//! here rejects unknown fields so that a typo (`bucktet:`) is an error naming the field instead of
//! a silently ignored setting. Field names and defaults are Thanos's (thanos-io/objstore
//! `providers/*`, `exthttp`), see reference/thanos.md section 8.
//!
//! Secrets (`secret_key`, `session_token`, `storage_account_key`, `storage_connection_string`,
//! `client_secret`, `service_account`) are held in [`Secret`], whose `Debug` and `Serialize` both
//! print `<secret>`: a config can be logged or shown on /api/v1/status/flags as is.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Error, Result};

/// Default multipart part size (Thanos's generated default for S3).
pub const DEFAULT_PART_SIZE: u64 = 64 * 1024 * 1024;
/// Smallest part S3 accepts (except for the last part of an upload).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// A validated objstore.yml.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketConfig {
    /// Which backend, with its `config` section.
    #[serde(flatten)]
    pub backend: Backend,
    /// Path prefix inside the bucket under which every object lives ("" = bucket root).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub prefix: String,
}

/// The `type` of an objstore.yml together with its `config` section.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "config")]
pub enum Backend {
    #[serde(rename = "S3")]
    S3(S3Config),
    #[serde(rename = "GCS")]
    Gcs(GcsConfig),
    #[serde(rename = "AZURE")]
    Azure(AzureConfig),
    #[serde(rename = "FILESYSTEM")]
    Filesystem(FilesystemConfig),
}

impl Backend {
    /// The `type` word as written in objstore.yml.
    pub fn type_name(&self) -> &'static str {
        match self {
            Backend::S3(_) => "S3",
            Backend::Gcs(_) => "GCS",
            Backend::Azure(_) => "AZURE",
            Backend::Filesystem(_) => "FILESYSTEM",
        }
    }
}

pub use crate::secret::Secret;

/// A duration written the Prometheus way (`model.Duration`): `1m30s`, `2m`, `500ms`, `0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    pub fn get(self) -> Duration {
        self.0
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        // A visitor (not String then parse) so that serde_yaml reports the error at the field,
        // with its full path.
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = PromDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 1m30s")
            }
            fn visit_str<E: serde::de::Error>(
                self,
                text: &str,
            ) -> std::result::Result<Self::Value, E> {
                parse_prom_duration(text)
                    .map(PromDuration)
                    .map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_prom_duration(self.0))
    }
}

/// Parses Prometheus's duration syntax: an ordered sequence of `<int><unit>` with units
/// y, w, d, h, m, s, ms (a year is 365 days), or a bare `0`.
pub fn parse_prom_duration(text: &str) -> std::result::Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    let bad = || format!("not a valid duration string: {text:?}");
    if text.is_empty() {
        return Err(bad());
    }
    let mut rest = text;
    let mut next_unit = 0usize;
    let mut total_ms: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let (number, tail) = rest.split_at(digits);
        let value: u64 = number.parse().map_err(|_| bad())?;
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        // Units must appear at most once each and from largest to smallest.
        let position = UNITS
            .iter()
            .enumerate()
            .skip(next_unit)
            .find(|(_, (name, _))| *name == unit)
            .map(|(index, _)| index)
            .ok_or_else(bad)?;
        let millis = UNITS.get(position).map(|(_, ms)| *ms).ok_or_else(bad)?;
        total_ms = value
            .checked_mul(millis)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(bad)?;
        next_unit = position + 1;
        rest = tail;
    }
    Ok(Duration::from_millis(total_ms))
}

fn format_prom_duration(duration: Duration) -> String {
    let mut ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// How the bucket name is put into S3 URLs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum BucketLookupType {
    /// Virtual-hosted style for AWS endpoints, path style for everything else (minio-go's rule).
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// `https://<bucket>.<endpoint>/<key>`.
    #[serde(rename = "virtual-hosted")]
    VirtualHosted,
    /// `https://<endpoint>/<bucket>/<key>`.
    #[serde(rename = "path")]
    Path,
}

/// TLS settings of `http_config.tls_config`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    pub ca_file: String,
    pub cert_file: String,
    pub key_file: String,
    pub server_name: String,
    pub insecure_skip_verify: bool,
}

/// `http_config` (Thanos's `exthttp.HTTPConfig`), shared by S3, GCS and Azure.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub idle_conn_timeout: PromDuration,
    pub response_header_timeout: PromDuration,
    pub insecure_skip_verify: bool,
    pub tls_handshake_timeout: PromDuration,
    pub expect_continue_timeout: PromDuration,
    pub max_idle_conns: usize,
    pub max_idle_conns_per_host: usize,
    pub max_conns_per_host: usize,
    pub tls_config: TlsConfig,
    pub force_attempt_http2: bool,
    pub disable_compression: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            idle_conn_timeout: PromDuration(Duration::from_secs(90)),
            response_header_timeout: PromDuration(Duration::from_secs(120)),
            insecure_skip_verify: false,
            tls_handshake_timeout: PromDuration(Duration::from_secs(10)),
            expect_continue_timeout: PromDuration(Duration::from_secs(1)),
            max_idle_conns: 100,
            max_idle_conns_per_host: 100,
            max_conns_per_host: 0,
            tls_config: TlsConfig::default(),
            force_attempt_http2: false,
            disable_compression: false,
        }
    }
}

/// `trace` of the S3 config (minio-go request tracing; accepted, not used).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraceConfig {
    pub enable: bool,
}

/// `sse_config` of the S3 config.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SseConfig {
    /// `SSE-S3`, `SSE-KMS`, `SSE-C` or "" (none).
    #[serde(rename = "type")]
    pub kind: String,
    pub kms_key_id: String,
    pub kms_encryption_context: BTreeMap<String, String>,
    /// Path of a file holding the 32-byte SSE-C key.
    pub encryption_key: String,
}

/// `type: S3`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// host[:port], no scheme.
    pub endpoint: String,
    pub region: String,
    pub disable_dualstack: bool,
    pub aws_sdk_auth: bool,
    pub access_key: String,
    pub secret_key: Secret,
    pub session_token: Secret,
    /// Plain HTTP instead of HTTPS.
    pub insecure: bool,
    pub signature_version2: bool,
    pub put_user_metadata: BTreeMap<String, String>,
    pub http_config: HttpConfig,
    pub trace: TraceConfig,
    pub list_objects_version: String,
    pub bucket_lookup_type: BucketLookupType,
    pub send_content_md5: bool,
    pub disable_multipart: bool,
    /// Multipart part size in bytes; 0 means the default (64 MiB).
    pub part_size: u64,
    pub sse_config: SseConfig,
    pub sts_endpoint: String,
    pub max_retries: Option<usize>,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            bucket: String::new(),
            endpoint: String::new(),
            region: String::new(),
            disable_dualstack: false,
            aws_sdk_auth: false,
            access_key: String::new(),
            secret_key: Secret::default(),
            session_token: Secret::default(),
            insecure: false,
            signature_version2: false,
            put_user_metadata: BTreeMap::new(),
            http_config: HttpConfig::default(),
            trace: TraceConfig::default(),
            list_objects_version: String::new(),
            bucket_lookup_type: BucketLookupType::Auto,
            send_content_md5: true,
            disable_multipart: false,
            part_size: DEFAULT_PART_SIZE,
            sse_config: SseConfig::default(),
            sts_endpoint: String::new(),
            max_retries: None,
        }
    }
}

/// `type: GCS`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcsConfig {
    pub bucket: String,
    /// Inline service-account JSON; empty means GOOGLE_APPLICATION_CREDENTIALS / ADC.
    pub service_account: Secret,
    pub use_grpc: bool,
    pub grpc_conn_pool_size: usize,
    pub http_config: HttpConfig,
    pub chunk_size_bytes: u64,
    pub max_retries: Option<usize>,
}

/// `reader_config` of the Azure config.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AzureReaderConfig {
    pub max_retry_requests: usize,
}

/// `pipeline_config` of the Azure config.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AzurePipelineConfig {
    pub max_tries: usize,
    pub try_timeout: Option<PromDuration>,
    pub retry_delay: Option<PromDuration>,
    pub max_retry_delay: Option<PromDuration>,
}

/// `type: AZURE`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AzureConfig {
    pub storage_account: String,
    pub storage_account_key: Secret,
    pub storage_connection_string: Secret,
    pub container: String,
    pub endpoint: String,
    pub storage_create_container: bool,
    pub az_tenant_id: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub user_assigned_id: String,
    pub msi_resource: String,
    pub max_retries: Option<usize>,
    pub reader_config: AzureReaderConfig,
    pub pipeline_config: AzurePipelineConfig,
    pub http_config: HttpConfig,
}

impl Default for AzureConfig {
    fn default() -> Self {
        AzureConfig {
            storage_account: String::new(),
            storage_account_key: Secret::default(),
            storage_connection_string: Secret::default(),
            container: String::new(),
            endpoint: "blob.core.windows.net".to_string(),
            storage_create_container: true,
            az_tenant_id: String::new(),
            client_id: String::new(),
            client_secret: Secret::default(),
            user_assigned_id: String::new(),
            msi_resource: String::new(),
            max_retries: None,
            reader_config: AzureReaderConfig::default(),
            pipeline_config: AzurePipelineConfig::default(),
            http_config: HttpConfig::default(),
        }
    }
}

/// `type: FILESYSTEM` (tests and demos; one machine only).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesystemConfig {
    pub directory: PathBuf,
}

/// The raw top level, before the `config` section is interpreted for its `type`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBucketConfig {
    #[serde(rename = "type", default)]
    kind: String,
    /// Interpreted by [`parse_section`] once the type is known.
    #[serde(default, rename = "config")]
    _config: serde::de::IgnoredAny,
    #[serde(default)]
    prefix: String,
}

impl BucketConfig {
    /// Reads the config from `--objstore.config` (inline YAML) or `--objstore.config-file`.
    /// Exactly one of them must be given, as in Thanos.
    pub fn load(inline: Option<&str>, file: Option<&Path>) -> Result<Self> {
        let inline = inline.filter(|text| !text.trim().is_empty());
        match (inline, file) {
            (Some(_), Some(_)) => Err(Error::ConfigBothFlags),
            (None, None) => Err(Error::ConfigMissing),
            (Some(text), None) => Self::parse(text),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|error| Error::ConfigRead {
                    path: path.to_path_buf(),
                    error,
                })?;
                Self::parse(&text)
            }
        }
    }

    /// Parses and validates objstore.yml text (env substitution, first document only).
    pub fn parse(text: &str) -> Result<Self> {
        let text = substitute_env(text, |name| std::env::var(name).ok())?;
        let document = serde_yaml::Deserializer::from_str(&text)
            .next()
            .ok_or(Error::ConfigEmpty)?;
        // Straight from the text, not via a `Value`, so errors carry the field path.
        let raw: Option<RawBucketConfig> =
            Option::deserialize(document).map_err(|error| Error::ConfigSyntax { error })?;
        let raw = raw.ok_or(Error::ConfigEmpty)?;
        let kind = raw.kind.trim().to_ascii_uppercase();
        let backend = match kind.as_str() {
            "S3" => Backend::S3(parse_section(&kind, &text)?),
            "GCS" => Backend::Gcs(parse_section(&kind, &text)?),
            "AZURE" => Backend::Azure(parse_section(&kind, &text)?),
            "FILESYSTEM" => Backend::Filesystem(parse_section(&kind, &text)?),
            "" => return Err(Error::missing("type")),
            _ => return Err(Error::UnsupportedType { kind: raw.kind }),
        };
        let config = BucketConfig {
            backend,
            prefix: raw.prefix.trim_matches('/').to_string(),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the field combinations that serde alone cannot.
    pub fn validate(&self) -> Result<()> {
        match &self.backend {
            Backend::S3(s3) => validate_s3(s3),
            Backend::Gcs(gcs) => {
                if gcs.bucket.is_empty() {
                    return Err(Error::missing("config.bucket"));
                }
                validate_http(&gcs.http_config)
            }
            Backend::Azure(azure) => {
                if azure.container.is_empty() {
                    return Err(Error::missing("config.container"));
                }
                if azure.storage_account.is_empty() && azure.storage_connection_string.is_empty() {
                    return Err(Error::missing("config.storage_account"));
                }
                validate_http(&azure.http_config)
            }
            Backend::Filesystem(fs) => {
                if fs.directory.as_os_str().is_empty() {
                    return Err(Error::missing("config.directory"));
                }
                Ok(())
            }
        }
    }

    /// The name used as the `bucket` label of the objstore metrics (Thanos's `Name()`).
    pub fn bucket_name(&self) -> String {
        match &self.backend {
            Backend::S3(s3) => s3.bucket.clone(),
            Backend::Gcs(gcs) => gcs.bucket.clone(),
            Backend::Azure(azure) => azure.container.clone(),
            Backend::Filesystem(fs) => format!("fs: {}", fs.directory.display()),
        }
    }

    /// The config as YAML with every secret replaced by `<secret>`, for logs and
    /// /api/v1/status/flags.
    pub fn redacted(&self) -> String {
        // Serialization of these plain structs cannot fail; fall back to the type word only.
        serde_yaml::to_string(self)
            .unwrap_or_else(|_| format!("type: {}\n", self.backend.type_name()))
    }
}

/// Deserializes the `config` section for its type from the document text itself (not from an
/// intermediate `Value`), so that serde_yaml's errors carry the field path and position:
/// "config.part_size: invalid type: string \"lots\", expected u64 at line 4 column 14".
fn parse_section<T>(kind: &str, text: &str) -> Result<T>
where
    T: serde::de::DeserializeOwned + Default,
{
    #[derive(Deserialize)]
    struct Document<T> {
        #[serde(rename = "type", default)]
        _kind: serde::de::IgnoredAny,
        #[serde(default = "Option::default")]
        config: Option<T>,
        #[serde(rename = "prefix", default)]
        _prefix: serde::de::IgnoredAny,
    }
    let section_error = |error| Error::ConfigSection {
        kind: kind.to_string(),
        error,
    };
    let document = serde_yaml::Deserializer::from_str(text)
        .next()
        .ok_or(Error::ConfigEmpty)?;
    let document: Document<T> = Document::deserialize(document).map_err(section_error)?;
    Ok(document.config.unwrap_or_default())
}

fn validate_s3(s3: &S3Config) -> Result<()> {
    if s3.bucket.is_empty() {
        return Err(Error::missing("config.bucket"));
    }
    if s3.endpoint.contains("://") {
        return Err(Error::invalid(
            "config.endpoint",
            "must be host[:port] without a scheme; set `insecure: true` for plain HTTP",
        ));
    }
    if s3.aws_sdk_auth && !s3.access_key.is_empty() {
        return Err(Error::invalid(
            "config.aws_sdk_auth",
            "aws_sdk_auth and access_key are mutually exclusive",
        ));
    }
    if s3.access_key.is_empty() && !s3.secret_key.is_empty() {
        return Err(Error::missing("config.access_key"));
    }
    if !s3.access_key.is_empty() && s3.secret_key.is_empty() {
        return Err(Error::missing("config.secret_key"));
    }
    if s3.signature_version2 {
        return Err(Error::invalid(
            "config.signature_version2",
            "signature version 2 is not supported; Strata signs with version 4",
        ));
    }
    match s3.list_objects_version.as_str() {
        "" | "v2" => {}
        "v1" => {
            return Err(Error::invalid(
                "config.list_objects_version",
                "ListObjects v1 is not supported; Strata lists with ListObjectsV2",
            ));
        }
        _ => {
            return Err(Error::invalid(
                "config.list_objects_version",
                "supported values are v1, v2",
            ));
        }
    }
    if s3.part_size != 0 && s3.part_size < MIN_PART_SIZE {
        return Err(Error::invalid(
            "config.part_size",
            "must be at least 5242880 bytes (5 MiB), the S3 minimum",
        ));
    }
    match s3.sse_config.kind.as_str() {
        "" | "SSE-S3" => {}
        "SSE-KMS" => {
            if s3.sse_config.kms_key_id.is_empty() {
                return Err(Error::missing("config.sse_config.kms_key_id"));
            }
        }
        "SSE-C" => {
            if s3.sse_config.encryption_key.is_empty() {
                return Err(Error::missing("config.sse_config.encryption_key"));
            }
        }
        _ => {
            return Err(Error::invalid(
                "config.sse_config.type",
                "supported types are SSE-S3, SSE-KMS, SSE-C",
            ));
        }
    }
    validate_http(&s3.http_config)
}

fn validate_http(http: &HttpConfig) -> Result<()> {
    if !http.tls_config.server_name.is_empty() {
        return Err(Error::invalid(
            "config.http_config.tls_config.server_name",
            "overriding the TLS server name is not supported",
        ));
    }
    let tls = &http.tls_config;
    if tls.cert_file.is_empty() != tls.key_file.is_empty() {
        let field = if tls.cert_file.is_empty() {
            "config.http_config.tls_config.cert_file"
        } else {
            "config.http_config.tls_config.key_file"
        };
        return Err(Error::missing(field));
    }
    Ok(())
}

/// Replaces every `$(NAME)` with the value of the environment variable NAME (looked up through
/// `lookup`, so tests need not touch the process environment). An unset variable is an error,
/// as in Thanos: a silently empty secret would only fail later and less clearly.
pub fn substitute_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        let (before, after) = rest.split_at(start);
        out.push_str(before);
        let body = after.get(2..).unwrap_or("");
        let name_len = body
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let is_reference = name_len > 0 && body.as_bytes().get(name_len) == Some(&b')');
        if !is_reference {
            // Not a `$(NAME)` reference; keep the text as written.
            out.push_str("$(");
            rest = body;
            continue;
        }
        let name = body.get(..name_len).unwrap_or("");
        let value = lookup(name).ok_or_else(|| Error::ConfigEnvVar {
            name: name.to_string(),
        })?;
        out.push_str(&value);
        rest = body.get(name_len + 1..).unwrap_or("");
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests;
