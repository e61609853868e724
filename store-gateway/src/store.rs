//! [`BucketStore`]: the set of loaded blocks and the StoreAPI over them.
//!
//! A Series call (reference/thanos.md 1.4, 5.4) runs as a producer task feeding a bounded
//! channel that tonic streams out; a failed send means the client left and the work stops.
//! Per block (concurrently): the request's matchers on the block's external labels are
//! evaluated and dropped ([`strata_common::storeapi::external`]), the rest become postings
//! ([`crate::postings`]), series entries are read in batches and their chunk metas trimmed to
//! the time range, and labels are finalized (external labels win, replica labels removed).
//! The per-block lists are merged into one sorted list of series (identical label sets from
//! several blocks become one series); only then are chunks read, a batch of series at a time,
//! so memory holds the labels and chunk metas of the result plus one batch of chunk bytes.
//! CPU work (planning, set algebra, decoding) runs on the blocking pool.

mod block_series;
mod merge;
pub mod query;
mod series_key;
mod service;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use parking_lot::RwLock;
use strata_common::flags::TimeOrDuration;
use strata_tsdb::labels::Labels;
use strata_tsdb::meta::BlockMeta;
use tokio::sync::Semaphore;
use ulid::Ulid;

use crate::block::{BlockContext, BucketBlock};

pub use service::{InfoService, StoreService};

/// Per-request limits and serving settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub min_time: TimeOrDuration,
    pub max_time: TimeOrDuration,
    /// Most series one Series call may touch (0 = unlimited).
    pub series_limit: u64,
    /// Most samples one Series call may return (0 = unlimited).
    pub samples_limit: u64,
    /// Most chunk bytes one Series call may read (0 = unlimited).
    pub bytes_limit: u64,
    /// Concurrent Series calls (`--store.grpc.series-max-concurrency`).
    pub max_concurrency: usize,
    /// Concurrent block loads during a sync (`--block-sync-concurrency`).
    pub block_sync_concurrency: usize,
}

/// The blocks being served.
#[derive(Debug)]
pub struct BucketStore {
    context: BlockContext,
    config: StoreConfig,
    blocks: RwLock<BTreeMap<Ulid, Arc<BucketBlock>>>,
    gate: Arc<Semaphore>,
    ready: AtomicBool,
}

/// Outcome of applying one sync.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    pub loaded: usize,
    pub failed: usize,
    pub dropped: usize,
}

impl BucketStore {
    pub fn new(context: BlockContext, config: StoreConfig) -> Self {
        let concurrency = config.max_concurrency.max(1);
        context.metrics.gate_queries_max.set(concurrency as i64);
        BucketStore {
            context,
            config,
            blocks: RwLock::new(BTreeMap::new()),
            gate: Arc::new(Semaphore::new(concurrency)),
            ready: AtomicBool::new(false),
        }
    }

    /// Marks the store ready (after the first sync); until then RPCs answer Unavailable.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// The loaded blocks in ULID order.
    pub fn blocks(&self) -> Vec<Arc<BucketBlock>> {
        self.blocks.read().values().cloned().collect()
    }

    /// `--min-time`/`--max-time` resolved now.
    pub fn time_bounds(&self) -> (i64, i64) {
        let now = chrono::Utc::now().timestamp_millis();
        (
            self.config.min_time.resolve(now),
            self.config.max_time.resolve(now),
        )
    }

    /// Loads blocks in `metas` that are not loaded yet and drops loaded blocks not in `metas`.
    /// A block that fails to load is counted and skipped; it is tried again next sync.
    pub async fn sync_blocks(&self, metas: BTreeMap<Ulid, BlockMeta>) -> SyncOutcome {
        let metrics = &self.context.metrics;
        let loaded_ids: Vec<Ulid> = self.blocks.read().keys().copied().collect();
        let mut outcome = SyncOutcome::default();
        for id in loaded_ids {
            if metas.contains_key(&id) {
                continue;
            }
            let removed = self.blocks.write().remove(&id);
            if let Some(block) = removed {
                metrics.block_drops.inc();
                if let Err(err) = block.remove_local_files() {
                    metrics.block_drop_failures.inc();
                    tracing::warn!(block = %id, error = %err, "remove local files of dropped block");
                }
                tracing::info!(block = %id, "dropped block");
                outcome.dropped += 1;
            }
        }
        let new: Vec<BlockMeta> = {
            let blocks = self.blocks.read();
            metas
                .into_values()
                .filter(|meta| !blocks.contains_key(&meta.ulid))
                .collect()
        };
        let concurrency = self.config.block_sync_concurrency.max(1);
        let results: Vec<(Ulid, crate::error::Result<BucketBlock>, Duration)> =
            futures::stream::iter(new)
                .map(|meta| {
                    let context = self.context.clone();
                    async move {
                        let id = meta.ulid;
                        let started = Instant::now();
                        let result = BucketBlock::load(meta, context).await;
                        (id, result, started.elapsed())
                    }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
        for (id, result, elapsed) in results {
            metrics.block_loads.inc();
            match result {
                Ok(block) => {
                    metrics.block_load_duration.observe(elapsed.as_secs_f64());
                    self.blocks.write().insert(id, Arc::new(block));
                    outcome.loaded += 1;
                }
                Err(err) => {
                    metrics.block_load_failures.inc();
                    outcome.failed += 1;
                    tracing::warn!(
                        block = %id,
                        error = %strata_common::error::error_chain(&err),
                        "failed to load block; skipping it"
                    );
                }
            }
        }
        if outcome.loaded > 0 {
            metrics
                .blocks_last_loaded_timestamp
                .set(chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
        }
        metrics.blocks_loaded.set(self.blocks.read().len() as i64);
        outcome
    }

    /// Drops in-memory index-headers not used for `idle`.
    pub fn unload_idle_headers(&self, idle: Duration) -> usize {
        self.blocks()
            .iter()
            .filter(|block| block.unload_if_idle(idle))
            .count()
    }

    /// Distinct external label sets of the loaded blocks, sorted, with their time ranges.
    pub fn label_sets(&self) -> Vec<(Labels, i64, i64)> {
        let (min_bound, max_bound) = self.time_bounds();
        let mut sets: BTreeMap<Labels, (i64, i64)> = BTreeMap::new();
        for block in self.blocks() {
            let meta = block.meta();
            let entry = sets
                .entry(block.external_labels().clone())
                .or_insert((i64::MAX, i64::MIN));
            entry.0 = entry.0.min(meta.min_time.max(min_bound));
            // Like Thanos, the block's (exclusive) maxTime is advertised.
            entry.1 = entry.1.max(meta.max_time.min(max_bound));
        }
        sets.into_iter()
            .map(|(labels, (min, max))| (labels, min, max))
            .collect()
    }
}

#[cfg(test)]
mod tests;
