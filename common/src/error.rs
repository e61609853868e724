//! The error type of `strata-common` and the one place where Strata classifies errors.
//!
//! [`ErrorCode`] is a small, closed classification. It is mapped exactly once to a gRPC
//! [`tonic::Code`] ([`ErrorCode::grpc_code`]) and once to an HTTP status plus Prometheus API
//! `errorType` ([`ErrorCode::http_status`], [`ErrorCode::prometheus_error_type`]). Call sites
//! classify an error by giving it a code; they never build statuses from strings.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What kind of failure an error is, independent of the transport that reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed (bad matcher, bad PromQL, bad time range): HTTP 400 `bad_data`.
    BadData,
    /// The request was well-formed but could not be executed: HTTP 422 `execution`.
    Execution,
    /// The client went away or cancelled: HTTP 499 `canceled`.
    Canceled,
    /// A deadline passed: HTTP 503 `timeout`.
    Timeout,
    /// A per-query limit (series, samples, bytes) was exceeded.
    ResourceExhausted,
    /// The thing asked for does not exist.
    NotFound,
    /// A dependency (store, bucket, Prometheus) is unreachable or not ready: HTTP 503.
    Unavailable,
    /// The operation is not supported by this component.
    Unimplemented,
    /// Stored data is corrupt or unreadable.
    DataLoss,
    /// A bug or an unexpected failure: HTTP 500 `internal`.
    Internal,
}

impl ErrorCode {
    /// The gRPC status code for this class of error. This is the only such mapping in Strata.
    pub fn grpc_code(self) -> tonic::Code {
        match self {
            Self::BadData => tonic::Code::InvalidArgument,
            Self::Execution => tonic::Code::FailedPrecondition,
            Self::Canceled => tonic::Code::Cancelled,
            Self::Timeout => tonic::Code::DeadlineExceeded,
            Self::ResourceExhausted => tonic::Code::ResourceExhausted,
            Self::NotFound => tonic::Code::NotFound,
            Self::Unavailable => tonic::Code::Unavailable,
            Self::Unimplemented => tonic::Code::Unimplemented,
            Self::DataLoss => tonic::Code::DataLoss,
            Self::Internal => tonic::Code::Internal,
        }
    }

    /// The class of a gRPC status received from another component (the inverse direction,
    /// used when a store's failure must be reported through the HTTP API).
    pub fn from_grpc_code(code: tonic::Code) -> Self {
        match code {
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => Self::BadData,
            tonic::Code::FailedPrecondition | tonic::Code::Aborted => Self::Execution,
            tonic::Code::Cancelled => Self::Canceled,
            tonic::Code::DeadlineExceeded => Self::Timeout,
            tonic::Code::ResourceExhausted => Self::ResourceExhausted,
            tonic::Code::NotFound => Self::NotFound,
            tonic::Code::Unavailable => Self::Unavailable,
            tonic::Code::Unimplemented => Self::Unimplemented,
            tonic::Code::DataLoss => Self::DataLoss,
            _ => Self::Internal,
        }
    }

    /// The HTTP status for this class of error, as Prometheus's HTTP API answers it
    /// (`web/api/v1/api.go`: bad_data 400, execution 422, canceled 499, timeout 503,
    /// internal 500, unavailable 503). This is the only such mapping in Strata.
    pub fn http_status(self) -> http::StatusCode {
        match self {
            Self::BadData => http::StatusCode::BAD_REQUEST,
            Self::Execution | Self::ResourceExhausted => http::StatusCode::UNPROCESSABLE_ENTITY,
            // 499 is nginx's "client closed request"; Prometheus uses it for canceled queries.
            Self::Canceled => {
                http::StatusCode::from_u16(499).unwrap_or(http::StatusCode::BAD_REQUEST)
            }
            Self::Timeout | Self::Unavailable => http::StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound => http::StatusCode::NOT_FOUND,
            Self::Unimplemented => http::StatusCode::NOT_IMPLEMENTED,
            Self::DataLoss | Self::Internal => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The Prometheus HTTP API `errorType` string for this class of error.
    pub fn prometheus_error_type(self) -> &'static str {
        match self {
            Self::BadData => "bad_data",
            Self::Execution | Self::ResourceExhausted => "execution",
            Self::Canceled => "canceled",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::NotFound => "not_found",
            Self::Unimplemented | Self::DataLoss | Self::Internal => "internal",
        }
    }

    /// A gRPC status of this class carrying `message`.
    pub fn to_status(self, message: impl Into<String>) -> tonic::Status {
        tonic::Status::new(self.grpc_code(), message)
    }
}

/// Implemented by every error type that crosses a service boundary, so that the gRPC and HTTP
/// layers can report it with the right code.
pub trait ClassifiedError: std::error::Error {
    fn error_code(&self) -> ErrorCode;

