//! Byte-bounded in-memory caches (moka, TinyLFU admission, foldhash): the index cache holds
//! decoded postings lists and [`crate::block::INDEX_PIECE`]-sized aligned pieces of the index
//! holding series entries (`--index-cache-size`), the chunk cache holds [`SUBRANGE`]-sized
//! aligned pieces of chunk segment files (`--chunk-pool-size`), Thanos's caching-bucket idea:
//! one entry serves every entry or chunk in it, so a query touching 120k series entries and
//! 480k chunks costs ~10k lookups instead of 600k, and the per-entry overhead stays small next
//! to the bytes. Every value is weighed by the bytes it holds, and cached bytes are always copies,
//! never slices of a larger fetch buffer (a slice would pin the whole buffer and make the
//! weight a lie).

use std::sync::Arc;

use bytes::Bytes;
use foldhash::fast::RandomState;
use moka::notification::RemovalCause;
use roaring::RoaringBitmap;
use ulid::Ulid;

use crate::metrics::{ItemTypeLabels, StoreMetrics};

/// Bytes of one cached piece of a chunk segment file; pieces start at multiples of it.
pub const SUBRANGE: u64 = 16 * 1024;

/// A cached piece of a segment file: block, segment number, piece index (offset / SUBRANGE).
pub type SubrangeKey = (Ulid, u32, u64);

/// Key of an index cache item.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IndexKey {
    Postings {
        block: Ulid,
        name: String,
        value: String,
    },
    /// An [`crate::block::INDEX_PIECE`]-sized aligned piece of the index file, holding series
    /// entries (Thanos's item type "Series").
    Series { block: Ulid, piece: u64 },
}

impl IndexKey {
    fn item_type(&self) -> &'static str {
        match self {
            IndexKey::Postings { .. } => "Postings",
            IndexKey::Series { .. } => "Series",
        }
    }

    fn size(&self) -> usize {
        match self {
            IndexKey::Postings { name, value, .. } => 48 + name.len() + value.len(),
            IndexKey::Series { .. } => 32,
        }
    }
}

/// Value of an index cache item.
#[derive(Debug, Clone)]
pub enum IndexValue {
    Postings(Arc<RoaringBitmap>),
    Series(Bytes),
}

impl IndexValue {
    fn size(&self) -> usize {
        match self {
            IndexValue::Postings(bitmap) => bitmap.serialized_size() + 32,
            IndexValue::Series(bytes) => bytes.len() + 32,
        }
    }
}

/// The caches shared by all blocks.
#[derive(Clone)]
pub struct Caches {
    index: moka::sync::Cache<IndexKey, IndexValue, RandomState>,
    chunks: moka::sync::Cache<SubrangeKey, Bytes, RandomState>,
    metrics: StoreMetrics,
    /// Index items larger than this are not cached (`max_item_size`).
    max_index_item: u64,
    /// Index item types cached (`enabled_items`); empty caches all.
    index_items: Arc<[String]>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("index_bytes", &self.index.weighted_size())
            .field("chunk_bytes", &self.chunks.weighted_size())
            .finish()
    }
}

/// Bytes moka itself keeps per entry (entry, key and deque nodes, hash table slot); counted so
/// that many small items cannot exceed the bound in real memory.
const ENTRY_OVERHEAD: usize = 192;

fn weight(bytes: usize) -> u32 {
    u32::try_from(bytes.saturating_add(ENTRY_OVERHEAD)).unwrap_or(u32::MAX)
}

impl Caches {
    /// Caches bounded by `index_bytes` and `chunk_bytes`.
    pub fn new(index_bytes: u64, chunk_bytes: u64, metrics: StoreMetrics) -> Self {
        let evicted = metrics.cache_items_evicted.clone();
        let index = moka::sync::Cache::builder()
            .max_capacity(index_bytes)
            .weigher(|key: &IndexKey, value: &IndexValue| weight(key.size() + value.size()))
            .eviction_listener(move |key: Arc<IndexKey>, _, cause: RemovalCause| {
                if cause.was_evicted() {
                    evicted
                        .get_or_create(&ItemTypeLabels {
                            item_type: key.item_type(),
                        })
                        .inc();
                }
            })
            .build_with_hasher(RandomState::default());
        let evicted = metrics.cache_items_evicted.clone();
        let chunks = moka::sync::Cache::builder()
            .max_capacity(chunk_bytes)
            .weigher(|_: &SubrangeKey, bytes: &Bytes| weight(bytes.len() + 32))
            .eviction_listener(move |_, _, cause: RemovalCause| {
                if cause.was_evicted() {
                    evicted
                        .get_or_create(&ItemTypeLabels {
                            item_type: "chunks",
                        })
                        .inc();
                }
            })
            .build_with_hasher(RandomState::default());
        Caches {
            index,
            chunks,
            metrics,
            max_index_item: u64::MAX,
            index_items: Arc::from(Vec::new()),
        }
    }

