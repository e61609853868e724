//! One compactor iteration (reference/thanos.md 6.1): sync, garbage-collect blocks whose data
//! another block holds, compact every group until its planner has nothing left (groups in
//! parallel), downsample (two passes), apply retention, and delete what is due.
//!
//! Overlapping blocks in a group are merged only with vertical compaction
//! (`--compact.enable-vertical-compaction` or `--deduplication.replica-label`), by
//! `--deduplication.func`; without it they are a halt error, as in Thanos. The progress gauges
//! (`thanos_compact_todo_*`) are computed by [`Worker::update_progress`], which the service
//! runs every `--compact.progress-interval`.
//!
//! Crash safety: every bucket change is ordered so that a process killed at any point leaves a
//! bucket the next iteration repairs without losing data. An output block appears (meta.json
//! last) before its sources get deletion marks; sources an output already holds are marked as
//! garbage by the next sync; directories without meta.json are partial uploads and removed
//! once older than the delete delay; deletions remove meta.json first and the mark last.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use strata_common::objstore::Bucket;
use strata_tsdb::Block;
use strata_tsdb::compact::{CompactOptions, compact_blocks, merged_meta};
use strata_tsdb::dedup::DedupFunc;
use strata_tsdb::downsample::{
    RANGE_FOR_1H, RANGE_FOR_5M, RES_1H, RES_5M, RES_RAW, downsample_block, downsampled_meta,
};
use strata_tsdb::meta::{
    BlockMeta, DELETION_MARK_FILENAME, DeletionMark, MARKER_VERSION_1, Marker,
    NO_COMPACT_MARK_FILENAME, NO_DOWNSAMPLE_MARK_FILENAME, NoCompactMark, NoCompactReason,
    NoDownsampleMark,
};
use ulid::Ulid;

use crate::bucket_blocks::{delete_block, download_block, upload_block, write_marker};
use crate::error::{Error, Result};
use crate::metrics::{CompactorMetrics, resolution_label};
use crate::plan::{self, Group};
use crate::sync::{Synced, Syncer, millis};

/// What the iteration does, from the flags.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub retention_raw: Duration,
    pub retention_5m: Duration,
    pub retention_1h: Duration,
    pub delete_delay: Duration,
    pub downsampling_disabled: bool,
    pub compact_concurrency: usize,
    pub downsample_concurrency: usize,
    pub fetch_concurrency: usize,
    pub files_concurrency: usize,
    /// Whether overlapping blocks of a group are merged; when not, they halt the compactor.
    pub vertical_compaction: bool,
    /// How overlapping series are merged when they are.
    pub overlap: DedupFunc,
    pub max_index_size: u64,
}

/// Runs iterations; shared by the service loop and `strata-tools bucket`.
pub struct Worker {
    pub syncer: Syncer,
    pub settings: Settings,
    pub metrics: CompactorMetrics,
    pub cancel: Arc<AtomicBool>,
}

fn now_ms() -> i64 {
    millis(SystemTime::now())
}

fn now_secs() -> i64 {
    now_ms() / 1000
}

impl Worker {
    fn bucket(&self) -> &Bucket {
        self.syncer.bucket()
    }

    /// A full iteration. `on_synced` is called after the first successful sync.
    pub async fn iteration(&self, on_synced: &(dyn Fn() + Sync)) -> Result<()> {
        let synced = self.syncer.sync(now_ms()).await?;
        on_synced();
        self.garbage_collect(&synced).await?;
        self.compact_all(synced).await?;
        if !self.settings.downsampling_disabled {
            for _ in 0..2 {
                let synced = self.syncer.sync(now_ms()).await?;
                self.downsample_all(&synced).await?;
            }
        }
        let synced = self.syncer.sync(now_ms()).await?;
        self.apply_retention(&synced).await?;
        self.cleanup().await
    }

    /// Two downsampling passes (a fresh 5m block can become 1h in the second), as in an
    /// iteration; for `strata-tools bucket downsample`.
    pub async fn downsample(&self) -> Result<()> {
        for _ in 0..2 {
            let synced = self.syncer.sync(now_ms()).await?;
            self.downsample_all(&synced).await?;
        }
        Ok(())
    }

