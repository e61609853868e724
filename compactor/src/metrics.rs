//! The compactor's metrics, with Thanos's names and labels (reference/thanos.md 7.1, 7.2) so
//! that Thanos's compactor dashboard and alerts work unchanged, plus
//! `thanos_compact_iterations_failed_total`, which Thanos does not emit but alerts in the wild
//! use. Counters are registered without `_total`; prometheus-client appends it.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use strata_tsdb::meta::{DELETION_MARK_FILENAME, NO_COMPACT_MARK_FILENAME};

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResolutionLabels {
    pub resolution: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct MarkerLabels {
    pub marker: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

/// States of `thanos_blocks_meta_synced`, as Thanos names them.
pub const SYNC_STATES: [&str; 11] = [
    "loaded",
    "failed",
    "no-meta-json",
    "corrupted-meta-json",
    "label-excluded",
    "time-excluded",
    "too-fresh",
    "duplicate",
    "marked-for-deletion",
    "marked-for-no-compact",
    "marked-for-no-downsample",
];

fn duration_histogram() -> Histogram {
    Histogram::new([
        1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
    ])
}

/// Every metric of the compactor (the bucket's `thanos_objstore_*` are registered by
/// `strata_common::objstore::BucketMetrics`).
#[derive(Debug, Clone)]
pub struct CompactorMetrics {
    pub halted: Gauge,
    pub retries: Counter,
    pub iterations: Counter,
    pub iterations_failed: Counter,
    pub cleanup_loops: Counter,
    pub partial_deletion_attempts: Counter,
    pub blocks_cleaned: Counter,
    pub cleanup_failures: Counter,
    pub blocks_marked: Family<MarkerLabels, Counter>,
    pub garbage_collected: Counter,
    pub gc_runs: Counter,
    pub gc_failures: Counter,
    pub gc_duration: Histogram,
    pub compactions: Family<ResolutionLabels, Counter>,
    pub compaction_runs_started: Family<ResolutionLabels, Counter>,
    pub compaction_runs_completed: Family<ResolutionLabels, Counter>,
    pub compaction_failures: Family<ResolutionLabels, Counter>,
    pub vertical_compactions: Family<ResolutionLabels, Counter>,
    pub downsamples: Family<ResolutionLabels, Counter>,
    pub downsample_failures: Family<ResolutionLabels, Counter>,
    pub downsample_duration: Family<ResolutionLabels, Histogram>,
    pub todo_compactions: Gauge,
    pub todo_compaction_blocks: Gauge,
    pub todo_downsample_blocks: Gauge,
    pub todo_deletion_blocks: Gauge,
    pub delete_delay: Gauge<f64, AtomicU64>,
    pub meta_syncs: Counter,
    pub meta_sync_failures: Counter,
    pub meta_sync_duration: Histogram,
    pub meta_synced: Family<StateLabels, Gauge>,
    pub meta_modified: Family<ModifiedLabels, Gauge>,
    pub consistency_delay: Gauge<f64, AtomicU64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ModifiedLabels {
    pub modified: &'static str,
}

impl CompactorMetrics {
    /// Metrics not registered anywhere (tests, tools).
    pub fn unregistered() -> Self {
        CompactorMetrics {
            halted: Gauge::default(),
            retries: Counter::default(),
            iterations: Counter::default(),
            iterations_failed: Counter::default(),
            cleanup_loops: Counter::default(),
            partial_deletion_attempts: Counter::default(),
            blocks_cleaned: Counter::default(),
            cleanup_failures: Counter::default(),
            blocks_marked: Family::default(),
            garbage_collected: Counter::default(),
            gc_runs: Counter::default(),
            gc_failures: Counter::default(),
            gc_duration: duration_histogram(),
            compactions: Family::default(),
            compaction_runs_started: Family::default(),
            compaction_runs_completed: Family::default(),
            compaction_failures: Family::default(),
            vertical_compactions: Family::default(),
            downsamples: Family::default(),
            downsample_failures: Family::default(),
            downsample_duration: Family::new_with_constructor(duration_histogram),
            todo_compactions: Gauge::default(),
            todo_compaction_blocks: Gauge::default(),
            todo_downsample_blocks: Gauge::default(),
            todo_deletion_blocks: Gauge::default(),
            delete_delay: Gauge::default(),
            meta_syncs: Counter::default(),
            meta_sync_failures: Counter::default(),
            meta_sync_duration: Histogram::new([0.01, 0.1, 0.3, 0.6, 1.0, 3.0, 6.0, 20.0, 60.0]),
            meta_synced: Family::default(),
            meta_modified: Family::default(),
            consistency_delay: Gauge::default(),
        }
    }

    /// Creates the metrics and registers them into `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::unregistered();
        macro_rules! register {
            ($name:expr, $help:expr, $metric:expr) => {
                registry.register($name, $help, $metric.clone())
            };
        }
        register!(
            "thanos_compact_halted",
            "Set to 1 if the compactor halted due to an unexpected error.",
            m.halted
        );
        register!(
            "thanos_compact_retries",
            "Total number of retries after retriable compactor error.",
            m.retries
        );
        register!(
            "thanos_compact_iterations",
            "Total number of iterations that were executed successfully.",
            m.iterations
        );
        register!(
            "thanos_compact_iterations_failed",
            "Total number of iterations that failed (Strata; the common alert on failed compactor runs uses it).",
            m.iterations_failed
        );
        register!(
            "thanos_compact_block_cleanup_loops",
            "Total number of concurrent cleanup loops of partially uploaded blocks and marked blocks that were executed successfully.",
            m.cleanup_loops
        );
        register!(
            "thanos_compact_aborted_partial_uploads_deletion_attempts",
            "Total number of started deletions of blocks that are assumed aborted and only partially uploaded.",
            m.partial_deletion_attempts
        );
        register!(
            "thanos_compact_blocks_cleaned",
            "Total number of blocks deleted in compactor.",
            m.blocks_cleaned
        );
        register!(
            "thanos_compact_block_cleanup_failures",
            "Failures encountered while deleting blocks in compactor.",
            m.cleanup_failures
        );
        register!(
            "thanos_compact_blocks_marked",
            "Total number of blocks marked in compactor.",
            m.blocks_marked
        );
        register!(
            "thanos_compact_garbage_collected_blocks",
            "Total number of blocks marked for deletion by compactor.",
            m.garbage_collected
        );
        register!(
            "thanos_compact_garbage_collection",
            "Total number of garbage collection operations.",
            m.gc_runs
        );
        register!(
            "thanos_compact_garbage_collection_failures",
            "Total number of failed garbage collection operations.",
            m.gc_failures
        );
        register!(
            "thanos_compact_garbage_collection_duration_seconds",
            "Time it took to perform garbage collection iteration.",
            m.gc_duration
        );
        register!(
            "thanos_compact_group_compactions",
            "Total number of group compaction attempts that resulted in a new block.",
            m.compactions
        );
        register!(
            "thanos_compact_group_compaction_runs_started",
            "Total number of group compaction attempts.",
            m.compaction_runs_started
        );
        register!(
            "thanos_compact_group_compaction_runs_completed",
            "Total number of group completed compaction runs. This also includes compactor group runs that resulted with no compaction.",
            m.compaction_runs_completed
        );
        register!(
            "thanos_compact_group_compactions_failures",
            "Total number of failed group compactions.",
            m.compaction_failures
        );
        register!(
            "thanos_compact_group_vertical_compactions",
            "Total number of group compaction attempts that resulted in a new block based on overlapping blocks.",
            m.vertical_compactions
        );
        register!(
            "thanos_compact_downsample",
            "Total number of downsampling attempts.",
            m.downsamples
        );
        register!(
            "thanos_compact_downsample_failures",
            "Total number of failed downsampling attempts.",
            m.downsample_failures
        );
        register!(
            "thanos_compact_downsample_duration_seconds",
            "Duration of downsample runs",
            m.downsample_duration
        );
        register!(
            "thanos_compact_todo_compactions",
            "The number of planned compactions.",
            m.todo_compactions
        );
        register!(
            "thanos_compact_todo_compaction_blocks",
            "The number of blocks planned to be merged.",
            m.todo_compaction_blocks
        );
        register!(
            "thanos_compact_todo_downsample_blocks",
            "The number of blocks to be downsampled.",
            m.todo_downsample_blocks
        );
        register!(
            "thanos_compact_todo_deletion_blocks",
            "The number of blocks planned to be deleted.",
            m.todo_deletion_blocks
        );
        register!(
            "thanos_delete_delay_seconds",
            "Configured delete delay in seconds.",
            m.delete_delay
        );
        register!(
            "thanos_blocks_meta_syncs",
            "Total blocks metadata synchronization attempts",
            m.meta_syncs
        );
        register!(
            "thanos_blocks_meta_sync_failures",
            "Total blocks metadata synchronization failures",
            m.meta_sync_failures
        );
        register!(
            "thanos_blocks_meta_sync_duration_seconds",
            "Duration of the blocks metadata synchronization in seconds",
            m.meta_sync_duration
        );
        register!(
            "thanos_blocks_meta_synced",
            "Number of block metadata synced",
            m.meta_synced
        );
        register!(
            "thanos_blocks_meta_modified",
            "Number of blocks whose metadata changed",
            m.meta_modified
        );
        register!(
            "thanos_consistency_delay_seconds",
            "Configured consistency delay in seconds.",
            m.consistency_delay
        );
        m.initialise_series();
        m
    }

    /// Creates the label combinations that dashboards and alerts chart before anything has
    /// happened, as Thanos does, so that a quiet compactor's panels show 0 rather than "no
    /// data" and `rate()` sees the first increment.
    fn initialise_series(&self) {
        for resolution in [0, 5 * 60 * 1000, 60 * 60 * 1000] {
            let labels = resolution_label(resolution);
            let _ = self.compactions.get_or_create(&labels);
            let _ = self.compaction_runs_started.get_or_create(&labels);
            let _ = self.compaction_runs_completed.get_or_create(&labels);
            let _ = self.compaction_failures.get_or_create(&labels);
            let _ = self.vertical_compactions.get_or_create(&labels);
            if resolution != 60 * 60 * 1000 {
                // Downsampling runs on raw and 5m blocks only.
                let _ = self.downsamples.get_or_create(&labels);
                let _ = self.downsample_failures.get_or_create(&labels);
            }
        }
        for (marker, reason) in [
            (DELETION_MARK_FILENAME, "duplicate"),
            (DELETION_MARK_FILENAME, "retention"),
            (NO_COMPACT_MARK_FILENAME, "index-size-exceeding"),
            (NO_COMPACT_MARK_FILENAME, "corrupted-block"),
        ] {
            let _ = self.blocks_marked.get_or_create(&MarkerLabels {
                marker,
                reason: reason.to_owned(),
            });
        }
    }

    /// Counts a marker written.
    pub fn marked(&self, marker: &'static str, reason: &str) {
        self.blocks_marked
            .get_or_create(&MarkerLabels {
                marker,
                reason: reason.to_owned(),
            })
            .inc();
    }
}

/// The `resolution` label value of a resolution in ms.
pub fn resolution_label(resolution: i64) -> ResolutionLabels {
    ResolutionLabels {
        resolution: resolution.to_string(),
    }
}