    /// Applies the index cache config's `max_item_size` and `enabled_items`.
    pub fn with_index_item_limits(
        mut self,
        max_item_size: u64,
        enabled_items: Vec<String>,
    ) -> Self {
        self.max_index_item = max_item_size;
        self.index_items = Arc::from(enabled_items);
        self
    }

    fn count(&self, item_type: &'static str, hit: bool) {
        self.count_many(item_type, 1, u64::from(hit));
    }

    /// Counts `requests` lookups of which `hits` hit, with one metric update each.
    fn count_many(&self, item_type: &'static str, requests: u64, hits: u64) {
        let labels = ItemTypeLabels { item_type };
        self.metrics
            .cache_requests
            .get_or_create(&labels)
            .inc_by(requests);
        if hits > 0 {
            self.metrics.cache_hits.get_or_create(&labels).inc_by(hits);
        }
    }

    pub fn get_index(&self, key: &IndexKey) -> Option<IndexValue> {
        let value = self.index.get(key);
        self.count(key.item_type(), value.is_some());
        value
    }

    /// Adds the cached index pieces among `indices` of `block` to `found` and returns the
    /// indices that missed, counting the lookups once for the whole batch.
    pub fn get_index_pieces(
        &self,
        block: Ulid,
        indices: &[u64],
        found: &mut crate::block::Pieces,
    ) -> Vec<u64> {
        let mut misses = Vec::new();
        for &piece in indices {
            match self.index.get(&IndexKey::Series { block, piece }) {
                Some(IndexValue::Series(bytes)) => {
                    found.insert(piece, bytes);
                }
                _ => misses.push(piece),
            }
        }
        let requests = indices.len() as u64;
        self.count_many("Series", requests, requests - misses.len() as u64);
        misses
    }

    pub fn put_index(&self, key: IndexKey, value: IndexValue) {
        let item_type = key.item_type();
        let size = u64::try_from(key.size().saturating_add(value.size())).unwrap_or(u64::MAX);
        if size > self.max_index_item
            || (!self.index_items.is_empty() && !self.index_items.iter().any(|t| t == item_type))
        {
            return;
        }
        self.metrics
            .cache_items_added
            .get_or_create(&ItemTypeLabels {
                item_type: key.item_type(),
            })
            .inc();
        self.index.insert(key, value);
    }

    /// The cached pieces among `indices` of segment `segment` of `block`, and the indices that
    /// missed, counting the lookups once for the whole batch.
    pub fn get_subranges(
        &self,
        block: Ulid,
        segment: u32,
        indices: impl IntoIterator<Item = u64>,
    ) -> (crate::block::Pieces, Vec<u64>) {
        let mut hits = crate::block::Pieces::default();
        let mut misses = Vec::new();
        let mut requests = 0u64;
        for index in indices {
            requests += 1;
            match self.chunks.get(&(block, segment, index)) {
                Some(bytes) => {
                    hits.insert(index, bytes);
                }
                None => misses.push(index),
            }
        }
        self.count_many("chunks", requests, hits.len() as u64);
        (hits, misses)
    }

    /// Caches piece `index` of segment `segment` of `block` (`bytes` must be its own copy).
    pub fn put_subrange(&self, block: Ulid, segment: u32, index: u64, bytes: Bytes) {
        self.metrics
            .cache_items_added
            .get_or_create(&ItemTypeLabels {
                item_type: "chunks",
            })
            .inc();
        self.chunks.insert((block, segment, index), bytes);
    }

    /// Bytes currently held (index, chunks), after pending maintenance.
    pub fn weighted_sizes(&self) -> (u64, u64) {
        self.index.run_pending_tasks();
        self.chunks.run_pending_tasks();
        (self.index.weighted_size(), self.chunks.weighted_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caches_stay_within_their_byte_bounds() {
        let caches = Caches::new(64 * 1024, 32 * 1024, StoreMetrics::unregistered());
        let block = Ulid::new();
        for series_ref in 0..1000u32 {
            caches.put_index(
                IndexKey::Series {
                    block,
                    piece: u64::from(series_ref),
                },
                IndexValue::Series(Bytes::from(vec![0u8; 512])),
            );
            caches.put_subrange(block, 0, u64::from(series_ref), Bytes::from(vec![1u8; 400]));
        }
        let (index, chunks) = caches.weighted_sizes();
        assert!(index <= 64 * 1024, "index cache holds {index} bytes");
        assert!(chunks <= 32 * 1024, "chunk cache holds {chunks} bytes");
        assert!(index > 0 && chunks > 0);
        let postings = IndexKey::Postings {
            block,
            name: "a".into(),
            value: "b".into(),
        };
        let bitmap: RoaringBitmap = (0..100).collect();
        let caches = Caches::new(64 * 1024, 32 * 1024, StoreMetrics::unregistered());
        caches.put_index(postings.clone(), IndexValue::Postings(Arc::new(bitmap)));
        caches.index.run_pending_tasks();
        let hit = caches.get_index(&postings);
        assert!(matches!(hit, Some(IndexValue::Postings(b)) if b.len() == 100));
    }
}
