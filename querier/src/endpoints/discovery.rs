//! Where endpoint addresses come from: static flags and `--store.sd-files` (Prometheus file SD:
//! a YAML or JSON list of `{targets: [...], labels: {...}}`), each address optionally prefixed
//! for DNS discovery:
//!
//! - `dns+host:port`: A/AAAA lookup, one endpoint per address (the port is required);
//! - `dnssrv+_grpc._tcp.name`: SRV lookup, then A/AAAA of each target, with the record's port;
//! - `dnssrvnoa+_grpc._tcp.name`: SRV lookup, the targets' names used as they are.
//!
//! Files are re-read every `--store.sd-interval` and names re-resolved every
//! `--store.sd-dns-interval`. A failed lookup or unreadable file keeps the previous result, so
//! a DNS hiccup does not drop healthy stores.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::dns;
use crate::error::{Error, Result};
use crate::metrics::QuerierMetrics;

/// One address to connect to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub address: String,
    /// Kept in the set even when its Info fails.
    pub strict: bool,
}

/// One group of a Prometheus file SD file.
#[derive(Debug, Deserialize)]
struct FileSdGroup {
    #[serde(default)]
    targets: Vec<String>,
}

/// Reads the addresses of one file SD file.
pub fn read_sd_file(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|err| Error::SdFile {
        path: path.to_owned(),
        reason: err.to_string(),
    })?;
    let groups: Vec<FileSdGroup> = serde_yaml::from_str(&text).map_err(|err| Error::SdFile {
        path: path.to_owned(),
        reason: err.to_string(),
    })?;
    Ok(groups.into_iter().flat_map(|group| group.targets).collect())
}

/// Resolves one configured address (with or without a DNS prefix) to endpoint addresses.
pub async fn resolve(address: &str) -> Result<Vec<String>> {
    let resolve_error = |reason: String| Error::Resolve {
        address: address.to_owned(),
        reason,
    };
    if let Some(name) = address.strip_prefix("dns+") {
        let (host, port) = name
            .rsplit_once(':')
            .ok_or_else(|| resolve_error("missing port in address given for dns lookup".into()))?;
        let port: u16 = port
            .parse()
            .map_err(|_| resolve_error(format!("invalid port {port:?}")))?;
        let addresses = tokio::net::lookup_host((host, port))
            .await
            .map_err(|err| resolve_error(err.to_string()))?;
        let mut out: Vec<String> = addresses.map(|address| address.to_string()).collect();
        out.sort();
        out.dedup();
        return Ok(out);
    }
    if let Some(name) = address.strip_prefix("dnssrvnoa+") {
        let records = dns::lookup_srv(name)
            .await
            .map_err(|err| resolve_error(err.to_string()))?;
        return Ok(records
            .into_iter()
            .map(|record| format!("{}:{}", record.target, record.port))
            .collect());
    }
    if let Some(name) = address.strip_prefix("dnssrv+") {
        let records = dns::lookup_srv(name)
            .await
            .map_err(|err| resolve_error(err.to_string()))?;
        let mut out = Vec::new();
        for record in records {
            let addresses = tokio::net::lookup_host((record.target.as_str(), record.port))
                .await
                .map_err(|err| resolve_error(format!("{}: {err}", record.target)))?;
            out.extend(addresses.map(|address| address.to_string()));
        }
        out.sort();
        out.dedup();
        return Ok(out);
    }
    Ok(vec![address.to_owned()])
}

#[derive(Debug, Default)]
struct State {
    files_read_at: Option<Instant>,
    file_addresses: Vec<String>,
    resolved_at: Option<Instant>,
    /// Configured address -> resolved addresses (kept on lookup failure).
    resolved: BTreeMap<String, Vec<String>>,
}

/// The configured sources of endpoint addresses and their cached resolution.
#[derive(Debug)]
pub struct Discovery {
    static_addresses: Vec<Target>,
    sd_files: Vec<PathBuf>,
    sd_interval: Duration,
    dns_interval: Duration,
    metrics: QuerierMetrics,
    state: Mutex<State>,
}

