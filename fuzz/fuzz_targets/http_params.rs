//! Fuzz target: the querier's HTTP API parameter parsing, as a request reaches it. The input is
//! a form body (and, split at the first NUL, a URL query string): Go's form decoding, times,
//! durations and steps (including the range checks of `query_range`), booleans, `match[]`
//! selectors and the `query` text itself through the depth-bounded PromQL parser. Nothing may
//! panic or overflow; what parses must satisfy the API's own invariants.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_querier::api::params::{
    MAX_TIME_MS, MIN_TIME_MS, Params, match_params, parse_bool, parse_duration_ms, parse_time,
    prometheus_duration_ms, range_params, time_param,
};

fuzz_target!(|data: &[u8]| {
    let (query_string, body) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (data.get(..nul), data.get(nul + 1..)),
        None => (None, Some(data)),
    };
    let query_string = query_string.and_then(|bytes| std::str::from_utf8(bytes).ok());
    let params = Params::parse(query_string, body);

    for name in ["time", "start", "end"] {
        let _ = parse_time(params.value(name));
        if let Ok(ms) = time_param(&params, name, MIN_TIME_MS) {
            // Numbers past int64 milliseconds are refused, never wrapped.
            assert!(ms > i64::MIN && ms < i64::MAX, "{name} = {ms}");
        }
    }
    for name in ["step", "timeout", "lookback_delta", "max_source_resolution"] {
        let _ = parse_duration_ms(params.value(name));
        let _ = prometheus_duration_ms(params.value(name));
    }
    for name in ["dedup", "partial_response"] {
        let _ = parse_bool(params.value(name));
    }
    if let Ok((start, end, step)) = range_params(&params, 1000) {
        assert!(step > 0 && start <= end, "{start} {end} {step}");
        assert!(end.saturating_sub(start) / step <= 11_000);
    }
    let _ = time_param(&params, "end", MAX_TIME_MS);
    if let Ok(selectors) = match_params(&params) {
        assert_eq!(selectors.len(), params.all("match[]").len());
        assert!(selectors.iter().all(|matchers| !matchers.is_empty()));
    }
    let _ = strata_promql::parser::parse(params.value("query"));
});
