//! The web UI at `/`: one static page (plain HTML and JavaScript, no build step) with a query
//! box, a result table for instant queries, an SVG graph for range queries, and the store list.
//! It talks to the same `/api/v1` endpoints as Grafana, with relative URLs so that it works
//! behind a route prefix.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use strata_common::http_server::named_handler;

const INDEX_HTML: &str = include_str!("ui/index.html");

async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
}

/// The UI routes: `/` and `/graph` (Thanos's UI path) serve the page.
pub fn routes() -> Router {
    Router::new()
        .route("/", named_handler("root", get(index)))
        .route("/graph", named_handler("graph", get(index)))
}
