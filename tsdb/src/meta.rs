//! `meta.json` (block metadata, with Thanos's optional `thanos` section) and Thanos's marker files
//! (`deletion-mark.json`, `no-compact-mark.json`, `no-downsample-mark.json`).
//!
//! Format: Prometheus `tsdb/block.go` `BlockMeta` (file version 1) plus Thanos
//! `pkg/block/metadata` `Thanos`. Field order and `omitempty` rules follow the Go structs so that
//! [`BlockMeta::to_json`] writes what Go's `json.MarshalIndent(meta, "", "\t")` writes. Readers
//! tolerate every optional field being absent (old blocks lack `files`, `index_stats`,
//! `upload_time`) and reject a meta file version other than 1.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::{Error, Result};

/// Name of the metadata file inside a block directory.
pub const META_FILENAME: &str = "meta.json";
/// Name of Thanos's deletion marker inside a block directory.
pub const DELETION_MARK_FILENAME: &str = "deletion-mark.json";
/// Name of Thanos's no-compaction marker.
pub const NO_COMPACT_MARK_FILENAME: &str = "no-compact-mark.json";
/// Name of Thanos's no-downsampling marker.
pub const NO_DOWNSAMPLE_MARK_FILENAME: &str = "no-downsample-mark.json";

/// The only meta file version Prometheus writes and reads (`TSDBVersion1`).
pub const META_VERSION_1: i64 = 1;

fn is_zero_u64(value: &u64) -> bool {
    *value == 0
}
fn is_zero_i64(value: &i64) -> bool {
    *value == 0
}
fn is_false(value: &bool) -> bool {
    !*value
}

/// A block's `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Unique identifier of the block; equals the directory name.
    pub ulid: Ulid,
    /// Inclusive lower bound of the sample timestamps (ms).
    #[serde(rename = "minTime")]
    pub min_time: i64,
    /// Exclusive upper bound of the sample timestamps (ms).
    #[serde(rename = "maxTime")]
    pub max_time: i64,
    /// Counts of samples, series, chunks and tombstones.
    #[serde(default)]
    pub stats: BlockStats,
    /// Compaction history.
    #[serde(default)]
    pub compaction: BlockMetaCompaction,
    /// Meta file version; always 1.
    pub version: i64,
    /// Thanos's section; absent in blocks Prometheus wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thanos: Option<ThanosMeta>,
}

/// `stats` of a block. Every member is omitted from JSON when zero, as in Go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockStats {
    /// Number of samples.
    #[serde(rename = "numSamples", default, skip_serializing_if = "is_zero_u64")]
    pub num_samples: u64,
    /// Number of float samples (Prometheus 3.6+).
    #[serde(
        rename = "numFloatSamples",
        default,
        skip_serializing_if = "is_zero_u64"
    )]
    pub num_float_samples: u64,
    /// Number of histogram samples (Prometheus 3.6+).
    #[serde(
        rename = "numHistogramSamples",
        default,
        skip_serializing_if = "is_zero_u64"
    )]
    pub num_histogram_samples: u64,
    /// Number of series.
    #[serde(rename = "numSeries", default, skip_serializing_if = "is_zero_u64")]
    pub num_series: u64,
    /// Number of chunks.
    #[serde(rename = "numChunks", default, skip_serializing_if = "is_zero_u64")]
    pub num_chunks: u64,
    /// Number of tombstone intervals.
    #[serde(rename = "numTombstones", default, skip_serializing_if = "is_zero_u64")]
    pub num_tombstones: u64,
}

/// `compaction` of a block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMetaCompaction {
    /// 1 for a block cut from the head; max(parent levels) + 1 after merging.
    #[serde(default)]
    pub level: i64,
    /// ULIDs of all level-1 blocks this one contains, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Ulid>,
    /// Set when the block is empty after compaction and can be deleted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deletable: bool,
    /// The blocks directly merged into this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
    /// Set when compacting this block failed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub failed: bool,
    /// Free-form hints such as `from-out-of-order`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

/// A parent block in `compaction.parents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDesc {
    /// The parent's ULID.
    pub ulid: Ulid,
    /// The parent's minTime.
    #[serde(rename = "minTime")]
    pub min_time: i64,
    /// The parent's maxTime.
    #[serde(rename = "maxTime")]
    pub max_time: i64,
}

