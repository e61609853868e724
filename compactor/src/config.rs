//! The compactor's flags: Thanos's `thanos compact` flag names and defaults
//! (reference/thanos.md section 6), plus the shared HTTP server, logging, tracing and objstore
//! groups. The compactor has no gRPC server.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use strata_common::flags::{
    HttpServerFlags, LogFlags, ObjstoreFlags, TimeOrDuration, TracingFlags, parse_bytes,
    parse_duration,
};
use strata_tsdb::dedup::DedupFunc;

/// Compacts, downsamples and applies retention to the blocks of a bucket.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "strata-compactor",
    version,
    override_usage = "strata-compactor [compact] [OPTIONS]",
    about = "Continuously compacts blocks in an object store bucket (Thanos-compatible: `strata-compactor compact ...`)"
)]
pub struct Config {
    #[command(flatten)]
    pub http: HttpServerFlags,
    #[command(flatten)]
    pub log: LogFlags,
    #[command(flatten)]
    pub tracing: TracingFlags,
    #[command(flatten)]
    pub objstore: ObjstoreFlags,

    /// Data directory in which to cache blocks and process compactions.
    #[arg(long = "data-dir", env = "STRATA_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Do not exit after all compactions have been processed and wait for new work.
    #[arg(short = 'w', long = "wait", env = "STRATA_WAIT")]
    pub wait: bool,

    /// Wait interval between consecutive compaction runs and bucket refreshes. Only works
    /// when --wait flag specified.
    #[arg(long = "wait-interval", env = "STRATA_WAIT_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub wait_interval: Duration,

    /// How long to retain raw samples in bucket (0d = forever).
    #[arg(long = "retention.resolution-raw", env = "STRATA_RETENTION_RESOLUTION_RAW", default_value = "0d", value_parser = parse_duration)]
    pub retention_resolution_raw: Duration,

    /// How long to retain samples of resolution 1 (5 minutes) in bucket (0d = forever).
    #[arg(long = "retention.resolution-5m", env = "STRATA_RETENTION_RESOLUTION_5M", default_value = "0d", value_parser = parse_duration)]
    pub retention_resolution_5m: Duration,

    /// How long to retain samples of resolution 2 (1 hour) in bucket (0d = forever).
    #[arg(long = "retention.resolution-1h", env = "STRATA_RETENTION_RESOLUTION_1H", default_value = "0d", value_parser = parse_duration)]
    pub retention_resolution_1h: Duration,

    /// Time before a block marked for deletion is deleted from bucket (0 = immediately).
    #[arg(long = "delete-delay", env = "STRATA_DELETE_DELAY", default_value = "48h", value_parser = parse_duration)]
    pub delete_delay: Duration,

    /// Minimum age of fresh (non-compacted) blocks before they are being processed.
    #[arg(long = "consistency-delay", env = "STRATA_CONSISTENCY_DELAY", default_value = "30m", value_parser = parse_duration)]
    pub consistency_delay: Duration,

    /// Disables downsampling. Not recommended: querying long time ranges without
    /// non-downsampled data is not efficient.
    #[arg(long = "downsampling.disable", env = "STRATA_DOWNSAMPLING_DISABLE")]
    pub downsampling_disable: bool,

