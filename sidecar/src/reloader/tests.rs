//! The reloader against a fake Prometheus (an axum server answering `/-/reload` and
//! `/api/v1/status/runtimeinfo`): flag validation, the output file, reloads on changes,
//! retries, the start-up failure, and the signal method on a process of our own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use clap::Parser;

use super::*;
use crate::prometheus::HttpClientConfig;

#[derive(Clone, Default)]
struct FakePrometheus {
    /// `/-/reload` calls so far.
    reloads: Arc<AtomicUsize>,
    /// `/-/reload` answers 500 while `reloads` is at most this.
    fail_first: Arc<AtomicUsize>,
    /// From this call of `/api/v1/status/runtimeinfo` on, the loaded config is invalid.
    invalid_from: Arc<AtomicUsize>,
    /// Calls of `/api/v1/status/runtimeinfo` so far; also its `lastConfigTime` (seconds).
    runtime_info_calls: Arc<AtomicUsize>,
}

async fn reload(State(fake): State<FakePrometheus>) -> (StatusCode, &'static str) {
    let call = fake.reloads.fetch_add(1, Ordering::SeqCst) + 1;
    if call <= fake.fail_first.load(Ordering::SeqCst) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed to reload config: couldn't load configuration",
        );
    }
    (StatusCode::OK, "")
}

async fn runtime_info(State(fake): State<FakePrometheus>) -> String {
    // Every answer is a later load: a SIGHUP between two calls is always "seen".
    let call = fake.runtime_info_calls.fetch_add(1, Ordering::SeqCst);
    let valid = call < fake.invalid_from.load(Ordering::SeqCst);
    let time =
        chrono::DateTime::from_timestamp(1_700_000_000 + i64::try_from(call).unwrap_or(0), 0)
            .unwrap_or_default()
            .to_rfc3339();
    serde_json::json!({"status": "success", "data": {
        "reloadConfigSuccess": valid,
        "lastConfigTime": time,
        "goroutineCount": 10,
    }})
    .to_string()
}

async fn serve(fake: FakePrometheus) -> SocketAddr {
    let router = axum::Router::new()
        .route("/-/reload", post(reload))
        .route("/api/v1/status/runtimeinfo", get(runtime_info))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

fn client(address: SocketAddr) -> PrometheusClient {
    PrometheusClient::new(
        &format!("http://{address}"),
        Duration::from_secs(2),
        &HttpClientConfig::default(),
    )
    .expect("client")
}

/// A reloader config on `dir`: `template.yml` -> `out.yml`, short intervals.
fn file_config(dir: &Path, watch: Duration) -> ReloaderConfig {
    ReloaderConfig {
        config_file: Some(dir.join("template.yml")),
        config_output_file: Some(dir.join("out.yml")),
        rule_dirs: Vec::new(),
        watch_interval: watch,
        retry_interval: Duration::from_millis(50),
        method: ReloadMethod::Http,
    }
}

/// Polls `check` every 20 ms for at most 10 s.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within 10s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn flags(args: &[&str]) -> Config {
    let mut all = vec!["strata-sidecar"];
    all.extend_from_slice(args);
    Config::try_parse_from(all).expect("flags parse")
}

fn refused_flag(args: &[&str]) -> &'static str {
    match ReloaderConfig::from_flags(&flags(args)) {
        Err(Error::Common(common)) => match *common {
            strata_common::error::Error::InvalidFlag { flag, .. } => flag,
            other => panic!("{args:?}: not an invalid flag error: {other}"),
        },
        other => panic!("{args:?}: not refused: {other:?}"),
    }
}

#[test]
fn flags_resolve_to_a_reloader_config() {
    assert_eq!(ReloaderConfig::from_flags(&flags(&[])).expect("ok"), None);
    let config = ReloaderConfig::from_flags(&flags(&[
        "--reloader.config-file=/etc/prom/prometheus.yml.tmpl",
        "--reloader.config-envsubst-file=/etc/prom-out/prometheus.yml",
        "--reloader.rule-dir=/etc/rules/a",
        "--reloader.rule-dir=/etc/rules/b",
    ]))
    .expect("valid")
    .expect("something watched");
    assert_eq!(config.watch_interval, Duration::from_secs(180));
    assert_eq!(config.retry_interval, Duration::from_secs(5));
    assert_eq!(config.method, ReloadMethod::Http);
    assert_eq!(config.rule_dirs.len(), 2);
    assert_eq!(
        config.watched_paths().len(),
        4,
        "file, its dir, two rule dirs"
    );

    let signal = ReloaderConfig::from_flags(&flags(&[
        "--reloader.rule-dir=/etc/rules",
        "--reloader.method=signal",
    ]))
    .expect("valid")
    .expect("something watched");
    assert_eq!(
        signal.method,
        ReloadMethod::Signal {
            process_name: "prometheus".to_owned()
        }
    );
}