/// The `thanos` section of meta.json.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThanosMeta {
    /// Thanos meta version; 0 (absent) is read as 1.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub version: i64,
    /// External labels: the block's group identity. Never stored in the index.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    /// Downsampling resolution.
    #[serde(default)]
    pub downsample: ThanosDownsample,
    /// Who produced the block (`sidecar`, `compactor`, ...).
    #[serde(default)]
    pub source: String,
    /// Deprecated list of chunk segment file names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segment_files: Vec<String>,
    /// All files of the block, sorted by relative path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ThanosFile>,
    /// Rewrites applied to the block (deletions, relabels); kept opaque beyond `sources`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrites: Vec<ThanosRewrite>,
    /// Size estimates of the largest series entry and chunk.
    #[serde(default)]
    pub index_stats: IndexStats,
    /// Opaque plugin data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
    /// RFC 3339 time of the upload; see [`ThanosMeta::upload_time_millis`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_time: Option<String>,
}

impl ThanosMeta {
    /// `upload_time` as Unix milliseconds; `None` when absent, Go's zero time, or unparsable.
    pub fn upload_time_millis(&self) -> Option<i64> {
        let text = self.upload_time.as_deref()?;
        let parsed = chrono::DateTime::parse_from_rfc3339(text).ok()?;
        let millis = parsed.timestamp_millis();
        // Go writes its zero time ("0001-01-01T00:00:00Z") when the field was never set.
        (parsed.timestamp() > 0).then_some(millis)
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `thanos.downsample`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThanosDownsample {
    /// 0 (raw), 300000 (5m) or 3600000 (1h).
    #[serde(default)]
    pub resolution: i64,
}

/// One entry of `thanos.files`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThanosFile {
    /// Path relative to the block directory (`chunks/000001`, `index`, `meta.json`).
    pub rel_path: String,
    /// Size in bytes; omitted for meta.json.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub size_bytes: i64,
    /// Optional content hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<ObjectHash>,
}

/// A file hash in `thanos.files`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectHash {
    /// Hash function; Thanos uses `SHA256`.
    #[serde(rename = "hashFunc")]
    pub hash_func: String,
    /// Hex digest.
    pub value: String,
}

/// One entry of `thanos.rewrites`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThanosRewrite {
    /// Source blocks of the rewrite.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Ulid>,
    /// Deletion requests applied (opaque: matchers, intervals, request_id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deletions_applied: Vec<serde_json::Value>,
    /// Relabel configs applied (opaque).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabels_applied: Vec<serde_json::Value>,
}

/// `thanos.index_stats`; Go writes `{}` when unset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexStats {
    /// Size of the largest series entry in the index.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub series_max_size: i64,
    /// Size of the largest chunk.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub chunk_max_size: i64,
}

/// Serialize like Go's `json.MarshalIndent(v, "", "\t")`.
fn to_go_indented_json<T: Serialize>(value: &T, file: &'static str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(512);
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value
        .serialize(&mut serializer)
        .map_err(|source| Error::Json { file, source })?;
    Ok(out)
}

impl BlockMeta {
    /// A fresh level-1 meta for a block with the given identity and time range.
    pub fn new(ulid: Ulid, min_time: i64, max_time: i64) -> Self {
        BlockMeta {
            ulid,
            min_time,
            max_time,
            stats: BlockStats::default(),
            compaction: BlockMetaCompaction {
                level: 1,
                sources: vec![ulid],
                ..BlockMetaCompaction::default()
            },
            version: META_VERSION_1,
            thanos: None,
        }
    }

    /// Parse meta.json bytes; rejects a meta file version other than 1 and a Thanos section
    /// version other than 0/1.
    pub fn from_json(bytes: &[u8]) -> Result<BlockMeta> {
        let meta: BlockMeta = serde_json::from_slice(bytes).map_err(|source| Error::Json {
            file: META_FILENAME,
            source,
        })?;
        if meta.version != META_VERSION_1 {
            return Err(Error::UnsupportedVersion {
                what: "meta.json",
                version: meta.version,
            });
        }
        if let Some(thanos) = &meta.thanos
            && thanos.version != 0
            && thanos.version != 1
        {
            return Err(Error::UnsupportedVersion {
                what: "meta.json thanos section",
                version: thanos.version,
            });
        }
        Ok(meta)
    }

