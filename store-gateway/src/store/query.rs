//! The query paths of [`BucketStore`]: Series (planned per block, merged, streamed with chunks
//! read a batch at a time), LabelNames and LabelValues.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use futures::future::try_join_all;
use strata_common::labels::{labels_to_proto, matchers_from_proto};
use strata_common::storeapi::external::{
    external_labels_match, finalize_labels, label_names_with_external, matchers_for_store,
    matchers_without_external,
};
use strata_proto::thanos;
use strata_tsdb::chunkenc::{AggrChunk, AggrType, Chunk, Encoding};
use strata_tsdb::index::ChunkMeta;
use strata_tsdb::labels::{Label, Labels, Matcher};
use tokio::sync::mpsc;
use xxhash_rust::xxh64::xxh64;

use super::BucketStore;
use crate::block::BucketBlock;
use crate::error::{Error, Result, blocking};
use crate::metrics::DataTypeLabels;
use crate::postings::{evaluate, plan};

/// Series entries read per index request batch (Thanos's `--debug.series-batch-size`).
const SERIES_BATCH: usize = 10_000;
/// Series whose chunks are read and sent together.
const SEND_BATCH: usize = 256;
/// Blocks queried concurrently within one request.
const BLOCK_CONCURRENCY: usize = 8;

/// One series of one block, labels finalized, chunk metas trimmed to the request's range.
#[derive(Debug)]
struct BlockSeries {
    labels: Labels,
    chunks: Vec<ChunkMeta>,
}

/// One series of the result: its labels and, per block, the chunks to read.
#[derive(Debug)]
struct MergedSeries {
    labels: Labels,
    parts: Vec<(usize, Vec<ChunkMeta>)>,
}

/// The request fields the per-block work needs.
#[derive(Debug, Clone)]
struct Selection {
    min_time: i64,
    max_time: i64,
    without_replica: Vec<String>,
    shard: Option<thanos::ShardInfo>,
    /// Keep series without chunks in the range (label queries over whole blocks).
    keep_chunkless: bool,
}

fn bad_request(reason: impl Into<String>) -> Error {
    Error::BadRequest {
        reason: reason.into(),
    }
}

