//! `strata-promql`: PromQL evaluation with Prometheus 2.42's exact semantics over a storage
//! trait. It has no network and no object storage in it.
//!
//! - [`parser`]: parsing through the `promql-parser` crate, adjusted to the 2.42 language.
//! - [`storage`]: the `Queryable` / `Querier` / `SeriesSet` / `SampleIterator` interface the
//!   engine reads from, with select hints, plus an in-memory implementation.
//! - [`depth`]: the nesting bound every parse applies, deep-stack threads for deep queries,
//!   and [`ParsedExpr`], a tree that drops without recursion.
//! - [`engine`]: instant and range evaluation, limits, timeout, cancellation and statistics.
//! - [`promqltest`]: a runner for Prometheus's promqltest files (the conformance suite).
//!
//! Invariants: timestamps are milliseconds since the epoch; windows are closed on both ends
//! (2.42); stale markers are detected bitwise and never reach results; no input panics.

mod bare_numbers;
pub mod depth;
pub mod engine;
pub mod error;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod labels;
pub mod matcher;
pub mod parser;
pub mod promqltest;
pub mod storage;
mod syntax_error;
pub mod value;

pub use depth::{MAX_NESTING_DEPTH, ParsedExpr};
pub use engine::{CancellationToken, Engine, EngineOptions, QueryResult, QueryStats};
pub use error::{Error, Result};
pub use labels::{Label, Labels};
pub use matcher::{MatchType, Matcher};
pub use storage::memory::MemoryStorage;
pub use storage::{
    Querier, Queryable, SampleIterator, SelectHints, SeriesSet, StorageSeries, ValueKind,
};
pub use value::{Point, Sample, Series, Value};
