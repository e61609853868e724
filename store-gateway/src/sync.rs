//! Bucket sync: which blocks the store gateway serves (reference/thanos.md 5.1).
//!
//! [`MetaFetcher::fetch`] lists the ULID directories at the top of the bucket, reads each new
//! block's meta.json once (metas are immutable, so they are kept in memory) and applies the
//! filters in Thanos's order: partial uploads (no meta.json) and corrupt metas are skipped,
//! then the time partition (`--min-time`/`--max-time`), the relabel shard
//! (`--selector.relabel-config`), the consistency delay (compactor output is exempt) and
//! deletion marks older than `--ignore-deletion-marks-delay`. Each state is counted in
//! `thanos_blocks_meta_synced{state}`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::StreamExt;
use parking_lot::Mutex;
use strata_common::flags::TimeOrDuration;
use strata_common::objstore::Bucket;
use strata_tsdb::labels::{Label, Labels};
use strata_tsdb::meta::{BlockMeta, DELETION_MARK_FILENAME, DeletionMark, META_FILENAME, Marker};
use ulid::Ulid;

use crate::error::{Error, Result};
use crate::metrics::{StateLabels, StoreMetrics};
use crate::relabel::RelabelConfig;

/// The filters' settings.
#[derive(Debug, Clone)]
pub struct FilterConfig {
    pub min_time: TimeOrDuration,
    pub max_time: TimeOrDuration,
    pub consistency_delay: Duration,
    pub ignore_deletion_marks_delay: Duration,
    pub relabel: RelabelConfig,
    pub meta_fetch_concurrency: usize,
}

/// What one fetch of a block's meta found.
#[derive(Debug, Clone)]
enum Fetched {
    Meta(Box<BlockMeta>),
    NoMeta,
    Corrupt,
}

/// Lists the bucket and filters block metas.
#[derive(Debug)]
pub struct MetaFetcher {
    bucket: Bucket,
    config: FilterConfig,
    metrics: StoreMetrics,
    /// Metas read so far (immutable once uploaded).
    metas: Mutex<HashMap<Ulid, BlockMeta>>,
}

