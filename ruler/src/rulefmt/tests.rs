//! Rule file parsing and validation: good files load, bad ones are refused naming the line.

use super::*;

const DEFAULTS: Defaults = Defaults {
    interval: Duration::from_secs(60),
    query_offset: Duration::ZERO,
};

const GOOD: &str = r#"groups:
- name: global
  interval: 30s
  partial_response_strategy: warn
  limit: 10
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
    labels:
      team: infra
  - alert: ClusterMissing
    expr: absent(up{cluster="b"})
    for: 5m
    keep_firing_for: 1m
    labels:
      severity: page
      instance: "{{ $labels.instance }}"
    annotations:
      summary: "cluster {{ $labels.cluster }} is {{ $value | humanize }}"
- name: other
  rules:
  - record: x
    expr: "1"
"#;

#[test]
fn good_file_loads_with_defaults_and_strategies() {
    let groups = parse_file("rules.yml", GOOD, DEFAULTS).expect("valid file");
    assert_eq!(groups.len(), 2);
    let global = &groups[0];
    assert_eq!(global.name, "global");
    assert_eq!(global.interval, Duration::from_secs(30));
    assert_eq!(global.strategy, Strategy::Warn);
    assert_eq!(global.limit, 10);
    assert_eq!(global.rules.len(), 2);
    assert_eq!(global.rules[0].name(), "job:up:sum");
    assert_eq!(
        global.rules[0].labels.get("team").map(String::as_str),
        Some("infra")
    );
    match &global.rules[1].kind {
        RuleKind::Alerting {
            hold,
            keep_firing_for,
            label_templates,
            annotations,
            ..
        } => {
            assert_eq!(*hold, Duration::from_secs(300));
            assert_eq!(*keep_firing_for, Duration::from_secs(60));
            let instance = label_templates
                .iter()
                .find(|(name, _, _)| name == "instance")
                .expect("instance label");
            assert!(instance.2.is_some(), "templated label");
            let severity = label_templates
                .iter()
                .find(|(name, _, _)| name == "severity")
                .expect("severity label");
            assert!(severity.2.is_none(), "plain label");
            assert_eq!(annotations.len(), 1);
        }
        other => panic!("expected an alerting rule, got {other:?}"),
    }
    assert_eq!(groups[1].interval, Duration::from_secs(60));
    assert_eq!(groups[1].strategy, Strategy::Abort);
    assert_eq!(groups[1].rules[0].expr, "1");
}

fn error_of(text: &str) -> (usize, String) {
    match parse_file("bad.yml", text, DEFAULTS) {
        Err(Error::RuleFile { file, line, reason }) => {
            assert_eq!(file, "bad.yml");
            (line, reason)
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("accepted a bad file:\n{text}"),
    }
}

#[test]
fn bad_files_name_the_line_and_reason() {
    let (line, reason) =
        error_of("groups:\n- name: g\n  rules:\n  - record: r\n    expr: sum(up\n");
    assert_eq!(line, 5, "{reason}");
    assert!(reason.contains("could not parse expression"), "{reason}");
    assert!(reason.contains("group \"g\", rule 1, \"r\""), "{reason}");

    let (line, reason) = error_of(
        "groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n  - alert: A\n    expr: up\n    annotations:\n      s: \"{{ nosuch }}\"\n",
    );
    assert_eq!(line, 6, "{reason}");
    assert!(
        reason.contains("function \"nosuch\" not defined"),
        "{reason}"
    );

    let (line, reason) =
        error_of("groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    unknown: 1\n");
    assert_eq!(line, 6, "{reason}");
    assert!(reason.contains("unknown field `unknown`"), "{reason}");

    let (line, reason) = error_of("groups:\n- name: g\n  rules:\n  - record: r\n    expr: [up\n");
    assert!(line >= 5, "{line}: {reason}");

    let (_, reason) =
        error_of("groups:\n- name: g\n  rules:\n  - record: r\n    alert: a\n    expr: up\n");
    assert!(
        reason.contains("only one of 'record' and 'alert'"),
        "{reason}"
    );
    let (_, reason) = error_of("groups:\n- name: g\n  rules:\n  - expr: up\n");
    assert!(
        reason.contains("one of 'record' or 'alert' must be set"),
        "{reason}"
    );
    let (_, reason) =
        error_of("groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    for: 1m\n");
    assert!(
        reason.contains("invalid field 'for' in recording rule"),
        "{reason}"
    );
    let (_, reason) =
        error_of("groups:\n- name: g\n  rules:\n  - record: 'bad name'\n    expr: up\n");
    assert!(reason.contains("invalid recording rule name"), "{reason}");
    let (line, reason) = error_of("groups:\n- name: g\n  rules: []\n- name: g\n  rules: []\n");
    assert_eq!(line, 4, "{reason}");
    assert!(reason.contains("repeated in the same file"), "{reason}");
    let (_, reason) =
        error_of("groups:\n- name: g\n  partial_response_strategy: sometimes\n  rules: []\n");
    assert!(reason.contains("partial_response_strategy"), "{reason}");
    let (_, reason) = error_of("groups:\n- name: g\n  interval: 5x\n  rules: []\n");
    assert!(reason.contains("invalid interval"), "{reason}");
    let (_, reason) = error_of(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      'bad-name': x\n",
    );
    assert!(reason.contains("invalid label name"), "{reason}");
}

#[test]
fn globs_expand_and_skip_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.yml"), GOOD).expect("write");
    std::fs::write(dir.path().join("b.yaml"), "groups: []\n").expect("write");
    std::fs::create_dir(dir.path().join("sub.yml")).expect("mkdir");
    let pattern = format!("{}/*.y*ml", dir.path().display());
    let files = expand_globs(&[pattern.clone(), pattern]).expect("glob");
    assert_eq!(files.len(), 2, "{files:?}");
    let groups = load_all(&[format!("{}/*.yml", dir.path().display())], DEFAULTS).expect("load");
    assert_eq!(groups.len(), 2);
    assert!(groups[0].file.ends_with("a.yml"));
}
