//! Thanos's object-storage client metrics (thanos-io/objstore `WrapWithMetrics`), so that the
//! Thanos dashboards and the `ThanosObjstore*`/`ThanosStoreObjstore*` alerts work unchanged:
//! `thanos_objstore_bucket_operations_total`, `..._operation_failures_total`,
//! `..._operation_duration_seconds`, `..._operation_fetched_bytes_total` (labels `bucket`,
//! `operation`) and `thanos_objstore_bucket_last_successful_upload_time` (label `bucket`).
//!
//! As in Thanos, every attempted operation is counted once (retries inside are not), the
//! duration is observed for successful operations only, and a missing object is an expected
//! outcome, not a failure.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::Operation;

/// Thanos's bucket-operation duration buckets, in seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.01, 0.1, 0.3, 0.6, 1.0, 3.0, 6.0, 9.0, 20.0, 30.0, 60.0, 90.0, 120.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabels {
    bucket: String,
    operation: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BucketLabels {
    bucket: String,
}

/// The metric families, registered once per registry and shared by every [`super::Bucket`]
/// that reports into it (the `bucket` label tells them apart).
#[derive(Debug, Clone)]
pub struct BucketMetrics {
    operations: Family<OperationLabels, Counter>,
    failures: Family<OperationLabels, Counter>,
    fetched_bytes: Family<OperationLabels, Counter>,
    duration: Family<OperationLabels, Histogram>,
    last_successful_upload: Family<BucketLabels, Gauge<f64, AtomicU64>>,
}

impl BucketMetrics {
    /// Creates the families and registers them into `registry`. Call once per registry.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::unregistered();
        registry.register(
            "thanos_objstore_bucket_operations",
            "Total number of all attempted operations against a bucket.",
            metrics.operations.clone(),
        );
        registry.register(
            "thanos_objstore_bucket_operation_failures",
            "Total number of operations against a bucket that failed, but were not expected to fail in certain way from caller perspective. Those errors have to be investigated.",
            metrics.failures.clone(),
        );
        registry.register(
            "thanos_objstore_bucket_operation_fetched_bytes",
            "Total number of bytes fetched from bucket, per operation.",
            metrics.fetched_bytes.clone(),
        );
        registry.register(
            "thanos_objstore_bucket_operation_duration_seconds",
            "Duration of successful operations against the bucket",
            metrics.duration.clone(),
        );
        registry.register(
            "thanos_objstore_bucket_last_successful_upload_time",
            "Second timestamp of the last successful upload to the bucket.",
            metrics.last_successful_upload.clone(),
        );
        metrics
    }

    /// Families that are not exported anywhere (tools and tests that want no /metrics).
    pub fn unregistered() -> Self {
        BucketMetrics {
            operations: Family::default(),
            failures: Family::default(),
            fetched_bytes: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS)),
            last_successful_upload: Family::default(),
        }
    }

    /// Creates every series of `bucket` at zero, as Thanos does, so that rates and ratios exist
    /// before the first operation.
    pub(crate) fn init_bucket(&self, bucket: &str) {
        for operation in Operation::ALL {
            let labels = labels(bucket, operation);
            drop(self.operations.get_or_create(&labels));
            drop(self.failures.get_or_create(&labels));
            drop(self.fetched_bytes.get_or_create(&labels));
            drop(self.duration.get_or_create(&labels));
        }
        drop(self.last_successful_upload.get_or_create(&BucketLabels {
            bucket: bucket.to_string(),
        }));
    }

    pub(crate) fn started(&self, bucket: &str, operation: Operation) {
        self.operations
            .get_or_create(&labels(bucket, operation))
            .inc();
    }

    pub(crate) fn failed(&self, bucket: &str, operation: Operation) {
        self.failures
            .get_or_create(&labels(bucket, operation))
            .inc();
    }

    pub(crate) fn succeeded(&self, bucket: &str, operation: Operation, elapsed: Duration) {
        self.duration
            .get_or_create(&labels(bucket, operation))
            .observe(elapsed.as_secs_f64());
        if operation == Operation::Upload {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|since| since.as_secs_f64())
                .unwrap_or(0.0);
            self.last_successful_upload
                .get_or_create(&BucketLabels {
                    bucket: bucket.to_string(),
                })
                .set(now);
        }
    }

    pub(crate) fn fetched(&self, bucket: &str, operation: Operation, bytes: u64) {
        self.fetched_bytes
            .get_or_create(&labels(bucket, operation))
            .inc_by(bytes);
    }

    /// Number of operations counted so far (tests and tools).
    pub fn operations_total(&self, bucket: &str, operation: Operation) -> u64 {
        self.operations
            .get_or_create(&labels(bucket, operation))
            .get()
    }

    /// Number of failed operations counted so far (tests and tools).
    pub fn failures_total(&self, bucket: &str, operation: Operation) -> u64 {
        self.failures
            .get_or_create(&labels(bucket, operation))
            .get()
    }

    /// Unix seconds of the last successful upload, 0 if none.
    pub fn last_successful_upload_time(&self, bucket: &str) -> f64 {
        self.last_successful_upload
            .get_or_create(&BucketLabels {
                bucket: bucket.to_string(),
            })
            .get()
    }
}

fn labels(bucket: &str, operation: Operation) -> OperationLabels {
    OperationLabels {
        bucket: bucket.to_string(),
        operation: operation.as_str(),
    }
}
