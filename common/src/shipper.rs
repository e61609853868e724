//! The shipper: copies every finished block of a local TSDB directory to the bucket, once
//! (reference/thanos.md sections 2.1, 2.2 and 3.3). Shared by the sidecar (Prometheus's
//! `--tsdb.path`) and the ruler (its own `--data-dir`); each passes where the external labels
//! come from and the `thanos.source` it writes.
//!
//! Each sync lists the ULID directories, oldest first, and uploads those not yet recorded in
//! `thanos.shipper.json` that hold samples and are level 1 (any level with
//! `--shipper.upload-compacted`). A block whose `meta.json` is already in the bucket is only
//! recorded. Invariants:
//! - The producer's files are never changed: the block is hard-linked (copied if linking
//!   fails) into `<dir>/thanos/upload/<ULID>/`, which also keeps the data alive if retention
//!   deletes the block mid-upload, and meta.json with the `thanos` section is written there.
//! - The staged block is verified before upload: meta consistent with its directory, index
//!   readable, every chunk of every series present with a good CRC and inside the block range.
//! - Objects go up chunks first, then the index, then meta.json: no block is visible in the
//!   bucket before all its data is. A process killed mid-upload re-uploads the block from
//!   the start on restart (overwriting the partial objects), so it is uploaded exactly once.
//! - The state file is replaced atomically (tmp, fsync, rename, fsync of the directory).
//! - By default a failed upload ends the sync (blocks go up in time order); the next attempt
//!   comes after an exponential backoff, capped at the sync interval. With
//!   `--shipper.allow-out-of-order-uploads` (Thanos's meaning) a failed block is logged and
//!   counted, the later blocks still go up, and the failed one is retried at the next sync:
//!   one block that keeps failing cannot hold back every newer block while retention deletes
//!   the data. The sync then still reports the failure ("failed to sync N blocks").
//! - A compacted block (with `--shipper.upload-compacted`) that overlaps a block already in
//!   the bucket with the same external labels is refused: its data went up as its sources.
//!   Out-of-order uploads skip that check, as in Thanos.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};
use strata_tsdb::Block;
use strata_tsdb::labels::Labels;
use strata_tsdb::meta::{BlockMeta, ObjectHash, ThanosDownsample, ThanosFile, ThanosMeta};
use tokio_util::sync::CancellationToken;
use ulid::Ulid;

use crate::error::{ClassifiedError, ErrorCode, error_chain};
use crate::objstore::Bucket;
use crate::telemetry::MetricsRegistry;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while shipping; each variant names the block or file involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("read block {block}")]
    ReadBlock {
        block: String,
        source: strata_tsdb::Error,
    },

    #[error("block {block} is corrupted: {reason}")]
    CorruptedBlock { block: String, reason: String },

    #[error("upload block {block} object {object}")]
    Upload {
        block: String,
        object: String,
        source: Box<crate::objstore::Error>,
    },

    #[error("bucket operation {operation} for block {block}")]
    Bucket {
        operation: &'static str,
        block: String,
        source: Box<crate::objstore::Error>,
    },

    #[error(
        "compacted block {block} overlaps block {existing} already in the bucket with the same labels; refusing to upload it"
    )]
    OverlappingCompactedBlock { block: String, existing: String },

    #[error("shipper state file {path}: {reason}")]
    ShipperState { path: PathBuf, reason: String },

    #[error(
        "no external labels configured, uniquely identifying external labels must be configured; see https://thanos.io/tip/thanos/storage.md#external-labels"
    )]
    NoExternalLabels,

    /// With out-of-order uploads: the sync went on past these failures.
    #[error("failed to sync {failed} blocks")]
    FailedBlocks { failed: usize },
}

impl Error {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// Whether the block itself is bad (as opposed to the bucket or the disk failing).
    pub fn is_corrupted_block(&self) -> bool {
        matches!(self, Error::CorruptedBlock { .. } | Error::ReadBlock { .. })
    }
}

