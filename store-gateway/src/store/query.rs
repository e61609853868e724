//! The query paths of [`BucketStore`]: Series, LabelNames and LabelValues.
//!
//! Series is a pipeline with bounded memory: every selected block streams its series in
//! final-label order ([`super::block_series`]), a k-way merge joins them ([`super::merge`]),
//! the merged series are cut into batches of [`SEND_BATCH`], and each batch's chunks are read
//! and converted on their own task while the batch before is being sent ([`FETCH_AHEAD`]
//! batches in flight). Series, sample and downloaded-byte limits are counted as the answer
//! goes out and end the call with ResourceExhausted; a block that fails becomes a warning
//! (or the call's error when partial responses are off).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use parking_lot::Mutex;
use strata_common::labels::matchers_from_proto;
use strata_common::storeapi::external::{
    external_labels_match, label_names_with_external, matchers_for_store, matchers_without_external,
};
use strata_common::storeapi::streaming::{FrameBatcher, SeriesSender};
use strata_proto::thanos;
use strata_tsdb::chunkenc::{AggrChunk, AggrType, Chunk, Encoding};
use strata_tsdb::chunks::ChunkRef;
use strata_tsdb::index::ChunkMeta;
use strata_tsdb::labels::{Labels, Matcher};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::task::AbortOnDropHandle;
use xxhash_rust::xxh64::xxh64;

use super::BucketStore;
use super::block_series::{self, BlockReadContext, Selection};
use super::merge::{BlockMerge, MergeItem, MergedSeries};
use crate::block::BucketBlock;
use crate::error::{Error, Result, blocking};
use crate::metrics::DataTypeLabels;

/// Merged series whose chunks are read and sent together.
const SEND_BATCH: usize = 256;
/// The first batch of a call: batches double from here to [`SEND_BATCH`], so the first frame
/// leaves after a few dozen series instead of a full batch (the querier starts decoding and
/// evaluating sooner; measured: the first ~0.1 s of a 10k-series range query had the querier
/// idle waiting for the first 256).
const FIRST_SEND_BATCH: usize = 32;
/// Chunk batches read ahead of the one being sent.
const FETCH_AHEAD: usize = 2;
/// Index reads in flight per call, over all its blocks.
const BLOCK_CONCURRENCY: usize = 8;

fn bad_request(reason: impl Into<String>) -> Error {
    Error::BadRequest {
        reason: reason.into(),
    }
}

/// One batch of the answer, chunks read and converted.
struct FetchedBatch {
    series: Vec<thanos::Series>,
    samples: u64,
    bytes: u64,
    /// Blocks whose chunks could not be read (their parts are left out of `series`).
    failures: Vec<(usize, Error)>,
}

/// What one batch fetch needs, shared by the call's fetch tasks.
#[derive(Clone)]
struct FetchContext {
    store: Arc<BucketStore>,
    blocks: Arc<Vec<Arc<BucketBlock>>>,
    aggregates: Arc<Vec<i32>>,
    /// Blocks whose chunks failed earlier in the call: not read again.
    failed: Arc<Mutex<BTreeSet<usize>>>,
}

/// The limits of one call, counted as the answer goes out.
struct LimitCounter {
    series_limit: u64,
    samples_limit: u64,
    bytes_limit: u64,
    series: u64,
    samples: u64,
    bytes: u64,
}

impl BucketStore {
    fn check_ready(&self) -> Result<()> {
        if self.is_ready() {
            Ok(())
        } else {
            Err(Error::NotReady)
        }
    }

    /// Blocks overlapping `[min_time, max_time]` whose resolution suits `max_resolution`,
    /// preferring the coarsest allowed resolution and filling gaps with finer ones (Thanos
    /// `getFor`), per external label set.
    fn select_blocks(
        &self,
        min_time: i64,
        max_time: i64,
        max_resolution: i64,
        keep: impl Fn(&BucketBlock) -> bool,
    ) -> Vec<Arc<BucketBlock>> {
        let mut overlapping: Vec<Arc<BucketBlock>> = self
            .blocks()
            .into_iter()
            .filter(|block| {
                let meta = block.meta();
                meta.min_time <= max_time
                    && meta.max_time > min_time
                    && block.resolution() <= max_resolution.max(0)
                    && keep(block)
            })
            .collect();
        overlapping.sort_by_key(|block| std::cmp::Reverse(block.resolution()));
        let mut chosen: Vec<Arc<BucketBlock>> = Vec::new();
        for block in overlapping {
            let meta = block.meta();
            let covered = chosen.iter().any(|other| {
                other.resolution() > block.resolution()
                    && other.external_labels() == block.external_labels()
                    && other.meta().min_time <= meta.min_time
                    && other.meta().max_time >= meta.max_time
            });
            if !covered {
                chosen.push(block);
            }
        }
        chosen.sort_by_key(|block| block.ulid());
        chosen
    }

