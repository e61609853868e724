//! The alert state machine and recording rules, step by step.

use std::collections::BTreeMap;

use super::*;
use crate::rulefmt::{Defaults, parse_file};
use crate::storage::is_stale_nan;
use crate::template::NoQuery;

fn rule(text: &str) -> RuleState {
    let groups = parse_file(
        "r.yml",
        text,
        Defaults {
            interval: Duration::from_secs(1),
            query_offset: Duration::ZERO,
        },
    )
    .expect("valid rules");
    RuleState::new(groups[0].rules[0].clone(), true)
}

fn result(pairs: &[(&str, f64)]) -> Vec<ResultSample> {
    pairs
        .iter()
        .map(|(instance, value)| ResultSample {
            labels: BTreeMap::from([
                ("__name__".to_owned(), "up".to_owned()),
                ("instance".to_owned(), (*instance).to_owned()),
            ]),
            value: *value,
        })
        .collect()
}

fn ctx(external: &BTreeMap<String, String>) -> EvalContext<'_> {
    EvalContext {
        external_labels: external,
        external_url: "",
        limit: 0,
        query_offset: Duration::ZERO,
        query: &NoQuery,
    }
}

const ALERT: &str = r#"groups:
- name: g
  rules:
  - alert: Down
    expr: up == 0
    for: 2s
    labels: {severity: page}
    annotations: {summary: "{{ $labels.instance }} down ({{ $value }})"}
"#;

#[test]
fn pending_firing_resolved_and_alerts_series() {
    let external = BTreeMap::new();
    let mut rule = rule(ALERT);
    let out = rule
        .eval(result(&[("a", 0.0)]), 1_000, &ctx(&external))
        .expect("eval");
    assert_eq!(rule.state(), AlertState::Pending);
    let alerts_series: Vec<&Sample> = out
        .samples
        .iter()
        .filter(|s| s.labels.get("__name__") == Some("ALERTS"))
        .collect();
    assert_eq!(alerts_series.len(), 1);
    assert_eq!(alerts_series[0].labels.get("alertstate"), Some("pending"));
    assert_eq!(alerts_series[0].labels.get("severity"), Some("page"));
    assert_eq!(alerts_series[0].labels.get("alertname"), Some("Down"));
    let for_state = out
        .samples
        .iter()
        .find(|s| s.labels.get("__name__") == Some("ALERTS_FOR_STATE"))
        .expect("ALERTS_FOR_STATE");
    assert_eq!(for_state.v, 1.0, "active at 1 s");
    // Pending alerts are not sent.
    assert!(
        rule.alerts_to_send(1_000, Duration::from_secs(60), Duration::from_secs(1), "")
            .is_empty()
    );

    rule.eval(result(&[("a", 0.0)]), 2_000, &ctx(&external))
        .expect("eval");
    assert_eq!(rule.state(), AlertState::Pending);
    let out = rule
        .eval(result(&[("a", 0.0)]), 3_000, &ctx(&external))
        .expect("eval");
    assert_eq!(rule.state(), AlertState::Firing);
    // The pending series goes stale when the firing one appears.
    assert!(
        out.samples
            .iter()
            .any(|s| s.labels.get("alertstate") == Some("pending") && is_stale_nan(s.v))
    );
    let sent = rule.alerts_to_send(
        3_000,
        Duration::from_secs(60),
        Duration::from_secs(1),
        "http://q/graph",
    );
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].starts_at, "1970-01-01T00:00:03.000Z");
    // endsAt = 4 x max(resend delay, interval) ahead.
    assert_eq!(sent[0].ends_at, "1970-01-01T00:04:03.000Z");
    assert_eq!(
        sent[0].annotations.get("summary").map(String::as_str),
        Some("a down (0)")
    );
    assert_eq!(sent[0].generator_url, "http://q/graph");
    // Not again before the resend delay.
    assert!(
        rule.alerts_to_send(4_000, Duration::from_secs(60), Duration::from_secs(1), "")
            .is_empty()
    );

    // Condition clears: resolved, sent once more with endsAt = resolved time.
    let out = rule
        .eval(result(&[]), 5_000, &ctx(&external))
        .expect("eval");
    assert_eq!(rule.state(), AlertState::Inactive);
    assert!(
        out.samples.iter().all(|s| is_stale_nan(s.v)),
        "only stale markers"
    );
    let sent = rule.alerts_to_send(5_000, Duration::from_secs(60), Duration::from_secs(1), "");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].ends_at, "1970-01-01T00:00:05.000Z");
    // Kept 15 minutes, then forgotten.
    rule.eval(result(&[]), 5_000 + 15 * 60_000 + 1, &ctx(&external))
        .expect("eval");
    assert!(rule.active.is_empty());
}

