//! The UI's routing under the prefix flags, the per-request link prefix and the static assets.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use tower::ServiceExt;

use super::*;

/// A stand-in for the `/api/v1` routes.
fn api() -> Router {
    Router::new().route("/api/v1/status/buildinfo", get(|| async { "api" }))
}

async fn get_response(
    router: &Router,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn location(headers: &HeaderMap) -> &str {
    headers
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

fn config(route: &str, external: &str, header: &str) -> UiConfig {
    UiConfig::from_flags(route, external, header).expect("valid prefix flags")
}

#[test]
fn prefixes_are_normalised_like_thanos() {
    assert_eq!(normalize_prefix(""), Some(String::new()));
    assert_eq!(normalize_prefix("/"), Some(String::new()));
    assert_eq!(normalize_prefix("strata"), Some("/strata".into()));
    assert_eq!(normalize_prefix("/strata/"), Some("/strata".into()));
    assert_eq!(normalize_prefix("//a//b/./c/../"), Some("/a/b".into()));
    assert_eq!(
        normalize_prefix("https://example.com/thanos/query/"),
        Some("/thanos/query".into())
    );
    assert_eq!(normalize_prefix("https://example.com"), Some(String::new()));
    for unsafe_value in ["/a\"b", "/a<b", "/a b", "/a?b", "/a#b", "/a'b", "/a\\b"] {
        assert_eq!(normalize_prefix(unsafe_value), None, "{unsafe_value}");
    }
}

#[test]
fn route_prefix_defaults_to_external_prefix_and_bad_flags_are_refused() {
    let only_external = config("", "/ext/", "");
    assert_eq!(only_external.route_prefix, "/ext");
    assert_eq!(only_external.external_prefix, "/ext");
    let both = config("/", "/ext", "");
    assert_eq!(both.route_prefix, "");
    let err = UiConfig::from_flags("/a b", "", "")
        .expect_err("a space in a route prefix")
        .to_string();
    assert!(err.contains("--web.route-prefix"), "{err}");
    let err = UiConfig::from_flags("", "/x\"y", "")
        .expect_err("a quote in an external prefix")
        .to_string();
    assert!(err.contains("--web.external-prefix"), "{err}");
    let err = UiConfig::from_flags("", "", "bad header")
        .expect_err("a space in a header name")
        .to_string();
    assert!(err.contains("--web.prefix-header"), "{err}");
}

#[tokio::test]
async fn everything_moves_under_the_route_prefix() {
    let router = routes(config("/strata/", "", ""), api());
    let (status, _, body) = get_response(&router, "/strata/graph", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"<base href="/strata/">"#), "{body}");
    assert!(body.contains(r#"{"prefix":"/strata","functions":["abs""#));
    for page in ["stores", "flags", "status", "rules", "alerts"] {
        let (status, _, _) = get_response(&router, &format!("/strata/{page}"), &[]).await;
        assert_eq!(status, StatusCode::OK, "{page}");
    }
    let (status, _, body) = get_response(&router, "/strata/api/v1/status/buildinfo", &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "api"));
    let (status, headers, _) = get_response(&router, "/strata/static/strata.js", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|value| value.starts_with("text/javascript"))
    );

    // Nothing of the UI or the API is left at the root; the root redirects into the prefix.
    for path in ["/graph", "/api/v1/status/buildinfo", "/static/strata.js"] {
        let (status, _, _) = get_response(&router, path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    for (path, target) in [
        ("/", "/strata/"),
        ("/strata", "/strata/"),
        ("/strata/", "/strata/graph"),
    ] {
        let (status, headers, _) = get_response(&router, path, &[]).await;
        assert_eq!(status, StatusCode::FOUND, "{path}");
        assert_eq!(location(&headers), target, "{path}");
    }
}

#[tokio::test]
async fn root_route_serves_pages_and_redirects_to_graph() {
    let router = routes(UiConfig::default(), api());
    let (status, headers, _) = get_response(&router, "/", &[]).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(location(&headers), "/graph");
    let (status, _, body) = get_response(&router, "/graph?g0.expr=up", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"<base href="/">"#), "{body}");
    let (status, _, body) = get_response(&router, "/api/v1/status/buildinfo", &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "api"));
}

#[tokio::test]
async fn external_prefix_builds_links_while_routes_stay_at_the_route_prefix() {
    // A proxy serves the UI at /ext/ and strips the prefix before forwarding.
    let router = routes(config("/", "/ext", ""), api());
    let (status, _, body) = get_response(&router, "/graph", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"<base href="/ext/">"#), "{body}");
    let (_, headers, _) = get_response(&router, "/", &[]).await;
    assert_eq!(location(&headers), "/ext/graph");
    let (status, _, _) = get_response(&router, "/ext/graph", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn prefix_header_sets_links_unless_external_prefix_is_set() {
    let router = routes(config("", "", "X-Forwarded-Prefix"), api());
    let forwarded = [("x-forwarded-prefix", "/proxied/strata/")];
    let (_, _, body) = get_response(&router, "/graph", &forwarded).await;
    assert!(body.contains(r#"<base href="/proxied/strata/">"#), "{body}");
    assert!(body.contains(r#"{"prefix":"/proxied/strata","#), "{body}");
    let (_, headers, _) = get_response(&router, "/", &forwarded).await;
    assert_eq!(location(&headers), "/proxied/strata/graph");

    // A value that could break out of the attribute is ignored.
    let hostile = [("x-forwarded-prefix", "/\"><script>alert(1)</script>")];
    let (_, _, body) = get_response(&router, "/graph", &hostile).await;
    assert!(body.contains(r#"<base href="/">"#), "{body}");
    assert!(!body.contains("<script>alert"), "{body}");
    let (_, _, body) = get_response(&router, "/graph", &[]).await;
    assert!(body.contains(r#"<base href="/">"#), "{body}");

    // The external prefix wins over the header, as in Thanos.
    let router = routes(config("/", "/ext", "X-Forwarded-Prefix"), api());
    let (_, _, body) = get_response(&router, "/graph", &forwarded).await;
    assert!(body.contains(r#"<base href="/ext/">"#), "{body}");
}

#[tokio::test]
async fn assets_are_revalidated_by_etag() {
    let router = routes(UiConfig::default(), api());
    let (status, headers, body) = get_response(&router, "/static/strata.css", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, STYLE);
    let tag = headers[header::ETAG]
        .to_str()
        .expect("ascii etag")
        .to_owned();
    let (status, _, body) =
        get_response(&router, "/static/strata.css", &[("if-none-match", &tag)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
}

#[test]
fn page_settings_carry_defaults() {
    let ui = Ui::new(UiConfig {
        partial_response: false,
        auto_downsampling: true,
        ..UiConfig::default()
    });
    let html = ui.render("/a&b");
    assert!(html.contains(r#"<base href="/a&amp;b/">"#), "{html}");
    assert!(html.contains(r#""prefix":"/a\u0026b""#), "{html}");
    assert!(html.contains(r#""partialResponse":false,"maxSourceResolution":"auto""#));
    assert!(html.contains(r#""holt_winters""#));
}
