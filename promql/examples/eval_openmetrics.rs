//! Evaluates range queries over an OpenMetrics text file with the Strata engine and prints one
//! JSON line per query, in the shape of Prometheus's `/api/v1/query_range` `data` (or an
//! `error`), with the wall time of each evaluation. Used by `benches/prometheus_compare.py` to
//! compare answers and speed with a real Prometheus 2.42 on the same data.
//!
//! Usage: `eval_openmetrics DATA.om QUERIES` where each QUERIES line is
//! `<start_s> <end_s> <step_s> <query>`.

use std::io::{BufRead, BufReader, Write};
use std::time::Instant;

use strata_promql::format::go_float_f;
use strata_promql::{Engine, EngineOptions, Labels, MemoryStorage, Value};

fn parse_line(line: &str) -> Option<(Labels, i64, f64)> {
    // name{a="b",c="d"} value timestamp_seconds
    let (series, rest) = match line.find('}') {
        Some(i) => (line.get(..=i)?, line.get(i + 1..)?),
        None => line.split_at(line.find(' ')?),
    };
    let mut parts = rest.split_whitespace();
    let value: f64 = match parts.next()? {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let ts: f64 = parts.next()?.parse().ok()?;
    let (name, labels) = match series.find('{') {
        Some(i) => (series.get(..i)?, series.get(i + 1..series.len() - 1)?),
        None => (series, ""),
    };
    let mut pairs = vec![("__name__".to_string(), name.to_string())];
    for kv in labels.split("\",").filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once("=\"")?;
        pairs.push((
            k.trim_matches(',').to_string(),
            v.trim_end_matches('"').to_string(),
        ));
    }
    Some((
        Labels::from_pairs(pairs),
        (ts * 1000.0).round() as i64,
        value,
    ))
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(data), Some(queries)) = (args.get(1), args.get(2)) else {
        return Err("usage: eval_openmetrics DATA.om QUERIES".into());
    };
    let mut storage = MemoryStorage::new();
    for line in BufReader::new(std::fs::File::open(data)?).lines() {
        let line = line?;
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some((labels, t, v)) = parse_line(&line) {
            storage.append(&labels, t, v);
        }
    }
    let engine = Engine::new(EngineOptions {
        max_samples: usize::MAX,
        ..Default::default()
    });
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in BufReader::new(std::fs::File::open(queries)?).lines() {
        let line = line?;
        let mut parts = line.splitn(4, ' ');
        let (Some(start), Some(end), Some(step), Some(query)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let to_ms = |s: &str| -> i64 { (s.parse::<f64>().unwrap_or(0.0) * 1000.0).round() as i64 };
        let began = Instant::now();
        let result = engine.range_query(&storage, query, to_ms(start), to_ms(end), to_ms(step));
        let seconds = began.elapsed().as_secs_f64();
        let body = match result {
            Err(e) => format!("{{\"error\":{}}}", json_string(&e.to_string())),
            Ok(r) => {
                let Value::Matrix(series) = r.value else {
                    writeln!(out, "{{\"error\":\"not a matrix\",\"seconds\":{seconds}}}")?;
                    continue;
                };
                let items: Vec<String> = series
                    .iter()
                    .map(|s| {
                        let metric: Vec<String> = s
                            .labels
                            .iter()
                            .map(|l| format!("{}:{}", json_string(&l.name), json_string(&l.value)))
                            .collect();
                        let values: Vec<String> = s
                            .points
                            .iter()
                            .map(|p| format!("[{},\"{}\"]", p.t as f64 / 1000.0, go_float_f(p.v)))
                            .collect();
                        format!(
                            "{{\"metric\":{{{}}},\"values\":[{}]}}",
                            metric.join(","),
                            values.join(",")
                        )
                    })
                    .collect();
                format!("{{\"result\":[{}]}}", items.join(","))
            }
        };
        writeln!(
            out,
            "{{\"query\":{},\"seconds\":{seconds},\"data\":{body}}}",
            json_string(query)
        )?;
    }
    Ok(())
}
