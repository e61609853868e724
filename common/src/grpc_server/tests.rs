//! Tests of the gRPC server: metrics recorded per RPC with its code, health from the prober,
//! TLS flag validation and enforcement (the minimum version is checked with `openssl
//! s_client`), connection deadlines, shutdown.

use std::time::Duration;

use strata_proto::grpc::health::v1::health_check_response::ServingStatus;
use strata_proto::grpc::health::v1::{HealthCheckRequest, health_client::HealthClient};
use strata_proto::thanos;

use super::*;
use crate::flags::GrpcClientFlags;
use crate::http_server::Prober;
use crate::storeapi::StoreApiClient;
use crate::storeapi::testing::InMemoryStore;

fn flags() -> GrpcServerFlags {
    GrpcServerFlags {
        grpc_address: "127.0.0.1:0".into(),
        grpc_grace_period: Duration::from_secs(5),
        grpc_server_tls_cert: String::new(),
        grpc_server_tls_key: String::new(),
        grpc_server_tls_client_ca: String::new(),
        grpc_server_tls_min_version: "1.3".into(),
        grpc_server_max_connection_age: Duration::from_secs(3600),
    }
}

#[tokio::test]
async fn serves_records_metrics_and_health() {
    let metrics = MetricsRegistry::new();
    let prober = Prober::new("test", &metrics);
    let store = InMemoryStore::new(vec![thanos::Series {
        labels: vec![thanos::Label::new("__name__", "up")],
        chunks: vec![thanos::AggrChunk {
            min_time: 0,
            max_time: 1,
            ..Default::default()
        }],
    }]);
    let routes = tonic::service::Routes::new(store.into_server())
        .add_service(HealthService::new(prober.clone(), &["thanos.Store"]).into_server());
    let listener = crate::http_server::bind("grpc", "127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    let server = {
        let metrics = metrics.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            serve(
                &flags(),
                &metrics,
                listener,
                routes,
                shutdown,
                GrpcLimits::default(),
            )
            .await
        })
    };

    let mut client = StoreApiClient::connect(&address.to_string(), &GrpcClientFlags::default())
        .await
        .expect("connect");
    let request = thanos::SeriesRequest {
        max_time: 10,
        matchers: vec![thanos::LabelMatcher {
            r#type: 0,
            name: "__name__".into(),
            value: "up".into(),
        }],
        ..Default::default()
    };
    let collected = client
        .series(request)
        .await
        .expect("series")
        .collect()
        .await
        .expect("collect");
    assert_eq!(collected.series.len(), 1);
    let bad = thanos::SeriesRequest {
        matchers: vec![thanos::LabelMatcher {
            r#type: 9,
            name: "x".into(),
            value: String::new(),
        }],
        ..Default::default()
    };
    assert!(client.series(bad).await.is_err());
    client
        .label_names(thanos::LabelNamesRequest::default())
        .await
        .expect("label names");

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel);
    let status = |response: tonic::Response<
        strata_proto::grpc::health::v1::HealthCheckResponse,
    >| response.into_inner().status;
    let check = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("check");
    assert_eq!(status(check), ServingStatus::NotServing as i32);
    prober.set_ready();
    let check = health
        .check(HealthCheckRequest {
            service: "thanos.Store".into(),
        })
        .await
        .expect("check");
    assert_eq!(status(check), ServingStatus::Serving as i32);
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let text = metrics.encode().expect("encode");
    let series_labels =
        r#"grpc_type="server_stream",grpc_service="thanos.Store",grpc_method="Series""#;
    assert!(
        text.contains(&format!("grpc_server_started_total{{{series_labels}}} 2")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "grpc_server_handled_total{{{series_labels},grpc_code=\"OK\"}} 1"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "grpc_server_handled_total{{{series_labels},grpc_code=\"InvalidArgument\"}} 1"
        )),
        "{text}"
    );
    assert!(
        text.contains(r#"grpc_server_handled_total{grpc_type="unary",grpc_service="thanos.Store",grpc_method="LabelNames",grpc_code="OK"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"grpc_server_handled_total{grpc_type="unary",grpc_service="grpc.health.v1.Health",grpc_method="Check",grpc_code="NotFound"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "grpc_server_handling_seconds_count{{{series_labels}}} 2"
        )),
        "{text}"
    );

    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops");
    assert!(matches!(result, Ok(Ok(()))), "{result:?}");
}

