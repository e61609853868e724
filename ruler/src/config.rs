//! The ruler's flags: Thanos's `thanos rule` flag names and defaults
//! (reference/thanos-ruler-deploy.md section 1.1), plus the shared HTTP and gRPC server,
//! logging, tracing and objstore groups. Flags Strata does not implement are not accepted, and
//! those accepted either work or refuse to start with a non-default value.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use strata_common::flags::{
    GrpcServerFlags, HttpServerFlags, LogFlags, ObjstoreFlags, TracingFlags, parse_duration,
};

use crate::error::{Error, Result};

/// Evaluates recording and alerting rules against the querier and sends alerts.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "strata-ruler",
    version,
    override_usage = "strata-ruler [rule] [OPTIONS]",
    about = "Evaluates Prometheus recording and alerting rules against a querier (Thanos-compatible: `strata-ruler rule ...`)"
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

    /// Data directory.
    #[arg(long = "data-dir", env = "STRATA_DATA_DIR", default_value = "data/")]
    pub data_dir: PathBuf,

    /// Rule files that should be used by rule manager. Can be in glob format (repeated).
    #[arg(long = "rule-file", env = "STRATA_RULE_FILE", default_value = "rules/")]
    pub rule_files: Vec<String>,

    /// The default evaluation interval to use.
    #[arg(long = "eval-interval", env = "STRATA_EVAL_INTERVAL", default_value = "1m", value_parser = parse_duration)]
    pub eval_interval: Duration,

    /// The default rule group query_offset duration to use.
    #[arg(long = "rule-query-offset", env = "STRATA_RULE_QUERY_OFFSET", default_value = "0s", value_parser = parse_duration)]
    pub rule_query_offset: Duration,

    /// How many rules can be evaluated concurrently inside a group. Only 1 (sequential, in
    /// file order) is supported.
    #[arg(
        long = "rule-concurrent-evaluation",
        env = "STRATA_RULE_CONCURRENT_EVALUATION",
        default_value_t = 1
    )]
    pub rule_concurrent_evaluation: u64,

    /// Minimum amount of time to wait before resending an alert to Alertmanager.
    #[arg(long = "resend-delay", env = "STRATA_RESEND_DELAY", default_value = "1m", value_parser = parse_duration)]
    pub resend_delay: Duration,

    /// Max time to tolerate the ruler being down (or its queries failing) and still restore
    /// or keep the 'for' state of alerts.
    #[arg(long = "for-outage-tolerance", env = "STRATA_FOR_OUTAGE_TOLERANCE", default_value = "1h", value_parser = parse_duration)]
    pub for_outage_tolerance: Duration,

    /// Minimum duration between alert and restored 'for' state. This is maintained only for
    /// alerts with configured 'for' time greater than grace period.
    #[arg(long = "for-grace-period", env = "STRATA_FOR_GRACE_PERIOD", default_value = "10m", value_parser = parse_duration)]
    pub for_grace_period: Duration,

    /// Labels to be applied to all generated metrics (repeated), `name="value"`. Similar to
    /// external labels for Prometheus, used to identify the ruler and its blocks.
    #[arg(long = "label", env = "STRATA_LABEL")]
    pub labels: Vec<String>,

    /// Block duration for TSDB block.
    #[arg(long = "tsdb.block-duration", env = "STRATA_TSDB_BLOCK_DURATION", default_value = "2h", value_parser = parse_duration)]
    pub tsdb_block_duration: Duration,

    /// Block retention time on local disk.
    #[arg(long = "tsdb.retention", env = "STRATA_TSDB_RETENTION", default_value = "48h", value_parser = parse_duration)]
    pub tsdb_retention: Duration,

    /// Addresses of statically configured query API servers (repeatable). The scheme may be
    /// prefixed with 'dns+' or 'dnssrv+' to detect query API servers through DNS lookups.
    #[arg(long = "query", env = "STRATA_QUERY")]
    pub query: Vec<String>,

    /// Path to YAML file that contains query API servers configuration.
    #[arg(long = "query.config-file", env = "STRATA_QUERY_CONFIG_FILE")]
    pub query_config_file: Option<PathBuf>,

    /// Alternative to 'query.config-file' flag: query API servers configuration in YAML.
    #[arg(long = "query.config", env = "STRATA_QUERY_CONFIG")]
    pub query_config: Option<String>,

    /// Path to file that contains addresses of query API servers (repeatable; file SD format).
    #[arg(long = "query.sd-files", env = "STRATA_QUERY_SD_FILES")]
    pub query_sd_files: Vec<PathBuf>,

    /// Refresh interval to re-read file SD files.
    #[arg(long = "query.sd-interval", env = "STRATA_QUERY_SD_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub query_sd_interval: Duration,

    /// Interval between DNS resolutions.
    #[arg(long = "query.sd-dns-interval", env = "STRATA_QUERY_SD_DNS_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub query_sd_dns_interval: Duration,

    /// HTTP method to use when sending queries (GET or POST).
    #[arg(long = "query.http-method", env = "STRATA_QUERY_HTTP_METHOD", default_value = "POST", value_parser = ["GET", "POST"])]
    pub query_http_method: String,

    /// Alertmanager replica URLs to push firing alerts (repeatable). The scheme may be
    /// prefixed with 'dns+' or 'dnssrv+' to detect Alertmanager IPs through DNS lookups.
    #[arg(long = "alertmanagers.url", env = "STRATA_ALERTMANAGERS_URL")]
    pub alertmanagers_urls: Vec<String>,

    /// Path to YAML file that contains alerting configuration.
    #[arg(
        long = "alertmanagers.config-file",
        env = "STRATA_ALERTMANAGERS_CONFIG_FILE"
    )]
    pub alertmanagers_config_file: Option<PathBuf>,

    /// Alternative to 'alertmanagers.config-file' flag: alerting configuration in YAML.
    #[arg(long = "alertmanagers.config", env = "STRATA_ALERTMANAGERS_CONFIG")]
    pub alertmanagers_config: Option<String>,

    /// Timeout for sending alerts to Alertmanager.
    #[arg(long = "alertmanagers.send-timeout", env = "STRATA_ALERTMANAGERS_SEND_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub alertmanagers_send_timeout: Duration,

    /// Interval between DNS resolutions of Alertmanager hosts.
    #[arg(long = "alertmanagers.sd-dns-interval", env = "STRATA_ALERTMANAGERS_SD_DNS_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub alertmanagers_sd_dns_interval: Duration,

    /// The external Thanos Query URL that would be set in all alerts 'Source' field.
    #[arg(
        long = "alert.query-url",
        env = "STRATA_ALERT_QUERY_URL",
        default_value = ""
    )]
    pub alert_query_url: String,

    /// Template to use in alerts source field. Need only include {{.Expr}} parameter.
    #[arg(
        long = "alert.query-template",
        env = "STRATA_ALERT_QUERY_TEMPLATE",
        default_value = "/graph?g0.expr={{.Expr}}&g0.tab=1"
    )]
    pub alert_query_template: String,

    /// Labels by name to drop before sending to alertmanager (repeated). This allows alert to
    /// be deduplicated on replica label.
    #[arg(long = "alert.label-drop", env = "STRATA_ALERT_LABEL_DROP")]
    pub alert_label_drop: Vec<String>,

    /// If true, the shipper uploads later blocks even when an older one keeps failing.
    #[arg(
        long = "shipper.allow-out-of-order-uploads",
        env = "STRATA_SHIPPER_ALLOW_OUT_OF_ORDER_UPLOADS",
        hide = true
    )]
    pub shipper_allow_out_of_order_uploads: bool,

    /// Number of block files uploaded at once (0 = one at a time).
    #[arg(
        long = "shipper.upload-concurrency",
        env = "STRATA_SHIPPER_UPLOAD_CONCURRENCY",
        default_value_t = 0
    )]
    pub shipper_upload_concurrency: usize,

    /// Hash function for the files of produced blocks ("" or SHA256).
    #[arg(long = "hash-func", env = "STRATA_HASH_FUNC", default_value = "", value_parser = ["", "SHA256"])]
    pub hash_func: String,

    /// Hidden, Strata only: how often the shipper looks for new blocks (Thanos: fixed 30s).
    #[arg(long = "shipper.sync-interval", env = "STRATA_SHIPPER_SYNC_INTERVAL", default_value = "30s", value_parser = parse_duration, hide = true)]
    pub shipper_sync_interval: Duration,
}