    /// Number of goroutines to use when compacting groups.
    #[arg(
        long = "compact.concurrency",
        env = "STRATA_COMPACT_CONCURRENCY",
        default_value_t = 1
    )]
    pub compact_concurrency: usize,

    /// Number of goroutines to use when download block during compaction.
    #[arg(
        long = "compact.blocks-fetch-concurrency",
        env = "STRATA_COMPACT_BLOCKS_FETCH_CONCURRENCY",
        default_value_t = 1
    )]
    pub compact_blocks_fetch_concurrency: usize,

    /// How often we should clean up partially uploaded blocks and blocks with deletion mark.
    #[arg(long = "compact.cleanup-interval", env = "STRATA_COMPACT_CLEANUP_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub compact_cleanup_interval: Duration,

    /// Frequency of calculating the compaction, downsampling and retention progress
    /// (`thanos_compact_todo_*`) in the background when --wait is set. 0s disables it.
    #[arg(long = "compact.progress-interval", env = "STRATA_COMPACT_PROGRESS_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub compact_progress_interval: Duration,

    /// Allow overlapping blocks of a group to be merged (irreversible vertical compaction,
    /// samples merged by --deduplication.func). Without it, overlapping blocks halt the
    /// compactor, as in Thanos. Always on when --deduplication.replica-label is set.
    #[arg(
        long = "compact.enable-vertical-compaction",
        env = "STRATA_COMPACT_ENABLE_VERTICAL_COMPACTION"
    )]
    pub compact_enable_vertical_compaction: bool,

    /// Number of goroutines to use when downsampling blocks.
    #[arg(
        long = "downsample.concurrency",
        env = "STRATA_DOWNSAMPLE_CONCURRENCY",
        default_value_t = 1
    )]
    pub downsample_concurrency: usize,

    /// Number of goroutines to use when uploading or downloading block files.
    #[arg(
        long = "block-files-concurrency",
        env = "STRATA_BLOCK_FILES_CONCURRENCY",
        default_value_t = 1
    )]
    pub block_files_concurrency: usize,

    /// Number of goroutines to use when fetching block metadata from object storage.
    #[arg(
        long = "block-meta-fetch-concurrency",
        env = "STRATA_BLOCK_META_FETCH_CONCURRENCY",
        default_value_t = 32
    )]
    pub block_meta_fetch_concurrency: usize,

    /// Label to treat as a replica indicator of blocks that can be deduplicated (repeatable).
    /// The labels are removed so that replica blocks share a group, and vertical compaction
    /// is enabled to merge them (irreversible).
    #[arg(
        long = "deduplication.replica-label",
        env = "STRATA_DEDUPLICATION_REPLICA_LABEL",
        value_delimiter = ','
    )]
    pub deduplication_replica_labels: Vec<String>,

    /// Deduplication algorithm for merging overlapping blocks: "" merges samples 1:1 (every
    /// sample of every block, equal timestamps once; right for identical replicas such as
    /// Receive's), "penalty" follows one replica and switches on gaps, as the querier's
    /// dedup=true does (right for Prometheus HA pairs; needs --deduplication.replica-label).
    #[arg(long = "deduplication.func", env = "STRATA_DEDUPLICATION_FUNC", default_value = "", value_parser = ["", "penalty"])]
    pub deduplication_func: String,

    /// Specify which hash function to use when calculating the hashes of produced files
    /// ("" or SHA256). Strata does not hash files yet: SHA256 is refused at start-up.
    #[arg(long = "hash-func", env = "STRATA_HASH_FUNC", default_value = "", value_parser = ["", "SHA256"])]
    pub hash_func: String,

    /// Start of time range limit to compact: RFC3339 or a duration relative to now (e.g. -2h).
    #[arg(
        long = "min-time",
        env = "STRATA_MIN_TIME",
        default_value = "0000-01-01T00:00:00Z"
    )]
    pub min_time: TimeOrDuration,

    /// End of time range limit to compact: RFC3339 or a duration relative to now.
    #[arg(
        long = "max-time",
        env = "STRATA_MAX_TIME",
        default_value = "9999-12-31T23:59:59Z"
    )]
    pub max_time: TimeOrDuration,

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

    /// Disable the block viewer UI. Strata's compactor has no UI (it serves only /metrics and
    /// the health probes), so there is nothing for this flag to disable.
    #[arg(long = "web.disable", env = "STRATA_WEB_DISABLE")]
    pub web_disable: bool,

    /// Maximum index size of a compacted block: the output is cut into several blocks (each
    /// marked no-compact) before its index reaches it.
    #[arg(
        long = "compact.block-max-index-size",
        env = "STRATA_COMPACT_BLOCK_MAX_INDEX_SIZE",
        default_value = "64GB",
        value_parser = parse_bytes,
        hide = true
    )]
    pub compact_block_max_index_size: u64,
}

impl Config {
    /// Whether overlapping blocks are merged: `--compact.enable-vertical-compaction`, or
    /// implied by `--deduplication.replica-label` (Thanos `runCompact`).
    pub fn vertical_compaction(&self) -> bool {
        self.compact_enable_vertical_compaction
            || self
                .deduplication_replica_labels
                .iter()
                .any(|label| !label.trim().is_empty())
    }

    /// How overlapping series are merged (`--deduplication.func`): "" is Prometheus's
    /// compacting chained merge, "penalty" Thanos's penalty deduplication.
    pub fn dedup_func(&self) -> DedupFunc {
        if self.deduplication_func == "penalty" {
            DedupFunc::Penalty
        } else {
            DedupFunc::Chain
        }
    }

    /// Refuses flag combinations Thanos refuses and values Strata does not implement.
    pub fn validate(&self) -> Result<(), strata_common::error::Error> {
        use strata_common::error::Error;
        if !self.hash_func.is_empty() {
            return Err(Error::InvalidFlag {
                flag: "--hash-func",
                reason: "file hashes are not implemented; leave it empty".to_owned(),
            });
        }
        if !self.downsampling_disable {
            let hours = |d: Duration| d.as_secs() / 3600;
            if !self.retention_resolution_raw.is_zero() && hours(self.retention_resolution_raw) < 40
            {
                return Err(Error::InvalidFlag {
                    flag: "--retention.resolution-raw",
                    reason: "raw resolution must be retained at least 40h (the 5m downsampling range), or 0 for forever".to_owned(),
                });
            }
            if !self.retention_resolution_5m.is_zero() && hours(self.retention_resolution_5m) < 240
            {
                return Err(Error::InvalidFlag {
                    flag: "--retention.resolution-5m",
                    reason: "5m resolution must be retained at least 10d (the 1h downsampling range), or 0 for forever".to_owned(),
                });
            }
        }
        if self.deduplication_func == "penalty" && self.deduplication_replica_labels.is_empty() {
            return Err(Error::InvalidFlag {
                flag: "--deduplication.func",
                reason: "penalty deduplication needs --deduplication.replica-label".to_owned(),
            });
        }
        Ok(())
    }
}
