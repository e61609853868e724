//! One block's part of a Series call, streamed: the block's postings are evaluated, then its
//! series entries are read a batch at a time, decoded on the blocking pool (symbols, chunk
//! metas trimmed to the range, labels finalized, shard filter) and handed on in final-label
//! order ([`strata_common::storeapi::final_order`]) through a small bounded channel. The merge
//! ([`super::merge`]) pulls from every block's channel, so memory holds a window of series per
//! block, never a block's whole answer; when the merge is dropped (the client left) the
//! producers are aborted.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use futures::future::try_join_all;
use strata_common::storeapi::final_order::{Finalized, Resorter};
use strata_proto::thanos;
use strata_tsdb::index::ChunkMeta;
use strata_tsdb::labels::Matcher;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use xxhash_rust::xxh64::xxh64;

use super::series_key::SeriesKey;
use crate::block::{BucketBlock, decode_series_entry};
use crate::error::{Error, Result, blocking};
use crate::metrics::{DataTypeLabels, StoreMetrics};
use crate::postings::{evaluate, plan};

/// Series (over all blocks of one call) read per round of index requests: each block reads
/// `SERIES_WINDOW / blocks` entries at a time, between 64 and 2048. A block holds about three
/// batches at once (one being decoded, [`BLOCK_CHANNEL_BATCHES`] waiting, one in the merge), so
/// a call holds some `3 * SERIES_WINDOW` decoded entries (labels and chunk metas, ~700 bytes
/// each: ~35 MB) whatever the number of blocks. Measured on 10k series x 24 h in 12 blocks:
/// 32,768 with two batches waiting held 123 MiB of RSS for the call, this 95 MiB, at the same
/// throughput (half the window with two batches waiting: 81 MiB but 7% slower).
const SERIES_WINDOW: usize = 16_384;
/// A block's first batch: batches double from here to the call's size, so the merge (which
/// needs every block's first series before it emits one) starts after 48 x 32 entries of a
/// 48-block call rather than 48 x 341.
const FIRST_BATCH: usize = 32;
/// Batches waiting between a block's producer and the merge.
const BLOCK_CHANNEL_BATCHES: usize = 1;

/// One series of one block, labels finalized, chunk metas trimmed to the request's range.
#[derive(Debug)]
pub(super) struct BlockSeries {
    pub labels: SeriesKey,
    pub chunks: Vec<ChunkMeta>,
}

/// The re-sorter of one block's series, by their final labels' keys.
type KeyResorter = Resorter<Vec<ChunkMeta>, SeriesKey>;

/// The request fields the per-block work needs.
#[derive(Debug, Clone)]
pub(super) struct Selection {
    pub min_time: i64,
    pub max_time: i64,
    pub without_replica: Vec<String>,
    pub shard: Option<thanos::ShardInfo>,
    /// Keep series without chunks in the range (label queries over whole blocks).
    pub keep_chunkless: bool,
}

/// The batches of one block, in final-label order; an error ends them.
pub(super) type BlockBatches = mpsc::Receiver<Result<Vec<BlockSeries>>>;

/// What every block producer of one call shares.
#[derive(Debug, Clone)]
pub(super) struct BlockReadContext {
    pub selection: Arc<Selection>,
    pub metrics: StoreMetrics,
    /// `--store.limits.request-series` (0 = none), checked early against each block's postings.
    pub series_limit: u64,
    /// Index reads in flight for the whole call.
    pub io: Arc<Semaphore>,
    /// Entries per index read.
    pub batch: usize,
}

impl BlockReadContext {
    pub fn batch_for(blocks: usize) -> usize {
        (SERIES_WINDOW / blocks.max(1)).clamp(64, 2048)
    }
}