    /// Starts streaming the series of `blocks` matching `matchers` and returns their merge.
    fn start_merge(
        &self,
        blocks: &[Arc<BucketBlock>],
        matchers: &[Matcher],
        selection: Selection,
    ) -> Result<BlockMerge> {
        let context = BlockReadContext {
            selection: Arc::new(selection),
            metrics: self.context.metrics.clone(),
            series_limit: self.config.series_limit,
            io: Arc::new(Semaphore::new(BLOCK_CONCURRENCY)),
            batch: BlockReadContext::batch_for(blocks.len()),
        };
        let mut tasks = JoinSet::new();
        let mut streams = Vec::new();
        for (index, block) in blocks.iter().enumerate() {
            let remaining = match matchers_for_store(block.external_labels(), matchers) {
                Ok(Some(remaining)) => remaining,
                Ok(None) => continue,
                Err(source) => {
                    return Err(Error::Request {
                        source: Box::new(source),
                    });
                }
            };
            let batches =
                block_series::spawn(&mut tasks, context.clone(), Arc::clone(block), remaining);
            streams.push((index, batches));
        }
        self.context
            .metrics
            .series_blocks_queried
            .observe(streams.len() as f64);
        Ok(BlockMerge::new(streams, tasks))
    }

    /// Validates a Series request and answers it into `sender`.
    pub(crate) async fn series(
        self: &Arc<Self>,
        request: thanos::SeriesRequest,
        sender: &SeriesSender,
    ) -> Result<()> {
        self.check_ready()?;
        let matchers = matchers_from_proto(&request.matchers).map_err(|source| Error::Request {
            source: Box::new(source),
        })?;
        if matchers.is_empty() {
            return Err(Error::Request {
                source: Box::new(strata_common::error::Error::NoMatchersExcludingExternalLabels),
            });
        }
        if request.min_time > request.max_time {
            return Err(bad_request(format!(
                "min_time {} is after max_time {}",
                request.min_time, request.max_time
            )));
        }
        let (min_bound, max_bound) = self.time_bounds();
        let min_time = request.min_time.max(min_bound);
        let max_time = request.max_time.min(max_bound);
        if min_time > max_time {
            return Ok(());
        }
        let abort_on_error = request.partial_response_disabled
            || request.partial_response_strategy == thanos::PartialResponseStrategy::Abort as i32;
        let selection = Selection {
            min_time,
            max_time,
            without_replica: request.without_replica_labels.clone(),
            shard: request
                .shard_info
                .clone()
                .filter(|shard| shard.total_shards > 0),
            keep_chunkless: false,
        };
        let block_matchers = block_matchers(request.hints.as_ref())?;
        let started = Instant::now();
        let blocks =
            self.select_blocks(min_time, max_time, request.max_resolution_window, |block| {
                let id = block.ulid().to_string();
                block_matchers.iter().all(|matcher| {
                    let value = if matcher.name == crate::relabel::BLOCK_ID_LABEL {
                        Some(id.as_str())
                    } else {
                        block.external_labels().get(&matcher.name)
                    };
                    matcher.matches(value.unwrap_or(""))
                })
            });
        let mut merge = self.start_merge(&blocks, &matchers, selection)?;
        let fetch = FetchContext {
            store: Arc::clone(self),
            blocks: Arc::new(blocks),
            aggregates: Arc::new(request.aggregates.clone()),
            failed: Arc::default(),
        };
        let mut limits = LimitCounter {
            series_limit: self.config.series_limit,
            samples_limit: self.config.samples_limit,
            bytes_limit: self.config.bytes_limit,
            series: 0,
            samples: 0,
            bytes: 0,
        };
        let mut remaining = usize::try_from(request.limit)
            .ok()
            .filter(|limit| *limit > 0)
            .unwrap_or(usize::MAX);
        let mut batcher = FrameBatcher::new(request.response_batch_size);
        let mut in_flight = FuturesOrdered::new();
        let mut merge_done = false;
        let mut first_batch = true;
        let mut send_batch = FIRST_SEND_BATCH;
        let mut sent_series = 0usize;
        let mut warned: BTreeSet<usize> = BTreeSet::new();
        loop {
            // Keep FETCH_AHEAD batches being read while the oldest one is sent.
            while !merge_done && in_flight.len() < FETCH_AHEAD {
                let target = send_batch;
                send_batch = (send_batch * 2).min(SEND_BATCH);
                let mut batch = Vec::with_capacity(target);
                while batch.len() < target && remaining > 0 {
                    match merge.next().await {
                        Some(MergeItem::Series(series)) => {
                            limits.add_series(&self.context.metrics)?;
                            remaining -= 1;
                            batch.push(series);
                        }
                        Some(MergeItem::BlockFailed(index, err)) => {
                            if matches!(
                                err,
                                Error::Limit { .. }
                                    | Error::Request { .. }
                                    | Error::BadRequest { .. }
                            ) || abort_on_error
                            {
                                return Err(err);
                            }
                            fetch.failed.lock().insert(index);
                            if warned.insert(index) {
                                let warning =
                                    block_warning(&fetch.blocks, index, "fetch series", &err);
                                if sender
                                    .send(Ok(thanos::SeriesResponse::from_warning(warning)))
                                    .await
                                    .is_err()
                                {
                                    return Ok(());
                                }
                            }
                        }
                        None => break,
                    }
                }
                if batch.len() < target || remaining == 0 {
                    merge_done = true;
                }
                if first_batch {
                    first_batch = false;
                    self.context
                        .metrics
                        .series_get_all_duration
                        .observe(started.elapsed().as_secs_f64());
                }
                if batch.is_empty() {
                    break;
                }
                let task = fetch.clone();
                let skip_chunks = request.skip_chunks;
                in_flight.push_back(AbortOnDropHandle::new(tokio::spawn(async move {
                    task.fetch(batch, skip_chunks).await
                })));
            }
            let Some(joined) = in_flight.next().await else {
                break;
            };
            let fetched = joined.map_err(|err| Error::Join {
                reason: err.to_string(),
            })??;
            for (index, err) in fetched.failures {
                if abort_on_error {
                    return Err(err);
                }
                fetch.failed.lock().insert(index);
                if warned.insert(index) {
                    let warning = block_warning(&fetch.blocks, index, "fetch chunks", &err);
                    if sender
                        .send(Ok(thanos::SeriesResponse::from_warning(warning)))
                        .await
                        .is_err()
                    {
                        return Ok(());
                    }
                }
            }
            limits.add_data(fetched.samples, fetched.bytes, &self.context.metrics)?;
            for series in fetched.series {
                sent_series += 1;
                if let Some(frame) = batcher.push(series)
                    && sender.send(Ok(frame)).await.is_err()
                {
                    // The client went away: stop reading.
                    return Ok(());
                }
            }
        }
        if let Some(frame) = batcher.finish() {
            let _ = sender.send(Ok(frame)).await;
        }
        self.context
            .metrics
            .series_result_series
            .observe(sent_series as f64);
        self.context
            .metrics
            .series_merge_duration
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Runs `f` on the final labels of every series of `block` matching `matchers` in
    /// `selection`; a failing block becomes a warning.
    async fn for_each_series_labels(
        &self,
        block: &Arc<BucketBlock>,
        matchers: &[Matcher],
        selection: &Selection,
        warnings: &mut Vec<String>,
        mut f: impl FnMut(&Labels),
    ) -> Result<()> {
        let mut merge =
            self.start_merge(std::slice::from_ref(block), matchers, selection.clone())?;
        while let Some(item) = merge.next().await {
            match item {
                MergeItem::Series(series) => f(&series.labels.to_labels()),
                MergeItem::BlockFailed(_, err @ (Error::Limit { .. } | Error::Request { .. })) => {
                    return Err(err);
                }
                MergeItem::BlockFailed(_, err) => {
                    warnings.push(format!(
                        "fetch series for block {}: {}",
                        block.ulid(),
                        strata_common::error::error_chain(&err)
                    ));
                }
            }
        }
        Ok(())
    }

    /// LabelNames over the blocks overlapping `[start, end]`.
    pub(crate) async fn label_names(
        &self,
        request: thanos::LabelNamesRequest,
    ) -> Result<thanos::LabelNamesResponse> {
        self.check_ready()?;
        let matchers = matchers_from_proto(&request.matchers).map_err(|source| Error::Request {
            source: Box::new(source),
        })?;
        let (blocks, selection) =
            self.label_query_blocks(request.start, request.end, &request.without_replica_labels);
        let mut names = BTreeSet::new();
        let mut warnings = Vec::new();
        for block in &blocks {
            if !external_labels_match(block.external_labels(), &matchers) {
                continue;
            }
            let remaining = matchers_without_external(block.external_labels(), &matchers);
            let own: Vec<String> = if remaining.is_empty() {
                match block.header().await {
                    Ok(header) => header.label_names(),
                    Err(err) => {
                        warnings.push(format!(
                            "read label names of block {}: {}",
                            block.ulid(),
                            strata_common::error::error_chain(&err)
                        ));
                        continue;
                    }
                }
            } else {
                let mut found = BTreeSet::new();
                self.for_each_series_labels(
                    block,
                    &remaining,
                    &selection,
                    &mut warnings,
                    |labels| {
                        for label in labels {
                            if !found.contains(&label.name) {
                                found.insert(label.name.clone());
                            }
                        }
                    },
                )
                .await?;
                found.into_iter().collect()
            };
            names.extend(label_names_with_external(
                own,
                block.external_labels(),
                &request.without_replica_labels,
            ));
        }
        let mut names: Vec<String> = names.into_iter().collect();
        if let Ok(limit) = usize::try_from(request.limit)
            && limit > 0
        {
            names.truncate(limit);
        }
        Ok(thanos::LabelNamesResponse {
            names,
            warnings,
            hints: None,
        })
    }

    /// LabelValues over the blocks overlapping `[start, end]`.
    pub(crate) async fn label_values(
        &self,
        request: thanos::LabelValuesRequest,
    ) -> Result<thanos::LabelValuesResponse> {
        self.check_ready()?;
        if request.label.is_empty() {
            return Err(bad_request("label name parameter cannot be empty"));
        }
        let matchers = matchers_from_proto(&request.matchers).map_err(|source| Error::Request {
            source: Box::new(source),
        })?;
        let (blocks, selection) =
            self.label_query_blocks(request.start, request.end, &request.without_replica_labels);
        let name = request.label.clone();
        let mut values = BTreeSet::new();
        let mut warnings = Vec::new();
        if request.without_replica_labels.contains(&name) {
            return Ok(thanos::LabelValuesResponse::default());
        }
        for block in &blocks {
            let external = block.external_labels();
            if !external_labels_match(external, &matchers) {
                continue;
            }
            if let Some(value) = external.get(&name) {
                values.insert(value.to_owned());
                continue;
            }
            let remaining = matchers_without_external(external, &matchers);
            if remaining.is_empty() {
                match block.header().await {
                    Ok(header) => values.extend(header.label_values(&name)),
                    Err(err) => warnings.push(format!(
                        "read label values of block {}: {}",
                        block.ulid(),
                        strata_common::error::error_chain(&err)
                    )),
                }
                continue;
            }
            self.for_each_series_labels(block, &remaining, &selection, &mut warnings, |labels| {
                if let Some(value) = labels.get(&name)
                    && !values.contains(value)
                {
                    values.insert(value.to_owned());
                }
            })
            .await?;
        }
        let mut values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        if let Ok(limit) = usize::try_from(request.limit)
            && limit > 0
        {
            values.truncate(limit);
        }
        Ok(thanos::LabelValuesResponse {
            values,
            warnings,
            hints: None,
        })
    }

    fn label_query_blocks(
        &self,
        start: i64,
        end: i64,
        without_replica: &[String],
    ) -> (Vec<Arc<BucketBlock>>, Selection) {
        let (min_bound, max_bound) = self.time_bounds();
        // 0/0 (unset) means the whole range, as Prometheus clients send it when omitted.
        let (start, end) = if start == 0 && end == 0 {
            (i64::MIN, i64::MAX)
        } else {
            (start, end)
        };
        let min_time = start.max(min_bound);
        let max_time = end.min(max_bound);
        let selection = Selection {
            min_time,
            max_time,
            without_replica: without_replica.to_vec(),
            shard: None,
            keep_chunkless: false,
        };
        (
            self.select_blocks(min_time, max_time, i64::MAX, |_| true),
            selection,
        )
    }
}

/// The block matchers of `hintspb.SeriesRequestHints` (matched against each block's external
/// labels and `__block_id`); none when the request carries no such hints.
fn block_matchers(hints: Option<&prost_types::Any>) -> Result<Vec<Matcher>> {
    use strata_proto::conversions::AnyMessage;
    let Some(hints) = hints else {
        return Ok(Vec::new());
    };
    let decoded = strata_proto::hintspb::SeriesRequestHints::from_any(hints)
        .map_err(|err| bad_request(format!("decode series request hints: {err}")))?;
    match decoded {
        Some(hints) => {
            matchers_from_proto(&hints.block_matchers).map_err(|source| Error::Request {
                source: Box::new(source),
            })
        }
        None => Ok(Vec::new()),
    }
}

/// `"<what> of block <ulid>: <error chain>"`, logged and sent as a warning.
fn block_warning(blocks: &[Arc<BucketBlock>], index: usize, what: &str, err: &Error) -> String {
    let block = blocks.get(index).map(|b| b.ulid()).unwrap_or_default();
    let message = strata_common::error::error_chain(err);
    tracing::warn!(block = %block, error = %message, "skipping block in query");
    format!("{what} of block {block}: {message}")
}

impl LimitCounter {
    fn add_series(&mut self, metrics: &crate::metrics::StoreMetrics) -> Result<()> {
        self.series += 1;
        check_limit(self.series, self.series_limit, "series", metrics)
    }

