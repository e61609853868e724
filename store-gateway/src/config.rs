//! The store gateway's flags: Thanos's `thanos store` flag names and defaults
//! (reference/thanos.md section 5), plus the shared server, logging, tracing and objstore groups.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};
use strata_common::flags::{
    GrpcServerFlags, HttpServerFlags, LogFlags, ObjstoreFlags, TimeOrDuration, TracingFlags,
    parse_bytes, parse_duration,
};

/// Serves the blocks of an object-storage bucket over the StoreAPI.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "strata-store-gateway",
    version,
    override_usage = "strata-store-gateway [store] [OPTIONS]",
    about = "Store node giving access to blocks in a bucket provider (Thanos-compatible: `strata-store-gateway store ...`)"
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

    /// Local data directory used for caching purposes (index-header, in-mem cache items and
    /// meta.jsons).
    #[arg(long = "data-dir", env = "STRATA_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Maximum size of items held in the in-memory index cache (e.g. 250MB).
    #[arg(long = "index-cache-size", env = "STRATA_INDEX_CACHE_SIZE", default_value = "250MB", value_parser = parse_bytes)]
    pub index_cache_size: u64,

    /// Path to a YAML file that contains index cache configuration.
    #[arg(
        long = "index-cache.config-file",
        env = "STRATA_INDEX_CACHE_CONFIG_FILE"
    )]
    pub index_cache_config_file: Option<PathBuf>,

    /// Alternative to 'index-cache.config-file': index cache configuration in YAML.
    #[arg(long = "index-cache.config", env = "STRATA_INDEX_CACHE_CONFIG")]
    pub index_cache_config: Option<String>,

    /// Maximum size of concurrently allocatable bytes reserved strictly to reuse for chunks in
    /// memory (e.g. 2GB).
    #[arg(long = "chunk-pool-size", env = "STRATA_CHUNK_POOL_SIZE", default_value = "2GB", value_parser = parse_bytes)]
    pub chunk_pool_size: u64,

    /// Repeat interval for syncing the blocks between local and remote view.
    #[arg(long = "sync-block-duration", env = "STRATA_SYNC_BLOCK_DURATION", default_value = "3m", value_parser = parse_duration)]
    pub sync_block_duration: Duration,

    /// Number of goroutines to use when constructing index-cache.json blocks from object
    /// storage.
    #[arg(
        long = "block-sync-concurrency",
        env = "STRATA_BLOCK_SYNC_CONCURRENCY",
        default_value_t = 20
    )]
    pub block_sync_concurrency: usize,

    /// Number of goroutines to use when fetching block metadata from object storage.
    #[arg(
        long = "block-meta-fetch-concurrency",
        env = "STRATA_BLOCK_META_FETCH_CONCURRENCY",
        default_value_t = 32
    )]
    pub block_meta_fetch_concurrency: usize,

    /// How blocks are discovered in the bucket (concurrent or recursive); both find the same
    /// blocks, listed from the bucket's top level.
    #[arg(long = "block-discovery-strategy", env = "STRATA_BLOCK_DISCOVERY_STRATEGY", default_value = "concurrent", value_parser = ["concurrent", "recursive"])]
    pub block_discovery_strategy: String,

    /// Start of time range limit to serve: RFC3339 or a duration relative to now (e.g. -2h).
    #[arg(
        long = "min-time",
        env = "STRATA_MIN_TIME",
        default_value = "0000-01-01T00:00:00Z"
    )]
    pub min_time: TimeOrDuration,

    /// End of time range limit to serve: RFC3339 or a duration relative to now.
    #[arg(
        long = "max-time",
        env = "STRATA_MAX_TIME",
        default_value = "9999-12-31T23:59:59Z"
    )]
    pub max_time: TimeOrDuration,

    /// Minimum age of all blocks before they are being read (compactor-made blocks are exempt).
    #[arg(long = "consistency-delay", env = "STRATA_CONSISTENCY_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub consistency_delay: Duration,

    /// Duration after which blocks marked for deletion are filtered out while fetching blocks.
    #[arg(long = "ignore-deletion-marks-delay", env = "STRATA_IGNORE_DELETION_MARKS_DELAY", default_value = "24h", value_parser = parse_duration)]
    pub ignore_deletion_marks_delay: Duration,

    /// Maximum number of concurrent Series calls.
    #[arg(
        long = "store.grpc.series-max-concurrency",
        env = "STRATA_STORE_GRPC_SERIES_MAX_CONCURRENCY",
        default_value_t = 20
    )]
    pub series_max_concurrency: usize,

    /// Maximum amount of samples returned via a single Series call (0 = no limit).
    #[arg(
        long = "store.grpc.series-sample-limit",
        env = "STRATA_STORE_GRPC_SERIES_SAMPLE_LIMIT",
        default_value_t = 0
    )]
    pub series_sample_limit: u64,

    /// Maximum amount of touched series returned via a single Series call (0 = no limit).
    #[arg(
        long = "store.grpc.touched-series-limit",
        env = "STRATA_STORE_GRPC_TOUCHED_SERIES_LIMIT",
        default_value_t = 0
    )]
    pub touched_series_limit: u64,

    /// The maximum series allowed for a single Series request (0 = no limit).
    #[arg(
        long = "store.limits.request-series",
        env = "STRATA_STORE_LIMITS_REQUEST_SERIES",
        default_value_t = 0
    )]
    pub request_series_limit: u64,

    /// The maximum samples allowed for a single Series request (0 = no limit).
    #[arg(
        long = "store.limits.request-samples",
        env = "STRATA_STORE_LIMITS_REQUEST_SAMPLES",
        default_value_t = 0
    )]
    pub request_samples_limit: u64,

    /// Maximum amount of downloaded (chunk) bytes for a single Series call (0 = no limit).
    #[arg(long = "store.grpc.downloaded-bytes-limit", env = "STRATA_STORE_GRPC_DOWNLOADED_BYTES_LIMIT", default_value = "0", value_parser = parse_bytes)]
    pub downloaded_bytes_limit: u64,

    /// Cache built index-headers on local disk (--no-cache-index-header to disable).
    #[arg(long = "cache-index-header", env = "STRATA_CACHE_INDEX_HEADER", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub cache_index_header: bool,

    /// Do not cache index-headers on local disk.
    #[arg(long = "no-cache-index-header", overrides_with = "cache_index_header")]
    pub no_cache_index_header: bool,

    /// Load index-headers lazily, on first use, and unload them after the idle timeout
    /// (without it, a block's index-header is loaded with the block and kept, as in Thanos).
    #[arg(
        long = "store.enable-index-header-lazy-reader",
        env = "STRATA_STORE_ENABLE_INDEX_HEADER_LAZY_READER"
    )]
    pub enable_index_header_lazy_reader: bool,

    /// With the lazy reader, unload an in-memory index-header after it has not been used for
    /// this long (0: never).
    #[arg(
        long = "store.index-header-lazy-reader-idle-timeout",
        env = "STRATA_STORE_INDEX_HEADER_LAZY_READER_IDLE_TIMEOUT",
        default_value = "5m",
        value_parser = parse_duration,
        hide = true
    )]
    pub index_header_idle_timeout: Duration,

    /// Path to YAML file with relabeling configuration that allows selecting blocks.
    #[arg(
        long = "selector.relabel-config-file",
        env = "STRATA_SELECTOR_RELABEL_CONFIG_FILE"
    )]
    pub selector_relabel_config_file: Option<PathBuf>,

    /// Alternative to 'selector.relabel-config-file': relabeling configuration in YAML.
    #[arg(
        long = "selector.relabel-config",
        env = "STRATA_SELECTOR_RELABEL_CONFIG"
    )]
    pub selector_relabel_config: Option<String>,
}

