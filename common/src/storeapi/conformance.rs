//! The StoreAPI conformance suite (behind the `conformance` feature), written once and run
//! against every StoreAPI server: the store gateway, the sidecar, the querier-as-store (the
//! idea of Thanos's `pkg/store/acceptance_test.go`).
//!
//! [`DataSet::standard`] is a small, fixed data set designed to exercise matchers: two metrics,
//! labels present on only some series (for empty-value matchers), regex-friendly values, a
//! value with quotes, spaces and non-ASCII. It renders as OpenMetrics
//! ([`DataSet::openmetrics`]) for `promtool tsdb create-blocks-from openmetrics` or a
//! Prometheus backfill, so the same data can sit in a bucket, behind a sidecar, or both.
//!
//! [`run`] calls the endpoint and compares every answer with the answer computed from the data
//! set and the store's external labels by the rules of thanos.md section 1.4: a matrix of
//! matchers (`=`, `!=`, `=~`, `!~`, empty values, matchers on external labels), time ranges,
//! sorting and uniqueness of the stream, `skip_chunks`, `without_replica_labels`, response
//! batching, the `limit` field, LabelNames and LabelValues, and InvalidArgument for invalid
//! requests. Every failed check is collected; the error lists them all.
//!
//! Running it against a new StoreAPI server (the store gateway's e2e test is the model):
//!
//! ```text
//! let data = DataSet::standard();
//! // put data.openmetrics() behind the server: promtool tsdb create-blocks-from openmetrics
//! // into a bucket or a Prometheus data directory, with external labels `external`
//! let mut client = StoreApiClient::connect(&endpoint, &GrpcClientFlags::default()).await?;
//! conformance::run(&mut client, &external, &data).await?;
//! ```
//!
//! The data set spans 90 minutes from [`STANDARD_START_MS`] (inside one 2h block); external
//! labels must not reuse the data set's label names (`job`, `instance`, `code`, `env`, `path`,
//! `sensor`), since the label value checks assume the series' own values.

use std::fmt::Write as _;

use strata_proto::thanos;
use strata_tsdb::chunkenc::XorIterator;
use strata_tsdb::labels::{Labels, Matcher, parse_selector};

use super::StoreApiClient;
use super::external::finalize_labels;
use crate::labels::{labels_from_proto, matchers_to_proto};

/// One series of the data set: labels and `(timestamp ms, value)` samples in time order.
pub type DataSeries = (Labels, Vec<(i64, f64)>);

/// A fixed data set whose every answer can be computed.
#[derive(Debug, Clone)]
pub struct DataSet {
    pub series: Vec<DataSeries>,
    /// First sample timestamp (ms).
    pub start_ms: i64,
    /// Last sample timestamp (ms, inclusive).
    pub end_ms: i64,
}

/// Start of the standard data set: 2023-11-15 00:00:00 UTC, on a 2h block boundary.
pub const STANDARD_START_MS: i64 = 1_700_006_400_000;
const STANDARD_INTERVAL_MS: i64 = 15_000;
/// 90 minutes of samples: two XOR chunks per series, inside one 2h block.
const STANDARD_SAMPLES: i64 = 360;

impl DataSet {
    /// The standard data set (20 series, 360 samples each, 15s apart).
    pub fn standard() -> Self {
        let mut series = Vec::new();
        let mut seed = 0u64;
        let mut push = |pairs: Vec<(&str, String)>| {
            seed += 1;
            let labels = Labels::from_pairs(pairs);
            let samples = (0..STANDARD_SAMPLES)
                .map(|i| {
                    let t = STANDARD_START_MS + i * STANDARD_INTERVAL_MS;
                    // Deterministic values with fractions and a reset now and then.
                    let v = ((seed * 7919 + i as u64 * 31) % 1000) as f64 / 8.0;
                    (t, v)
                })
                .collect();
            series.push((labels, samples));
        };
        for job in ["api", "web", "db"] {
            for instance in 0..3 {
                for code in ["200", "500"] {
                    let mut pairs = vec![
                        ("__name__", "conf_requests".to_owned()),
                        ("job", job.to_owned()),
                        ("instance", format!("i{instance}")),
                    ];
                    if job != "db" {
                        pairs.push(("code", code.to_owned()));
                    } else if code == "500" {
                        continue;
                    }
                    if instance == 1 {
                        pairs.push(("env", "prod".to_owned()));
                    }
                    let path = ["/a", "/a/b", "/b"][instance];
                    pairs.push(("path", path.to_owned()));
                    push(pairs);
                }
            }
        }
        for sensor in ["s1", "s2", "s10", "s11"] {
            push(vec![
                ("__name__", "conf_temperature".to_owned()),
                ("job", "hw".to_owned()),
                ("sensor", sensor.to_owned()),
            ]);
        }
        push(vec![
            ("__name__", "conf_temperature".to_owned()),
            ("job", "hw".to_owned()),
            ("sensor", "quoted \"x\" and ü".to_owned()),
        ]);
        series.sort_by(|a, b| a.0.cmp(&b.0));
        DataSet {
            series,
            start_ms: STANDARD_START_MS,
            end_ms: STANDARD_START_MS + (STANDARD_SAMPLES - 1) * STANDARD_INTERVAL_MS,
        }
    }

