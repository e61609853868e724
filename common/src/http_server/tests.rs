//! Tests of the HTTP server: probes, metrics exposition and the request metrics middleware.

use axum::body::Body;
use axum::http::Request;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::*;

async fn get_path(router: &Router, path: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .uri(path)
        .body(Body::empty())
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn test_router() -> (Router, Prober) {
    let metrics = MetricsRegistry::new();
    let prober = Prober::new("test", &metrics);
    let routes = Router::new().route(
        "/api/v1/query",
        named_handler("query", get(|| async { "answer" })),
    );
    (router(&metrics, &prober, routes), prober)
}

#[tokio::test]
async fn probes_follow_the_prober() {
    let (router, prober) = test_router();
    assert_eq!(
        get_path(&router, "/-/healthy").await,
        (StatusCode::SERVICE_UNAVAILABLE, "NOT OK".into())
    );
    assert_eq!(
        get_path(&router, "/-/ready").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    prober.set_healthy();
    assert_eq!(
        get_path(&router, "/-/healthy").await,
        (StatusCode::OK, "OK".into())
    );
    assert_eq!(
        get_path(&router, "/-/ready").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    prober.set_ready();
    assert_eq!(
        get_path(&router, "/-/ready").await,
        (StatusCode::OK, "OK".into())
    );
    prober.set_shutting_down();
    assert_eq!(
        get_path(&router, "/-/healthy").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get_path(&router, "/-/ready").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn requests_are_counted_with_thanos_labels() {
    let (router, prober) = test_router();
    prober.set_healthy();
    assert_eq!(
        get_path(&router, "/api/v1/query").await,
        (StatusCode::OK, "answer".into())
    );
    assert_eq!(get_path(&router, "/-/healthy").await.0, StatusCode::OK);
    assert_eq!(
        get_path(&router, "/no/such/path").await.0,
        StatusCode::NOT_FOUND
    );
    let (status, text) = get_path(&router, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains(r#"http_requests_total{code="200",handler="query",method="get"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{code="200",handler="healthy",method="get"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{code="404",handler="not_found",method="get"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_request_duration_seconds_bucket{le="0.001",code="200",handler="query",method="get"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"thanos_status{component="test",check="healthy"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"thanos_status{component="test",check="ready"} 0"#),
        "{text}"
    );
}

#[tokio::test]
async fn serve_stops_on_cancel() {
    let (router, _prober) = test_router();
    let listener = bind("http", "127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(
        listener,
        router,
        shutdown.clone(),
        Duration::from_secs(5),
        ServerLimits::default(),
    ));
    // The port accepts connections while serving...
    tokio::net::TcpStream::connect(address)
        .await
        .expect("connect while serving");
    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("stops in time");
    assert!(matches!(result, Ok(Ok(()))), "{result:?}");
    // ...and not after.
    assert!(tokio::net::TcpStream::connect(address).await.is_err());
}

#[tokio::test]
async fn bind_reports_the_address() {
    let taken = bind("http", "127.0.0.1:0").await.expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let err = bind("http", &address).await.expect_err("port in use");
    assert!(err.to_string().contains(&address), "{err}");
    assert!(bind("http", "no-port").await.is_err());
}

#[tokio::test]
async fn an_empty_host_listens_on_every_interface() {
    let address = resolve_listen_address("http", ":10902")
        .await
        .expect("resolves");
    assert_eq!(address, SocketAddr::from(([0, 0, 0, 0], 10902)));
    let listener = bind("http", ":0").await.expect("binds");
    let bound = listener.local_addr().expect("address");
    assert!(bound.ip().is_unspecified() && bound.port() != 0, "{bound}");
}

#[tokio::test]
async fn metrics_format_is_negotiated() {
    let (router, _prober) = test_router();
    let request = |accept: Option<&str>| {
        let mut builder = Request::builder().uri("/metrics");
        if let Some(accept) = accept {
            builder = builder.header(header::ACCEPT, accept);
        }
        builder.body(Body::empty()).expect("request")
    };
    let prometheus_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let response = router
        .clone()
        .oneshot(request(Some(prometheus_accept)))
        .await
        .expect("infallible");
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("application/openmetrics-text")
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let text = String::from_utf8_lossy(&body);
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE http_requests counter"), "{text}");

    let response = router.oneshot(request(None)).await.expect("infallible");
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4")
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let text = String::from_utf8_lossy(&body);
    assert!(!text.contains("# EOF"), "{text}");
    assert!(
        text.contains("# TYPE http_requests_total counter"),
        "{text}"
    );
    assert!(text.contains("# TYPE thanos_status gauge"), "{text}");
}

async fn serve_with(limits: ServerLimits) -> (SocketAddr, CancellationToken) {
    let (router, _prober) = test_router();
    let listener = bind("http", "127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(
        listener,
        router,
        shutdown.clone(),
        Duration::from_secs(1),
        limits,
    ));
    (address, shutdown)
}

/// Sends one complete request on `stream` and reads the status line, or `None` if nothing
/// arrives within `wait`.
async fn status_line(stream: &mut tokio::net::TcpStream, wait: Duration) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /api/v1/query HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .ok()?;
    let mut buffer = vec![0u8; 1024];
    let read = tokio::time::timeout(wait, stream.read(&mut buffer))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buffer[..read]).into_owned();
    text.lines().next().map(str::to_owned)
}

/// Slowloris: a client that sends its headers a byte at a time is cut off at the header read
/// timeout, while a normal client on the same server is answered.
#[tokio::test]
async fn slow_header_senders_are_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let timeout = Duration::from_millis(500);
    let (address, shutdown) = serve_with(ServerLimits {
        header_read_timeout: timeout,
        max_connections: 16,
        ..ServerLimits::default()
    })
    .await;
    let mut normal = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    assert_eq!(
        status_line(&mut normal, Duration::from_secs(5))
            .await
            .as_deref(),
        Some("HTTP/1.1 200 OK")
    );

    let mut slow = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let started = std::time::Instant::now();
    let partial = b"GET /api/v1/query HTTP/1.1\r\nHost: test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut closed = false;
    for byte in partial {
        if slow.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        let mut buffer = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(100), slow.read(&mut buffer)).await {
            // Anything the server says (EOF, an error, a 408) before the headers are complete
            // means it gave up on this client.
            Ok(_) => {
                closed = true;
                break;
            }
            Err(_) => continue,
        }
    }
    let elapsed = started.elapsed();
    assert!(closed, "the slow client was never disconnected");
    assert!(
        elapsed >= timeout && elapsed < timeout * 4,
        "disconnected after {elapsed:?}, timeout {timeout:?}"
    );
    shutdown.cancel();
}

