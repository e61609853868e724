//! The gRPC server's TLS, done in Strata's accept path rather than by tonic: tonic's
//! `ServerTlsConfig` cannot pin the protocol versions, and `--grpc-server-tls-min-version`
//! must be enforced (a flag Strata accepts either works or refuses to start).
//!
//! [`server_tls_config`] turns the `--grpc-server-tls-*` flags into a rustls [`ServerConfig`]
//! (ring provider): the versions from the minimum (rustls has no TLS 1.0 or 1.1, so those are
//! refused at start-up), ALPN `h2`, the certificate chain and key, and client certificates
//! required and verified exactly when `--grpc-server-tls-client-ca` is set, as in Thanos.
//!
//! [`incoming`] accepts TCP connections and runs each handshake in its own task under a
//! timeout, so a slow or failing client never delays the others; at most
//! [`MAX_PENDING_HANDSHAKES`] run at once, further clients wait in the listen backlog. The
//! established streams then get the HTTP/2 preface deadline ([`PrefaceDeadline`]) as
//! plaintext connections do. Dropping the stream (tonic does when it stops accepting) closes
//! the listener and aborts the handshakes in progress.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::preface::PrefaceDeadline;
use crate::error::{Error, Result};
use crate::flags::GrpcServerFlags;

/// The most TLS handshakes in progress at once. Each is bounded by the handshake timeout; the
/// cap keeps a flood of connections that never finish their handshake from growing the task
/// set without bound (they wait in the listen backlog instead).
pub const MAX_PENDING_HANDSHAKES: usize = 1024;

const MIN_VERSION_FLAG: &str = "--grpc-server-tls-min-version";

/// The protocol versions a server with minimum `min_version` speaks.
fn protocol_versions(min_version: &str) -> Result<&'static [&'static SupportedProtocolVersion]> {
    static TLS12_AND_13: [&SupportedProtocolVersion; 2] =
        [&rustls::version::TLS12, &rustls::version::TLS13];
    static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    match min_version {
        "1.3" => Ok(&TLS13_ONLY),
        "1.2" => Ok(&TLS12_AND_13),
        "1.0" | "1.1" => Err(Error::InvalidFlag {
            flag: MIN_VERSION_FLAG,
            reason: format!(
                "TLS {min_version} is not supported (Strata's TLS library, rustls, speaks only \
                 TLS 1.2 and 1.3); use 1.2 or 1.3"
            ),
        }),
        other => Err(Error::InvalidFlag {
            flag: MIN_VERSION_FLAG,
            reason: format!("unknown TLS version {other:?}; use 1.2 or 1.3"),
        }),
    }
}

fn read_pem(what: &'static str, path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::ReadFile {
        what,
        path: path.into(),
        source,
    })
}

/// The certificates of the PEM file at `path`; at least one.
fn read_certificates(what: &'static str, path: &str) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read_pem(what, path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| Error::GrpcServerTls {
            reason: format!("parse {what} {path}: {err}"),
        })?;
    if certificates.is_empty() {
        return Err(Error::GrpcServerTls {
            reason: format!("no certificate in {what} {path}"),
        });
    }
    Ok(certificates)
}

