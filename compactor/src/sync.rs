//! The compactor's view of the bucket (reference/thanos.md 6.1): one listing, the metas of
//! new blocks (kept: metas never change), then Thanos's filters in order: time partition
//! (`--min-time`/`--max-time`), relabel shard (`--selector.relabel-config`), consistency delay
//! (compactor output exempt), deletion marks, replica labels removed from the external labels
//! (`--deduplication.replica-label`; a block left with none gets `<first>="deduped"`),
//! duplicates (their data is in another block), no-compact and no-downsample marks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Instant, SystemTime};

use futures::StreamExt;
use parking_lot::Mutex;
use strata_common::flags::TimeOrDuration;
use strata_common::objstore::Bucket;
use strata_common::relabel::RelabelConfig;
use strata_tsdb::labels::{Label, Labels};
use strata_tsdb::meta::{BlockMeta, DeletionMark};
use ulid::Ulid;

use crate::bucket_blocks::{BlockObjects, list_blocks, read_marker, read_meta};
use crate::error::Result;
use crate::metrics::{CompactorMetrics, ModifiedLabels, StateLabels};

/// Filter settings.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub min_time: TimeOrDuration,
    pub max_time: TimeOrDuration,
    pub relabel: RelabelConfig,
    pub consistency_delay_ms: i64,
    pub replica_labels: Vec<String>,
    pub meta_fetch_concurrency: usize,
}

/// A block dir without meta.json.
#[derive(Debug, Clone)]
pub struct PartialBlock {
    pub ulid: Ulid,
    pub objects: BlockObjects,
}

/// What one sync found.
#[derive(Debug, Clone, Default)]
pub struct Synced {
    /// Blocks to plan with (replica labels removed), duplicates excluded.
    pub blocks: Vec<BlockMeta>,
    /// Blocks whose data another block holds (garbage to mark for deletion).
    pub duplicates: Vec<Ulid>,
    pub no_compact: HashSet<Ulid>,
    pub no_downsample: HashSet<Ulid>,
    /// Blocks with a deletion mark (with or without meta.json).
    pub marked: Vec<(Ulid, Option<DeletionMark>)>,
    pub partial: Vec<PartialBlock>,
    /// Every ULID directory's objects.
    pub objects: BTreeMap<Ulid, BlockObjects>,
    /// Unfiltered metas of every complete block (retention and cleanup look at all).
    pub all_metas: BTreeMap<Ulid, BlockMeta>,
}

/// Syncs metas and applies the filters.
pub struct Syncer {
    bucket: Bucket,
    config: SyncConfig,
    metrics: CompactorMetrics,
    metas: Mutex<HashMap<Ulid, BlockMeta>>,
    deletion_marks: Mutex<HashMap<Ulid, DeletionMark>>,
}

const EXEMPT_SOURCES: [&str; 4] = [
    "compactor",
    "compactor.repair",
    "bucket.repair",
    "bucket.rewrite",
];

