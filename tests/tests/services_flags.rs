//! End-to-end: the service binaries accept Thanos's subcommand words and flag names, so that
//! manifests written for Thanos run unchanged; bad flags fail fast with a non-zero exit.

use strata_tests::bins::{Service, run_to_completion};

/// Flags every service with a gRPC server shares with Thanos.
const SERVER_FLAGS: &[&str] = &[
    "--http-address",
    "--http-grace-period",
    "--grpc-address",
    "--grpc-grace-period",
    "--grpc-server-tls-cert",
    "--grpc-server-tls-key",
    "--grpc-server-tls-client-ca",
    "--grpc-server-max-connection-age",
    "--log.level",
    "--log.format",
    "--tracing.config",
    "--tracing.config-file",
];

fn help(service: Service) -> anyhow::Result<String> {
    let (status, stdout, stderr) =
        run_to_completion(service.binary_name(), &[service.subcommand(), "--help"])?;
    assert!(
        status.success(),
        "{} {} --help: {status}\n{stderr}",
        service.binary_name(),
        service.subcommand()
    );
    Ok(stdout)
}

fn assert_lists(service: Service, text: &str, flags: &[&str]) {
    for flag in flags {
        assert!(
            text.contains(flag),
            "{} --help does not list {flag}:\n{text}",
            service.binary_name()
        );
    }
}

#[test]
fn querier_help_lists_thanos_flags() -> anyhow::Result<()> {
    let text = help(Service::Querier)?;
    assert_lists(Service::Querier, &text, SERVER_FLAGS);
    assert_lists(
        Service::Querier,
        &text,
        &[
            "--endpoint",
            "--store",
            "--store.sd-files",
            "--query.replica-label",
            "--query.timeout",
            "--query.max-concurrent",
            "--query.lookback-delta",
            "--query.auto-downsampling",
            "--query.partial-response",
            "--store.response-timeout",
            "--grpc-client-tls-secure",
            "--grpc-client-tls-skip-verify",
            "--grpc-client-tls-cert",
            "--grpc-client-tls-key",
            "--grpc-client-tls-ca",
            "--grpc-client-server-name",
        ],
    );
    Ok(())
}

#[test]
fn sidecar_help_lists_thanos_flags() -> anyhow::Result<()> {
    let text = help(Service::Sidecar)?;
    assert_lists(Service::Sidecar, &text, SERVER_FLAGS);
    assert_lists(
        Service::Sidecar,
        &text,
        &[
            "--prometheus.url",
            "--tsdb.path",
            "--shipper.upload-compacted",
            "--min-time",
            "--objstore.config-file",
            "--reloader.config-file",
            "--reloader.config-envsubst-file",
            "--reloader.rule-dir",
            "--reloader.watch-interval",
            "--reloader.retry-interval",
            "--reloader.method",
            "--reloader.process-name",
        ],
    );
    Ok(())
}

#[test]
fn store_gateway_help_lists_thanos_flags() -> anyhow::Result<()> {
    let text = help(Service::StoreGateway)?;
    assert_lists(Service::StoreGateway, &text, SERVER_FLAGS);
    assert_lists(
        Service::StoreGateway,
        &text,
        &[
            "--data-dir",
            "--index-cache-size",
            "--chunk-pool-size",
            "--sync-block-duration",
            "--min-time",
            "--max-time",
            "--objstore.config",
        ],
    );
    Ok(())
}

#[test]
fn compactor_help_lists_thanos_flags() -> anyhow::Result<()> {
    let text = help(Service::Compactor)?;
    assert_lists(
        Service::Compactor,
        &text,
        &[
            "--http-address",
            "--data-dir",
            "--wait",
            "--retention.resolution-raw",
            "--retention.resolution-5m",
            "--retention.resolution-1h",
            "--delete-delay",
            "--objstore.config-file",
        ],
    );
    assert!(
        !text.contains("--grpc-address"),
        "the compactor has no gRPC server:\n{text}"
    );
    Ok(())
}

#[test]
fn ruler_help_lists_thanos_flags() -> anyhow::Result<()> {
    let text = help(Service::Ruler)?;
    assert_lists(
        Service::Ruler,
        &text,
        &[
            "--http-address",
            "--grpc-address",
            "--data-dir",
            "--rule-file",
            "--eval-interval",
            "--query",
            "--query.config-file",
            "--query.sd-files",
            "--alertmanagers.url",
            "--alertmanagers.config-file",
            "--alertmanagers.send-timeout",
            "--label",
            "--alert.label-drop",
            "--alert.query-url",
            "--resend-delay",
            "--for-grace-period",
            "--for-outage-tolerance",
            "--tsdb.block-duration",
            "--tsdb.retention",
            "--objstore.config",
        ],
    );
    // Like Thanos's, the ruler refuses to start without a query API.
    let (status, _, stderr) = run_to_completion(
        "strata-ruler",
        &[
            "rule",
            "--http-address=127.0.0.1:0",
            "--grpc-address=127.0.0.1:0",
        ],
    )?;
    assert!(!status.success());
    assert!(stderr.contains("--query"), "{stderr}");
    let (status, _, stderr) = run_to_completion(
        "strata-ruler",
        &["rule", "--query=a:1", "--rule-concurrent-evaluation=4"],
    )?;
    assert!(!status.success());
    assert!(stderr.contains("rule-concurrent-evaluation"), "{stderr}");
    Ok(())
}

