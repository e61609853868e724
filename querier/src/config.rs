//! The querier's flags: Thanos's `thanos query` flag names and defaults (reference/thanos.md
//! sections 4.1 and 4.2), plus the shared server, client TLS, logging and tracing groups.

use std::path::PathBuf;
use std::time::Duration;

use std::collections::BTreeMap;

use clap::{ArgAction, CommandFactory, Parser};
use strata_common::flags::{
    GrpcClientFlags, GrpcServerFlags, HttpServerFlags, LogFlags, TracingFlags, parse_duration,
};
use strata_tsdb::labels::Labels;

/// Queries the StoreAPI endpoints and serves Prometheus's HTTP API over them.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "strata-querier",
    version,
    override_usage = "strata-querier [query] [OPTIONS]",
    about = "Query node exposing PromQL enabled Query API with data retrieved from multiple store nodes (Thanos-compatible: `strata-querier query ...`)"
)]
pub struct Config {
    #[command(flatten)]
    pub http: HttpServerFlags,
    #[command(flatten)]
    pub grpc: GrpcServerFlags,
    #[command(flatten)]
    pub grpc_client: GrpcClientFlags,
    #[command(flatten)]
    pub log: LogFlags,
    #[command(flatten)]
    pub tracing: TracingFlags,

    /// Addresses of statically configured StoreAPI endpoints (repeatable). The scheme may be
    /// prefixed with 'dns+' or 'dnssrv+' to detect endpoints through DNS.
    #[arg(long = "endpoint", env = "STRATA_ENDPOINT", value_delimiter = ',')]
    pub endpoints: Vec<String>,