impl Config {
    /// The `--label` flags as a label set; `name="value"` with a Go-quoted value.
    pub fn external_labels(&self) -> Result<BTreeMap<String, String>> {
        let mut labels = BTreeMap::new();
        for flag in &self.labels {
            let (name, value) = parse_label_flag(flag).map_err(|reason| Error::InvalidFlag {
                flag: "label",
                reason,
            })?;
            if labels.insert(name.clone(), value).is_some() {
                return Err(Error::InvalidFlag {
                    flag: "label",
                    reason: format!("label {name} is set twice"),
                });
            }
        }
        Ok(labels)
    }

    /// Checks the flag combinations Thanos checks, and refuses what Strata does not do.
    pub fn validate(&self) -> Result<()> {
        if self.rule_concurrent_evaluation != 1 {
            return Err(Error::InvalidFlag {
                flag: "rule-concurrent-evaluation",
                reason: "only sequential evaluation (1) is supported".to_owned(),
            });
        }
        let query_config = self.query_config.is_some() || self.query_config_file.is_some();
        if query_config && (!self.query.is_empty() || !self.query_sd_files.is_empty()) {
            return Err(Error::InvalidFlag {
                flag: "query.config",
                reason: "--query/--query.sd-files and --query.config* parameters cannot be defined at the same time".to_owned(),
            });
        }
        if self.query_config.is_some() && self.query_config_file.is_some() {
            return Err(Error::InvalidFlag {
                flag: "query.config",
                reason: "--query.config and --query.config-file cannot both be set".to_owned(),
            });
        }
        if !query_config && self.query.is_empty() && self.query_sd_files.is_empty() {
            return Err(Error::InvalidFlag {
                flag: "query",
                reason: "no --query parameter was given".to_owned(),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for address in &self.query {
            if !seen.insert(address) {
                return Err(Error::InvalidFlag {
                    flag: "query",
                    reason: format!("address {address} is duplicated for --query flag"),
                });
            }
        }
        if self.alertmanagers_config.is_some() && self.alertmanagers_config_file.is_some() {
            return Err(Error::InvalidFlag {
                flag: "alertmanagers.config",
                reason: "both --alertmanagers.config and --alertmanagers.config-file are set; give one of them".to_owned(),
            });
        }
        let am_config =
            self.alertmanagers_config.is_some() || self.alertmanagers_config_file.is_some();
        if am_config && !self.alertmanagers_urls.is_empty() {
            return Err(Error::InvalidFlag {
                flag: "alertmanagers.config",
                reason: "--alertmanagers.url and --alertmanagers.config* parameters cannot be defined at the same time".to_owned(),
            });
        }
        if self.tsdb_block_duration.is_zero() {
            return Err(Error::InvalidFlag {
                flag: "tsdb.block-duration",
                reason: "must be above zero".to_owned(),
            });
        }
        if self.eval_interval.is_zero() {
            return Err(Error::InvalidFlag {
                flag: "eval-interval",
                reason: "must be above zero".to_owned(),
            });
        }
        self.external_labels()?;
        Ok(())
    }

    /// Flag values for `/api/v1/status/flags`.
    pub fn flag_values(&self) -> BTreeMap<String, String> {
        let mut flags = BTreeMap::new();
        let mut set = |name: &str, value: String| {
            flags.insert(name.to_owned(), value);
        };
        set("http-address", self.http.http_address.clone());
        set("grpc-address", self.grpc.grpc_address.clone());
        set("data-dir", self.data_dir.display().to_string());
        set("rule-file", self.rule_files.join(","));
        set("eval-interval", humantime(self.eval_interval));
        set("resend-delay", humantime(self.resend_delay));
        set("for-outage-tolerance", humantime(self.for_outage_tolerance));
        set("for-grace-period", humantime(self.for_grace_period));
        set("label", self.labels.join(","));
        set("query", self.query.join(","));
        set("alertmanagers.url", self.alertmanagers_urls.join(","));
        set("alert.label-drop", self.alert_label_drop.join(","));
        set("alert.query-url", self.alert_query_url.clone());
        set("tsdb.block-duration", humantime(self.tsdb_block_duration));
        set("tsdb.retention", humantime(self.tsdb_retention));
        flags
    }
}

fn humantime(duration: Duration) -> String {
    humantime_like(duration)
}

/// A duration written as Go writes `model.Duration` (`1m`, `1h30m`, `10s`).
pub fn humantime_like(duration: Duration) -> String {
    let mut ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("y", 365 * 86_400_000u128),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

pub use strata_common::flags::parse_label_flag;
