//! [`Bucket`]: the object-storage handle every Strata component uses.
//!
//! It wraps an `object_store` store and adds what Thanos's bucket client gives operators:
//! - retries of transient failures with exponential backoff and jitter, on top of the per-request
//!   retries `object_store` already makes; a download that breaks mid-body resumes from the
//!   last byte received (pinned to the first response's ETag, so it never splices two versions);
//! - a timeout per attempt (per chunk for bodies, so big objects are not cut off);
//! - a concurrency limit shared by all operations of the bucket (one request, one permit);
//! - the `thanos_objstore_bucket_*` metrics;
//! - the same semantics on every backend: a range past the end of an object reads what is
//!   there (possibly nothing), delete of a missing object succeeds, a missing object is
//!   [`Error::NotFound`] for every read.

use std::future::Future;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attributes, GetOptions, GetRange, ObjectStore, PutMultipartOptions, PutOptions, PutPayload,
};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;

use super::build::build_store;
use super::config::{BucketConfig, DEFAULT_PART_SIZE};
use super::metrics::BucketMetrics;
use super::{Error, Operation, Result};

/// How often and how patiently a failed operation is tried again.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (1 = no retry).
    pub max_attempts: u32,
    /// Upper bound of the first wait; doubles with every retry.
    pub initial_backoff: Duration,
    /// Upper bound of any wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Wait before retry number `retry` (0-based): "equal jitter", uniformly random in the
    /// upper half of the exponential cap, so clients that failed together spread out but never
    /// hammer the server with zero waits.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
        let cap = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let half = cap / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// Tuning of a [`Bucket`]; [`super::build::build_store`] derives it from objstore.yml.
#[derive(Debug, Clone)]
pub struct BucketOptions {
    /// Requests in flight at once across all operations of the bucket.
    pub max_concurrency: usize,
    /// Time allowed for one attempt of a request without a body, and between two chunks of a
    /// body being read.
    pub operation_timeout: Duration,
    pub retry: RetryPolicy,
    /// Objects larger than this are uploaded in parts of this size.
    pub part_size: u64,
    /// Always upload in a single request.
    pub disable_multipart: bool,
    /// Parts of one multipart upload in flight at once.
    pub upload_concurrency: usize,
    /// Attributes (user metadata, storage class) set on every uploaded object.
    pub put_attributes: Attributes,
}

impl Default for BucketOptions {
    fn default() -> Self {
        BucketOptions {
            max_concurrency: 64,
            operation_timeout: Duration::from_secs(130),
            retry: RetryPolicy::default(),
            part_size: DEFAULT_PART_SIZE,
            disable_multipart: false,
            upload_concurrency: 4,
            put_attributes: Attributes::new(),
        }
    }
}

/// Size and modification time of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectAttributes {
    pub size: u64,
    pub last_modified: SystemTime,
    /// The store's entity tag, when it has one (on S3 a multipart upload's ends in `-<parts>`).
    pub e_tag: Option<String>,
}

/// An object found by a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Full name relative to the bucket (and its prefix).
    pub path: String,
    pub size: u64,
    pub last_modified: SystemTime,
}

/// One level of a `/`-delimited listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Objects directly under the listed directory.
    pub objects: Vec<ObjectInfo>,
    /// Sub-"directories" (common prefixes), full names without the trailing `/`.
    pub prefixes: Vec<String>,
}

/// Handle to one bucket; cheap to clone, share it.
#[derive(Clone)]
pub struct Bucket {
    inner: Arc<BucketInner>,
}

struct BucketInner {
    store: Arc<dyn ObjectStore>,
    name: String,
    options: BucketOptions,
    limit: Arc<Semaphore>,
    metrics: BucketMetrics,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("name", &self.inner.name)
            .field("store", &self.inner.store.to_string())
            .field("options", &self.inner.options)
            .finish()
    }
}

/// Where the bytes of an upload come from; both can be read again for a retry.
enum UploadSource<'a> {
    Memory(Bytes),
    File(&'a Path),
}

