//! The real Strata service binaries in end-to-end tests: locate them next to the test
//! executable (`target/<profile>/`), start one with arguments, wait for `/-/ready`, and stop it
//! with SIGTERM, returning its exit status.
//!
//! Services are started on `127.0.0.1:0` and the harness reads the addresses they bound from
//! their "listening for HTTP" / "listening for gRPC" log lines. Picking a free port in the test
//! and handing it to a process started later races with every other test running in parallel
//! (another process can take the port in between); letting the kernel choose at bind time
//! cannot.
//!
//! `cargo nextest run --workspace` builds every binary before running tests; running only this
//! crate (`-p strata-tests`) does not, and [`binary`] then says which command builds them.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// One of the Strata services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Sidecar,
    Querier,
    StoreGateway,
    Compactor,
    Ruler,
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::Sidecar,
        Service::Querier,
        Service::StoreGateway,
        Service::Compactor,
        Service::Ruler,
    ];

    /// The binary's file name.
    pub fn binary_name(self) -> &'static str {
        match self {
            Service::Sidecar => "strata-sidecar",
            Service::Querier => "strata-querier",
            Service::StoreGateway => "strata-store-gateway",
            Service::Compactor => "strata-compactor",
            Service::Ruler => "strata-ruler",
        }
    }

    /// Thanos's subcommand word for the same component.
    pub fn subcommand(self) -> &'static str {
        match self {
            Service::Sidecar => "sidecar",
            Service::Querier => "query",
            Service::StoreGateway => "store",
            Service::Compactor => "compact",
            Service::Ruler => "rule",
        }
    }

    /// Whether the component serves gRPC (`--grpc-address`); the compactor does not.
    pub fn has_grpc(self) -> bool {
        self != Service::Compactor
    }

    /// Arguments it needs to start and stay up (the compactor runs once and exits without
    /// `--wait`).
    pub fn required_args(self) -> &'static [&'static str] {
        match self {
            Service::Compactor => &["--wait"],
            // The ruler refuses to start without a query API (as Thanos's); nothing listens
            // there, which only matters to rules, and by default there are none.
            Service::Ruler => &["--query=127.0.0.1:1"],
            _ => &[],
        }
    }
}

/// The target directory of the running test (`target/<profile>/`); test executables live in
/// its `deps/` subdirectory.
pub fn target_profile_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locate the test executable")?;
    let deps = exe
        .parent()
        .context("test executable has no parent directory")?;
    let profile = if deps.file_name().is_some_and(|name| name == "deps") {
        deps.parent()
    } else {
        Some(deps)
    };
    profile
        .map(Path::to_path_buf)
        .context("test executable is not inside target/<profile>/deps")
}

