use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use futures::stream::BoxStream;
use lock::Mutex;
use object_store::memory::InMemory;
use object_store::{
    GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta, PutMultipartOptions,
    PutResult,
};

use super::*;
use crate::objstore::conformance::{self, SuiteOptions};

/// std's mutex under a short name; poisoning cannot happen in these single-purpose tests.
mod lock {
    #[derive(Debug)]
    pub struct Mutex<T>(std::sync::Mutex<T>);
    impl<T> Mutex<T> {
        pub fn new(value: T) -> Self {
            Mutex(std::sync::Mutex::new(value))
        }
        pub fn lock(&self) -> std::sync::MutexGuard<'_, T> {
            self.0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }
}

fn small_parts_options() -> BucketOptions {
    BucketOptions {
        part_size: 5 * 1024 * 1024,
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        },
        ..BucketOptions::default()
    }
}

#[tokio::test]
async fn conformance_filesystem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = BucketConfig::parse(&format!(
        "type: FILESYSTEM\nconfig:\n  directory: {}/bucket\nprefix: some/prefix\n",
        dir.path().display()
    ))
    .expect("config");
    let built = build_store(&config).expect("build");
    let bucket = Bucket::new(
        built.store,
        config.bucket_name(),
        small_parts_options(),
        BucketMetrics::unregistered(),
    );
    conformance::run(&bucket, &SuiteOptions::default()).await;
    // The prefix is applied: everything the suite wrote went below it, and it cleaned up.
    let prefix_dir = dir.path().join("bucket/some/prefix");
    assert!(
        !prefix_dir.exists()
            || std::fs::read_dir(&prefix_dir)
                .map(|d| d.count())
                .unwrap_or(0)
                == 0,
        "suite left files in {}",
        prefix_dir.display()
    );
}

#[tokio::test]
async fn conformance_in_memory() {
    let bucket = Bucket::new(
        Arc::new(InMemory::new()),
        "memory",
        small_parts_options(),
        BucketMetrics::unregistered(),
    );
    conformance::run(&bucket, &SuiteOptions::default()).await;
}

#[test]
fn backoff_grows_exponentially_within_bounds() {
    let policy = RetryPolicy {
        max_attempts: 10,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
    };
    for _ in 0..100 {
        let first = policy.backoff(0);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let third = policy.backoff(2);
        assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
        let late = policy.backoff(40);
        assert!(late >= Duration::from_secs(1) && late <= Duration::from_secs(2));
    }
}

#[derive(Debug, Clone)]
enum Fault {
    /// A server-side error left over after object_store's own retries.
    Transient,
    /// 403.
    Denied,
    /// Never answers.
    Hang,
    /// Sends this many bytes of the body, then breaks the connection.
    BreakBodyAfter(usize),
}

/// An in-memory store that injects faults into reads and records what it was asked.
#[derive(Debug)]
struct FaultyStore {
    inner: InMemory,
    faults: Mutex<VecDeque<Fault>>,
    read_requests: Mutex<Vec<GetOptions>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    read_delay: Duration,
}

impl FaultyStore {
    fn new(faults: Vec<Fault>) -> Self {
        FaultyStore {
            inner: InMemory::new(),
            faults: Mutex::new(faults.into()),
            read_requests: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            read_delay: Duration::ZERO,
        }
    }
}

impl std::fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaultyStore")
    }
}

