//! What the deployment and monitoring tests share: the YAML documents of `k8s/` and their
//! PrometheusRule groups as Prometheus rule files, the Grafana dashboards of `grafana/`, the
//! metric names a PromQL expression reads, the names a `/metrics` page exposes, and the names
//! that other branches are expected to add (`tests/tests/data/pending-metric-names.txt`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use promql_parser::parser::{self, Expr};
use serde::Deserialize;
use serde_yaml::Value;

use crate::compose::workspace_root;

/// Every file under `dir` whose name ends with one of `extensions`, sorted.
pub fn files_under(dir: &Path, extensions: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(files_under(&path, extensions)?);
        } else if extensions
            .iter()
            .any(|extension| path.to_string_lossy().ends_with(extension))
        {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The non-empty documents of a multi-document YAML text.
pub fn documents(text: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(document)?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

/// The string at `path` (mapping keys) in `value`.
pub fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |value, key| value.get(*key))?
        .as_str()
}

/// One alerting or recording rule of the manifests.
#[derive(Debug, Clone)]
pub struct Rule {
    pub group: String,
    pub name: String,
    pub expr: String,
}

/// The groups of every PrometheusRule under `k8s/`, each as a Prometheus rule file (its
/// source file, its text) and with its rules.
pub fn rule_files() -> anyhow::Result<Vec<(PathBuf, String, Vec<Rule>)>> {
    let mut out = Vec::new();
    for file in files_under(&workspace_root().join("k8s"), &[".yaml"])? {
        let text = std::fs::read_to_string(&file)?;
        for object in documents(&text)? {
            if str_at(&object, &["kind"]) != Some("PrometheusRule") {
                continue;
            }
            let groups = object["spec"]["groups"].clone();
            let mut rules = Vec::new();
            for group in groups.as_sequence().into_iter().flatten() {
                for rule in group["rules"].as_sequence().into_iter().flatten() {
                    rules.push(Rule {
                        group: str_at(group, &["name"]).unwrap_or_default().to_owned(),
                        name: str_at(rule, &["alert"])
                            .or_else(|| str_at(rule, &["record"]))
                            .unwrap_or_default()
                            .to_owned(),
                        expr: str_at(rule, &["expr"]).unwrap_or_default().to_owned(),
                    });
                }
            }
            let mut file_content = serde_yaml::Mapping::new();
            file_content.insert(Value::from("groups"), groups);
            out.push((file.clone(), serde_yaml::to_string(&file_content)?, rules));
        }
    }
    if out.is_empty() {
        bail!("no PrometheusRule found under k8s/");
    }
    Ok(out)
}

/// One vector selector of an expression: its metric name and its matchers on `job`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Selector {
    pub metric: String,
    /// `job` matchers in PromQL syntax (`job=~".*strata-query.*"`).
    pub job_matchers: Vec<String>,
}

impl Selector {
    /// The selector with its `job` matchers only (`metric{job=~"..."}`).
    pub fn by_job(&self) -> String {
        format!("{}{{{}}}", self.metric, self.job_matchers.join(","))
    }
}

/// The vector selectors of a PromQL expression. A selector without a metric name is an error:
/// every query of the dashboards and alerts names what it reads.
pub fn selectors(expr: &str) -> anyhow::Result<Vec<Selector>> {
    let parsed = parser::parse(expr).map_err(|err| anyhow::anyhow!("parse {expr:?}: {err}"))?;
    let mut out = Vec::new();
    collect(&parsed, &mut out)?;
    out.sort();
    out.dedup();
    Ok(out)
}