    /// Addresses of endpoints that are always used, even if their health check fails (repeatable).
    #[arg(
        long = "endpoint-strict",
        env = "STRATA_ENDPOINT_STRICT",
        value_delimiter = ','
    )]
    pub endpoints_strict: Vec<String>,

    /// DNS names of endpoint groups, resolved and load-balanced by gRPC (repeatable).
    #[arg(
        long = "endpoint-group",
        env = "STRATA_ENDPOINT_GROUP",
        value_delimiter = ','
    )]
    pub endpoint_groups: Vec<String>,

    /// Endpoint groups that are always used, even if their health check fails (repeatable).
    #[arg(
        long = "endpoint-group-strict",
        env = "STRATA_ENDPOINT_GROUP_STRICT",
        value_delimiter = ','
    )]
    pub endpoint_groups_strict: Vec<String>,

    /// Path to a YAML endpoint configuration file.
    #[arg(
        long = "endpoint.sd-config-file",
        env = "STRATA_ENDPOINT_SD_CONFIG_FILE"
    )]
    pub endpoint_sd_config_file: Option<PathBuf>,

    /// Alternative to 'endpoint.sd-config-file': endpoint configuration in YAML.
    #[arg(long = "endpoint.sd-config", env = "STRATA_ENDPOINT_SD_CONFIG")]
    pub endpoint_sd_config: Option<String>,

    /// Interval between endpoint config reloads.
    #[arg(long = "endpoint.sd-config-reload-interval", env = "STRATA_ENDPOINT_SD_CONFIG_RELOAD_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub endpoint_sd_config_reload_interval: Duration,

    /// Deprecated (removed in Thanos v0.38): addresses of StoreAPI servers; same as --endpoint.
    #[arg(long = "store", env = "STRATA_STORE", value_delimiter = ',')]
    pub stores: Vec<String>,

    /// Deprecated: path to files that contain addresses of store API servers (repeatable).
    #[arg(long = "store.sd-files", env = "STRATA_STORE_SD_FILES")]
    pub store_sd_files: Vec<PathBuf>,

    /// Refresh interval to re-read file SD files.
    #[arg(long = "store.sd-interval", env = "STRATA_STORE_SD_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub store_sd_interval: Duration,

    /// Interval between DNS resolutions.
    #[arg(long = "store.sd-dns-interval", env = "STRATA_STORE_SD_DNS_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub store_sd_dns_interval: Duration,

    /// If a Store doesn't send any data in this specified duration then a Store will be
    /// ignored and partial data will be returned if it's enabled (0 disables the timeout).
    #[arg(long = "store.response-timeout", env = "STRATA_STORE_RESPONSE_TIMEOUT", default_value = "0ms", value_parser = parse_duration)]
    pub store_response_timeout: Duration,

    /// Timeout before an unhealthy store is cleaned from the store UI page.
    #[arg(long = "store.unhealthy-timeout", env = "STRATA_STORE_UNHEALTHY_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub store_unhealthy_timeout: Duration,

    /// Maximum time to process query by query node.
    #[arg(long = "query.timeout", env = "STRATA_QUERY_TIMEOUT", default_value = "2m", value_parser = parse_duration)]
    pub query_timeout: Duration,

    /// Maximum number of queries processed concurrently by query node.
    #[arg(
        long = "query.max-concurrent",
        env = "STRATA_QUERY_MAX_CONCURRENT",
        default_value_t = 20
    )]
    pub query_max_concurrent: usize,

    /// Maximum number of select requests made concurrently per a query: the query's selectors
    /// are fetched from the stores ahead of evaluation, at most this many at once (0: each
    /// selector is fetched only when evaluation reaches it).
    #[arg(
        long = "query.max-concurrent-select",
        env = "STRATA_QUERY_MAX_CONCURRENT_SELECT",
        default_value_t = 4
    )]
    pub query_max_concurrent_select: usize,

    /// The maximum lookback duration for retrieving metrics during expression evaluations
    /// (unset: PromQL's default of 5m).
    #[arg(long = "query.lookback-delta", env = "STRATA_QUERY_LOOKBACK_DELTA", value_parser = parse_duration)]
    pub query_lookback_delta: Option<Duration>,

    /// Raise the lookback delta to the resolution of downsampled data a query may read
    /// (1h once max_source_resolution exceeds 5m), so instant selectors still find the
    /// hourly points. Thanos's hidden flag, on by default.
    #[arg(long = "query.dynamic-lookback-delta", env = "STRATA_QUERY_DYNAMIC_LOOKBACK_DELTA", hide = true, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub query_dynamic_lookback_delta: bool,

    /// Labels to treat as a replica indicator along which data is deduplicated (repeatable).
    #[arg(
        long = "query.replica-label",
        env = "STRATA_QUERY_REPLICA_LABEL",
        value_delimiter = ','
    )]
    pub query_replica_labels: Vec<String>,

    /// Deduplication algorithm for merging overlapping series (penalty or chain).
    #[arg(long = "deduplication.func", env = "STRATA_DEDUPLICATION_FUNC", default_value = "penalty", value_parser = ["penalty", "chain"])]
    pub deduplication_func: String,

    /// Enable automatic adjustment (step / 5) to what source of data should be used in store
    /// gateways if no max_source_resolution param is specified.
    #[arg(
        long = "query.auto-downsampling",
        env = "STRATA_QUERY_AUTO_DOWNSAMPLING"
    )]
    pub query_auto_downsampling: bool,

    /// Enable partial response for queries if no partial_response param is specified
    /// (--no-query.partial-response to disable).
    #[arg(long = "query.partial-response", env = "STRATA_QUERY_PARTIAL_RESPONSE", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub query_partial_response: bool,

    /// Disable partial response for queries if no partial_response param is specified.
    #[arg(
        long = "no-query.partial-response",
        overrides_with = "query_partial_response"
    )]
    pub no_query_partial_response: bool,

    /// Default range query step when none is given.
    #[arg(long = "query.default-step", env = "STRATA_QUERY_DEFAULT_STEP", default_value = "1s", value_parser = parse_duration)]
    pub query_default_step: Duration,

    /// Default evaluation interval for sub queries.
    #[arg(long = "query.default-evaluation-interval", env = "STRATA_QUERY_DEFAULT_EVALUATION_INTERVAL", default_value = "1m", value_parser = parse_duration)]
    pub query_default_evaluation_interval: Duration,

    /// PromQL engine to use (Strata has one engine; both names select it).
    #[arg(long = "query.promql-engine", env = "STRATA_QUERY_PROMQL_ENGINE", default_value = "prometheus", value_parser = ["prometheus", "thanos"])]
    pub query_promql_engine: String,

    /// Query selector labels advertised in the Info API (repeatable, name="value").
    #[arg(long = "selector-label", env = "STRATA_SELECTOR_LABEL")]
    pub selector_labels: Vec<String>,

    /// HTTP header to determine tenant. Strata has no tenancy: only the default is accepted.
    #[arg(
        long = "query.tenant-header",
        env = "STRATA_QUERY_TENANT_HEADER",
        default_value = "THANOS-TENANT"
    )]
    pub query_tenant_header: String,

    /// Default tenant ID to use if the tenant header is not present (only the default is
    /// accepted: Strata has no tenancy).
    #[arg(
        long = "query.default-tenant-id",
        env = "STRATA_QUERY_DEFAULT_TENANT_ID",
        default_value = "default-tenant"
    )]
    pub query_default_tenant_id: String,

    /// Prefix for API and UI endpoints (defaults to web.external-prefix); /metrics and the
    /// probes stay at the root.
    #[arg(
        long = "web.route-prefix",
        env = "STRATA_WEB_ROUTE_PREFIX",
        default_value = ""
    )]
    pub web_route_prefix: String,

    /// Static prefix for all HTML links and redirect URLs in the UI query web interface.
    /// Actual endpoints are still served on / or the web.route-prefix, which defaults to it.
    #[arg(
        long = "web.external-prefix",
        env = "STRATA_WEB_EXTERNAL_PREFIX",
        default_value = ""
    )]
    pub web_external_prefix: String,

    /// Name of HTTP request header used for dynamic prefixing of UI links and redirects
    /// (ignored when web.external-prefix is set; only enable it behind a proxy that sets it).
    #[arg(
        long = "web.prefix-header",
        env = "STRATA_WEB_PREFIX_HEADER",
        default_value = ""
    )]
    pub web_prefix_header: String,

    /// Disable CORS headers to be set by the querier.
    #[arg(long = "web.disable-cors", env = "STRATA_WEB_DISABLE_CORS")]
    pub web_disable_cors: bool,

    /// Compression algorithm to use for gRPC requests to other clients (only none: snappy is
    /// refused at start-up).
    #[arg(long = "grpc-compression", env = "STRATA_GRPC_COMPRESSION", default_value = "none", value_parser = ["none", "snappy"])]
    pub grpc_compression: String,

    /// Maximum number of samples a single query can load into memory (Prometheus's
    /// `--query.max-samples`).
    #[arg(
        long = "query.max-samples",
        env = "STRATA_QUERY_MAX_SAMPLES",
        default_value_t = 50_000_000
    )]
    pub query_max_samples: usize,

    /// The command line this config was parsed from, for `/api/v1/status/flags` (set by
    /// `main`; empty means the defaults).
    #[arg(skip)]
    pub raw_args: Vec<std::ffi::OsString>,
}