#[test]
fn tls_flags_are_validated() {
    assert!(server_tls_config(&flags()).expect("no tls").is_none());
    let cert_only = GrpcServerFlags {
        grpc_server_tls_cert: "/c.pem".into(),
        ..flags()
    };
    let err = server_tls_config(&cert_only).expect_err("key missing");
    assert!(err.to_string().contains("--grpc-server-tls-key"), "{err}");
    let missing = GrpcServerFlags {
        grpc_server_tls_cert: "/nonexistent/c.pem".into(),
        grpc_server_tls_key: "/nonexistent/k.pem".into(),
        ..flags()
    };
    let err = server_tls_config(&missing).expect_err("files missing");
    assert!(err.to_string().contains("/nonexistent/c.pem"), "{err}");
}

/// Runs openssl (Debian's `openssl` package) to make test certificates.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let output = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (install Debian's openssl package)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, signed by it.
fn make_certificates(dir: &std::path::Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=strata-test-ca",
    ]);
    openssl(dir, &ca);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write ext");
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("write ext");
    for name in ["server", "client"] {
        let mut request = vec!["req"];
        request.extend(ec);
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let subject = format!("/CN={name}");
        request.extend(["-keyout", &key, "-out", &csr, "-subj", &subject]);
        openssl(dir, &request);
        let pem = format!("{name}.pem");
        let ext = format!("{name}.ext");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "1",
                "-extfile",
                &ext,
            ],
        );
    }
}

#[tokio::test]
async fn mutual_tls_between_server_and_storeapi_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certificates(dir.path());
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let server_flags = GrpcServerFlags {
        grpc_server_tls_cert: path("server.pem"),
        grpc_server_tls_key: path("server.key"),
        grpc_server_tls_client_ca: path("ca.pem"),
        ..flags()
    };
    let metrics = MetricsRegistry::new();
    let shutdown = crate::shutdown::Shutdown::new();
    let store = InMemoryStore::new(vec![thanos::Series {
        labels: vec![thanos::Label::new("__name__", "up")],
        chunks: vec![thanos::AggrChunk {
            min_time: 0,
            max_time: 1,
            ..Default::default()
        }],
    }]);
    let routes = tonic::service::Routes::new(store.into_server());
    let address = start(&server_flags, &metrics, routes, &shutdown)
        .await
        .expect("start tls server");
    // Connect by name so that the certificate's DNS name is checked.
    let endpoint = format!("localhost:{}", address.port());
    let request = || thanos::SeriesRequest {
        max_time: 10,
        matchers: vec![thanos::LabelMatcher {
            r#type: 0,
            name: "__name__".into(),
            value: "up".into(),
        }],
        ..Default::default()
    };

    let client_flags = GrpcClientFlags {
        grpc_client_tls_secure: true,
        grpc_client_tls_ca: path("ca.pem"),
        grpc_client_tls_cert: path("client.pem"),
        grpc_client_tls_key: path("client.key"),
        ..GrpcClientFlags::default()
    };
    let mut client = StoreApiClient::connect(&endpoint, &client_flags)
        .await
        .expect("mTLS connect");
    let collected = client
        .series(request())
        .await
        .expect("series")
        .collect()
        .await
        .expect("collect");
    assert_eq!(collected.series.len(), 1);

    // Without a client certificate the server refuses the handshake.
    let anonymous = GrpcClientFlags {
        grpc_client_tls_cert: String::new(),
        grpc_client_tls_key: String::new(),
        ..client_flags.clone()
    };
    let refused = match StoreApiClient::connect(&endpoint, &anonymous).await {
        Ok(mut client) => client.series(request()).await.err(),
        Err(err) => Some(err),
    };
    assert!(
        refused.is_some(),
        "a client without certificate must be refused"
    );

    // Plaintext against a TLS server fails too.
    assert!(
        match StoreApiClient::connect(&endpoint, &GrpcClientFlags::default()).await {
            Ok(mut client) => client.series(request()).await.is_err(),
            Err(_) => true,
        }
    );

    shutdown.cancel();
    assert!(shutdown.wait(Duration::from_secs(10)).await);
    assert!(shutdown.failure().is_none(), "{:?}", shutdown.failure());
}