/// Starts reading `block` for `matchers` on `tasks`; returns its batches.
pub(super) fn spawn(
    tasks: &mut JoinSet<()>,
    context: BlockReadContext,
    block: Arc<BucketBlock>,
    matchers: Vec<Matcher>,
) -> BlockBatches {
    let (sender, receiver) = mpsc::channel(BLOCK_CHANNEL_BATCHES);
    tasks.spawn(async move {
        if let Err(err) = read_block(&context, &block, matchers, &sender).await {
            let _ = sender.send(Err(err)).await;
        }
    });
    receiver
}

async fn read_block(
    context: &BlockReadContext,
    block: &Arc<BucketBlock>,
    matchers: Vec<Matcher>,
    sender: &mpsc::Sender<Result<Vec<BlockSeries>>>,
) -> Result<()> {
    let metrics = &context.metrics;
    let refs = {
        let _permit = context.io.acquire().await.map_err(|_| Error::Join {
            reason: "series read gate closed".to_owned(),
        })?;
        let header = block.header().await?;
        let planned = {
            let header = Arc::clone(&header);
            blocking(move || Ok(plan(&header, &matchers))).await?
        };
        let Some(groups) = planned else {
            metrics.empty_postings.inc();
            return Ok(());
        };
        let lists = try_join_all(
            groups
                .iter()
                .map(|group| block.postings(&group.name, &group.entries)),
        )
        .await?;
        let touched_postings: usize = lists.iter().map(Vec::len).sum();
        metrics
            .series_data_touched
            .get_or_create(&DataTypeLabels {
                data_type: "postings",
            })
            .observe(touched_postings as f64);
        blocking(move || Ok(evaluate(&groups, &lists).iter().collect::<Vec<u32>>())).await?
    };
    if refs.is_empty() {
        metrics.empty_postings.inc();
        return Ok(());
    }
    if context.series_limit > 0 && refs.len() as u64 > context.series_limit {
        return Err(Error::Limit {
            what: "series",
            limit: context.series_limit,
        });
    }
    metrics
        .series_data_touched
        .get_or_create(&DataTypeLabels {
            data_type: "series",
        })
        .observe(refs.len() as f64);
    let mut resorter: KeyResorter =
        Resorter::new(block.external_labels(), &context.selection.without_replica);
    let mut left = refs.as_slice();
    let mut size = FIRST_BATCH.min(context.batch);
    while !left.is_empty() {
        let batch;
        (batch, left) = left.split_at(size.min(left.len()));
        size = (size * 2).min(context.batch);
        let decoded = {
            let _permit = context.io.acquire().await.map_err(|_| Error::Join {
                reason: "series read gate closed".to_owned(),
            })?;
            let raw = block.series_bytes(batch).await?;
            let header = block.header().await?;
            let batch = batch.to_vec();
            let block = Arc::clone(block);
            let selection = Arc::clone(&context.selection);
            blocking(move || {
                let out = decode_batch(&block, &header, &selection, &batch, &raw, &mut resorter);
                out.map(|out| (resorter, out))
            })
            .await?
        };
        let out;
        (resorter, out) = decoded;
        if !out.is_empty() && sender.send(Ok(out)).await.is_err() {
            return Ok(());
        }
    }
    let mut rest = Vec::with_capacity(resorter.buffered());
    while let Some((labels, chunks)) = resorter.pop_finished() {
        rest.push(BlockSeries { labels, chunks });
    }
    if !rest.is_empty() {
        let _ = sender.send(Ok(rest)).await;
    }
    Ok(())
}

