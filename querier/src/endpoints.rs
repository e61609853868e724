//! The endpoint set: every StoreAPI the querier fans out to, with what each one serves.
//!
//! Addresses come from `--endpoint`/`--endpoint-strict`/`--store` and the `--store.sd-files`
//! (Prometheus file SD format); addresses prefixed `dns+`, `dnssrv+` or `dnssrvnoa+` are
//! resolved through DNS ([`discovery`]). Every `--endpoint.info-timeout` (5 s, Thanos's hidden
//! default) the set is refreshed: addresses are re-discovered (files every
//! `--store.sd-interval`, DNS every `--store.sd-dns-interval`), new endpoints get a lazily
//! connecting gRPC channel, and every endpoint is asked for its Info (the `thanos.info.Info`
//! API, falling back to the legacy `thanos.Store/Info`). An endpoint whose Info fails is
//! unhealthy and not queried (strict endpoints stay in the set with their last known info).
//!
//! [`EndpointSet::stores_for`] prunes per query: time ranges must overlap and at least one of
//! the store's external label sets must be compatible with the query matchers
//! (reference/thanos.md 4.3).

pub mod discovery;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::RwLock;
use strata_common::flags::GrpcClientFlags;
use strata_common::labels::labels_from_proto;
use strata_common::storeapi::external::external_labels_match;
use strata_common::storeapi::{StoreApiClient, endpoint as grpc_endpoint};
use strata_proto::thanos;
use strata_tsdb::labels::{Labels, Matcher};
use tonic::transport::Channel;

use crate::error::Result;
use crate::metrics::{GrpcClientMetrics, QuerierMetrics};

/// How often Info is called on every endpoint, and how long one call may take.
pub const INFO_INTERVAL: Duration = Duration::from_secs(5);

/// What an endpoint told us about itself in its last successful Info.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointInfo {
    /// `sidecar`, `store`, `query`, `rule`, `receive`, `debug`, ...
    pub component_type: String,
    pub label_sets: Vec<Labels>,
    pub min_time: i64,
    pub max_time: i64,
    pub supports_without_replica_labels: bool,
}

/// The state of one endpoint, as `/api/v1/stores` shows it.
#[derive(Debug, Clone, Default)]
pub struct EndpointStatus {
    pub info: Option<EndpointInfo>,
    pub last_check: Option<SystemTime>,
    pub last_error: Option<String>,
    /// When the endpoint last answered Info.
    pub last_healthy: Option<Instant>,
}

/// One StoreAPI endpoint.
#[derive(Debug)]
pub struct Endpoint {
    address: String,
    strict: bool,
    channel: Channel,
    status: RwLock<EndpointStatus>,
}

