//! The sidecar's reloader, after Thanos's `pkg/reloader` as `thanos sidecar` runs it: it
//! watches `--reloader.config-file` and the `--reloader.rule-dir` directories and reloads
//! Prometheus when they change.
//!
//! What it does, as Thanos does:
//! - With `--reloader.config-envsubst-file`, every apply reads the config file, substitutes
//!   `$(VAR)` references ([`envsubst`]) and writes the result atomically (`<out>.tmp`, then a
//!   rename) for Prometheus to load. A reference to an unset variable fails the apply and the
//!   previous output stays.
//! - An apply compares [`fingerprint`]s of the config file and the rule directories with
//!   those of the last successful reload; on a difference (or when the previous apply gave
//!   up) it reloads Prometheus ([`trigger`]), retrying every `--reloader.retry-interval` until
//!   it succeeds, the watch interval ends (the next apply then reloads again) or shutdown.
//! - With a config file, the first apply runs at start-up, and since nothing was reloaded yet
//!   it reloads Prometheus; its failure to read, substitute or write the config stops the
//!   sidecar (Thanos's `Watch` returns the error and the whole process stops). Reload failures
//!   never do: they are retried. Then an apply runs every `--reloader.watch-interval`.
//!
//! What it does differently: Thanos also applies on fsnotify events; Strata only polls (each
//! watch interval), so a change takes up to one watch interval to reach Prometheus, as it
//! does in Thanos whenever an event is missed. A gzip-compressed config file is refused
//! (Thanos decompresses it): a `.gz` name at start-up, gzip content at the apply.
//!
//! The task runs on the sidecar's shutdown tree, started before the sidecar waits for
//! Prometheus: Prometheus may need the substituted file to start at all.

mod envsubst;
mod fingerprint;
mod trigger;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use strata_common::shutdown::CancellationToken;
use tokio::time::Instant;

pub use trigger::Trigger;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics::{ReloadMethodLabel, ReloaderMetrics};
use crate::prometheus::PrometheusClient;

/// The first bytes of a gzip stream (magic and the deflate method), as Thanos checks them.
const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];

/// The `--reloader.*` flags, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloaderConfig {
    pub config_file: Option<PathBuf>,
    pub config_output_file: Option<PathBuf>,
    pub rule_dirs: Vec<PathBuf>,
    pub watch_interval: Duration,
    pub retry_interval: Duration,
    pub method: ReloadMethod,
}

/// `--reloader.method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadMethod {
    Http,
    Signal { process_name: String },
}

impl ReloaderConfig {
    /// The reloader the flags ask for, or `None` when they watch nothing (Thanos then only
    /// logs "nothing to be watched"). Flags that cannot work fail here, naming the flag.
    pub fn from_flags(config: &Config) -> Result<Option<Self>> {
        // Thanos's "" default (not set) is `None`; clap refuses an explicit empty path.
        let config_file = config.reloader_config_file.clone();
        let config_output_file = config.reloader_config_envsubst_file.clone();
        let rule_dirs = config.reloader_rule_dirs.clone();
        let invalid = |flag: &'static str, reason: &str| {
            Error::from(strata_common::error::Error::InvalidFlag {
                flag,
                reason: reason.to_owned(),
            })
        };
        if let Some(output) = &config_output_file {
            let Some(input) = &config_file else {
                return Err(invalid(
                    "--reloader.config-envsubst-file",
                    "it is written from --reloader.config-file, which is not set",
                ));
            };
            if input.extension().is_some_and(|extension| extension == "gz") {
                return Err(invalid(
                    "--reloader.config-file",
                    "gzip-compressed config files are not supported (Strata has no gzip decoder); give the uncompressed file",
                ));
            }
            if input == output {
                return Err(invalid(
                    "--reloader.config-envsubst-file",
                    "it is the same file as --reloader.config-file, whose template it would overwrite",
                ));
            }
        }
        if config_file.is_none() && rule_dirs.is_empty() {
            return Ok(None);
        }
        if config.reloader_watch_interval.is_zero() {
            // Thanos's reloader returns at once with 0, which stops its whole sidecar.
            return Err(invalid("--reloader.watch-interval", "must be positive"));
        }
        if config.reloader_retry_interval.is_zero() {
            return Err(invalid("--reloader.retry-interval", "must be positive"));
        }
        let method = match config.reloader_method.as_str() {
            "http" => ReloadMethod::Http,
            "signal" if config.reloader_process_name.is_empty() => {
                return Err(invalid(
                    "--reloader.process-name",
                    "the signal method needs the name of the process to signal",
                ));
            }
            "signal" => ReloadMethod::Signal {
                process_name: config.reloader_process_name.clone(),
            },
            // clap allows only the two.
            other => {
                return Err(invalid(
                    "--reloader.method",
                    &format!("unknown method {other:?} (http or signal)"),
                ));
            }
        };
        Ok(Some(Self {
            config_file,
            config_output_file,
            rule_dirs,
            watch_interval: config.reloader_watch_interval,
            retry_interval: config.reloader_retry_interval,
            method,
        }))
    }

    /// The paths Thanos's watcher counts in `reloader_watches`: the config file and its
    /// directory, and each rule directory.
    fn watched_paths(&self) -> BTreeSet<PathBuf> {
        let mut paths = BTreeSet::new();
        if let Some(file) = &self.config_file {
            let dir = match file.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                _ => PathBuf::from("."),
            };
            paths.insert(dir);
            paths.insert(file.clone());
        }
        paths.extend(self.rule_dirs.iter().cloned());
        paths
    }
}

