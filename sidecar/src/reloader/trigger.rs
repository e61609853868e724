//! How a reload reaches Prometheus, by `--reloader.method`:
//!
//! - `http`: `POST <prometheus.url>/-/reload` with the sidecar's Prometheus client (its
//!   `--prometheus.http-client` settings); only a 200 counts (Prometheus needs
//!   `--web.enable-lifecycle`).
//! - `signal`: as Thanos's `PIDReloader`: read `/api/v1/status/runtimeinfo`, send SIGHUP to
//!   the first process (lowest PID) whose executable name (`/proc/<pid>/comm`, what Thanos's
//!   go-ps reads) is `--reloader.process-name`, then poll the runtime info every second until
//!   it shows a successful load newer than before. The sidecar must share Prometheus's PID
//!   namespace (`shareProcessNamespace: true` in Kubernetes) and be allowed to signal it.
//!
//! Both are bounded by the deadline of the apply they belong to (the watch interval).

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::prometheus::PrometheusClient;

/// Where Linux lists processes.
const PROC: &str = "/proc";
/// How often the signal method polls Prometheus's runtime info after SIGHUP (Thanos: 1s).
const CONFIRM_POLL: Duration = Duration::from_secs(1);

/// The reload action of one `--reloader.method`.
#[derive(Debug, Clone)]
pub enum Trigger {
    Http {
        client: PrometheusClient,
    },
    Signal {
        client: PrometheusClient,
        process_name: String,
    },
}

impl Trigger {
    /// `--reloader.method`'s name, for `thanos_sidecar_reloader_info` and logs.
    pub fn method(&self) -> &'static str {
        match self {
            Trigger::Http { .. } => "http",
            Trigger::Signal { .. } => "signal",
        }
    }

    /// Reloads Prometheus once; fails if it did not confirm the reload by `deadline`.
    pub async fn reload(&self, deadline: Instant) -> Result<()> {
        match self {
            Trigger::Http { client } => before(deadline, client.reload()).await?,
            Trigger::Signal {
                client,
                process_name,
            } => signal_reload(client, process_name, deadline).await,
        }
    }
}

/// `future`'s result, or an error once `deadline` has passed.
async fn before<T>(deadline: Instant, future: impl Future<Output = T>) -> Result<T> {
    tokio::time::timeout_at(deadline, future)
        .await
        .map_err(|_| Error::ReloadFailed {
            reason: "no answer from prometheus within the watch interval".to_owned(),
        })
}

async fn signal_reload(
    client: &PrometheusClient,
    process_name: &str,
    deadline: Instant,
) -> Result<()> {
    let previous = before(deadline, client.config_reload_status()).await??;
    let name = process_name.to_owned();
    let pid = tokio::task::spawn_blocking(move || find_process(Path::new(PROC), &name))
        .await
        .map_err(|err| Error::ReloadFailed {
            reason: format!("list processes: {err}"),
        })??
        .ok_or_else(|| Error::ProcessNotFound {
            name: process_name.to_owned(),
        })?;
    send_sighup(pid)?;
    loop {
        let status = before(deadline, client.config_reload_status()).await??;
        if status.success && status.last_config_time > previous.last_config_time {
            return Ok(());
        }
        // The configuration was valid before and is not now: no need to wait further.
        if previous.success && !status.success {
            return Err(Error::ReloadFailed {
                reason: format!("configuration reload has failed (SIGHUP sent to pid {pid})"),
            });
        }
        if Instant::now() + CONFIRM_POLL > deadline {
            return Err(Error::ReloadFailed {
                reason: format!(
                    "configuration reload {} within the watch interval after SIGHUP to pid {pid} (last successful reload at {})",
                    if status.success { "not seen" } else { "failed" },
                    status.last_config_time.to_rfc3339()
                ),
            });
        }
        tokio::time::sleep(CONFIRM_POLL).await;
    }
}

/// The lowest PID under `proc_dir` whose executable name is `name`. Processes that end while
/// being looked at are skipped.
pub fn find_process(proc_dir: &Path, name: &str) -> Result<Option<i32>> {
    let entries = std::fs::read_dir(proc_dir)
        .map_err(|source| Error::io("list processes in", proc_dir, source))?;
    let mut pids: Vec<i32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid| *pid > 0)
        .collect();
    pids.sort_unstable();
    Ok(pids.into_iter().find(|pid| {
        std::fs::read(proc_dir.join(pid.to_string()).join("comm"))
            .is_ok_and(|comm| comm.strip_suffix(b"\n").unwrap_or(&comm) == name.as_bytes())
    }))
}

/// Sends SIGHUP to `pid`, which must be positive: 0 and negative numbers would signal
/// process groups (-1: every process we may signal).
pub fn send_sighup(pid: i32) -> Result<()> {
    use rustix::process::{Pid, Signal, kill_process};
    let invalid = || Error::ReloadFailed {
        reason: format!("invalid pid {pid}"),
    };
    if pid <= 0 {
        return Err(invalid());
    }
    let target = Pid::from_raw(pid).ok_or_else(invalid)?;
    kill_process(target, Signal::HUP).map_err(|errno| Error::Signal {
        pid,
        source: errno.into(),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Command;

    use super::*;

    #[test]
    fn finds_a_process_by_its_executable_name() {
        let comm = std::fs::read_to_string("/proc/self/comm").expect("own comm");
        let own = i32::try_from(std::process::id()).expect("pid fits i32");
        let found = find_process(Path::new(PROC), comm.trim_end())
            .expect("list")
            .expect("some process with our name");
        assert!(
            found <= own,
            "the lowest pid with the name: {found} vs {own}"
        );
        assert_eq!(
            find_process(Path::new(PROC), "no-such-process-name").expect("list"),
            None
        );
    }

    #[test]
    fn scans_a_proc_like_directory_in_pid_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (pid, comm) in [
            ("12", "prometheus\n"),
            ("3", "sh\n"),
            ("40", "prometheus\n"),
        ] {
            std::fs::create_dir(dir.path().join(pid)).expect("pid dir");
            std::fs::write(dir.path().join(pid).join("comm"), comm).expect("comm");
        }
        std::fs::create_dir(dir.path().join("self")).expect("non-numeric entry");
        std::fs::create_dir(dir.path().join("7")).expect("pid dir without comm");
        assert_eq!(
            find_process(dir.path(), "prometheus").expect("scan"),
            Some(12)
        );
        assert_eq!(find_process(dir.path(), "prom").expect("scan"), None);
        assert!(find_process(&dir.path().join("missing"), "x").is_err());
    }

    #[test]
    fn sighup_reaches_the_process() {
        let mut child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = i32::try_from(child.id()).expect("pid fits i32");
        send_sighup(pid).expect("signal");
        let status = child.wait().expect("wait");
        assert_eq!(status.signal(), Some(1), "killed by SIGHUP: {status}");
    }

    #[test]
    fn never_signals_process_groups() {
        for pid in [0, -1, -12] {
            assert!(
                matches!(send_sighup(pid), Err(Error::ReloadFailed { .. })),
                "{pid}"
            );
        }
    }
}