impl Endpoint {
    fn new(address: &str, strict: bool, flags: &GrpcClientFlags) -> Result<Self> {
        let channel = grpc_endpoint(address, flags)?.connect_lazy();
        Ok(Self {
            address: address.to_owned(),
            strict,
            channel,
            status: RwLock::new(EndpointStatus::default()),
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn status(&self) -> EndpointStatus {
        self.status.read().clone()
    }

    /// The info of a healthy endpoint (strict endpoints keep their last info when failing).
    pub fn usable_info(&self) -> Option<EndpointInfo> {
        let status = self.status.read();
        if status.last_error.is_none() || self.strict {
            status.info.clone()
        } else {
            None
        }
    }

    /// A StoreAPI client over this endpoint's channel.
    pub fn client(&self) -> StoreApiClient {
        StoreApiClient::from_channel(&self.address, self.channel.clone())
    }

    /// Asks for Info (the Info API, else the legacy Store Info) and records the outcome.
    async fn refresh(&self, metrics: &GrpcClientMetrics) {
        let call = metrics.start("thanos.info.Info", "Info", "unary");
        let result = tokio::time::timeout(INFO_INTERVAL, self.fetch_info()).await;
        let result = match result {
            Ok(result) => result,
            Err(_) => Err(format!("info call timed out after {INFO_INTERVAL:?}")),
        };
        call.finish(if result.is_ok() {
            tonic::Code::Ok
        } else {
            tonic::Code::Unavailable
        });
        let mut status = self.status.write();
        status.last_check = Some(SystemTime::now());
        match result {
            Ok(info) => {
                status.info = Some(info);
                status.last_error = None;
                status.last_healthy = Some(Instant::now());
            }
            Err(error) => {
                tracing::debug!(store = %self.address, error = %error, "endpoint info failed");
                status.last_error = Some(error);
            }
        }
    }

    async fn fetch_info(&self) -> std::result::Result<EndpointInfo, String> {
        let mut client = self.client();
        match client.info().await {
            Ok(info) => Ok(info_from_info_api(info)),
            Err(strata_common::error::Error::Call { source, .. })
                if source.code() == tonic::Code::Unimplemented =>
            {
                let mut legacy = thanos::store_client::StoreClient::new(self.channel.clone());
                let info = legacy
                    .info(thanos::InfoRequest {})
                    .await
                    .map_err(|status| {
                        format!(
                            "rpc error: code = {:?} desc = {}",
                            status.code(),
                            status.message()
                        )
                    })?;
                Ok(info_from_legacy(info.into_inner()))
            }
            Err(err) => Err(strata_common::error::error_chain(&err)),
        }
    }
}

fn info_from_info_api(info: thanos::info::InfoResponse) -> EndpointInfo {
    let label_sets = info
        .label_sets
        .into_iter()
        .map(|set| labels_from_proto(set.labels))
        .collect();
    let (min_time, max_time, without_replica) = match info.store {
        Some(store) => (
            store.min_time,
            store.max_time,
            store.supports_without_replica_labels,
        ),
        // Not a store (e.g. a rule or exemplars-only endpoint): never selected for Series.
        None => (i64::MAX, i64::MIN, false),
    };
    EndpointInfo {
        component_type: info.component_type,
        label_sets,
        min_time,
        max_time,
        supports_without_replica_labels: without_replica,
    }
}

fn info_from_legacy(info: thanos::InfoResponse) -> EndpointInfo {
    let mut label_sets: Vec<Labels> = info
        .label_sets
        .into_iter()
        .map(|set| labels_from_proto(set.labels))
        .collect();
    if label_sets.is_empty() && !info.labels.is_empty() {
        label_sets.push(labels_from_proto(info.labels));
    }
    let component_type = match thanos::StoreType::try_from(info.store_type) {
        Ok(thanos::StoreType::Query) => "query",
        Ok(thanos::StoreType::Rule) => "rule",
        Ok(thanos::StoreType::Sidecar) => "sidecar",
        Ok(thanos::StoreType::Store) => "store",
        Ok(thanos::StoreType::Receive) => "receive",
        Ok(thanos::StoreType::Debug) => "debug",
        _ => "unknown",
    };
    EndpointInfo {
        component_type: component_type.to_owned(),
        label_sets,
        min_time: info.min_time,
        max_time: info.max_time,
        supports_without_replica_labels: false,
    }
}

/// Whether a store with `info` may hold data for a query over `[min_time, max_time]` with
/// `matchers` (thanos.md 4.3 (a) and (c)).
pub fn store_matches(
    info: &EndpointInfo,
    min_time: i64,
    max_time: i64,
    matchers: &[Matcher],
) -> bool {
    if min_time > info.max_time || max_time < info.min_time {
        return false;
    }
    info.label_sets.is_empty()
        || info
            .label_sets
            .iter()
            .any(|set| external_labels_match(set, matchers))
}

/// A store selected for a query.
#[derive(Debug, Clone)]
pub struct SelectedStore {
    pub endpoint: Arc<Endpoint>,
    pub info: EndpointInfo,
    /// The last Info error of an endpoint that is down now.
    pub unhealthy: Option<String>,
}

/// The set of endpoints, shared by the query API, the proxy StoreAPI and the refresh loop.
#[derive(Debug)]
pub struct EndpointSet {
    discovery: discovery::Discovery,
    flags: GrpcClientFlags,
    endpoints: RwLock<BTreeMap<String, Arc<Endpoint>>>,
    unhealthy_timeout: Duration,
    metrics: QuerierMetrics,
}

impl EndpointSet {
    pub fn new(
        discovery: discovery::Discovery,
        flags: GrpcClientFlags,
        unhealthy_timeout: Duration,
        metrics: QuerierMetrics,
    ) -> Self {
        Self {
            discovery,
            flags,
            endpoints: RwLock::new(BTreeMap::new()),
            unhealthy_timeout,
            metrics,
        }
    }

    /// Re-discovers addresses, adds and removes endpoints, and calls Info on all of them.
    pub async fn refresh(&self) {
        let targets = self.discovery.targets().await;
        {
            let mut endpoints = self.endpoints.write();
            endpoints.retain(|address, endpoint| {
                endpoint.strict || targets.iter().any(|target| &target.address == address)
            });
            for target in &targets {
                if endpoints.contains_key(&target.address) {
                    continue;
                }
                match Endpoint::new(&target.address, target.strict, &self.flags) {
                    Ok(endpoint) => {
                        tracing::info!(store = %target.address, "adding new store endpoint");
                        endpoints.insert(target.address.clone(), Arc::new(endpoint));
                    }
                    Err(err) => tracing::warn!(
                        store = %target.address,
                        error = %strata_common::error::error_chain(&err),
                        "invalid endpoint address"
                    ),
                }
            }
        }
        let all = self.all();
        let client_metrics = &self.metrics.grpc_client;
        futures::future::join_all(all.iter().map(|endpoint| endpoint.refresh(client_metrics)))
            .await;
        self.metrics.set_store_nodes(&self.usable());
    }

    /// The querier's metrics (the fan-out records its client calls there).
    pub fn metrics(&self) -> &QuerierMetrics {
        &self.metrics
    }

    /// Refreshes every [`INFO_INTERVAL`] until `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> std::result::Result<(), std::convert::Infallible> {
        let mut ticker = tokio::time::interval(INFO_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => self.refresh().await,
                () = shutdown.cancelled() => return Ok(()),
            }
        }
    }

    /// Every endpoint in address order.
    pub fn all(&self) -> Vec<Arc<Endpoint>> {
        self.endpoints.read().values().cloned().collect()
    }

    /// Endpoints that answer Info now, with their info.
    pub fn usable(&self) -> Vec<(Arc<Endpoint>, EndpointInfo)> {
        self.all()
            .into_iter()
            .filter_map(|endpoint| endpoint.usable_info().map(|info| (endpoint, info)))
            .collect()
    }

    /// The stores to ask for `[min_time, max_time]` and `matchers`: healthy endpoints whose
    /// info matches, plus endpoints that matched when last seen but fail their Info now (for
    /// at most `--store.unhealthy-timeout`). Those are not called; the query reports them as
    /// failed stores (a warning with partial response, else an error), so an operator sees
    /// that a cluster is missing instead of silently getting less data.
    pub fn stores_for(
        &self,
        min_time: i64,
        max_time: i64,
        matchers: &[Matcher],
    ) -> Vec<SelectedStore> {
        self.all()
            .into_iter()
            .filter_map(|endpoint| {
                let status = endpoint.status();
                let info = status.info.clone()?;
                if !store_matches(&info, min_time, max_time, matchers) {
                    return None;
                }
                let unhealthy = match &status.last_error {
                    None => None,
                    Some(_) if endpoint.strict => None,
                    Some(error) => {
                        let recent = status
                            .last_healthy
                            .is_some_and(|at| at.elapsed() < self.unhealthy_timeout);
                        if !recent {
                            return None;
                        }
                        Some(error.clone())
                    }
                };
                Some(SelectedStore {
                    endpoint,
                    info,
                    unhealthy,
                })
            })
            .collect()
    }

    /// Endpoints to show in `/api/v1/stores`: those unhealthy for longer than
    /// `--store.unhealthy-timeout` are left out.
    pub fn for_display(&self) -> Vec<(Arc<Endpoint>, EndpointStatus)> {
        self.all()
            .into_iter()
            .map(|endpoint| {
                let status = endpoint.status();
                (endpoint, status)
            })
            .filter(|(_, status)| {
                status.last_error.is_none()
                    || status
                        .last_healthy
                        .is_some_and(|at| at.elapsed() < self.unhealthy_timeout)
                    || status.info.is_none()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use strata_tsdb::labels::{MatchType, parse_selector};

    use super::*;

    fn info(sets: &[&[(&str, &str)]], min_time: i64, max_time: i64) -> EndpointInfo {
        EndpointInfo {
            component_type: "sidecar".into(),
            label_sets: sets
                .iter()
                .map(|set| Labels::from_pairs(set.iter().copied()))
                .collect(),
            min_time,
            max_time,
            supports_without_replica_labels: true,
        }
    }

    #[test]
    fn prunes_by_time_and_external_labels() {
        let store = info(&[&[("cluster", "a")], &[("cluster", "b")]], 1000, 2000);
        let matchers = parse_selector(r#"up{cluster="b"}"#).expect("selector");
        assert!(store_matches(&store, 0, 1000, &matchers));
        assert!(!store_matches(&store, 2001, 3000, &matchers));
        assert!(!store_matches(&store, 0, 999, &matchers));
        let other = parse_selector(r#"up{cluster="c"}"#).expect("selector");
        assert!(!store_matches(&store, 0, 5000, &other));
        let regex = vec![Matcher::new(MatchType::Regex, "cluster", "a|c").expect("matcher")];
        assert!(store_matches(&store, 0, 5000, &regex));
        // Matchers on labels the store does not advertise do not prune it.
        let job = parse_selector(r#"up{job="x"}"#).expect("selector");
        assert!(store_matches(&store, 0, 5000, &job));
        // A store without label sets always passes the label check.
        assert!(store_matches(&info(&[], 0, 10), 0, 5, &other));
    }

    #[test]
    fn legacy_info_is_understood() {
        let legacy = info_from_legacy(thanos::InfoResponse {
            labels: vec![thanos::Label::new("cluster", "a")],
            min_time: 5,
            max_time: 9,
            store_type: thanos::StoreType::Sidecar as i32,
            label_sets: Vec::new(),
        });
        assert_eq!(legacy.component_type, "sidecar");
        assert_eq!(
            legacy.label_sets,
            vec![Labels::from_pairs([("cluster", "a")])]
        );
        assert_eq!((legacy.min_time, legacy.max_time), (5, 9));
    }
}