impl ClassifiedError for Error {
    fn error_code(&self) -> ErrorCode {
        match self {
            Error::CorruptedBlock { .. } | Error::ReadBlock { .. } => ErrorCode::DataLoss,
            Error::Upload { source, .. } | Error::Bucket { source, .. } => source.code(),
            Error::NoExternalLabels => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        }
    }
}

/// `thanos_shipper_*`: what the shipper did.
#[derive(Debug, Clone, Default)]
pub struct ShipperMetrics {
    pub dir_syncs: Counter,
    pub dir_sync_failures: Counter,
    pub uploads: Counter,
    pub upload_failures: Counter,
    pub corrupted_blocks: Counter,
    /// 1 once every compacted block present at start-up is uploaded (with
    /// `--shipper.upload-compacted`).
    pub upload_compacted_done: Gauge,
}

impl ShipperMetrics {
    pub fn register(metrics: &MetricsRegistry) -> Self {
        let this = Self::default();
        metrics.with_registry(|registry| {
            registry.register(
                "thanos_shipper_dir_syncs",
                "Total number of dir syncs",
                this.dir_syncs.clone(),
            );
            registry.register(
                "thanos_shipper_dir_sync_failures",
                "Total number of failed dir syncs",
                this.dir_sync_failures.clone(),
            );
            registry.register(
                "thanos_shipper_uploads",
                "Total number of uploaded blocks",
                this.uploads.clone(),
            );
            registry.register(
                "thanos_shipper_upload_failures",
                "Total number of block upload failures",
                this.upload_failures.clone(),
            );
            registry.register(
                "thanos_shipper_corrupted_blocks",
                "Total number of corrupted blocks",
                this.corrupted_blocks.clone(),
            );
            registry.register(
                "thanos_shipper_upload_compacted_done",
                "If 1 it means shipper uploaded all compacted blocks from the filesystem.",
                this.upload_compacted_done.clone(),
            );
        });
        this
    }
}

/// Where the external labels stamped on each block come from, read at every upload (the
/// sidecar's follow Prometheus's config; the ruler's are its `--label` flags).
#[derive(Clone)]
pub struct LabelsSource(Arc<dyn Fn() -> Labels + Send + Sync>);

impl LabelsSource {
    pub fn new(source: impl Fn() -> Labels + Send + Sync + 'static) -> Self {
        Self(Arc::new(source))
    }

    /// A fixed label set.
    pub fn fixed(labels: Labels) -> Self {
        Self::new(move || labels.clone())
    }

    pub fn get(&self) -> Labels {
        (self.0)()
    }
}

impl std::fmt::Debug for LabelsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LabelsSource").field(&self.get()).finish()
    }
}

const CHUNKS_DIR: &str = "chunks";
const INDEX_FILE: &str = "index";
const META_FILE: &str = "meta.json";
/// The only state file version Thanos writes.
const STATE_VERSION: i64 = 1;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// `thanos.shipper.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShipperState {
    pub version: i64,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub uploaded: Vec<Ulid>,
}

fn null_as_empty<'de, D>(deserializer: D) -> std::result::Result<Vec<Ulid>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<Vec<Ulid>>::deserialize(deserializer)?.unwrap_or_default())
}

/// Reads the state file; a missing file is an empty state.
pub fn read_state(path: &Path) -> Result<ShipperState> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ShipperState {
                version: STATE_VERSION,
                uploaded: Vec::new(),
            });
        }
        Err(err) => return Err(Error::io("read shipper state", path, err)),
    };
    let state: ShipperState =
        serde_json::from_slice(&bytes).map_err(|err| Error::ShipperState {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })?;
    if state.version != STATE_VERSION {
        return Err(Error::ShipperState {
            path: path.to_path_buf(),
            reason: format!("unsupported version {}", state.version),
        });
    }
    Ok(state)
}