impl Bucket {
    /// Builds the bucket described by `config` and registers its metrics into `registry`.
    /// A process with several buckets registers once with [`BucketMetrics::register`] and
    /// uses [`Bucket::from_config_with_metrics`].
    pub fn from_config(config: &BucketConfig, registry: &mut Registry) -> Result<Self> {
        Self::from_config_with_metrics(config, BucketMetrics::register(registry))
    }

    pub fn from_config_with_metrics(config: &BucketConfig, metrics: BucketMetrics) -> Result<Self> {
        let built = build_store(config)?;
        Ok(Self::new(
            built.store,
            config.bucket_name(),
            built.options,
            metrics,
        ))
    }

    /// Wraps an already built store (tests, or a store decorated by the caller).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        name: impl Into<String>,
        options: BucketOptions,
        metrics: BucketMetrics,
    ) -> Self {
        let name = name.into();
        metrics.init_bucket(&name);
        let limit = Arc::new(Semaphore::new(options.max_concurrency.max(1)));
        Bucket {
            inner: Arc::new(BucketInner {
                store,
                name,
                options,
                limit,
                metrics,
            }),
        }
    }

    /// The name used in the `bucket` metric label.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn options(&self) -> &BucketOptions {
        &self.inner.options
    }

    pub fn metrics(&self) -> &BucketMetrics {
        &self.inner.metrics
    }

    /// Reads a whole object into memory.
    pub async fn get(&self, path: &str) -> Result<Bytes> {
        self.instrumented(Operation::Get, async {
            let mut buffer = Vec::new();
            self.download(Operation::Get, path, None, &mut buffer)
                .await?;
            Ok(Bytes::from(buffer))
        })
        .await
    }

    /// Streams a whole object into `writer` and returns the number of bytes written. A body
    /// that breaks off is resumed where it stopped, so nothing is written twice.
    pub async fn get_to_writer<W>(&self, path: &str, writer: &mut W) -> Result<u64>
    where
        W: AsyncWrite + Unpin + Send,
    {
        self.instrumented(Operation::Get, async {
            let written = self.download(Operation::Get, path, None, writer).await?;
            writer.flush().await.map_err(|error| Error::Sink {
                bucket: self.inner.name.clone(),
                operation: Operation::Get,
                path: path.to_string(),
                error,
            })?;
            Ok(written)
        })
        .await
    }

    /// Reads bytes `range` of an object (`start..u64::MAX` reads to the end). A range reaching
    /// past the end yields the bytes that exist; an empty range, or one starting at or after the
    /// end, yields no bytes.
    pub async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes> {
        let operation = Operation::GetRange;
        self.instrumented(operation, async {
            if range.start >= range.end {
                return Ok(Bytes::new());
            }
            // Ranges may be open-ended (`start..u64::MAX` reads to the end); do not trust the
            // length for more than a modest first allocation.
            let capacity = usize::try_from(range.end - range.start)
                .unwrap_or(usize::MAX)
                .min(4 * 1024 * 1024);
            let mut buffer = Vec::with_capacity(capacity);
            match self
                .download(operation, path, Some(range.clone()), &mut buffer)
                .await
            {
                Ok(_) => Ok(Bytes::from(buffer)),
                Err(error) if error.is_not_found() || error.is_access_denied() => Err(error),
                Err(error) => {
                    // Backends disagree on a range that starts past the end (S3: 416, local:
                    // an error, some servers: empty body). Settle it by the object's size.
                    match self.head(operation, path).await {
                        Ok(attributes) if attributes.size <= range.start => Ok(Bytes::new()),
                        _ => Err(error),
                    }
                }
            }
        })
        .await
    }

    /// Uploads `data` as object `path`, in parts if it is larger than the part size.
    pub async fn put(&self, path: &str, data: Bytes) -> Result<()> {
        self.instrumented(Operation::Upload, async {
            self.upload(path, UploadSource::Memory(data))
                .await
                .map(|_| ())
        })
        .await
    }

    /// Uploads the local file `file` as object `path`, streaming it in parts if it is larger
    /// than the part size (memory use: part size x upload concurrency). Returns its size.
    pub async fn upload_file(&self, path: &str, file: &Path) -> Result<u64> {
        self.instrumented(Operation::Upload, async {
            self.upload(path, UploadSource::File(file)).await
        })
        .await
    }

    /// Whether object `path` exists.
    pub async fn exists(&self, path: &str) -> Result<bool> {
        self.instrumented(Operation::Exists, async {
            match self.head(Operation::Exists, path).await {
                Ok(_) => Ok(true),
                Err(error) if error.is_not_found() => Ok(false),
                Err(error) => Err(error),
            }
        })
        .await
    }

    /// Size and modification time of object `path`.
    pub async fn attributes(&self, path: &str) -> Result<ObjectAttributes> {
        self.instrumented(
            Operation::Attributes,
            self.head(Operation::Attributes, path),
        )
        .await
    }

    /// Deletes object `path`; deleting a missing object succeeds (as on S3).
    pub async fn delete(&self, path: &str) -> Result<()> {
        let operation = Operation::Delete;
        self.instrumented(operation, async {
            let location = self.location(operation, path)?;
            let result = self
                .retrying(operation, path, || {
                    self.attempt(operation, path, self.inner.store.delete(&location))
                })
                .await;
            match result {
                Err(error) if error.is_not_found() => Ok(()),
                other => other,
            }
        })
        .await
    }

    /// Lists one level under directory `dir` ("" = bucket root): the objects directly in it and
    /// its sub-directories. Paginates through any number of entries.
    pub async fn list_with_delimiter(&self, dir: &str) -> Result<Listing> {
        let operation = Operation::Iter;
        self.instrumented(operation, async {
            let prefix = self.dir_location(operation, dir)?;
            let shown = shown_dir(dir);
            let listing = self
                .retrying(operation, shown, || {
                    self.attempt(
                        operation,
                        shown,
                        self.inner.store.list_with_delimiter(prefix.as_ref()),
                    )
                })
                .await?;
            let mut objects: Vec<ObjectInfo> =
                listing.objects.into_iter().map(object_info).collect();
            objects.sort_by(|a, b| a.path.cmp(&b.path));
            let mut prefixes: Vec<String> = listing
                .common_prefixes
                .into_iter()
                .map(|prefix| prefix.to_string())
                .collect();
            prefixes.sort();
            Ok(Listing { objects, prefixes })
        })
        .await
    }

    /// Lists every object under directory `dir` ("" = whole bucket), at any depth, sorted.
    pub async fn list_recursive(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        let operation = Operation::Iter;
        self.instrumented(operation, async {
            let prefix = self.dir_location(operation, dir)?;
            let shown = shown_dir(dir);
            let mut objects = self
                .retrying(operation, shown, || {
                    self.list_attempt(shown, prefix.as_ref())
                })
                .await?;
            objects.sort_by(|a, b| a.path.cmp(&b.path));
            Ok(objects)
        })
        .await
    }

    /// Thanos's `Iter`: the names directly under `dir`, sub-directories with a trailing `/`.
    pub async fn iter(&self, dir: &str) -> Result<Vec<String>> {
        let listing = self.list_with_delimiter(dir).await?;
        let mut names: Vec<String> = listing
            .objects
            .into_iter()
            .map(|object| object.path)
            .chain(listing.prefixes.into_iter().map(|prefix| prefix + "/"))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Counts the operation, times it and records its outcome, as Thanos's metric bucket does.
    async fn instrumented<T>(
        &self,
        operation: Operation,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let metrics = &self.inner.metrics;
        metrics.started(&self.inner.name, operation);
        let start = Instant::now();
        let result = work.await;
        match &result {
            Ok(_) => metrics.succeeded(&self.inner.name, operation, start.elapsed()),
            // A missing object is an answer, not a storage failure.
            Err(error) if error.is_not_found() => {}
            Err(_) => metrics.failed(&self.inner.name, operation),
        }
        result
    }

    /// Runs `attempt` until it succeeds, fails permanently or the attempts are used up.
    async fn retrying<T, F, Fut>(
        &self,
        operation: Operation,
        path: &str,
        mut attempt: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let policy = &self.inner.options.retry;
        let mut retry = 0u32;
        loop {
            match attempt().await {
                Err(error) if error.is_transient() && retry + 1 < policy.max_attempts => {
                    let wait = policy.backoff(retry);
                    tracing::warn!(
                        bucket = %self.inner.name,
                        operation = %operation,
                        path,
                        retry = retry + 1,
                        wait_ms = wait.as_millis() as u64,
                        error = %error,
                        "object storage operation failed; retrying",
                    );
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
                other => return other,
            }
        }
    }

    /// One request: waits for a concurrency permit, bounds it by the operation timeout and
    /// classifies its error.
    async fn attempt<T>(
        &self,
        operation: Operation,
        path: &str,
        request: impl Future<Output = object_store::Result<T>>,
    ) -> Result<T> {
        // The semaphore is never closed, so acquiring cannot fail.
        let _permit = self.inner.limit.acquire().await.ok();
        self.timed(operation, path, request).await
    }

    async fn timed<T>(
        &self,
        operation: Operation,
        path: &str,
        request: impl Future<Output = object_store::Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.inner.options.operation_timeout, request).await {
            Err(_) => Err(self.timeout_error(operation, path)),
            Ok(Err(error)) => Err(self.classify(operation, path, error)),
            Ok(Ok(value)) => Ok(value),
        }
    }

    fn timeout_error(&self, operation: Operation, path: &str) -> Error {
        Error::Timeout {
            bucket: self.inner.name.clone(),
            operation,
            path: path.to_string(),
            timeout: self.inner.options.operation_timeout,
        }
    }

    fn classify(&self, operation: Operation, path: &str, error: object_store::Error) -> Error {
        let bucket = self.inner.name.clone();
        let path = path.to_string();
        match error {
            object_store::Error::NotFound { .. } => Error::NotFound {
                bucket,
                operation,
                path,
            },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => Error::AccessDenied {
                bucket,
                operation,
                path,
                error,
            },
            // object_store reports some rejections (listings, multipart calls) as `Generic`
            // errors whose status is visible only in the message.
            object_store::Error::Generic { .. }
                if {
                    let text = error.to_string();
                    text.contains("status code: 403") || text.contains("status code: 401")
                } =>
            {
                Error::AccessDenied {
                    bucket,
                    operation,
                    path,
                    error,
                }
            }
            error => Error::Operation {
                bucket,
                operation,
                path,
                error,
            },
        }
    }

    fn location(&self, _operation: Operation, path: &str) -> Result<ObjectPath> {
        ObjectPath::parse(path).map_err(|error| Error::InvalidPath {
            path: path.to_string(),
            error,
        })
    }

    fn dir_location(&self, operation: Operation, dir: &str) -> Result<Option<ObjectPath>> {
        let dir = dir.trim_matches('/');
        if dir.is_empty() {
            Ok(None)
        } else {
            self.location(operation, dir).map(Some)
        }
    }

    async fn head(&self, operation: Operation, path: &str) -> Result<ObjectAttributes> {
        let location = self.location(operation, path)?;
        let meta = self
            .retrying(operation, path, || {
                self.attempt(operation, path, self.inner.store.head(&location))
            })
            .await?;
        Ok(ObjectAttributes {
            size: meta.size,
            last_modified: SystemTime::from(meta.last_modified),
            e_tag: meta.e_tag,
        })
    }

    async fn list_attempt(
        &self,
        dir: &str,
        prefix: Option<&ObjectPath>,
    ) -> Result<Vec<ObjectInfo>> {
        let operation = Operation::Iter;
        let _permit = self.inner.limit.acquire().await.ok();
        let mut stream = self.inner.store.list(prefix);
        let mut objects = Vec::new();
        loop {
            let next = tokio::time::timeout(self.inner.options.operation_timeout, stream.next())
                .await
                .map_err(|_| self.timeout_error(operation, dir))?;
            match next {
                None => return Ok(objects),
                Some(Err(error)) => return Err(self.classify(operation, dir, error)),
                Some(Ok(meta)) => objects.push(object_info(meta)),
            }
        }
    }

    /// Streams an object (or `range` of it) into `writer`, resuming after transient failures.
    async fn download<W>(
        &self,
        operation: Operation,
        path: &str,
        range: Option<Range<u64>>,
        writer: &mut W,
    ) -> Result<u64>
    where
        W: AsyncWrite + Unpin + Send,
    {
        let location = self.location(operation, path)?;
        let mut written = 0u64;
        let mut etag = None;
        let policy = &self.inner.options.retry;
        let mut retry = 0u32;
        loop {
            let attempt = self
                .download_attempt(
                    operation,
                    path,
                    &location,
                    range.clone(),
                    &mut written,
                    &mut etag,
                    writer,
                )
                .await;
            match attempt {
                Ok(()) => return Ok(written),
                Err(error) if error.is_transient() && retry + 1 < policy.max_attempts => {
                    let wait = policy.backoff(retry);
                    tracing::warn!(
                        bucket = %self.inner.name,
                        operation = %operation,
                        path,
                        retry = retry + 1,
                        resume_at = written,
                        wait_ms = wait.as_millis() as u64,
                        error = %error,
                        "object storage read failed; resuming",
                    );
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// One GET of the part not yet written. The byte count and ETag live in the caller so
    /// that they persist across attempts.
    #[allow(clippy::too_many_arguments)]
    async fn download_attempt<W>(
        &self,
        operation: Operation,
        path: &str,
        location: &ObjectPath,
        range: Option<Range<u64>>,
        written: &mut u64,
        etag: &mut Option<String>,
        writer: &mut W,
    ) -> Result<()>
    where
        W: AsyncWrite + Unpin + Send,
    {
        let get_range = match (&range, *written) {
            (None, 0) => None,
            (None, done) => Some(GetRange::Offset(done)),
            (Some(range), done) => {
                let start = range.start.saturating_add(done);
                if start >= range.end {
                    return Ok(());
                }
                Some(GetRange::Bounded(start..range.end))
            }
        };
        let options = GetOptions {
            range: get_range,
            // A resumed read must continue the same version of the object.
            if_match: etag.clone(),
            ..GetOptions::default()
        };
        let _permit = self.inner.limit.acquire().await.ok();
        let result = self
            .timed(
                operation,
                path,
                self.inner.store.get_opts(location, options),
            )
            .await?;
        if etag.is_none() {
            *etag = result.meta.e_tag.clone();
        }
        let mut body = result.into_stream();
        loop {
            let chunk = tokio::time::timeout(self.inner.options.operation_timeout, body.next())
                .await
                .map_err(|_| self.timeout_error(operation, path))?;
            match chunk {
                None => return Ok(()),
                Some(Err(error)) => return Err(self.classify(operation, path, error)),
                Some(Ok(bytes)) => {
                    writer
                        .write_all(&bytes)
                        .await
                        .map_err(|error| Error::Sink {
                            bucket: self.inner.name.clone(),
                            operation,
                            path: path.to_string(),
                            error,
                        })?;
                    let len = bytes.len() as u64;
                    *written += len;
                    self.inner.metrics.fetched(&self.inner.name, operation, len);
                }
            }
        }
    }

    async fn upload(&self, path: &str, source: UploadSource<'_>) -> Result<u64> {
        let operation = Operation::Upload;
        let location = self.location(operation, path)?;
        let size = match &source {
            UploadSource::Memory(data) => data.len() as u64,
            UploadSource::File(file) => tokio::fs::metadata(file)
                .await
                .map_err(|error| self.local_error(path, file, error))?
                .len(),
        };
        let options = &self.inner.options;
        let part_size = options.part_size.max(1);
        if options.disable_multipart || size <= part_size {
            let data = match &source {
                UploadSource::Memory(data) => data.clone(),
                UploadSource::File(file) => Bytes::from(
                    tokio::fs::read(file)
                        .await
                        .map_err(|error| self.local_error(path, file, error))?,
                ),
            };
            let put_options = PutOptions {
                attributes: options.put_attributes.clone(),
                ..PutOptions::default()
            };
            self.retrying(operation, path, || {
                self.attempt(
                    operation,
                    path,
                    self.inner.store.put_opts(
                        &location,
                        PutPayload::from(data.clone()),
                        put_options.clone(),
                    ),
                )
            })
            .await?;
            return Ok(size);
        }
        self.retrying(operation, path, || {
            self.multipart_attempt(path, &location, &source, part_size)
        })
        .await
    }

    /// One try at a multipart upload; any failure aborts it so no parts are left behind.
    async fn multipart_attempt(
        &self,
        path: &str,
        location: &ObjectPath,
        source: &UploadSource<'_>,
        part_size: u64,
    ) -> Result<u64> {
        let operation = Operation::Upload;
        let options = PutMultipartOptions {
            attributes: self.inner.options.put_attributes.clone(),
            ..PutMultipartOptions::default()
        };
        let mut upload = self
            .attempt(
                operation,
                path,
                self.inner.store.put_multipart_opts(location, options),
            )
            .await?;
        let result = self
            .send_parts(path, upload.as_mut(), source, part_size)
            .await;
        match result {
            Ok(total) => {
                self.attempt(operation, path, upload.complete()).await?;
                Ok(total)
            }
            Err(error) => {
                if let Err(abort_error) = upload.abort().await {
                    tracing::warn!(
                        bucket = %self.inner.name,
                        path,
                        error = %abort_error,
                        "abort multipart upload",
                    );
                }
                Err(error)
            }
        }
    }

    async fn send_parts(
        &self,
        path: &str,
        upload: &mut dyn object_store::MultipartUpload,
        source: &UploadSource<'_>,
        part_size: u64,
    ) -> Result<u64> {
        let part_len = usize::try_from(part_size).unwrap_or(usize::MAX);
        let concurrency = self.inner.options.upload_concurrency.max(1);
        let mut in_flight = FuturesUnordered::new();
        let mut total = 0u64;
        let mut file = match source {
            UploadSource::File(file) => Some((
                *file,
                tokio::fs::File::open(file)
                    .await
                    .map_err(|error| self.local_error(path, file, error))?,
            )),
            UploadSource::Memory(_) => None,
        };
        loop {
            let part = match (source, &mut file) {
                (UploadSource::Memory(data), _) => {
                    let start = usize::try_from(total).unwrap_or(usize::MAX).min(data.len());
                    let end = start.saturating_add(part_len).min(data.len());
                    data.slice(start..end)
                }
                (UploadSource::File(_), Some((name, handle))) => read_part(handle, part_len)
                    .await
                    .map_err(|error| self.local_error(path, name, error))?,
                (UploadSource::File(_), None) => Bytes::new(),
            };
            if part.is_empty() {
                break;
            }
            total += part.len() as u64;
            let request = upload.put_part(PutPayload::from(part));
            let limit = Arc::clone(&self.inner.limit);
            let timeout = self.inner.options.operation_timeout;
            in_flight.push(async move {
                let _permit = limit.acquire_owned().await.ok();
                tokio::time::timeout(timeout, request).await
            });
            while in_flight.len() >= concurrency {
                self.part_outcome(path, in_flight.next().await)?;
            }
        }
        while !in_flight.is_empty() {
            self.part_outcome(path, in_flight.next().await)?;
        }
        Ok(total)
    }

    fn part_outcome(
        &self,
        path: &str,
        outcome: Option<std::result::Result<object_store::Result<()>, tokio::time::error::Elapsed>>,
    ) -> Result<()> {
        match outcome {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(error))) => Err(self.classify(Operation::Upload, path, error)),
            Some(Err(_)) => Err(self.timeout_error(Operation::Upload, path)),
        }
    }

    fn local_error(&self, path: &str, file: &Path, error: std::io::Error) -> Error {
        Error::LocalIo {
            bucket: self.inner.name.clone(),
            operation: Operation::Upload,
            path: path.to_string(),
            file: PathBuf::from(file),
            error,
        }
    }
}

/// Reads up to `len` bytes (fewer only at the end of the file).
async fn read_part(file: &mut tokio::fs::File, len: usize) -> std::io::Result<Bytes> {
    let mut buffer = Vec::with_capacity(len.min(64 * 1024 * 1024));
    let mut limited = file.take(len as u64);
    limited.read_to_end(&mut buffer).await?;
    Ok(Bytes::from(buffer))
}

/// How a listed directory is named in errors and logs ("/" for the bucket root).
fn shown_dir(dir: &str) -> &str {
    if dir.trim_matches('/').is_empty() {
        "/"
    } else {
        dir
    }
}

fn object_info(meta: object_store::ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        path: meta.location.to_string(),
        size: meta.size,
        last_modified: SystemTime::from(meta.last_modified),
    }
}

#[cfg(test)]
mod tests;
