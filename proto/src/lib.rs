//! Strata's protobuf contracts, wire-compatible with Thanos and Prometheus:
//!
//! - [`thanos`]: the StoreAPI (`/thanos.Store/Series`, `LabelNames`, `LabelValues` and the
//!   legacy `Info`), with its label, chunk and series types;
//! - [`thanos::info`]: the Info API (`/thanos.info.Info/Info`) a querier uses to discover what
//!   an endpoint serves;
//! - [`hintspb`]: store-gateway hints carried in `google.protobuf.Any`;
//! - [`prometheus`]: Prometheus remote read (and write) messages, used by the sidecar;
//! - [`grpc::health::v1`]: the standard gRPC health protocol.
//!
//! The `.proto` files under `proto/` were written for Strata from the field tables in
//! `shared/reference/{thanos,prometheus}.md`; package, service and message names and field
//! numbers are Thanos's and Prometheus's, so the HTTP/2 paths and bytes on the wire match.
//! Code is generated at build time (`protox` + `tonic-prost-build`) into the [`generated`]
//! module and never edited; hand-written helpers live in [`conversions`].

pub mod conversions;

/// Generated prost messages and tonic services. Do not edit: change the `.proto` files.
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    missing_docs,
    rustdoc::all,
    unreachable_pub
)]
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/strata_proto_includes.rs"));
}

pub use generated::{grpc, hintspb, prometheus, thanos};

/// Type URL prefix Thanos uses when packing hints into `google.protobuf.Any`.
pub const ANY_TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// Full gRPC method paths, as they appear in the HTTP/2 `:path` header.
pub mod paths {
    pub const STORE_SERIES: &str = "/thanos.Store/Series";
    pub const STORE_LABEL_NAMES: &str = "/thanos.Store/LabelNames";
    pub const STORE_LABEL_VALUES: &str = "/thanos.Store/LabelValues";
    pub const STORE_INFO: &str = "/thanos.Store/Info";
    pub const INFO_INFO: &str = "/thanos.info.Info/Info";
    pub const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
}

#[cfg(test)]
mod tests;
