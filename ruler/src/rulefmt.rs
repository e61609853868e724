//! Rule files in Prometheus's format plus Thanos's `partial_response_strategy` group key
//! (reference/thanos-ruler-deploy.md section 1.3; Prometheus `model/rulefmt/rulefmt.go`).
//!
//! Parsing is strict, as Prometheus's: an unknown field is an error. Every error names the
//! file and the line: YAML errors carry serde_yaml's position; validation errors (a bad
//! expression, template or name) point at the rule's `expr:` line (or `record:`/`alert:` line),
//! found by scanning the text for the rule's keys in order. Expressions are parsed with
//! `strata-promql`'s parser and templates with [`crate::template`], both once, here.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::template::Template;

/// Thanos's per-group partial response strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Strategy {
    Abort,
    Warn,
}

impl Strategy {
    /// `ABORT` / `WARN`, as the rules API and `thanos_rule_loaded_rules` show it.
    pub fn upper(self) -> &'static str {
        match self {
            Strategy::Abort => "ABORT",
            Strategy::Warn => "WARN",
        }
    }

    /// `abort` / `warn`, the `strategy` label of the rule metrics.
    pub fn lower(self) -> &'static str {
        match self {
            Strategy::Abort => "abort",
            Strategy::Warn => "warn",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileYaml {
    #[serde(default)]
    groups: Vec<GroupYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupYaml {
    #[serde(default)]
    name: String,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    query_offset: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    partial_response_strategy: Option<String>,
    #[serde(default)]
    rules: Vec<RuleYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleYaml {
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    alert: Option<String>,
    #[serde(default)]
    expr: Option<serde_yaml::Value>,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// What a rule does.
#[derive(Debug, Clone)]
pub enum RuleKind {
    Recording {
        record: String,
    },
    Alerting {
        name: String,
        hold: Duration,
        keep_firing_for: Duration,
        /// Templated label values (`None` when the value has no actions).
        label_templates: Vec<(String, String, Option<Template>)>,
        annotations: Vec<(String, String, Template)>,
    },
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub kind: RuleKind,
    pub expr: String,
    /// Rule labels (group labels merged in, the rule's own winning).
    pub labels: BTreeMap<String, String>,
    /// Annotation texts as written (for the API).
    pub annotation_texts: BTreeMap<String, String>,
}

impl RuleSpec {
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Recording { record } => record,
            RuleKind::Alerting { name, .. } => name,
        }
    }
}

/// A validated group.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub file: String,
    pub name: String,
    pub interval: Duration,
    pub query_offset: Duration,
    /// 0 = unlimited.
    pub limit: usize,
    pub strategy: Strategy,
    pub rules: Vec<RuleSpec>,
}

/// Defaults for what a group leaves out.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub interval: Duration,
    pub query_offset: Duration,
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Lines (1-based) of keys matching `pattern` at the start of a line, in order.
fn key_lines(text: &str, keys: &[&str]) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let trimmed = line.trim_start();
            let trimmed = trimmed.strip_prefix("- ").unwrap_or(trimmed).trim_start();
            keys.iter()
                .any(|key| {
                    trimmed
                        .strip_prefix(key)
                        .is_some_and(|rest| rest.trim_start().starts_with(':'))
                })
                .then_some(i + 1)
        })
        .collect()
}

/// Reads, parses and validates one rule file.
pub fn load_file(path: &Path, defaults: Defaults) -> Result<Vec<GroupSpec>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::RuleFileRead {
        file: path.display().to_string(),
        source,
    })?;
    parse_file(&path.display().to_string(), &text, defaults)
}

