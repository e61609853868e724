//! The gRPC server every StoreAPI component runs on `--grpc-address` (tonic): TLS from the
//! `--grpc-server-tls-*` flags (handshaken in our own accept path with rustls so that
//! `--grpc-server-tls-min-version` is enforced, [`tls`]), Thanos's transport settings (no
//! message size limit, connection max age), the standard gRPC health service driven by the
//! component's [`Prober`], and a tower layer recording the go-grpc-middleware metrics
//! Thanos's dashboards use: `grpc_server_started_total`, `grpc_server_handled_total` and
//! `grpc_server_handling_seconds` with labels `grpc_service`, `grpc_method`, `grpc_type` (and
//! `grpc_code` on handled).
//!
//! A client cannot pin a connection: the first bytes must arrive within [`PREFACE_TIMEOUT`],
//! then HTTP/2 keepalive pings must be answered, a connection carries at most
//! [`MAX_CONCURRENT_STREAMS`] calls, and after its max age plus [`MAX_CONNECTION_AGE_GRACE`] it
//! is closed. Deadlines of streaming calls are the handlers' job ([`deadline`]).
//!
//! Requests compressed with Thanos's `snappy` codec (framed snappy) are accepted
//! ([`SnappyRequestLayer`]).
//!
//! Generated servers added to the [`tonic::service::Routes`] must lift tonic's 4 MiB default
//! encoding limit with [`MAX_MESSAGE_SIZE`], as Thanos does, and decode requests up to
//! [`MAX_REQUEST_SIZE`].

pub mod deadline;
mod health;
mod metrics;
mod preface;
mod snappy;
mod tls;

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

use crate::error::{Error, Result};
use crate::flags::GrpcServerFlags;
use crate::telemetry::MetricsRegistry;

pub use health::HealthService;
pub use metrics::{GrpcMetricsLayer, GrpcServerMetrics, GrpcType, grpc_type_of};
pub use snappy::SnappyRequestLayer;
pub use tls::server_tls_config;

/// Thanos sets gRPC send and receive limits to MaxInt32: frames of a big Series response may
/// be far larger than tonic's 4 MiB default.
pub const MAX_MESSAGE_SIZE: usize = i32::MAX as usize;

/// The largest request message a StoreAPI server decodes (its `max_decoding_message_size`).
/// Requests are matchers and hints, kilobytes in practice; a bigger one is refused with
/// `ResourceExhausted` before it is buffered, rather than letting one client make the server
/// allocate up to 2 GiB. Responses keep [`MAX_MESSAGE_SIZE`], as Thanos's.
pub const MAX_REQUEST_SIZE: usize = snappy::MAX_REQUEST_BYTES;

/// Thanos's server keepalive: a ping every 10s of idleness, answered within 5s (reference
/// thanos.md section 1.4). Clients pinging more often than every 10s are what Go would reject.
/// A peer that stops answering pings (hung, partitioned) is disconnected after the timeout.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a new connection may take to send its first 24 bytes (the HTTP/2 preface);
/// keepalive pings only start after that ([`preface`]). With TLS the handshake gets as long
/// again before it ([`tls`]).
pub const PREFACE_TIMEOUT: Duration = Duration::from_secs(10);

/// Concurrent streams (calls) per connection. grpc-go's default is unlimited; one querier's
/// connection to a store carries the Series calls of its concurrent queries (20 queries with a
/// few selects each by default), so 1024 never limits a real client but stops one connection
/// from opening streams without bound.
pub const MAX_CONCURRENT_STREAMS: u32 = 1024;

/// After `--grpc-server-max-connection-age` a connection is asked to close (GOAWAY); one that
/// still has calls open after this much more is closed (grpc-go's MaxConnectionAgeGrace,
/// unlimited in Thanos). Ten minutes lets any real Series stream finish.
pub const MAX_CONNECTION_AGE_GRACE: Duration = Duration::from_secs(600);

/// HTTP/2 resets of not-yet-accepted streams tolerated per connection ("rapid reset",
/// CVE-2023-44487); hyper's default of 20, stated so it is not lost in an upgrade.
const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;

/// The transport limits of one gRPC server; [`Default`] is the production setting, tests
/// shorten the timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcLimits {
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    pub preface_timeout: Duration,
    pub max_concurrent_streams: u32,
    pub max_connection_age_grace: Duration,
}

impl Default for GrpcLimits {
    fn default() -> Self {
        Self {
            keepalive_interval: KEEPALIVE_INTERVAL,
            keepalive_timeout: KEEPALIVE_TIMEOUT,
            preface_timeout: PREFACE_TIMEOUT,
            max_concurrent_streams: MAX_CONCURRENT_STREAMS,
            max_connection_age_grace: MAX_CONNECTION_AGE_GRACE,
        }
    }
}

