//! DNS for endpoint discovery, shared by the querier (`--endpoint`, `--store`, file SD) and the
//! ruler (`--query`, `--alertmanagers.url`). Addresses use Thanos's prefixes:
//!
//! - `dns+host:port`: A/AAAA lookup, one address per IP, with the given port;
//! - `dnssrv+_grpc._tcp.name`: SRV lookup, then A/AAAA of each target, with the record's port;
//! - `dnssrvnoa+_grpc._tcp.name`: SRV lookup, the targets' names used as they are.
//!
//! Lookups go through `hickory-resolver`, a maintained stub resolver: resolv.conf `search` and
//! `ndots` are honoured (so `dnssrv+_grpc._tcp.strata-store` works inside a Kubernetes
//! namespace), a truncated UDP answer is retried over TCP, query IDs and source ports are random,
//! and answers are cached for their TTL. Production reads `/etc/resolv.conf`
//! ([`Resolver::system`]); tests inject a resolv.conf text and a nameserver port
//! ([`Resolver::from_resolv_conf`]). Keeping the previous result when a lookup fails is the
//! callers' job (their discovery caches), since only they know what "previous" is.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

use crate::error::{Error, Result};

#[cfg(any(test, feature = "dns-test-server"))]
pub mod test_server;

/// The prefixes that mark an address for DNS discovery, longest first.
pub const PREFIXES: [&str; 3] = ["dnssrvnoa+", "dnssrv+", "dns+"];

/// Whether `address` asks for DNS discovery.
pub fn is_dns_address(address: &str) -> bool {
    PREFIXES.iter().any(|prefix| address.starts_with(prefix))
}

/// One SRV record's target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SrvTarget {
    /// The target host name without the trailing dot.
    pub target: String,
    pub port: u16,
}

/// A resolver built once per service and cloned into every discovery (clones share one cache
/// and one connection pool).
#[derive(Clone)]
pub struct Resolver {
    /// Why no resolver could be built (no resolv.conf, no nameserver in it): kept rather than
    /// failing start-up, because a service with only static addresses never needs DNS.
    inner: std::result::Result<TokioResolver, String>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Ok(resolver) => formatter
                .debug_struct("Resolver")
                .field("options", resolver.options())
                .finish(),
            Err(reason) => formatter
                .debug_struct("Resolver")
                .field("unavailable", reason)
                .finish(),
        }
    }
}

impl Resolver {
    /// The system's resolver configuration (`/etc/resolv.conf` on Unix).
    pub fn system() -> Self {
        let inner = TokioResolver::builder_tokio()
            .and_then(|builder| builder.build())
            .map_err(|err| format!("read system resolver configuration: {err}"));
        if let Err(reason) = &inner {
            tracing::warn!(%reason, "DNS discovery unavailable until the resolver configuration is fixed");
        }
        Self { inner }
    }

    /// A resolver configured from resolv.conf text (nameservers, `search`, `domain`,
    /// `options ndots:N timeout:N attempts:N`), every nameserver on `port` instead of 53.
    pub fn from_resolv_conf(text: &str, port: u16) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidFlag {
            flag: "resolv.conf",
            reason,
        };
        let (config, options) = hickory_resolver::system_conf::parse_resolv_conf(text)
            .map_err(|err| invalid(err.to_string()))?;
        let (domain, search, mut name_servers) = config.into_parts();
        for name_server in &mut name_servers {
            for connection in &mut name_server.connections {
                connection.port = port;
            }
        }
        let config = ResolverConfig::from_parts(domain, search, name_servers);
        Ok(Self::from_config(config, options))
    }

    fn from_config(config: ResolverConfig, options: ResolverOpts) -> Self {
        let mut builder =
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        *builder.options_mut() = options;
        Self {
            inner: builder.build().map_err(|err| err.to_string()),
        }
    }

    fn resolver(&self) -> std::result::Result<&TokioResolver, String> {
        self.inner.as_ref().map_err(Clone::clone)
    }

    /// The IP addresses of `host` (an IP literal is returned as it is).
    pub async fn lookup_ip(&self, host: &str) -> std::result::Result<Vec<IpAddr>, String> {
        let host = host
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let lookup = self
            .resolver()?
            .lookup_ip(host)
            .await
            .map_err(|err| err.to_string())?;
        let mut ips: Vec<IpAddr> = lookup.iter().collect();
        ips.sort();
        ips.dedup();
        Ok(ips)
    }

    /// The SRV records of `name`, sorted by target and port.
    pub async fn lookup_srv(&self, name: &str) -> std::result::Result<Vec<SrvTarget>, String> {
        let lookup = self
            .resolver()?
            .srv_lookup(name)
            .await
            .map_err(|err| err.to_string())?;
        let mut targets: Vec<SrvTarget> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) => Some(SrvTarget {
                    target: srv.target.to_utf8().trim_end_matches('.').to_owned(),
                    port: srv.port,
                }),
                _ => None,
            })
            .collect();
        targets.sort();
        targets.dedup();
        Ok(targets)
    }

    /// Resolves one configured address (with or without a DNS prefix) to `host:port` strings,
    /// sorted and deduplicated. An address without a prefix is returned as it is.
    pub async fn resolve(&self, address: &str) -> Result<Vec<String>> {
        let resolve_error = |reason: String| Error::Dns {
            address: address.to_owned(),
            reason,
        };
        let mut out = Vec::new();
        if let Some(name) = address.strip_prefix("dns+") {
            let (host, port) = name.rsplit_once(':').ok_or_else(|| {
                resolve_error("missing port in address given for dns lookup".into())
            })?;
            let port: u16 = port
                .parse()
                .map_err(|_| resolve_error(format!("invalid port {port:?}")))?;
            for ip in self.lookup_ip(host).await.map_err(resolve_error)? {
                out.push(SocketAddr::new(ip, port).to_string());
            }
        } else if let Some(name) = address.strip_prefix("dnssrvnoa+") {
            for srv in self.lookup_srv(name).await.map_err(resolve_error)? {
                out.push(format!("{}:{}", srv.target, srv.port));
            }
        } else if let Some(name) = address.strip_prefix("dnssrv+") {
            for srv in self.lookup_srv(name).await.map_err(resolve_error)? {
                let ips = self
                    .lookup_ip(&srv.target)
                    .await
                    .map_err(|reason| resolve_error(format!("{}: {reason}", srv.target)))?;
                out.extend(
                    ips.into_iter()
                        .map(|ip| SocketAddr::new(ip, srv.port).to_string()),
                );
            }
        } else {
            out.push(address.to_owned());
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
