//! The sidecar's flags: Thanos's `thanos sidecar` flag names and defaults
//! (reference/thanos.md section 3.4), plus the shared server, logging, tracing and objstore
//! groups from `strata_common::flags`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use strata_common::flags::{
    GrpcServerFlags, HttpServerFlags, LogFlags, ObjstoreFlags, TimeOrDuration, TracingFlags,
    parse_duration,
};

/// Serves a Prometheus server's data over the StoreAPI and ships its blocks to object storage.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "strata-sidecar",
    version,
    override_usage = "strata-sidecar [sidecar] [OPTIONS]",
    about = "Sidecar for Prometheus server (Thanos-compatible: `strata-sidecar sidecar ...`)"
)]
pub struct Config {
    #[command(flatten)]
    pub http: HttpServerFlags,
    #[command(flatten)]
    pub grpc: GrpcServerFlags,
    #[command(flatten)]
    pub log: LogFlags,
    #[command(flatten)]
    pub tracing: TracingFlags,
    #[command(flatten)]
    pub objstore: ObjstoreFlags,

    /// URL at which to reach Prometheus's API.
    #[arg(
        long = "prometheus.url",
        env = "STRATA_PROMETHEUS_URL",
        default_value = "http://localhost:9090"
    )]
    pub prometheus_url: String,

    /// Maximum time to wait for the Prometheus instance to start up.
    #[arg(long = "prometheus.ready_timeout", env = "STRATA_PROMETHEUS_READY_TIMEOUT", default_value = "10m", value_parser = parse_duration)]
    pub prometheus_ready_timeout: Duration,

    /// How often to get Prometheus config.
    #[arg(long = "prometheus.get_config_interval", env = "STRATA_PROMETHEUS_GET_CONFIG_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub prometheus_get_config_interval: Duration,

    /// Timeout for getting Prometheus config.
    #[arg(long = "prometheus.get_config_timeout", env = "STRATA_PROMETHEUS_GET_CONFIG_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub prometheus_get_config_timeout: Duration,

    /// Not a flag (Thanos has none): the longest silence of Prometheus within a remote-read
    /// answer, [`crate::prometheus::REMOTE_READ_IDLE_TIMEOUT`]; tests shorten it.
    #[arg(skip = crate::prometheus::REMOTE_READ_IDLE_TIMEOUT)]
    pub remote_read_idle_timeout: Duration,

    /// Path to YAML file with HTTP client configuration for talking to Prometheus.
    #[arg(
        long = "prometheus.http-client-file",
        env = "STRATA_PROMETHEUS_HTTP_CLIENT_FILE"
    )]
    pub prometheus_http_client_file: Option<PathBuf>,

    /// Alternative to 'prometheus.http-client-file' flag: HTTP client configuration in YAML.
    #[arg(long = "prometheus.http-client", env = "STRATA_PROMETHEUS_HTTP_CLIENT")]
    pub prometheus_http_client: Option<String>,

    /// Data directory of TSDB.
    #[arg(long = "tsdb.path", env = "STRATA_TSDB_PATH", default_value = "./data")]
    pub tsdb_path: PathBuf,

    /// If true shipper will try to upload compacted blocks as well.
    #[arg(
        long = "shipper.upload-compacted",
        env = "STRATA_SHIPPER_UPLOAD_COMPACTED"
    )]
    pub shipper_upload_compacted: bool,

    /// The shipper metadata file name.
    #[arg(
        long = "shipper.meta-file-name",
        env = "STRATA_SHIPPER_META_FILE_NAME",
        default_value = "thanos.shipper.json"
    )]
    pub shipper_meta_file_name: String,

    /// Number of goroutines to use when uploading block files (0 = one at a time).
    #[arg(
        long = "shipper.upload-concurrency",
        env = "STRATA_SHIPPER_UPLOAD_CONCURRENCY",
        default_value_t = 0
    )]
    pub shipper_upload_concurrency: usize,

    /// Specify which hash function to use when calculating the hashes of produced files
    /// ("" or SHA256).
    #[arg(long = "hash-func", env = "STRATA_HASH_FUNC", default_value = "", value_parser = ["", "SHA256"])]
    pub hash_func: String,

    /// Start of time range limit to serve: RFC3339 or a duration relative to now (e.g. -2h).
    #[arg(
        long = "min-time",
        env = "STRATA_MIN_TIME",
        default_value = "0000-01-01T00:00:00Z"
    )]
    pub min_time: TimeOrDuration,

    /// Config file watched by the reloader: re-read every watch interval; a change reloads
    /// Prometheus.
    #[arg(long = "reloader.config-file", env = "STRATA_RELOADER_CONFIG_FILE")]
    pub reloader_config_file: Option<PathBuf>,

    /// Output file for environment variable substituted config file: the config file with
    /// every $(VAR) replaced by the variable's value (unset variables are an error), written
    /// atomically. Requires --reloader.config-file; gzip-compressed input is refused.
    #[arg(
        long = "reloader.config-envsubst-file",
        env = "STRATA_RELOADER_CONFIG_ENVSUBST_FILE"
    )]
    pub reloader_config_envsubst_file: Option<PathBuf>,

    /// Rule directories for the reloader to refresh (repeated field): a change of any file in
    /// them (symlinks followed) reloads Prometheus.
    #[arg(long = "reloader.rule-dir", env = "STRATA_RELOADER_RULE_DIR")]
    pub reloader_rule_dirs: Vec<PathBuf>,

    /// Controls how often reloader re-reads config and rules (must be positive).
    #[arg(long = "reloader.watch-interval", env = "STRATA_RELOADER_WATCH_INTERVAL", default_value = "3m", value_parser = parse_duration)]
    pub reloader_watch_interval: Duration,

    /// Controls how often reloader retries config reload in case of error (within one watch
    /// interval; must be positive).
    #[arg(long = "reloader.retry-interval", env = "STRATA_RELOADER_RETRY_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub reloader_retry_interval: Duration,

    /// Method used to reload the configuration: http (POST <prometheus.url>/-/reload, needs
    /// Prometheus's --web.enable-lifecycle) or signal (SIGHUP to the process named
    /// --reloader.process-name, in a shared PID namespace).
    #[arg(long = "reloader.method", env = "STRATA_RELOADER_METHOD", default_value = "http", value_parser = ["http", "signal"])]
    pub reloader_method: String,

    /// Executable name used to match the process being reloaded when using the signal method.
    #[arg(
        long = "reloader.process-name",
        env = "STRATA_RELOADER_PROCESS_NAME",
        default_value = "prometheus"
    )]
    pub reloader_process_name: String,

    /// The maximum series allowed for a single Series request (0 = no limit).
    #[arg(
        long = "store.limits.request-series",
        env = "STRATA_STORE_LIMITS_REQUEST_SERIES",
        default_value_t = 0
    )]
    pub store_limits_request_series: u64,

    /// The maximum samples allowed for a single Series request (0 = no limit).
    #[arg(
        long = "store.limits.request-samples",
        env = "STRATA_STORE_LIMITS_REQUEST_SAMPLES",
        default_value_t = 0
    )]
    pub store_limits_request_samples: u64,

    /// Hidden (as in Thanos): ship even when Prometheus's min and max block durations differ.
    #[arg(
        long = "shipper.ignore-unequal-block-size",
        env = "STRATA_SHIPPER_IGNORE_UNEQUAL_BLOCK_SIZE",
        hide = true
    )]
    pub shipper_ignore_unequal_block_size: bool,

    /// Hidden (as in Thanos): a block that fails to upload does not stop the newer ones from
    /// going up (it is retried at every sync); compacted blocks skip the overlap check.
    #[arg(
        long = "shipper.allow-out-of-order-uploads",
        env = "STRATA_SHIPPER_ALLOW_OUT_OF_ORDER_UPLOADS",
        hide = true
    )]
    pub shipper_allow_out_of_order_uploads: bool,

    /// Hidden (as in Thanos); accepted for manifest compatibility. Corrupted blocks are
    /// counted in thanos_shipper_corrupted_blocks_total and retried, never uploaded.
    #[arg(
        long = "shipper.skip-corrupted-blocks",
        env = "STRATA_SHIPPER_SKIP_CORRUPTED_BLOCKS",
        hide = true
    )]
    pub shipper_skip_corrupted_blocks: bool,

    /// Hidden, Strata only: how often the shipper looks for new blocks (Thanos: fixed 30s).
    #[arg(long = "shipper.sync-interval", env = "STRATA_SHIPPER_SYNC_INTERVAL", default_value = "30s", value_parser = parse_duration, hide = true)]
    pub shipper_sync_interval: Duration,
}