/// A tonic server builder configured from the flags and `limits`: keepalive, connection max
/// age and its grace, the per-connection stream cap. TLS is not tonic's: [`serve`] hands it
/// connections already through their handshake ([`tls`]).
pub fn server_builder(flags: &GrpcServerFlags, limits: &GrpcLimits) -> Server {
    Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_max_pending_accept_reset_streams(Some(MAX_PENDING_ACCEPT_RESET_STREAMS))
        .max_connection_age(flags.grpc_server_max_connection_age)
        .max_connection_age_grace(limits.max_connection_age_grace)
}

/// Serves `routes` (plus nothing else: add [`HealthService`] to them) on `listener` until
/// `shutdown` is cancelled, then drains in-flight RPCs for at most `--grpc-grace-period`.
///
/// With TLS, connections are handshaken here ([`tls::incoming`], within the preface timeout)
/// and tonic gets the established streams; either way a connection must then send the HTTP/2
/// preface within `limits.preface_timeout`.
pub async fn serve(
    flags: &GrpcServerFlags,
    metrics: &MetricsRegistry,
    listener: TcpListener,
    routes: tonic::service::Routes,
    shutdown: CancellationToken,
    limits: GrpcLimits,
) -> Result<()> {
    let tls = server_tls_config(flags)?;
    let layer = GrpcMetricsLayer::new(GrpcServerMetrics::new(metrics));
    if let Ok(address) = listener.local_addr() {
        tracing::info!(
            address = %address,
            tls = tls.is_some(),
            tls_min_version = tls.is_some().then_some(flags.grpc_server_tls_min_version.as_str()),
            "listening for gRPC"
        );
    }
    let router = server_builder(flags, &limits)
        .layer(layer)
        .layer(SnappyRequestLayer)
        .add_routes(routes);
    let stopping = shutdown.clone();
    let signal = async move { stopping.cancelled().await };
    let preface_timeout = limits.preface_timeout;
    match tls {
        None => {
            let incoming = TcpListenerStream::new(listener).map(move |accepted| {
                accepted.map(|stream| {
                    let _ = stream.set_nodelay(true);
                    preface::PrefaceDeadline::new(stream, preface_timeout)
                })
            });
            let server = router.serve_with_incoming_shutdown(incoming, signal);
            run_until_drained(server, &shutdown, flags.grpc_grace_period).await
        }
        Some(config) => {
            let incoming = tls::incoming(listener, config, preface_timeout, preface_timeout);
            let server = router.serve_with_incoming_shutdown(incoming, signal);
            run_until_drained(server, &shutdown, flags.grpc_grace_period).await
        }
    }
}

/// Runs `server` until it ends or `shutdown` is cancelled, then gives in-flight RPCs at most
/// `grace_period` to finish.
async fn run_until_drained(
    server: impl Future<Output = std::result::Result<(), tonic::transport::Error>>,
    shutdown: &CancellationToken,
    grace_period: Duration,
) -> Result<()> {
    let mut server = std::pin::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(|source| Error::ServeGrpc { source }),
        () = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(grace_period, server).await {
        Ok(result) => result.map_err(|source| Error::ServeGrpc { source }),
        Err(_) => {
            tracing::warn!(grace_period = ?grace_period, "gRPC calls still in flight after grace period; closing");
            Ok(())
        }
    }
}

/// Binds `--grpc-address` and serves `routes` as the task "grpc-server" of the shutdown tree.
/// Returns the bound address (useful with port 0). TLS settings are checked before binding,
/// so a bad certificate path fails startup rather than the first connection.
pub async fn start(
    flags: &GrpcServerFlags,
    metrics: &MetricsRegistry,
    routes: tonic::service::Routes,
    shutdown: &crate::shutdown::Shutdown,
) -> Result<std::net::SocketAddr> {
    server_tls_config(flags)?;
    let listener = crate::http_server::bind("grpc", &flags.grpc_address).await?;
    let address = listener.local_addr().map_err(|source| Error::Serve {
        server: "grpc",
        source,
    })?;
    let flags = flags.clone();
    let metrics = metrics.clone();
    shutdown.spawn("grpc-server", move |token| async move {
        serve(
            &flags,
            &metrics,
            listener,
            routes,
            token,
            GrpcLimits::default(),
        )
        .await
    });
    Ok(address)
}

#[cfg(test)]
mod tests;
