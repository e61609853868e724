//! The ruler's HTTP API in Prometheus's JSON shape (reference/thanos-ruler-deploy.md section
//! 1.6): `GET /api/v1/rules` (filters `type`, `rule_name[]`, `rule_group[]`, `file[]`),
//! `GET /api/v1/alerts`, `POST /-/reload` (500 with the error text when the new files are
//! bad; the old rules keep running), `/api/v1/status/flags` and `/api/v1/status/buildinfo`,
//! plus a small rules and alerts page at `/`.
//!
//! `/api/v1/alerts` answers with Prometheus's `alerts` key (Thanos's ruler says `Alerts`,
//! which Prometheus clients do not read, thanos#5315).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use strata_common::http_server::named_handler;

use crate::manager::{GroupState, Manager};
use crate::rulefmt::RuleKind;
use crate::rules::RuleState;

/// What the handlers share.
#[derive(Debug)]
pub struct ApiState {
    pub manager: Arc<Manager>,
    pub external_labels: BTreeMap<String, String>,
    pub flags: BTreeMap<String, String>,
}

const PAGE: &str = include_str!("api/index.html");

fn success(data: Value) -> Response {
    Json(json!({"status": "success", "data": data})).into_response()
}

fn error(status: StatusCode, error_type: &str, message: String) -> Response {
    (
        status,
        Json(json!({"status": "error", "errorType": error_type, "error": message})),
    )
        .into_response()
}

fn time_text(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => crate::query::rfc3339_nano(ms),
        None => "0001-01-01T00:00:00Z".to_owned(),
    }
}

fn alert_json(alert: &crate::rules::Alert, strategy: &str) -> Value {
    json!({
        "labels": alert.labels,
        "annotations": alert.annotations,
        "state": alert.state.as_str(),
        "activeAt": crate::query::rfc3339_nano(alert.active_at),
        "value": crate::template::go_format_float(alert.value, 'e', None),
        "partialResponseStrategy": strategy,
    })
}

fn rule_json(rule: &RuleState, strategy: &str, external: &BTreeMap<String, String>) -> Value {
    let mut labels = rule.spec.labels.clone();
    for (name, value) in external {
        labels.insert(name.clone(), value.clone());
    }
    let mut out = match &rule.spec.kind {
        RuleKind::Alerting {
            name,
            hold,
            keep_firing_for,
            ..
        } => {
            let alerts: Vec<Value> = rule
                .active
                .values()
                .filter(|alert| alert.state != crate::rules::AlertState::Inactive)
                .map(|alert| alert_json(alert, strategy))
                .collect();
            json!({
                "state": rule.state().as_str(),
                "name": name,
                "query": rule.spec.expr,
                "duration": hold.as_secs_f64(),
                "keepFiringFor": keep_firing_for.as_secs_f64(),
                "labels": labels,
                "annotations": rule.spec.annotation_texts,
                "alerts": alerts,
                "health": rule.health.as_str(),
                "evaluationTime": rule.evaluation_seconds,
                "lastEvaluation": time_text(rule.last_evaluation),
                "type": "alerting",
            })
        }
        RuleKind::Recording { record } => json!({
            "name": record,
            "query": rule.spec.expr,
            "labels": labels,
            "health": rule.health.as_str(),
            "evaluationTime": rule.evaluation_seconds,
            "lastEvaluation": time_text(rule.last_evaluation),
            "type": "recording",
        }),
    };
    if let (Some(error), Some(map)) = (&rule.last_error, out.as_object_mut()) {
        map.insert("lastError".to_owned(), json!(error));
    }
    out
}

/// `key[]=value` (and `key=value`) pairs of a query string.
fn params(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|query| {
            url_pairs(query)
                .into_iter()
                .map(|(k, v)| (k.trim_end_matches("[]").to_owned(), v))
                .collect()
        })
        .unwrap_or_default()
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    serde_urlencoded_pairs(query)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'+') => out.push(b' '),
            Some(b'%') => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            Some(&byte) => out.push(byte),
            None => {}
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serde_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

