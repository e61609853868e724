//! Blocks in the bucket, as the compactor sees and changes them (reference/thanos.md 2):
//! one recursive listing tells which ULID directories have a meta.json and which markers;
//! blocks are uploaded chunks -> index -> meta.json (last, with `thanos.files` and
//! `upload_time`), deleted meta.json first and deletion-mark.json last, and downloaded
//! file by file to local disk (never whole into memory).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use futures::{StreamExt, TryStreamExt};
use strata_common::objstore::{Bucket, ObjectInfo};
use strata_tsdb::meta::{
    BlockMeta, DELETION_MARK_FILENAME, META_FILENAME, Marker, NO_COMPACT_MARK_FILENAME,
    NO_DOWNSAMPLE_MARK_FILENAME, ThanosFile,
};
use ulid::Ulid;

use crate::error::{Error, Result};

/// The objects of one ULID directory.
#[derive(Debug, Clone, Default)]
pub struct BlockObjects {
    /// Every object, with its path relative to the bucket.
    pub objects: Vec<ObjectInfo>,
    pub has_meta: bool,
    pub has_deletion_mark: bool,
    pub has_no_compact_mark: bool,
    pub has_no_downsample_mark: bool,
}

impl BlockObjects {
    /// The newest modification time of its objects.
    pub fn newest_modified(&self) -> Option<SystemTime> {
        self.objects.iter().map(|o| o.last_modified).max()
    }
}

/// Every ULID directory of the bucket with its objects (one recursive listing).
pub async fn list_blocks(bucket: &Bucket) -> Result<BTreeMap<Ulid, BlockObjects>> {
    let objects = bucket
        .list_recursive("")
        .await
        .map_err(|e| Error::bucket("list", "blocks", e))?;
    let mut blocks: BTreeMap<Ulid, BlockObjects> = BTreeMap::new();
    for object in objects {
        let Some((dir, rest)) = object.path.split_once('/') else {
            continue;
        };
        let Ok(ulid) = Ulid::from_string(dir) else {
            continue;
        };
        let entry = blocks.entry(ulid).or_default();
        match rest {
            META_FILENAME => entry.has_meta = true,
            DELETION_MARK_FILENAME => entry.has_deletion_mark = true,
            NO_COMPACT_MARK_FILENAME => entry.has_no_compact_mark = true,
            NO_DOWNSAMPLE_MARK_FILENAME => entry.has_no_downsample_mark = true,
            _ => {}
        }
        entry.objects.push(object);
    }
    Ok(blocks)
}

/// Reads and parses `<ulid>/meta.json`.
pub async fn read_meta(bucket: &Bucket, ulid: Ulid) -> Result<BlockMeta> {
    let path = format!("{ulid}/{META_FILENAME}");
    let bytes = bucket
        .get(&path)
        .await
        .map_err(|e| Error::bucket("read", &path, e))?;
    BlockMeta::from_json(&bytes).map_err(|source| Error::Decode {
        object: path,
        source,
    })
}

/// Reads a marker of `ulid`; `None` when absent or unparsable (Thanos treats an unparsable
/// marker as a partial write and ignores it).
pub async fn read_marker<M: Marker>(bucket: &Bucket, ulid: Ulid) -> Result<Option<M>> {
    let path = format!("{ulid}/{}", M::FILENAME);
    match bucket.get(&path).await {
        Ok(bytes) => match M::from_json(&bytes) {
            Ok(marker) => Ok(Some(marker)),
            Err(err) => {
                tracing::warn!(block = %ulid, marker = M::FILENAME, error = %err, "ignoring unreadable marker");
                Ok(None)
            }
        },
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(Error::bucket("read", path, err)),
    }
}

/// Writes a marker for `ulid`.
pub async fn write_marker<M: Marker>(bucket: &Bucket, ulid: Ulid, marker: &M) -> Result<()> {
    let path = format!("{ulid}/{}", M::FILENAME);
    let bytes = marker.to_json().map_err(|source| Error::Decode {
        object: path.clone(),
        source,
    })?;
    bucket
        .put(&path, bytes.into())
        .await
        .map_err(|e| Error::bucket("write", path, e))
}