/// A Thanos querier with `--grpc-compression=snappy` sends framed-snappy requests.
#[tokio::test]
async fn accepts_snappy_compressed_requests() {
    use std::io::Write;

    use http_body::Body as _;
    use prost::Message;
    use tower::ServiceExt;

    let metrics = MetricsRegistry::new();
    let shutdown = crate::shutdown::Shutdown::new();
    let store = InMemoryStore::new(vec![thanos::Series {
        labels: vec![thanos::Label::new("__name__", "up")],
        chunks: vec![thanos::AggrChunk {
            min_time: 0,
            max_time: 1,
            ..Default::default()
        }],
    }]);
    let address = start(
        &flags(),
        &metrics,
        tonic::service::Routes::new(store.into_server()),
        &shutdown,
    )
    .await
    .expect("start");

    let request = thanos::SeriesRequest {
        max_time: 10,
        matchers: vec![thanos::LabelMatcher {
            r#type: 0,
            name: "__name__".into(),
            value: "up".into(),
        }],
        ..Default::default()
    };
    let mut encoder = snap::write::FrameEncoder::new(Vec::new());
    encoder
        .write_all(&request.encode_to_vec())
        .expect("compress");
    let compressed = encoder.into_inner().expect("flush");
    let mut body = vec![1u8];
    body.extend_from_slice(
        &u32::try_from(compressed.len())
            .expect("small")
            .to_be_bytes(),
    );
    body.extend_from_slice(&compressed);

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let http_request = http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://{address}{}",
            strata_proto::paths::STORE_SERIES
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-encoding", "snappy")
        .body(tonic::body::Body::new(axum::body::Body::from(body)))
        .expect("request");
    let response = channel.oneshot(http_request).await.expect("response");
    assert_eq!(response.status(), http::StatusCode::OK);
    let mut response_body = std::pin::pin!(response.into_body());
    let mut data = Vec::new();
    let mut grpc_status = None;
    while let Some(frame) = std::future::poll_fn(|cx| response_body.as_mut().poll_frame(cx)).await {
        let frame = frame.expect("frame");
        if let Some(trailers) = frame.trailers_ref() {
            grpc_status = trailers
                .get("grpc-status")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
        }
        if let Ok(chunk) = frame.into_data() {
            data.extend_from_slice(&chunk);
        }
    }
    assert_eq!(grpc_status.as_deref(), Some("0"));
    // One uncompressed message holding the series.
    assert_eq!(data.first(), Some(&0));
    let message = data.get(5..).expect("message");
    let decoded = thanos::SeriesResponse::decode(message).expect("decode");
    assert_eq!(
        decoded,
        thanos::SeriesResponse::from_series(thanos::Series {
            labels: vec![thanos::Label::new("__name__", "up")],
            chunks: vec![thanos::AggrChunk {
                min_time: 0,
                max_time: 1,
                ..Default::default()
            }],
        })
    );

    shutdown.cancel();
    assert!(shutdown.wait(Duration::from_secs(10)).await);
}

#[tokio::test]
async fn health_watch_follows_readiness() {
    let metrics = MetricsRegistry::new();
    let prober = Prober::new("test", &metrics);
    let shutdown = crate::shutdown::Shutdown::new();
    let routes = tonic::service::Routes::new(HealthService::new(prober.clone(), &[]).into_server());
    let address = start(&flags(), &metrics, routes, &shutdown)
        .await
        .expect("start");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel);
    let mut updates = health
        .watch(HealthCheckRequest::default())
        .await
        .expect("watch")
        .into_inner();
    let next = |message: Option<strata_proto::grpc::health::v1::HealthCheckResponse>| {
        message.map(|m| m.status)
    };
    assert_eq!(
        next(updates.message().await.expect("first")),
        Some(ServingStatus::NotServing as i32)
    );
    prober.set_ready();
    assert_eq!(
        next(updates.message().await.expect("second")),
        Some(ServingStatus::Serving as i32)
    );
    prober.set_not_ready("test");
    assert_eq!(
        next(updates.message().await.expect("third")),
        Some(ServingStatus::NotServing as i32)
    );
    drop(updates);
    shutdown.cancel();
    assert!(shutdown.wait(Duration::from_secs(10)).await);
}

/// Serves only the health service with `limits`; returns the address and the stop token.
async fn serve_health(limits: GrpcLimits) -> (std::net::SocketAddr, CancellationToken) {
    serve_health_with(flags(), limits).await
}