#[test]
fn flags_that_cannot_work_are_refused_naming_the_flag() {
    assert_eq!(
        refused_flag(&["--reloader.config-envsubst-file=/out.yml"]),
        "--reloader.config-envsubst-file"
    );
    assert_eq!(
        refused_flag(&[
            "--reloader.config-file=/in.yml.gz",
            "--reloader.config-envsubst-file=/out.yml"
        ]),
        "--reloader.config-file"
    );
    assert_eq!(
        refused_flag(&[
            "--reloader.config-file=/in.yml",
            "--reloader.config-envsubst-file=/in.yml"
        ]),
        "--reloader.config-envsubst-file"
    );
    assert_eq!(
        refused_flag(&["--reloader.rule-dir=/r", "--reloader.watch-interval=0s"]),
        "--reloader.watch-interval"
    );
    assert_eq!(
        refused_flag(&["--reloader.rule-dir=/r", "--reloader.retry-interval=0"]),
        "--reloader.retry-interval"
    );
    assert_eq!(
        refused_flag(&[
            "--reloader.rule-dir=/r",
            "--reloader.method=signal",
            "--reloader.process-name="
        ]),
        "--reloader.process-name"
    );
    // Without an output file a .gz config is only hashed, as in Thanos.
    assert!(
        ReloaderConfig::from_flags(&flags(&["--reloader.config-file=/in.yml.gz"]))
            .expect("valid")
            .is_some()
    );
}

#[test]
fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.yml");
    write_atomically(&path, b"first\n").expect("write");
    let mut held = std::fs::File::open(&path).expect("open");
    write_atomically(&path, b"second\n").expect("rewrite");
    assert_eq!(read(&path), "second\n");
    // A reader that opened the old file still reads it whole: the new one was renamed over
    // it, never written into it.
    let mut old = String::new();
    std::io::Read::read_to_string(&mut held, &mut old).expect("read held");
    assert_eq!(old, "first\n");
    assert!(!dir.path().join("out.yml.tmp").exists());

    let missing = dir.path().join("no-such-dir").join("out.yml");
    assert!(matches!(
        write_atomically(&missing, b"x"),
        Err(Error::Io { .. })
    ));
}

#[test]
fn observe_substitutes_and_keeps_the_previous_output_on_unset_variables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = file_config(dir.path(), Duration::from_secs(1));
    let template = dir.path().join("template.yml");
    let output = dir.path().join("out.yml");
    let metrics = ReloaderMetrics::default();
    let observe_now = || {
        observe(
            &config,
            &metrics.config_environment_variable_expansion_errors,
            &metrics.watch_errors,
        )
    };

    let path = std::env::var("PATH").expect("PATH is set for tests");
    std::fs::write(&template, "path: '$(PATH)' # $1 ${PATH}\n").expect("template");
    let first = observe_now().expect("observe");
    assert_eq!(read(&output), format!("path: '{path}' # $1 ${{PATH}}\n"));
    assert!(first.config_file.is_some() && first.rule_dirs.is_none());
    assert_eq!(observe_now().expect("observe"), first, "unchanged");

    std::fs::write(&template, "x: $(STRATA_TEST_SURELY_UNSET_VARIABLE_1234)\n").expect("edit");
    let err = observe_now().expect_err("unset variable");
    assert!(
        err.to_string()
            .contains("STRATA_TEST_SURELY_UNSET_VARIABLE_1234"),
        "{err}"
    );
    assert_eq!(read(&output), format!("path: '{path}' # $1 ${{PATH}}\n"));
    assert_eq!(
        metrics.config_environment_variable_expansion_errors.get(),
        1
    );

    std::fs::write(&template, [0x1f, 0x8b, 0x08, 0, 0]).expect("gzip bytes");
    assert!(matches!(observe_now(), Err(Error::GzipConfig { .. })));

    std::fs::remove_file(&template).expect("remove");
    assert!(matches!(observe_now(), Err(Error::Io { .. })));
    assert_eq!(metrics.watch_errors.get(), 1);
}

