//! Object storage for every Strata component, configured by Thanos's objstore.yml.
//!
//! - [`config`]: parse and validate objstore.yml (`--objstore.config` / `--objstore.config-file`),
//!   types S3, GCS, AZURE, FILESYSTEM; secrets are redacted in `Debug` and [`BucketConfig::redacted`].
//! - [`build`]: turn a config into an `object_store` store (our own HTTP client so that
//!   TCP_NODELAY, timeouts and TLS files are under our control), with the `prefix` applied.
//! - [`Bucket`]: what components use. It adds retries with exponential backoff and jitter,
//!   per-attempt timeouts, a concurrency limit and Thanos's `thanos_objstore_bucket_*` metrics on
//!   top of the store, and gives uniform semantics across backends (ranged reads past the end,
//!   idempotent delete, NotFound classification).
//!
//! Object names are `/`-separated paths relative to the bucket (and prefix), such as
//! `01H.../meta.json`; "directories" exist only as common prefixes of names.
//!
//! Not here: block-level logic (upload order, markers) lives with the components that own it.

mod bucket;
pub mod build;
pub mod config;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod metrics;

use std::path::PathBuf;
use std::time::Duration;

pub use bucket::{Bucket, BucketOptions, Listing, ObjectAttributes, ObjectInfo, RetryPolicy};
pub use config::{Backend, BucketConfig, Secret};
pub use metrics::BucketMetrics;

/// Result of object-storage operations and config handling.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The bucket operations, named as Thanos names them in the `operation` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Get,
    GetRange,
    Upload,
    Exists,
    Delete,
    Iter,
    Attributes,
}

impl Operation {
    pub const ALL: [Operation; 7] = [
        Operation::Iter,
        Operation::Get,
        Operation::GetRange,
        Operation::Exists,
        Operation::Upload,
        Operation::Delete,
        Operation::Attributes,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::GetRange => "get_range",
            Operation::Upload => "upload",
            Operation::Exists => "exists",
            Operation::Delete => "delete",
            Operation::Iter => "iter",
            Operation::Attributes => "attributes",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of configuration and of bucket operations.
///
/// Each message names what was being done and the object; the underlying cause is part of the
/// message (not returned by `source()`), so a log line carries everything.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no object storage configured: set --objstore.config or --objstore.config-file")]
    ConfigMissing,
    #[error("both --objstore.config and --objstore.config-file are set; use only one")]
    ConfigBothFlags,
    #[error("read objstore config file {}: {error}", path.display())]
    ConfigRead {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("objstore config is empty")]
    ConfigEmpty,
    #[error("parse objstore config: {error}")]
    ConfigSyntax { error: serde_yaml::Error },
    #[error("parse objstore config field `config` for type {kind}: {error}")]
    ConfigSection {
        kind: String,
        error: serde_yaml::Error,
    },
    #[error("objstore config references environment variable {name}, which is not set")]
    ConfigEnvVar { name: String },
    #[error("objstore config: missing required field `{field}`")]
    MissingField { field: &'static str },
    #[error("objstore config: invalid field `{field}`: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error(
        "objstore config: unsupported value {kind:?} of field `type`: Strata supports S3, GCS, AZURE, FILESYSTEM"
    )]
    UnsupportedType { kind: String },
    #[error("read {what} file {} named in the objstore config: {error}", path.display())]
    ReadConfigFile {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("build {kind} object storage client: {error}")]
    Build {
        kind: &'static str,
        error: object_store::Error,
    },
    #[error("create bucket directory {}: {error}", path.display())]
    CreateDirectory {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid object name {path:?}: {error}")]
    InvalidPath {
        path: String,
        error: object_store::path::Error,
    },
    #[error("{operation} {path}: object not found in bucket {bucket}")]
    NotFound {
        bucket: String,
        operation: Operation,
        path: String,
    },
    #[error(
        "{operation} {path} in bucket {bucket}: access denied (check the credentials and the bucket's permissions): {error}"
    )]
    AccessDenied {
        bucket: String,
        operation: Operation,
        path: String,
        error: object_store::Error,
    },
    #[error("{operation} {path} in bucket {bucket}: no answer within {timeout:?}")]
    Timeout {
        bucket: String,
        operation: Operation,
        path: String,
        timeout: Duration,
    },
    #[error("{operation} {path} in bucket {bucket}: {error}")]
    Operation {
        bucket: String,
        operation: Operation,
        path: String,
        error: object_store::Error,
    },
    #[error("{operation} {path} in bucket {bucket}: write the data read: {error}")]
    Sink {
        bucket: String,
        operation: Operation,
        path: String,
        error: std::io::Error,
    },
    #[error("{operation} {path} in bucket {bucket}: local file {}: {error}", file.display())]
    LocalIo {
        bucket: String,
        operation: Operation,
        path: String,
        file: PathBuf,
        error: std::io::Error,
    },
}

impl Error {
    fn missing(field: &'static str) -> Self {
        Error::MissingField { field }
    }

    fn invalid(field: &'static str, reason: &str) -> Self {
        Error::InvalidField {
            field,
            reason: reason.to_string(),
        }
    }

    /// The class of this error for gRPC and HTTP answers (`common::error::ErrorCode`).
    pub fn code(&self) -> crate::error::ErrorCode {
        use crate::error::ErrorCode;
        match self {
            Error::ConfigMissing
            | Error::ConfigBothFlags
            | Error::ConfigRead { .. }
            | Error::ConfigEmpty
            | Error::ConfigSyntax { .. }
            | Error::ConfigSection { .. }
            | Error::ConfigEnvVar { .. }
            | Error::MissingField { .. }
            | Error::InvalidField { .. }
            | Error::UnsupportedType { .. }
            | Error::ReadConfigFile { .. }
            | Error::InvalidPath { .. } => ErrorCode::BadData,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::Timeout { .. } => ErrorCode::Timeout,
            Error::AccessDenied { .. } | Error::Operation { .. } => ErrorCode::Unavailable,
            Error::Build { .. }
            | Error::CreateDirectory { .. }
            | Error::Sink { .. }
            | Error::LocalIo { .. } => ErrorCode::Internal,
        }
    }

    /// The object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// The storage refused the credentials or the permission.
    pub fn is_access_denied(&self) -> bool {
        matches!(self, Error::AccessDenied { .. })
    }

    /// A failure that may go away when the operation is tried again: timeouts, connection and
    /// server errors. Missing objects, bad credentials, bad names and config errors are not.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Timeout { .. } => true,
            Error::Operation { error, .. } => is_transient_store_error(error),
            _ => false,
        }
    }
}

/// object_store has already retried server errors (5xx, 429) and connection failures when it
/// hands us a `Generic` error, and it does not expose the HTTP status; a client error (4xx) is
/// recognisable only by its message. Everything else generic (exhausted retries, a body cut
/// off mid-stream, local I/O) is worth another attempt.
fn is_transient_store_error(error: &object_store::Error) -> bool {
    match error {
        object_store::Error::Generic { .. } | object_store::Error::JoinError { .. } => {
            let text = error.to_string();
            !text.contains("status code: 4") && !text.contains("Requested range was invalid")
        }
        _ => false,
    }
}
