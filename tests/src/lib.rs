//! Harness for Strata's end-to-end tests: real Prometheus and promtool (Debian's 2.42), a real S3
//! server (moto, with authentication on) and the real Strata binaries, all on 127.0.0.1.
//! Browser tests drive headless Chromium ([`browser`]). The tests themselves live in
//! `tests/tests/*.rs`.

pub mod bins;
pub mod browser;
pub mod compactor;
pub mod compose;
pub mod demo_service;
pub mod faults;
pub mod monitoring;
pub mod prom;
pub mod ruler;
pub mod s3;
pub mod sidecar;
pub mod store_gateway;
pub mod storeapi_fixture;
