//! The one shutdown tree of a Strata process: a root [`CancellationToken`] plus a
//! [`TaskTracker`]. Every long-lived task is spawned through [`Shutdown::spawn`] with a name
//! and a child token; SIGTERM or SIGINT cancels the root, the servers stop accepting and drain
//! within their grace periods, and [`Shutdown::wait`] returns once every task has finished.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio_util::task::TaskTracker;

/// Re-exported so that crates holding tokens need no direct `tokio-util` dependency.
pub use tokio_util::sync::CancellationToken;

/// The root of a process's cancellation tree and the tracker of its tasks. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    root: CancellationToken,
    tracker: TaskTracker,
    /// The first task failure, which makes the process exit non-zero.
    failure: Arc<OnceLock<TaskFailure>>,
}

/// A named task that ended with an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    pub task: &'static str,
    pub error: String,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// The root token: cancelled when the process must stop.
    pub fn token(&self) -> &CancellationToken {
        &self.root
    }

    /// A token cancelled with the root, which its holder may also cancel on its own.
    pub fn child_token(&self) -> CancellationToken {
        self.root.child_token()
    }

    /// Starts the shutdown of everything.
    pub fn cancel(&self) {
        self.root.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.root.is_cancelled()
    }

    /// Resolves once shutdown has begun.
    pub async fn cancelled(&self) {
        self.root.cancelled().await;
    }

    /// Spawns a tracked, named task that gets a child token. A task that fails cancels the
    /// whole tree: a service with a dead component must not keep answering as if healthy.
    pub fn spawn<F, Fut, E>(&self, name: &'static str, task: F) -> tokio::task::JoinHandle<()>
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::error::Error + Send + 'static,
    {
        let root = self.root.clone();
        let failure = Arc::clone(&self.failure);
        let future = task(self.root.child_token());
        self.tracker.spawn(async move {
            tracing::debug!(task = name, "task started");
            match future.await {
                Ok(()) => tracing::debug!(task = name, "task finished"),
                Err(err) => {
                    let error = crate::error::error_chain(&err);
                    tracing::error!(task = name, error = %error, "task failed; shutting down");
                    let _ = failure.set(TaskFailure { task: name, error });
                    root.cancel();
                }
            }
        })
    }

    /// The first task failure, if any task failed.
    pub fn failure(&self) -> Option<&TaskFailure> {
        self.failure.get()
    }

    /// Cancels the root on the first SIGTERM or SIGINT (Ctrl-C). Call once, from `main`.
    pub fn cancel_on_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let root = self.root.clone();
        tokio::spawn(async move {
            let received = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
                () = root.cancelled() => return,
            };
            tracing::info!(signal = received, "caught signal; shutting down");
            root.cancel();
        });
        Ok(())
    }

    /// The tail of every service's `run`: waits for shutdown to begin, calls `on_stop` (e.g.
    /// to mark the component unhealthy), drains the tasks for at most `drain_timeout`, and
    /// reports the first task failure as the error of the whole run.
    pub async fn run_until_cancelled(
        &self,
        on_stop: impl FnOnce(),
        drain_timeout: Duration,
    ) -> crate::error::Result<()> {
        self.cancelled().await;
        on_stop();
        self.wait(drain_timeout).await;
        match self.failure() {
            Some(failure) => Err(crate::error::Error::TaskFailed {
                task: failure.task,
                reason: failure.error.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Waits for every spawned task to finish, at most `timeout`. Returns false if some task
    /// was still running when the time ran out.
    pub async fn wait(&self, timeout: Duration) -> bool {
        self.tracker.close();
        let finished = tokio::time::timeout(timeout, self.tracker.wait())
            .await
            .is_ok();
        if !finished {
            tracing::warn!(
                tasks = self.tracker.len(),
                "tasks still running after shutdown timeout"
            );
        }
        finished
    }
}

/// What every service binary does once its flags are parsed: set up logging from `log`, install
/// the signal handlers on a new shutdown tree, run the service, and turn the outcome into the
/// process exit code (errors are logged with their whole chain, naming `component`).
pub async fn run_service<E, Fut>(
    log: &crate::flags::LogFlags,
    component: &str,
    run: impl FnOnce(Shutdown) -> Fut,
) -> std::process::ExitCode
where
    E: std::error::Error,
    Fut: Future<Output = std::result::Result<(), E>>,
{
    use std::process::ExitCode;
    if let Err(err) = crate::telemetry::init_logging(log) {
        eprintln!("error: {err}");
        return ExitCode::FAILURE;
    }
    let shutdown = Shutdown::new();
    if let Err(err) = shutdown.cancel_on_signals() {
        tracing::error!(error = %err, "install signal handlers");
        return ExitCode::FAILURE;
    }
    match run(shutdown).await {
        Ok(()) => {
            tracing::info!("exiting");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!(error = %crate::error::error_chain(&err), "{component} failed");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("boom")]
    struct Boom;

    #[tokio::test]
    async fn cancel_reaches_tasks_and_wait_returns() {
        let shutdown = Shutdown::new();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        shutdown.spawn("waiter", |token| async move {
            token.cancelled().await;
            let _ = sender.send(());
            Ok::<(), Boom>(())
        });
        shutdown.cancel();
        assert!(shutdown.wait(Duration::from_secs(5)).await);
        assert!(receiver.await.is_ok());
    }

    #[tokio::test]
    async fn failed_task_cancels_the_tree() {
        let shutdown = Shutdown::new();
        assert_eq!(shutdown.failure(), None);
        shutdown.spawn("failing", |_token| async { Err(Boom) });
        tokio::time::timeout(Duration::from_secs(5), shutdown.cancelled())
            .await
            .expect("a failing task cancels the root");
        assert!(shutdown.wait(Duration::from_secs(5)).await);
        let failure = shutdown.failure().expect("failure recorded");
        assert_eq!((failure.task, failure.error.as_str()), ("failing", "boom"));
    }

    #[tokio::test]
    async fn wait_times_out_on_a_stuck_task() {
        let shutdown = Shutdown::new();
        shutdown.spawn("stuck", |_token| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<(), Boom>(())
        });
        shutdown.cancel();
        assert!(!shutdown.wait(Duration::from_millis(50)).await);
    }
}
