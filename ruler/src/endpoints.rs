//! HTTP endpoint groups shared by the query client and the notifier: Thanos's
//! `--query.config` and `--alertmanagers.config` YAML (reference/thanos-ruler-deploy.md
//! section 1.5) or the plain URL flags, each group with its HTTP client settings, scheme, path
//! prefix and discovered hosts.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use strata_common::dns::Resolver;

use crate::discovery::{Discovery, DnsMetrics, split_url};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
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

/// Thanos's `http_config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub bearer_token: Option<String>,
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    #[serde(default)]
    pub proxy_url: Option<String>,
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    #[serde(default)]
    pub files: Vec<PathBuf>,
    #[serde(default)]
    pub refresh_interval: Option<String>,
}

/// One entry of `--query.config` / `alertmanagers:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    #[serde(default)]
    pub http_config: HttpConfig,
    #[serde(default)]
    pub static_configs: Vec<String>,
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub path_prefix: String,
    /// Alertmanagers only.
    #[serde(default)]
    pub timeout: Option<String>,
    /// Alertmanagers only: `v2` (v1 was removed from Alertmanager in v0.27).
    #[serde(default)]
    pub api_version: Option<String>,
    /// Query only: the gRPC query API, which Strata does not call.
    #[serde(default)]
    pub grpc_config: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertmanagersYaml {
    #[serde(default)]
    alertmanagers: Vec<GroupConfig>,
}

/// Reads a `*.config` / `*.config-file` pair; `None` when neither is set.
pub fn read_config_text(
    inline: Option<&str>,
    file: Option<&std::path::Path>,
    what: &'static str,
) -> Result<Option<String>> {
    if let Some(text) = inline {
        return Ok(Some(text.to_owned()));
    }
    match file {
        Some(path) => std::fs::read_to_string(path)
            .map(Some)
            .map_err(|err| Error::io(what, path, err)),
        None => Ok(None),
    }
}

pub fn parse_query_config(text: &str) -> Result<Vec<GroupConfig>> {
    serde_yaml::from_str::<Vec<GroupConfig>>(text).map_err(|err| Error::Config {
        what: "parse --query.config",
        reason: err.to_string(),
    })
}

pub fn parse_alertmanagers_config(text: &str) -> Result<Vec<GroupConfig>> {
    serde_yaml::from_str::<AlertmanagersYaml>(text)
        .map(|yaml| yaml.alertmanagers)
        .map_err(|err| Error::Config {
            what: "parse --alertmanagers.config",
            reason: err.to_string(),
        })
}

/// A ready group: client, scheme, prefix and the hosts to resolve.
#[derive(Debug)]
pub struct EndpointGroup {
    pub client: reqwest::Client,
    pub scheme: String,
    pub path_prefix: String,
    pub timeout: Duration,
    pub discovery: Discovery,
    basic_auth: Option<(String, String)>,
    bearer_token: Option<String>,
}

