//! Tests of the HTTP server: probes, metrics exposition and the request metrics middleware.

use axum::body::Body;
use axum::http::Request;
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