/// Parses and validates the text of one rule file named `file`.
pub fn parse_file(file: &str, text: &str, defaults: Defaults) -> Result<Vec<GroupSpec>> {
    let bad = |line: usize, reason: String| Error::RuleFile {
        file: file.to_owned(),
        line,
        reason,
    };
    let parsed: FileYaml = if text.trim().is_empty() {
        FileYaml { groups: Vec::new() }
    } else {
        serde_yaml::from_str(text).map_err(|err| {
            let line = err.location().map_or(0, |location| location.line());
            bad(line, err.to_string())
        })?
    };
    let group_lines = key_lines(text, &["name"]);
    let rule_lines = key_lines(text, &["record", "alert"]);
    let expr_lines = key_lines(text, &["expr"]);
    let total_rules: usize = parsed.groups.iter().map(|g| g.rules.len()).sum();
    // The scan is trusted only when it found exactly one key per rule.
    let rule_line = |index: usize| {
        (rule_lines.len() == total_rules)
            .then(|| rule_lines.get(index).copied())
            .flatten()
            .unwrap_or(0)
    };
    let expr_line = |index: usize| {
        (expr_lines.len() == total_rules)
            .then(|| expr_lines.get(index).copied())
            .flatten()
            .unwrap_or_else(|| rule_line(index))
    };
    let group_count = parsed.groups.len();
    let group_line = |index: usize| {
        (group_lines.len() >= group_count)
            .then(|| group_lines.get(index).copied())
            .flatten()
            .unwrap_or(0)
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut groups = Vec::new();
    let mut rule_index = 0;
    for (group_index, group) in parsed.groups.into_iter().enumerate() {
        let line = group_line(group_index);
        if group.name.is_empty() {
            return Err(bad(line, "Groupname must not be empty".to_owned()));
        }
        if !seen.insert(group.name.clone()) {
            return Err(bad(
                line,
                format!("groupname: {:?} is repeated in the same file", group.name),
            ));
        }
        let duration = |what: &str, value: &Option<String>, default: Duration| match value {
            None => Ok(default),
            Some(text) => strata_common::flags::parse_duration(text).map_err(|reason| {
                bad(
                    line,
                    format!("group {:?}: invalid {what} {text:?}: {reason}", group.name),
                )
            }),
        };
        let interval = duration("interval", &group.interval, defaults.interval)?;
        if interval.is_zero() {
            return Err(bad(
                line,
                format!("group {:?}: interval must be above zero", group.name),
            ));
        }
        let query_offset = duration("query_offset", &group.query_offset, defaults.query_offset)?;
        let limit = match group.limit {
            None => 0,
            Some(limit) if limit >= 0 => usize::try_from(limit).unwrap_or(usize::MAX),
            Some(limit) => {
                return Err(bad(
                    line,
                    format!(
                        "group {:?}: limit must not be negative: {limit}",
                        group.name
                    ),
                ));
            }
        };
        let strategy = match group
            .partial_response_strategy
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") | Some("abort") => Strategy::Abort,
            Some("warn") => Strategy::Warn,
            Some(other) => {
                return Err(bad(
                    line,
                    format!(
                        "group {:?}: unknown partial_response_strategy {other:?} (ABORT or WARN)",
                        group.name
                    ),
                ));
            }
        };
        for (name, value) in &group.labels {
            if !valid_label_name(name) || name == "__name__" {
                return Err(bad(
                    line,
                    format!("group {:?}: invalid label name: {name}", group.name),
                ));
            }
            let _ = value;
        }
        let mut rules = Vec::new();
        for (position, rule) in group.rules.into_iter().enumerate() {
            let index = rule_index;
            rule_index += 1;
            let rule_name = rule
                .record
                .clone()
                .or_else(|| rule.alert.clone())
                .unwrap_or_default();
            let rule_bad = |line: usize, reason: String| {
                bad(
                    line,
                    format!(
                        "group {:?}, rule {}, {rule_name:?}: {reason}",
                        group.name,
                        position + 1
                    ),
                )
            };
            let spec =
                validate_rule(rule, &group.labels, &rule_name).map_err(|(at_expr, reason)| {
                    rule_bad(
                        if at_expr {
                            expr_line(index)
                        } else {
                            rule_line(index)
                        },
                        reason,
                    )
                })?;
            rules.push(spec);
        }
        groups.push(GroupSpec {
            file: file.to_owned(),
            name: group.name,
            interval,
            query_offset,
            limit,
            strategy,
            rules,
        });
    }
    Ok(groups)
}

