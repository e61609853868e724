//! Tests of the querier's wiring: flags, startup and shutdown.

use clap::Parser;

use super::*;

#[test]
fn thanos_flags_parse() {
    let config = Config::try_parse_from([
        "strata-querier",
        "--endpoint=a:10901",
        "--endpoint",
        "b:10901",
        "--store=a:10901",
        "--query.replica-label=replica",
        "--query.replica-label=rule_replica",
        "--query.timeout=30s",
        "--query.max-concurrent=5",
        "--query.lookback-delta=15m",
        "--query.auto-downsampling",
        "--no-query.partial-response",
        "--store.response-timeout=10s",
        "--store.sd-files=/etc/sd.yml",
    ])
    .expect("valid flags");
    assert_eq!(
        config.static_endpoints(),
        vec!["a:10901".to_owned(), "b:10901".to_owned()]
    );
    assert_eq!(
        config.query_replica_labels,
        vec!["replica".to_owned(), "rule_replica".to_owned()]
    );
    assert_eq!(config.query_timeout, Duration::from_secs(30));
    assert_eq!(config.query_max_concurrent, 5);
    assert_eq!(config.query_lookback_delta, Some(Duration::from_secs(900)));
    assert!(config.query_auto_downsampling);
    assert!(!config.partial_response_enabled());
    assert_eq!(config.store_response_timeout, Duration::from_secs(10));

    let defaults = Config::try_parse_from(["strata-querier"]).expect("defaults");
    assert!(defaults.partial_response_enabled());
    assert_eq!(defaults.query_lookback_delta, None);
    assert_eq!(defaults.query_max_concurrent, 20);
    let explicit = Config::try_parse_from(["strata-querier", "--query.partial-response=false"])
        .expect("explicit");
    assert!(!explicit.partial_response_enabled());
    assert!(defaults.query_dynamic_lookback_delta);
    let off = Config::try_parse_from(["strata-querier", "--query.dynamic-lookback-delta=false"])
        .expect("hidden flag");
    assert!(!off.query_dynamic_lookback_delta);
}

#[test]
fn lookback_delta_follows_the_resolution_as_thanos_does() {
    use api::dynamic_lookback_delta;
    let minutes = |m: u64| Duration::from_secs(m * 60);
    // Default 5m: raw and 5m data keep it; anything coarser than 5m may read hourly points.
    assert_eq!(dynamic_lookback_delta(minutes(5), 0), minutes(5));
    assert_eq!(dynamic_lookback_delta(minutes(5), 300_000), minutes(5));
    assert_eq!(dynamic_lookback_delta(minutes(5), 360_000), minutes(60));
    assert_eq!(dynamic_lookback_delta(minutes(5), 3_600_000), minutes(60));
    // A small configured delta grows to 5m for 5m data.
    assert_eq!(dynamic_lookback_delta(minutes(1), 120_000), minutes(5));
    assert_eq!(dynamic_lookback_delta(minutes(1), 60_000), minutes(1));
    // A configured delta above a resolution is kept.
    assert_eq!(dynamic_lookback_delta(minutes(90), 300_000), minutes(90));
    assert_eq!(dynamic_lookback_delta(minutes(90), 3_600_000), minutes(90));
    assert_eq!(dynamic_lookback_delta(minutes(10), 600_000), minutes(10));
    assert_eq!(dynamic_lookback_delta(minutes(10), 700_000), minutes(60));
}

#[tokio::test]
async fn starts_and_stops() {
    let config = Config::try_parse_from([
        "strata-querier",
        "--http-address=127.0.0.1:0",
        "--grpc-address=127.0.0.1:0",
        "--http-grace-period=1s",
        "--grpc-grace-period=1s",
    ])
    .expect("valid flags");
    let shutdown = Shutdown::new();
    let started = start(&config, &MetricsRegistry::new(), &shutdown)
        .await
        .expect("start");
    tokio::net::TcpStream::connect(started.http_address)
        .await
        .expect("http listens");
    tokio::net::TcpStream::connect(started.grpc_address)
        .await
        .expect("grpc listens");
    shutdown.cancel();
    assert!(shutdown.wait(Duration::from_secs(10)).await);
    assert!(shutdown.failure().is_none());
}

#[test]
fn status_flags_redact_inline_configs() {
    let args = [
        "strata-querier",
        "--tracing.config=type: OTLP\nconfig:\n  headers:\n    authorization: Bearer hunter2\n",
        "--query.timeout=30s",
    ];
    let mut config = Config::try_parse_from(args).expect("valid flags");
    config.raw_args = args.iter().map(Into::into).collect();
    let flags = config.flag_values();
    assert_eq!(
        flags.get("tracing.config").map(String::as_str),
        Some("<secret>")
    );
    assert_eq!(flags.get("query.timeout").map(String::as_str), Some("30s"));
    assert!(!format!("{flags:?}").contains("hunter2"));
}