/// [`serve_health`] with the server flags `server_flags` (TLS).
async fn serve_health_with(
    server_flags: GrpcServerFlags,
    limits: GrpcLimits,
) -> (std::net::SocketAddr, CancellationToken) {
    let metrics = MetricsRegistry::new();
    let prober = Prober::new("test", &metrics);
    prober.set_ready();
    let routes =
        tonic::service::Routes::new(HealthService::new(prober, &["thanos.Store"]).into_server());
    let listener = crate::http_server::bind("grpc", "127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    let stopping = shutdown.clone();
    tokio::spawn(async move {
        serve(&server_flags, &metrics, listener, routes, stopping, limits).await
    });
    (address, shutdown)
}

/// Reads until the server closes the connection; how long that took, or `None` if it stayed
/// open for `wait`.
async fn time_until_closed(stream: &mut tokio::net::TcpStream, wait: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut buffer = vec![0u8; 4096];
    let closed = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(wait, closed).await.ok()?;
    Some(started.elapsed())
}

fn short_limits() -> GrpcLimits {
    GrpcLimits {
        keepalive_interval: Duration::from_millis(300),
        keepalive_timeout: Duration::from_millis(300),
        preface_timeout: Duration::from_millis(400),
        ..GrpcLimits::default()
    }
}

/// A client that connects and sends only part of the HTTP/2 preface is disconnected at the
/// preface timeout; a real client on the same server is served.
#[tokio::test]
async fn a_client_stalling_before_the_preface_is_disconnected() {
    use tokio::io::AsyncWriteExt;
    let (address, shutdown) = serve_health(short_limits()).await;
    let mut stalled = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stalled.write_all(b"PRI * HT").await.expect("write");
    let closed_after = time_until_closed(&mut stalled, Duration::from_secs(5))
        .await
        .expect("the stalled connection was not closed");
    assert!(
        closed_after < Duration::from_secs(2),
        "closed after {closed_after:?}"
    );

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health check");
    assert_eq!(response.into_inner().status, ServingStatus::Serving as i32);
    shutdown.cancel();
}

/// A client that completes the HTTP/2 preface and then answers nothing (no SETTINGS ack, no
/// PING ack) is disconnected by the keepalive; with keepalive off it would stay forever.
#[tokio::test]
async fn a_client_that_stops_answering_pings_is_disconnected() {
    use tokio::io::AsyncWriteExt;
    let (address, shutdown) = serve_health(short_limits()).await;
    let mut stalled = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stalled
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("preface");
    // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
    stalled
        .write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .expect("settings");
    let closed_after = time_until_closed(&mut stalled, Duration::from_secs(10))
        .await
        .expect("the silent connection was not closed");
    assert!(
        closed_after < Duration::from_secs(5),
        "closed after {closed_after:?}"
    );
    shutdown.cancel();
}

/// Server flags for TLS with the certificates of [`make_certificates`] in `dir`, no client CA.
fn tls_flags(dir: &std::path::Path, min_version: &str) -> GrpcServerFlags {
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    GrpcServerFlags {
        grpc_server_tls_cert: path("server.pem"),
        grpc_server_tls_key: path("server.key"),
        grpc_server_tls_min_version: min_version.into(),
        ..flags()
    }
}

/// Runs `openssl s_client` against `address` with `protocol` (`-tls1_2`, `-tls1_3`), stdin
/// closed so that it leaves right after the handshake. The negotiated protocol and ALPN, or
/// `None` if the handshake failed.
async fn s_client(
    dir: &std::path::Path,
    address: std::net::SocketAddr,
    protocol: &str,
) -> Option<String> {
    let child = tokio::process::Command::new("openssl")
        .args(["s_client", "-alpn", "h2", "-CAfile", "ca.pem"])
        .arg(protocol)
        .arg("-connect")
        .arg(address.to_string())
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run openssl s_client (install Debian's openssl package)");
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("openssl s_client did not finish")
        .expect("openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.status.success().then_some(text)
}

#[tokio::test]
async fn min_version_1_3_refuses_tls_1_2_clients() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certificates(dir.path());
    let (address, shutdown) =
        serve_health_with(tls_flags(dir.path(), "1.3"), GrpcLimits::default()).await;
    let refused = s_client(dir.path(), address, "-tls1_2").await;
    assert!(refused.is_none(), "TLS 1.2 accepted: {refused:?}");
    let accepted = s_client(dir.path(), address, "-tls1_3")
        .await
        .expect("TLS 1.3 handshake");
    assert!(accepted.contains("TLSv1.3"), "{accepted}");
    assert!(accepted.contains("ALPN protocol: h2"), "{accepted}");
    shutdown.cancel();
}

#[tokio::test]
async fn min_version_1_2_accepts_tls_1_2_and_1_3_clients() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certificates(dir.path());
    let (address, shutdown) =
        serve_health_with(tls_flags(dir.path(), "1.2"), GrpcLimits::default()).await;
    for (protocol, negotiated) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let accepted = s_client(dir.path(), address, protocol)
            .await
            .unwrap_or_else(|| panic!("{protocol} handshake failed"));
        assert!(accepted.contains(negotiated), "{accepted}");
    }
    // A gRPC client is served over the established TLS connection.
    let client_flags = GrpcClientFlags {
        grpc_client_tls_secure: true,
        grpc_client_tls_ca: dir.path().join("ca.pem").to_string_lossy().into_owned(),
        ..GrpcClientFlags::default()
    };
    let endpoint =
        crate::storeapi::endpoint(&format!("localhost:{}", address.port()), &client_flags)
            .expect("endpoint");
    let channel = endpoint.connect().await.expect("connect");
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .expect("health check over tls");
    assert_eq!(response.into_inner().status, ServingStatus::Serving as i32);
    shutdown.cancel();
}

