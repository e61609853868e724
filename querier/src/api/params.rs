//! Request parameters of the HTTP API, parsed the way Prometheus 2.42 and Thanos parse them
//! (reference/prometheus.md 5.3, thanos.md 4.5-4.7): Go's `FormValue` precedence (a form body
//! wins over the query string), times as float seconds or RFC 3339, durations as float seconds
//! or Prometheus durations, Go's boolean spellings, and the exact error texts.

use strata_tsdb::labels::{Matcher, parse_selector, require_non_empty_matcher};

use crate::error::{Error, Result};

/// Prometheus's `minTime` / `maxTime` for absent start/end (ms).
pub const MIN_TIME_MS: i64 = -9_223_372_036_854_776;
pub const MAX_TIME_MS: i64 = 9_223_372_036_854_775;

/// The parameters of one request: form body pairs first, then query string pairs.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses the URL query string and an `application/x-www-form-urlencoded` body.
    pub fn parse(query: Option<&str>, form_body: Option<&[u8]>) -> Self {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(body) = form_body {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        if let Some(query) = query {
            pairs.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
        }
        Self(pairs)
    }

    /// The first value of `key` (Go's `FormValue`); `None` when absent.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// The value of `key`, empty when absent.
    pub fn value(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    /// Every value of a repeated key such as `match[]`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

/// `invalid parameter "<name>": <message>`, a `bad_data` error.
pub fn invalid_parameter(name: &str, message: impl std::fmt::Display) -> Error {
    Error::BadParameter {
        message: format!("invalid parameter {name:?}: {message}"),
    }
}

/// A bare `bad_data` error.
pub fn bad_data(message: impl Into<String>) -> Error {
    Error::BadParameter {
        message: message.into(),
    }
}

/// Parses a timestamp (float unix seconds, RFC 3339, or Prometheus's min/max time strings)
/// into milliseconds. The error is the text after `invalid parameter ...: `.
pub fn parse_time(text: &str) -> std::result::Result<i64, String> {
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
        && !text.trim().is_empty()
    {
        let whole = seconds.trunc();
        let fraction = ((seconds - whole) * 1000.0).round() / 1000.0;
        let ms = (whole * 1000.0) + (fraction * 1000.0).round();
        if ms.abs() < 9.2e18 {
            return Ok(ms as i64);
        }
    }
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    match text {
        "-292273086-05-16T16:47:06Z" => Ok(MIN_TIME_MS),
        "292277025-08-18T07:12:54.999999999Z" => Ok(MAX_TIME_MS),
        _ => Err(format!("cannot parse {text:?} to a valid timestamp")),
    }
}

/// Parses a duration (float seconds or a Prometheus duration such as `1h30m`) into ms.
pub fn parse_duration_ms(text: &str) -> std::result::Result<i64, String> {
    if let Ok(seconds) = text.parse::<f64>()
        && !text.trim().is_empty()
    {
        let nanos = seconds * 1e9;
        if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&nanos) {
            return Err(format!(
                "cannot parse {text:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok((nanos as i64) / 1_000_000);
    }
    prometheus_duration_ms(text).ok_or_else(|| format!("cannot parse {text:?} to a valid duration"))
}

/// Prometheus's `model.ParseDuration`: units y w d h m s ms in descending order, each at most
/// once, integers only; `0` alone is valid.
pub fn prometheus_duration_ms(text: &str) -> Option<i64> {
    if text == "0" {
        return Some(0);
    }
    if text.is_empty() {
        return None;
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = text;
    let mut total: i64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let (number, after) = rest.split_at(digits);
        let value: i64 = number.parse().ok()?;
        let letters = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, remaining) = after.split_at(letters);
        let position = UNITS
            .iter()
            .skip(next_unit)
            .position(|(name, _)| *name == unit)?;
        let index = next_unit + position;
        let (_, factor) = UNITS.get(index)?;
        total = total.checked_add(value.checked_mul(*factor)?)?;
        next_unit = index + 1;
        rest = remaining;
    }
    Some(total)
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A time parameter of /series, /labels and /label/x/values (2.42's `parseTimeParam`).
pub fn time_param(params: &Params, name: &str, default: i64) -> Result<i64> {
    match params.get(name) {
        None | Some("") => Ok(default),
        Some(text) => parse_time(text).map_err(|message| {
            invalid_parameter(name, format!("Invalid time value for '{name}': {message}"))
        }),
    }
}

/// A Thanos boolean parameter (`dedup`, `partial_response`) with its default.
pub fn bool_param(params: &Params, name: &str, default: bool) -> Result<bool> {
    match params.get(name) {
        None | Some("") => Ok(default),
        Some(text) => parse_bool(text).ok_or_else(|| {
            bad_data(format!(
                "'{name}' parameter: strconv.ParseBool: parsing {text:?}: invalid syntax"
            ))
        }),
    }
}

/// Prometheus's limit on points per series of a range query.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// `start`, `end` and `step` of a range query in ms, checked as 2.42 checks them; a missing
/// step is Thanos's default, max(range/250, `default_step_ms`).
pub fn range_params(params: &Params, default_step_ms: i64) -> Result<(i64, i64, i64)> {
    let start = parse_time(params.value("start")).map_err(|m| invalid_parameter("start", m))?;
    let end = parse_time(params.value("end")).map_err(|m| invalid_parameter("end", m))?;
    if end < start {
        return Err(invalid_parameter(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step = match params.get("step") {
        None => {
            let range_seconds = end.saturating_sub(start) / 1000;
            (range_seconds / 250 * 1000).max(default_step_ms)
        }
        Some(text) => parse_duration_ms(text).map_err(|m| invalid_parameter("step", m))?,
    };
    if step <= 0 {
        return Err(invalid_parameter(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if end.saturating_sub(start) / step > MAX_POINTS_PER_SERIES {
        return Err(bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    Ok((start, end, step))
}

/// Parses `match[]` selectors; each must have a non-empty matcher.
pub fn match_params(params: &Params) -> Result<Vec<Vec<Matcher>>> {
    params
        .all("match[]")
        .into_iter()
        .map(|selector| {
            let matchers = parse_selector(selector).map_err(|err| {
                match strata_promql::parser::parse(selector) {
                    // Prometheus's wording and position for what is not even an expression.
                    Err(promql) => invalid_parameter("match[]", promql),
                    Ok(_) => invalid_parameter("match[]", err),
                }
            })?;
            require_non_empty_matcher(selector, &matchers)
                .map_err(|err| invalid_parameter("match[]", err))?;
            Ok(matchers)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_like_prometheus() {
        assert_eq!(parse_time("1700000031.5"), Ok(1_700_000_031_500));
        assert_eq!(parse_time("1700000031.0004"), Ok(1_700_000_031_000));
        assert_eq!(parse_time("0"), Ok(0));
        assert_eq!(parse_time("2023-11-14T22:13:31.5Z"), Ok(1_700_000_011_500));
        assert_eq!(
            parse_time("2023-11-14T23:13:31+01:00"),
            Ok(1_700_000_011_000)
        );
        assert_eq!(parse_time("-292273086-05-16T16:47:06Z"), Ok(MIN_TIME_MS));
        assert_eq!(
            parse_time("abc"),
            Err("cannot parse \"abc\" to a valid timestamp".to_owned())
        );
    }

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(parse_duration_ms("30"), Ok(30_000));
        assert_eq!(parse_duration_ms("0.5"), Ok(500));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("5m"), Ok(300_000));
        assert_eq!(parse_duration_ms("100ms"), Ok(100));
        assert_eq!(parse_duration_ms("1d2h"), Ok(93_600_000));
        assert!(parse_duration_ms("1ns").is_err());
        assert!(parse_duration_ms("30m1h").is_err());
        assert!(parse_duration_ms("1.5h").is_err());
        assert_eq!(
            parse_duration_ms(""),
            Err("cannot parse \"\" to a valid duration".to_owned())
        );
        assert!(parse_duration_ms("1e30").is_err());
    }

    #[test]
    fn body_wins_over_query_string() {
        let params = Params::parse(
            Some("query=up&match%5B%5D=a&time=1"),
            Some(b"query=down&match[]=b"),
        );
        assert_eq!(params.get("query"), Some("down"));
        assert_eq!(params.all("match[]"), vec!["b", "a"]);
        assert_eq!(params.value("time"), "1");
        assert_eq!(params.value("absent"), "");
        assert_eq!(bool_param(&params, "dedup", true).ok(), Some(true));
        let params = Params::parse(Some("dedup=0&partial_response=x"), None);
        assert_eq!(bool_param(&params, "dedup", true).ok(), Some(false));
        assert!(bool_param(&params, "partial_response", true).is_err());
    }
}