fn collect(expr: &Expr, out: &mut Vec<Selector>) -> anyhow::Result<()> {
    match expr {
        Expr::Aggregate(aggregate) => {
            collect(&aggregate.expr, out)?;
            if let Some(param) = &aggregate.param {
                collect(param, out)?;
            }
        }
        Expr::Unary(unary) => collect(&unary.expr, out)?,
        Expr::Binary(binary) => {
            collect(&binary.lhs, out)?;
            collect(&binary.rhs, out)?;
        }
        Expr::Paren(paren) => collect(&paren.expr, out)?,
        Expr::Subquery(subquery) => collect(&subquery.expr, out)?,
        Expr::MatrixSelector(matrix) => {
            collect(&Expr::VectorSelector(matrix.vs.clone()), out)?;
        }
        Expr::VectorSelector(vector) => {
            let metric = vector
                .name
                .clone()
                .or_else(|| {
                    vector
                        .matchers
                        .matchers
                        .iter()
                        .find(|matcher| matcher.name == "__name__")
                        .map(|matcher| matcher.value.clone())
                })
                .with_context(|| format!("selector {vector} names no metric"))?;
            let job_matchers = vector
                .matchers
                .matchers
                .iter()
                .filter(|matcher| matcher.name == "job")
                .map(ToString::to_string)
                .collect();
            out.push(Selector {
                metric,
                job_matchers,
            });
        }
        Expr::Call(call) => {
            for arg in &call.args.args {
                collect(arg, out)?;
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
    Ok(())
}

/// The metric names a Prometheus text exposition declares (`# TYPE` lines, with the sample
/// names each type implies: `_bucket`/`_sum`/`_count` for histograms, ...), plus every sample
/// name it carries.
pub fn exposed_metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            names.insert(name.to_owned());
            let suffixes: &[&str] = match kind {
                "counter" if !name.ends_with("_total") => &["_total", "_created"],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                "summary" => &["_sum", "_count", "_created"],
                "info" => &["_info"],
                _ => &[],
            };
            for suffix in suffixes {
                names.insert(format!("{name}{suffix}"));
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// Metric names the dashboards and alerts use that no binary of this branch emits yet, with
/// the branch expected to add each (`tests/tests/data/pending-metric-names.txt`: one
/// `<name> <branch>` per line).
pub fn pending_metric_names() -> anyhow::Result<BTreeMap<String, String>> {
    let path = workspace_root().join("tests/tests/data/pending-metric-names.txt");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        if let (Some(name), Some(branch)) = (parts.next(), parts.next()) {
            out.insert(name.to_owned(), branch.to_owned());
        }
    }
    Ok(out)
}

/// A dashboard template variable.
#[derive(Debug, Clone)]
pub struct Variable {
    pub name: String,
    /// `label_values(<selector>, <label>)`: the selector and the label, if it is such a query.
    pub label_values: Option<(String, String)>,
    /// The value that stands for "All" (a regex).
    pub all: String,
}

/// A Grafana dashboard of `grafana/dashboards/`.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub file: PathBuf,
    pub json: serde_json::Value,
}

impl Dashboard {
    /// Every dashboard JSON file.
    pub fn all() -> anyhow::Result<Vec<Dashboard>> {
        let mut out = Vec::new();
        for file in files_under(&workspace_root().join("grafana/dashboards"), &[".json"])? {
            let text = std::fs::read_to_string(&file)?;
            let json = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            out.push(Dashboard { file, json });
        }
        Ok(out)
    }

    pub fn title(&self) -> &str {
        self.json["title"].as_str().unwrap_or_default()
    }

    /// The template variables.
    pub fn variables(&self) -> Vec<Variable> {
        let mut out = Vec::new();
        for variable in self.json["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let name = variable["name"].as_str().unwrap_or_default().to_owned();
            let query = variable["query"]["query"]
                .as_str()
                .or_else(|| variable["query"].as_str())
                .unwrap_or_default();
            let label_values = query
                .strip_prefix("label_values(")
                .and_then(|rest| rest.strip_suffix(')'))
                .and_then(|inner| inner.rsplit_once(','))
                .map(|(selector, label)| (selector.trim().to_owned(), label.trim().to_owned()));
            let all = variable["allValue"].as_str().unwrap_or(".*").to_owned();
            out.push(Variable {
                name,
                label_values,
                all,
            });
        }
        out
    }

    /// Every panel (rows' nested panels included): title and target expressions.
    pub fn panels(&self) -> Vec<(String, Vec<String>)> {
        fn walk(panels: &serde_json::Value, out: &mut Vec<(String, Vec<String>)>) {
            for panel in panels.as_array().into_iter().flatten() {
                let exprs: Vec<String> = panel["targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|target| target["expr"].as_str().map(str::to_owned))
                    .collect();
                if !exprs.is_empty() {
                    out.push((
                        panel["title"].as_str().unwrap_or_default().to_owned(),
                        exprs,
                    ));
                }
                walk(&panel["panels"], out);
            }
        }
        let mut out = Vec::new();
        walk(&self.json["panels"], &mut out);
        out
    }

    /// `expr` with Grafana's variables replaced as Grafana would: interval variables by
    /// durations, template variables by their "All" value.
    pub fn expand(&self, expr: &str) -> String {
        let mut out = expr
            .replace("$__rate_interval", "1m")
            .replace("${__rate_interval}", "1m")
            .replace("$__interval", "15s")
            .replace("$__range", "5m");
        for variable in self.variables() {
            let name = &variable.name;
            out = out
                .replace(&format!("${{{name}}}"), &variable.all)
                .replace(&format!("${name}"), &variable.all);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_name_metrics_and_job_matchers() {
        let found = selectors(
            r#"sum by (job) (rate(http_requests_total{job=~"a.*", code="500"}[5m])) / on () group_left max(up{job="b"}) or vector(0)"#,
        )
        .expect("parses");
        assert_eq!(
            found,
            vec![
                Selector {
                    metric: "http_requests_total".into(),
                    job_matchers: vec![r#"job=~"a.*""#.into()],
                },
                Selector {
                    metric: "up".into(),
                    job_matchers: vec![r#"job="b""#.into()],
                },
            ]
        );
        assert!(
            selectors(r#"{job="x"}"#).is_err(),
            "a selector without a name"
        );
        assert!(selectors("sum(").is_err());
    }

    #[test]
    fn exposition_names_include_implied_series() {
        let names = exposed_metric_names(
            "# TYPE a_seconds histogram\n# TYPE b_total counter\n# TYPE c counter\n# TYPE d gauge\nd 1\ne{x=\"1\"} 2\n",
        );
        for name in [
            "a_seconds_bucket",
            "a_seconds_count",
            "b_total",
            "c_total",
            "d",
            "e",
        ] {
            assert!(names.contains(name), "{name} missing from {names:?}");
        }
        assert!(!names.contains("b_total_total"));
    }
}