/// Replaces the state file atomically: tab-indented JSON as Thanos writes it.
pub fn write_state(path: &Path, state: &ShipperState) -> Result<()> {
    use std::io::Write;
    let mut bytes = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, formatter);
    state
        .serialize(&mut serializer)
        .map_err(|err| Error::ShipperState {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })?;
    let tmp = path.with_extension("json.tmp");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()
    };
    write().map_err(|err| Error::io("write shipper state", &tmp, err))?;
    std::fs::rename(&tmp, path).map_err(|err| Error::io("rename shipper state", path, err))?;
    if let Some(dir) = path.parent() {
        // Make the rename durable; a failure here only risks re-checking a block.
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// The shipper's settings.
#[derive(Debug, Clone)]
pub struct ShipperConfig {
    /// The directory holding the ULID block directories (and the state file).
    pub tsdb_path: PathBuf,
    /// `thanos.source` in the uploaded meta.json (`sidecar`, `ruler`).
    pub source: &'static str,
    pub state_file_name: String,
    pub upload_compacted: bool,
    /// Go on with later blocks when one is corrupted (it is retried at every sync).
    pub skip_corrupted: bool,
    /// `--hash-func=SHA256`: record each file's SHA256 in `thanos.files[].hash`.
    pub hash_sha256: bool,
    /// `--shipper.upload-concurrency`: chunk files uploaded at once (0 or 1 = one at a time).
    pub upload_concurrency: usize,
    /// `--shipper.allow-out-of-order-uploads`: a failed block does not stop later ones.
    pub allow_out_of_order_uploads: bool,
    pub interval: Duration,
}

/// Uploads finished blocks from one TSDB directory.
#[derive(Debug, Clone)]
pub struct Shipper {
    config: ShipperConfig,
    bucket: Bucket,
    labels: LabelsSource,
    metrics: ShipperMetrics,
}

/// A local block directory with its meta.
#[derive(Debug)]
struct LocalBlock {
    dir: PathBuf,
    meta: BlockMeta,
}

impl Shipper {
    pub fn new(
        config: ShipperConfig,
        bucket: Bucket,
        labels: LabelsSource,
        metrics: ShipperMetrics,
    ) -> Self {
        Self {
            config,
            bucket,
            labels,
            metrics,
        }
    }

    fn state_path(&self) -> PathBuf {
        self.config.tsdb_path.join(&self.config.state_file_name)
    }

    fn staging_root(&self) -> PathBuf {
        self.config.tsdb_path.join("thanos").join("upload")
    }

    /// Syncs until `cancel`: every interval after a good sync, sooner (with backoff) after
    /// a failed one. An upload in progress finishes before shutdown.
    pub async fn run(self, cancel: CancellationToken) -> Result<()> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let wait = match self.sync().await {
                Ok(uploaded) => {
                    if uploaded > 0 {
                        tracing::info!(uploaded, "shipper sync done");
                    }
                    backoff = FIRST_BACKOFF;
                    self.config.interval
                }
                Err(err) => {
                    tracing::warn!(error = %error_chain(&err), retry_in = ?backoff, "shipper sync failed");
                    let wait = backoff.min(self.config.interval);
                    backoff = (backoff * 2).min(self.config.interval);
                    wait
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = cancel.cancelled() => return Ok(()),
            }
        }
    }

    /// One pass over the data directory; returns the number of blocks uploaded.
    pub async fn sync(&self) -> Result<usize> {
        self.metrics.dir_syncs.inc();
        let result = self.sync_inner().await;
        if result.is_err() {
            self.metrics.dir_sync_failures.inc();
        }
        result
    }

    async fn sync_inner(&self) -> Result<usize> {
        let state_path = self.state_path();
        let state = match read_state(&state_path) {
            Ok(state) => state,
            Err(err) => {
                // As Thanos: a broken state file is rewritten; the bucket check below keeps
                // already uploaded blocks from going up twice.
                tracing::warn!(error = %error_chain(&err), "reading shipper state failed; starting afresh");
                ShipperState::default()
            }
        };
        let previously: BTreeSet<Ulid> = state.uploaded.iter().copied().collect();
        let tsdb_path = self.config.tsdb_path.clone();
        let blocks = tokio::task::spawn_blocking(move || local_blocks(&tsdb_path))
            .await
            .map_err(|err| {
                Error::io(
                    "list blocks",
                    &self.config.tsdb_path,
                    std::io::Error::other(err),
                )
            })??;
        let local: BTreeSet<Ulid> = blocks.iter().map(|block| block.meta.ulid).collect();
        // Only blocks still present locally are kept, as in Thanos.
        let mut uploaded: BTreeSet<Ulid> = previously.intersection(&local).copied().collect();
        let mut count = 0;
        let mut failed_blocks = 0;
        let mut outcome = Ok(());
        let mut bucket_metas: Option<Vec<BlockMeta>> = None;
        for block in &blocks {
            let ulid = block.meta.ulid;
            if uploaded.contains(&ulid) {
                continue;
            }
            if block.meta.stats.num_samples == 0 {
                continue;
            }
            if block.meta.compaction.level > 1 && !self.config.upload_compacted {
                continue;
            }
            let meta_object = format!("{ulid}/{META_FILE}");
            match self.bucket.exists(&meta_object).await {
                Ok(true) => {
                    tracing::info!(block = %ulid, "block already in the bucket; recording it");
                    uploaded.insert(ulid);
                    continue;
                }
                Ok(false) => {}
                Err(source) => {
                    outcome = Err(Error::Bucket {
                        operation: "exists",
                        block: ulid.to_string(),
                        source: Box::new(source),
                    });
                    break;
                }
            }
            if block.meta.compaction.level > 1 && !self.config.allow_out_of_order_uploads {
                // A compacted block may hold data already shipped as its sources.
                if bucket_metas.is_none() {
                    match self.bucket_metas().await {
                        Ok(metas) => bucket_metas = Some(metas),
                        Err(err) => {
                            outcome = Err(err);
                            break;
                        }
                    }
                }
                let labels = self.labels.get();
                if let Some(existing) = bucket_metas
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .find(|other| overlaps_with_same_labels(&block.meta, &labels, other))
                {
                    self.metrics.upload_failures.inc();
                    outcome = Err(Error::OverlappingCompactedBlock {
                        block: ulid.to_string(),
                        existing: existing.ulid.to_string(),
                    });
                    break;
                }
            }
            match self.upload(block).await {
                Ok(()) => {
                    self.metrics.uploads.inc();
                    uploaded.insert(ulid);
                    count += 1;
                    // Record each block at once: fewer bucket checks after a crash.
                    self.save_state(&uploaded)?;
                }
                Err(err) => {
                    self.metrics.upload_failures.inc();
                    if err.is_corrupted_block() {
                        self.metrics.corrupted_blocks.inc();
                        if self.config.skip_corrupted {
                            tracing::error!(block = %ulid, error = %error_chain(&err), "corrupted block skipped");
                            continue;
                        }
                    }
                    if self.config.allow_out_of_order_uploads {
                        // Later blocks still go up; this one is retried at the next sync.
                        tracing::error!(block = %ulid, error = %error_chain(&err), "shipping failed");
                        failed_blocks += 1;
                        continue;
                    }
                    outcome = Err(err);
                    break;
                }
            }
        }
        let compacted_pending = blocks.iter().any(|block| {
            block.meta.compaction.level > 1
                && block.meta.stats.num_samples > 0
                && !uploaded.contains(&block.meta.ulid)
        });
        if self.config.upload_compacted {
            self.metrics
                .upload_compacted_done
                .set(i64::from(!compacted_pending));
        }
        self.save_state(&uploaded)?;
        if outcome.is_ok() && failed_blocks > 0 {
            outcome = Err(Error::FailedBlocks {
                failed: failed_blocks,
            });
        }
        outcome.map(|()| count)
    }

    /// The metas of the blocks in the bucket (partial and unreadable ones left out).
    async fn bucket_metas(&self) -> Result<Vec<BlockMeta>> {
        let bucket_error = |source| Error::Bucket {
            operation: "iter",
            block: String::new(),
            source: Box::new(source),
        };
        let names = self.bucket.iter("").await.map_err(bucket_error)?;
        let mut metas = Vec::new();
        for name in names {
            let Some(ulid) = name
                .strip_suffix('/')
                .and_then(|name| Ulid::from_string(name).ok())
            else {
                continue;
            };
            match self.bucket.get(&format!("{ulid}/{META_FILE}")).await {
                Ok(bytes) => {
                    if let Ok(meta) = BlockMeta::from_json(&bytes) {
                        metas.push(meta);
                    }
                }
                Err(err) if err.is_not_found() => {}
                Err(source) => {
                    return Err(Error::Bucket {
                        operation: "get",
                        block: ulid.to_string(),
                        source: Box::new(source),
                    });
                }
            }
        }
        Ok(metas)
    }

    fn save_state(&self, uploaded: &BTreeSet<Ulid>) -> Result<()> {
        write_state(
            &self.state_path(),
            &ShipperState {
                version: STATE_VERSION,
                uploaded: uploaded.iter().copied().collect(),
            },
        )
    }

    /// Stages, verifies and uploads one block (meta.json last), then removes the staging copy.
    async fn upload(&self, block: &LocalBlock) -> Result<()> {
        let ulid = block.meta.ulid;
        let external_labels = self.labels.get();
        if external_labels.is_empty() {
            return Err(Error::NoExternalLabels);
        }
        let staging = self.staging_root().join(ulid.to_string());
        let source_dir = block.dir.clone();
        let staging_dir = staging.clone();
        let labels = external_labels
            .iter()
            .map(|label| (label.name.clone(), label.value.clone()))
            .collect();
        let hash_sha256 = self.config.hash_sha256;
        let source = self.config.source;
        let (meta, files) = tokio::task::spawn_blocking(move || {
            stage_block(&source_dir, &staging_dir)?;
            let meta = verify_block(&staging_dir)?;
            finish_meta(&staging_dir, meta, labels, source, hash_sha256)
        })
        .await
        .map_err(|err| Error::io("stage block", &staging, std::io::Error::other(err)))??;
        tracing::info!(block = %ulid, min_time = meta.min_time, max_time = meta.max_time, "uploading block");
        let block = ulid.to_string();
        let block_name = block.as_str();
        // Chunks first (possibly several at once), then the index, then meta.json.
        let upload = |rel_path: String| {
            let object = format!("{block_name}/{rel_path}");
            let path = staging.join(&rel_path);
            async move {
                self.bucket
                    .upload_file(&object, &path)
                    .await
                    .map(|_| ())
                    .map_err(|source| Error::Upload {
                        block: block_name.to_owned(),
                        object,
                        source: Box::new(source),
                    })
            }
        };
        let chunk_files: Vec<String> = files
            .iter()
            .filter(|file| file.rel_path.starts_with(CHUNKS_DIR))
            .map(|file| file.rel_path.clone())
            .collect();
        futures::stream::iter(chunk_files.into_iter().map(upload))
            .buffer_unordered(self.config.upload_concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        upload(INDEX_FILE.to_owned()).await?;
        let meta_bytes = meta.to_json().map_err(|source| Error::ReadBlock {
            block: block.clone(),
            source,
        })?;
        let object = format!("{block_name}/{META_FILE}");
        self.bucket
            .put(&object, meta_bytes.into())
            .await
            .map_err(|source| Error::Upload {
                block: block.clone(),
                object,
                source: Box::new(source),
            })?;
        if let Err(err) = std::fs::remove_dir_all(&staging) {
            tracing::warn!(block = %ulid, error = %err, "remove upload staging directory");
        }
        Ok(())
    }
}

/// Whether `other` (a block in the bucket) has the external labels this sidecar ships with
/// and a time range overlapping `meta`'s (ranges are half-open).
fn overlaps_with_same_labels(
    meta: &BlockMeta,
    labels: &strata_tsdb::labels::Labels,
    other: &BlockMeta,
) -> bool {
    let same_labels = other.thanos.as_ref().is_some_and(|thanos| {
        thanos.labels.len() == labels.len()
            && labels
                .iter()
                .all(|label| thanos.labels.get(&label.name) == Some(&label.value))
    });
    same_labels
        && other.ulid != meta.ulid
        && other.min_time < meta.max_time
        && meta.min_time < other.max_time
}

/// ULID directories with a readable meta.json, oldest data first.
fn local_blocks(tsdb_path: &Path) -> Result<Vec<LocalBlock>> {
    let entries =
        std::fs::read_dir(tsdb_path).map_err(|err| Error::io("list tsdb path", tsdb_path, err))?;
    let mut blocks = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| Error::io("list tsdb path", tsdb_path, err))?;
        let name = entry.file_name();
        let Some(ulid) = name.to_str().and_then(|name| Ulid::from_string(name).ok()) else {
            continue;
        };
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        match BlockMeta::read_from_dir(&dir) {
            Ok(meta) if meta.ulid == ulid => blocks.push(LocalBlock { dir, meta }),
            Ok(meta) => {
                tracing::warn!(block = %ulid, meta_ulid = %meta.ulid, "meta.json names another block; skipping")
            }
            Err(err) => {
                tracing::warn!(block = %ulid, error = %err, "cannot read meta.json; skipping")
            }
        }
    }
    blocks.sort_by_key(|block| (block.meta.min_time, block.meta.ulid));
    Ok(blocks)
}

