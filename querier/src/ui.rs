//! The querier's web UI and its HTTP routing under `--web.route-prefix`.
//!
//! The UI is one page of plain HTML, CSS and JavaScript embedded in the binary (no build step,
//! no CDN): the graph page Prometheus and Thanos users know (panels, table and graph tabs,
//! autocomplete, the Thanos options, the view in the URL as `g0.expr=...`), plus the stores,
//! flags, status, rules and alerts pages. Every page path serves the same document; the script
//! picks the page from the path and talks to the same `/api/v1` endpoints as Grafana.
//!
//! Prefixes follow Thanos's `query` command:
//! - `--web.route-prefix` (default: the external prefix) is where the server serves the UI and
//!   the API; `/` and the bare prefix redirect to `<prefix>/`. `/metrics` and the probes stay at
//!   the root, as Thanos's do.
//! - `--web.external-prefix` is the prefix the browser sees (a proxy may strip it): every link,
//!   script and API call of the page is built on it, through the document's `<base href>`.
//! - `--web.prefix-header` names a request header carrying that prefix per request, used when no
//!   external prefix is set. Header values are checked like the flags and ignored when unsafe.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use strata_common::http_server::named_handler;

use crate::error::{Error, Result};

const INDEX_HTML: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/strata.js");
const STYLE: &str = include_str!("ui/strata.css");

/// The page paths (relative to the route prefix) that serve the document, with their `handler`
/// metric labels.
const PAGES: [(&str, &str); 6] = [
    ("/graph", "graph"),
    ("/stores", "stores"),
    ("/flags", "flags"),
    ("/status", "status"),
    ("/rules", "rules"),
    ("/alerts", "alerts"),
];

/// The prefix flags and the page's defaults, resolved from the querier's flags.
#[derive(Debug, Clone, Default)]
pub struct UiConfig {
    /// `--web.route-prefix`, normalised: empty for the root, else `/a/b` (no trailing `/`).
    pub route_prefix: String,
    /// `--web.external-prefix`, normalised like the route prefix.
    pub external_prefix: String,
    /// `--web.prefix-header`.
    pub prefix_header: Option<HeaderName>,
    /// The query page's default for "partial response" (`--query.partial-response`).
    pub partial_response: bool,
    /// The query page's default max source resolution is `auto` (`--query.auto-downsampling`).
    pub auto_downsampling: bool,
}

impl UiConfig {
    /// Checks and normalises the three prefix flags as Thanos does: the route prefix defaults
    /// to the external prefix. An unusable value fails start-up naming its flag.
    pub fn from_flags(
        route_prefix: &str,
        external_prefix: &str,
        prefix_header: &str,
    ) -> Result<Self> {
        let external_prefix = normalize_prefix(external_prefix).ok_or_else(|| {
            bad_flag(
                "web.external-prefix",
                external_prefix,
                "a URL path (or URL) of letters, digits and - . _ ~ % / : @ ! $ ( ) * + , ; = &",
            )
        })?;
        let route_prefix = if route_prefix.is_empty() {
            external_prefix.clone()
        } else {
            normalize_prefix(route_prefix).ok_or_else(|| {
                bad_flag(
                    "web.route-prefix",
                    route_prefix,
                    "a URL path of letters, digits and - . _ ~ % / : @ ! $ ( ) * + , ; = &",
                )
            })?
        };
        let prefix_header =
            if prefix_header.is_empty() {
                None
            } else {
                Some(HeaderName::try_from(prefix_header).map_err(|_| {
                    bad_flag("web.prefix-header", prefix_header, "an HTTP header name")
                })?)
            };
        Ok(Self {
            route_prefix,
            external_prefix,
            prefix_header,
            ..Self::default()
        })
    }

    /// The prefix of the page's links for one request: the external prefix, else the prefix
    /// header's value when configured, present and safe, else the route prefix.
    pub fn link_prefix(&self, headers: &HeaderMap) -> String {
        if !self.external_prefix.is_empty() {
            return self.external_prefix.clone();
        }
        if let Some(name) = &self.prefix_header
            && let Some(value) = headers.get(name)
        {
            match value.to_str().ok().and_then(normalize_prefix) {
                Some(prefix) => return prefix,
                None => tracing::debug!(header = %name, "ignored an unsafe web prefix header"),
            }
        }
        self.route_prefix.clone()
    }
}

fn bad_flag(flag: &'static str, value: &str, expected: &'static str) -> Error {
    Error::BadFlag {
        flag,
        value: value.to_owned(),
        expected,
    }
}

/// Characters allowed in a prefix besides ASCII letters and digits: RFC 3986's path
/// characters without quotes, so a prefix can go into HTML and JSON without surprises.
const PREFIX_PUNCTUATION: &str = "-._~%/:@!$()*+,;=&";

