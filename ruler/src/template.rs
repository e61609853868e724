//! Go `text/template` for alert labels and annotations: the subset Prometheus rule templates
//! use, parsed once when the rule file loads (so a bad template refuses the file) and expanded
//! at every evaluation (Prometheus `template/template.go`, Go `text/template`).
//!
//! Supported: text, `{{ pipeline }}` with `{{-`/`-}}` trimming and `{{/* comments */}}`;
//! variables (`$labels`, `$value`, `$externalLabels`, `$externalURL`, `$x := ...`,
//! `$x = ...`), fields (`.Labels.job`, `$labels.job`), literals (strings, raw strings,
//! numbers, booleans, `nil`), parenthesised pipelines, `|` chains; `if`/`else if`/`else`,
//! `range` (with `$i, $e :=`) and `with`, each with `else`; Go's builtins (`and`, `or`, `not`,
//! `len`, `index`, `print`, `printf`, `println`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `html`,
//! `js`, `urlquery`) and Prometheus's functions (`humanize`, `humanize1024`,
//! `humanizeDuration`, `humanizePercentage`, `humanizeTimestamp`, `query`, `first`, `label`,
//! `value`, `strvalue`, `sortByLabel`, `toUpper`, `toLower`, `title`, `match`, `reReplaceAll`,
//! `safeHtml`, `args`, `graphLink`, `tableLink`, `stripPort`, `stripDomain`, `parseDuration`,
//! `toTime`, `toDuration`, `now`, `pathPrefix`, `externalURL`, `urlQueryEscape`).
//! Not supported (refused at load): `define`, `template`, `block`, `break`, `continue`.
//!
//! As in Prometheus, a missing map key is the empty string (`missingkey=zero`) and an
//! expansion error yields `<error expanding template: ...>` in place of the text. Parsing is
//! bounded in nesting depth and evaluation in output size and range iterations, so no template
//! can exhaust the stack or memory.

mod funcs;
mod parse;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Write as _;

pub use funcs::{go_format_float, query_escape};

/// Deepest nesting of actions and parentheses accepted.
const MAX_DEPTH: usize = 100;
/// Largest expansion output (bytes) before the expansion fails.
const MAX_OUTPUT: usize = 1 << 20;
/// Most loop iterations of one expansion.
const MAX_ITERATIONS: usize = 100_000;

/// A parse or expansion failure, worded like Go's (`template: NAME:LINE: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {name}:{line}: {message}")]
pub struct TemplateError {
    pub name: String,
    pub line: usize,
    pub message: String,
}

/// One sample of a template `query` result.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A template value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A label set (`map[string]string`).
    Labels(BTreeMap<String, String>),
    /// A struct or map of values (the template's dot, `args`).
    Map(BTreeMap<String, Value>),
    /// Query results.
    Samples(Vec<QuerySample>),
    Sample(QuerySample),
    /// A point in time, Unix seconds (`toTime`).
    Time(f64),
    /// A duration in seconds (`toDuration`).
    Duration(f64),
}

impl Value {
    /// Go's truth: false, 0, nil, empty strings, maps and lists are false.
    fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Labels(m) => !m.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Samples(s) => !s.is_empty(),
            Value::Sample(_) | Value::Time(_) => true,
            Value::Duration(d) => *d != 0.0,
        }
    }

    /// Printed as Go's `fmt.Sprint` prints it.
    fn print(&self, out: &mut String) {
        match self {
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => out.push_str(&strata_tsdb::gofmt::format_float_g(*f)),
            Value::Str(s) => out.push_str(s),
            Value::Labels(map) => {
                out.push_str("map[");
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let _ = write!(out, "{k}:{v}");
                }
                out.push(']');
            }
            Value::Map(map) => {
                out.push_str("map[");
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.print(out);
                }
                out.push(']');
            }
            Value::Samples(samples) => {
                out.push('[');
                for (i, sample) in samples.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    Value::Sample(sample.clone()).print(out);
                }
                out.push(']');
            }
            Value::Sample(sample) => {
                out.push('{');
                Value::Labels(sample.labels.clone()).print(out);
                out.push(' ');
                out.push_str(&strata_tsdb::gofmt::format_float_g(sample.value));
                out.push('}');
            }
            Value::Time(seconds) => out.push_str(&funcs::go_time_string(*seconds)),
            Value::Duration(seconds) => out.push_str(&funcs::go_duration_string(*seconds)),
        }
    }

    fn to_text(&self) -> String {
        let mut out = String::new();
        self.print(&mut out);
        out
    }

    fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Labels(_) => "map[string]string",
            Value::Map(_) => "map[string]interface {}",
            Value::Samples(_) => "template.queryResult",
            Value::Sample(_) => "*template.sample",
            Value::Time(_) => "time.Time",
            Value::Duration(_) => "time.Duration",
        }
    }
}

/// What a template's `query` function runs: the rule's own query path.
pub trait QueryFunc {
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String>;
}

/// No `query` function available: every call fails.
#[derive(Debug)]
pub struct NoQuery;

impl QueryFunc for NoQuery {
    fn query(&self, _expr: &str) -> Result<Vec<QuerySample>, String> {
        Err("query is not available here".to_owned())
    }
}

/// The values a Prometheus alert template sees.
#[derive(Debug, Clone, Default)]
pub struct AlertData {
    pub labels: BTreeMap<String, String>,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    pub value: f64,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    nodes: Vec<parse::Node>,
}

impl Template {
    /// Parses Prometheus-style: the alert variables are declared in front of `text`.
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        let nodes = parse::parse(name, text)?;
        Ok(Template {
            name: name.to_owned(),
            nodes,
        })
    }

    /// Whether the text has no actions (expanding it returns it unchanged).
    pub fn is_plain(&self) -> bool {
        self.nodes
            .iter()
            .all(|node| matches!(node, parse::Node::Text(_)))
    }

    /// Expands with Prometheus's alert data; an error becomes
    /// `<error expanding template: ...>` as Prometheus writes it.
    pub fn expand_alert(&self, data: &AlertData, query: &dyn QueryFunc) -> String {
        match self.try_expand_alert(data, query) {
            Ok(text) => text,
            Err(err) => format!("<error expanding template: {err}>"),
        }
    }

    /// Expands with Prometheus's alert data.
    pub fn try_expand_alert(
        &self,
        data: &AlertData,
        query: &dyn QueryFunc,
    ) -> Result<String, TemplateError> {
        let mut dot = BTreeMap::new();
        dot.insert("Labels".to_owned(), Value::Labels(data.labels.clone()));
        dot.insert(
            "ExternalLabels".to_owned(),
            Value::Labels(data.external_labels.clone()),
        );
        dot.insert(
            "ExternalURL".to_owned(),
            Value::Str(data.external_url.clone()),
        );
        dot.insert("Value".to_owned(), Value::Float(data.value));
        let dot = Value::Map(dot);
        let mut state = funcs::State {
            name: &self.name,
            vars: vec![
                ("$".to_owned(), dot.clone()),
                ("$labels".to_owned(), Value::Labels(data.labels.clone())),
                (
                    "$externalLabels".to_owned(),
                    Value::Labels(data.external_labels.clone()),
                ),
                (
                    "$externalURL".to_owned(),
                    Value::Str(data.external_url.clone()),
                ),
                ("$value".to_owned(), Value::Float(data.value)),
            ],
            out: String::new(),
            iterations: 0,
            query,
            external_url: &data.external_url,
        };
        state.walk(&self.nodes, &dot)?;
        Ok(state.out)
    }
}
