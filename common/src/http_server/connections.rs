//! The HTTP server's accept loop: HTTP/1.1 connections, each in its own task, under the limits
//! that keep one client from pinning the server, and a shutdown that drops no request a client
//! has already sent.
//!
//! Shutdown follows Go's `http.Server.Shutdown`, which Thanos uses: stop accepting, let
//! in-flight requests finish within the grace period, close idle keep-alive connections. Two
//! places where a plain shutdown loses requests are handled as well, because a load balancer
//! or a Kubernetes Service keeps routing to a stopping instance for a moment:
//! - connections that finished their TCP handshake but still wait in the listen backlog would
//!   be reset when the listener closes: they are taken in and answered;
//! - a connection accepted whose first request has not been read yet is not "idle": it gets
//!   up to [`ServerLimits::new_connection_grace`] to send that request (Go waits 5 s too).
//!
//! Every answer given during shutdown carries `Connection: close`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::error::Result;

/// How long a client may take to send a request's headers (and how long an idle keep-alive
/// connection waits for the next request). Go's net/http, which Thanos uses, has no such
/// timeout by default; without one a client sending a header byte every few seconds
/// (slowloris) holds a connection forever. 30 s is far above any real client's need.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The most connections served at once; further clients wait in the listen backlog until one
/// closes (as Go's `netutil.LimitListener` behaves). Thanos has no flag for this (Prometheus's
/// `--web.max-connections` defaults to 512); 4096 leaves room for many Grafana users and
/// scrapers while bounding the memory and file descriptors a flood of clients can take.
pub const MAX_CONNECTIONS: usize = 4096;

/// How long, once shutdown begins, a connection that has not sent its first request yet may
/// take to send it: Go's `http.Server.Shutdown` treats a new connection as idle only after 5 s.
pub const NEW_CONNECTION_GRACE: Duration = Duration::from_secs(5);

/// Limits of one HTTP server; [`Default`] is the production setting, tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub new_connection_grace: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            new_connection_grace: NEW_CONNECTION_GRACE,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets in-flight requests
/// (and requests already on their way, see the module header) finish for at most
/// `grace_period`.
///
/// HTTP/1.1 only, as Thanos's Go server speaks over cleartext. Each connection runs in its own
/// task holding one of `limits.max_connections` permits; a connection whose request headers
/// do not arrive within `limits.header_read_timeout` is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    grace_period: Duration,
    limits: ServerLimits,
) -> Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(address = %address, "listening for HTTP");
    }
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = Connections::new(router, shutdown.clone(), limits);
    loop {
        connections.reap();
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Running out of file descriptors must not end the server: wait and retry.
                    tracing::warn!(error = %err, "accept HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        connections.spawn(stream, Some(permit));
    }
    connections.take_backlog(listener, limits.max_connections);
    connections.drain(grace_period).await;
    Ok(())
}

/// The live connections of one server and what each needs to be served.
struct Connections {
    builder: hyper::server::conn::http1::Builder,
    router: Router,
    shutdown: CancellationToken,
    new_connection_grace: Duration,
    tasks: JoinSet<()>,
}

impl Connections {
    fn new(router: Router, shutdown: CancellationToken, limits: ServerLimits) -> Self {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        Self {
            builder,
            router,
            shutdown,
            new_connection_grace: limits.new_connection_grace,
            tasks: JoinSet::new(),
        }
    }

    /// Forgets finished connections so the set holds only live ones.
    fn reap(&mut self) {
        while self.tasks.try_join_next().is_some() {}
    }

    /// Serves one connection in its own task until it closes or shutdown ends it.
    fn spawn(&mut self, stream: TcpStream, permit: Option<OwnedSemaphorePermit>) {
        let _ = stream.set_nodelay(true);
        let first_request = Arc::new(FirstRequest::default());
        let seen = Arc::clone(&first_request);
        let service = self.router.clone().map_request(
            move |request: hyper::Request<hyper::body::Incoming>| {
                seen.mark();
                request
            },
        );
        let connection = self.builder.serve_connection(
            hyper_util::rt::TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let stopping = self.shutdown.clone();
        let new_connection_grace = self.new_connection_grace;
        self.tasks.spawn(async move {
            let _permit = permit;
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(error = %err, "HTTP connection ended with an error");
                    }
                    return;
                }
                () = stopping.cancelled() => {}
            }
            if !first_request.is_seen() {
                // Not idle: its client connected to be answered. Wait for the request.
                tokio::select! {
                    _ = connection.as_mut() => return,
                    () = first_request.wait() => {}
                    () = tokio::time::sleep(new_connection_grace) => {}
                }
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }

    /// Takes in the connections that completed their handshake but were not accepted yet
    /// (at most `limit`), so that closing the listener resets none of them, then closes it.
    fn take_backlog(&mut self, listener: TcpListener, limit: usize) {
        let listener = match listener.into_std() {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "cannot take waiting HTTP connections in");
                return;
            }
        };
        // `into_std` leaves the listener non-blocking: accept until the backlog is empty.
        let mut taken = 0;
        while taken < limit {
            match listener.accept() {
                Ok((stream, _peer)) => {
                    let stream = stream
                        .set_nonblocking(true)
                        .and_then(|()| TcpStream::from_std(stream));
                    match stream {
                        Ok(stream) => {
                            self.spawn(stream, None);
                            taken += 1;
                        }
                        Err(err) => tracing::debug!(error = %err, "waiting HTTP connection lost"),
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    if err.kind() != std::io::ErrorKind::WouldBlock {
                        tracing::debug!(error = %err, "taking waiting HTTP connections in");
                    }
                    break;
                }
            }
        }
        if taken > 0 {
            tracing::info!(
                connections = taken,
                "answering connections that were waiting when shutdown began"
            );
        }
    }

    /// Waits for every connection to finish, at most `grace_period`; then closes the rest.
    async fn drain(mut self, grace_period: Duration) {
        let drained = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace_period, drained).await.is_err() {
            tracing::warn!(grace_period = ?grace_period, "HTTP requests still in flight after grace period; closing");
            self.tasks.abort_all();
        }
    }
}

/// Whether a connection's first request has arrived, and a wake-up for whoever waits for it.
#[derive(Default)]
struct FirstRequest {
    seen: AtomicBool,
    arrived: Notify,
}

impl FirstRequest {
    fn mark(&self) {
        if !self.seen.swap(true, Ordering::AcqRel) {
            // One waiter at most; `notify_one` keeps the wake-up if it is not waiting yet.
            self.arrived.notify_one();
        }
    }

    fn is_seen(&self) -> bool {
        self.seen.load(Ordering::Acquire)
    }

    async fn wait(&self) {
        if !self.is_seen() {
            self.arrived.notified().await;
        }
    }
}