impl EndpointGroup {
    /// Builds a group from its YAML entry.
    pub fn from_config(
        config: &GroupConfig,
        default_timeout: Duration,
        sd_interval: Duration,
        dns_interval: Duration,
        resolver: &Resolver,
        metrics: DnsMetrics,
    ) -> Result<Self> {
        if config.grpc_config.is_some() {
            return Err(Error::Config {
                what: "query config",
                reason: "grpc_config (the gRPC query API) is not supported; use static_configs with the HTTP API".to_owned(),
            });
        }
        if let Some(version) = &config.api_version
            && version != "v2"
        {
            return Err(Error::Config {
                what: "alertmanagers config",
                reason: format!(
                    "api_version {version:?} is not supported: only v2 (Alertmanager removed v1 in v0.27)"
                ),
            });
        }
        let timeout = match &config.timeout {
            Some(text) => {
                strata_common::flags::parse_duration(text).map_err(|reason| Error::Config {
                    what: "alertmanagers config timeout",
                    reason,
                })?
            }
            None => default_timeout,
        };
        let mut files = Vec::new();
        let mut file_interval = sd_interval;
        for sd in &config.file_sd_configs {
            files.extend(sd.files.iter().cloned());
            if let Some(text) = &sd.refresh_interval {
                file_interval =
                    strata_common::flags::parse_duration(text).map_err(|reason| Error::Config {
                        what: "file_sd_configs refresh_interval",
                        reason,
                    })?;
            }
        }
        let http = &config.http_config;
        let basic_auth = match &http.basic_auth {
            Some(auth) => {
                let password = match &auth.password_file {
                    Some(path) => std::fs::read_to_string(path)
                        .map_err(|err| Error::io("read basic auth password file", path, err))?
                        .trim()
                        .to_owned(),
                    None => auth.password.clone(),
                };
                Some((auth.username.clone(), password))
            }
            None => None,
        };
        let bearer_token = match (&http.bearer_token, &http.bearer_token_file) {
            (Some(token), _) => Some(token.clone()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|err| Error::io("read bearer token file", path, err))?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)));
        if let Some(proxy) = &http.proxy_url {
            builder = builder.proxy(reqwest::Proxy::all(proxy).map_err(|err| Error::Config {
                what: "http_config proxy_url",
                reason: err.to_string(),
            })?);
        }
        if let Some(tls) = &http.tls_config {
            if tls.insecure_skip_verify {
                builder = builder.danger_accept_invalid_certs(true);
            }
            if let Some(ca) = &tls.ca_file {
                let pem =
                    std::fs::read(ca).map_err(|err| Error::io("read tls ca_file", ca, err))?;
                let cert = reqwest::Certificate::from_pem(&pem).map_err(|err| Error::Config {
                    what: "tls_config ca_file",
                    reason: err.to_string(),
                })?;
                builder = builder.add_root_certificate(cert);
            }
            if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
                let mut pem = std::fs::read(cert)
                    .map_err(|err| Error::io("read tls cert_file", cert, err))?;
                pem.extend(
                    std::fs::read(key).map_err(|err| Error::io("read tls key_file", key, err))?,
                );
                let identity = reqwest::Identity::from_pem(&pem).map_err(|err| Error::Config {
                    what: "tls_config cert_file/key_file",
                    reason: err.to_string(),
                })?;
                builder = builder.identity(identity);
            }
            if tls.server_name.is_some() {
                return Err(Error::Config {
                    what: "tls_config server_name",
                    reason: "not supported".to_owned(),
                });
            }
        }
        let client = builder.build().map_err(|err| Error::Config {
            what: "http client",
            reason: err.to_string(),
        })?;
        Ok(Self {
            client,
            scheme: config.scheme.clone().unwrap_or_else(|| "http".to_owned()),
            path_prefix: config.path_prefix.trim_end_matches('/').to_owned(),
            timeout,
            discovery: Discovery::new(
                config.static_configs.clone(),
                files,
                file_interval,
                dns_interval,
                resolver.clone(),
                metrics,
            ),
            basic_auth,
            bearer_token,
        })
    }

    /// A group for one URL flag value (`http://user:pass@host:port/prefix`, DNS prefixes
    /// allowed), as Thanos turns `--query` / `--alertmanagers.url` into configs.
    pub fn from_url(
        url: &str,
        timeout: Duration,
        sd_interval: Duration,
        dns_interval: Duration,
        resolver: &Resolver,
        metrics: DnsMetrics,
    ) -> Result<Self> {
        let (scheme, auth, host, path) = split_url(url);
        let config = GroupConfig {
            http_config: HttpConfig {
                basic_auth: auth.map(|(username, password)| BasicAuth {
                    username,
                    password,
                    password_file: None,
                }),
                ..Default::default()
            },
            static_configs: vec![host],
            scheme: Some(scheme),
            path_prefix: path,
            ..Default::default()
        };
        Self::from_config(
            &config,
            timeout,
            sd_interval,
            dns_interval,
            resolver,
            metrics,
        )
    }

    /// Full URLs of `api_path` on every resolved host.
    pub async fn urls(&self, api_path: &str) -> Vec<(String, String)> {
        self.discovery
            .addresses()
            .await
            .into_iter()
            .map(|host| {
                let url = format!("{}://{host}{}{api_path}", self.scheme, self.path_prefix);
                (host, url)
            })
            .collect()
    }

    /// Adds this group's credentials to a request.
    pub fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let request = match &self.basic_auth {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        };
        match &self.bearer_token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thanos_query_and_alertmanagers_configs_parse() {
        let query = parse_query_config(
            "- static_configs: ['q1:9090', 'dnssrv+_http._tcp.thanos-query.ns']\n  scheme: https\n  path_prefix: /thanos/\n  http_config:\n    basic_auth: {username: u, password: p}\n",
        )
        .expect("query config");
        let group = EndpointGroup::from_config(
            &query[0],
            Duration::from_secs(5),
            Duration::from_secs(60),
            Duration::from_secs(30),
            &Resolver::system(),
            DnsMetrics::default(),
        )
        .expect("group");
        assert_eq!(group.scheme, "https");
        assert_eq!(group.path_prefix, "/thanos");
        assert!(
            parse_query_config("- statik_configs: []\n").is_err(),
            "unknown field"
        );

        let alertmanagers = parse_alertmanagers_config(
            "alertmanagers:\n- static_configs: ['am:9093']\n  timeout: 3s\n  api_version: v2\n",
        )
        .expect("alertmanagers config");
        let group = EndpointGroup::from_config(
            &alertmanagers[0],
            Duration::from_secs(10),
            Duration::from_secs(60),
            Duration::from_secs(30),
            &Resolver::system(),
            DnsMetrics::default(),
        )
        .expect("group");
        assert_eq!(group.timeout, Duration::from_secs(3));
        let v1 = parse_alertmanagers_config(
            "alertmanagers:\n- static_configs: ['am:9093']\n  api_version: v1\n",
        )
        .expect("parses");
        let err = EndpointGroup::from_config(
            &v1[0],
            Duration::from_secs(10),
            Duration::from_secs(60),
            Duration::from_secs(30),
            &Resolver::system(),
            DnsMetrics::default(),
        )
        .expect_err("v1 refused");
        assert!(err.to_string().contains("v1"), "{err}");
    }

    #[tokio::test]
    async fn urls_join_scheme_host_and_prefix() {
        let group = EndpointGroup::from_url(
            "http://user:pw@127.0.0.1:9093/am/",
            Duration::from_secs(1),
            Duration::from_secs(60),
            Duration::from_secs(30),
            &Resolver::system(),
            DnsMetrics::default(),
        )
        .expect("group");
        assert_eq!(
            group.urls("/api/v2/alerts").await,
            vec![(
                "127.0.0.1:9093".to_owned(),
                "http://127.0.0.1:9093/am/api/v2/alerts".to_owned()
            )]
        );
    }
}