#[tokio::test]
async fn reloads_on_start_and_on_changes_retrying_failures() {
    let fake = FakePrometheus::default();
    fake.fail_first.store(2, Ordering::SeqCst);
    let address = serve(fake.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = file_config(dir.path(), Duration::from_millis(300));
    let template = dir.path().join("template.yml");
    let output = dir.path().join("out.yml");
    std::fs::write(&template, "global: {}\n").expect("template");
    let metrics = ReloaderMetrics::default();
    let reloader = Reloader::new(config, client(address), metrics.clone());
    let cancel = CancellationToken::new();
    let task = tokio::spawn(reloader.run(cancel.clone()));

    // Start-up: written, then reloaded after two failures 50 ms apart.
    eventually("initial reload", || {
        fake.reloads.load(Ordering::SeqCst) == 3
    })
    .await;
    assert_eq!(read(&output), "global: {}\n");
    eventually("reload recorded", || {
        metrics.last_reload_successful.get() == 1
    })
    .await;
    assert_eq!(metrics.reloads.get(), 3);
    assert_eq!(metrics.reloads_failed.get(), 2);
    assert!(metrics.last_reload_success_timestamp.get() > 1.6e9);
    assert_eq!(metrics.watches.get(), 2, "the file and its directory");

    // Unchanged: an apply per interval, no reload.
    eventually("two applies", || metrics.config_apply_operations.get() >= 2).await;
    assert_eq!(fake.reloads.load(Ordering::SeqCst), 3);

    // A change: written and reloaded within a watch interval.
    std::fs::write(&template, "global:\n  scrape_interval: 5s\n").expect("edit");
    eventually("reload after change", || {
        fake.reloads.load(Ordering::SeqCst) == 4
    })
    .await;
    assert_eq!(read(&output), "global:\n  scrape_interval: 5s\n");

    // A broken template: the apply fails, the output stays, nothing is reloaded.
    std::fs::write(&template, "a: $(STRATA_TEST_SURELY_UNSET_VARIABLE_1234)\n").expect("edit");
    eventually("apply failure", || {
        metrics.config_apply_operations_failed.get() >= 1
    })
    .await;
    assert_eq!(read(&output), "global:\n  scrape_interval: 5s\n");
    assert_eq!(fake.reloads.load(Ordering::SeqCst), 4);

    cancel.cancel();
    task.await.expect("join").expect("clean stop");
}

#[tokio::test]
async fn a_reload_failing_all_interval_is_retried_at_the_next_apply() {
    let fake = FakePrometheus::default();
    fake.fail_first.store(usize::MAX, Ordering::SeqCst);
    let address = serve(fake.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = tempfile::tempdir().expect("tempdir");
    std::fs::write(rules.path().join("a.yml"), "groups: []\n").expect("rules");
    let config = ReloaderConfig {
        config_file: None,
        config_output_file: None,
        rule_dirs: vec![rules.path().to_path_buf()],
        ..file_config(dir.path(), Duration::from_millis(200))
    };
    let metrics = ReloaderMetrics::default();
    let reloader = Reloader::new(config, client(address), metrics.clone());
    let cancel = CancellationToken::new();
    let task = tokio::spawn(reloader.run(cancel.clone()));

    // Rule dirs only: the first apply comes after a watch interval and reloads (nothing was
    // reloaded yet); failures are retried within the interval, then at the next apply.
    eventually("failing applies", || {
        metrics.config_apply_operations.get() >= 2
    })
    .await;
    assert!(fake.reloads.load(Ordering::SeqCst) >= 3);
    assert_eq!(metrics.last_reload_successful.get(), 0);

    // Prometheus recovers: reloaded although nothing changed since.
    fake.fail_first.store(0, Ordering::SeqCst);
    eventually("recovered", || metrics.last_reload_successful.get() == 1).await;
    let reloads = fake.reloads.load(Ordering::SeqCst);
    let applies = metrics.config_apply_operations.get();
    eventually("more applies", || {
        metrics.config_apply_operations.get() >= applies + 2
    })
    .await;
    assert_eq!(
        fake.reloads.load(Ordering::SeqCst),
        reloads,
        "no change, no reload"
    );

    // A rule file changes.
    std::fs::write(rules.path().join("b.yml"), "groups: []\n").expect("rules");
    eventually("reload after rule change", || {
        fake.reloads.load(Ordering::SeqCst) == reloads + 1
    })
    .await;
    assert_eq!(
        metrics.watch_events.get(),
        2,
        "the first look and the change"
    );

    cancel.cancel();
    task.await.expect("join").expect("clean stop");
}

#[tokio::test]
async fn a_failing_first_apply_stops_the_reloader() {
    let address = serve(FakePrometheus::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // No template: reading it fails.
    let config = file_config(dir.path(), Duration::from_secs(60));
    let reloader = Reloader::new(config, client(address), ReloaderMetrics::default());
    let err = reloader
        .run(CancellationToken::new())
        .await
        .expect_err("missing config file");
    assert!(err.to_string().contains("template.yml"), "{err}");
}

#[tokio::test]
async fn shutdown_interrupts_retries() {
    // Nothing listens on port 1: every reload fails at once.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("template.yml"), "global: {}\n").expect("template");
    let config = ReloaderConfig {
        retry_interval: Duration::from_secs(30),
        ..file_config(dir.path(), Duration::from_secs(600))
    };
    let unreachable: SocketAddr = ([127, 0, 0, 1], 1).into();
    let metrics = ReloaderMetrics::default();
    let reloader = Reloader::new(config, client(unreachable), metrics.clone());
    let cancel = CancellationToken::new();
    let task = tokio::spawn(reloader.run(cancel.clone()));
    eventually("a failed reload", || metrics.reloads_failed.get() == 1).await;
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops promptly")
        .expect("join")
        .expect("clean stop");
}

/// A copy of `sleep` under a name no other process has, so that the signal method finds
/// only it.
fn spawn_uniquely_named_sleep(dir: &Path) -> (std::process::Child, String) {
    let name = format!("strl{}", std::process::id() % 100_000_000);
    let sleep = ["/usr/bin/sleep", "/bin/sleep"]
        .into_iter()
        .find(|path| Path::new(path).is_file())
        .expect("a sleep binary");
    let copy = dir.join(&name);
    std::fs::copy(sleep, &copy).expect("copy sleep");
    let child = std::process::Command::new(&copy)
        .arg("30")
        .spawn()
        .expect("spawn sleep copy");
    (child, name)
}

#[tokio::test]
async fn signal_method_sends_sighup_and_waits_for_a_newer_load() {
    use std::os::unix::process::ExitStatusExt;

    let fake = FakePrometheus::default();
    fake.invalid_from.store(usize::MAX, Ordering::SeqCst);
    let address = serve(fake.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, name) = spawn_uniquely_named_sleep(dir.path());
    // The kernel sets the name at exec: wait until the child is listed under it.
    eventually("child listed", || {
        trigger::find_process(Path::new("/proc"), &name).is_ok_and(|pid| pid.is_some())
    })
    .await;

    let trigger = Trigger::Signal {
        client: client(address),
        process_name: name.clone(),
    };
    trigger
        .reload(Instant::now() + Duration::from_secs(10))
        .await
        .expect("reload confirmed");
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(1), "SIGHUP: {status}");
    assert_eq!(fake.reloads.load(Ordering::SeqCst), 0, "no http reload");

    // No such process any more.
    let err = trigger
        .reload(Instant::now() + Duration::from_secs(10))
        .await
        .expect_err("process gone");
    assert!(matches!(err, Error::ProcessNotFound { .. }), "{err}");

    // Prometheus reports the new configuration invalid.
    let (mut child, name) = spawn_uniquely_named_sleep(dir.path());
    eventually("child listed", || {
        trigger::find_process(Path::new("/proc"), &name).is_ok_and(|pid| pid.is_some())
    })
    .await;
    // Valid at the check before SIGHUP, invalid after.
    let calls = fake.runtime_info_calls.load(Ordering::SeqCst);
    fake.invalid_from.store(calls + 1, Ordering::SeqCst);
    let err = trigger
        .reload(Instant::now() + Duration::from_secs(10))
        .await
        .expect_err("invalid config");
    assert!(err.to_string().contains("reload has failed"), "{err}");
    let _ = child.wait();
}
