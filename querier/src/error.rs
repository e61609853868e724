//! The querier's error type. Each variant names what failed (the store, the parameter, the
//! file) and is classified once through [`ClassifiedError`], which gives the HTTP status and
//! Prometheus `errorType` of the query API and the gRPC code of the proxy StoreAPI.

use std::path::PathBuf;

use strata_common::error::{ClassifiedError, ErrorCode};

/// Everything that can go wrong while discovering endpoints or answering a query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request parameter is malformed; the message is Prometheus's text for it.
    #[error("{message}")]
    BadParameter { message: String },

    /// A store failed while partial response was disabled.
    #[error("receive series from {store}: {message}")]
    Store {
        store: String,
        code: ErrorCode,
        message: String,
    },

    /// A store sent nothing within `--store.response-timeout` while partial response was off.
    #[error("receive series from {store}: no response within {timeout:?}")]
    StoreTimeout {
        store: String,
        timeout: std::time::Duration,
    },

    /// No store can answer and partial response is disabled.
    #[error("no store matched for this query")]
    NoStores,

    /// A chunk sent by a store could not be decoded.
    #[error("decode chunk of series {series} from the stores")]
    DecodeChunk {
        series: String,
        source: strata_tsdb::Error,
    },

    /// The PromQL engine failed.
    #[error(transparent)]
    Promql(#[from] strata_promql::Error),

    /// The query waited too long for a slot of `--query.max-concurrent`.
    #[error("query timed out in queue")]
    QueueTimeout,

    /// A blocking evaluation task died.
    #[error("query evaluation task failed: {reason}")]
    Task { reason: String },

    /// The file SD file could not be read or parsed.
    #[error("read store sd file {path}: {reason}")]
    SdFile { path: PathBuf, reason: String },

    /// A flag's value cannot be used; start-up stops naming it.
    #[error("invalid --{flag}={value:?}: expected {expected}")]
    BadFlag {
        flag: &'static str,
        value: String,
        expected: &'static str,
    },

    /// Scaffolding (servers, clients) failed.
    #[error(transparent)]
    Common(#[from] strata_common::error::Error),
}

impl ClassifiedError for Error {
    fn error_code(&self) -> ErrorCode {
        match self {
            Self::BadParameter { .. } | Self::BadFlag { .. } => ErrorCode::BadData,
            Self::Store { code, .. } => *code,
            Self::StoreTimeout { .. } => ErrorCode::Timeout,
            Self::NoStores => ErrorCode::Unavailable,
            Self::DecodeChunk { .. } => ErrorCode::DataLoss,
            Self::Promql(err) => promql_error_code(err),
            Self::QueueTimeout => ErrorCode::Timeout,
            Self::Task { .. } => ErrorCode::Internal,
            Self::SdFile { .. } => ErrorCode::Unavailable,
            Self::Common(err) => err.error_code(),
        }
    }
}

/// Prometheus's classification of engine errors (prometheus.md 5.2): parse errors and queries
/// invalid for their kind of evaluation are `bad_data`, timeouts and cancellations have their own types, everything else, including
/// runtime errors and the sample limit, is `execution`. Storage failures keep the class of the
/// store error that caused them (a timed-out store is a timeout).
fn promql_error_code(err: &strata_promql::Error) -> ErrorCode {
    match err {
        strata_promql::Error::Parse { .. }
        | strata_promql::Error::InvalidQuery { .. }
        | strata_promql::Error::TooDeep { .. } => ErrorCode::BadData,
        strata_promql::Error::Thread { .. } => ErrorCode::Internal,
        strata_promql::Error::Timeout { .. } => ErrorCode::Timeout,
        strata_promql::Error::Canceled { .. } => ErrorCode::Canceled,
        strata_promql::Error::Storage { source } => match source.downcast_ref::<Error>() {
            Some(inner) => inner.error_code(),
            None => ErrorCode::Internal,
        },
        _ => ErrorCode::Execution,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_keep_prometheus_classes() {
        let parse = Error::from(strata_promql::Error::Parse {
            position: "1:5".into(),
            message: "unexpected".into(),
        });
        assert_eq!(parse.error_code(), ErrorCode::BadData);
        let samples = Error::from(strata_promql::Error::TooManySamples { stage: "x" });
        assert_eq!(samples.error_code().http_status().as_u16(), 422);
        let storage = Error::from(strata_promql::Error::Storage {
            source: Box::new(Error::StoreTimeout {
                store: "a:1".into(),
                timeout: std::time::Duration::from_secs(1),
            }),
        });
        assert_eq!(storage.error_code(), ErrorCode::Timeout);
    }
}