/// Decodes one batch of entries into `resorter` and returns what it lets go.
fn decode_batch(
    block: &BucketBlock,
    header: &crate::index_header::IndexHeader,
    selection: &Selection,
    refs: &[u32],
    raw: &[bytes::Bytes],
    resorter: &mut KeyResorter,
) -> Result<Vec<BlockSeries>> {
    let block_id = block.ulid();
    let decode_error = |source| Error::Decode {
        block: block_id,
        object: "index".to_owned(),
        source,
    };
    // Label names and many values repeat from series to series: each symbol is looked up in
    // the index (a scan of up to 31 entries from its sample) once per batch.
    let symbols = header.symbols();
    let mut seen: HashMap<u32, &str, foldhash::fast::RandomState> = HashMap::default();
    let mut lookup = |symbol: u32| -> Result<&str> {
        if let Some(found) = seen.get(&symbol) {
            return Ok(found);
        }
        let found = symbols.lookup(symbol).map_err(decode_error)?;
        seen.insert(symbol, found);
        Ok(found)
    };
    let mut out = Vec::new();
    let mut source: Vec<(&str, &str)> = Vec::new();
    let mut key_bytes = 64;
    for (&series_ref, bytes) in refs.iter().zip(raw) {
        let entry = decode_series_entry(bytes, series_ref).map_err(decode_error)?;
        let chunks: Vec<ChunkMeta> = entry
            .chunks
            .into_iter()
            .filter(|chunk| {
                chunk.max_time >= selection.min_time && chunk.min_time <= selection.max_time
            })
            .collect();
        if chunks.is_empty() && !selection.keep_chunkless {
            continue;
        }
        source.clear();
        for &(name, value) in &entry.labels {
            source.push((lookup(name)?, lookup(value)?));
        }
        // Index entries list labels by name; anything else is sorted (and deduplicated by
        // name, the first kept) as `Labels::new` would.
        if source.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
            source.sort_by(|a, b| a.0.cmp(b.0));
            source.dedup_by(|later, earlier| later.0 == earlier.0);
        }
        let finalized = finalize_key(resorter, &source, key_bytes);
        key_bytes = key_bytes.max(finalized.labels.len());
        if let Some(shard) = &selection.shard
            && !in_shard(&finalized.labels, shard)
        {
            continue;
        }
        resorter.push_finalized(finalized, chunks);
        while let Some((labels, chunks)) = resorter.pop_ready() {
            out.push(BlockSeries { labels, chunks });
        }
    }
    Ok(out)
}

/// The key of `source`'s final labels (sorted by name) and its bound, as
/// [`Resorter::finalize`] makes them for [`strata_tsdb::labels::Labels`]: external labels
/// merged in (their value wins on a name clash), replica labels dropped; the bound is the
/// final labels before the first source label that can move a later series before this one
/// (or, if none can, up to the source's last name).
fn finalize_key(
    resorter: &KeyResorter,
    source: &[(&str, &str)],
    capacity: usize,
) -> Finalized<SeriesKey> {
    let stop = source
        .iter()
        .position(|(name, _)| resorter.can_move_later(name));
    let stop_name = stop.and_then(|at| source.get(at)).map(|(name, _)| *name);
    let last_name = source.last().map(|(name, _)| *name);
    let external_below = |name: &str| match stop_name {
        Some(stop) => name < stop,
        None => last_name.is_some_and(|last| name <= last),
    };
    let mut key = SeriesKey::with_capacity(capacity);
    let mut bound = 0;
    let mut below = true;
    let mut push = |name: &str, value: &str, is_below: bool, key: &mut SeriesKey| {
        if !resorter.drops(name) {
            key.push(name, value);
            below &= is_below;
            if below {
                bound = key.len();
            }
        }
    };
    let external = resorter.external().as_slice();
    let (mut own, mut ext) = (0, 0);
    loop {
        // Less: the series' own label next; Greater: an external one; Equal: the external
        // value wins and the series' own label of that name is dropped.
        let next = match (source.get(own), external.get(ext)) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(&(name, _)), Some(label)) => name.cmp(label.name.as_str()),
        };
        if next == Ordering::Less {
            if let Some(&(name, value)) = source.get(own) {
                push(name, value, stop.is_none_or(|stop| own < stop), &mut key);
            }
        } else if let Some(label) = external.get(ext) {
            push(
                &label.name,
                &label.value,
                external_below(&label.name),
                &mut key,
            );
        }
        own += usize::from(next != Ordering::Greater);
        ext += usize::from(next != Ordering::Less);
    }
    Finalized::new(key, bound)
}

