//! Instant queries against the querier's HTTP API exactly as Thanos's ruler sends them
//! (reference/thanos-ruler-deploy.md section 1.2): endpoints shuffled, `POST
//! <endpoint><prefix>/api/v1/query` with `query`, `time` (RFC3339Nano), `dedup=true`,
//! `partial_response` per the group's strategy and `explain=false`, `analyze=false`,
//! `engine=`; a failed endpoint is logged and the next one tried; when all fail the error is
//! `no query API server reachable`. Vector and scalar results are accepted.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use serde::Deserialize;

use crate::endpoints::EndpointGroup;
use crate::error::{Error, Result};
use crate::metrics::HttpClientMetrics;
use crate::rulefmt::Strategy;

/// One sample of a query result.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultSample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A successful answer.
#[derive(Debug, Clone, Default)]
pub struct QueryOutput {
    pub samples: Vec<ResultSample>,
    pub warnings: Vec<String>,
}

/// The query API servers.
#[derive(Debug)]
pub struct QueryClient {
    groups: Vec<EndpointGroup>,
    post: bool,
    metrics: HttpClientMetrics,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct VectorSample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (serde_json::Value, String),
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// Decodes a `/api/v1/query` answer body.
fn decode(endpoint: &str, status: u16, body: &[u8]) -> Result<QueryOutput> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|err| Error::Query {
        endpoint: endpoint.to_owned(),
        reason: format!(
            "decode response ({status}): {err}: {}",
            String::from_utf8_lossy(body.get(..body.len().min(256)).unwrap_or_default())
        ),
    })?;
    if envelope.status != "success" || !(200..300).contains(&status) {
        return Err(Error::QueryStatus {
            endpoint: endpoint.to_owned(),
            status,
            error_type: envelope.error_type.unwrap_or_default(),
            message: envelope.error.unwrap_or_default(),
        });
    }
    let data = envelope.data.ok_or_else(|| Error::Query {
        endpoint: endpoint.to_owned(),
        reason: "response has no data".to_owned(),
    })?;
    let bad = |reason: String| Error::Query {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let samples = match data.result_type.as_str() {
        "vector" => {
            let vector: Vec<VectorSample> = serde_json::from_value(data.result)
                .map_err(|err| bad(format!("decode vector: {err}")))?;
            vector
                .into_iter()
                .map(|sample| {
                    let value = parse_value(&sample.value.1)
                        .ok_or_else(|| bad(format!("bad sample value {:?}", sample.value.1)))?;
                    Ok(ResultSample {
                        labels: sample.metric,
                        value,
                    })
                })
                .collect::<Result<Vec<_>>>()?
        }
        "scalar" => {
            let (_, value): (serde_json::Value, String) = serde_json::from_value(data.result)
                .map_err(|err| bad(format!("decode scalar: {err}")))?;
            let value =
                parse_value(&value).ok_or_else(|| bad(format!("bad scalar value {value:?}")))?;
            vec![ResultSample {
                labels: BTreeMap::new(),
                value,
            }]
        }
        other => {
            return Err(bad(format!(
                "rule result is not a vector or scalar: {other:?}"
            )));
        }
    };
    Ok(QueryOutput {
        samples,
        warnings: envelope.warnings,
    })
}

/// Formats Unix milliseconds as RFC3339 with nanoseconds trimmed, as Go's RFC3339Nano.
pub fn rfc3339_nano(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| ms.to_string())
}

impl QueryClient {
    pub fn new(groups: Vec<EndpointGroup>, post: bool, metrics: HttpClientMetrics) -> Self {
        Self {
            groups,
            post,
            metrics,
        }
    }

    /// Runs `expr` at `time_ms` with the group's partial response strategy.
    pub async fn instant(
        &self,
        expr: &str,
        time_ms: i64,
        strategy: Strategy,
    ) -> Result<QueryOutput> {
        let time = rfc3339_nano(time_ms);
        let partial_response = match strategy {
            Strategy::Abort => "false",
            Strategy::Warn => "true",
        };
        let params = [
            ("query", expr),
            ("time", time.as_str()),
            ("dedup", "true"),
            ("partial_response", partial_response),
            ("explain", "false"),
            ("analyze", "false"),
            ("engine", ""),
        ];
        let mut order: Vec<usize> = (0..self.groups.len()).collect();
        order.shuffle(&mut rand::rng());
        for index in order {
            let Some(group) = self.groups.get(index) else {
                continue;
            };
            let mut urls = group.urls("/api/v1/query").await;
            urls.shuffle(&mut rand::rng());
            for (host, url) in urls {
                let request = if self.post {
                    group.client.post(&url).form(&params)
                } else {
                    group.client.get(&url).query(&params)
                };
                let started = std::time::Instant::now();
                let response = group.authorize(request).send().await;
                let method = if self.post { "POST" } else { "GET" };
                match response {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        self.metrics
                            .observe("query", status, method, started.elapsed());
                        let body = match response.bytes().await {
                            Ok(body) => body,
                            Err(err) => {
                                tracing::warn!(endpoint = %host, error = %err, "read query response failed; trying next endpoint");
                                continue;
                            }
                        };
                        match decode(&host, status, &body) {
                            Ok(output) => return Ok(output),
                            // A PromQL error is the rule's, not the endpoint's: report it.
                            Err(
                                err @ Error::QueryStatus {
                                    status: 400 | 422, ..
                                },
                            ) => {
                                return Err(err);
                            }
                            Err(err) => {
                                tracing::warn!(endpoint = %host, error = %err, "query failed; trying next endpoint");
                            }
                        }
                    }
                    Err(err) => {
                        self.metrics.observe("query", 0, method, started.elapsed());
                        tracing::warn!(endpoint = %host, error = %err, "query endpoint unreachable; trying next endpoint");
                    }
                }
            }
        }
        Err(Error::NoQueryApiReachable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_vector_scalar_and_errors() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"a"},"value":[1700000000.5,"2.5"]},{"metric":{},"value":[1,"NaN"]}]},"warnings":["w"]}"#;
        let output = decode("q", 200, body).expect("vector");
        assert_eq!(output.samples.len(), 2);
        assert_eq!(
            output.samples[0].labels.get("job").map(String::as_str),
            Some("a")
        );
        assert_eq!(output.samples[0].value, 2.5);
        assert!(output.samples[1].value.is_nan());
        assert_eq!(output.warnings, vec!["w".to_owned()]);

        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#;
        let output = decode("q", 200, scalar).expect("scalar");
        assert_eq!(output.samples[0].value, f64::INFINITY);
        assert!(output.samples[0].labels.is_empty());

        let failed =
            br#"{"status":"error","errorType":"execution","error":"no StoreAPIs matched"}"#;
        let err = decode("q", 422, failed).expect_err("422");
        assert!(
            matches!(err, Error::QueryStatus { status: 422, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("no StoreAPIs matched"), "{err}");

        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(decode("q", 200, matrix).is_err());
        assert!(decode("q", 200, b"<html>").is_err());
    }

    #[test]
    fn time_is_rfc3339_nano() {
        assert_eq!(rfc3339_nano(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_nano(1_700_000_000_250), "2023-11-14T22:13:20.250Z");
    }
}