/// Normalises a prefix like Thanos's `SanitizePrefix`: the path of a URL (scheme and host
/// dropped), `.`/`..`/empty segments resolved, a leading `/` and no trailing `/`; the root is
/// the empty string. `None` when it holds characters outside [`PREFIX_PUNCTUATION`], letters
/// and digits (quotes, spaces, `<`, `?`, `#`, control characters).
pub fn normalize_prefix(value: &str) -> Option<String> {
    let value = value.trim();
    let path = match value.split_once("://") {
        Some((_, after_scheme)) => after_scheme.find('/').map_or("", |at| &after_scheme[at..]),
        None => value,
    };
    if !path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || PREFIX_PUNCTUATION.contains(c))
    {
        return None;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    if segments.is_empty() {
        Some(String::new())
    } else {
        Some(format!("/{}", segments.join("/")))
    }
}

/// `&`, `<`, `>`, `"` and `'` as HTML entities (prefixes allow `&`).
fn escape_html_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The UI's state: its configuration and the document parts that do not change per request.
#[derive(Debug)]
pub struct Ui {
    config: UiConfig,
    /// The page's JSON settings after `"prefix":`, without the closing brace.
    settings_tail: String,
    script_etag: HeaderValue,
    style_etag: HeaderValue,
}

fn etag(content: &str) -> HeaderValue {
    let hash = xxhash_rust::xxh64::xxh64(content.as_bytes(), 0);
    HeaderValue::try_from(format!("\"{hash:016x}\""))
        .expect("a quoted hex string is a valid header value")
}

impl Ui {
    pub fn new(config: UiConfig) -> Self {
        let mut tail = String::from(",\"functions\":");
        let functions: Vec<String> = strata_promql::parser::FUNCTIONS_2_42
            .iter()
            .map(|name| (*name).to_owned())
            .collect();
        crate::api::json::write_string_array(&mut tail, &functions);
        tail.push_str(&format!(
            ",\"partialResponse\":{},\"maxSourceResolution\":\"{}\",\"version\":",
            config.partial_response,
            if config.auto_downsampling {
                "auto"
            } else {
                "0s"
            },
        ));
        crate::api::json::write_string(&mut tail, env!("CARGO_PKG_VERSION"));
        Self {
            config,
            settings_tail: tail,
            script_etag: etag(SCRIPT),
            style_etag: etag(STYLE),
        }
    }

    /// The document for a request whose links start with `prefix`.
    fn render(&self, prefix: &str) -> String {
        let mut settings = String::from("{\"prefix\":");
        crate::api::json::write_string(&mut settings, prefix);
        settings.push_str(&self.settings_tail);
        settings.push('}');
        INDEX_HTML
            .replace("{{BASE}}", &escape_html_attribute(&format!("{prefix}/")))
            .replace("{{SETTINGS}}", &settings)
            .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
    }
}

type Shared = Arc<Ui>;

async fn page(State(ui): State<Shared>, headers: HeaderMap) -> Response {
    let prefix = ui.config.link_prefix(&headers);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        ui.render(&prefix),
    )
        .into_response()
}

/// `<route prefix>/`: to the graph page, as Thanos redirects.
async fn root(State(ui): State<Shared>, headers: HeaderMap) -> Response {
    let prefix = ui.config.link_prefix(&headers);
    redirect(&format!("{prefix}/graph"))
}

fn redirect(location: &str) -> Response {
    match HeaderValue::try_from(location) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        // Prefixes are checked to hold only header-safe characters.
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn asset(
    headers: &HeaderMap,
    content_type: &'static str,
    etag: &HeaderValue,
    body: &'static str,
) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|value| value == etag);
    let common = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, etag.clone()),
    ];
    if fresh {
        (StatusCode::NOT_MODIFIED, common).into_response()
    } else {
        (
            common,
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body,
        )
            .into_response()
    }
}

async fn script(State(ui): State<Shared>, headers: HeaderMap) -> Response {
    asset(
        &headers,
        "text/javascript; charset=utf-8",
        &ui.script_etag,
        SCRIPT,
    )
}

async fn style(State(ui): State<Shared>, headers: HeaderMap) -> Response {
    asset(&headers, "text/css; charset=utf-8", &ui.style_etag, STYLE)
}

/// The UI pages and `api` (the `/api/v1` routes) under the route prefix, with Thanos's
/// redirects: `/` and `<prefix>` to `<prefix>/`, and `<prefix>/` to the graph page.
pub fn routes(config: UiConfig, api: Router) -> Router {
    let route_prefix = config.route_prefix.clone();
    let ui: Shared = Arc::new(Ui::new(config));
    let mut pages = Router::new()
        .route("/static/strata.js", named_handler("static", get(script)))
        .route("/static/strata.css", named_handler("static", get(style)));
    for (path, name) in PAGES {
        pages = pages.route(path, named_handler(name, get(page)));
    }
    let pages = pages.with_state(Arc::clone(&ui));
    let root_page = named_handler("root", get(root)).with_state(ui);
    if route_prefix.is_empty() {
        return pages.merge(api).route("/", root_page);
    }
    let to_prefix = format!("{route_prefix}/");
    let redirect_to_prefix = move || {
        let location = to_prefix.clone();
        async move { redirect(&location) }
    };
    Router::new()
        .nest(&route_prefix, pages.merge(api))
        .route("/", named_handler("root", get(redirect_to_prefix.clone())))
        .route(
            &route_prefix,
            named_handler("root", get(redirect_to_prefix)),
        )
        .route(&format!("{route_prefix}/"), root_page)
}

#[cfg(test)]
mod tests;