impl Config {
    /// The index cache: `--index-cache.config(-file)` when given (only IN-MEMORY; other types
    /// fail start-up), else an in-memory cache of `--index-cache-size`.
    pub fn index_cache(
        &self,
    ) -> Result<crate::index_cache_config::IndexCacheConfig, strata_common::error::Error> {
        strata_common::flags::refuse_both_forms(
            "--index-cache.config",
            self.index_cache_config.is_some(),
            "--index-cache.config-file",
            self.index_cache_config_file.is_some(),
        )?;
        let text = match (&self.index_cache_config, &self.index_cache_config_file) {
            (Some(text), _) => text.clone(),
            (None, Some(path)) => std::fs::read_to_string(path).map_err(|err| {
                strata_common::error::Error::InvalidFlag {
                    flag: "--index-cache.config-file",
                    reason: format!("read {}: {err}", path.display()),
                }
            })?,
            (None, None) => {
                return Ok(crate::index_cache_config::IndexCacheConfig {
                    max_size: self.index_cache_size,
                    max_item_size: u64::MAX,
                    enabled_items: Vec::new(),
                });
            }
        };
        crate::index_cache_config::parse(&text, self.index_cache_size)
    }

    /// Whether index-headers are kept on disk, after `--no-cache-index-header`.
    pub fn cache_index_header_enabled(&self) -> bool {
        self.cache_index_header && !self.no_cache_index_header
    }
}