#[test]
fn keep_firing_for_and_limit() {
    let external = BTreeMap::new();
    let mut rule =
        rule("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    keep_firing_for: 3s\n");
    rule.eval(result(&[("a", 1.0)]), 1_000, &ctx(&external))
        .expect("eval");
    assert_eq!(rule.state(), AlertState::Firing, "for 0 fires at once");
    rule.eval(result(&[]), 2_000, &ctx(&external))
        .expect("eval");
    assert_eq!(rule.state(), AlertState::Firing, "kept firing");
    rule.eval(result(&[]), 4_000, &ctx(&external))
        .expect("eval");
    assert_eq!(rule.state(), AlertState::Firing);
    rule.eval(result(&[]), 5_000, &ctx(&external))
        .expect("eval");
    assert_eq!(rule.state(), AlertState::Inactive);

    let mut limited = ctx(&external);
    limited.limit = 1;
    let err = rule
        .eval(result(&[("a", 1.0), ("b", 1.0)]), 6_000, &limited)
        .expect_err("limit");
    assert_eq!(err, "exceeded limit of 1 with 2 alerts");
    assert!(rule.active.is_empty());
}

#[test]
fn recording_rules_rename_label_and_detect_duplicates() {
    let external = BTreeMap::new();
    let mut rule = rule(
        "groups:\n- name: g\n  rules:\n  - record: job:up\n    expr: up\n    labels: {team: infra, instance: \"\"}\n",
    );
    let out = rule
        .eval(result(&[("a", 1.0)]), 1_000, &ctx(&external))
        .expect("eval");
    assert_eq!(out.samples.len(), 1);
    assert_eq!(
        out.samples[0].labels,
        strata_tsdb::labels::Labels::from_pairs([("__name__", "job:up"), ("team", "infra")])
    );
    // Dropping `instance` makes two inputs collide.
    let err = rule
        .eval(result(&[("a", 1.0), ("b", 2.0)]), 2_000, &ctx(&external))
        .expect_err("duplicate");
    assert!(err.contains("same labelset"), "{err}");
}

#[test]
fn for_state_is_restored_from_alerts_for_state() {
    let external = BTreeMap::new();
    let hold = 600_000; // the rule's for: 10m
    let text = "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 10m\n";
    // Before the restart the alert had been pending since t=100 s; the ruler went down at
    // t=400 s and is back at t=500 s.
    let restore_at = |now: i64, grace: Duration| {
        let mut rule = rule(text);
        rule.restored = false;
        rule.eval(result(&[("a", 0.0)]), now, &ctx(&external))
            .expect("eval");
        rule.restore_for_state(now, grace, |labels| {
            assert_eq!(labels.get("__name__"), Some("ALERTS_FOR_STATE"));
            assert_eq!(labels.get("instance"), Some("a"));
            Some((400_000, 100.0))
        });
        assert!(rule.restored);
        rule.active.values().next().map(|alert| alert.active_at)
    };
    // Pending 300 s of 600: 300 s remain (> grace 60 s): active_at shifts by the 100 s down.
    assert_eq!(restore_at(500_000, Duration::from_secs(60)), Some(200_000));
    // With a grace of 400 s the remaining 300 s is below it: active_at = now + grace - for.
    assert_eq!(
        restore_at(500_000, Duration::from_secs(400)),
        Some(500_000 + 400_000 - hold)
    );
}