/// Does the finalized label set belong to the requested shard (thanos.md 1.2 ShardInfo)?
fn in_shard(labels: &Labels, shard: &thanos::ShardInfo) -> bool {
    if shard.total_shards < 1 {
        return true;
    }
    let mut buffer = Vec::with_capacity(256);
    for label in labels {
        let listed = shard.labels.contains(&label.name);
        if listed == shard.by {
            buffer.extend_from_slice(label.name.as_bytes());
            buffer.push(0xff);
            buffer.extend_from_slice(label.value.as_bytes());
            buffer.push(0xff);
        }
    }
    let total = u64::try_from(shard.total_shards).unwrap_or(1);
    let index = u64::try_from(shard.shard_index).unwrap_or(u64::MAX);
    xxh64(&buffer, 0) % total == index
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

    /// The series of one block matching `matchers`, finalized and sorted.
    async fn block_series(
        &self,
        block: Arc<BucketBlock>,
        matchers: Vec<Matcher>,
        selection: Selection,
        series_limit: u64,
    ) -> Result<Vec<BlockSeries>> {
        let header = block.header().await?;
        let planned = {
            let header = Arc::clone(&header);
            blocking(move || Ok(plan(&header, &matchers))).await?
        };
        let Some(groups) = planned else {
            self.context.metrics.empty_postings.inc();
            return Ok(Vec::new());
        };
        let lists = try_join_all(
            groups
                .iter()
                .map(|group| block.postings(&group.name, &group.entries)),
        )
        .await?;
        let touched_postings: usize = lists.iter().map(Vec::len).sum();
        self.context
            .metrics
            .series_data_touched
            .get_or_create(&DataTypeLabels {
                data_type: "postings",
            })
            .observe(touched_postings as f64);
        let refs: Vec<u32> =
            blocking(move || Ok(evaluate(&groups, &lists).iter().collect())).await?;
        if refs.is_empty() {
            self.context.metrics.empty_postings.inc();
            return Ok(Vec::new());
        }
        if series_limit > 0 && refs.len() as u64 > series_limit {
            return Err(Error::Limit {
                what: "series",
                limit: series_limit,
            });
        }
        self.context
            .metrics
            .series_data_touched
            .get_or_create(&DataTypeLabels {
                data_type: "series",
            })
            .observe(refs.len() as f64);
        let mut out = Vec::new();
        for batch in refs.chunks(SERIES_BATCH) {
            let entries = block.series(batch).await?;
            let header = Arc::clone(&header);
            let external = block.external_labels().clone();
            let selection = selection.clone();
            let block_id = block.ulid();
            let decoded = blocking(move || {
                let mut decoded = Vec::with_capacity(entries.len());
                for (_, entry) in entries {
                    let mut labels = Vec::with_capacity(entry.labels.len());
                    for &(name, value) in &entry.labels {
                        let lookup = |symbol| {
                            header
                                .symbols()
                                .lookup(symbol)
                                .map_err(|source| Error::Decode {
                                    block: block_id,
                                    object: "index".to_owned(),
                                    source,
                                })
                        };
                        labels.push(Label::new(lookup(name)?, lookup(value)?));
                    }
                    let chunks: Vec<ChunkMeta> = entry
                        .chunks
                        .into_iter()
                        .filter(|chunk| {
                            chunk.max_time >= selection.min_time
                                && chunk.min_time <= selection.max_time
                        })
                        .collect();
                    if chunks.is_empty() && !selection.keep_chunkless {
                        continue;
                    }
                    let labels = finalize_labels(
                        &Labels::new(labels),
                        &external,
                        &selection.without_replica,
                    );
                    if let Some(shard) = &selection.shard
                        && !in_shard(&labels, shard)
                    {
                        continue;
                    }
                    decoded.push(BlockSeries { labels, chunks });
                }
                Ok(decoded)
            })
            .await?;
            out.extend(decoded);
        }
        // External labels and removed replica labels can change the index's order.
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    /// Runs `block_series` on every selected block; per-block data errors become warnings
    /// (or fail the call when partial responses are disabled).
    async fn select_series(
        &self,
        blocks: &[Arc<BucketBlock>],
        matchers: &[Matcher],
        selection: &Selection,
        abort_on_error: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<(usize, Vec<BlockSeries>)>> {
        let series_limit = self.config.series_limit;
        let mut work = Vec::new();
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
            work.push((index, Arc::clone(block), remaining));
        }
        self.context
            .metrics
            .series_blocks_queried
            .observe(work.len() as f64);
        let results: Vec<(usize, Arc<BucketBlock>, Result<Vec<BlockSeries>>)> =
            futures::stream::iter(work)
                .map(|(index, block, remaining)| {
                    let selection = selection.clone();
                    async move {
                        let result = self
                            .block_series(Arc::clone(&block), remaining, selection, series_limit)
                            .await;
                        (index, block, result)
                    }
                })
                .buffer_unordered(BLOCK_CONCURRENCY)
                .collect()
                .await;
        let mut out = Vec::with_capacity(results.len());
        for (index, block, result) in results {
            match result {
                Ok(series) => out.push((index, series)),
                Err(
                    err @ (Error::Limit { .. } | Error::Request { .. } | Error::BadRequest { .. }),
                ) => {
                    return Err(err);
                }
                Err(err) if abort_on_error => return Err(err),
                Err(err) => {
                    let message = strata_common::error::error_chain(&err);
                    tracing::warn!(block = %block.ulid(), error = %message, "skipping block in query");
                    warnings.push(format!(
                        "fetch series for block {}: {message}",
                        block.ulid()
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Validates a Series request and answers it into `sender`.
    pub(crate) async fn series(
        &self,
        request: thanos::SeriesRequest,
        sender: &mpsc::Sender<Result<thanos::SeriesResponse, tonic::Status>>,
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
        let mut warnings = Vec::new();
        let per_block = self
            .select_series(
                &blocks,
                &matchers,
                &selection,
                abort_on_error,
                &mut warnings,
            )
            .await?;
        self.context
            .metrics
            .series_get_all_duration
            .observe(started.elapsed().as_secs_f64());
        for warning in warnings {
            if sender
                .send(Ok(thanos::SeriesResponse::from_warning(warning)))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
        let merge_started = Instant::now();
        let merged = blocking(move || Ok(merge(per_block))).await?;
        self.context
            .metrics
            .series_merge_duration
            .observe(merge_started.elapsed().as_secs_f64());
        let series_limit = self.config.series_limit;
        if series_limit > 0 && merged.len() as u64 > series_limit {
            self.context
                .metrics
                .queries_dropped
                .get_or_create(&crate::metrics::ReasonLabels { reason: "series" })
                .inc();
            return Err(Error::Limit {
                what: "series",
                limit: series_limit,
            });
        }
        let take = usize::try_from(request.limit)
            .ok()
            .filter(|limit| *limit > 0)
            .unwrap_or(usize::MAX);
        let merged: Vec<MergedSeries> = merged.into_iter().take(take).collect();
        self.context
            .metrics
            .series_result_series
            .observe(merged.len() as f64);
        self.send_series(&blocks, merged, &request, abort_on_error, sender)
            .await
    }

    /// Reads the chunks of `merged`, a batch at a time, and sends the series.
    async fn send_series(
        &self,
        blocks: &[Arc<BucketBlock>],
        merged: Vec<MergedSeries>,
        request: &thanos::SeriesRequest,
        abort_on_error: bool,
        sender: &mpsc::Sender<Result<thanos::SeriesResponse, tonic::Status>>,
    ) -> Result<()> {
        let batch_size = usize::try_from(request.response_batch_size).unwrap_or(0);
        let mut failed_blocks: BTreeSet<usize> = BTreeSet::new();
        let samples_limit = self.config.samples_limit;
        let mut samples: u64 = 0;
        let mut pending: Vec<thanos::Series> = Vec::new();
        for batch in merged.chunks(SEND_BATCH) {
            let chunks = if request.skip_chunks {
                HashMap::new()
            } else {
                let (chunks, errors) = self.fetch_batch_chunks(blocks, batch).await;
                for (index, err) in errors {
                    if abort_on_error {
                        return Err(err);
                    }
                    if failed_blocks.insert(index) {
                        let block = blocks.get(index).map(|b| b.ulid()).unwrap_or_default();
                        let message = strata_common::error::error_chain(&err);
                        tracing::warn!(block = %block, error = %message, "skipping block in query");
                        let warning = format!("fetch chunks of block {block}: {message}");
                        if sender
                            .send(Ok(thanos::SeriesResponse::from_warning(warning)))
                            .await
                            .is_err()
                        {
                            return Ok(());
                        }
                    }
                }
                chunks
            };
            for series in batch {
                let mut out = thanos::Series {
                    labels: labels_to_proto(&series.labels),
                    chunks: Vec::new(),
                };
                if !request.skip_chunks {
                    for (block, metas) in &series.parts {
                        if failed_blocks.contains(block) {
                            continue;
                        }
                        for meta in metas {
                            let Some(chunk) = chunks.get(&(*block, meta.chunk_ref.0)) else {
                                continue;
                            };
                            let (aggr, count) = to_aggr_chunk(meta, chunk, &request.aggregates)
                                .map_err(|source| Error::Decode {
                                    block: blocks.get(*block).map(|b| b.ulid()).unwrap_or_default(),
                                    object: "chunks".to_owned(),
                                    source,
                                })?;
                            samples += count;
                            out.chunks.push(aggr);
                        }
                    }
                    if samples_limit > 0 && samples > samples_limit {
                        self.context
                            .metrics
                            .queries_dropped
                            .get_or_create(&crate::metrics::ReasonLabels { reason: "samples" })
                            .inc();
                        return Err(Error::Limit {
                            what: "samples",
                            limit: samples_limit,
                        });
                    }
                    out.chunks
                        .sort_by_key(|chunk| (chunk.min_time, chunk.max_time));
                    if out.chunks.is_empty() {
                        // Every block holding this series failed.
                        continue;
                    }
                }
                let frame = if batch_size > 1 {
                    pending.push(out);
                    if pending.len() < batch_size {
                        continue;
                    }
                    thanos::SeriesResponse::from_batch(std::mem::take(&mut pending))
                } else {
                    thanos::SeriesResponse::from_series(out)
                };
                if sender.send(Ok(frame)).await.is_err() {
                    // The client went away: stop reading.
                    return Ok(());
                }
            }
        }
        if !pending.is_empty() {
            let _ = sender
                .send(Ok(thanos::SeriesResponse::from_batch(pending)))
                .await;
        }
        Ok(())
    }

    /// The chunks of a batch of series, and the blocks whose chunks could not be read.
    async fn fetch_batch_chunks(
        &self,
        blocks: &[Arc<BucketBlock>],
        batch: &[MergedSeries],
    ) -> (HashMap<(usize, u64), Chunk>, Vec<(usize, Error)>) {
        let mut per_block: HashMap<usize, Vec<strata_tsdb::chunks::ChunkRef>> = HashMap::new();
        for series in batch {
            for (block, metas) in &series.parts {
                per_block
                    .entry(*block)
                    .or_default()
                    .extend(metas.iter().map(|meta| meta.chunk_ref));
            }
        }
        let fetched =
            futures::future::join_all(per_block.into_iter().filter_map(|(index, refs)| {
                let block = blocks.get(index)?;
                Some(async move { (index, block.chunks(&refs).await) })
            }))
            .await;
        let mut out = HashMap::new();
        let mut errors = Vec::new();
        let mut touched = 0usize;
        for (index, result) in fetched {
            match result {
                Ok(chunks) => {
                    for (chunk_ref, chunk) in chunks {
                        touched += chunk.data.len();
                        out.insert((index, chunk_ref), chunk);
                    }
                }
                Err(err) => errors.push((index, err)),
            }
        }
        self.context
            .metrics
            .series_data_size_touched_bytes
            .get_or_create(&DataTypeLabels {
                data_type: "chunks",
            })
            .observe(touched as f64);
        (out, errors)
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
                let selected = self
                    .select_series(
                        std::slice::from_ref(block),
                        &remaining,
                        &selection,
                        false,
                        &mut warnings,
                    )
                    .await?;
                let mut found = BTreeSet::new();
                for (_, series) in selected {
                    for s in series {
                        found.extend(s.labels.iter().map(|l| l.name.clone()));
                    }
                }
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
            let selected = self
                .select_series(
                    std::slice::from_ref(block),
                    &remaining,
                    &selection,
                    false,
                    &mut warnings,
                )
                .await?;
            for (_, series) in selected {
                for s in series {
                    if let Some(value) = s.labels.get(&name) {
                        values.insert(value.to_owned());
                    }
                }
            }
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

/// Merges per-block sorted series into one sorted list; identical label sets join.
fn merge(per_block: Vec<(usize, Vec<BlockSeries>)>) -> Vec<MergedSeries> {
    let mut all: Vec<(Labels, usize, Vec<ChunkMeta>)> = per_block
        .into_iter()
        .flat_map(|(block, series)| series.into_iter().map(move |s| (s.labels, block, s.chunks)))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut merged: Vec<MergedSeries> = Vec::new();
    for (labels, block, chunks) in all {
        match merged.last_mut() {
            Some(last) if last.labels == labels => last.parts.push((block, chunks)),
            _ => merged.push(MergedSeries {
                labels,
                parts: vec![(block, chunks)],
            }),
        }
    }
    merged
}

fn wire_chunk(chunk: &Chunk) -> strata_tsdb::Result<thanos::Chunk> {
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
        data: chunk.data.clone(),
    })
}

/// The wire chunk for `chunk` and its number of samples: raw chunks go in `raw`; aggregate
/// chunks of downsampled blocks fill only the requested aggregates.
fn to_aggr_chunk(
    meta: &ChunkMeta,
    chunk: &Chunk,
    aggregates: &[i32],
) -> strata_tsdb::Result<(thanos::AggrChunk, u64)> {
    let mut out = thanos::AggrChunk {
        min_time: meta.min_time,
        max_time: meta.max_time,
        ..Default::default()
    };
    if chunk.encoding != Encoding::Aggr {
        out.raw = Some(wire_chunk(chunk)?);
        return Ok((out, u64::from(chunk.num_samples().unwrap_or(0))));
    }
    let aggr = AggrChunk::decode(&chunk.data)?;
    let mut samples = 0u64;
    for requested in aggregates {
        let (kind, slot) = match thanos::Aggr::try_from(*requested) {
            Ok(thanos::Aggr::Count) => (AggrType::Count, &mut out.count),
            Ok(thanos::Aggr::Sum) => (AggrType::Sum, &mut out.sum),
            Ok(thanos::Aggr::Min) => (AggrType::Min, &mut out.min),
            Ok(thanos::Aggr::Max) => (AggrType::Max, &mut out.max),
            Ok(thanos::Aggr::Counter) => (AggrType::Counter, &mut out.counter),
            Ok(thanos::Aggr::Raw) | Err(_) => continue,
        };
        if let Some(sub) = aggr.get(kind) {
            samples = samples.max(u64::from(sub.num_samples().unwrap_or(0)));
            *slot = Some(wire_chunk(sub)?);
        }
    }
    Ok((out, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_series_by_the_selected_labels() {
        let series: Vec<Labels> = (0..60)
            .map(|i| Labels::from_pairs([("a", format!("{}", i % 6)), ("b", format!("{i}"))]))
            .collect();
        let shard = |index: i64, by: bool| thanos::ShardInfo {
            shard_index: index,
            total_shards: 3,
            by,
            labels: vec!["a".to_owned()],
        };
        for by in [true, false] {
            for labels in &series {
                let owners = (0..3).filter(|i| in_shard(labels, &shard(*i, by))).count();
                assert_eq!(owners, 1, "{labels} belongs to exactly one shard");
            }
        }
        // Sharding by `a` keeps series with the same `a` together.
        for labels in &series {
            let twin = Labels::from_pairs([("a", labels.get("a").unwrap_or("")), ("b", "other")]);
            assert_eq!(
                in_shard(labels, &shard(1, true)),
                in_shard(&twin, &shard(1, true))
            );
        }
        let unsharded = thanos::ShardInfo::default();
        assert!(series.iter().all(|l| in_shard(l, &unsharded)));
    }

    #[test]
    fn merge_joins_identical_label_sets_in_order() {
        let meta = |t: i64| ChunkMeta {
            min_time: t,
            max_time: t + 1,
            chunk_ref: strata_tsdb::chunks::ChunkRef(t as u64),
        };
        let labels = |v: &str| Labels::from_pairs([("x", v)]);
        let merged = merge(vec![
            (
                0,
                vec![
                    BlockSeries {
                        labels: labels("a"),
                        chunks: vec![meta(0)],
                    },
                    BlockSeries {
                        labels: labels("c"),
                        chunks: vec![meta(1)],
                    },
                ],
            ),
            (
                1,
                vec![BlockSeries {
                    labels: labels("a"),
                    chunks: vec![meta(2)],
                }],
            ),
            (
                2,
                vec![BlockSeries {
                    labels: labels("b"),
                    chunks: vec![meta(3)],
                }],
            ),
        ]);
        let order: Vec<String> = merged.iter().map(|m| m.labels.to_string()).collect();
        assert_eq!(order, [r#"{x="a"}"#, r#"{x="b"}"#, r#"{x="c"}"#]);
        let blocks: Vec<usize> = merged[0].parts.iter().map(|(b, _)| *b).collect();
        assert_eq!(blocks, [0, 1]);
    }
}