/// Does the finalized label set belong to the requested shard (thanos.md 1.2 ShardInfo)?
pub(super) fn in_shard(labels: &SeriesKey, shard: &thanos::ShardInfo) -> bool {
    if shard.total_shards < 1 {
        return true;
    }
    let mut buffer = Vec::with_capacity(256);
    for (name, value) in labels.labels() {
        let listed = shard.labels.iter().any(|listed| *listed == name);
        if listed == shard.by {
            buffer.extend_from_slice(name.as_bytes());
            buffer.push(0xff);
            buffer.extend_from_slice(value.as_bytes());
            buffer.push(0xff);
        }
    }
    let total = u64::try_from(shard.total_shards).unwrap_or(1);
    let index = u64::try_from(shard.shard_index).unwrap_or(u64::MAX);
    xxh64(&buffer, 0) % total == index
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use strata_common::storeapi::external::finalize_labels;
    use strata_tsdb::labels::Labels;

    use super::*;

    fn key(labels: &Labels) -> SeriesKey {
        SeriesKey::from_labels(labels)
    }

    #[test]
    fn shards_partition_series_by_the_selected_labels() {
        let series: Vec<SeriesKey> = (0..60)
            .map(|i| {
                key(&Labels::from_pairs([
                    ("a", format!("{}", i % 6)),
                    ("b", format!("{i}")),
                ]))
            })
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
                assert_eq!(owners, 1, "{labels:?} belongs to exactly one shard");
            }
        }
        // Sharding by `a` keeps series with the same `a` together.
        for labels in &series {
            let a = labels.to_labels().get("a").unwrap_or("").to_owned();
            let twin = key(&Labels::from_pairs([("a", a.as_str()), ("b", "other")]));
            assert_eq!(
                in_shard(labels, &shard(1, true)),
                in_shard(&twin, &shard(1, true))
            );
        }
        let unsharded = thanos::ShardInfo::default();
        assert!(series.iter().all(|l| in_shard(l, &unsharded)));
    }

    fn arbitrary_labels() -> impl Strategy<Value = Labels> {
        prop::collection::btree_map(
            prop::sample::select(vec!["__name__", "a", "b", "c", "d", "e", "r"]),
            prop::sample::select(vec!["", "0", "1", "2"]),
            0..6,
        )
        .prop_map(|map| Labels::from_pairs(map.into_iter().filter(|(_, value)| !value.is_empty())))
    }

    proptest! {
        /// The key path makes the labels and the bound the `Labels` path makes.
        #[test]
        fn keys_finalize_as_labels_do(
            source in arbitrary_labels(),
            external in prop::collection::btree_map(
                prop::sample::select(vec!["b", "c", "e", "z"]),
                prop::sample::select(vec!["0", "1", "x"]),
                0..3,
            ),
            strip_r in any::<bool>(),
            strip_c in any::<bool>(),
        ) {
            let external = Labels::from_pairs(external);
            let mut without = Vec::new();
            if strip_r { without.push("r".to_owned()); }
            if strip_c { without.push("c".to_owned()); }
            let by_labels: Resorter<()> = Resorter::new(&external, &without);
            let by_key: KeyResorter = Resorter::new(&external, &without);
            let want = by_labels.finalize(source.clone());
            let pairs: Vec<(&str, &str)> =
                source.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
            let got = finalize_key(&by_key, &pairs, 0);
            prop_assert_eq!(got.labels.to_labels(), finalize_labels(&source, &external, &without));
            prop_assert_eq!(&got.labels.to_labels(), &want.labels);
            let bound = want.labels.as_slice().get(..want.bound_len()).unwrap_or(&[]);
            prop_assert_eq!(got.bound_len(), key(&Labels::from_sorted(bound.to_vec())).len());
        }
    }
}