    /// The data set as OpenMetrics text (gauges, timestamps in seconds, ending in `# EOF`).
    pub fn openmetrics(&self) -> String {
        let mut out = String::new();
        let mut last_metric: Option<&str> = None;
        for (labels, samples) in &self.series {
            let name = labels.metric_name().unwrap_or_default();
            if last_metric != Some(name) {
                let _ = writeln!(out, "# TYPE {name} gauge");
                last_metric = Some(name);
            }
            let mut rendered = String::new();
            for label in labels.iter().filter(|l| l.name != "__name__") {
                if !rendered.is_empty() {
                    rendered.push(',');
                }
                let value = label
                    .value
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(rendered, "{}=\"{}\"", label.name, value);
            }
            for (t, v) in samples {
                let _ = writeln!(
                    out,
                    "{name}{{{rendered}}} {v} {}.{:03}",
                    t.div_euclid(1000),
                    t.rem_euclid(1000)
                );
            }
        }
        out.push_str("# EOF\n");
        out
    }

    /// The series a store with `external` labels must return for `matchers` over
    /// `[min_time, max_time]`, labels finalized, sorted, with the samples in range.
    pub fn expected(
        &self,
        external: &Labels,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
        without_replica: &[String],
    ) -> Vec<DataSeries> {
        let mut out: Vec<DataSeries> = self
            .series
            .iter()
            .filter_map(|(labels, samples)| {
                let full = finalize_labels(labels, external, &[]);
                let matches = matchers
                    .iter()
                    .all(|m| m.matches(full.get(&m.name).unwrap_or("")));
                let samples: Vec<(i64, f64)> = samples
                    .iter()
                    .copied()
                    .filter(|(t, _)| *t >= min_time && *t <= max_time)
                    .collect();
                (matches && !samples.is_empty())
                    .then(|| (finalize_labels(labels, external, without_replica), samples))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        // Replicas made identical by stripping merge into one series.
        out.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                earlier.1.append(&mut later.1);
                earlier.1.sort_by_key(|(t, _)| *t);
                earlier.1.dedup_by_key(|(t, _)| *t);
                true
            } else {
                false
            }
        });
        out
    }
}

/// The outcome of one Series call, decoded.
struct Answer {
    series: Vec<DataSeries>,
    /// Label sets in stream order, to check sorting.
    order: Vec<Labels>,
    chunkless: usize,
}

async fn call_series(
    client: &mut StoreApiClient,
    request: thanos::SeriesRequest,
) -> Result<Answer, String> {
    let (min_time, max_time) = (request.min_time, request.max_time);
    let mut stream = client.series(request).await.map_err(|e| e.to_string())?;
    let mut answer = Answer {
        series: Vec::new(),
        order: Vec::new(),
        chunkless: 0,
    };
    while let Some(item) = stream.next_item().await.map_err(|e| e.to_string())? {
        let super::SeriesItem::Series(series) = item else {
            continue;
        };
        let labels = labels_from_proto(series.labels);
        answer.order.push(labels.clone());
        if series.chunks.is_empty() {
            answer.chunkless += 1;
        }
        let mut samples = Vec::new();
        for chunk in &series.chunks {
            let Some(raw) = &chunk.raw else {
                return Err(format!("series {labels}: chunk without raw data"));
            };
            let iterator =
                XorIterator::new(&raw.data).map_err(|e| format!("series {labels}: {e}"))?;
            for sample in iterator {
                let (t, v) = sample.map_err(|e| format!("series {labels}: {e}"))?;
                if t >= min_time && t <= max_time {
                    samples.push((t, v));
                }
            }
        }
        samples.sort_by_key(|(t, _)| *t);
        samples.dedup_by_key(|(t, _)| *t);
        if !samples.is_empty() {
            answer.series.push((labels, samples));
        }
    }
    Ok(answer)
}