fn generic(message: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "Faulty",
        source: message.to_string().into(),
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.read_requests.lock().push(options.clone());
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !self.read_delay.is_zero() {
            tokio::time::sleep(self.read_delay).await;
        }
        let fault = self.faults.lock().pop_front();
        let result = match fault {
            None => self.inner.get_opts(location, options).await,
            Some(Fault::Transient) => Err(generic("Server returned non-2xx status code: 503")),
            Some(Fault::Denied) => Err(object_store::Error::PermissionDenied {
                path: location.to_string(),
                source: "denied".into(),
            }),
            Some(Fault::Hang) => {
                futures::future::pending::<()>().await;
                Err(generic("unreachable"))
            }
            Some(Fault::BreakBodyAfter(bytes)) => {
                let result = self.inner.get_opts(location, options).await;
                result.map(|result| {
                    let meta = result.meta.clone();
                    let range = result.range.clone();
                    let attributes = result.attributes.clone();
                    let body: BoxStream<'static, object_store::Result<Bytes>> = Box::pin(
                        result
                            .into_stream()
                            .map(move |chunk| chunk.map(|c| c.slice(..bytes.min(c.len()))))
                            .take(1)
                            .chain(futures::stream::once(async {
                                Err(generic("connection reset"))
                            })),
                    );
                    GetResult {
                        payload: GetResultPayload::Stream(body),
                        meta,
                        range,
                        attributes,
                    }
                })
            }
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }

    async fn delete(&self, location: &ObjectPath) -> object_store::Result<()> {
        self.inner.delete(location).await
    }

    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy(&self, from: &ObjectPath, to: &ObjectPath) -> object_store::Result<()> {
        self.inner.copy(from, to).await
    }

    async fn copy_if_not_exists(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
    ) -> object_store::Result<()> {
        self.inner.copy_if_not_exists(from, to).await
    }
}

fn faulty_bucket(store: Arc<FaultyStore>, options: BucketOptions) -> Bucket {
    Bucket::new(store, "faulty", options, BucketMetrics::unregistered())
}

#[tokio::test]
async fn transient_errors_are_retried_and_counted_once() {
    let store = Arc::new(FaultyStore::new(vec![Fault::Transient, Fault::Transient]));
    let bucket = faulty_bucket(store.clone(), small_parts_options());
    bucket
        .put("a/b", Bytes::from_static(b"hello"))
        .await
        .expect("put");
    let read = bucket.get("a/b").await.expect("third attempt succeeds");
    assert_eq!(read.as_ref(), b"hello");
    assert_eq!(
        store.read_requests.lock().len(),
        3,
        "two failures, one success"
    );
    let metrics = bucket.metrics();
    assert_eq!(metrics.operations_total("faulty", Operation::Get), 1);
    assert_eq!(metrics.failures_total("faulty", Operation::Get), 0);
}

#[tokio::test]
async fn retries_give_up_after_max_attempts() {
    let store = Arc::new(FaultyStore::new(vec![Fault::Transient; 5]));
    let bucket = faulty_bucket(store.clone(), small_parts_options());
    bucket
        .put("x", Bytes::from_static(b"1"))
        .await
        .expect("put");
    let error = bucket.get("x").await.expect_err("all attempts fail");
    assert!(error.is_transient(), "{error}");
    assert!(
        error.to_string().contains("x") && error.to_string().contains("faulty"),
        "{error}"
    );
    assert_eq!(store.read_requests.lock().len(), 3);
    assert_eq!(bucket.metrics().failures_total("faulty", Operation::Get), 1);
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let store = Arc::new(FaultyStore::new(vec![Fault::Denied, Fault::Denied]));
    let bucket = faulty_bucket(store.clone(), small_parts_options());
    bucket
        .put("x", Bytes::from_static(b"1"))
        .await
        .expect("put");
    let error = bucket.get("x").await.expect_err("denied");
    assert!(error.is_access_denied(), "{error}");
    assert!(error.to_string().contains("access denied"), "{error}");
    assert_eq!(store.read_requests.lock().len(), 1);
    assert_eq!(bucket.metrics().failures_total("faulty", Operation::Get), 1);
}

