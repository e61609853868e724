//! `strata-ruler`: Thanos's ruler (`thanos rule`). It evaluates Prometheus recording and
//! alerting rules against the querier's HTTP API (the global view of every cluster), sends
//! alerts to Alertmanager, keeps recorded series and `ALERTS` in a local TSDB served over
//! StoreAPI with its `--label` set as external labels, and ships that TSDB's blocks to the
//! bucket with the shared shipper (reference/thanos-ruler-deploy.md sections 1 and 6).
//!
//! Start-up: flags are checked, the rule files loaded (a bad file fails start-up naming file,
//! line and reason), the TSDB opened (its WAL replayed), then the HTTP server, the gRPC
//! server, the rule groups, the notifier and the shipper start. SIGHUP and `POST /-/reload`
//! reload the rule files without losing alert state.
//!
//! Modules: [`config`] (flags), [`rulefmt`] (rule files), [`template`] (Go templates),
//! [`rules`] (rule evaluation and the alert state machine), [`manager`] (groups, schedule,
//! reload, restore), [`query`] (the querier client), [`discovery`] and [`endpoints`]
//! (addresses, DNS, HTTP client config), [`notifier`] (Alertmanager), [`storage`] (the local
//! TSDB), [`store`] (StoreAPI), [`api`] (HTTP API and page), [`metrics`], [`error`].
//!
//! Not here: stateless mode (`--remote-write.config`), the gRPC query API
//! (`--grpc-query-endpoint`), alert relabelling (`--alert.relabel-config`); those flags are not
//! accepted.

pub mod api;
pub mod config;
pub mod discovery;
pub mod endpoints;
pub mod error;
pub mod manager;
pub mod metrics;
pub mod notifier;
pub mod query;
pub mod rulefmt;
pub mod rules;
pub mod storage;
pub mod store;
pub mod template;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use strata_common::dns::Resolver;
use strata_common::http_server::Prober;
use strata_common::objstore::{Bucket, BucketConfig};
use strata_common::shipper::{LabelsSource, Shipper, ShipperConfig, ShipperMetrics};
use strata_common::shutdown::Shutdown;
use strata_common::telemetry::MetricsRegistry;
use strata_common::{grpc_server, http_server, telemetry};
use strata_tsdb::labels::{Label, Labels};

pub use config::Config;
pub use error::{Error, Result};

use crate::endpoints::{EndpointGroup, FileSdConfig, GroupConfig};
use crate::manager::{Manager, Runtime};
use crate::metrics::{AlertMetrics, HttpClientMetrics, RuleMetrics};
use crate::notifier::Notifier;
use crate::query::QueryClient;
use crate::rulefmt::Defaults;
use crate::storage::LocalTsdb;
use crate::store::RulerStore;

/// The Thanos subcommand word this binary accepts as its optional first argument.
pub const SUBCOMMAND: &str = "rule";
/// The component name in `thanos_status` and logs.
pub const COMPONENT: &str = "rule";
/// How often the TSDB checks for blocks to cut and delete when no rule writes.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(5);

/// A started ruler.
#[derive(Debug, Clone)]
pub struct Started {
    pub http_address: SocketAddr,
    pub grpc_address: SocketAddr,
    pub prober: Prober,
    pub manager: Arc<Manager>,
    pub storage: Arc<LocalTsdb>,
}

fn to_labels(map: &BTreeMap<String, String>) -> Labels {
    Labels::new(
        map.iter()
            .map(|(name, value)| Label::new(name.clone(), value.clone()))
            .collect(),
    )
}

/// The bucket from `--objstore.config[-file]`, or `None` (keep blocks local).
fn bucket(config: &Config, metrics: &MetricsRegistry) -> Result<Option<Bucket>> {
    let inline = config.objstore.config.as_deref();
    let file = config.objstore.config_file.as_deref();
    if inline.is_none_or(|text| text.trim().is_empty()) && file.is_none() {
        return Ok(None);
    }
    let bucket_config =
        BucketConfig::load(inline, file).map_err(|source| Error::ObjstoreConfig {
            source: Box::new(source),
        })?;
    let bucket = metrics
        .with_registry(|registry| Bucket::from_config(&bucket_config, registry).map_err(Box::new))
        .map_err(|source| Error::ObjstoreConfig { source })?;
    Ok(Some(bucket))
}

