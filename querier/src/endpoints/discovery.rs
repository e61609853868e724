//! Where endpoint addresses come from: static flags and `--store.sd-files` (Prometheus file SD:
//! a YAML or JSON list of `{targets: [...], labels: {...}}`), each address optionally prefixed
//! for DNS discovery:
//!
//! - `dns+host:port`: A/AAAA lookup, one endpoint per address (the port is required);
//! - `dnssrv+_grpc._tcp.name`: SRV lookup, then A/AAAA of each target, with the record's port;
//! - `dnssrvnoa+_grpc._tcp.name`: SRV lookup, the targets' names used as they are.
//!
//! `--endpoint.sd-config-file` (Thanos's endpoint config: `endpoints: [{address, strict,
//! group}]`) is re-read every `--endpoint.sd-config-reload-interval`; a `group` entry is used as
//! one address, like `--endpoint-group`.
//!
//! Files are re-read every `--store.sd-interval` and names re-resolved every
//! `--store.sd-dns-interval` through [`strata_common::dns::Resolver`] (hickory-resolver:
//! resolv.conf search and ndots, TCP fallback for truncated answers). A failed lookup or
//! unreadable file keeps the previous result, so a DNS hiccup does not drop healthy stores.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;
use strata_common::dns::{Resolver, is_dns_address};
use tokio::sync::Mutex;

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

/// Thanos's `--endpoint.sd-config(-file)`: only `address`, `strict` and `group` are read;
/// client settings come from the global `--grpc-client-*` flags.
#[derive(Debug, Deserialize)]
struct EndpointConfig {
    #[serde(default)]
    endpoints: Vec<EndpointConfigEntry>,
}

#[derive(Debug, Deserialize)]
struct EndpointConfigEntry {
    address: String,
    #[serde(default)]
    strict: bool,
    /// An endpoint group: one address that load-balances several stores, asked as one.
    #[serde(default)]
    #[allow(dead_code)]
    group: bool,
}

/// The endpoints of an `--endpoint.sd-config` text.
pub fn parse_endpoint_config(text: &str) -> std::result::Result<Vec<Target>, String> {
    let parsed: EndpointConfig = serde_yaml::from_str(text).map_err(|err| err.to_string())?;
    Ok(parsed
        .endpoints
        .into_iter()
        .map(|entry| Target {
            address: entry.address,
            strict: entry.strict,
        })
        .collect())
}

/// The endpoints of an `--endpoint.sd-config-file`.
pub fn read_endpoint_config_file(path: &std::path::Path) -> Result<Vec<Target>> {
    let failed = |reason: String| Error::SdFile {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|err| failed(err.to_string()))?;
    parse_endpoint_config(&text).map_err(failed)
}

/// `--endpoint.sd-config-file` and how often it is re-read.
#[derive(Debug, Clone)]
struct EndpointConfigFile {
    path: PathBuf,
    interval: Duration,
}

#[derive(Debug, Default)]
struct State {
    config_read_at: Option<Instant>,
    config_targets: Vec<Target>,
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
    endpoint_config: Option<EndpointConfigFile>,
    dns_interval: Duration,
    resolver: Resolver,
    metrics: QuerierMetrics,
    state: Mutex<State>,
}

impl Discovery {
    pub fn new(
        static_addresses: Vec<Target>,
        sd_files: Vec<PathBuf>,
        sd_interval: Duration,
        dns_interval: Duration,
        resolver: Resolver,
        metrics: QuerierMetrics,
    ) -> Self {
        Self {
            static_addresses,
            sd_files,
            sd_interval,
            endpoint_config: None,
            dns_interval,
            resolver,
            metrics,
            state: Mutex::new(State::default()),
        }
    }

    /// Adds `--endpoint.sd-config-file` at `path`, already read once into `initial`, to be
    /// re-read every `interval` (a failed read keeps the previous endpoints).
    pub fn with_endpoint_config_file(
        mut self,
        path: PathBuf,
        interval: Duration,
        initial: Vec<Target>,
    ) -> Self {
        self.endpoint_config = Some(EndpointConfigFile { path, interval });
        let state = self.state.get_mut();
        state.config_targets = initial;
        state.config_read_at = Some(Instant::now());
        self
    }

