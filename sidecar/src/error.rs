//! The sidecar's error type: failures talking to Prometheus and decoding what it sends (the
//! shipper's errors are `strata_common::shipper::Error`). Each variant names the object
//! involved (URL path, series, file); the class for gRPC and HTTP comes from
//! [`ClassifiedError`], so call sites never build statuses.

use std::path::PathBuf;

use strata_common::error::{ClassifiedError, ErrorCode};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("request prometheus {path}")]
    PrometheusRequest {
        path: &'static str,
        source: reqwest::Error,
    },

    #[error("prometheus {path} answered {status}: {body}")]
    PrometheusStatus {
        path: &'static str,
        status: u16,
        body: String,
    },

    #[error("decode prometheus {path} response: {reason}")]
    PrometheusResponse { path: &'static str, reason: String },

    #[error("parse prometheus config from /api/v1/status/config")]
    PrometheusConfig { source: serde_yaml::Error },

    #[error(
        "no external labels configured on prometheus server, uniquely identifying external labels must be configured; see https://thanos.io/tip/thanos/storage.md#external-labels"
    )]
    NoExternalLabels,

    #[error(
        "found that TSDB max time is {max} and min time is {min}; compaction needs to be disabled (storage.tsdb.min-block-duration = storage.tsdb.max-block-duration)"
    )]
    UnequalBlockDurations { min: String, max: String },

    #[error("prometheus not ready within {timeout:?}: {reason}")]
    PrometheusNotReady {
        timeout: std::time::Duration,
        reason: String,
    },

    #[error("remote read frame at byte {offset}: {reason}")]
    RemoteReadFrame { offset: u64, reason: String },

    #[error("remote read: unsupported chunk encoding {encoding} for series {series}")]
    UnsupportedChunkEncoding { encoding: i32, series: String },

    #[error("encode samples of series {series} into an xor chunk")]
    EncodeChunk {
        series: String,
        source: strata_tsdb::Error,
    },

    #[error("the {what} limit of {limit} per request was exceeded")]
    LimitExceeded { what: &'static str, limit: u64 },

    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },

    #[error(transparent)]
    Common(Box<strata_common::error::Error>),

    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "prometheus /-/reload answered {status}: {body}; have you set the --web.enable-lifecycle prometheus flag?"
    )]
    ReloadRejected { status: u16, body: String },

    #[error("reload prometheus: {reason}")]
    ReloadFailed { reason: String },

    #[error(
        "expand environment variables in {path}: found reference to unset environment variable {name:?}"
    )]
    UnsetEnvironmentVariable { path: PathBuf, name: String },

    #[error("{path} is gzip-compressed; strata cannot decompress reloader config files")]
    GzipConfig { path: PathBuf },

    #[error("failed to find a process named {name:?} to send SIGHUP to")]
    ProcessNotFound { name: String },

    #[error("send SIGHUP to pid {pid}")]
    Signal { pid: i32, source: std::io::Error },

    #[error("objstore config")]
    ObjstoreConfig {
        source: Box<strata_common::objstore::Error>,
    },
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
            // Prometheus stalled: no byte within the remote-read idle timeout.
            Error::PrometheusRequest { source, .. } if source.is_timeout() => ErrorCode::Timeout,
            // Prometheus is down, restarting or answering 503 while its TSDB loads.
            Error::PrometheusRequest { .. }
            | Error::PrometheusNotReady { .. }
            | Error::NoExternalLabels => ErrorCode::Unavailable,
            Error::PrometheusStatus { status, .. } => match status {
                400 => ErrorCode::BadData,
                422 => ErrorCode::Execution,
                503 => ErrorCode::Unavailable,
                _ => ErrorCode::Internal,
            },
            Error::InvalidRequest { .. } => ErrorCode::BadData,
            Error::LimitExceeded { .. } => ErrorCode::ResourceExhausted,
            Error::Common(err) => err.error_code(),
            Error::RemoteReadFrame { .. } | Error::UnsupportedChunkEncoding { .. } => {
                ErrorCode::DataLoss
            }
            Error::ObjstoreConfig { source } => source.code(),
            _ => ErrorCode::Internal,
        }
    }
}