fn query_groups(config: &Config, metrics: &RuleMetrics) -> Result<Vec<EndpointGroup>> {
    // Queries have no timeout of their own in Thanos's flags; a hung querier must not stall
    // a group forever, so each request gets two minutes (Thanos's default query timeout).
    let timeout = Duration::from_secs(120);
    let resolver = Resolver::system();
    let text = endpoints::read_config_text(
        config.query_config.as_deref(),
        config.query_config_file.as_deref(),
        "read --query.config-file",
    )?;
    let mut groups = Vec::new();
    if let Some(text) = text {
        for group in endpoints::parse_query_config(&text)? {
            groups.push(EndpointGroup::from_config(
                &group,
                timeout,
                config.query_sd_interval,
                config.query_sd_dns_interval,
                &resolver,
                metrics.query_dns.clone(),
            )?);
        }
        return Ok(groups);
    }
    for url in &config.query {
        groups.push(EndpointGroup::from_url(
            url,
            timeout,
            config.query_sd_interval,
            config.query_sd_dns_interval,
            &resolver,
            metrics.query_dns.clone(),
        )?);
    }
    if !config.query_sd_files.is_empty() {
        let group = GroupConfig {
            file_sd_configs: vec![FileSdConfig {
                files: config.query_sd_files.clone(),
                refresh_interval: None,
            }],
            ..Default::default()
        };
        groups.push(EndpointGroup::from_config(
            &group,
            timeout,
            config.query_sd_interval,
            config.query_sd_dns_interval,
            &resolver,
            metrics.query_dns.clone(),
        )?);
    }
    Ok(groups)
}

fn alertmanager_groups(config: &Config, metrics: &RuleMetrics) -> Result<Vec<EndpointGroup>> {
    let resolver = Resolver::system();
    let text = endpoints::read_config_text(
        config.alertmanagers_config.as_deref(),
        config.alertmanagers_config_file.as_deref(),
        "read --alertmanagers.config-file",
    )?;
    let mut groups = Vec::new();
    if let Some(text) = text {
        for group in endpoints::parse_alertmanagers_config(&text)? {
            groups.push(EndpointGroup::from_config(
                &group,
                config.alertmanagers_send_timeout,
                Duration::from_secs(300),
                config.alertmanagers_sd_dns_interval,
                &resolver,
                metrics.alertmanagers_dns.clone(),
            )?);
        }
        return Ok(groups);
    }
    for url in &config.alertmanagers_urls {
        groups.push(EndpointGroup::from_url(
            url,
            config.alertmanagers_send_timeout,
            Duration::from_secs(300),
            config.alertmanagers_sd_dns_interval,
            &resolver,
            metrics.alertmanagers_dns.clone(),
        )?);
    }
    Ok(groups)
}