#[tokio::test]
async fn broken_body_resumes_where_it_stopped() {
    let store = Arc::new(FaultyStore::new(vec![Fault::BreakBodyAfter(1000)]));
    let bucket = faulty_bucket(store.clone(), small_parts_options());
    let data = conformance::pattern(100_000, 9);
    bucket.put("big", data.clone()).await.expect("put");
    let read = bucket.get("big").await.expect("resumed read");
    assert!(read == data, "resumed read must equal the object");
    let requests = store.read_requests.lock().clone();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].range.is_none());
    assert_eq!(requests[1].range, Some(GetRange::Offset(1000)));
    assert!(
        requests[1].if_match.is_some(),
        "resume is pinned to the first ETag"
    );

    // A ranged read resumes inside its range.
    let store = Arc::new(FaultyStore::new(vec![Fault::BreakBodyAfter(10)]));
    let bucket = faulty_bucket(store.clone(), small_parts_options());
    bucket.put("big", data.clone()).await.expect("put");
    let read = bucket
        .get_range("big", 500..600)
        .await
        .expect("resumed range");
    assert_eq!(read, data.slice(500..600));
    let requests = store.read_requests.lock().clone();
    assert_eq!(requests[1].range, Some(GetRange::Bounded(510..600)));
}

#[tokio::test]
async fn hung_requests_time_out_and_are_retried() {
    let store = Arc::new(FaultyStore::new(vec![Fault::Hang]));
    let options = BucketOptions {
        operation_timeout: Duration::from_millis(50),
        ..small_parts_options()
    };
    let bucket = faulty_bucket(store.clone(), options);
    bucket
        .put("x", Bytes::from_static(b"ok"))
        .await
        .expect("put");
    let read = bucket.get("x").await.expect("second attempt succeeds");
    assert_eq!(read.as_ref(), b"ok");

    let store = Arc::new(FaultyStore::new(vec![Fault::Hang; 3]));
    let options = BucketOptions {
        operation_timeout: Duration::from_millis(50),
        ..small_parts_options()
    };
    let bucket = faulty_bucket(store, options);
    bucket
        .put("x", Bytes::from_static(b"ok"))
        .await
        .expect("put");
    let error = bucket
        .attributes("x")
        .await
        .expect_err("every attempt hangs");
    assert!(matches!(error, Error::Timeout { .. }), "{error}");
}

#[tokio::test]
async fn concurrency_is_limited() {
    let mut store = FaultyStore::new(Vec::new());
    store.read_delay = Duration::from_millis(20);
    let store = Arc::new(store);
    let options = BucketOptions {
        max_concurrency: 3,
        ..small_parts_options()
    };
    let bucket = faulty_bucket(store.clone(), options);
    bucket
        .put("x", Bytes::from_static(b"ok"))
        .await
        .expect("put");
    let reads = (0..20).map(|_| bucket.get("x"));
    for result in futures::future::join_all(reads).await {
        assert_eq!(result.expect("get").as_ref(), b"ok");
    }
    assert_eq!(store.max_in_flight.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn metrics_are_exported_with_thanos_names() {
    let mut registry = Registry::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = BucketConfig::parse(&format!(
        "type: FILESYSTEM\nconfig:\n  directory: {}\n",
        dir.path().display()
    ))
    .expect("config");
    let bucket = Bucket::from_config(&config, &mut registry).expect("bucket");
    bucket
        .put("a", Bytes::from_static(b"1"))
        .await
        .expect("put");
    assert!(bucket.get("missing").await.is_err());
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    let name = format!("fs: {}", dir.path().display());
    for expected in [
        format!(
            "thanos_objstore_bucket_operations_total{{bucket=\"{name}\",operation=\"upload\"}} 1"
        ),
        format!("thanos_objstore_bucket_operations_total{{bucket=\"{name}\",operation=\"get\"}} 1"),
        format!(
            "thanos_objstore_bucket_operation_failures_total{{bucket=\"{name}\",operation=\"get\"}} 0"
        ),
        format!(
            "thanos_objstore_bucket_operation_failures_total{{bucket=\"{name}\",operation=\"iter\"}} 0"
        ),
        format!(
            "thanos_objstore_bucket_operation_duration_seconds_count{{bucket=\"{name}\",operation=\"upload\"}} 1"
        ),
        "# TYPE thanos_objstore_bucket_last_successful_upload_time gauge".to_string(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
}
