//! Prometheus TSDB blocks, read and written byte-compatibly with Prometheus 2.42, plus the parts
//! Thanos adds (the `thanos` section of meta.json, marker files, the 0xFF aggregate chunk).
//!
//! What is here, bottom-up:
//! - [`encoding`]: varints, big-endian integers, CRC-32C; [`gofmt`]: Go's `%q` and `%g`.
//! - [`chunkenc`]: chunk encodings ([`chunkenc::XorAppender`], [`chunkenc::XorIterator`],
//!   [`chunkenc::AggrChunk`]).
//! - [`labels`]: [`labels::Labels`], [`labels::Matcher`], [`labels::parse_selector`].
//! - [`meta`]: [`meta::BlockMeta`] and the marker files.
//! - [`dump`]: the `promtool tsdb dump` line format.
//! - [`source`]: [`source::ByteSource`], random access to a file's bytes (local or remote).
//! - [`chunks`]: chunk segment files; [`index`]: the index (pure section decoders,
//!   [`index::IndexReader`], [`index::IndexWriter`], postings and matcher lookup);
//!   [`tombstones`]: the tombstones file.
//! - [`block`]: [`block::Block`] (open, select, iterate samples) and [`block::BlockWriter`].
//! - [`compact`]: merging blocks into new blocks (k-way, chunks copied where they do not
//!   overlap, vertical merge where they do, output cut before the index limits).
//! - [`downsample`]: 5m and 1h aggregate blocks exactly as Thanos builds them, and the
//!   counter-reset-applying reader of counter aggregates.
//! - [`dedup`]: merging the replicas of a series (Thanos's penalty algorithm, chained merge),
//!   shared by the querier and the compactor.
//!
//! - [`verify`]: block health checks (order, overlaps, ranges, chunk checksums).
//!
//! Invariants: no input bytes can make this crate panic; every decoder returns [`Error`]
//! naming the section and offset, and the block layer adds the block and file.
//!
//! Not here: the head/WAL (Strata never ingests), native-histogram sample decoding (2.42 dump
//! semantics stop at histograms; their chunks are carried as bytes), index format v1.

pub mod block;
pub mod chunkenc;
pub mod chunks;
pub mod compact;
pub mod dedup;
pub mod downsample;
pub mod dump;
pub mod encoding;
mod error;
pub mod gofmt;
pub mod index;
pub mod labels;
pub mod meta;
pub mod source;
pub mod tombstones;
pub mod verify;

pub use block::{Block, BlockWriter};
pub use error::{Error, Result};