    /// Marks blocks whose data another block holds (a compaction's sources left unmarked by
    /// a crash) for deletion.
    pub async fn garbage_collect(&self, synced: &Synced) -> Result<()> {
        let started = Instant::now();
        self.metrics.gc_runs.inc();
        for ulid in &synced.duplicates {
            if let Err(err) = self
                .mark_for_deletion(*ulid, "source of a compacted block".to_owned(), "duplicate")
                .await
            {
                self.metrics.gc_failures.inc();
                return Err(err);
            }
            self.metrics.garbage_collected.inc();
        }
        self.metrics
            .gc_duration
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    async fn mark_for_deletion(&self, ulid: Ulid, details: String, reason: &str) -> Result<()> {
        let mark = DeletionMark {
            id: ulid,
            version: MARKER_VERSION_1,
            details,
            deletion_time: now_secs(),
        };
        write_marker(self.bucket(), ulid, &mark).await?;
        self.metrics.marked(DELETION_MARK_FILENAME, reason);
        tracing::info!(block = %ulid, reason, "marked block for deletion");
        Ok(())
    }

    async fn mark_no_compact(
        &self,
        ulid: Ulid,
        reason: NoCompactReason,
        details: String,
    ) -> Result<()> {
        let mark = NoCompactMark {
            id: ulid,
            version: MARKER_VERSION_1,
            details: details.clone(),
            no_compact_time: now_secs(),
            reason: reason.clone(),
        };
        write_marker(self.bucket(), ulid, &mark).await?;
        let reason_text = serde_json::to_value(&reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        self.metrics.marked(NO_COMPACT_MARK_FILENAME, &reason_text);
        tracing::warn!(block = %ulid, reason = %reason_text, details, "marked block for no compaction");
        Ok(())
    }

    /// Syncs and recomputes the `thanos_compact_todo_*` gauges (`--compact.progress-interval`).
    pub async fn update_progress(self: &Arc<Self>) -> Result<()> {
        let synced = self.syncer.sync(now_ms()).await?;
        // Simulating every group's compactions is CPU work over all metas.
        let worker = Arc::clone(self);
        tokio::task::spawn_blocking(move || worker.record_progress(&synced))
            .await
            .map_err(|err| Error::Task {
                task: "compact-progress",
                reason: err.to_string(),
            })
    }

    /// What Thanos's progress calculators count: the compactions the planner would run and
    /// their blocks, the blocks due for downsampling (raw to 5m and 5m to 1h) and the blocks
    /// past retention.
    fn record_progress(&self, synced: &Synced) {
        let mut compactions = 0;
        let mut blocks = 0;
        for mut group in plan::groups(synced.blocks.clone()) {
            loop {
                let selected = plan::plan(&group.blocks, &synced.no_compact);
                if selected.is_empty() {
                    break;
                }
                compactions += 1;
                blocks += selected.len() as i64;
                let ids: HashSet<Ulid> = selected.iter().map(|m| m.ulid).collect();
                let metas: Vec<&BlockMeta> = selected.iter().collect();
                let merged = merged_meta(Ulid::new(), &metas, selected[0].thanos.clone());
                group.blocks.retain(|m| !ids.contains(&m.ulid));
                group.blocks.push(merged);
                plan::sort_blocks(&mut group.blocks);
            }
        }
        self.metrics.todo_compactions.set(compactions);
        self.metrics.todo_compaction_blocks.set(blocks);
        let downsample = if self.settings.downsampling_disabled {
            0
        } else {
            self.downsample_candidates(synced, RES_RAW).len()
                + self.downsample_candidates(synced, RES_5M).len()
        };
        self.metrics.todo_downsample_blocks.set(downsample as i64);
        self.metrics
            .todo_deletion_blocks
            .set(self.retention_candidates(synced).len() as i64);
    }

    /// Compacts every group until its planner finds nothing, `compact_concurrency` groups at
    /// a time. A failed group does not stop the others; the first error is returned.
    async fn compact_all(&self, synced: Synced) -> Result<()> {
        let groups = plan::groups(synced.blocks);
        let no_compact = synced.no_compact;
        let results: Vec<Result<()>> = futures::stream::iter(groups)
            .map(|group| {
                let no_compact = no_compact.clone();
                async move { self.compact_group(group, no_compact).await }
            })
            .buffer_unordered(self.settings.compact_concurrency.max(1))
            .collect()
            .await;
        let mut first = None;
        for result in results {
            if let Err(err) = result {
                if err.is_halt() {
                    return Err(err);
                }
                first.get_or_insert(err);
            }
        }
        first.map_or(Ok(()), Err)
    }

    async fn compact_group(&self, mut group: Group, mut no_compact: HashSet<Ulid>) -> Result<()> {
        let resolution = resolution_label(group.resolution);
        loop {
            if self.cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(());
            }
            self.metrics
                .compaction_runs_started
                .get_or_create(&resolution)
                .inc();
            if !self.settings.vertical_compaction {
                // Thanos's pre-compaction overlap check: without vertical compaction,
                // overlapping blocks mean something is wrong upstream (two producers with the
                // same labels, a bad upload) and merging them would be irreversible.
                let overlapping = plan::overlapping(&group.blocks);
                if !overlapping.is_empty() {
                    self.metrics
                        .compaction_failures
                        .get_or_create(&resolution)
                        .inc();
                    return Err(Error::OverlappingBlocks {
                        group: group.key.clone(),
                        blocks: overlapping
                            .iter()
                            .map(|m| (m.ulid, m.min_time, m.max_time))
                            .collect(),
                    });
                }
            }
            let selected = plan::plan(&group.blocks, &no_compact);
            if selected.is_empty() {
                self.metrics
                    .compaction_runs_completed
                    .get_or_create(&resolution)
                    .inc();
                return Ok(());
            }
            let refs: Vec<&BlockMeta> = selected.iter().collect();
            let overlapping = !plan::select_overlapping(&refs).is_empty();
            if overlapping && group.resolution != RES_RAW {
                // With vertical compaction on, Thanos marks overlapping downsampled blocks
                // no-compact instead of merging them; so does Strata.
                for meta in &selected {
                    self.mark_no_compact(
                        meta.ulid,
                        NoCompactReason::DownsampleVerticalCompaction,
                        "overlapping downsampled blocks are not compacted".to_owned(),
                    )
                    .await?;
                    no_compact.insert(meta.ulid);
                }
                continue;
            }
            match self.compact_once(&group, &selected).await {
                Ok(outputs) => {
                    self.metrics.compactions.get_or_create(&resolution).inc();
                    if overlapping {
                        self.metrics
                            .vertical_compactions
                            .get_or_create(&resolution)
                            .inc();
                    }
                    self.metrics
                        .compaction_runs_completed
                        .get_or_create(&resolution)
                        .inc();
                    let ids: HashSet<Ulid> = selected.iter().map(|m| m.ulid).collect();
                    group.blocks.retain(|m| !ids.contains(&m.ulid));
                    for output in outputs {
                        if plan::split_hint(&output).is_some() {
                            no_compact.insert(output.ulid);
                        }
                        let mut output = output;
                        // Plan with the group's labels (replica labels removed).
                        if let Some(thanos) = output.thanos.as_mut() {
                            thanos.labels = group.labels.clone();
                        }
                        group.blocks.push(output);
                    }
                    plan::sort_blocks(&mut group.blocks);
                }
                Err(err) => {
                    if let Some(bad) = err.unreadable_block() {
                        self.mark_no_compact(
                            bad,
                            NoCompactReason::CorruptedBlock,
                            strata_common::error::error_chain(&err),
                        )
                        .await?;
                        no_compact.insert(bad);
                        continue;
                    }
                    if err.is_cancelled() {
                        return Ok(());
                    }
                    self.metrics
                        .compaction_failures
                        .get_or_create(&resolution)
                        .inc();
                    tracing::error!(group = %group.key, error = %strata_common::error::error_chain(&err), "group compaction failed");
                    return Err(err);
                }
            }
        }
    }

    /// Downloads `selected`, merges them, uploads the output(s) and marks the sources for
    /// deletion. Returns the uploaded metas.
    async fn compact_once(&self, group: &Group, selected: &[BlockMeta]) -> Result<Vec<BlockMeta>> {
        let started = Instant::now();
        let dir = self
            .settings
            .data_dir
            .join("compact")
            .join(group.key.replace('@', "-"));
        reset_dir(&dir)?;
        let sources_dir = dir.join("sources");
        let output_dir = dir.join("output");
        std::fs::create_dir_all(&output_dir).map_err(|e| Error::io("create", &output_dir, e))?;
        let ids: Vec<Ulid> = selected.iter().map(|m| m.ulid).collect();
        let downloaded: Vec<Result<PathBuf>> = futures::stream::iter(ids)
            .map(|ulid| {
                let sources_dir = sources_dir.clone();
                async move {
                    download_block(
                        self.bucket(),
                        ulid,
                        &sources_dir,
                        self.settings.files_concurrency,
                    )
                    .await
                }
            })
            .buffer_unordered(self.settings.fetch_concurrency.max(1))
            .collect()
            .await;
        let mut paths = Vec::with_capacity(downloaded.len());
        for path in downloaded {
            paths.push(path?);
        }
        let thanos = {
            // The output inherits the sources' section minus replica labels (taken from the
            // group) and carries the compactor as its producer.
            let mut thanos = selected[0].thanos.clone().unwrap_or_default();
            thanos.labels = group.labels.clone();
            thanos.source = "compactor".to_owned();
            thanos.files.clear();
            thanos.segment_files.clear();
            thanos.upload_time = None;
            thanos.index_stats = Default::default();
            thanos.rewrites.clear();
            thanos.extensions = None;
            thanos.downsample.resolution = group.resolution;
            thanos
        };
        let options = CompactOptions {
            overlap: self.settings.overlap,
            max_index_size: self.settings.max_index_size,
            cancel: Arc::clone(&self.cancel),
        };
        let group_key = group.key.clone();
        let selected_owned: Vec<BlockMeta> = selected.to_vec();
        let (outputs, stats) = tokio::task::spawn_blocking(move || -> Result<_> {
            let mut blocks = Vec::with_capacity(paths.len());
            for path in &paths {
                let block = Block::open(path).map_err(|source| Error::Compact {
                    group: group_key.clone(),
                    source,
                })?;
                blocks.push(block);
            }
            let metas: Vec<&BlockMeta> = selected_owned.iter().collect();
            let meta = merged_meta(Ulid::new(), &metas, Some(thanos));
            let output = compact_blocks(&blocks, &output_dir, meta, &options, Ulid::new).map_err(
                |source| Error::Compact {
                    group: group_key.clone(),
                    source,
                },
            )?;
            for (path, meta) in &output.blocks {
                verify_output(path, meta)?;
            }
            Ok((output.blocks, output.stats))
        })
        .await
        .map_err(|err| Error::Task {
            task: "compact",
            reason: err.to_string(),
        })??;

        let count = outputs.len();
        let set = outputs.first().map(|(_, m)| m.ulid);
        let mut uploaded = Vec::with_capacity(count);
        for (index, (path, mut meta)) in outputs.into_iter().enumerate() {
            let mut extra = Vec::new();
            if count > 1
                && let Some(set) = set
            {
                // Cut before the index limit: the set is recognisable (so it is not taken for
                // duplicates of itself) and never merged again.
                meta.compaction
                    .hints
                    .push(plan::split_hint_text(set, index + 1, count));
                meta.write_to_dir(&path).map_err(|source| Error::Decode {
                    object: path.display().to_string(),
                    source,
                })?;
                let mark = NoCompactMark {
                    id: meta.ulid,
                    version: MARKER_VERSION_1,
                    details: "output cut before the index size limit".to_owned(),
                    no_compact_time: now_secs(),
                    reason: NoCompactReason::IndexSizeExceeding,
                };
                let bytes = mark.to_json().map_err(|source| Error::Decode {
                    object: NO_COMPACT_MARK_FILENAME.to_owned(),
                    source,
                })?;
                extra.push((NO_COMPACT_MARK_FILENAME.to_owned(), bytes));
                self.metrics
                    .marked(NO_COMPACT_MARK_FILENAME, "index-size-exceeding");
            }
            let meta = upload_block(
                self.bucket(),
                &path,
                &meta,
                &extra,
                self.settings.files_concurrency,
            )
            .await?;
            uploaded.push(meta);
        }
        for source in selected {
            self.mark_for_deletion(
                source.ulid,
                "source of a compacted block".to_owned(),
                "compacted",
            )
            .await?;
        }
        let elapsed = started.elapsed();
        tracing::info!(
            group = %group.key,
            sources = selected.len(),
            outputs = uploaded.len(),
            series = stats.series,
            samples = stats.samples,
            chunks_copied = stats.chunks_copied,
            chunks_merged = stats.chunks_merged,
            series_merged = stats.series_merged,
            duration_ms = elapsed.as_millis() as u64,
            samples_per_second = (stats.samples as f64 / elapsed.as_secs_f64().max(1e-9)) as u64,
            "compacted blocks"
        );
        let _ = std::fs::remove_dir_all(&dir);
        Ok(uploaded)
    }

    /// Raw blocks (or 5m blocks) due for downsampling: long enough, not marked, and not
    /// already covered by blocks of the target resolution.
    fn downsample_candidates(&self, synced: &Synced, from: i64) -> Vec<BlockMeta> {
        let (target, range) = if from == RES_RAW {
            (RES_5M, RANGE_FOR_5M)
        } else {
            (RES_1H, RANGE_FOR_1H)
        };
        let key = |meta: &BlockMeta, source: Ulid| {
            (source, plan::split_hint(meta).map(|s| (s.set, s.index)))
        };
        let covered: HashSet<_> = synced
            .blocks
            .iter()
            .filter(|m| m.resolution() == target)
            .flat_map(|m| m.compaction.sources.iter().map(move |s| key(m, *s)))
            .collect();
        synced
            .blocks
            .iter()
            .filter(|m| m.resolution() == from)
            .filter(|m| !synced.no_downsample.contains(&m.ulid))
            .filter(|m| m.max_time - m.min_time >= range)
            .filter(|m| {
                let sources = if m.compaction.sources.is_empty() {
                    vec![m.ulid]
                } else {
                    m.compaction.sources.clone()
                };
                sources.iter().any(|s| !covered.contains(&key(m, *s)))
            })
            .cloned()
            .collect()
    }

    async fn downsample_all(&self, synced: &Synced) -> Result<()> {
        let mut todo = self.downsample_candidates(synced, RES_RAW);
        todo.extend(self.downsample_candidates(synced, RES_5M));
        let results: Vec<Result<()>> = futures::stream::iter(todo)
            .map(|meta| async move { self.downsample_one(meta).await })
            .buffer_unordered(self.settings.downsample_concurrency.max(1))
            .collect()
            .await;
        let mut first = None;
        for result in results {
            if let Err(err) = result {
                if err.is_halt() {
                    return Err(err);
                }
                first.get_or_insert(err);
            }
        }
        first.map_or(Ok(()), Err)
    }

    async fn downsample_one(&self, meta: BlockMeta) -> Result<()> {
        let started = Instant::now();
        let target = if meta.resolution() == RES_RAW {
            RES_5M
        } else {
            RES_1H
        };
        let resolution = resolution_label(meta.resolution());
        self.metrics.downsamples.get_or_create(&resolution).inc();
        let result = self.downsample_inner(&meta, target).await;
        match &result {
            Ok(()) => {
                self.metrics
                    .downsample_duration
                    .get_or_create(&resolution)
                    .observe(started.elapsed().as_secs_f64());
            }
            Err(err) if err.is_cancelled() => {}
            Err(err) => {
                self.metrics
                    .downsample_failures
                    .get_or_create(&resolution)
                    .inc();
                if err.unreadable_block().is_some() {
                    // Keep serving the block; stop trying to downsample it.
                    let mark = NoDownsampleMark {
                        id: meta.ulid,
                        version: MARKER_VERSION_1,
                        details: strata_common::error::error_chain(err),
                        no_downsample_time: now_secs(),
                        reason: "corrupted-block".to_owned(),
                    };
                    write_marker(self.bucket(), meta.ulid, &mark).await?;
                    self.metrics
                        .marked(NO_DOWNSAMPLE_MARK_FILENAME, "corrupted-block");
                    tracing::warn!(block = %meta.ulid, error = %strata_common::error::error_chain(err), "marked unreadable block for no downsampling");
                    return Ok(());
                }
            }
        }
        result
    }

    async fn downsample_inner(&self, meta: &BlockMeta, target: i64) -> Result<()> {
        let started = Instant::now();
        let dir = self
            .settings
            .data_dir
            .join("downsample")
            .join(meta.ulid.to_string());
        reset_dir(&dir)?;
        let path = download_block(
            self.bucket(),
            meta.ulid,
            &dir.join("source"),
            self.settings.files_concurrency,
        )
        .await?;
        let output_dir = dir.join("output");
        std::fs::create_dir_all(&output_dir).map_err(|e| Error::io("create", &output_dir, e))?;
        let cancel = Arc::clone(&self.cancel);
        let source_meta = meta.clone();
        let (out_path, out_meta, stats) = tokio::task::spawn_blocking(move || -> Result<_> {
            let wrap = |source| Error::Downsample {
                block: source_meta.ulid,
                source,
            };
            let block = Block::open(&path).map_err(wrap)?;
            // The downsampled block keeps the source's real labels (with replica labels).
            let new_meta = downsampled_meta(block.meta(), Ulid::new(), target);
            let result = downsample_block(&block, &output_dir, new_meta, &cancel).map_err(wrap)?;
            verify_output(&result.0, &result.1)?;
            Ok(result)
        })
        .await
        .map_err(|err| Error::Task {
            task: "downsample",
            reason: err.to_string(),
        })??;
        upload_block(
            self.bucket(),
            &out_path,
            &out_meta,
            &[],
            self.settings.files_concurrency,
        )
        .await?;
        let elapsed = started.elapsed();
        tracing::info!(
            block = %meta.ulid,
            downsampled = %out_meta.ulid,
            resolution = target,
            series = stats.series,
            samples = stats.samples_in,
            duration_ms = elapsed.as_millis() as u64,
            samples_per_second = (stats.samples_in as f64 / elapsed.as_secs_f64().max(1e-9)) as u64,
            "downsampled block"
        );
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    fn retention_candidates(&self, synced: &Synced) -> Vec<Ulid> {
        let now = now_ms();
        let marked: HashSet<Ulid> = synced.marked.iter().map(|(u, _)| *u).collect();
        synced
            .all_metas
            .values()
            .filter(|m| !marked.contains(&m.ulid))
            .filter(|m| {
                let retention = match m.resolution() {
                    RES_RAW => self.settings.retention_raw,
                    RES_5M => self.settings.retention_5m,
                    RES_1H => self.settings.retention_1h,
                    _ => Duration::ZERO,
                };
                !retention.is_zero()
                    && now > m.max_time.saturating_add(retention.as_millis() as i64)
            })
            .map(|m| m.ulid)
            .collect()
    }

    /// Marks blocks older than their resolution's retention for deletion.
    pub async fn apply_retention(&self, synced: &Synced) -> Result<()> {
        for ulid in self.retention_candidates(synced) {
            self.mark_for_deletion(ulid, "retention".to_owned(), "retention")
                .await?;
        }
        Ok(())
    }

    /// Deletes blocks marked longer than the delete delay ago, finishes interrupted
    /// deletions and removes partial uploads older than the delete delay.
    pub async fn cleanup(&self) -> Result<()> {
        let synced = self.syncer.sync(now_ms()).await?;
        let now = now_ms();
        let delay = self.settings.delete_delay.as_millis() as i64;
        let mut result = Ok(());
        for (ulid, mark) in &synced.marked {
            let objects = synced.objects.get(ulid).cloned().unwrap_or_default();
            // No meta.json next to a mark: a deletion that was interrupted; finish it.
            let due = !objects.has_meta
                || mark
                    .as_ref()
                    .is_some_and(|m| now - m.deletion_time.saturating_mul(1000) >= delay);
            if !due {
                continue;
            }
            match delete_block(self.bucket(), *ulid, &objects.objects).await {
                Ok(()) => {
                    self.metrics.blocks_cleaned.inc();
                    tracing::info!(block = %ulid, "deleted block");
                }
                Err(err) => {
                    self.metrics.cleanup_failures.inc();
                    if result.is_ok() {
                        result = Err(err);
                    }
                }
            }
        }
        let marked: HashSet<Ulid> = synced.marked.iter().map(|(u, _)| *u).collect();
        for partial in &synced.partial {
            if marked.contains(&partial.ulid) {
                continue;
            }
            let newest = partial.objects.newest_modified().map_or(0, millis);
            let age = now - newest.max(partial.ulid.timestamp_ms() as i64);
            if age < delay {
                continue;
            }
            self.metrics.partial_deletion_attempts.inc();
            match delete_block(self.bucket(), partial.ulid, &partial.objects.objects).await {
                Ok(()) => {
                    self.metrics.blocks_cleaned.inc();
                    tracing::info!(block = %partial.ulid, "deleted partial upload");
                }
                Err(err) => {
                    self.metrics.cleanup_failures.inc();
                    if result.is_ok() {
                        result = Err(err);
                    }
                }
            }
        }
        if result.is_ok() {
            self.metrics.cleanup_loops.inc();
        }
        result
    }
}

/// Removes and recreates a working directory (leftovers of a killed run are discarded).
fn reset_dir(dir: &std::path::Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| Error::io("remove", dir, e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))
}

/// Checks a block this process wrote before it is uploaded: series in strictly increasing
/// label order, chunks in time order, not overlapping and inside the block's time range.
fn verify_output(path: &std::path::Path, meta: &BlockMeta) -> Result<()> {
    let fail = |detail: String| Error::OutputVerification {
        block: meta.ulid,
        detail,
    };
    let block = Block::open(path).map_err(|e| fail(e.to_string()))?;
    let report =
        strata_tsdb::verify::verify_block(&block, false).map_err(|e| fail(e.to_string()))?;
    if let Some(problem) = report.problems.first() {
        return Err(fail(problem.clone()));
    }
    Ok(())
}