    fn add_data(
        &mut self,
        samples: u64,
        bytes: u64,
        metrics: &crate::metrics::StoreMetrics,
    ) -> Result<()> {
        self.samples = self.samples.saturating_add(samples);
        self.bytes = self.bytes.saturating_add(bytes);
        check_limit(self.samples, self.samples_limit, "samples", metrics)?;
        check_limit(self.bytes, self.bytes_limit, "bytes", metrics)
    }
}

fn check_limit(
    count: u64,
    limit: u64,
    what: &'static str,
    metrics: &crate::metrics::StoreMetrics,
) -> Result<()> {
    if limit == 0 || count <= limit {
        return Ok(());
    }
    metrics
        .queries_dropped
        .get_or_create(&crate::metrics::ReasonLabels { reason: what })
        .inc();
    Err(Error::Limit { what, limit })
}

impl FetchContext {
    /// Reads the chunks of `batch` and builds its wire series (conversion and hashing on the
    /// blocking pool).
    async fn fetch(self, batch: Vec<MergedSeries>, skip_chunks: bool) -> Result<FetchedBatch> {
        if skip_chunks {
            let series = batch
                .into_iter()
                .map(|merged| thanos::Series {
                    labels: merged.labels.into_proto(),
                    chunks: Vec::new(),
                })
                .collect();
            return Ok(FetchedBatch {
                series,
                samples: 0,
                bytes: 0,
                failures: Vec::new(),
            });
        }
        let failed_before = self.failed.lock().clone();
        // Per block of the call, its chunk refs in batch order: `convert_batch` walks the
        // batch in the same order and takes each block's chunks from the front.
        let mut per_block: Vec<Vec<ChunkRef>> = vec![Vec::new(); self.blocks.len()];
        for series in &batch {
            for (block, metas) in &series.parts {
                if failed_before.contains(block) {
                    continue;
                }
                if let Some(refs) = per_block.get_mut(*block) {
                    refs.extend(metas.iter().map(|meta| meta.chunk_ref));
                }
            }
        }
        let blocks = &self.blocks;
        let fetched = futures::future::join_all(
            per_block
                .iter()
                .enumerate()
                .filter(|(_, refs)| !refs.is_empty())
                .filter_map(|(index, refs)| {
                    let block = blocks.get(index)?;
                    Some(async move { (index, block.chunks(refs).await) })
                }),
        )
        .await;
        let mut chunks: Vec<Option<std::vec::IntoIter<Chunk>>> =
            (0..blocks.len()).map(|_| None).collect();
        let mut failures = Vec::new();
        let mut bytes = 0u64;
        for (index, result) in fetched {
            match result {
                Ok(block_chunks) => {
                    bytes += block_chunks
                        .iter()
                        .map(|chunk| chunk.data.len() as u64)
                        .sum::<u64>();
                    if let Some(slot) = chunks.get_mut(index) {
                        *slot = Some(block_chunks.into_iter());
                    }
                }
                Err(err) => failures.push((index, err)),
            }
        }
        self.store
            .context
            .metrics
            .series_data_size_touched_bytes
            .get_or_create(&DataTypeLabels {
                data_type: "chunks",
            })
            .observe(bytes as f64);
        let blocks = Arc::clone(&self.blocks);
        let aggregates = Arc::clone(&self.aggregates);
        let (series, samples) =
            blocking(move || convert_batch(batch, chunks, &blocks, &aggregates)).await?;
        Ok(FetchedBatch {
            series,
            samples,
            bytes,
            failures,
        })
    }
}

/// The wire series of `batch` from its read chunks: `chunks` holds, per block, the chunks of
/// the batch's parts in batch order; blocks without (failed ones) are left out, and series
/// left without any chunk are dropped. Returns them and their sample count.
fn convert_batch(
    batch: Vec<MergedSeries>,
    mut chunks: Vec<Option<std::vec::IntoIter<Chunk>>>,
    blocks: &[Arc<BucketBlock>],
    aggregates: &[i32],
) -> Result<(Vec<thanos::Series>, u64)> {
    let mut samples = 0u64;
    let mut out = Vec::with_capacity(batch.len());
    for merged in batch {
        let total = merged.parts.iter().map(|(_, metas)| metas.len()).sum();
        let mut wire_chunks = Vec::with_capacity(total);
        for (block, metas) in &merged.parts {
            let Some(Some(read)) = chunks.get_mut(*block) else {
                continue;
            };
            for (meta, chunk) in metas.iter().zip(read.by_ref()) {
                samples += push_wire_chunk(meta, chunk, aggregates, &mut wire_chunks).map_err(
                    |source| Error::Decode {
                        block: blocks.get(*block).map(|b| b.ulid()).unwrap_or_default(),
                        object: "chunks".to_owned(),
                        source,
                    },
                )?;
            }
        }
        if wire_chunks.is_empty() {
            // Every block holding this series failed.
            continue;
        }
        if merged.parts.len() > 1 {
            wire_chunks.sort_by_key(|chunk| (chunk.min_time, chunk.max_time));
        }
        out.push(thanos::Series {
            labels: merged.labels.into_proto(),
            chunks: wire_chunks,
        });
    }
    Ok((out, samples))
}

fn wire_chunk(chunk: Chunk) -> strata_tsdb::Result<thanos::Chunk> {
    let encoding = match chunk.encoding {
        Encoding::Xor => thanos::chunk::Encoding::Xor,
        Encoding::Histogram => thanos::chunk::Encoding::Histogram,
        Encoding::FloatHistogram => thanos::chunk::Encoding::FloatHistogram,
        other => {
            return Err(strata_tsdb::Error::UnsupportedEncoding {
                encoding: other.to_u8(),
            });
        }
    };
    Ok(thanos::Chunk {
        r#type: encoding as i32,
        hash: xxh64(&chunk.data, 0),
        data: chunk.data,
    })
}

/// Appends the wire chunk for `chunk` to `out` and returns its number of samples: raw chunks
/// go in `raw`; aggregate chunks of downsampled blocks fill only the requested aggregates.
fn push_wire_chunk(
    meta: &ChunkMeta,
    chunk: Chunk,
    aggregates: &[i32],
    out: &mut Vec<thanos::AggrChunk>,
) -> strata_tsdb::Result<u64> {
    out.push(thanos::AggrChunk {
        min_time: meta.min_time,
        max_time: meta.max_time,
        ..Default::default()
    });
    let Some(slot) = out.last_mut() else {
        return Ok(0);
    };
    if chunk.encoding != Encoding::Aggr {
        let samples = u64::from(chunk.num_samples().unwrap_or(0));
        slot.raw = Some(wire_chunk(chunk)?);
        return Ok(samples);
    }
    let aggr = AggrChunk::decode(&chunk.data)?;
    let mut samples = 0u64;
    for requested in aggregates {
        let (kind, slot) = match thanos::Aggr::try_from(*requested) {
            Ok(thanos::Aggr::Count) => (AggrType::Count, &mut slot.count),
            Ok(thanos::Aggr::Sum) => (AggrType::Sum, &mut slot.sum),
            Ok(thanos::Aggr::Min) => (AggrType::Min, &mut slot.min),
            Ok(thanos::Aggr::Max) => (AggrType::Max, &mut slot.max),
            Ok(thanos::Aggr::Counter) => (AggrType::Counter, &mut slot.counter),
            Ok(thanos::Aggr::Raw) | Err(_) => continue,
        };
        if let Some(sub) = aggr.get(kind) {
            samples = samples.max(u64::from(sub.num_samples().unwrap_or(0)));
            *slot = Some(wire_chunk(sub.clone())?);
        }
    }
    Ok(samples)
}
