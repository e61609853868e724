//! A StoreAPI client for any Thanos-compatible endpoint (Strata's or Thanos's sidecar, store
//! gateway, querier): connect to `HOST:PORT` with optional TLS from the `--grpc-client-tls-*`
//! flags, call `Series` and read its frames, or collect them into complete series.
//!
//! A series may arrive split over consecutive frames with identical labels, and batched frames
//! carry several series; [`SeriesStream::next_item`] undoes both, so callers see each series
//! once, whole. [`testing`] holds a small in-memory StoreAPI server for tests.

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod external;
pub mod final_order;
pub mod streaming;
pub mod testing;

use std::time::Duration;

use strata_proto::thanos;
use strata_proto::thanos::series_response;
use strata_proto::thanos::store_client::StoreClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::error::{Error, Result};
use crate::flags::GrpcClientFlags;
use crate::grpc_server::MAX_MESSAGE_SIZE;

/// Thanos's client keepalive: ping every 10s, 5s timeout (servers reject faster pings).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected StoreAPI client.
#[derive(Debug, Clone)]
pub struct StoreApiClient {
    endpoint: String,
    store: StoreClient<Channel>,
    info: thanos::info::info_client::InfoClient<Channel>,
}

fn read_pem(what: &'static str, path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::ReadFile {
        what,
        path: path.into(),
        source,
    })
}

/// The client TLS config for the flags, or `None` for plaintext (h2c).
pub fn client_tls_config(flags: &GrpcClientFlags, host: &str) -> Result<Option<ClientTlsConfig>> {
    if !flags.grpc_client_tls_secure {
        return Ok(None);
    }
    if flags.grpc_client_tls_skip_verify {
        // rustls through tonic has no switch to skip verification; refusing is safer than
        // silently verifying (which would fail later with a less clear error).
        return Err(Error::InvalidFlag {
            flag: "--grpc-client-tls-skip-verify",
            reason: "skipping TLS verification is not supported; pass --grpc-client-tls-ca"
                .to_owned(),
        });
    }
    let server_name = if flags.grpc_client_server_name.is_empty() {
        host
    } else {
        &flags.grpc_client_server_name
    };
    let mut tls = ClientTlsConfig::new().domain_name(server_name);
    if flags.grpc_client_tls_ca.is_empty() {
        tls = tls.with_native_roots();
    } else {
        tls = tls.ca_certificate(Certificate::from_pem(read_pem(
            "grpc client tls ca",
            &flags.grpc_client_tls_ca,
        )?));
    }
    match (
        flags.grpc_client_tls_cert.is_empty(),
        flags.grpc_client_tls_key.is_empty(),
    ) {
        (true, true) => {}
        (false, false) => {
            let cert = read_pem("grpc client tls certificate", &flags.grpc_client_tls_cert)?;
            let key = read_pem("grpc client tls key", &flags.grpc_client_tls_key)?;
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        _ => {
            return Err(Error::InvalidFlag {
                flag: "--grpc-client-tls-cert",
                reason: "--grpc-client-tls-cert and --grpc-client-tls-key must be given together"
                    .to_owned(),
            });
        }
    }
    Ok(Some(tls))
}

/// A tonic endpoint for `HOST:PORT` with Thanos's transport settings.
pub fn endpoint(address: &str, flags: &GrpcClientFlags) -> Result<Endpoint> {
    let scheme = if flags.grpc_client_tls_secure {
        "https"
    } else {
        "http"
    };
    let uri = format!("{scheme}://{address}");
    let mut endpoint = Endpoint::from_shared(uri)
        .map_err(|source| Error::InvalidEndpoint {
            endpoint: address.to_owned(),
            source,
        })?
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT);
    let host = endpoint.uri().host().unwrap_or_default().to_owned();
    if let Some(tls) = client_tls_config(flags, &host)? {
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|source| Error::GrpcClientTls { source })?;
    }
    Ok(endpoint)
}

impl StoreApiClient {
    /// Connects to the StoreAPI at `address` (`HOST:PORT`).
    pub async fn connect(address: &str, flags: &GrpcClientFlags) -> Result<Self> {
        let channel = endpoint(address, flags)?
            .connect()
            .await
            .map_err(|source| Error::Connect {
                endpoint: address.to_owned(),
                source,
            })?;
        Ok(Self::from_channel(address, channel))
    }