impl Discovery {
    pub fn new(
        static_addresses: Vec<Target>,
        sd_files: Vec<PathBuf>,
        sd_interval: Duration,
        dns_interval: Duration,
        metrics: QuerierMetrics,
    ) -> Self {
        Self {
            static_addresses,
            sd_files,
            sd_interval,
            dns_interval,
            metrics,
            state: Mutex::new(State::default()),
        }
    }

    /// The endpoint addresses to use now.
    pub async fn targets(&self) -> Vec<Target> {
        let mut state = self.state.lock().await;
        let files_due = state
            .files_read_at
            .is_none_or(|at| at.elapsed() >= self.sd_interval);
        if files_due && !self.sd_files.is_empty() {
            let mut addresses = Vec::new();
            let mut failed = false;
            for path in &self.sd_files {
                match read_sd_file(path) {
                    Ok(found) => addresses.extend(found),
                    Err(err) => {
                        failed = true;
                        tracing::warn!(error = %err, "file service discovery failed; keeping previous targets");
                    }
                }
            }
            if !failed {
                state.file_addresses = addresses;
            }
            state.files_read_at = Some(Instant::now());
        }
        let configured: Vec<Target> = self
            .static_addresses
            .iter()
            .cloned()
            .chain(state.file_addresses.iter().map(|address| Target {
                address: address.clone(),
                strict: false,
            }))
            .collect();
        let dns_due = state
            .resolved_at
            .is_none_or(|at| at.elapsed() >= self.dns_interval);
        let mut targets = Vec::new();
        for target in &configured {
            let is_dns = ["dns+", "dnssrv+", "dnssrvnoa+"]
                .iter()
                .any(|prefix| target.address.starts_with(prefix));
            if !is_dns {
                targets.push(target.clone());
                continue;
            }
            if dns_due || !state.resolved.contains_key(&target.address) {
                self.metrics.dns_lookups_total.inc();
                match resolve(&target.address).await {
                    Ok(found) => {
                        state.resolved.insert(target.address.clone(), found);
                    }
                    Err(err) => {
                        self.metrics.dns_failures_total.inc();
                        tracing::warn!(error = %err, "endpoint DNS lookup failed; keeping previous result");
                    }
                }
            }
            for address in state.resolved.get(&target.address).into_iter().flatten() {
                targets.push(Target {
                    address: address.clone(),
                    strict: target.strict,
                });
            }
        }
        if dns_due {
            state.resolved_at = Some(Instant::now());
        }
        targets.sort();
        targets.dedup_by(|later, earlier| later.address == earlier.address);
        targets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_file_sd_and_resolves_dns_prefixes() {
        let dir = tempfile_dir();
        let path = dir.join("sd.yml");
        std::fs::write(
            &path,
            "- targets: ['10.0.0.1:10901', 'dns+localhost:10902']\n  labels: {a: b}\n- targets: ['10.0.0.2:10901']\n",
        )
        .expect("write sd file");
        let discovery = Discovery::new(
            vec![Target {
                address: "127.0.0.1:1".into(),
                strict: true,
            }],
            vec![path.clone()],
            Duration::from_secs(300),
            Duration::from_secs(30),
            QuerierMetrics::new(&strata_common::telemetry::MetricsRegistry::new()),
        );
        let targets = discovery.targets().await;
        let addresses: Vec<&str> = targets.iter().map(|t| t.address.as_str()).collect();
        assert!(addresses.contains(&"10.0.0.1:10901"), "{addresses:?}");
        assert!(addresses.contains(&"10.0.0.2:10901"), "{addresses:?}");
        assert!(addresses.contains(&"127.0.0.1:1"), "{addresses:?}");
        assert!(
            addresses
                .iter()
                .any(|a| a.ends_with(":10902") && !a.starts_with("dns+")),
            "{addresses:?}"
        );
        // A broken file keeps the previous targets.
        std::fs::write(&path, "{not a list").expect("write");
        assert!(read_sd_file(&path).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn dns_without_port_is_an_error() {
        assert!(resolve("dns+localhost").await.is_err());
        assert_eq!(
            resolve("1.2.3.4:5").await.expect("plain"),
            vec!["1.2.3.4:5".to_owned()]
        );
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "strata-querier-sd-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }
}
