use super::*;

fn parse_err(yaml: &str) -> String {
    match BucketConfig::parse(yaml) {
        Ok(config) => panic!("expected an error for {yaml:?}, got {config:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn tutorial_s3_config_parses_with_thanos_defaults() {
    let config = BucketConfig::parse(
        "type: S3\nconfig:\n  bucket: thanos\n  endpoint: minio:9000\n  access_key: minio\n  secret_key: melovethanos\n  insecure: true\n",
    )
    .expect("valid config");
    let Backend::S3(s3) = &config.backend else {
        panic!("not S3: {config:?}");
    };
    assert_eq!(s3.bucket, "thanos");
    assert_eq!(s3.endpoint, "minio:9000");
    assert_eq!(s3.access_key, "minio");
    assert_eq!(s3.secret_key.expose(), "melovethanos");
    assert!(s3.insecure);
    assert_eq!(s3.part_size, DEFAULT_PART_SIZE);
    assert!(s3.send_content_md5);
    assert_eq!(
        s3.http_config.idle_conn_timeout.get(),
        Duration::from_secs(90)
    );
    assert_eq!(
        s3.http_config.response_header_timeout.get(),
        Duration::from_secs(120)
    );
    assert_eq!(s3.http_config.max_idle_conns_per_host, 100);
    assert_eq!(config.prefix, "");
    assert_eq!(config.bucket_name(), "thanos");
}

#[test]
fn every_documented_s3_field_is_accepted() {
    let config = BucketConfig::parse(
        r#"
type: s3
prefix: /tenant-a/
config:
  bucket: b
  endpoint: s3.eu-west-1.amazonaws.com
  region: eu-west-1
  disable_dualstack: true
  aws_sdk_auth: false
  access_key: AK
  secret_key: SK
  session_token: TOKEN
  insecure: false
  signature_version2: false
  put_user_metadata: {a: b}
  http_config:
    idle_conn_timeout: 1m30s
    response_header_timeout: 2m
    insecure_skip_verify: false
    tls_handshake_timeout: 10s
    expect_continue_timeout: 1s
    max_idle_conns: 100
    max_idle_conns_per_host: 100
    max_conns_per_host: 0
    tls_config: {ca_file: "", cert_file: "", key_file: "", insecure_skip_verify: false}
    disable_compression: false
    force_attempt_http2: false
  trace: {enable: false}
  list_objects_version: ""
  bucket_lookup_type: path
  send_content_md5: true
  disable_multipart: false
  part_size: 67108864
  sse_config: {type: SSE-KMS, kms_key_id: key, kms_encryption_context: {}, encryption_key: ""}
  sts_endpoint: ""
  max_retries: 3
"#,
    )
    .expect("valid config");
    assert_eq!(
        config.prefix, "tenant-a",
        "slashes around the prefix are dropped"
    );
    let Backend::S3(s3) = &config.backend else {
        panic!("not S3");
    };
    assert_eq!(s3.bucket_lookup_type, BucketLookupType::Path);
    assert_eq!(s3.max_retries, Some(3));
    assert_eq!(s3.sse_config.kind, "SSE-KMS");
}

#[test]
fn unknown_field_is_an_error_naming_it() {
    let message = parse_err("type: S3\nconfig:\n  bucket: b\n  endpoint: x:1\n  bukcet: typo\n");
    assert!(message.contains("bukcet"), "{message}");
    assert!(
        message.contains("line 5"),
        "the position is given: {message}"
    );
    let message =
        parse_err("type: S3\nconfig:\n  bucket: b\n  http_config:\n    idle_timeout: 1s\n");
    assert!(message.contains("idle_timeout"), "{message}");
    let message = parse_err("type: S3\nconfig: {bucket: b}\nprefx: a\n");
    assert!(message.contains("prefx"), "{message}");
}

#[test]
fn missing_bucket_is_an_error_naming_it() {
    let message = parse_err("type: S3\nconfig:\n  endpoint: minio:9000\n");
    assert!(message.contains("`config.bucket`"), "{message}");
    let message = parse_err("type: GCS\nconfig: {}\n");
    assert!(message.contains("`config.bucket`"), "{message}");
    let message = parse_err("type: AZURE\nconfig: {storage_account: a}\n");
    assert!(message.contains("`config.container`"), "{message}");
    let message = parse_err("type: FILESYSTEM\n");
    assert!(message.contains("`config.directory`"), "{message}");
}

#[test]
fn wrong_types_are_errors_naming_the_field() {
    for (yaml, field) in [
        (
            "type: S3\nconfig:\n  bucket: b\n  insecure: maybe\n",
            "config.insecure",
        ),
        (
            "type: S3\nconfig:\n  bucket: b\n  part_size: lots\n",
            "config.part_size",
        ),
        ("type: S3\nconfig:\n  bucket: [a, b]\n", "config.bucket"),
        (
            "type: S3\nconfig:\n  bucket: b\n  http_config:\n    idle_conn_timeout: soon\n",
            "config.http_config.idle_conn_timeout",
        ),
        (
            "type: S3\nconfig:\n  bucket: b\n  bucket_lookup_type: dns\n",
            "config.bucket_lookup_type",
        ),
        ("type: FILESYSTEM\nconfig: [1, 2]\n", "config"),
        ("type: S3\nconfig: {bucket: b}\nprefix: [x]\n", "prefix"),
    ] {
        let message = parse_err(yaml);
        assert!(message.contains(field), "{field} not named in: {message}");
    }
}

#[test]
fn unsupported_or_missing_type_is_an_error_naming_the_field() {
    let message = parse_err("type: SWIFT\nconfig: {container: c}\n");
    assert!(
        message.contains("`type`") && message.contains("SWIFT"),
        "{message}"
    );
    let message = parse_err("config: {bucket: b}\n");
    assert!(message.contains("`type`"), "{message}");
    assert!(parse_err("").contains("empty"));
    assert!(parse_err("---\n").contains("empty"));
}

#[test]
fn s3_field_combinations_are_validated() {
    let message = parse_err("type: S3\nconfig: {bucket: b, access_key: a}\n");
    assert!(message.contains("`config.secret_key`"), "{message}");
    let message = parse_err("type: S3\nconfig: {bucket: b, secret_key: s}\n");
    assert!(message.contains("`config.access_key`"), "{message}");
    let message = parse_err("type: S3\nconfig: {bucket: b, endpoint: 'http://minio:9000'}\n");
    assert!(message.contains("`config.endpoint`"), "{message}");
    let message = parse_err("type: S3\nconfig: {bucket: b, part_size: 1024}\n");
    assert!(message.contains("`config.part_size`"), "{message}");
    let message = parse_err("type: S3\nconfig: {bucket: b, sse_config: {type: SSE-KMS}}\n");
    assert!(
        message.contains("`config.sse_config.kms_key_id`"),
        "{message}"
    );
    let message = parse_err("type: S3\nconfig: {bucket: b, sse_config: {type: AES}}\n");
    assert!(message.contains("`config.sse_config.type`"), "{message}");
    let message = parse_err("type: S3\nconfig: {bucket: b, list_objects_version: v1}\n");
    assert!(
        message.contains("`config.list_objects_version`"),
        "{message}"
    );
    let message = parse_err("type: S3\nconfig: {bucket: b, signature_version2: true}\n");
    assert!(message.contains("`config.signature_version2`"), "{message}");
}

#[test]
fn only_the_first_yaml_document_counts() {
    let config = BucketConfig::parse(
        "type: FILESYSTEM\nconfig:\n  directory: /first\n---\ntype: S3\nconfig: {nonsense: 1}\n",
    )
    .expect("second document ignored");
    assert_eq!(
        config.backend,
        Backend::Filesystem(FilesystemConfig {
            directory: PathBuf::from("/first")
        })
    );
}

#[test]
fn env_substitution_replaces_references() {
    let lookup = |name: &str| match name {
        "SECRET" => Some("s3cr3t".to_string()),
        "BUCKET_NAME" => Some("prod".to_string()),
        _ => None,
    };
    let out = substitute_env(
        "a: $(BUCKET_NAME)\nb: x$(SECRET)y\nc: $HOME $( x) $(",
        lookup,
    )
    .expect("substitution");
    assert_eq!(out, "a: prod\nb: xs3cr3ty\nc: $HOME $( x) $(");
    let error = substitute_env("a: $(UNSET_VARIABLE_FOR_TEST)", lookup).expect_err("unset");
    assert!(
        error.to_string().contains("UNSET_VARIABLE_FOR_TEST"),
        "{error}"
    );
}

#[test]
fn env_substitution_applies_to_parse() {
    // PATH is set in every test environment; use it as a bucket name source.
    let path = std::env::var("PATH").expect("PATH is set");
    let config = BucketConfig::parse("type: FILESYSTEM\nconfig:\n  directory: \"$(PATH)\"\n")
        .expect("valid config");
    assert_eq!(
        config.backend,
        Backend::Filesystem(FilesystemConfig {
            directory: PathBuf::from(path)
        })
    );
}

#[test]
fn secrets_never_show_in_debug_or_redacted_output() {
    let config = BucketConfig::parse(
        "type: S3\nconfig:\n  bucket: b\n  access_key: AKIAVISIBLE\n  secret_key: SUPERSECRETKEY\n  session_token: SESSIONTOKENVALUE\n",
    )
    .expect("valid config");
    let debug = format!("{config:?}");
    let pretty = format!("{config:#?}");
    let redacted = config.redacted();
    for output in [&debug, &pretty, &redacted] {
        assert!(!output.contains("SUPERSECRETKEY"), "{output}");
        assert!(!output.contains("SESSIONTOKENVALUE"), "{output}");
        assert!(output.contains("<secret>"), "{output}");
    }
    assert!(
        redacted.contains("AKIAVISIBLE"),
        "access key ids are not secret: {redacted}"
    );
    assert!(redacted.starts_with("type: S3\n"), "{redacted}");
    // The redacted YAML is itself a valid config of the same shape.
    let reparsed = BucketConfig::parse(&redacted).expect("redacted output parses");
    assert_eq!(reparsed.backend.type_name(), "S3");

    for yaml in [
        "type: GCS\nconfig: {bucket: b, service_account: '{\"private_key\": \"PRIVATEKEYDATA\"}'}\n",
        "type: AZURE\nconfig: {container: c, storage_account: a, storage_account_key: ACCOUNTKEYDATA, client_secret: CLIENTSECRETDATA}\n",
        "type: AZURE\nconfig: {container: c, storage_connection_string: 'AccountName=a;AccountKey=CONNKEYDATA'}\n",
    ] {
        let config = BucketConfig::parse(yaml).expect("valid config");
        for output in [format!("{config:?}"), config.redacted()] {
            for secret in [
                "PRIVATEKEYDATA",
                "ACCOUNTKEYDATA",
                "CLIENTSECRETDATA",
                "CONNKEYDATA",
            ] {
                assert!(!output.contains(secret), "{secret} leaked: {output}");
            }
        }
    }
}

#[test]
fn load_takes_exactly_one_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("objstore.yml");
    std::fs::write(&file, "type: FILESYSTEM\nconfig:\n  directory: /data\n").expect("write");
    let from_file = BucketConfig::load(None, Some(&file)).expect("from file");
    let inline = BucketConfig::load(Some("type: FILESYSTEM\nconfig: {directory: /data}"), None)
        .expect("inline");
    assert_eq!(from_file, inline);
    assert!(matches!(
        BucketConfig::load(None, None),
        Err(Error::ConfigMissing)
    ));
    assert!(matches!(
        BucketConfig::load(Some("type: FILESYSTEM"), Some(&file)),
        Err(Error::ConfigBothFlags)
    ));
    let missing = dir.path().join("missing.yml");
    let error = BucketConfig::load(None, Some(&missing)).expect_err("missing file");
    assert!(error.to_string().contains("missing.yml"), "{error}");
}

#[test]
fn prometheus_durations_parse() {
    let cases = [
        ("0", 0),
        ("1s", 1000),
        ("1m30s", 90_000),
        ("2m", 120_000),
        ("500ms", 500),
        ("1h0m0s", 3_600_000),
        ("1d", 86_400_000),
        ("1w", 604_800_000),
        ("1y", 31_536_000_000),
        ("1m1s1ms", 61_001),
    ];
    for (text, millis) in cases {
        assert_eq!(
            parse_prom_duration(text),
            Ok(Duration::from_millis(millis)),
            "{text}"
        );
    }
    for bad in [
        "",
        "1",
        "s",
        "1x",
        "1s1m",
        "1s1s",
        "-1s",
        "1.5s",
        "99999999999999999999y",
    ] {
        assert!(
            parse_prom_duration(bad).is_err(),
            "{bad:?} must be rejected"
        );
    }
    assert_eq!(format_prom_duration(Duration::from_secs(90)), "1m30s");
    assert_eq!(format_prom_duration(Duration::ZERO), "0s");
}