/// Hard-links (or copies) the block's meta.json, index, tombstones and chunks into `staging`.
fn stage_block(source: &Path, staging: &Path) -> Result<()> {
    if staging.exists() {
        std::fs::remove_dir_all(staging)
            .map_err(|err| Error::io("remove stale staging dir", staging, err))?;
    }
    let staging_chunks = staging.join(CHUNKS_DIR);
    std::fs::create_dir_all(&staging_chunks)
        .map_err(|err| Error::io("create staging dir", &staging_chunks, err))?;
    for name in [META_FILE, INDEX_FILE, "tombstones"] {
        let from = source.join(name);
        if name == "tombstones" && !from.exists() {
            continue;
        }
        link_or_copy(&from, &staging.join(name))?;
    }
    let chunks = source.join(CHUNKS_DIR);
    let entries =
        std::fs::read_dir(&chunks).map_err(|err| Error::io("list chunks", &chunks, err))?;
    for entry in entries {
        let entry = entry.map_err(|err| Error::io("list chunks", &chunks, err))?;
        link_or_copy(&entry.path(), &staging_chunks.join(entry.file_name()))?;
    }
    Ok(())
}

fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|err| Error::io("copy block file", from, err))
}

/// Opens the staged block and checks it: meta names its directory with a valid range, the
/// index reads, and every chunk of every series is present, decodes with a good CRC and lies
/// inside the block's time range. Returns the meta.
pub fn verify_block(dir: &Path) -> Result<BlockMeta> {
    let name = dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let corrupted = |reason: String| Error::CorruptedBlock {
        block: name.clone(),
        reason,
    };
    let block = Block::open(dir).map_err(|source| Error::ReadBlock {
        block: name.clone(),
        source,
    })?;
    let meta = block.meta().clone();
    if meta.ulid.to_string() != name {
        return Err(corrupted(format!("meta.json says ulid {}", meta.ulid)));
    }
    if meta.min_time >= meta.max_time {
        return Err(corrupted(format!(
            "min time {} is not before max time {}",
            meta.min_time, meta.max_time
        )));
    }
    let read = |source| Error::ReadBlock {
        block: name.clone(),
        source,
    };
    let postings = block.index().all_postings().map_err(read)?;
    let mut series_count = 0u64;
    let mut chunk_count = 0u64;
    for series_ref in postings.iter() {
        let (labels, chunks) = block.series(series_ref).map_err(read)?;
        series_count += 1;
        for chunk_meta in chunks {
            chunk_count += 1;
            if chunk_meta.min_time < meta.min_time || chunk_meta.max_time >= meta.max_time {
                return Err(corrupted(format!(
                    "chunk [{}, {}] of series {labels} outside the block range [{}, {})",
                    chunk_meta.min_time, chunk_meta.max_time, meta.min_time, meta.max_time
                )));
            }
            block.chunk(chunk_meta.chunk_ref).map_err(read)?;
        }
    }
    if meta.stats.num_series != 0 && meta.stats.num_series != series_count {
        return Err(corrupted(format!(
            "meta.json counts {} series, the index holds {series_count}",
            meta.stats.num_series
        )));
    }
    if meta.stats.num_chunks != 0 && meta.stats.num_chunks != chunk_count {
        return Err(corrupted(format!(
            "meta.json counts {} chunks, the index holds {chunk_count}",
            meta.stats.num_chunks
        )));
    }
    Ok(meta)
}

