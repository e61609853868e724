//! The k-way merge of the blocks' series streams of one Series call: each block's batches
//! arrive in final-label order ([`super::block_series`]); a heap over the blocks' next series
//! yields the call's series in order, joining identical label sets from several blocks (or
//! replicas made identical by `without_replica_labels`) into one. Labels are moved, never
//! cloned. A block whose stream fails is reported once and leaves the merge; the caller turns
//! that into a warning or an error. Dropping the merge aborts the block producers.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};

use strata_tsdb::index::ChunkMeta;
use tokio::task::JoinSet;

use super::block_series::{BlockBatches, BlockSeries};
use super::series_key::SeriesKey;
use crate::error::Error;

/// One series of the result: its labels and, per block (index into the call's block list),
/// the chunks to read.
#[derive(Debug)]
pub(super) struct MergedSeries {
    pub labels: SeriesKey,
    pub parts: Vec<(usize, Vec<ChunkMeta>)>,
}

/// What the merge yields next.
#[derive(Debug)]
pub(super) enum MergeItem {
    Series(MergedSeries),
    /// The block (index into the call's block list) failed; its stream is closed.
    BlockFailed(usize, Error),
}

struct Source {
    block: usize,
    batches: BlockBatches,
    queue: VecDeque<BlockSeries>,
}

struct Head {
    series: BlockSeries,
    source: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        self.series
            .labels
            .cmp(&other.series.labels)
            .then(self.source.cmp(&other.source))
    }
}

/// The merge over the block streams of one call.
pub(super) struct BlockMerge {
    sources: Vec<Source>,
    heap: BinaryHeap<Reverse<Head>>,
    failures: VecDeque<(usize, Error)>,
    started: bool,
    /// The block producers; aborted when the merge is dropped.
    _tasks: JoinSet<()>,
}

impl BlockMerge {
    /// A merge over `(block index, batches)` produced by `tasks`.
    pub fn new(streams: Vec<(usize, BlockBatches)>, tasks: JoinSet<()>) -> Self {
        BlockMerge {
            sources: streams
                .into_iter()
                .map(|(block, batches)| Source {
                    block,
                    batches,
                    queue: VecDeque::new(),
                })
                .collect(),
            heap: BinaryHeap::new(),
            failures: VecDeque::new(),
            started: false,
            _tasks: tasks,
        }
    }

    /// The next series in final-label order, a block failure, or `None` at the end.
    pub async fn next(&mut self) -> Option<MergeItem> {
        if !self.started {
            self.started = true;
            for source in 0..self.sources.len() {
                self.refill(source).await;
            }
        }
        if let Some((block, err)) = self.failures.pop_front() {
            return Some(MergeItem::BlockFailed(block, err));
        }
        let Reverse(first) = self.heap.pop()?;
        let mut merged = MergedSeries {
            labels: first.series.labels,
            parts: vec![(self.block_of(first.source), first.series.chunks)],
        };
        self.refill(first.source).await;
        while let Some(Reverse(next)) = self.heap.peek() {
            if next.series.labels != merged.labels {
                break;
            }
            let Some(Reverse(next)) = self.heap.pop() else {
                break;
            };
            merged
                .parts
                .push((self.block_of(next.source), next.series.chunks));
            self.refill(next.source).await;
        }
        Some(MergeItem::Series(merged))
    }

    fn block_of(&self, source: usize) -> usize {
        self.sources.get(source).map_or(usize::MAX, |s| s.block)
    }

    /// Puts the next series of `source` on the heap, waiting for its next batch if needed.
    async fn refill(&mut self, index: usize) {
        let Some(source) = self.sources.get_mut(index) else {
            return;
        };
        loop {
            if let Some(series) = source.queue.pop_front() {
                self.heap.push(Reverse(Head {
                    series,
                    source: index,
                }));
                return;
            }
            match source.batches.recv().await {
                Some(Ok(batch)) => source.queue = batch.into(),
                Some(Err(err)) => {
                    source.batches.close();
                    self.failures.push_back((source.block, err));
                    return;
                }
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use strata_tsdb::chunks::ChunkRef;
    use tokio::sync::mpsc;

    use super::*;

    fn series(value: &str, t: i64) -> BlockSeries {
        let mut labels = SeriesKey::default();
        labels.push("x", value);
        BlockSeries {
            labels,
            chunks: vec![ChunkMeta {
                min_time: t,
                max_time: t + 1,
                chunk_ref: ChunkRef(t as u64),
            }],
        }
    }

    async fn stream(batches: Vec<Vec<BlockSeries>>) -> BlockBatches {
        let (sender, receiver) = mpsc::channel(batches.len().max(1));
        for batch in batches {
            sender.send(Ok(batch)).await.expect("send");
        }
        receiver
    }

    #[tokio::test]
    async fn joins_identical_label_sets_in_order_across_batches() {
        let merge_input = vec![
            (
                0,
                stream(vec![vec![series("a", 0)], vec![series("c", 1)]]).await,
            ),
            (1, stream(vec![vec![series("a", 2)]]).await),
            (2, stream(vec![vec![series("b", 3)]]).await),
        ];
        let mut merge = BlockMerge::new(merge_input, JoinSet::new());
        let mut order = Vec::new();
        while let Some(item) = merge.next().await {
            let MergeItem::Series(merged) = item else {
                panic!("no failure expected");
            };
            let blocks: Vec<usize> = merged.parts.iter().map(|(b, _)| *b).collect();
            order.push((merged.labels.to_labels().to_string(), blocks));
        }
        assert_eq!(
            order,
            [
                (r#"{x="a"}"#.to_owned(), vec![0, 1]),
                (r#"{x="b"}"#.to_owned(), vec![2]),
                (r#"{x="c"}"#.to_owned(), vec![0]),
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_block_is_reported_and_the_rest_continues() {
        let (sender, failing) = mpsc::channel(2);
        sender.send(Ok(vec![series("a", 0)])).await.expect("send");
        sender.send(Err(Error::NotReady)).await.expect("send");
        drop(sender);
        let mut merge = BlockMerge::new(
            vec![(0, failing), (1, stream(vec![vec![series("b", 1)]]).await)],
            JoinSet::new(),
        );
        let mut seen = Vec::new();
        while let Some(item) = merge.next().await {
            seen.push(match item {
                MergeItem::Series(merged) => merged.labels.to_labels().to_string(),
                MergeItem::BlockFailed(block, _) => format!("failed {block}"),
            });
        }
        assert_eq!(seen, [r#"{x="a"}"#, "failed 0", r#"{x="b"}"#]);
    }
}
