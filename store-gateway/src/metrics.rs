//! The store gateway's metrics, with Thanos's names and labels (reference/thanos.md 7.1, 7.2) so
//! that Thanos's dashboards and alerts work unchanged: `thanos_bucket_store_*` (block loading,
//! series calls, the series gate), `thanos_store_index_cache_*` and `thanos_blocks_meta_*`.
//! Counters are registered without `_total`; prometheus-client appends it.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ItemTypeLabels {
    pub item_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DataTypeLabels {
    pub data_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

fn duration_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.01, 0.1, 0.3, 0.6, 1.0, 3.0, 6.0, 9.0, 20.0, 30.0, 60.0, 90.0, 120.0,
    ])
}

fn count_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 4.0, 12))
}

/// Block sync states of `thanos_blocks_meta_synced`, as Thanos names them.
pub const SYNC_STATES: [&str; 9] = [
    "loaded",
    "failed",
    "no-meta-json",
    "corrupted-meta-json",
    "label-excluded",
    "time-excluded",
    "too-fresh",
    "marked-for-deletion",
    "duplicate",
];

/// Every metric of the store gateway.
#[derive(Debug, Clone)]
pub struct StoreMetrics {
    pub blocks_loaded: Gauge,
    pub block_loads: Counter,
    pub block_load_failures: Counter,
    pub block_drops: Counter,
    pub block_drop_failures: Counter,
    pub block_load_duration: Histogram,
    pub blocks_last_loaded_timestamp: Gauge<f64, AtomicU64>,
    pub series_data_touched: Family<DataTypeLabels, Histogram>,
    pub series_data_fetched: Family<DataTypeLabels, Histogram>,
    pub series_data_size_touched_bytes: Family<DataTypeLabels, Histogram>,
    pub series_data_size_fetched_bytes: Family<DataTypeLabels, Histogram>,
    pub series_blocks_queried: Histogram,
    pub series_get_all_duration: Histogram,
    pub series_merge_duration: Histogram,
    pub series_result_series: Histogram,
    pub queries_dropped: Family<ReasonLabels, Counter>,
    pub empty_postings: Counter,
    pub series_refetches: Counter,
    pub chunk_refetches: Counter,
    pub gate_queries_max: Gauge,
    pub gate_queries_in_flight: Gauge,
    pub gate_queries_total: Counter,
    pub gate_duration: Histogram,
    pub lazy_load: Counter,
    pub lazy_load_failed: Counter,
    pub lazy_unload: Counter,
    pub indexheader_build_duration: Histogram,
    pub cache_requests: Family<ItemTypeLabels, Counter>,
    pub cache_hits: Family<ItemTypeLabels, Counter>,
    pub cache_items_added: Family<ItemTypeLabels, Counter>,
    pub cache_items_evicted: Family<ItemTypeLabels, Counter>,
    pub meta_syncs: Counter,
    pub meta_sync_failures: Counter,
    pub meta_sync_duration: Histogram,
    pub meta_synced: Family<StateLabels, Gauge>,
    pub consistency_delay: Gauge<f64, AtomicU64>,
    /// Cancelled Series calls (`strata_storeapi_series_cancelled_total`).
    pub series_stream: strata_common::storeapi::streaming::SeriesStreamMetrics,
}

