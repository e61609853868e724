//! The HTTP client for the Prometheus server beside the sidecar: the status endpoints read at
//! start-up and by the heartbeat (`/api/v1/status/config` for the external labels,
//! `/api/v1/status/flags` for the block durations, `/metrics` for the lowest timestamp), the
//! label APIs, and the raw remote-read call whose body [`crate::remote_read`] decodes.
//!
//! reference/thanos.md section 3.1 lists the endpoints; the client configuration follows
//! Thanos's `--prometheus.http-client` YAML (basic auth, bearer token, TLS files, proxy).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use prost::Message;
use serde::Deserialize;
use strata_common::secret::Secret;
use strata_proto::prometheus as prompb;
use strata_tsdb::labels::{Labels, Matcher};

use crate::error::{Error, Result};

/// User-Agent sent to Prometheus (Thanos sends `Thanos/<version>`).
const USER_AGENT: &str = concat!("Thanos/", env!("CARGO_PKG_VERSION"), " (strata)");
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest silence tolerated while reading a remote-read answer: waiting for its headers
/// or for the next bytes of the stream. Not an overall timeout (a long read is a legitimate
/// stream); Prometheus writes a frame per series batch, so a minute without a byte means it
/// has stalled, and the Series call fails instead of hanging. Thanos has no flag for this; the
/// caller's gRPC deadline applies on top ([`crate::store`]).
pub const REMOTE_READ_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Thanos's `--prometheus.http-client` YAML (the parts that change requests).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpClientConfig {
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    #[serde(default)]
    pub proxy_url: Option<String>,
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
    /// Connection-pool tuning of Go's transport; reqwest's defaults serve the same purpose.
    #[serde(default)]
    pub transport_config: Option<serde_yaml::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Secret,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

impl HttpClientConfig {
    /// Parses the YAML given inline or in a file (both at once are refused, as in Thanos).
    pub fn load(inline: Option<&str>, file: Option<&std::path::Path>) -> Result<Self> {
        let inline = inline.filter(|text| !text.trim().is_empty());
        strata_common::flags::refuse_both_forms(
            "--prometheus.http-client",
            inline.is_some(),
            "--prometheus.http-client-file",
            file.is_some(),
        )?;
        let text = match (inline, file) {
            (Some(text), _) => text.to_owned(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|source| Error::io("read prometheus http client config", path, source))?,
            (None, None) => return Ok(Self::default()),
        };
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_yaml::from_str(&text).map_err(|err| Error::InvalidRequest {
            reason: format!("parse --prometheus.http-client config: {err}"),
        })
    }
}

fn read_file(what: &'static str, path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::io(what, path, source))
}

/// A client for one Prometheus server.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    base_url: String,
    /// For the status and label APIs: bounded by `--prometheus.get_config_timeout`.
    client: reqwest::Client,
    /// For remote read: no overall timeout, a long read is a long stream; an idle timeout.
    streaming_client: reqwest::Client,
    timeout: Duration,
    authorization: Option<Secret>,
    basic_auth: Option<(String, Secret)>,
}

/// What `/api/v1/status/flags` says about block durations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsdbFlags {
    pub min_block_duration: String,
    pub max_block_duration: String,
    pub delay_compact_file: Option<String>,
}