#[tokio::test]
async fn min_versions_rustls_lacks_are_refused_at_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certificates(dir.path());
    let shutdown = crate::shutdown::Shutdown::new();
    for version in ["1.0", "1.1", "1.4", ""] {
        let routes = tonic::service::Routes::new(
            HealthService::new(Prober::new("test", &MetricsRegistry::new()), &[]).into_server(),
        );
        let err = start(
            &tls_flags(dir.path(), version),
            &MetricsRegistry::new(),
            routes,
            &shutdown,
        )
        .await
        .expect_err("unsupported minimum version");
        assert!(
            err.to_string().contains("--grpc-server-tls-min-version"),
            "{version}: {err}"
        );
    }
    // Without TLS the flag is not looked at, as in Thanos.
    assert!(
        server_tls_config(&GrpcServerFlags {
            grpc_server_tls_min_version: "1.1".into(),
            ..flags()
        })
        .expect("no tls")
        .is_none()
    );
    shutdown.cancel();
    assert!(shutdown.wait(Duration::from_secs(10)).await);
}

/// A client that opens TCP and never finishes its TLS handshake is disconnected at the
/// handshake timeout, and does not keep other clients from being served meanwhile.
#[tokio::test]
async fn a_client_stalling_the_tls_handshake_does_not_block_others() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("tempdir");
    make_certificates(dir.path());
    let limits = GrpcLimits {
        preface_timeout: Duration::from_secs(3),
        ..GrpcLimits::default()
    };
    let (address, shutdown) = serve_health_with(tls_flags(dir.path(), "1.3"), limits).await;
    let mut stalled = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    // The start of a TLS record header, then nothing.
    stalled.write_all(&[0x16, 0x03]).await.expect("write");
    let started = std::time::Instant::now();
    let accepted = s_client(dir.path(), address, "-tls1_3")
        .await
        .expect("TLS 1.3 handshake while another client stalls");
    assert!(accepted.contains("TLSv1.3"), "{accepted}");
    time_until_closed(&mut stalled, Duration::from_secs(20))
        .await
        .expect("the stalled handshake was not closed");
    let closed_after = started.elapsed();
    assert!(
        closed_after < Duration::from_secs(10),
        "closed after {closed_after:?}"
    );
    shutdown.cancel();
}

/// After the TLS handshake the HTTP/2 preface has its own deadline, as over plaintext.
#[tokio::test]
async fn a_client_stalling_after_the_tls_handshake_is_disconnected() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certificates(dir.path());
    let limits = GrpcLimits {
        preface_timeout: Duration::from_secs(2),
        ..GrpcLimits::default()
    };
    let (address, shutdown) = serve_health_with(tls_flags(dir.path(), "1.3"), limits).await;
    // s_client with stdin open and silent: handshakes, then sends nothing until the server
    // closes the connection.
    let mut child = tokio::process::Command::new("openssl")
        .args([
            "s_client", "-quiet", "-tls1_3", "-CAfile", "ca.pem", "-connect",
        ])
        .arg(address.to_string())
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run openssl s_client");
    let started = std::time::Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the silent TLS connection was not closed")
        .expect("wait for s_client");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1),
        "closed after {elapsed:?}, {status}"
    );
    drop(child.stdin.take());
    shutdown.cancel();
}