async fn rules(State(state): State<Arc<ApiState>>, RawQuery(query): RawQuery) -> Response {
    let params = params(query.as_deref());
    let values = |key: &str| -> Vec<String> {
        params
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let kind = values("type")
        .into_iter()
        .next()
        .unwrap_or_default()
        .to_lowercase();
    let (want_alert, want_record) = match kind.as_str() {
        "" => (true, true),
        "alert" => (true, false),
        "record" => (false, true),
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_data",
                format!("invalid type parameter {other:?}: must be alert or record"),
            );
        }
    };
    let rule_names = values("rule_name");
    let rule_groups = values("rule_group");
    let files = values("file");
    let groups: Vec<GroupState> = state.manager.groups().await;
    let mut out = Vec::new();
    for group in &groups {
        if !rule_groups.is_empty() && !rule_groups.contains(&group.name) {
            continue;
        }
        if !files.is_empty() && !files.contains(&group.file) {
            continue;
        }
        let strategy = group.strategy.upper();
        let rules: Vec<Value> = group
            .rules
            .iter()
            .filter(|rule| {
                if rule.is_alerting() {
                    want_alert
                } else {
                    want_record
                }
            })
            .filter(|rule| {
                rule_names.is_empty() || rule_names.iter().any(|n| n == rule.spec.name())
            })
            .map(|rule| rule_json(rule, strategy, &state.external_labels))
            .collect();
        if rules.is_empty() && (!rule_names.is_empty() || !kind.is_empty()) {
            continue;
        }
        out.push(json!({
            "name": group.name,
            "file": group.file,
            "rules": rules,
            "interval": group.interval.as_secs_f64(),
            "limit": group.limit,
            "evaluationTime": group.evaluation_seconds,
            "lastEvaluation": time_text(group.last_evaluation),
            "partialResponseStrategy": strategy,
        }));
    }
    success(json!({"groups": out}))
}

async fn alerts(State(state): State<Arc<ApiState>>) -> Response {
    let groups = state.manager.groups().await;
    let mut out = Vec::new();
    for group in &groups {
        for rule in &group.rules {
            for alert in rule.active.values() {
                if alert.state != crate::rules::AlertState::Inactive {
                    out.push(alert_json(alert, group.strategy.upper()));
                }
            }
        }
    }
    success(json!({"alerts": out}))
}

async fn reload(State(state): State<Arc<ApiState>>) -> Response {
    match state.manager.reload().await {
        Ok(()) => (StatusCode::OK, "").into_response(),
        Err(err) => {
            let text = strata_common::error::error_chain(&err);
            tracing::error!(error = %text, "reloading rules failed; the previous rules keep running");
            (StatusCode::INTERNAL_SERVER_ERROR, text).into_response()
        }
    }
}

async fn flags(State(state): State<Arc<ApiState>>) -> Response {
    success(json!(state.flags))
}

async fn buildinfo() -> Response {
    success(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// The API routes.
pub fn routes(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/v1/rules", named_handler("rules", get(rules)))
        .route("/api/v1/alerts", named_handler("alerts", get(alerts)))
        .route("/-/reload", named_handler("reload", post(reload)))
        .route(
            "/api/v1/status/flags",
            named_handler("status_flags", get(flags)),
        )
        .route(
            "/api/v1/status/buildinfo",
            named_handler("status_build", get(buildinfo)),
        )
        .route("/", named_handler("react-static", get(page)))
        .route("/rules", named_handler("react-static", get(page)))
        .route("/alerts", named_handler("react-static", get(page)))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_decode() {
        let pairs = params(Some("type=alert&rule_name%5B%5D=A%20b&file[]=x+y"));
        assert_eq!(
            pairs,
            vec![
                ("type".to_owned(), "alert".to_owned()),
                ("rule_name".to_owned(), "A b".to_owned()),
                ("file".to_owned(), "x y".to_owned()),
            ]
        );
    }
}