#[derive(Deserialize)]
struct ApiEnvelope<T> {
    status: String,
    #[serde(default = "Option::default")]
    data: Option<T>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct ConfigData {
    yaml: String,
}

#[derive(Deserialize, Default)]
struct PromConfig {
    #[serde(default)]
    global: Option<PromGlobal>,
}

#[derive(Deserialize, Default)]
struct PromGlobal {
    #[serde(default)]
    external_labels: Option<BTreeMap<String, String>>,
}

/// A client builder with the settings of `config` (TLS, proxy) and Thanos's user agent.
fn client_builder(config: &HttpClientConfig) -> Result<reqwest::ClientBuilder> {
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        // Remote read answers are already snappy or raw frames; no gzip on top.
        .no_proxy();
    if let Some(proxy) = &config.proxy_url {
        let proxy = reqwest::Proxy::all(proxy).map_err(|err| Error::InvalidRequest {
            reason: format!("invalid proxy_url {proxy:?}: {err}"),
        })?;
        builder = builder.proxy(proxy);
    }
    if let Some(tls) = &config.tls_config {
        if let Some(ca) = &tls.ca_file {
            let pem = read_file("read prometheus tls ca", ca)?;
            let certificate =
                reqwest::Certificate::from_pem(&pem).map_err(|err| Error::InvalidRequest {
                    reason: format!("parse tls ca_file {}: {err}", ca.display()),
                })?;
            builder = builder.add_root_certificate(certificate);
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            let mut pem = read_file("read prometheus tls cert", cert)?;
            pem.extend(read_file("read prometheus tls key", key)?);
            let identity =
                reqwest::Identity::from_pem(&pem).map_err(|err| Error::InvalidRequest {
                    reason: format!("parse tls cert_file/key_file: {err}"),
                })?;
            builder = builder.identity(identity);
        }
        if tls
            .server_name
            .as_deref()
            .is_some_and(|name| !name.is_empty())
        {
            // reqwest verifies against the URL's host; there is no separate SNI name.
            tracing::warn!("tls_config.server_name is not supported; the URL's host is verified");
        }
        if tls.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
    }
    Ok(builder)
}

impl PrometheusClient {
    /// A client whose calls other than remote read time out after `timeout`; remote reads
    /// are cut after [`REMOTE_READ_IDLE_TIMEOUT`] without a byte.
    pub fn new(base_url: &str, timeout: Duration, config: &HttpClientConfig) -> Result<Self> {
        Self::with_read_idle_timeout(base_url, timeout, REMOTE_READ_IDLE_TIMEOUT, config)
    }

    /// [`PrometheusClient::new`] with another idle timeout for remote reads.
    pub fn with_read_idle_timeout(
        base_url: &str,
        timeout: Duration,
        read_idle_timeout: Duration,
        config: &HttpClientConfig,
    ) -> Result<Self> {
        match reqwest::Url::parse(base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            Ok(url) => {
                return Err(Error::InvalidRequest {
                    reason: format!("--prometheus.url {url} must be an http(s) URL with a host"),
                });
            }
            Err(err) => {
                return Err(Error::InvalidRequest {
                    reason: format!("--prometheus.url {base_url:?}: {err}"),
                });
            }
        }
        let build = |builder: reqwest::ClientBuilder| {
            builder.build().map_err(|source| Error::PrometheusRequest {
                path: "(client)",
                source,
            })
        };
        let client = build(client_builder(config)?.timeout(timeout))?;
        let streaming_client = build(client_builder(config)?.read_timeout(read_idle_timeout))?;

        let authorization = match (&config.bearer_token, &config.bearer_token_file) {
            (Some(token), _) if !token.is_empty() => {
                Some(Secret::new(format!("Bearer {}", token.expose())))
            }
            (_, Some(path)) => {
                let token = read_file("read prometheus bearer token", path)?;
                Some(Secret::new(format!(
                    "Bearer {}",
                    String::from_utf8_lossy(&token).trim()
                )))
            }
            _ => None,
        };
        let basic_auth = match &config.basic_auth {
            Some(auth) => {
                let password = match &auth.password_file {
                    Some(path) => Secret::new(
                        String::from_utf8_lossy(&read_file(
                            "read prometheus basic auth password",
                            path,
                        )?)
                        .trim(),
                    ),
                    None => auth.password.clone(),
                };
                Some((auth.username.clone(), password))
            }
            None => None,
        };
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            client,
            streaming_client,
            timeout,
            authorization,
            basic_auth,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        // Marked sensitive: kept out of HTTP/2 header compression tables and debug output.
        let request = match &self.authorization {
            Some(value) => match reqwest::header::HeaderValue::from_str(value.expose()) {
                Ok(mut header) => {
                    header.set_sensitive(true);
                    request.header(reqwest::header::AUTHORIZATION, header)
                }
                // Not a valid header value (a control character in the token file): sent as
                // before, so the request fails with Prometheus's answer, not silently unsent.
                Err(_) => request.header(reqwest::header::AUTHORIZATION, value.expose()),
            },
            None => request,
        };
        match &self.basic_auth {
            // reqwest marks the basic-auth header sensitive itself.
            Some((user, password)) => request.basic_auth(user, Some(password.expose())),
            None => request,
        }
    }

    async fn get_text(&self, path: &'static str, query: &[(&str, String)]) -> Result<String> {
        let request = self
            .client
            .get(format!("{}{path}", self.base_url))
            .query(query);
        let response = self
            .authorize(request)
            .send()
            .await
            .map_err(|source| Error::PrometheusRequest { path, source })?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|source| Error::PrometheusRequest { path, source })?;
        if !status.is_success() {
            return Err(Error::PrometheusStatus {
                path,
                status: status.as_u16(),
                body: truncate(body),
            });
        }
        Ok(body)
    }