/// Validates one rule; an error says whether it is about the expression, and why.
fn validate_rule(
    rule: RuleYaml,
    group_labels: &BTreeMap<String, String>,
    rule_name: &str,
) -> std::result::Result<RuleSpec, (bool, String)> {
    let expr = match &rule.expr {
        None | Some(serde_yaml::Value::Null) => String::new(),
        Some(serde_yaml::Value::String(text)) => text.clone(),
        Some(serde_yaml::Value::Number(number)) => number.to_string(),
        Some(serde_yaml::Value::Bool(b)) => b.to_string(),
        Some(_) => return Err((true, "field 'expr' must be a string".to_owned())),
    };
    match (&rule.record, &rule.alert) {
        (Some(_), Some(_)) => {
            return Err((
                false,
                "only one of 'record' and 'alert' must be set".to_owned(),
            ));
        }
        (None, None) => {
            return Err((false, "one of 'record' or 'alert' must be set".to_owned()));
        }
        (Some(record), None) if record.is_empty() => {
            return Err((false, "one of 'record' or 'alert' must be set".to_owned()));
        }
        (None, Some(alert)) if alert.is_empty() => {
            return Err((false, "one of 'record' or 'alert' must be set".to_owned()));
        }
        _ => {}
    }
    if expr.trim().is_empty() {
        return Err((true, "field 'expr' must be set in rule".to_owned()));
    }
    if let Err(err) = strata_promql::parser::parse(&expr) {
        return Err((true, format!("could not parse expression: {err}")));
    }
    let mut labels = group_labels.clone();
    for (name, value) in &rule.labels {
        if !valid_label_name(name) || name == "__name__" {
            return Err((false, format!("invalid label name: {name}")));
        }
        labels.insert(name.clone(), value.clone());
    }
    let parse_duration = |what: &str, value: &Option<String>| match value {
        None => Ok(Duration::ZERO),
        Some(text) => strata_common::flags::parse_duration(text)
            .map_err(|reason| (false, format!("invalid {what} {text:?}: {reason}"))),
    };
    let kind = if let Some(record) = rule.record {
        if !rule.annotations.is_empty() {
            return Err((
                false,
                "invalid field 'annotations' in recording rule".to_owned(),
            ));
        }
        if rule.for_.is_some() {
            return Err((false, "invalid field 'for' in recording rule".to_owned()));
        }
        if rule.keep_firing_for.is_some() {
            return Err((
                false,
                "invalid field 'keep_firing_for' in recording rule".to_owned(),
            ));
        }
        if !valid_metric_name(&record) {
            return Err((false, format!("invalid recording rule name: {record}")));
        }
        RuleKind::Recording { record }
    } else {
        let name = rule.alert.clone().unwrap_or_default();
        let hold = parse_duration("for", &rule.for_)?;
        let keep_firing_for = parse_duration("keep_firing_for", &rule.keep_firing_for)?;
        let template_name = format!("__alert_{rule_name}");
        let mut label_templates = Vec::new();
        for (label, text) in &labels {
            let template = Template::parse(&template_name, text)
                .map_err(|err| (false, format!("label {label:?}: {err}")))?;
            let template = (!template.is_plain()).then_some(template);
            label_templates.push((label.clone(), text.clone(), template));
        }
        let mut annotations = Vec::new();
        for (key, text) in &rule.annotations {
            if !valid_label_name(key) {
                return Err((false, format!("invalid annotation name: {key}")));
            }
            let template = Template::parse(&template_name, text)
                .map_err(|err| (false, format!("annotation {key:?}: {err}")))?;
            annotations.push((key.clone(), text.clone(), template));
        }
        RuleKind::Alerting {
            name,
            hold,
            keep_firing_for,
            label_templates,
            annotations,
        }
    };
    Ok(RuleSpec {
        kind,
        expr,
        labels,
        annotation_texts: rule.annotations,
    })
}

/// Expands the `--rule-file` globs into files, de-duplicated and sorted; directories are
/// skipped with a warning (Thanos's default `rules/` is one).
pub fn expand_globs(patterns: &[String]) -> Result<Vec<std::path::PathBuf>> {
    let mut files = std::collections::BTreeSet::new();
    for pattern in patterns {
        let paths = glob::glob(pattern).map_err(|err| Error::RuleGlob {
            pattern: pattern.clone(),
            reason: err.to_string(),
        })?;
        for path in paths {
            let path = path.map_err(|err| Error::RuleGlob {
                pattern: pattern.clone(),
                reason: err.to_string(),
            })?;
            if path.is_dir() {
                tracing::debug!(path = %path.display(), "rule file pattern matched a directory; skipped");
                continue;
            }
            files.insert(path);
        }
    }
    Ok(files.into_iter().collect())
}

/// Loads every rule file; the first bad file fails the whole load.
pub fn load_all(patterns: &[String], defaults: Defaults) -> Result<Vec<GroupSpec>> {
    let mut groups = Vec::new();
    for file in expand_globs(patterns)? {
        groups.extend(load_file(&file, defaults)?);
    }
    Ok(groups)
}

#[cfg(test)]
mod tests;