    /// Serialize as Go does: tab-indented. Prometheus writes no trailing newline; Thanos (when the
    /// `thanos` section is present) writes one, and so do we.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut out = to_go_indented_json(self, META_FILENAME)?;
        if self.thanos.is_some() {
            out.push(b'\n');
        }
        Ok(out)
    }

    /// Read `<block_dir>/meta.json`.
    pub fn read_from_dir(block_dir: &Path) -> Result<BlockMeta> {
        let path = block_dir.join(META_FILENAME);
        let bytes = std::fs::read(&path).map_err(|err| Error::io("read", &path, err))?;
        BlockMeta::from_json(&bytes)
    }

    /// Write `<block_dir>/meta.json` atomically (via `meta.json.tmp` and a rename).
    pub fn write_to_dir(&self, block_dir: &Path) -> Result<()> {
        let bytes = self.to_json()?;
        let tmp = block_dir.join(format!("{META_FILENAME}.tmp"));
        let path = block_dir.join(META_FILENAME);
        write_synced(&tmp, &bytes)?;
        std::fs::rename(&tmp, &path).map_err(|err| Error::io("rename", &tmp, err))
    }

    /// The downsampling resolution in ms (0 for raw blocks and blocks without a Thanos section).
    pub fn resolution(&self) -> i64 {
        self.thanos.as_ref().map_or(0, |t| t.downsample.resolution)
    }
}

pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(|err| Error::io("create", path, err))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|err| Error::io("write", path, err))
}

/// The only marker version Thanos writes and reads.
pub const MARKER_VERSION_1: i64 = 1;

/// `deletion-mark.json`: the block will be deleted after the delete delay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionMark {
    /// The block.
    pub id: Ulid,
    /// Marker version; 1.
    pub version: i64,
    /// Why the block was marked.
    #[serde(default)]
    pub details: String,
    /// When the mark was made, Unix seconds.
    pub deletion_time: i64,
}

/// Why a block must not be compacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoCompactReason {
    /// Set by an operator.
    Manual,
    /// The index would grow beyond the limit.
    IndexSizeExceeding,
    /// The block's index has out-of-order chunks.
    BlockIndexOutOfOrderChunk,
    /// Vertical compaction of downsampled blocks is not supported.
    DownsampleVerticalCompaction,
    /// Strata's compactor could not read the block (details say what failed); the block keeps
    /// being served, only compaction skips it. Thanos reads any reason.
    CorruptedBlock,
    /// A reason written by a newer version.
    #[serde(untagged)]
    Other(String),
}

/// `no-compact-mark.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoCompactMark {
    /// The block.
    pub id: Ulid,
    /// Marker version; 1.
    pub version: i64,
    /// Free-form details.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
    /// When the mark was made, Unix seconds.
    pub no_compact_time: i64,
    /// Why.
    pub reason: NoCompactReason,
}

/// `no-downsample-mark.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoDownsampleMark {
    /// The block.
    pub id: Ulid,
    /// Marker version; 1.
    pub version: i64,
    /// Free-form details.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
    /// When the mark was made, Unix seconds.
    pub no_downsample_time: i64,
    /// Why (`manual`).
    pub reason: String,
}

/// Common behaviour of the marker files.
pub trait Marker: Serialize + for<'de> Deserialize<'de> {
    /// File name inside the block directory.
    const FILENAME: &'static str;
    /// The marker's version field.
    fn version(&self) -> i64;

    /// Parse marker bytes; rejects versions other than 1.
    fn from_json(bytes: &[u8]) -> Result<Self> {
        let marker: Self = serde_json::from_slice(bytes).map_err(|source| Error::Json {
            file: Self::FILENAME,
            source,
        })?;
        if marker.version() != MARKER_VERSION_1 {
            return Err(Error::UnsupportedVersion {
                what: Self::FILENAME,
                version: marker.version(),
            });
        }
        Ok(marker)
    }

    /// Serialize tab-indented with a trailing newline, as Thanos does.
    fn to_json(&self) -> Result<Vec<u8>> {
        let mut out = to_go_indented_json(self, Self::FILENAME)?;
        out.push(b'\n');
        Ok(out)
    }
}