    async fn get_api<T: serde::de::DeserializeOwned>(
        &self,
        path: &'static str,
        query: &[(&str, String)],
    ) -> Result<T> {
        let body = self.get_text(path, query).await?;
        let envelope: ApiEnvelope<T> =
            serde_json::from_str(&body).map_err(|err| Error::PrometheusResponse {
                path,
                reason: err.to_string(),
            })?;
        if envelope.status != "success" {
            return Err(Error::PrometheusResponse {
                path,
                reason: envelope.error.unwrap_or(envelope.status),
            });
        }
        envelope.data.ok_or(Error::PrometheusResponse {
            path,
            reason: "no data".to_owned(),
        })
    }

    /// `global.external_labels` from `/api/v1/status/config` (empty when none are set).
    pub async fn external_labels(&self) -> Result<Labels> {
        let data: ConfigData = self.get_api("/api/v1/status/config", &[]).await?;
        parse_external_labels(&data.yaml)
    }

    /// The block duration flags, or `None` from a Prometheus without `/api/v1/status/flags`.
    pub async fn tsdb_flags(&self) -> Result<Option<TsdbFlags>> {
        let flags: BTreeMap<String, String> = match self.get_api("/api/v1/status/flags", &[]).await
        {
            Ok(flags) => flags,
            Err(Error::PrometheusStatus { status: 404, .. }) => return Ok(None),
            Err(err) => return Err(err),
        };
        let get = |name: &str| flags.get(name).cloned().unwrap_or_default();
        Ok(Some(TsdbFlags {
            min_block_duration: get("storage.tsdb.min-block-duration"),
            max_block_duration: get("storage.tsdb.max-block-duration"),
            delay_compact_file: flags
                .get("storage.tsdb.delay-compact-file.path")
                .filter(|path| !path.is_empty())
                .cloned(),
        }))
    }

    /// The oldest sample time (ms) from `prometheus_tsdb_lowest_timestamp_seconds` on
    /// `/metrics`; `i64::MIN` while the TSDB holds no data.
    pub async fn lowest_timestamp_ms(&self) -> Result<i64> {
        let text = self.get_text("/metrics", &[]).await?;
        parse_lowest_timestamp(&text).ok_or(Error::PrometheusResponse {
            path: "/metrics",
            reason: "no prometheus_tsdb_lowest_timestamp_seconds gauge".to_owned(),
        })
    }