/// Path of a Strata binary built into the same target directory as the running test.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = target_profile_dir()?.join(name);
    if !path.is_file() {
        bail!(
            "{} not found: build the binaries first (`cargo build --workspace --bins`, or run the tests with `cargo nextest run --workspace`)",
            path.display()
        );
    }
    Ok(path)
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for programs that cannot bind port 0
/// and report what they bound. It is taken at random from below the kernel's ephemeral range
/// (where outgoing connections get their local ports, and where `bind(0)` hands out ports to
/// every other test), so another process is unlikely to take it before the caller binds it.
/// Callers must still handle "address in use" (retry with another port) where they can.
pub fn free_port() -> anyhow::Result<u16> {
    use rand::Rng;
    let mut rng = rand::rng();
    for _ in 0..200 {
        let port: u16 = rng.random_range(PORT_RANGE);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").context("bind a free port")?;
    Ok(listener.local_addr().context("read the free port")?.port())
}

/// Ports [`free_port`] chooses from: above the registered services most machines run, below
/// Linux's default ephemeral range (32768-60999).
const PORT_RANGE: std::ops::Range<u16> = 20_000..32_000;

/// The address on a service's "listening for <server>" log line (logfmt `address=...` or JSON
/// `"address":"..."`), if `line` is one.
pub fn listening_address(line: &str, server: &str) -> Option<SocketAddr> {
    let message = format!("listening for {server}");
    if !line.contains(&message) {
        return None;
    }
    let value = if let Some((_, rest)) = line.split_once("\"address\":\"") {
        rest.split('"').next()?
    } else {
        let (_, rest) = line.split_once(" address=")?;
        rest.split_whitespace().next()?
    };
    value.parse().ok()
}

/// A running Strata service process. Killed on drop if still running.
#[derive(Debug)]
pub struct StrataProcess {
    service: Service,
    child: Child,
    pub http_address: SocketAddr,
    pub grpc_address: Option<SocketAddr>,
    log_dir: tempfile::TempDir,
}

impl StrataProcess {
    /// Starts `service` with Thanos's subcommand word if `with_subcommand` and `args`, its
    /// HTTP (and gRPC) server on `127.0.0.1:0`, and waits until it has logged the addresses it
    /// bound (not for readiness).
    pub async fn spawn(
        service: Service,
        with_subcommand: bool,
        args: &[&str],
    ) -> anyhow::Result<Self> {
        Self::spawn_with_env(service, with_subcommand, args, &[]).await
    }

    /// [`StrataProcess::spawn`] with environment variables `env` set for the process.
    pub async fn spawn_with_env(
        service: Service,
        with_subcommand: bool,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let grpc_address = service.has_grpc().then_some(any_port);
        let mut process =
            Self::spawn_at_with_env(service, with_subcommand, any_port, grpc_address, args, env)?;
        process.discover_addresses(Duration::from_secs(30)).await?;
        Ok(process)
    }

    /// Reads the bound addresses from the log lines of a process started on port 0.
    async fn discover_addresses(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let logs = self.logs();
            let find = |server: &str| {
                logs.lines()
                    .find_map(|line| listening_address(line, server))
            };
            let http = find("HTTP");
            let grpc = find("gRPC");
            if let Some(http) = http
                && (self.grpc_address.is_none() || grpc.is_some())
            {
                self.http_address = http;
                self.grpc_address = self.grpc_address.and(grpc);
                return Ok(());
            }
            if let Some(status) = self.child.try_wait().context("poll child")? {
                bail!(
                    "{} exited with {status} before it was listening; logs:\n{logs}",
                    self.service.binary_name(),
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} logged no listening address within {timeout:?}; logs:\n{logs}",
                    self.service.binary_name(),
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Like [`StrataProcess::spawn`], on the given addresses (`grpc_address` is ignored for
    /// the compactor), without waiting for anything. With port 0 the fields keep port 0: use
    /// [`StrataProcess::spawn`] to learn the bound ports.
    pub fn spawn_at(
        service: Service,
        with_subcommand: bool,
        http_address: SocketAddr,
        grpc_address: Option<SocketAddr>,
        args: &[&str],
    ) -> anyhow::Result<Self> {
        Self::spawn_at_with_env(
            service,
            with_subcommand,
            http_address,
            grpc_address,
            args,
            &[],
        )
    }

    fn spawn_at_with_env(
        service: Service,
        with_subcommand: bool,
        http_address: SocketAddr,
        grpc_address: Option<SocketAddr>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let path = binary(service.binary_name())?;
        let grpc_address = grpc_address.filter(|_| service.has_grpc());
        let log_dir = tempfile::tempdir().context("create log dir")?;
        let log_path = log_dir.path().join("stderr.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("create {}", log_path.display()))?;
        let mut command = Command::new(&path);
        if with_subcommand {
            command.arg(service.subcommand());
        }
        command.arg(format!("--http-address={http_address}"));
        if let Some(grpc_address) = grpc_address {
            command.arg(format!("--grpc-address={grpc_address}"));
        }
        // Short grace periods: tests measure that shutdown is prompt, not that it waits.
        command.arg("--http-grace-period=5s");
        if service.has_grpc() {
            command.arg("--grpc-grace-period=5s");
        }
        command.args(service.required_args()).args(args);
        if matches!(service, Service::StoreGateway | Service::Compactor) {
            // A bucket to serve unless the test passes `--objstore.config`: its working
            // directory (a flag on the command line wins over the environment).
            command.env(
                "STRATA_OBJSTORE_CONFIG",
                "type: FILESYSTEM\nconfig:\n  directory: .\n",
            );
        }
        let child = command
            .envs(env.iter().copied())
            .current_dir(log_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", path.display()))?;
        Ok(Self {
            service,
            child,
            http_address,
            grpc_address,
            log_dir,
        })
    }

    /// Starts `service` and waits until `/-/ready` answers 200.
    pub async fn start(
        service: Service,
        with_subcommand: bool,
        args: &[&str],
    ) -> anyhow::Result<Self> {
        Self::start_with_env(service, with_subcommand, args, &[]).await
    }

    /// [`StrataProcess::start`] with environment variables `env` set for the process.
    pub async fn start_with_env(
        service: Service,
        with_subcommand: bool,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut process = Self::spawn_with_env(service, with_subcommand, args, env).await?;
        process.wait_ready(Duration::from_secs(30)).await?;
        Ok(process)
    }

    pub fn service(&self) -> Service {
        self.service
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://<http address>`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_address)
    }

    /// What the process wrote to stderr so far (its logs).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log_dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Polls `/-/ready` until it answers 200, the process exits, or `timeout` passes.
    /// Waits up to `timeout` for the process to exit on its own; its exit status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().context("poll child")? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!(
                    "{} still running after {timeout:?}; logs:\n{}",
                    self.service.binary_name(),
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let url = format!("{}/-/ready", self.http_url());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().context("poll child")? {
                bail!(
                    "{} exited with {status} before it was ready; logs:\n{}",
                    self.service.binary_name(),
                    self.logs()
                );
            }
            if let Ok(response) = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                && response.status() == reqwest::StatusCode::OK
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready after {timeout:?}; logs:\n{}",
                    self.service.binary_name(),
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits at most `timeout` for the exit; kills it if it does not exit.
    pub async fn stop(mut self, timeout: Duration) -> anyhow::Result<(ExitStatus, Duration)> {
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("run kill -TERM")?;
        if !status.success() {
            bail!("kill -TERM {} failed: {status}", self.child.id());
        }
        loop {
            if let Some(status) = self.child.try_wait().context("wait for child")? {
                return Ok((status, started.elapsed()));
            }
            if started.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!(
                    "{} did not exit within {timeout:?} of SIGTERM; logs:\n{}",
                    self.service.binary_name(),
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for StrataProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a Strata binary to completion with `args` (e.g. `--help`) and returns its exit status,
/// stdout and stderr.
pub fn run_to_completion(
    name: &str,
    args: &[&str],
) -> anyhow::Result<(ExitStatus, String, String)> {
    let output = Command::new(binary(name)?)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {name}"))?;
    Ok((
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}