#[test]
fn help_works_without_the_subcommand_word() -> anyhow::Result<()> {
    for service in Service::ALL {
        let (status, stdout, _) = run_to_completion(service.binary_name(), &["--help"])?;
        assert!(status.success(), "{}", service.binary_name());
        assert!(stdout.contains("--http-address"), "{stdout}");
    }
    Ok(())
}

#[test]
fn bad_flags_fail_fast_and_name_the_flag() -> anyhow::Result<()> {
    let (status, _, stderr) = run_to_completion(
        "strata-store-gateway",
        &["store", "--index-cache-size=lots"],
    )?;
    assert!(!status.success());
    assert!(stderr.contains("--index-cache-size"), "{stderr}");

    let (status, _, stderr) = run_to_completion("strata-querier", &["query", "--no-such-flag"])?;
    assert!(!status.success());
    assert!(stderr.contains("--no-such-flag"), "{stderr}");

    let (status, _, stderr) =
        run_to_completion("strata-sidecar", &["sidecar", "--log.format=text"])?;
    assert!(!status.success());
    assert!(stderr.contains("--log.format"), "{stderr}");

    let (status, _, stderr) = run_to_completion(
        "strata-sidecar",
        &[
            "sidecar",
            "--http-address=127.0.0.1:0",
            "--grpc-address=127.0.0.1:0",
            "--tracing.config=type: NOPE",
        ],
    )?;
    assert!(
        !status.success(),
        "an invalid tracing config must stop startup"
    );
    assert!(stderr.contains("tracing"), "{stderr}");
    Ok(())
}

/// Thanos flags Strata accepts but whose value it cannot honour fail start-up, naming the flag,
/// instead of being silently ignored; so do config flags given both inline and as a file.
#[test]
fn unimplemented_flag_values_refuse_to_start() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("config.yml");
    std::fs::write(&file, "type: IN-MEMORY\n")?;
    let file_flag = |name: &str| format!("--{name}={}", file.display());
    let bucket = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket)?;
    let objstore = format!(
        "--objstore.config=type: FILESYSTEM\nconfig:\n  directory: {}\n",
        bucket.display()
    );
    let listen = ["--http-address=127.0.0.1:0", "--grpc-address=127.0.0.1:0"];
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "strata-querier",
            vec!["--query.tenant-header=X-Tenant".into()],
            "--query.tenant-header",
        ),
        (
            "strata-querier",
            vec!["--query.default-tenant-id=team-a".into()],
            "--query.default-tenant-id",
        ),
        (
            "strata-querier",
            vec!["--grpc-compression=snappy".into()],
            "--grpc-compression",
        ),
        (
            "strata-querier",
            vec!["--selector-label=no quotes \"".into()],
            "--selector-label",
        ),
        (
            "strata-querier",
            vec![
                "--endpoint.sd-config=endpoints: []".into(),
                file_flag("endpoint.sd-config-file"),
            ],
            "--endpoint.sd-config",
        ),
        (
            "strata-querier",
            vec!["--tracing.config=type: JAEGER\nconfig: {}\n".into()],
            "--tracing.config",
        ),
        (
            "strata-store-gateway",
            vec![
                objstore.clone(),
                "--index-cache.config=type: MEMCACHED\nconfig:\n  addresses: [a:11211]\n".into(),
            ],
            "--index-cache.config",
        ),
        (
            "strata-store-gateway",
            vec![
                objstore.clone(),
                "--index-cache.config=type: IN-MEMORY\n".into(),
                file_flag("index-cache.config-file"),
            ],
            "--index-cache.config",
        ),
        (
            "strata-store-gateway",
            vec![
                objstore.clone(),
                "--selector.relabel-config=[]".into(),
                file_flag("selector.relabel-config-file"),
            ],
            "--selector.relabel-config",
        ),
    ];
    for (binary, flags, named) in cases {
        let mut args: Vec<String> = listen.iter().map(|flag| (*flag).to_owned()).collect();
        args.extend(flags.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, _, stderr) = run_to_completion(binary, &args)?;
        assert!(!status.success(), "{binary} {flags:?} started");
        assert!(stderr.contains(named), "{binary} {flags:?}: {stderr}");
    }
    Ok(())
}
