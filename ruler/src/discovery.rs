//! Where the ruler's query APIs and Alertmanagers are: static addresses and file SD files,
//! each address optionally prefixed for DNS discovery as Thanos's `--query` and
//! `--alertmanagers.url` are (and as the querier resolves `--endpoint`):
//!
//! - `dns+host:port`: A/AAAA lookup, one endpoint per address;
//! - `dnssrv+_http._tcp.name`: SRV lookup, then A/AAAA of each target, with the record's port;
//! - `dnssrvnoa+_http._tcp.name`: SRV lookup, the targets' names used as they are.
//!
//! Lookups go through [`strata_common::dns::Resolver`] (hickory-resolver with the system's
//! resolv.conf: search domains and ndots, so short Kubernetes service names work). Names are re-resolved every DNS interval
//! and files re-read every SD interval; a failed lookup keeps the previous result, so a DNS
//! hiccup does not drop healthy endpoints.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use strata_common::dns::{Resolver, is_dns_address};
use tokio::sync::Mutex;

use crate::error::{Error, Result};

/// One configured address: scheme and path come from the configuration, the host from here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Address {
    /// `host:port`, possibly with a `dns+`-style prefix.
    pub host: String,
}

#[derive(Debug, Deserialize)]
struct FileSdGroup {
    #[serde(default)]
    targets: Vec<String>,
}

/// Reads the targets of one file SD file (YAML or JSON).
pub fn read_sd_file(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|err| Error::Config {
        what: "read file sd",
        reason: format!("{}: {err}", path.display()),
    })?;
    let groups: Vec<FileSdGroup> = serde_yaml::from_str(&text).map_err(|err| Error::Config {
        what: "parse file sd",
        reason: format!("{}: {err}", path.display()),
    })?;
    Ok(groups.into_iter().flat_map(|group| group.targets).collect())
}

#[derive(Debug, Default)]
struct State {
    files_read_at: Option<Instant>,
    file_addresses: Vec<String>,
    resolved_at: Option<Instant>,
    resolved: BTreeMap<String, Vec<String>>,
}

/// DNS metrics of one discovery (`thanos_rule_query_apis_dns_*`,
/// `thanos_rule_alertmanagers_dns_*`).
#[derive(Debug, Clone, Default)]
pub struct DnsMetrics {
    pub lookups: Counter,
    pub failures: Counter,
}

/// The configured addresses and their cached resolution.
#[derive(Debug)]
pub struct Discovery {
    static_addresses: Vec<String>,
    sd_files: Vec<PathBuf>,
    sd_interval: Duration,
    dns_interval: Duration,
    resolver: Resolver,
    metrics: DnsMetrics,
    state: Mutex<State>,
}

impl Discovery {
    pub fn new(
        static_addresses: Vec<String>,
        sd_files: Vec<PathBuf>,
        sd_interval: Duration,
        dns_interval: Duration,
        resolver: Resolver,
        metrics: DnsMetrics,
    ) -> Self {
        Self {
            static_addresses,
            sd_files,
            sd_interval,
            dns_interval,
            resolver,
            metrics,
            state: Mutex::new(State::default()),
        }
    }

    /// The `host:port` addresses to use now.
    pub async fn addresses(&self) -> Vec<String> {
        let mut state = self.state.lock().await;
        let files_due = state
            .files_read_at
            .is_none_or(|at| at.elapsed() >= self.sd_interval);
        if files_due && !self.sd_files.is_empty() {
            let mut found = Vec::new();
            let mut failed = false;
            for path in &self.sd_files {
                match read_sd_file(path) {
                    Ok(addresses) => found.extend(addresses),
                    Err(err) => {
                        failed = true;
                        tracing::warn!(error = %err, "file service discovery failed; keeping previous targets");
                    }
                }
            }
            if !failed {
                state.file_addresses = found;
            }
            state.files_read_at = Some(Instant::now());
        }
        let configured: Vec<String> = self
            .static_addresses
            .iter()
            .chain(state.file_addresses.iter())
            .cloned()
            .collect();
        let dns_due = state
            .resolved_at
            .is_none_or(|at| at.elapsed() >= self.dns_interval);
        let mut out = Vec::new();
        for address in &configured {
            if !is_dns_address(address) {
                out.push(address.clone());
                continue;
            }
            if dns_due || !state.resolved.contains_key(address) {
                self.metrics.lookups.inc();
                match self.resolver.resolve(address).await {
                    Ok(found) => {
                        state.resolved.insert(address.clone(), found);
                    }
                    Err(err) => {
                        self.metrics.failures.inc();
                        tracing::warn!(error = %err, "DNS lookup failed; keeping previous result");
                    }
                }
            }
            out.extend(state.resolved.get(address).into_iter().flatten().cloned());
        }
        if dns_due {
            state.resolved_at = Some(Instant::now());
        }
        out.sort();
        out.dedup();
        out
    }
}

/// Splits `[scheme://][user:pass@]host[:port][/path]` with an optional DNS prefix before the
/// scheme (`dns+http://host:9093/prefix`) into (scheme, basic auth, DNS-prefixed host, path).
pub fn split_url(url: &str) -> (String, Option<(String, String)>, String, String) {
    let (prefix, rest) = ["dnssrvnoa+", "dnssrv+", "dns+"]
        .iter()
        .find_map(|prefix| url.strip_prefix(prefix).map(|rest| (*prefix, rest)))
        .unwrap_or(("", url));
    let (scheme, rest) = match rest.split_once("://") {
        Some((scheme, rest)) => (scheme.to_owned(), rest),
        None => ("http".to_owned(), rest),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], rest[at..].trim_end_matches('/').to_owned()),
        None => (rest, String::new()),
    };
    let (auth, host) = match authority.rsplit_once('@') {
        Some((user_pass, host)) => {
            let (user, pass) = user_pass.split_once(':').unwrap_or((user_pass, ""));
            (Some((user.to_owned(), pass.to_owned())), host)
        }
        None => (None, authority),
    };
    (scheme, auth, format!("{prefix}{host}"), path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_auth_host_and_prefix() {
        assert_eq!(
            split_url("http://127.0.0.1:9093"),
            ("http".into(), None, "127.0.0.1:9093".into(), String::new())
        );
        assert_eq!(
            split_url("dns+https://u:p@am.svc:9093/prefix/"),
            (
                "https".into(),
                Some(("u".into(), "p".into())),
                "dns+am.svc:9093".into(),
                "/prefix".into()
            )
        );
        assert_eq!(
            split_url("dnssrv+_http._tcp.thanos-query.thanos"),
            (
                "http".into(),
                None,
                "dnssrv+_http._tcp.thanos-query.thanos".into(),
                String::new()
            )
        );
    }
}