impl Marker for DeletionMark {
    const FILENAME: &'static str = DELETION_MARK_FILENAME;
    fn version(&self) -> i64 {
        self.version
    }
}
impl Marker for NoCompactMark {
    const FILENAME: &'static str = NO_COMPACT_MARK_FILENAME;
    fn version(&self) -> i64 {
        self.version
    }
}
impl Marker for NoDownsampleMark {
    const FILENAME: &'static str = NO_DOWNSAMPLE_MARK_FILENAME;
    fn version(&self) -> i64 {
        self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMTOOL_META: &str = "{\n\t\"ulid\": \"01M89NNAAPTXNP8ZRPCD3AFPNV\",\n\t\"minTime\": 1700000000000,\n\t\"maxTime\": 1700000060001,\n\t\"stats\": {\n\t\t\"numSamples\": 9,\n\t\t\"numSeries\": 3,\n\t\t\"numChunks\": 3\n\t},\n\t\"compaction\": {\n\t\t\"level\": 1,\n\t\t\"sources\": [\n\t\t\t\"01M89NNAAPTXNP8ZRPCD3AFPNV\"\n\t\t]\n\t},\n\t\"version\": 1\n}";

    #[test]
    fn prometheus_meta_round_trips_byte_for_byte() {
        let meta = BlockMeta::from_json(PROMTOOL_META.as_bytes()).unwrap();
        assert_eq!(meta.min_time, 1_700_000_000_000);
        assert_eq!(meta.stats.num_series, 3);
        assert_eq!(meta.compaction.sources, vec![meta.ulid]);
        assert!(meta.thanos.is_none());
        assert_eq!(
            String::from_utf8(meta.to_json().unwrap()).unwrap(),
            PROMTOOL_META
        );
    }

    #[test]
    fn thanos_section_is_read_and_written() {
        let json = r#"{"ulid":"01M89NNAAPTXNP8ZRPCD3AFPNV","minTime":1,"maxTime":2,
            "stats":{},"compaction":{"level":2},"version":1,
            "thanos":{"labels":{"replica":"a","cluster":"eu"},"downsample":{"resolution":300000},
            "source":"compactor","files":[{"rel_path":"index","size_bytes":10,
            "hash":{"hashFunc":"SHA256","value":"ab"}},{"rel_path":"meta.json"}],
            "index_stats":{"series_max_size":7},"upload_time":"2024-01-02T03:04:05Z",
            "extensions":{"x":1}}}"#;
        let meta = BlockMeta::from_json(json.as_bytes()).unwrap();
        let thanos = meta.thanos.as_ref().unwrap();
        assert_eq!(meta.resolution(), 300_000);
        assert_eq!(
            thanos.labels.keys().collect::<Vec<_>>(),
            ["cluster", "replica"]
        );
        assert_eq!(thanos.files[0].hash.as_ref().unwrap().hash_func, "SHA256");
        assert_eq!(thanos.index_stats.series_max_size, 7);
        assert_eq!(thanos.upload_time_millis(), Some(1_704_164_645_000));
        let written = String::from_utf8(meta.to_json().unwrap()).unwrap();
        assert!(written.ends_with("}\n"));
        assert!(
            written.contains("\n\t\"thanos\": {\n\t\t\"labels\": {\n\t\t\t\"cluster\": \"eu\",")
        );
        assert_eq!(BlockMeta::from_json(written.as_bytes()).unwrap(), meta);
    }

    #[test]
    fn tolerates_absent_optional_fields_and_null_labels() {
        let json = r#"{"ulid":"01M89NNAAPTXNP8ZRPCD3AFPNV","minTime":1,"maxTime":2,"version":1,
            "thanos":{"labels":null}}"#;
        let meta = BlockMeta::from_json(json.as_bytes()).unwrap();
        assert_eq!(meta.compaction.level, 0);
        let thanos = meta.thanos.unwrap();
        assert!(thanos.labels.is_empty());
        assert_eq!(thanos.upload_time_millis(), None);
    }

    #[test]
    fn rejects_other_versions() {
        let json = r#"{"ulid":"01M89NNAAPTXNP8ZRPCD3AFPNV","minTime":1,"maxTime":2,"version":2}"#;
        let err = BlockMeta::from_json(json.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
        let json = r#"{"ulid":"01M89NNAAPTXNP8ZRPCD3AFPNV","minTime":1,"maxTime":2,"version":1,
            "thanos":{"version":3}}"#;
        assert!(BlockMeta::from_json(json.as_bytes()).is_err());
        assert!(BlockMeta::from_json(b"{").is_err());
    }

    #[test]
    fn markers_round_trip_and_check_version() {
        let mark = NoCompactMark {
            id: Ulid::from_string("01M89NNAAPTXNP8ZRPCD3AFPNV").unwrap(),
            version: 1,
            details: String::new(),
            no_compact_time: 5,
            reason: NoCompactReason::IndexSizeExceeding,
        };
        let json = mark.to_json().unwrap();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(
            text.contains("\"reason\": \"index-size-exceeding\""),
            "{text}"
        );
        assert_eq!(NoCompactMark::from_json(&json).unwrap(), mark);
        let other = br#"{"id":"01M89NNAAPTXNP8ZRPCD3AFPNV","version":1,"no_compact_time":1,"reason":"new-reason"}"#;
        assert_eq!(
            NoCompactMark::from_json(other).unwrap().reason,
            NoCompactReason::Other("new-reason".into())
        );
        let bad = br#"{"id":"01M89NNAAPTXNP8ZRPCD3AFPNV","version":2,"deletion_time":1}"#;
        assert!(DeletionMark::from_json(bad).is_err());
    }
}