impl Syncer {
    pub fn new(bucket: Bucket, config: SyncConfig, metrics: CompactorMetrics) -> Self {
        metrics
            .consistency_delay
            .set(config.consistency_delay_ms as f64 / 1000.0);
        Syncer {
            bucket,
            config,
            metrics,
            metas: Mutex::new(HashMap::new()),
            deletion_marks: Mutex::new(HashMap::new()),
        }
    }

    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// One sync at `now_ms`.
    pub async fn sync(&self, now_ms: i64) -> Result<Synced> {
        let started = Instant::now();
        self.metrics.meta_syncs.inc();
        let result = self.sync_inner(now_ms).await;
        self.metrics
            .meta_sync_duration
            .observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.metrics.meta_sync_failures.inc();
        }
        result
    }

    async fn sync_inner(&self, now_ms: i64) -> Result<Synced> {
        let objects = list_blocks(&self.bucket).await?;
        let mut states: BTreeMap<&'static str, i64> = BTreeMap::new();
        let mut count = |state: &'static str| *states.entry(state).or_default() += 1;
        let known = self.metas.lock().clone();
        let to_read: Vec<Ulid> = objects
            .iter()
            .filter(|(ulid, o)| o.has_meta && !known.contains_key(ulid))
            .map(|(ulid, _)| *ulid)
            .collect();
        let read: Vec<(Ulid, Result<BlockMeta>)> = futures::stream::iter(to_read)
            .map(|ulid| async move { (ulid, read_meta(&self.bucket, ulid).await) })
            .buffer_unordered(self.config.meta_fetch_concurrency.max(1))
            .collect()
            .await;
        let mut failed = 0;
        {
            let mut cache = self.metas.lock();
            for (ulid, meta) in read {
                match meta {
                    Ok(meta) => {
                        cache.insert(ulid, meta);
                    }
                    Err(err) => {
                        tracing::warn!(block = %ulid, error = %strata_common::error::error_chain(&err), "skipping block with unreadable meta.json");
                        failed += 1;
                    }
                }
            }
            cache.retain(|ulid, _| objects.get(ulid).is_some_and(|o| o.has_meta));
        }
        for _ in 0..failed {
            count("corrupted-meta-json");
        }
        let metas = self.metas.lock().clone();

        let mut synced = Synced::default();
        // Deletion marks (cached: a mark is written once).
        let marked_ids: Vec<Ulid> = objects
            .iter()
            .filter(|(_, o)| o.has_deletion_mark)
            .map(|(ulid, _)| *ulid)
            .collect();
        let cached_marks = self.deletion_marks.lock().clone();
        for ulid in marked_ids {
            let mark = match cached_marks.get(&ulid) {
                Some(mark) => Some(mark.clone()),
                None => {
                    let mark = read_marker::<DeletionMark>(&self.bucket, ulid).await?;
                    if let Some(mark) = &mark {
                        self.deletion_marks.lock().insert(ulid, mark.clone());
                    }
                    mark
                }
            };
            synced.marked.push((ulid, mark));
        }
        let marked: HashSet<Ulid> = synced.marked.iter().map(|(u, _)| *u).collect();

        let mut modified = 0i64;
        let min_time = self.config.min_time.resolve(now_ms);
        let max_time = self.config.max_time.resolve(now_ms);
        let mut usable = Vec::new();
        for (ulid, info) in &objects {
            if !info.has_meta {
                count("no-meta-json");
                synced.partial.push(PartialBlock {
                    ulid: *ulid,
                    objects: info.clone(),
                });
                continue;
            }
            let Some(meta) = metas.get(ulid) else {
                continue;
            };
            synced.all_metas.insert(*ulid, meta.clone());
            if meta.max_time < min_time || meta.min_time > max_time {
                count("time-excluded");
                continue;
            }
            let labels = meta
                .thanos
                .as_ref()
                .map(|t| t.labels.clone())
                .unwrap_or_default();
            let external = Labels::new(labels.iter().map(|(k, v)| Label::new(k, v)).collect());
            if !self.config.relabel.selects(&external, &ulid.to_string()) {
                count("label-excluded");
                continue;
            }
            let source = meta.thanos.as_ref().map_or("", |t| t.source.as_str());
            let produced = meta
                .thanos
                .as_ref()
                .and_then(|t| t.upload_time_millis())
                .unwrap_or(ulid.timestamp_ms() as i64);
            if !EXEMPT_SOURCES.contains(&source)
                && now_ms - produced < self.config.consistency_delay_ms
            {
                count("too-fresh");
                continue;
            }
            if marked.contains(ulid) {
                count("marked-for-deletion");
                continue;
            }
            let mut meta = meta.clone();
            if self.remove_replica_labels(&mut meta) {
                modified += 1;
            }
            if info.has_no_compact_mark {
                count("marked-for-no-compact");
                synced.no_compact.insert(*ulid);
            }
            if info.has_no_downsample_mark {
                count("marked-for-no-downsample");
                synced.no_downsample.insert(*ulid);
            }
            usable.push(meta);
        }
        synced.duplicates = crate::plan::duplicates(&usable);
        let duplicates: HashSet<Ulid> = synced.duplicates.iter().copied().collect();
        usable.retain(|m| !duplicates.contains(&m.ulid));
        for _ in &duplicates {
            count("duplicate");
        }
        states.insert("loaded", usable.len() as i64);
        for state in crate::metrics::SYNC_STATES {
            self.metrics
                .meta_synced
                .get_or_create(&StateLabels { state })
                .set(states.get(state).copied().unwrap_or(0));
        }
        self.metrics
            .meta_modified
            .get_or_create(&ModifiedLabels {
                modified: "replica-label-removed",
            })
            .set(modified);
        synced.blocks = usable;
        synced.objects = objects;
        Ok(synced)
    }

    /// Removes the replica labels; returns whether there were any.
    fn remove_replica_labels(&self, meta: &mut BlockMeta) -> bool {
        let Some(thanos) = meta.thanos.as_mut() else {
            return false;
        };
        let mut removed = false;
        for name in &self.config.replica_labels {
            removed |= thanos.labels.remove(name).is_some();
        }
        // A block left without external labels still needs a group of its own.
        if removed && thanos.labels.is_empty() {
            thanos
                .labels
                .insert(self.config.replica_labels[0].clone(), "deduped".to_owned());
        }
        removed
    }
}

/// Milliseconds since the epoch of a system time.
pub fn millis(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