fn request(matchers: &[Matcher], min_time: i64, max_time: i64) -> thanos::SeriesRequest {
    thanos::SeriesRequest {
        min_time,
        max_time,
        matchers: matchers_to_proto(matchers),
        ..Default::default()
    }
}

fn same_samples(a: &[(i64, f64)], b: &[(i64, f64)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.0 == y.0 && (x.1 == y.1 || (x.1.is_nan() && y.1.is_nan())))
}

fn describe(series: &[DataSeries]) -> String {
    let shown: Vec<String> = series
        .iter()
        .take(5)
        .map(|(l, s)| format!("{l} ({} samples)", s.len()))
        .collect();
    format!("{} series: {}", series.len(), shown.join(", "))
}

/// Checks the endpoint's answers against the data set. `external` are the external labels the
/// store adds to every series of `data`.
pub async fn run(
    client: &mut StoreApiClient,
    external: &Labels,
    data: &DataSet,
) -> anyhow::Result<()> {
    let mut failures: Vec<String> = Vec::new();
    let (start, end) = (data.start_ms, data.end_ms);
    let mut selectors: Vec<String> = [
        r#"{__name__="conf_requests"}"#,
        r#"conf_requests{job="api"}"#,
        r#"conf_requests{job!="api"}"#,
        r#"{__name__=~"conf_.*", job=~"api|web"}"#,
        r#"{__name__=~"conf_.+", job!~"api|db"}"#,
        r#"conf_requests{env=""}"#,
        r#"conf_requests{env!=""}"#,
        r#"conf_requests{code=~"5.."}"#,
        r#"conf_requests{code=~"|200"}"#,
        r#"conf_requests{code!~"2.*", path=~"/a.*"}"#,
        r#"conf_temperature{sensor=~"s1.*"}"#,
        r#"conf_temperature{sensor=~".*ü"}"#,
        r#"conf_temperature{sensor="quoted \"x\" and ü"}"#,
        r#"{__name__=~".+", path="/a/b"}"#,
        r#"{job="nope"}"#,
        r#"{__name__=~"conf_.+", nolabel=""}"#,
        r#"{__name__=~"conf_.+", nolabel="x"}"#,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for label in external {
        let quoted = strata_tsdb::gofmt::quote(&label.value);
        selectors.push(format!(r#"conf_temperature{{{}={quoted}}}"#, label.name));
        selectors.push(format!(r#"conf_temperature{{{}=~".+"}}"#, label.name));
        selectors.push(format!(r#"conf_temperature{{{}!={quoted}}}"#, label.name));
        selectors.push(format!(
            r#"conf_temperature{{{}="not-this-store"}}"#,
            label.name
        ));
        selectors.push(format!(
            r#"conf_requests{{{}=~"not-.*", job="api"}}"#,
            label.name
        ));
    }
    let ranges = [
        (start, end),
        (i64::MIN, i64::MAX),
        (start + 600_000, start + 1_200_000),
        (start + 15_000, start + 15_000),
        (start - 3_600_000, start - 1),
        (end + 1, end + 3_600_000),
    ];
    for selector in &selectors {
        let matchers = match parse_selector(selector) {
            Ok(matchers) => matchers,
            Err(err) => {
                failures.push(format!("suite bug: selector {selector}: {err}"));
                continue;
            }
        };
        for &(min_time, max_time) in &ranges {
            let expected = data.expected(external, &matchers, min_time, max_time, &[]);
            match call_series(client, request(&matchers, min_time, max_time)).await {
                Err(err) => {
                    failures.push(format!("Series {selector} [{min_time}, {max_time}]: {err}"))
                }
                Ok(answer) => {
                    if answer.order.windows(2).any(|w| w[0] >= w[1]) {
                        failures.push(format!(
                            "Series {selector} [{min_time}, {max_time}]: stream not sorted or has repeated series"
                        ));
                    }
                    let matches = answer.series.len() == expected.len()
                        && answer
                            .series
                            .iter()
                            .zip(&expected)
                            .all(|(a, b)| a.0 == b.0 && same_samples(&a.1, &b.1));
                    if !matches {
                        failures.push(format!(
                            "Series {selector} [{min_time}, {max_time}]: got {}, want {}",
                            describe(&answer.series),
                            describe(&expected)
                        ));
                    }
                }
            }
        }
    }

    let all = match parse_selector(r#"{__name__=~"conf_.+"}"#) {
        Ok(all) => all,
        Err(err) => anyhow::bail!("suite bug: {err}"),
    };
    let expected_all = data.expected(external, &all, start, end, &[]);

    // Response batching gives the same series.
    let mut batched = request(&all, start, end);
    batched.response_batch_size = 7;
    match call_series(client, batched).await {
        Ok(answer)
            if answer.series.len() == expected_all.len()
                && answer
                    .series
                    .iter()
                    .zip(&expected_all)
                    .all(|(a, b)| a.0 == b.0 && same_samples(&a.1, &b.1)) => {}
        Ok(answer) => failures.push(format!("batched Series: got {}", describe(&answer.series))),
        Err(err) => failures.push(format!("batched Series: {err}")),
    }

    // skip_chunks: the same label sets, no chunks.
    let mut labels_only = request(&all, start, end);
    labels_only.skip_chunks = true;
    match call_series(client, labels_only).await {
        Ok(answer) => {
            let want: Vec<&Labels> = expected_all.iter().map(|s| &s.0).collect();
            let got: Vec<&Labels> = answer.order.iter().collect();
            if got != want || answer.chunkless != answer.order.len() {
                failures.push(format!(
                    "skip_chunks Series: got {} label sets ({} without chunks), want {}",
                    got.len(),
                    answer.chunkless,
                    want.len()
                ));
            }
        }
        Err(err) => failures.push(format!("skip_chunks Series: {err}")),
    }

    // limit: the first series of the sorted answer.
    let mut limited = request(&all, start, end);
    limited.limit = 3;
    match call_series(client, limited).await {
        Ok(answer) => {
            let want: Vec<&Labels> = expected_all.iter().take(3).map(|s| &s.0).collect();
            let got: Vec<&Labels> = answer.series.iter().map(|s| &s.0).collect();
            if got != want {
                failures.push(format!("limit=3 Series: got {}", describe(&answer.series)));
            }
        }
        Err(err) => failures.push(format!("limit=3 Series: {err}")),
    }

    // without_replica_labels: strip the last external label name and the `instance` label.
    let mut stripped_names = vec!["instance".to_owned()];
    if let Some(label) = external.iter().last() {
        stripped_names.push(label.name.clone());
    }
    let mut stripped = request(&all, start, end);
    stripped.without_replica_labels = stripped_names.clone();
    let expected_stripped = data.expected(external, &all, start, end, &stripped_names);
    match call_series(client, stripped).await {
        Ok(answer) => {
            let want: Vec<&Labels> = expected_stripped.iter().map(|s| &s.0).collect();
            let mut got: Vec<&Labels> = answer.order.iter().collect();
            if answer.order.windows(2).any(|w| w[0] > w[1]) {
                failures
                    .push("without_replica_labels Series: not sorted after stripping".to_owned());
            }
            // Replicas may arrive as separate, adjacent series; the client merges them.
            got.dedup();
            if got != want {
                failures.push(format!(
                    "without_replica_labels Series: got {} label sets, want {}",
                    got.len(),
                    want.len()
                ));
            }
        }
        Err(err) => failures.push(format!("without_replica_labels Series: {err}")),
    }

    // Invalid requests.
    let mut invalid = vec![thanos::LabelMatcher {
        r#type: thanos::label_matcher::Type::Re as i32,
        name: "job".into(),
        value: "(".into(),
    }];
    if let Some(label) = external.iter().next() {
        invalid.push(thanos::LabelMatcher {
            r#type: thanos::label_matcher::Type::Eq as i32,
            name: label.name.clone(),
            value: label.value.clone(),
        });
    }
    for (i, matcher) in invalid.into_iter().enumerate() {
        let request = thanos::SeriesRequest {
            min_time: start,
            max_time: end,
            matchers: vec![matcher],
            ..Default::default()
        };
        let outcome = match client.series(request).await {
            Ok(stream) => stream.collect().await.map(|_| ()),
            Err(err) => Err(err),
        };
        match outcome {
            Err(crate::error::Error::Call { source, .. })
                if source.code() == tonic::Code::InvalidArgument => {}
            other => failures.push(format!(
                "invalid request {i}: want InvalidArgument, got {other:?}"
            )),
        }
    }

    // LabelNames and LabelValues.
    let mut want_names: Vec<String> = data
        .series
        .iter()
        .flat_map(|(labels, _)| labels.iter().map(|l| l.name.clone()))
        .chain(external.iter().map(|l| l.name.clone()))
        .collect();
    want_names.sort();
    want_names.dedup();
    match client
        .label_names(thanos::LabelNamesRequest {
            start,
            end,
            ..Default::default()
        })
        .await
    {
        Ok(response) if response.names == want_names => {}
        Ok(response) => failures.push(format!(
            "LabelNames: got {:?}, want {want_names:?}",
            response.names
        )),
        Err(err) => failures.push(format!("LabelNames: {err}")),
    }
    let hw = parse_selector(r#"{job="hw"}"#).unwrap_or_default();
    let mut want_hw: Vec<String> = ["__name__", "job", "sensor"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(external.iter().map(|l| l.name.clone()))
        .collect();
    want_hw.sort();
    want_hw.dedup();
    match client
        .label_names(thanos::LabelNamesRequest {
            start,
            end,
            matchers: matchers_to_proto(&hw),
            ..Default::default()
        })
        .await
    {
        Ok(response) if response.names == want_hw => {}
        Ok(response) => failures.push(format!(
            "LabelNames {{job=\"hw\"}}: got {:?}, want {want_hw:?}",
            response.names
        )),
        Err(err) => failures.push(format!("LabelNames {{job=\"hw\"}}: {err}")),
    }
    let temperature = parse_selector("conf_temperature").unwrap_or_default();
    let mut value_cases: Vec<(String, Vec<Matcher>, Vec<String>)> = vec![
        (
            "job".into(),
            Vec::new(),
            vec!["api".into(), "db".into(), "hw".into(), "web".into()],
        ),
        ("job".into(), temperature.clone(), vec!["hw".into()]),
        ("code".into(), Vec::new(), vec!["200".into(), "500".into()]),
        ("nolabel".into(), Vec::new(), Vec::new()),
    ];
    for label in external {
        value_cases.push((label.name.clone(), Vec::new(), vec![label.value.clone()]));
        value_cases.push((
            label.name.clone(),
            temperature.clone(),
            vec![label.value.clone()],
        ));
    }
    for (name, matchers, want) in value_cases {
        let response = client
            .label_values(thanos::LabelValuesRequest {
                label: name.clone(),
                start,
                end,
                matchers: matchers_to_proto(&matchers),
                ..Default::default()
            })
            .await;
        match response {
            Ok(response) if response.values == want => {}
            Ok(response) => failures.push(format!(
                "LabelValues {name} {matchers:?}: got {:?}, want {want:?}",
                response.values
            )),
            Err(err) => failures.push(format!("LabelValues {name}: {err}")),
        }
    }

    // Info: the external label set is advertised and the time range covers the data.
    match client.info().await {
        Ok(info) => {
            let advertised = info
                .label_sets
                .iter()
                .any(|set| labels_from_proto(set.labels.clone()) == *external);
            if !advertised {
                failures.push(format!(
                    "Info: external labels {external} not among the label sets"
                ));
            }
            match info.store {
                Some(store) if store.min_time <= start && store.max_time >= end => {}
                other => failures.push(format!(
                    "Info: store range {other:?} does not cover [{start}, {end}]"
                )),
            }
        }
        Err(err) => failures.push(format!("Info: {err}")),
    }

    if failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} StoreAPI conformance failure(s):\n{}",
            failures.len(),
            failures.join("\n")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_answers_follow_the_external_label_rules() {
        let data = DataSet::standard();
        assert_eq!(data.series.len(), 20);
        let external = Labels::from_pairs([("cluster", "c1"), ("job", "ext")]);
        let matchers = parse_selector("conf_temperature").expect("selector");
        let got = data.expected(&external, &matchers, i64::MIN, i64::MAX, &[]);
        // The external `job` wins over the series' own.
        assert!(got.iter().all(|(l, _)| l.get("job") == Some("ext")));
        assert_eq!(got.len(), 5);
        let stripped = data.expected(
            &external,
            &matchers,
            i64::MIN,
            i64::MAX,
            &["sensor".to_owned()],
        );
        assert_eq!(stripped.len(), 1, "all sensors merge into one series");
        let window = data.expected(
            &Labels::default(),
            &matchers,
            data.start_ms,
            data.start_ms + 15_000,
            &[],
        );
        assert!(window.iter().all(|(_, s)| s.len() == 2));
        let om = data.openmetrics();
        assert!(om.ends_with("# EOF\n"));
        assert!(om.contains(r#"conf_temperature{job="hw",sensor="quoted \"x\" and ü"} "#));
        assert!(om.contains(" 1700006400.000\n"));
    }
}