    /// A client over an existing channel.
    pub fn from_channel(address: &str, channel: Channel) -> Self {
        let store = StoreClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let info = thanos::info::info_client::InfoClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        Self {
            endpoint: address.to_owned(),
            store,
            info,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn call_error(&self, method: &'static str, source: tonic::Status) -> Error {
        Error::Call {
            method,
            endpoint: self.endpoint.clone(),
            source,
        }
    }

    /// Calls `Series` and returns its stream of frames. A `tonic::Request` may carry a timeout,
    /// sent as `grpc-timeout` so the store knows the caller's deadline.
    pub async fn series(
        &mut self,
        request: impl tonic::IntoRequest<thanos::SeriesRequest>,
    ) -> Result<SeriesStream> {
        let frames = self
            .store
            .series(request)
            .await
            .map_err(|status| self.call_error("Series", status))?;
        Ok(SeriesStream {
            endpoint: self.endpoint.clone(),
            frames: frames.into_inner(),
            pending: None,
            queued: Vec::new(),
            done: false,
        })
    }

    /// Calls `/thanos.info.Info/Info`.
    pub async fn info(&mut self) -> Result<thanos::info::InfoResponse> {
        let response = self.info.info(thanos::info::InfoRequest {}).await;
        response
            .map(tonic::Response::into_inner)
            .map_err(|status| self.call_error("Info", status))
    }

    pub async fn label_names(
        &mut self,
        request: thanos::LabelNamesRequest,
    ) -> Result<thanos::LabelNamesResponse> {
        let response = self.store.label_names(request).await;
        response
            .map(tonic::Response::into_inner)
            .map_err(|status| self.call_error("LabelNames", status))
    }

    pub async fn label_values(
        &mut self,
        request: thanos::LabelValuesRequest,
    ) -> Result<thanos::LabelValuesResponse> {
        let response = self.store.label_values(request).await;
        response
            .map(tonic::Response::into_inner)
            .map_err(|status| self.call_error("LabelValues", status))
    }
}

/// One logical item of a Series response.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesItem {
    /// A complete series: frames with identical consecutive labels are joined.
    Series(thanos::Series),
    Warning(String),
    Hints(prost_types::Any),
}

/// The frames of one Series call, read as complete series.
#[derive(Debug)]
pub struct SeriesStream {
    endpoint: String,
    frames: tonic::Streaming<thanos::SeriesResponse>,
    /// The series being assembled from consecutive frames.
    pending: Option<thanos::Series>,
    /// Items ready to hand out, in reverse order (popped from the back).
    queued: Vec<SeriesItem>,
    done: bool,
}

impl SeriesStream {
    /// The next raw frame, `Ok(None)` at the end of the stream.
    pub async fn next_frame(&mut self) -> Result<Option<thanos::SeriesResponse>> {
        self.frames.message().await.map_err(|source| Error::Call {
            method: "Series",
            endpoint: self.endpoint.clone(),
            source,
        })
    }

    /// The next complete series, warning or hints; `Ok(None)` at the end of the stream.
    pub async fn next_item(&mut self) -> Result<Option<SeriesItem>> {
        loop {
            if let Some(item) = self.queued.pop() {
                return Ok(Some(item));
            }
            if self.done {
                return Ok(self.pending.take().map(SeriesItem::Series));
            }
            let Some(frame) = self.next_frame().await? else {
                self.done = true;
                continue;
            };
            let mut ready = Vec::new();
            match frame.result {
                Some(series_response::Result::Series(series)) => {
                    self.push_series(series, &mut ready)
                }
                Some(series_response::Result::Batch(batch)) => {
                    for series in batch.series {
                        self.push_series(series, &mut ready);
                    }
                }
                Some(series_response::Result::Warning(warning)) => {
                    ready.push(SeriesItem::Warning(warning))
                }
                Some(series_response::Result::Hints(hints)) => ready.push(SeriesItem::Hints(hints)),
                // An empty frame (a newer oneof variant we do not know) carries nothing for us.
                None => {}
            }
            ready.reverse();
            self.queued = ready;
        }
    }

    /// Adds a series fragment: joins it to the pending series when the labels are the same,
    /// else finishes the pending one.
    fn push_series(&mut self, series: thanos::Series, ready: &mut Vec<SeriesItem>) {
        match &mut self.pending {
            Some(pending) if pending.labels == series.labels => {
                pending.chunks.extend(series.chunks)
            }
            _ => {
                if let Some(finished) = self.pending.replace(series) {
                    ready.push(SeriesItem::Series(finished));
                }
            }
        }
    }

    /// Reads the whole stream.
    pub async fn collect(mut self) -> Result<CollectedSeries> {
        let mut collected = CollectedSeries::default();
        while let Some(item) = self.next_item().await? {
            match item {
                SeriesItem::Series(series) => collected.series.push(series),
                SeriesItem::Warning(warning) => collected.warnings.push(warning),
                SeriesItem::Hints(hints) => collected.hints.push(hints),
            }
        }
        Ok(collected)
    }
}

/// A whole Series response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectedSeries {
    pub series: Vec<thanos::Series>,
    pub warnings: Vec<String>,
    pub hints: Vec<prost_types::Any>,
}

#[cfg(test)]
mod tests;