/// Downloads block `ulid` (every object but the markers) into `<dir>/<ulid>/`.
pub async fn download_block(
    bucket: &Bucket,
    ulid: Ulid,
    dir: &Path,
    concurrency: usize,
) -> Result<PathBuf> {
    let prefix = format!("{ulid}/");
    let objects = bucket
        .list_recursive(&ulid.to_string())
        .await
        .map_err(|e| Error::bucket("list", &prefix, e))?;
    let target = dir.join(ulid.to_string());
    std::fs::create_dir_all(target.join("chunks")).map_err(|e| Error::io("create", &target, e))?;
    let markers = [
        DELETION_MARK_FILENAME,
        NO_COMPACT_MARK_FILENAME,
        NO_DOWNSAMPLE_MARK_FILENAME,
    ];
    let files: Vec<String> = objects
        .into_iter()
        .filter_map(|o| o.path.strip_prefix(&prefix).map(str::to_owned))
        .filter(|rel| !rel.is_empty() && !rel.ends_with('/') && !markers.contains(&rel.as_str()))
        .collect();
    futures::stream::iter(files)
        .map(|rel| {
            let target = target.clone();
            let prefix = prefix.clone();
            async move {
                let path = target.join(&rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
                }
                let mut file = tokio::fs::File::create(&path)
                    .await
                    .map_err(|e| Error::io("create", &path, e))?;
                let object = format!("{prefix}{rel}");
                bucket
                    .get_to_writer(&object, &mut file)
                    .await
                    .map_err(|e| Error::bucket("download", object, e))?;
                file.sync_all()
                    .await
                    .map_err(|e| Error::io("sync", &path, e))?;
                Ok::<(), Error>(())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(target)
}

/// What to write into a block directory before its meta.json (e.g. a no-compact mark).
pub type ExtraObject = (String, Vec<u8>);

/// Uploads the local block in `dir` as `<ulid>/...`: chunks, index, `extra` objects, then
/// meta.json with `thanos.files` and `upload_time` filled in. Returns the uploaded meta.
pub async fn upload_block(
    bucket: &Bucket,
    dir: &Path,
    meta: &BlockMeta,
    extra: &[ExtraObject],
    concurrency: usize,
) -> Result<BlockMeta> {
    let ulid = meta.ulid;
    let chunks_dir = dir.join("chunks");
    let mut chunk_files: Vec<String> = Vec::new();
    if chunks_dir.exists() {
        for entry in
            std::fs::read_dir(&chunks_dir).map_err(|e| Error::io("list", &chunks_dir, e))?
        {
            let entry = entry.map_err(|e| Error::io("list", &chunks_dir, e))?;
            chunk_files.push(format!("chunks/{}", entry.file_name().to_string_lossy()));
        }
    }
    chunk_files.sort();
    let mut files = Vec::new();
    for rel in chunk_files
        .iter()
        .chain(std::iter::once(&"index".to_owned()))
    {
        let path = dir.join(rel);
        let size = std::fs::metadata(&path)
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        files.push(ThanosFile {
            rel_path: rel.clone(),
            size_bytes: size as i64,
            hash: None,
        });
    }
    files.push(ThanosFile {
        rel_path: META_FILENAME.to_owned(),
        size_bytes: 0,
        hash: None,
    });
    files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));

    let upload = |rel: String| {
        let path = dir.join(&rel);
        async move {
            let object = format!("{ulid}/{rel}");
            bucket
                .upload_file(&object, &path)
                .await
                .map_err(|e| Error::bucket("upload", object, e))
        }
    };
    futures::stream::iter(chunk_files)
        .map(upload)
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<u64>>()
        .await?;
    upload("index".to_owned()).await?;
    for (name, bytes) in extra {
        let object = format!("{ulid}/{name}");
        bucket
            .put(&object, bytes.clone().into())
            .await
            .map_err(|e| Error::bucket("upload", object, e))?;
    }
    let mut meta = meta.clone();
    let thanos = meta.thanos.get_or_insert_with(Default::default);
    thanos.files = files;
    thanos.segment_files = Vec::new();
    thanos.upload_time =
        Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
    let object = format!("{ulid}/{META_FILENAME}");
    let bytes = meta.to_json().map_err(|source| Error::Decode {
        object: object.clone(),
        source,
    })?;
    bucket
        .put(&object, bytes.into())
        .await
        .map_err(|e| Error::bucket("upload", object, e))?;
    Ok(meta)
}

/// Deletes block `ulid` in Thanos's order: meta.json first (the block stops existing for
/// every reader), then its other objects, deletion-mark.json last (so an interrupted
/// deletion is finished by the next cleanup).
pub async fn delete_block(bucket: &Bucket, ulid: Ulid, objects: &[ObjectInfo]) -> Result<()> {
    let meta = format!("{ulid}/{META_FILENAME}");
    let mark = format!("{ulid}/{DELETION_MARK_FILENAME}");
    bucket
        .delete(&meta)
        .await
        .map_err(|e| Error::bucket("delete", &meta, e))?;
    for object in objects {
        if object.path == meta || object.path == mark {
            continue;
        }
        bucket
            .delete(&object.path)
            .await
            .map_err(|e| Error::bucket("delete", &object.path, e))?;
    }
    bucket
        .delete(&mark)
        .await
        .map_err(|e| Error::bucket("delete", &mark, e))
}