/// What an apply saw: the hashes of the config file and of the rule directories (`None` for
/// what is not watched).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Fingerprints {
    config_file: Option<u64>,
    rule_dirs: Option<u64>,
}

/// The reloader task's state.
#[derive(Debug)]
pub struct Reloader {
    config: ReloaderConfig,
    trigger: Trigger,
    metrics: ReloaderMetrics,
    /// At the last successful reload; `None` before the first.
    reloaded: Option<Fingerprints>,
    /// At the last apply, to count each change once in `watch_events`.
    last_seen: Option<Fingerprints>,
    /// The last apply gave up reloading: the next one reloads even without a change.
    force_reload: bool,
}

impl Reloader {
    pub fn new(config: ReloaderConfig, client: PrometheusClient, metrics: ReloaderMetrics) -> Self {
        let trigger = match &config.method {
            ReloadMethod::Http => Trigger::Http { client },
            ReloadMethod::Signal { process_name } => Trigger::Signal {
                client,
                process_name: process_name.clone(),
            },
        };
        metrics
            .info
            .get_or_create(&ReloadMethodLabel {
                method: trigger.method().to_owned(),
            })
            .set(1);
        metrics
            .watches
            .set(i64::try_from(config.watched_paths().len()).unwrap_or(i64::MAX));
        Self {
            config,
            trigger,
            metrics,
            reloaded: None,
            last_seen: None,
            force_reload: false,
        }
    }