impl StoreMetrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::unregistered();
        let m = &metrics;
        registry.register(
            "thanos_bucket_store_blocks_loaded",
            "Number of currently loaded blocks.",
            m.blocks_loaded.clone(),
        );
        registry.register(
            "thanos_bucket_store_block_loads",
            "Total number of remote block loading attempts.",
            m.block_loads.clone(),
        );
        registry.register(
            "thanos_bucket_store_block_load_failures",
            "Total number of failed remote block loading attempts.",
            m.block_load_failures.clone(),
        );
        registry.register(
            "thanos_bucket_store_block_drops",
            "Total number of local blocks that were dropped.",
            m.block_drops.clone(),
        );
        registry.register(
            "thanos_bucket_store_block_drop_failures",
            "Total number of local blocks that failed to be dropped.",
            m.block_drop_failures.clone(),
        );
        registry.register(
            "thanos_bucket_store_block_load_duration_seconds",
            "The total time taken to load a block in seconds.",
            m.block_load_duration.clone(),
        );
        registry.register(
            "thanos_bucket_store_blocks_last_loaded_timestamp_seconds",
            "Timestamp when last block got loaded.",
            m.blocks_last_loaded_timestamp.clone(),
        );
        registry.register(
            "thanos_bucket_store_series_data_touched",
            "Number of items of a data type touched to fulfill a single Store API series request.",
            m.series_data_touched.clone(),
        );
        registry.register("thanos_bucket_store_series_data_fetched", "Number of items of a data type retrieved to fulfill a single Store API series request.", m.series_data_fetched.clone());
        registry.register("thanos_bucket_store_series_data_size_touched_bytes", "Total size of items of a data type touched to fulfill a single Store API series request in Bytes.", m.series_data_size_touched_bytes.clone());
        registry.register("thanos_bucket_store_series_data_size_fetched_bytes", "Total size of items of a data type fetched to fulfill a single Store API series request in Bytes.", m.series_data_size_fetched_bytes.clone());
        registry.register(
            "thanos_bucket_store_series_blocks_queried",
            "Number of blocks in a bucket store that were touched to satisfy a query.",
            m.series_blocks_queried.clone(),
        );
        registry.register(
            "thanos_bucket_store_series_get_all_duration_seconds",
            "Time it takes until all per-block prepares and loads for a query are finished.",
            m.series_get_all_duration.clone(),
        );
        registry.register(
            "thanos_bucket_store_series_merge_duration_seconds",
            "Time it takes to merge sub-results from all queried blocks into a single result.",
            m.series_merge_duration.clone(),
        );
        registry.register(
            "thanos_bucket_store_series_result_series",
            "Number of series observed in the final result of a query.",
            m.series_result_series.clone(),
        );
        registry.register(
            "thanos_bucket_store_queries_dropped",
            "Number of queries that were dropped due to the limit.",
            m.queries_dropped.clone(),
        );
        registry.register(
            "thanos_bucket_store_empty_postings",
            "Total number of empty postings when fetching block series.",
            m.empty_postings.clone(),
        );
        registry.register("thanos_bucket_store_series_refetches", "Total number of cases where configured estimated series bytes was not enough was to fetch series from index, resulting in refetch.", m.series_refetches.clone());
        registry.register("thanos_bucket_store_chunk_refetches", "Total number of cases where configured estimated chunk bytes was not enough was to fetch chunks from object store, resulting in refetch.", m.chunk_refetches.clone());
        registry.register(
            "thanos_bucket_store_series_gate_queries_max",
            "Maximum number of concurrently executing queries.",
            m.gate_queries_max.clone(),
        );
        registry.register(
            "thanos_bucket_store_series_gate_queries_in_flight",
            "Number of queries that are currently in flight.",
            m.gate_queries_in_flight.clone(),
        );
        registry.register(
            "thanos_bucket_store_series_gate_queries",
            "Total number of queries.",
            m.gate_queries_total.clone(),
        );
        registry.register(
            "thanos_bucket_store_series_gate_queries_duration_seconds",
            "How many seconds it took for queries to wait at the gate.",
            m.gate_duration.clone(),
        );
        registry.register(
            "thanos_bucket_store_indexheader_lazy_load",
            "Total number of index-header lazy load operations.",
            m.lazy_load.clone(),
        );
        registry.register(
            "thanos_bucket_store_indexheader_lazy_load_failed",
            "Total number of failed index-header lazy load operations.",
            m.lazy_load_failed.clone(),
        );
        registry.register(
            "thanos_bucket_store_indexheader_lazy_unload",
            "Total number of index-header lazy unload operations.",
            m.lazy_unload.clone(),
        );
        registry.register(
            "thanos_bucket_store_indexheader_download_duration_seconds",
            "Duration of the index-header download from objstore in seconds.",
            m.indexheader_build_duration.clone(),
        );
        registry.register(
            "thanos_store_index_cache_requests",
            "Total number of requests to the cache.",
            m.cache_requests.clone(),
        );
        registry.register(
            "thanos_store_index_cache_hits",
            "Total number of requests to the cache that were a hit.",
            m.cache_hits.clone(),
        );
        registry.register(
            "thanos_store_index_cache_items_added",
            "Total number of items that were added to the index cache.",
            m.cache_items_added.clone(),
        );
        registry.register(
            "thanos_store_index_cache_items_evicted",
            "Total number of items that were evicted from the index cache.",
            m.cache_items_evicted.clone(),
        );
        registry.register(
            "thanos_blocks_meta_syncs",
            "Total blocks metadata synchronization attempts",
            m.meta_syncs.clone(),
        );
        registry.register(
            "thanos_blocks_meta_sync_failures",
            "Total blocks metadata synchronization failures",
            m.meta_sync_failures.clone(),
        );
        registry.register(
            "thanos_blocks_meta_sync_duration_seconds",
            "Duration of the blocks metadata synchronization in seconds",
            m.meta_sync_duration.clone(),
        );
        registry.register(
            "thanos_blocks_meta_synced",
            "Number of block metadata synced",
            m.meta_synced.clone(),
        );
        registry.register(
            "thanos_consistency_delay_seconds",
            "Configured consistency delay in seconds.",
            m.consistency_delay.clone(),
        );
        m.series_stream.register_in(registry);
        metrics
    }

    /// The metrics without a registry (tests).
    pub fn unregistered() -> Self {
        let metrics = StoreMetrics {
            blocks_loaded: Gauge::default(),
            block_loads: Counter::default(),
            block_load_failures: Counter::default(),
            block_drops: Counter::default(),
            block_drop_failures: Counter::default(),
            block_load_duration: duration_histogram(),
            blocks_last_loaded_timestamp: Gauge::default(),
            series_data_touched: Family::new_with_constructor(count_histogram),
            series_data_fetched: Family::new_with_constructor(count_histogram),
            series_data_size_touched_bytes: Family::new_with_constructor(count_histogram),
            series_data_size_fetched_bytes: Family::new_with_constructor(count_histogram),
            series_blocks_queried: count_histogram(),
            series_get_all_duration: duration_histogram(),
            series_merge_duration: duration_histogram(),
            series_result_series: count_histogram(),
            queries_dropped: Family::default(),
            empty_postings: Counter::default(),
            series_refetches: Counter::default(),
            chunk_refetches: Counter::default(),
            gate_queries_max: Gauge::default(),
            gate_queries_in_flight: Gauge::default(),
            gate_queries_total: Counter::default(),
            gate_duration: duration_histogram(),
            lazy_load: Counter::default(),
            lazy_load_failed: Counter::default(),
            lazy_unload: Counter::default(),
            indexheader_build_duration: duration_histogram(),
            cache_requests: Family::default(),
            cache_hits: Family::default(),
            cache_items_added: Family::default(),
            cache_items_evicted: Family::default(),
            meta_syncs: Counter::default(),
            meta_sync_failures: Counter::default(),
            meta_sync_duration: duration_histogram(),
            meta_synced: Family::default(),
            consistency_delay: Gauge::default(),
            series_stream: Default::default(),
        };
        for state in SYNC_STATES {
            let _ = metrics.meta_synced.get_or_create(&StateLabels { state });
        }
        for item_type in ["Postings", "Series", "chunks"] {
            let labels = ItemTypeLabels { item_type };
            let _ = metrics.cache_requests.get_or_create(&labels);
            let _ = metrics.cache_hits.get_or_create(&labels);
            let _ = metrics.cache_items_added.get_or_create(&labels);
            let _ = metrics.cache_items_evicted.get_or_create(&labels);
        }
        metrics
    }
}
