//! The deadline of an incoming gRPC call, from its `grpc-timeout` header (gRPC over HTTP/2
//! spec: `TimeoutValue TimeoutUnit`, at most 8 ASCII digits, unit one of `H M S m u n`).
//!
//! tonic enforces that header only until a handler returns its response; a server-streaming
//! handler (Series) returns at once and streams afterwards, so handlers that fan out or read
//! a peer take the deadline from here and stop their own work when it passes.

use std::time::{Duration, Instant};

const GRPC_TIMEOUT_HEADER: &str = "grpc-timeout";

/// The `grpc-timeout` of `metadata` as a duration; `None` when absent or malformed (a
/// malformed header is ignored, as grpc-go does, rather than failing the call).
pub fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let value = metadata.get(GRPC_TIMEOUT_HEADER)?.to_str().ok()?;
    parse_grpc_timeout(value)
}

/// Parses one `grpc-timeout` value such as `"500m"` or `"30S"`.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 || !value.is_ascii() {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The instant by which the call must be answered, if the client set a deadline.
pub fn request_deadline<T>(request: &tonic::Request<T>) -> Option<Instant> {
    let timeout = grpc_timeout(request.metadata())?;
    Instant::now().checked_add(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_rejects_garbage() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("30S"), Some(Duration::from_secs(30)));
        assert_eq!(parse_grpc_timeout("500m"), Some(Duration::from_millis(500)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "S", "10", "10x", "-1S", "123456789S", "1.5S", "１S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn deadline_comes_from_the_request_metadata() {
        let mut request = tonic::Request::new(());
        assert!(request_deadline(&request).is_none());
        request.set_timeout(Duration::from_millis(250));
        let deadline = request_deadline(&request).expect("deadline");
        let remaining = deadline.saturating_duration_since(Instant::now());
        assert!(remaining <= Duration::from_millis(250) && remaining > Duration::from_millis(100));
    }
}