impl Config {
    /// Refuses values Strata does not implement (a flag is never silently ignored) and flag
    /// pairs Thanos refuses; every error names the flag.
    pub fn validate(&self) -> strata_common::error::Result<()> {
        use strata_common::flags::{refuse_both_forms, refuse_unless_default};
        refuse_unless_default(
            "--query.tenant-header",
            &self.query_tenant_header.as_str(),
            &"THANOS-TENANT",
            "Strata has no tenancy; the stores are not asked per tenant",
        )?;
        refuse_unless_default(
            "--query.default-tenant-id",
            &self.query_default_tenant_id.as_str(),
            &"default-tenant",
            "Strata has no tenancy; the stores are not asked per tenant",
        )?;
        refuse_unless_default(
            "--grpc-compression",
            &self.grpc_compression.as_str(),
            &"none",
            "the gRPC client has no snappy compression",
        )?;
        refuse_both_forms(
            "--endpoint.sd-config",
            self.endpoint_sd_config.is_some(),
            "--endpoint.sd-config-file",
            self.endpoint_sd_config_file.is_some(),
        )?;
        self.selector_labels()?;
        Ok(())
    }

    /// `--selector-label`s as one label set.
    pub fn selector_labels(&self) -> strata_common::error::Result<Labels> {
        let mut pairs = Vec::with_capacity(self.selector_labels.len());
        for flag in &self.selector_labels {
            let pair = strata_common::flags::parse_label_flag(flag).map_err(|reason| {
                strata_common::error::Error::InvalidFlag {
                    flag: "--selector-label",
                    reason,
                }
            })?;
            pairs.push(pair);
        }
        Ok(Labels::from_pairs(pairs))
    }

    /// Whether partial responses are allowed by default, after `--no-query.partial-response`.
    pub fn partial_response_enabled(&self) -> bool {
        self.query_partial_response && !self.no_query_partial_response
    }

    /// All statically configured endpoints: `--endpoint`, `--endpoint-strict` and the
    /// deprecated `--store`.
    pub fn static_endpoints(&self) -> Vec<String> {
        let mut endpoints: Vec<String> = self
            .endpoints
            .iter()
            .chain(&self.endpoints_strict)
            .chain(&self.stores)
            .cloned()
            .collect();
        endpoints.sort();
        endpoints.dedup();
        endpoints
    }

    /// Every flag (long name without `--`) and its effective value, as
    /// `/api/v1/status/flags` shows them. Repeated flags are joined with commas.
    pub fn flag_values(&self) -> BTreeMap<String, String> {
        let command = Config::command();
        let args: Vec<std::ffi::OsString> = if self.raw_args.is_empty() {
            vec!["strata-querier".into()]
        } else {
            self.raw_args.clone()
        };
        let matches = command.clone().try_get_matches_from(args).ok();
        let mut flags = BTreeMap::new();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "help" || long == "version" {
                continue;
            }
            let value = matches
                .as_ref()
                .and_then(|matches| matches.try_get_raw(arg.get_id().as_str()).ok().flatten())
                .map(|values| {
                    values
                        .map(|value| value.to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            // Inline configs may hold credentials: shown as `<secret>` when set.
            let value = strata_common::secret::redact_flag_value(long, value);
            flags.insert(long.to_owned(), value);
        }
        flags
    }
}