/// The server TLS configuration for the flags, or `None` when TLS is off. Every TLS flag is
/// checked here, so calling it before binding makes a bad path or value fail start-up.
pub fn server_tls_config(flags: &GrpcServerFlags) -> Result<Option<Arc<ServerConfig>>> {
    if !flags.tls_enabled() {
        return Ok(None);
    }
    if flags.grpc_server_tls_cert.is_empty() || flags.grpc_server_tls_key.is_empty() {
        return Err(Error::GrpcServerTls {
            reason: "both --grpc-server-tls-cert and --grpc-server-tls-key must be set".to_owned(),
        });
    }
    let versions = protocol_versions(&flags.grpc_server_tls_min_version)?;
    let chain = read_certificates("grpc server tls certificate", &flags.grpc_server_tls_cert)?;
    let key_what = "grpc server tls key";
    let key_pem = read_pem(key_what, &flags.grpc_server_tls_key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| Error::GrpcServerTls {
        reason: format!("parse {key_what} {}: {err}", flags.grpc_server_tls_key),
    })?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|err| Error::GrpcServerTls {
            reason: format!("protocol versions: {err}"),
        })?;
    let builder = if flags.grpc_server_tls_client_ca.is_empty() {
        builder.with_no_client_auth()
    } else {
        // Client certificates are required and verified exactly when a client CA is given, as
        // in Thanos.
        let ca_what = "grpc server tls client ca";
        let mut roots = RootCertStore::empty();
        for certificate in read_certificates(ca_what, &flags.grpc_server_tls_client_ca)? {
            roots.add(certificate).map_err(|err| Error::GrpcServerTls {
                reason: format!("{ca_what} {}: {err}", flags.grpc_server_tls_client_ca),
            })?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|err| Error::GrpcServerTls {
                reason: format!("client verifier: {err}"),
            })?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|err| Error::GrpcServerTls {
            reason: format!(
                "certificate {} with key {}: {err}",
                flags.grpc_server_tls_cert, flags.grpc_server_tls_key
            ),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// A TLS connection ready for HTTP/2, with the preface deadline on its plaintext side.
pub type TlsConnection = PrefaceDeadline<TlsStream<TcpStream>>;

/// The established TLS connections of `listener`: each accepted TCP connection is
/// handshaken in its own task within `handshake_timeout`, then must send the HTTP/2 preface
/// within `preface_timeout`. Failed handshakes are logged and dropped; the stream never ends
/// on its own.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
    preface_timeout: Duration,
) -> impl Stream<Item = io::Result<TlsConnection>> + Send + 'static {
    let acceptor = TlsAcceptor::from(config);
    let handshakes: JoinSet<Option<TlsConnection>> = JoinSet::new();
    futures::stream::unfold(
        (listener, acceptor, handshakes),
        move |(listener, acceptor, mut handshakes)| async move {
            loop {
                // Both branches are cancel-safe; the pending future lives in the stream, so
                // tonic dropping a `next()` call loses nothing.
                tokio::select! {
                    accepted = listener.accept(), if handshakes.len() < MAX_PENDING_HANDSHAKES => {
                        match accepted {
                            Ok((stream, peer)) => {
                                let _ = stream.set_nodelay(true);
                                handshakes.spawn(handshake(
                                    acceptor.clone(),
                                    stream,
                                    peer,
                                    handshake_timeout,
                                    preface_timeout,
                                ));
                            }
                            Err(err) => {
                                // Running out of file descriptors must not end the server:
                                // wait and retry.
                                tracing::warn!(error = %err, "accept gRPC connection failed");
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    }
                    Some(joined) = handshakes.join_next() => match joined {
                        Ok(Some(connection)) => {
                            return Some((Ok(connection), (listener, acceptor, handshakes)));
                        }
                        Ok(None) => {}
                        Err(err) => tracing::warn!(error = %err, "gRPC TLS handshake task failed"),
                    },
                }
            }
        },
    )
}

/// One TLS handshake within `timeout`; `None` (logged) when it fails.
async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: std::net::SocketAddr,
    timeout: Duration,
    preface_timeout: Duration,
) -> Option<TlsConnection> {
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(PrefaceDeadline::new(tls, preface_timeout)),
        // A client (a TCP health check, a port scan) closing before its ClientHello is no news.
        Ok(Err(err)) if err.kind() == io::ErrorKind::UnexpectedEof => {
            tracing::debug!(peer = %peer, error = %err, "gRPC TLS handshake failed");
            None
        }
        Ok(Err(err)) => {
            tracing::info!(peer = %peer, error = %err, "gRPC TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(peer = %peer, timeout = ?timeout, "gRPC TLS handshake timed out");
            None
        }
    }
}