    /// The gRPC status for this error: its class plus its full message chain.
    fn to_grpc_status(&self) -> tonic::Status
    where
        Self: Sized,
    {
        self.error_code().to_status(error_chain(self))
    }
}

/// `err` and all its sources joined with ": ", the way Go errors print.
pub fn error_chain(err: &(dyn std::error::Error + '_)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Errors of the service scaffolding: servers, telemetry, flags and StoreAPI client glue.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bind {server} server to {address}")]
    Bind {
        server: &'static str,
        address: SocketAddr,
        source: std::io::Error,
    },

    #[error("resolve {server} address {address:?}")]
    ResolveAddress {
        server: &'static str,
        address: String,
        source: std::io::Error,
    },

    #[error("no address found for {server} address {address:?}")]
    NoAddress {
        server: &'static str,
        address: String,
    },

    #[error("serve {server}")]
    Serve {
        server: &'static str,
        source: std::io::Error,
    },

    #[error("serve grpc")]
    ServeGrpc { source: tonic::transport::Error },

    #[error("read {what} file {path}")]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("configure grpc server tls: {reason}")]
    GrpcServerTls { reason: String },

    #[error("configure grpc client tls")]
    GrpcClientTls { source: tonic::transport::Error },

    #[error("invalid flag {flag}: {reason}")]
    InvalidFlag { flag: &'static str, reason: String },

    #[error("parse tracing config")]
    TracingConfig { source: serde_yaml::Error },

    #[error("set up logging: {reason}")]
    Logging { reason: String },

    #[error("invalid storeapi endpoint {endpoint:?}")]
    InvalidEndpoint {
        endpoint: String,
        source: tonic::transport::Error,
    },

    #[error("connect to storeapi endpoint {endpoint}")]
    Connect {
        endpoint: String,
        source: tonic::transport::Error,
    },

    #[error("call {method} on {endpoint}")]
    Call {
        method: &'static str,
        endpoint: String,
        source: tonic::Status,
    },

    #[error("invalid label matcher {name:?}: {reason}")]
    InvalidMatcher { name: String, reason: String },

    #[error("task {task} failed: {reason}")]
    TaskFailed { task: &'static str, reason: String },

    #[error("unknown label matcher type {matcher_type} for label {name:?}")]
    UnknownMatcherType { name: String, matcher_type: i32 },

    #[error("no matchers specified (excluding external labels)")]
    NoMatchersExcludingExternalLabels,

    #[error("parse --selector.relabel-config: {reason}")]
    RelabelConfig { reason: String },

    #[error("dns lookup of {address:?}: {reason}")]
    Dns { address: String, reason: String },
}

impl ClassifiedError for Error {
    fn error_code(&self) -> ErrorCode {
        match self {
            Self::InvalidMatcher { .. }
            | Self::UnknownMatcherType { .. }
            | Self::NoMatchersExcludingExternalLabels
            | Self::InvalidFlag { .. }
            | Self::RelabelConfig { .. } => ErrorCode::BadData,
            Self::TracingConfig { .. }
            | Self::InvalidEndpoint { .. }
            | Self::GrpcServerTls { .. } => ErrorCode::BadData,
            Self::Connect { .. } | Self::Dns { .. } => ErrorCode::Unavailable,
            Self::Call { source, .. } => ErrorCode::from_grpc_code(source.code()),
            Self::Bind { .. }
            | Self::ResolveAddress { .. }
            | Self::NoAddress { .. }
            | Self::Serve { .. }
            | Self::ServeGrpc { .. }
            | Self::ReadFile { .. }
            | Self::GrpcClientTls { .. }
            | Self::Logging { .. }
            | Self::TaskFailed { .. } => ErrorCode::Internal,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorCode; 10] = [
        ErrorCode::BadData,
        ErrorCode::Execution,
        ErrorCode::Canceled,
        ErrorCode::Timeout,
        ErrorCode::ResourceExhausted,
        ErrorCode::NotFound,
        ErrorCode::Unavailable,
        ErrorCode::Unimplemented,
        ErrorCode::DataLoss,
        ErrorCode::Internal,
    ];

    #[test]
    fn prometheus_api_status_codes() {
        assert_eq!(ErrorCode::BadData.http_status().as_u16(), 400);
        assert_eq!(ErrorCode::Execution.http_status().as_u16(), 422);
        assert_eq!(ErrorCode::Canceled.http_status().as_u16(), 499);
        assert_eq!(ErrorCode::Timeout.http_status().as_u16(), 503);
        assert_eq!(ErrorCode::Internal.http_status().as_u16(), 500);
        assert_eq!(ErrorCode::Unavailable.http_status().as_u16(), 503);
        assert_eq!(ErrorCode::BadData.prometheus_error_type(), "bad_data");
        assert_eq!(ErrorCode::Timeout.prometheus_error_type(), "timeout");
    }

    #[test]
    fn grpc_mapping_round_trips() {
        for code in ALL {
            assert_eq!(
                ErrorCode::from_grpc_code(code.grpc_code()),
                code,
                "{code:?}"
            );
        }
        assert_eq!(
            ErrorCode::ResourceExhausted.grpc_code(),
            tonic::Code::ResourceExhausted
        );
        assert_eq!(ErrorCode::BadData.grpc_code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn status_carries_the_error_chain() {
        let err = Error::Call {
            method: "Series",
            endpoint: "a:1".into(),
            source: tonic::Status::resource_exhausted("too many series"),
        };
        let status = err.to_grpc_status();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(
            status.message().starts_with("call Series on a:1: "),
            "{}",
            status.message()
        );
        assert!(
            status.message().contains("too many series"),
            "{}",
            status.message()
        );
    }
}
