//! Shared ground for the four Strata services and the tools: object storage from Thanos's
//! objstore.yml, labels and matchers, StoreAPI glue, the block shipper, telemetry, the HTTP and gRPC servers,
//! Thanos-compatible flag groups and the shutdown tree. One module per concern.

pub mod dns;
pub mod error;
pub mod flags;
pub mod grpc_server;
pub mod http_server;
pub mod labels;
pub mod objstore;
pub mod relabel;
pub mod secret;
pub mod shipper;
pub mod shutdown;
pub mod storeapi;
pub mod telemetry;
