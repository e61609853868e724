//! The compactor's error type. Variants name the block or object they are about. Two questions
//! decide what the loop does with an error: [`Error::is_halt`] (going on could lose or corrupt
//! data, or merge blocks nobody allowed to be merged: stop compacting, keep serving metrics)
//! and [`Error::unreadable_block`] (a source block cannot be read: mark it and carry on
//! without it).

use std::path::PathBuf;

use strata_common::error::{ClassifiedError, ErrorCode};
use ulid::Ulid;

/// Errors of the compactor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {object} in bucket")]
    Bucket {
        op: &'static str,
        object: String,
        source: Box<strata_common::objstore::Error>,
    },

    #[error("decode {object}")]
    Decode {
        object: String,
        source: strata_tsdb::Error,
    },

    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("compact group {group}")]
    Compact {
        group: String,
        source: strata_tsdb::Error,
    },

    #[error("downsample block {block}")]
    Downsample {
        block: Ulid,
        source: strata_tsdb::Error,
    },

    /// A block this compactor wrote failed its own check before upload: a bug, so the loop
    /// halts instead of uploading it.
    #[error("compacted block {block} failed verification: {detail}")]
    OutputVerification { block: Ulid, detail: String },

    /// Blocks of one group overlap in time and vertical compaction is off: Thanos's
    /// pre-compaction overlap check, a halt. `blocks` are (ULID, min time, max time).
    #[error(
        "pre compaction overlap check of group {group}: overlapping blocks {}; merging them needs --compact.enable-vertical-compaction (irreversible)",
        overlap_list(.blocks)
    )]
    OverlappingBlocks {
        group: String,
        blocks: Vec<(Ulid, i64, i64)>,
    },

    #[error("load objstore config")]
    Objstore {
        source: Box<strata_common::objstore::Error>,
    },

    #[error("invalid flag {flag}: {reason}")]
    InvalidFlag { flag: &'static str, reason: String },

    #[error("background task {task} failed: {reason}")]
    Task { task: &'static str, reason: String },

    #[error("halted: {reason}")]
    Halted { reason: String },

    #[error(transparent)]
    Common(Box<strata_common::error::Error>),
}

impl Error {
    pub(crate) fn bucket(
        op: &'static str,
        object: impl Into<String>,
        source: strata_common::objstore::Error,
    ) -> Self {
        Error::Bucket {
            op,
            object: object.into(),
            source: Box::new(source),
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether going on after this error could lose or corrupt data.
    pub fn is_halt(&self) -> bool {
        matches!(
            self,
            Error::OutputVerification { .. }
                | Error::OverlappingBlocks { .. }
                | Error::Halted { .. }
        )
    }

    /// The source block that could not be read, when this error is about one.
    pub fn unreadable_block(&self) -> Option<Ulid> {
        match self {
            Error::Compact { source, .. } | Error::Downsample { source, .. } => source
                .unreadable_block()
                .and_then(|name| Ulid::from_string(name).ok()),
            _ => None,
        }
    }

    /// Whether the work stopped because of shutdown.
    pub fn is_cancelled(&self) -> bool {
        matches!(
            self,
            Error::Compact {
                source: strata_tsdb::Error::Cancelled,
                ..
            } | Error::Downsample {
                source: strata_tsdb::Error::Cancelled,
                ..
            }
        )
    }
}

impl ClassifiedError for Error {
    fn error_code(&self) -> ErrorCode {
        match self {
            Self::InvalidFlag { .. } => ErrorCode::BadData,
            Self::Bucket { source, .. } | Self::Objstore { source } => source.code(),
            Self::Decode { .. } => ErrorCode::DataLoss,
            Self::Common(source) => source.error_code(),
            Self::Io { .. }
            | Self::Compact { .. }
            | Self::Downsample { .. }
            | Self::OutputVerification { .. }
            | Self::OverlappingBlocks { .. }
            | Self::Task { .. }
            | Self::Halted { .. } => ErrorCode::Internal,
        }
    }
}

impl From<strata_common::error::Error> for Error {
    fn from(source: strata_common::error::Error) -> Self {
        Error::Common(Box::new(source))
    }
}

/// `01H... [min, max)` for each block, as Prometheus prints overlaps.
fn overlap_list(blocks: &[(Ulid, i64, i64)]) -> String {
    blocks
        .iter()
        .map(|(ulid, min, max)| format!("{ulid} [{min}, {max})"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