    /// Runs until `cancel`: the initial apply (with a config file), then one apply per watch
    /// interval. Fails only if the initial apply fails.
    pub async fn run(mut self, cancel: CancellationToken) -> Result<()> {
        let dirs: Vec<String> = self
            .config
            .rule_dirs
            .iter()
            .map(|dir| dir.display().to_string())
            .collect();
        tracing::info!(
            method = self.trigger.method(),
            cfg = %display_option(self.config.config_file.as_deref()),
            out = %display_option(self.config.config_output_file.as_deref()),
            dirs = %dirs.join(","),
            "started watching config file and directories for changes"
        );
        let mut next = Instant::now() + self.config.watch_interval;
        if self.config.config_file.is_some() {
            self.apply(next, &cancel).await?;
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = cancel.cancelled() => return Ok(()),
            }
            next = Instant::now() + self.config.watch_interval;
            self.metrics.config_apply_operations.inc();
            if let Err(err) = self.apply(next, &cancel).await {
                self.metrics.config_apply_operations_failed.inc();
                tracing::error!(error = %strata_common::error::error_chain(&err), "apply error");
            }
        }
    }

    /// Writes the substituted config and reloads Prometheus if anything changed since the
    /// last reload; reload attempts stop at `deadline`.
    async fn apply(&mut self, deadline: Instant, cancel: &CancellationToken) -> Result<()> {
        let config = self.config.clone();
        let expansion_errors = self
            .metrics
            .config_environment_variable_expansion_errors
            .clone();
        let watch_errors = self.metrics.watch_errors.clone();
        let seen =
            tokio::task::spawn_blocking(move || observe(&config, &expansion_errors, &watch_errors))
                .await
                .map_err(|err| Error::ReloadFailed {
                    reason: format!("read the watched files: {err}"),
                })??;

        if self.last_seen.replace(seen) != Some(seen) {
            self.metrics.watch_events.inc();
        }
        if self.reloaded == Some(seen) && !self.force_reload {
            return Ok(());
        }
        loop {
            self.metrics.reloads.inc();
            let result = tokio::select! {
                result = self.trigger.reload(deadline) => result,
                () = cancel.cancelled() => return Ok(()),
            };
            match result {
                Ok(()) => {
                    self.reloaded = Some(seen);
                    self.force_reload = false;
                    self.metrics.last_reload_successful.set(1);
                    self.metrics
                        .last_reload_success_timestamp
                        .set(unix_seconds());
                    tracing::info!(
                        cfg_in = %display_option(self.config.config_file.as_deref()),
                        cfg_out = %display_option(self.config.config_output_file.as_deref()),
                        "reload triggered"
                    );
                    return Ok(());
                }
                Err(err) => {
                    self.metrics.reloads_failed.inc();
                    self.metrics.last_reload_successful.set(0);
                    tracing::error!(error = %strata_common::error::error_chain(&err), "failed to trigger reload; retrying");
                }
            }
            let retry_at = Instant::now() + self.config.retry_interval;
            if retry_at >= deadline {
                self.force_reload = true;
                tracing::warn!(
                    "reload still failing at the end of the watch interval; retrying at the next apply"
                );
                return Ok(());
            }
            tokio::select! {
                () = tokio::time::sleep_until(retry_at) => {}
                () = cancel.cancelled() => return Ok(()),
            }
        }
    }
}

/// Reads the watched files: hashes them and, with an output file, writes the substituted
/// config. Blocking.
fn observe(
    config: &ReloaderConfig,
    expansion_errors: &Gauge,
    watch_errors: &Counter,
) -> Result<Fingerprints> {
    let counted = |err: Error| {
        watch_errors.inc();
        err
    };
    let mut seen = Fingerprints::default();
    if let Some(input) = &config.config_file {
        let content = std::fs::read(input)
            .map_err(|source| counted(Error::io("read reloader config file", input, source)))?;
        seen.config_file = Some(fingerprint::config_file(input, &content));
        if let Some(output) = &config.config_output_file {
            let substituted = substitute(input, &content, expansion_errors)?;
            write_atomically(output, &substituted)?;
        }
    }
    if !config.rule_dirs.is_empty() {
        seen.rule_dirs = Some(fingerprint::rule_dirs(&config.rule_dirs).map_err(counted)?);
    }
    Ok(seen)
}

/// The config file's content with the process's environment substituted.
fn substitute(input: &Path, content: &[u8], expansion_errors: &Gauge) -> Result<Vec<u8>> {
    if content.starts_with(&GZIP_MAGIC) {
        return Err(Error::GzipConfig {
            path: input.to_path_buf(),
        });
    }
    match envsubst::expand(content, envsubst::process_env) {
        Ok(substituted) => {
            expansion_errors.set(0);
            Ok(substituted)
        }
        Err(envsubst::UnsetVariable(name)) => {
            expansion_errors.set(1);
            Err(Error::UnsetEnvironmentVariable {
                path: input.to_path_buf(),
                name,
            })
        }
    }
}

/// Replaces `path` with `content` atomically: Prometheus (re)loading it at any moment sees
/// the old file or the new one, never a part. The temporary file is `<path>.tmp`, as in
/// Thanos, and is removed when anything fails.
fn write_atomically(path: &Path, content: &[u8]) -> Result<()> {
    let mut temporary = OsString::from(path.as_os_str());
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let result = std::fs::File::create(&temporary)
        .and_then(|mut file| {
            file.write_all(content)?;
            file.sync_all()
        })
        .map_err(|source| Error::io("write reloader output file", &temporary, source))
        .and_then(|()| {
            std::fs::rename(&temporary, path)
                .map_err(|source| Error::io("rename reloader output file to", path, source))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

fn display_option(path: Option<&Path>) -> String {
    path.map(|path| path.display().to_string())
        .unwrap_or_default()
}

fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests;
