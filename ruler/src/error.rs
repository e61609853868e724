//! The ruler's error type. Each variant names what it was doing and on what (rule file and
//! line, query endpoint, Alertmanager, block); the class for gRPC and HTTP comes from
//! [`ClassifiedError`], so call sites never build statuses.

use std::path::PathBuf;

use strata_common::error::{ClassifiedError, ErrorCode};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}:{line}: {reason}")]
    RuleFile {
        file: String,
        line: usize,
        reason: String,
    },

    #[error("read rule file {file}")]
    RuleFileRead {
        file: String,
        source: std::io::Error,
    },

    #[error("rule file pattern {pattern:?}: {reason}")]
    RuleGlob { pattern: String, reason: String },

    #[error("invalid flag {flag}: {reason}")]
    InvalidFlag { flag: &'static str, reason: String },

    #[error("{what}: {reason}")]
    Config { what: &'static str, reason: String },

    #[error("no query API server reachable")]
    NoQueryApiReachable,

    #[error("query {endpoint}: {reason}")]
    Query { endpoint: String, reason: String },

    #[error("query {endpoint} answered {status} ({error_type}): {message}")]
    QueryStatus {
        endpoint: String,
        status: u16,
        error_type: String,
        message: String,
    },

    #[error("rule {rule}: {reason}")]
    Rule { rule: String, reason: String },

    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("write block {block}")]
    WriteBlock {
        block: String,
        source: strata_tsdb::Error,
    },

    #[error("read block {block}")]
    ReadBlock {
        block: String,
        source: strata_tsdb::Error,
    },

    #[error("write-ahead log {path}: {reason}")]
    Wal { path: PathBuf, reason: String },

    #[error("objstore config")]
    ObjstoreConfig {
        source: Box<strata_common::objstore::Error>,
    },

    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },

    #[error(transparent)]
    Common(Box<strata_common::error::Error>),
}

impl Error {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

impl From<strata_common::error::Error> for Error {
    fn from(err: strata_common::error::Error) -> Self {
        Error::Common(Box::new(err))
    }
}

impl ClassifiedError for Error {
    fn error_code(&self) -> ErrorCode {
        match self {
            Error::RuleFile { .. }
            | Error::RuleGlob { .. }
            | Error::InvalidFlag { .. }
            | Error::Config { .. }
            | Error::InvalidRequest { .. } => ErrorCode::BadData,
            Error::NoQueryApiReachable | Error::Query { .. } => ErrorCode::Unavailable,
            Error::QueryStatus { status, .. } => match status {
                400 => ErrorCode::BadData,
                422 => ErrorCode::Execution,
                503 => ErrorCode::Unavailable,
                _ => ErrorCode::Internal,
            },
            Error::ReadBlock { .. } => ErrorCode::DataLoss,
            Error::ObjstoreConfig { source } => source.code(),
            Error::Common(err) => err.error_code(),
            _ => ErrorCode::Internal,
        }
    }
}