/// Starts every part of the ruler; returns once all run.
pub async fn start(
    config: &Config,
    registry: &MetricsRegistry,
    shutdown: &Shutdown,
) -> Result<Started> {
    config.validate()?;
    let external_labels = config.external_labels()?;
    let prober = Prober::new(COMPONENT, registry);
    let metrics = RuleMetrics::register(registry);
    let http_clients = HttpClientMetrics::register(registry);
    let query = Arc::new(QueryClient::new(
        query_groups(config, &metrics)?,
        config.query_http_method == "POST",
        HttpClientMetrics::for_client("query", http_clients.clone()),
    ));
    let alertmanagers = alertmanager_groups(config, &metrics)?;
    if alertmanagers.is_empty() {
        tracing::warn!("no alertmanager configured; alerts are evaluated but not sent");
    }
    let notifier = Arc::new(Notifier::new(
        alertmanagers,
        external_labels.clone(),
        config.alert_label_drop.clone(),
        AlertMetrics::register(registry),
        HttpClientMetrics::for_client("alertmanager", http_clients),
    ));
    let bucket = bucket(config, registry)?;
    let data_dir = config.data_dir.clone();
    let (block_duration, retention) = (config.tsdb_block_duration, config.tsdb_retention);
    let storage = Arc::new(
        tokio::task::spawn_blocking(move || LocalTsdb::open(&data_dir, block_duration, retention))
            .await
            .map_err(|err| Error::Config {
                what: "open tsdb",
                reason: err.to_string(),
            })??,
    );
    let runtime = Arc::new(Runtime {
        query,
        storage: Arc::clone(&storage),
        notifier: Arc::clone(&notifier),
        external_labels: external_labels.clone(),
        alert_query_url: config.alert_query_url.trim_end_matches('/').to_owned(),
        alert_query_template: config.alert_query_template.clone(),
        resend_delay: config.resend_delay,
        for_outage_tolerance: config.for_outage_tolerance,
        for_grace_period: config.for_grace_period,
        metrics,
    });
    let manager = Arc::new(Manager::new(
        runtime,
        config.rule_files.clone(),
        Defaults {
            interval: config.eval_interval,
            query_offset: config.rule_query_offset,
        },
        shutdown.child_token(),
    ));
    manager.reload().await?;

    let api_state = Arc::new(api::ApiState {
        manager: Arc::clone(&manager),
        external_labels: external_labels.clone(),
        flags: config.flag_values(),
    });
    let router = http_server::router(registry, &prober, api::routes(api_state));
    let http_address = http_server::start(&config.http, router, shutdown).await?;
    prober.set_healthy();

    let (store_server, info_server) = RulerStore::new(
        Arc::clone(&storage),
        to_labels(&external_labels),
        prober.clone(),
    )
    .into_servers();
    let routes = tonic::service::Routes::new(
        grpc_server::HealthService::new(prober.clone(), &["thanos.Store", "thanos.info.Info"])
            .into_server(),
    )
    .add_service(store_server)
    .add_service(info_server);
    let grpc_address = grpc_server::start(&config.grpc, registry, routes, shutdown).await?;

    shutdown.spawn("notifier", {
        let notifier = Arc::clone(&notifier);
        move |token| notifier.run(token)
    });
    shutdown.spawn("rule-reload-on-sighup", {
        let manager = Arc::clone(&manager);
        move |token| reload_on_sighup(manager, token)
    });
    shutdown.spawn("rule-manager", {
        let manager = Arc::clone(&manager);
        let storage = Arc::clone(&storage);
        move |token| async move {
            let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let storage = Arc::clone(&storage);
                        let now = chrono::Utc::now().timestamp_millis();
                        match tokio::task::spawn_blocking(move || storage.maintain(now)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(err)) => tracing::warn!(error = %strata_common::error::error_chain(&err), "tsdb maintenance failed"),
                            Err(err) => tracing::warn!(error = %err, "tsdb maintenance task failed"),
                        }
                    }
                    () = token.cancelled() => break,
                }
            }
            manager.stop().await;
            let storage = Arc::clone(&storage);
            tokio::task::spawn_blocking(move || storage.close())
                .await
                .map_err(|err| Error::Config { what: "close tsdb", reason: err.to_string() })?
        }
    });
    if let Some(bucket) = bucket {
        let shipper = Shipper::new(
            ShipperConfig {
                tsdb_path: config.data_dir.clone(),
                source: "ruler",
                state_file_name: "thanos.shipper.json".to_owned(),
                upload_compacted: false,
                skip_corrupted: false,
                hash_sha256: config.hash_func == "SHA256",
                upload_concurrency: config.shipper_upload_concurrency,
                allow_out_of_order_uploads: config.shipper_allow_out_of_order_uploads,
                interval: config.shipper_sync_interval,
            },
            bucket,
            LabelsSource::fixed(to_labels(&external_labels)),
            ShipperMetrics::register(registry),
        );
        shutdown.spawn("shipper", move |token| shipper.run(token));
    }
    prober.set_ready();
    tracing::info!(http = %http_address, grpc = %grpc_address, labels = ?external_labels, "rule node ready");
    Ok(Started {
        http_address,
        grpc_address,
        prober,
        manager,
        storage,
    })
}

/// Reloads the rule files on every SIGHUP until cancelled.
async fn reload_on_sighup(
    manager: Arc<Manager>,
    cancel: tokio_util::sync::CancellationToken,
) -> std::result::Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).map_err(|err| Error::Config {
        what: "install SIGHUP handler",
        reason: err.to_string(),
    })?;
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                tracing::info!("caught SIGHUP; reloading rules");
                if let Err(err) = manager.reload().await {
                    tracing::error!(error = %strata_common::error::error_chain(&err), "reloading rules failed; the previous rules keep running");
                }
            }
            () = cancel.cancelled() => return Ok(()),
        }
    }
}

/// Runs the ruler until `shutdown` is cancelled (SIGTERM), then drains.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<()> {
    let metrics = MetricsRegistry::for_process();
    telemetry::load_tracing_config(&config.tracing)?;
    let drain = config
        .http
        .http_grace_period
        .max(config.grpc.grpc_grace_period)
        + Duration::from_secs(5);
    let started = match start(&config, &metrics, &shutdown).await {
        Ok(started) => started,
        Err(err) => {
            shutdown.cancel();
            shutdown.wait(drain).await;
            return Err(err);
        }
    };
    shutdown
        .run_until_cancelled(|| started.prober.set_shutting_down(), drain)
        .await?;
    Ok(())
}