/// Adds the `thanos` section (labels, resolution 0, `source`, files with sizes) and writes the
/// staged meta.json; returns the meta and its file list.
fn finish_meta(
    staging: &Path,
    mut meta: BlockMeta,
    labels: std::collections::BTreeMap<String, String>,
    source: &str,
    hash_sha256: bool,
) -> Result<(BlockMeta, Vec<ThanosFile>)> {
    let chunks = staging.join(CHUNKS_DIR);
    let mut segment_files = Vec::new();
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(&chunks).map_err(|err| Error::io("list chunks", &chunks, err))?;
    for entry in entries {
        let entry = entry.map_err(|err| Error::io("list chunks", &chunks, err))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let size = entry
            .metadata()
            .map_err(|err| Error::io("stat chunk file", entry.path(), err))?
            .len();
        segment_files.push(name.clone());
        files.push(file_entry(format!("{CHUNKS_DIR}/{name}"), size));
    }
    segment_files.sort();
    let index = staging.join(INDEX_FILE);
    let index_size = std::fs::metadata(&index)
        .map_err(|err| Error::io("stat index", &index, err))?
        .len();
    files.push(file_entry(INDEX_FILE.to_owned(), index_size));
    if hash_sha256 {
        for file in &mut files {
            file.hash = Some(sha256_file(&staging.join(&file.rel_path))?);
        }
    }
    files.push(file_entry(META_FILE.to_owned(), 0));
    files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    let previous = meta.thanos.take().unwrap_or_default();
    meta.thanos = Some(ThanosMeta {
        // Thanos writes its meta version explicitly.
        version: 1,
        labels,
        downsample: ThanosDownsample { resolution: 0 },
        source: source.to_owned(),
        segment_files,
        files: files.clone(),
        upload_time: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        ..previous
    });
    // The staged meta.json is a hard link to the producer's file: replace the link, never write
    // through it.
    let staged_meta = staging.join(META_FILE);
    std::fs::remove_file(&staged_meta)
        .map_err(|err| Error::io("unlink staged meta.json", &staged_meta, err))?;
    meta.write_to_dir(staging)
        .map_err(|source| Error::ReadBlock {
            block: meta.ulid.to_string(),
            source,
        })?;
    Ok((meta, files))
}

/// Thanos's `{"hashFunc": "SHA256", "value": <hex>}` of a file, read in 64 KiB pieces.
fn sha256_file(path: &Path) -> Result<ObjectHash> {
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).map_err(|err| Error::io("open for hashing", path, err))?;
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|err| Error::io("read for hashing", path, err))?;
        if read == 0 {
            break;
        }
        context.update(buffer.get(..read).unwrap_or_default());
    }
    let value = context
        .finish()
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Ok(ObjectHash {
        hash_func: "SHA256".to_owned(),
        value,
    })
}

fn file_entry(rel_path: String, size: u64) -> ThanosFile {
    ThanosFile {
        rel_path,
        size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
        hash: None,
    }
}

#[cfg(test)]
mod tests;