    /// The endpoint addresses to use now.
    pub async fn targets(&self) -> Vec<Target> {
        let mut state = self.state.lock().await;
        if let Some(config) = &self.endpoint_config {
            let due = state
                .config_read_at
                .is_none_or(|at| at.elapsed() >= config.interval);
            if due {
                match read_endpoint_config_file(&config.path) {
                    Ok(targets) => state.config_targets = targets,
                    Err(err) => {
                        tracing::warn!(error = %err, "endpoint config reload failed; keeping previous endpoints");
                    }
                }
                state.config_read_at = Some(Instant::now());
            }
        }
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
            .chain(&state.config_targets)
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
            if !is_dns_address(&target.address) {
                targets.push(target.clone());
                continue;
            }
            if dns_due || !state.resolved.contains_key(&target.address) {
                self.metrics.dns_lookups_total.inc();
                match self.resolver.resolve(&target.address).await {
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
            Resolver::system(),
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

    /// A Kubernetes-style short SRV name from a file SD file, resolved through the namespace's
    /// search list; the UDP answer is truncated, so all stores arrive only over TCP. When the
    /// nameserver then fails the previous stores are kept.
    #[tokio::test]
    async fn short_srv_names_resolve_through_search_list_and_tcp_fallback() {
        use std::net::Ipv4Addr;
        use strata_common::dns::SrvTarget;
        use strata_common::dns::test_server::{TestDnsServer, Zone};

        let stores: u8 = 30;
        let mut zone = Zone {
            udp_max_answers: Some(4),
            ..Zone::default()
        };
        let domain = "strata-store.monitoring.svc.cluster.local";
        zone.srv.insert(
            format!("_grpc._tcp.{domain}"),
            (1..=stores)
                .map(|index| SrvTarget {
                    target: format!("strata-store-{index}.{domain}"),
                    port: 10901,
                })
                .collect(),
        );
        for index in 1..=stores {
            zone.a.insert(
                format!("strata-store-{index}.{domain}"),
                vec![Ipv4Addr::new(10, 1, 0, index)],
            );
        }
        let server = TestDnsServer::start(zone).await.expect("dns server");
        let resolver = Resolver::from_resolv_conf(
            "nameserver 127.0.0.1\nsearch monitoring.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:1 attempts:1\n",
            server.port,
        )
        .expect("resolver");
        let dir = tempfile_dir();
        let path = dir.join("sd.yml");
        std::fs::write(&path, "- targets: ['dnssrv+_grpc._tcp.strata-store']\n")
            .expect("write sd file");
        let metrics = QuerierMetrics::new(&strata_common::telemetry::MetricsRegistry::new());
        let discovery = Discovery::new(
            Vec::new(),
            vec![path],
            Duration::from_secs(300),
            Duration::ZERO,
            resolver,
            metrics.clone(),
        );
        let expected: Vec<String> = {
            let mut all: Vec<String> = (1..=stores)
                .map(|index| format!("10.1.0.{index}:10901"))
                .collect();
            all.sort();
            all
        };
        let addresses = |targets: Vec<Target>| -> Vec<String> {
            targets.into_iter().map(|target| target.address).collect()
        };
        assert_eq!(addresses(discovery.targets().await), expected);
        assert!(server.truncated_answers() >= 1 && server.tcp_queries() >= 1);
        assert_eq!(metrics.dns_failures_total.get(), 0);

        server.set_failing(true);
        assert_eq!(addresses(discovery.targets().await), expected);
        assert!(
            metrics.dns_failures_total.get() >= 1,
            "the lookup did not fail"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    /// `--endpoint.sd-config-file` is re-read at its interval; a broken file keeps the
    /// previous endpoints; `group` entries are used as one address each.
    #[tokio::test]
    async fn endpoint_config_file_is_reloaded() {
        let dir = tempfile_dir().join("endpoint-config");
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("endpoints.yml");
        std::fs::write(
            &path,
            "endpoints:\n  - address: 10.0.0.1:10901\n    strict: true\n",
        )
        .expect("write");
        let initial = read_endpoint_config_file(&path).expect("read");
        let discovery = Discovery::new(
            Vec::new(),
            Vec::new(),
            Duration::from_secs(300),
            Duration::from_secs(30),
            Resolver::system(),
            QuerierMetrics::new(&strata_common::telemetry::MetricsRegistry::new()),
        )
        .with_endpoint_config_file(path.clone(), Duration::ZERO, initial);
        let addresses = |targets: Vec<Target>| {
            targets
                .into_iter()
                .map(|t| (t.address, t.strict))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            addresses(discovery.targets().await),
            vec![("10.0.0.1:10901".to_owned(), true)]
        );
        std::fs::write(
            &path,
            "endpoints:\n  - address: 10.0.0.2:10901\n  - address: 10.0.0.3:10901\n    group: true\n",
        )
        .expect("rewrite");
        assert_eq!(
            addresses(discovery.targets().await),
            vec![
                ("10.0.0.2:10901".to_owned(), false),
                ("10.0.0.3:10901".to_owned(), false)
            ]
        );
        std::fs::write(&path, "endpoints: {broken").expect("break");
        assert_eq!(addresses(discovery.targets().await).len(), 2);
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