/// Source values of blocks the consistency delay does not apply to (they are never partial).
const DELAY_EXEMPT_SOURCES: [&str; 4] = [
    "compactor",
    "compactor.repair",
    "bucket.repair",
    "bucket.rewrite",
];

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl MetaFetcher {
    pub fn new(bucket: Bucket, config: FilterConfig, metrics: StoreMetrics) -> Self {
        metrics
            .consistency_delay
            .set(config.consistency_delay.as_secs_f64());
        MetaFetcher {
            bucket,
            config,
            metrics,
            metas: Mutex::new(HashMap::new()),
        }
    }

    /// The metas of the blocks to serve now.
    pub async fn fetch(&self) -> Result<BTreeMap<Ulid, BlockMeta>> {
        let started = Instant::now();
        self.metrics.meta_syncs.inc();
        let result = self.fetch_inner(now_millis()).await;
        self.metrics
            .meta_sync_duration
            .observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.metrics.meta_sync_failures.inc();
        }
        result
    }

    async fn fetch_inner(&self, now: i64) -> Result<BTreeMap<Ulid, BlockMeta>> {
        let listing = self
            .bucket
            .list_with_delimiter("")
            .await
            .map_err(|source| Error::List {
                source: Box::new(source),
            })?;
        let ids: Vec<Ulid> = listing
            .prefixes
            .iter()
            .filter_map(|prefix| {
                let name = prefix.trim_end_matches('/');
                let name = name.rsplit('/').next().unwrap_or(name);
                Ulid::from_string(name).ok()
            })
            .collect();
        let known: HashMap<Ulid, BlockMeta> = self.metas.lock().clone();
        let concurrency = self.config.meta_fetch_concurrency.max(1);
        let fetched: Vec<(Ulid, Result<Fetched>)> = futures::stream::iter(ids)
            .map(|id| {
                let known = known.get(&id).cloned();
                async move {
                    match known {
                        Some(meta) => (id, Ok(Fetched::Meta(Box::new(meta)))),
                        None => (id, self.read_meta(id).await),
                    }
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let mut states: BTreeMap<&'static str, i64> = BTreeMap::new();
        let mut count = |state: &'static str| *states.entry(state).or_default() += 1;
        let mut candidates = Vec::new();
        for (id, fetched) in fetched {
            match fetched? {
                Fetched::NoMeta => count("no-meta-json"),
                Fetched::Corrupt => count("corrupted-meta-json"),
                Fetched::Meta(meta) => {
                    self.metas.lock().insert(id, (*meta).clone());
                    candidates.push(*meta);
                }
            }
        }
        let min_time = self.config.min_time.resolve(now);
        let max_time = self.config.max_time.resolve(now);
        let mut kept = Vec::new();
        for meta in candidates {
            if meta.max_time < min_time || meta.min_time > max_time {
                count("time-excluded");
                continue;
            }
            if !self.config.relabel.is_empty() {
                let external = external_labels(&meta);
                if !self
                    .config
                    .relabel
                    .selects(&external, &meta.ulid.to_string())
                {
                    count("label-excluded");
                    continue;
                }
            }
            if !self.config.consistency_delay.is_zero() {
                let thanos = meta.thanos.clone().unwrap_or_default();
                let exempt = DELAY_EXEMPT_SOURCES.contains(&thanos.source.as_str());
                let written = thanos
                    .upload_time_millis()
                    .unwrap_or_else(|| i64::try_from(meta.ulid.timestamp_ms()).unwrap_or(0));
                let delay =
                    i64::try_from(self.config.consistency_delay.as_millis()).unwrap_or(i64::MAX);
                if !exempt && now.saturating_sub(written) < delay {
                    count("too-fresh");
                    continue;
                }
            }
            kept.push(meta);
        }
        // Deletion marks are checked on every sync: they appear after the meta.
        let delay =
            i64::try_from(self.config.ignore_deletion_marks_delay.as_secs()).unwrap_or(i64::MAX);
        let marks: Vec<(BlockMeta, Result<Option<DeletionMark>>)> = futures::stream::iter(kept)
            .map(|meta| async move {
                let mark = self.read_deletion_mark(meta.ulid).await;
                (meta, mark)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let mut unmarked = Vec::new();
        for (meta, mark) in marks {
            if let Some(mark) = mark?
                && now / 1000 - mark.deletion_time > delay
            {
                count("marked-for-deletion");
                continue;
            }
            unmarked.push(meta);
        }
        let duplicates = duplicates(&unmarked);
        let mut out = BTreeMap::new();
        for meta in unmarked {
            if duplicates.contains(&meta.ulid) {
                count("duplicate");
                continue;
            }
            count("loaded");
            out.insert(meta.ulid, meta);
        }
        for state in crate::metrics::SYNC_STATES {
            self.metrics
                .meta_synced
                .get_or_create(&StateLabels { state })
                .set(states.get(state).copied().unwrap_or(0));
        }
        Ok(out)
    }

    async fn read_meta(&self, id: Ulid) -> Result<Fetched> {
        let object = format!("{id}/{META_FILENAME}");
        match self.bucket.get(&object).await {
            Ok(bytes) => match BlockMeta::from_json(&bytes) {
                Ok(meta) if meta.ulid == id => Ok(Fetched::Meta(Box::new(meta))),
                Ok(meta) => {
                    tracing::warn!(block = %id, meta_ulid = %meta.ulid, "meta.json names another block; skipping");
                    Ok(Fetched::Corrupt)
                }
                Err(err) => {
                    tracing::warn!(block = %id, error = %err, "corrupt meta.json; skipping block");
                    Ok(Fetched::Corrupt)
                }
            },
            Err(err) if err.is_not_found() => Ok(Fetched::NoMeta),
            Err(source) => Err(Error::Bucket {
                block: id,
                object,
                source: Box::new(source),
            }),
        }
    }

    async fn read_deletion_mark(&self, id: Ulid) -> Result<Option<DeletionMark>> {
        let object = format!("{id}/{DELETION_MARK_FILENAME}");
        match self.bucket.get(&object).await {
            Ok(bytes) => match DeletionMark::from_json(&bytes) {
                Ok(mark) => Ok(Some(mark)),
                Err(err) => {
                    // Thanos treats an unparsable marker as a partial upload of the marker.
                    tracing::warn!(block = %id, error = %err, "ignoring unreadable deletion mark");
                    Ok(None)
                }
            },
            Err(err) if err.is_not_found() => Ok(None),
            Err(source) => Err(Error::Bucket {
                block: id,
                object,
                source: Box::new(source),
            }),
        }
    }
}

/// Blocks whose data another block of the same group (external labels and resolution) fully
/// holds: their compaction sources are a subset of the other's (Thanos's DeduplicateFilter,
/// e.g. level-1 blocks still in the bucket after the compactor merged them). Of blocks with
/// identical sources the one with the greatest ULID is kept.
fn duplicates(metas: &[BlockMeta]) -> std::collections::HashSet<Ulid> {
    use std::collections::BTreeSet;
    /// Blocks of one group: external labels and resolution.
    type Group<'a> = Vec<(&'a BlockMeta, BTreeSet<Ulid>)>;
    let mut groups: HashMap<(Labels, i64), Group<'_>> = HashMap::new();
    for meta in metas {
        let mut sources: BTreeSet<Ulid> = meta.compaction.sources.iter().copied().collect();
        if sources.is_empty() {
            sources.insert(meta.ulid);
        }
        groups
            .entry((external_labels(meta), meta.resolution()))
            .or_default()
            .push((meta, sources));
    }
    let mut out = std::collections::HashSet::new();
    for blocks in groups.values() {
        for (meta, sources) in blocks {
            let covered = blocks.iter().any(|(other, other_sources)| {
                other.ulid != meta.ulid
                    && other_sources.len() >= sources.len()
                    && sources.is_subset(other_sources)
                    && (other_sources.len() > sources.len() || other.ulid > meta.ulid)
            });
            if covered {
                out.insert(meta.ulid);
            }
        }
    }
    out
}

/// A block's external labels from its meta.
pub fn external_labels(meta: &BlockMeta) -> Labels {
    Labels::new(
        meta.thanos
            .as_ref()
            .map(|thanos| {
                thanos
                    .labels
                    .iter()
                    .map(|(name, value)| Label::new(name.clone(), value.clone()))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{bucket, numbered_series, write_block};

    fn config() -> FilterConfig {
        FilterConfig {
            min_time: TimeOrDuration::Absolute(i64::MIN),
            max_time: TimeOrDuration::Absolute(i64::MAX),
            consistency_delay: Duration::ZERO,
            ignore_deletion_marks_delay: Duration::from_secs(3600),
            relabel: RelabelConfig::default(),
            meta_fetch_concurrency: 4,
        }
    }

    #[tokio::test]
    async fn filters_partial_corrupt_marked_and_excluded_blocks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let series = numbered_series(3, 5);
        let good = write_block(dir.path(), &[("cluster", "a")], &series);
        let other = write_block(dir.path(), &[("cluster", "b")], &series);
        let marked_old = write_block(dir.path(), &[("cluster", "a")], &series);
        let marked_new = write_block(dir.path(), &[("cluster", "a")], &series);
        let partial = write_block(dir.path(), &[("cluster", "a")], &series);
        std::fs::remove_file(dir.path().join(format!("{partial}/meta.json"))).expect("rm");
        let corrupt = write_block(dir.path(), &[("cluster", "a")], &series);
        std::fs::write(dir.path().join(format!("{corrupt}/meta.json")), b"{nope").expect("write");
        let now = chrono::Utc::now().timestamp();
        for (id, age) in [(marked_old, 7200), (marked_new, 60)] {
            let mark = DeletionMark {
                id,
                version: 1,
                details: String::new(),
                deletion_time: now - age,
            };
            std::fs::write(
                dir.path().join(format!("{id}/deletion-mark.json")),
                mark.to_json().expect("json"),
            )
            .expect("write mark");
        }
        std::fs::create_dir_all(dir.path().join("debug/metas")).expect("debug dir");

        let metrics = StoreMetrics::unregistered();
        let fetcher = MetaFetcher::new(bucket(dir.path()), config(), metrics.clone());
        let metas = fetcher.fetch().await.expect("fetch");
        let ids: Vec<Ulid> = metas.keys().copied().collect();
        let mut expected = vec![good, other, marked_new];
        expected.sort();
        assert_eq!(ids, expected);
        let state = |state| {
            metrics
                .meta_synced
                .get_or_create(&StateLabels { state })
                .get()
        };
        assert_eq!(state("no-meta-json"), 1);
        assert_eq!(state("corrupted-meta-json"), 1);
        assert_eq!(state("marked-for-deletion"), 1);
        assert_eq!(state("loaded"), 3);

        // A compacted block holding `good` and `marked_new` makes both duplicates.
        let compacted = write_block(dir.path(), &[("cluster", "a")], &series);
        let meta_path = dir.path().join(format!("{compacted}/meta.json"));
        let mut meta =
            BlockMeta::from_json(&std::fs::read(&meta_path).expect("read")).expect("meta");
        meta.compaction.level = 2;
        meta.compaction.sources = vec![good, marked_new];
        std::fs::write(&meta_path, meta.to_json().expect("json")).expect("write");
        let fetcher = MetaFetcher::new(bucket(dir.path()), config(), metrics.clone());
        let metas = fetcher.fetch().await.expect("fetch");
        let mut expected = vec![other, compacted];
        expected.sort();
        assert_eq!(metas.keys().copied().collect::<Vec<_>>(), expected);
        assert_eq!(state("duplicate"), 2);
        std::fs::remove_dir_all(dir.path().join(compacted.to_string())).expect("rm");

        let mut sharded = config();
        sharded.relabel =
            RelabelConfig::parse("- action: keep\n  source_labels: [cluster]\n  regex: b\n")
                .expect("relabel");
        sharded.max_time = TimeOrDuration::Absolute(i64::MAX);
        let fetcher = MetaFetcher::new(bucket(dir.path()), sharded, StoreMetrics::unregistered());
        let metas = fetcher.fetch().await.expect("fetch");
        assert_eq!(metas.keys().copied().collect::<Vec<_>>(), vec![other]);

        let mut timed = config();
        timed.min_time = TimeOrDuration::Absolute(10_000_000);
        let fetcher = MetaFetcher::new(bucket(dir.path()), timed, StoreMetrics::unregistered());
        assert!(fetcher.fetch().await.expect("fetch").is_empty());

        let mut fresh = config();
        fresh.consistency_delay = Duration::from_secs(3600);
        let fetcher = MetaFetcher::new(bucket(dir.path()), fresh, StoreMetrics::unregistered());
        assert!(
            fetcher.fetch().await.expect("fetch").is_empty(),
            "all blocks are too fresh"
        );
    }
}
