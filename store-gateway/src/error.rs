//! The store gateway's error type. Each variant names the object it is about (block, object
//! path, label) and is classified once into an [`ErrorCode`], which maps it to a gRPC status.

use strata_common::error::{ClassifiedError, ErrorCode};
use ulid::Ulid;

/// Errors of the store gateway.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read {object} of block {block}")]
    Bucket {
        block: Ulid,
        object: String,
        source: Box<strata_common::objstore::Error>,
    },

    #[error("list blocks in bucket")]
    List {
        source: Box<strata_common::objstore::Error>,
    },

    #[error("decode {object} of block {block}")]
    Decode {
        block: Ulid,
        object: String,
        source: strata_tsdb::Error,
    },

    #[error("index-header of block {block}: {detail}")]
    IndexHeader { block: Ulid, detail: String },

    #[error("{op} index-header file {path}")]
    IndexHeaderIo {
        op: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },

    #[error("invalid request: {source}")]
    Request {
        source: Box<strata_common::error::Error>,
    },

    #[error("invalid request: {reason}")]
    BadRequest { reason: String },

    #[error("exceeded {what} limit: {limit}")]
    Limit { what: &'static str, limit: u64 },

    #[error("store gateway is not ready: initial block sync has not finished")]
    NotReady,

    #[error("load objstore config")]
    Objstore {
        source: Box<strata_common::objstore::Error>,
    },

    #[error("create data directory {path}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },

    #[error("blocking task failed: {reason}")]
    Join { reason: String },

    #[error(transparent)]
    Common(Box<strata_common::error::Error>),
}

impl ClassifiedError for Error {
    fn error_code(&self) -> ErrorCode {
        match self {
            Self::Request { source } => source.error_code(),
            Self::Common(source) => source.error_code(),
            Self::BadRequest { .. } => ErrorCode::BadData,
            Self::Limit { .. } => ErrorCode::ResourceExhausted,
            Self::NotReady => ErrorCode::Unavailable,
            Self::Bucket { source, .. } | Self::List { source } | Self::Objstore { source } => {
                source.code()
            }
            Self::Decode { .. } | Self::IndexHeader { .. } => ErrorCode::DataLoss,
            Self::IndexHeaderIo { .. } | Self::DataDir { .. } | Self::Join { .. } => {
                ErrorCode::Internal
            }
        }
    }
}

impl From<strata_common::error::Error> for Error {
    fn from(source: strata_common::error::Error) -> Self {
        Error::Common(Box::new(source))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs CPU-bound `work` off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| Error::Join {
            reason: err.to_string(),
        })?
}
