//! The crate's single error type. Variants follow Prometheus's error classes so the HTTP layer
//! can map them once: parse errors are `bad_data` (400), evaluation errors are `execution` (422),
//! the timeout and cancellation have their own codes, storage failures are `internal`/`execution`.

use std::time::Duration;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while parsing or evaluating a PromQL query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The query text does not parse; `position` is `line:column` (1-based) like Prometheus.
    #[error("{position}: parse error: {message}")]
    Parse { position: String, message: String },
    /// The query nests deeper than the engine follows (`depth::MAX_NESTING_DEPTH`); refused
    /// before parsing, as bad input.
    #[error(
        "parse error: query is nested too deeply: more than {limit} levels of parentheses, function calls, subqueries and operators"
    )]
    TooDeep { limit: usize },
    /// No thread could be started for a deeply nested query.
    #[error("start a thread for a deeply nested query")]
    Thread {
        #[source]
        source: std::io::Error,
    },
    /// A query that parses but cannot be evaluated as asked (a range query of a range vector
    /// or string): Prometheus rejects it before evaluation, as bad input.
    #[error("{message}")]
    InvalidQuery { message: String },
    /// A runtime evaluation error; the message is Prometheus's text for the same condition.
    #[error("{message}")]
    Execution { message: String },
    /// The query would hold more samples than the configured maximum.
    #[error("query processing would load too many samples into memory in {stage}")]
    TooManySamples { stage: &'static str },
    /// The query ran longer than its timeout.
    #[error("query timed out in {stage}")]
    Timeout {
        stage: &'static str,
        timeout: Duration,
    },
    /// The query was cancelled by its caller.
    #[error("query was canceled in {stage}")]
    Canceled { stage: &'static str },
    /// The storage behind the engine failed.
    #[error("select series from storage")]
    Storage {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A promqltest file is malformed.
    #[error("{file}:{line}: {message}")]
    TestFile {
        file: String,
        line: usize,
        message: String,
    },
}

impl Error {
    /// Builds an execution error with a Prometheus message text.
    pub(crate) fn exec(message: impl Into<String>) -> Self {
        Error::Execution {
            message: message.into(),
        }
    }
}