/// At the connection cap a further client waits; it is served once a slot frees.
#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let (address, shutdown) = serve_with(ServerLimits {
        header_read_timeout: Duration::from_secs(30),
        max_connections: 2,
        ..ServerLimits::default()
    })
    .await;
    let mut first = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let mut second = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    assert!(
        status_line(&mut first, Duration::from_secs(5))
            .await
            .is_some()
    );
    assert!(
        status_line(&mut second, Duration::from_secs(5))
            .await
            .is_some()
    );
    let mut third = tokio::net::TcpStream::connect(address)
        .await
        .expect("the backlog accepts the connection");
    assert_eq!(
        status_line(&mut third, Duration::from_millis(500)).await,
        None,
        "a third connection was served above the cap of two"
    );
    drop(first);
    use tokio::io::AsyncReadExt;
    let mut buffer = vec![0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buffer))
        .await
        .expect("served once a slot is free")
        .expect("read");
    assert!(
        String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 200 OK"),
        "{}",
        String::from_utf8_lossy(&buffer[..read])
    );
    shutdown.cancel();
}

/// A server whose `/slow` answers after `delay`, with one connection at most; its address and
/// shutdown token.
async fn serve_slow(delay: Duration, limits: ServerLimits) -> (SocketAddr, CancellationToken) {
    let router = Router::new().route(
        "/slow",
        get(move || async move {
            tokio::time::sleep(delay).await;
            "slow"
        }),
    );
    let listener = bind("http", "127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(
        listener,
        router,
        shutdown.clone(),
        Duration::from_secs(10),
        limits,
    ));
    (address, shutdown)
}

/// Sends `GET path` on `stream` and reads the whole answer (the server closes after it).
async fn answer(stream: &mut tokio::net::TcpStream, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    if let Err(err) = stream.write_all(request.as_bytes()).await {
        return format!("write failed: {err}");
    }
    let mut buffer = Vec::new();
    match tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buffer)).await {
        Ok(Ok(_)) => String::from_utf8_lossy(&buffer).into_owned(),
        Ok(Err(err)) => format!("read failed: {err}"),
        Err(_) => "no answer within 10 s".to_owned(),
    }
}

/// Shutdown with a request in flight and a second client waiting in the listen backlog (the
/// one connection slot is taken): both are answered, with `Connection: close`; neither is reset.
#[tokio::test]
async fn shutdown_answers_connections_waiting_in_the_backlog() {
    let (address, shutdown) = serve_slow(
        Duration::from_millis(500),
        ServerLimits {
            max_connections: 1,
            ..ServerLimits::default()
        },
    )
    .await;
    let mut first = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let in_flight = tokio::spawn(async move { answer(&mut first, "/slow").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut waiting = tokio::net::TcpStream::connect(address)
        .await
        .expect("the backlog takes the connection");
    let queued = tokio::spawn(async move { answer(&mut waiting, "/slow").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    shutdown.cancel();
    for (who, task) in [("in flight", in_flight), ("waiting", queued)] {
        let text = task.await.expect("client task");
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{who}: {text}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{who}: {text}"
        );
        assert!(text.ends_with("slow"), "{who}: {text}");
    }
}

/// A client that connected just before shutdown and sends its request just after is answered;
/// one that sends nothing is closed after the new-connection grace, and the server stops.
#[tokio::test]
async fn shutdown_waits_for_the_first_request_of_a_new_connection() {
    let grace = Duration::from_millis(800);
    let (address, shutdown) = serve_slow(
        Duration::ZERO,
        ServerLimits {
            new_connection_grace: grace,
            ..ServerLimits::default()
        },
    )
    .await;
    let mut late = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let mut silent = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = answer(&mut late, "/slow").await;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    let started = std::time::Instant::now();
    use tokio::io::AsyncReadExt;
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut buffer))
        .await
        .expect("the silent connection is closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?} {buffer:?}");
    assert!(
        started.elapsed() < grace * 3,
        "closed after {:?}",
        started.elapsed()
    );
    assert!(tokio::net::TcpStream::connect(address).await.is_err());
}