    /// `/api/v1/labels` for the time range and matchers.
    pub async fn label_names(
        &self,
        start_ms: i64,
        end_ms: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<String>> {
        let query = label_api_query(start_ms, end_ms, matchers);
        self.get_api("/api/v1/labels", &query).await
    }

    /// `/api/v1/series` for the time range and matchers: label sets only, no samples (what
    /// Thanos's sidecar uses for `skip_chunks` requests).
    pub async fn series(
        &self,
        start_ms: i64,
        end_ms: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<Labels>> {
        let query = label_api_query(start_ms, end_ms, matchers);
        let series: Vec<BTreeMap<String, String>> = self.get_api("/api/v1/series", &query).await?;
        Ok(series.into_iter().map(Labels::from_pairs).collect())
    }

    /// `/api/v1/label/<name>/values` for the time range and matchers.
    pub async fn label_values(
        &self,
        name: &str,
        start_ms: i64,
        end_ms: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<String>> {
        let query = label_api_query(start_ms, end_ms, matchers);
        let url = format!(
            "{}/api/v1/label/{}/values",
            self.base_url,
            percent_encode_path(name)
        );
        const PATH: &str = "/api/v1/label/<name>/values";
        let request = self.client.get(url).query(&query);
        let response = self
            .authorize(request)
            .send()
            .await
            .map_err(|source| Error::PrometheusRequest { path: PATH, source })?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|source| Error::PrometheusRequest { path: PATH, source })?;
        if !status.is_success() {
            return Err(Error::PrometheusStatus {
                path: PATH,
                status: status.as_u16(),
                body: truncate(body),
            });
        }
        let envelope: ApiEnvelope<Vec<String>> =
            serde_json::from_str(&body).map_err(|err| Error::PrometheusResponse {
                path: PATH,
                reason: err.to_string(),
            })?;
        Ok(envelope.data.unwrap_or_default())
    }

    /// POSTs a remote-read request (snappy-compressed protobuf) and returns the response once
    /// its status is known; the body is read by [`crate::remote_read`].
    pub async fn remote_read(&self, request: &prompb::ReadRequest) -> Result<reqwest::Response> {
        const PATH: &str = "/api/v1/read";
        let body = snap::raw::Encoder::new()
            .compress_vec(&request.encode_to_vec())
            .map_err(|err| Error::InvalidRequest {
                reason: format!("snappy-encode remote read request: {err}"),
            })?;
        let request = self
            .streaming_client
            .post(format!("{}{PATH}", self.base_url))
            .header(reqwest::header::CONTENT_ENCODING, "snappy")
            .header(reqwest::header::ACCEPT_ENCODING, "snappy")
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .header("X-Prometheus-Remote-Read-Version", "0.1.0")
            .body(body);
        let response = self
            .authorize(request)
            .send()
            .await
            .map_err(|source| Error::PrometheusRequest { path: PATH, source })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(Error::PrometheusStatus {
                path: PATH,
                status: status.as_u16(),
                body: truncate(body),
            });
        }
        Ok(response)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `POST /-/reload`: asks Prometheus to reload its configuration and rules (the
    /// reloader's http method). Only a 200 is a success, as in Thanos; Prometheus answers
    /// 403 without `--web.enable-lifecycle` and 500 when the new configuration is invalid.
    pub async fn reload(&self) -> Result<()> {
        const PATH: &str = "/-/reload";
        let request = self.client.post(format!("{}{PATH}", self.base_url));
        let response = self
            .authorize(request)
            .send()
            .await
            .map_err(|source| Error::PrometheusRequest { path: PATH, source })?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            let body = response.text().await.unwrap_or_default();
            return Err(Error::ReloadRejected {
                status: status.as_u16(),
                body: truncate(body),
            });
        }
        Ok(())
    }

    /// What `/api/v1/status/runtimeinfo` says about the last configuration reload (the
    /// reloader's signal method checks it before and after sending SIGHUP).
    pub async fn config_reload_status(&self) -> Result<ConfigReloadStatus> {
        const PATH: &str = "/api/v1/status/runtimeinfo";
        let info: RuntimeInfo = self.get_api(PATH, &[]).await?;
        let last_config_time = chrono::DateTime::parse_from_rfc3339(&info.last_config_time)
            .map_err(|err| Error::PrometheusResponse {
                path: PATH,
                reason: format!("lastConfigTime {:?}: {err}", info.last_config_time),
            })?
            .with_timezone(&chrono::Utc);
        Ok(ConfigReloadStatus {
            success: info.reload_config_success,
            last_config_time,
        })
    }
}

/// The configuration reload state Prometheus reports on `/api/v1/status/runtimeinfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigReloadStatus {
    /// Whether the last reload (or the start-up load) succeeded.
    pub success: bool,
    /// When the configuration was last loaded successfully.
    pub last_config_time: chrono::DateTime<chrono::Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeInfo {
    reload_config_success: bool,
    last_config_time: String,
}

fn truncate(mut body: String) -> String {
    const MAX: usize = 512;
    if body.len() > MAX {
        let mut end = MAX;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body.truncate(end);
        body.push_str("...");
    }
    body.trim_end().to_owned()
}

fn label_api_query(
    start_ms: i64,
    end_ms: i64,
    matchers: &[Matcher],
) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    // Prometheus takes seconds with a fraction; the StoreAPI's open ends (0 / MaxInt64)
    // are left out so Prometheus uses its own min/max time.
    if start_ms > i64::MIN && start_ms != 0 {
        query.push(("start", format_seconds(start_ms)));
    }
    if end_ms < i64::MAX && end_ms != 0 {
        query.push(("end", format_seconds(end_ms)));
    }
    if !matchers.is_empty() {
        query.push(("match[]", selector(matchers)));
    }
    query
}

fn format_seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// `{a="b", c=~"d"}` for matchers (values quoted as Go's `%q`, which PromQL parses).
pub fn selector(matchers: &[Matcher]) -> String {
    let parts: Vec<String> = matchers.iter().map(ToString::to_string).collect();
    format!("{{{}}}", parts.join(", "))
}

fn percent_encode_path(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The external labels in a Prometheus configuration YAML.
pub fn parse_external_labels(yaml: &str) -> Result<Labels> {
    let config: Option<PromConfig> =
        serde_yaml::from_str(yaml).map_err(|source| Error::PrometheusConfig { source })?;
    let labels = config
        .and_then(|config| config.global)
        .and_then(|global| global.external_labels)
        .unwrap_or_default();
    Ok(Labels::from_pairs(labels))
}

/// The `prometheus_tsdb_lowest_timestamp_seconds` gauge from text exposition, in ms.
/// Prometheus reports `MaxInt64 / 1000` while its TSDB is empty: that is "no data".
pub fn parse_lowest_timestamp(metrics_text: &str) -> Option<i64> {
    const NAME: &str = "prometheus_tsdb_lowest_timestamp_seconds";
    for line in metrics_text.lines() {
        let Some(rest) = line.strip_prefix(NAME) else {
            continue;
        };
        // Not a longer metric name; the gauge has no labels but tolerate `{}`.
        let rest = rest.strip_prefix("{}").unwrap_or(rest);
        if !rest.starts_with(' ') {
            continue;
        }
        let value: f64 = rest.split_whitespace().next()?.parse().ok()?;
        let millis = value * 1000.0;
        if !millis.is_finite() || millis >= (i64::MAX / 1000) as f64 {
            return Some(i64::MIN);
        }
        return Some(millis.round() as i64);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_labels_from_config_yaml() {
        let yaml = "global:\n  scrape_interval: 15s\n  external_labels:\n    replica: \"0\"\n    cluster: eu-1\nscrape_configs: []\n";
        let labels = parse_external_labels(yaml).expect("valid yaml");
        assert_eq!(labels.to_string(), r#"{cluster="eu-1", replica="0"}"#);
        let none = parse_external_labels("global:\n  scrape_interval: 1m\n").expect("yaml");
        assert!(none.is_empty());
        assert!(parse_external_labels("global: [").is_err());
    }

    #[test]
    fn lowest_timestamp_from_metrics_text() {
        let text = "# HELP prometheus_tsdb_lowest_timestamp_seconds Lowest timestamp value stored in the database.\n# TYPE prometheus_tsdb_lowest_timestamp_seconds gauge\nprometheus_tsdb_lowest_timestamp_seconds_other 5\nprometheus_tsdb_lowest_timestamp_seconds 1.7000046e+09\n";
        assert_eq!(parse_lowest_timestamp(text), Some(1_700_004_600_000));
        let empty = "prometheus_tsdb_lowest_timestamp_seconds 9.223372036854776e+15\n";
        assert_eq!(parse_lowest_timestamp(empty), Some(i64::MIN));
        assert_eq!(parse_lowest_timestamp("up 1\n"), None);
    }

    #[test]
    fn label_api_parameters() {
        let matchers = strata_tsdb::labels::parse_selector(r#"up{job=~"a\"b"}"#).expect("sel");
        let query = label_api_query(1500, i64::MAX, &matchers);
        assert_eq!(
            query,
            vec![
                ("start", "1.500".to_owned()),
                ("match[]", r#"{__name__="up", job=~"a\"b"}"#.to_owned())
            ]
        );
        assert_eq!(format_seconds(-1500), "-1.500");
        assert_eq!(percent_encode_path("a b/é"), "a%20b%2F%C3%A9");
    }

    #[test]
    fn credentials_never_printed() {
        let config = HttpClientConfig::load(
            Some("basic_auth:\n  username: u\n  password: hunter2\nbearer_token: tok3n\n"),
            None,
        )
        .expect("valid");
        let client = PrometheusClient::new("http://127.0.0.1:1", Duration::from_secs(1), &config)
            .expect("client");
        let shown = format!("{config:?} {client:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok3n"),
            "{shown}"
        );
        assert!(shown.contains("<secret>"), "{shown}");
    }

    #[test]
    fn http_client_config_yaml() {
        let config = HttpClientConfig::load(
            Some("basic_auth:\n  username: u\n  password: p\ntls_config:\n  insecure_skip_verify: true\n"),
            None,
        )
        .expect("valid");
        assert_eq!(
            config.basic_auth.map(|auth| auth.username),
            Some("u".to_owned())
        );
        assert!(HttpClientConfig::load(Some("nonsense_field: 1\n"), None).is_err());
        let client = PrometheusClient::new(
            "http://localhost:9090/",
            Duration::from_secs(1),
            &HttpClientConfig::default(),
        )
        .expect("client");
        assert_eq!(client.base_url(), "http://localhost:9090");
        for bad in ["localhost:9090", "ftp://prom", "not a url"] {
            assert!(
                PrometheusClient::new(bad, Duration::from_secs(1), &HttpClientConfig::default())
                    .is_err(),
                "{bad}"
            );
        }
    }
}
