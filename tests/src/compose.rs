//! Docker Compose for end-to-end tests: whether Docker and compose can be used here, the images
//! a compose test runs, and a compose project that is torn down when dropped.
//!
//! No registry is reachable, so every image is built from local parts:
//! - Strata's images by `docker/build-images.sh` (the same Dockerfile as `make images`) from the
//!   binaries of the running test's own build (`target/<profile>/`), tagged uniquely per test
//!   run so that parallel runs from other checkouts on the same Docker engine never share them;
//! - `hostfs`: an empty image (a root skeleton, `/etc/passwd`, `/tmp`) in which this machine's
//!   `/usr` is mounted read-only, to run Debian's Prometheus 2.42 and Python (moto, the load
//!   balancer) without copying them.
//!
//! Containers reach each other on their compose networks; the test reaches them only through
//! ports published on 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::Command;

use crate::bins::target_profile_dir;

/// The workspace root (the parent of the `tests` crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Runs `program args` and returns its stdout, failing with its stderr.
async fn run(program: &str, args: &[String], envs: &[(String, String)]) -> anyhow::Result<String> {
    let output = Command::new(program)
        .args(args)
        .envs(envs.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("run {program} {}", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "{program} {} failed ({}): {}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout),
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| (*arg).to_owned()).collect()
}

/// How compose is invoked here: `docker compose` (the plugin) or `docker-compose`.
#[derive(Debug, Clone)]
pub struct ComposeCommand {
    program: String,
    prefix: Vec<String>,
}

/// Docker with a running engine and compose, or the reason the compose tests cannot run here.
pub async fn docker_compose() -> Result<ComposeCommand, String> {
    let info = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdin(Stdio::null())
        .output()
        .await;
    match info {
        Err(err) => return Err(format!("the docker CLI cannot be run ({err})")),
        Ok(output) if !output.status.success() => {
            return Err(format!(
                "the Docker engine is not reachable: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(_) => {}
    }
    let works = |program: &'static str, args: &'static [&'static str]| async move {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|status| status.success())
    };
    if works("docker", &["compose", "version"]).await {
        return Ok(ComposeCommand {
            program: "docker".to_owned(),
            prefix: vec!["compose".to_owned()],
        });
    }
    if works("docker-compose", &["version"]).await {
        return Ok(ComposeCommand {
            program: "docker-compose".to_owned(),
            prefix: Vec::new(),
        });
    }
    Err("neither `docker compose` nor `docker-compose` is installed".to_owned())
}

/// A name unique to this test run, for image tags and compose projects.
pub fn run_id() -> String {
    use rand::Rng;
    format!(
        "{}{:04x}",
        std::process::id(),
        rand::rng().random_range(0..0x1_0000)
    )
}

/// Images built for one test run; their tags are removed when dropped.
#[derive(Debug)]
pub struct Images {
    /// `<prefix><component>:<tag>` names Strata's images.
    pub prefix: String,
    pub tag: String,
    /// The `hostfs` image.
    pub hostfs: String,
    /// Tags to remove on drop.
    owned: Vec<String>,
}

impl Images {
    /// Builds Strata's `components` from this build's binaries and the `hostfs` image.
    pub async fn build(components: &[&str]) -> anyhow::Result<Self> {
        let tag = format!("e2e-{}", run_id());
        let prefix = "strata-e2e/".to_owned();
        let mut images = Images {
            prefix: prefix.clone(),
            tag: tag.clone(),
            hostfs: format!("{prefix}hostfs:{tag}"),
            owned: Vec::new(),
        };
        let bin_dir = target_profile_dir()?;
        let script = workspace_root().join("docker/build-images.sh");
        let mut args = strings(&[
            "--bin-dir",
            &bin_dir.display().to_string(),
            "--prefix",
            &prefix,
            "--tag",
            &tag,
            "--no-latest",
        ]);
        args.extend(strings(components));
        // Contexts go to a temporary directory: the test may run from a read-only checkout.
        let contexts = tempfile::tempdir().context("create image build directory")?;
        let envs = [(
            "STRATA_IMAGE_CONTEXT_DIR".to_owned(),
            contexts.path().display().to_string(),
        )];
        images.owned.extend(
            components
                .iter()
                .map(|component| format!("{prefix}{component}:{tag}")),
        );
        run(&script.display().to_string(), &args, &envs).await?;
        images.build_hostfs().await?;
        Ok(images)
    }

    /// Uses images built elsewhere (`make images`): `<prefix><component>:<tag>`; only the
    /// `hostfs` image is built.
    pub async fn existing(prefix: &str, tag: &str) -> anyhow::Result<Self> {
        let mut images = Images {
            prefix: prefix.to_owned(),
            tag: tag.to_owned(),
            hostfs: format!("strata-e2e/hostfs:e2e-{}", run_id()),
            owned: Vec::new(),
        };
        images.build_hostfs().await?;
        Ok(images)
    }

    async fn build_hostfs(&mut self) -> anyhow::Result<()> {
        let context = tempfile::tempdir().context("create hostfs build directory")?;
        let rootfs = context.path().join("rootfs");
        for dir in ["etc", "tmp", "usr", "var/tmp"] {
            std::fs::create_dir_all(rootfs.join(dir))?;
        }
        // Debian's merged /usr: the top-level directories are links into it.
        for link in ["bin", "lib", "lib64", "sbin"] {
            std::os::unix::fs::symlink(format!("usr/{link}"), rootfs.join(link))?;
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/nonexistent\nnobody:x:65534:65534:nobody:/nonexistent:/nonexistent\n",
        )?;
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
        std::fs::write(
            context.path().join("Dockerfile"),
            "FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/usr/bin:/bin\n",
        )?;
        self.owned.push(self.hostfs.clone());
        run(
            "docker",
            &strings(&[
                "build",
                "-q",
                "-t",
                &self.hostfs,
                &context.path().display().to_string(),
            ]),
            &[],
        )
        .await?;
        Ok(())
    }

    /// `<prefix><component>:<tag>`.
    pub fn strata(&self, component: &str) -> String {
        format!("{}{component}:{}", self.prefix, self.tag)
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        if self.owned.is_empty() {
            return;
        }
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f"])
            .args(&self.owned)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A compose project: one compose file, a unique project name and the variables it needs.
/// `down` (containers, networks, volumes) runs when it is dropped.
#[derive(Debug)]
pub struct Project {
    command: ComposeCommand,
    file: PathBuf,
    pub name: String,
    envs: Vec<(String, String)>,
}

impl Project {
    pub fn new(command: ComposeCommand, file: &Path, envs: Vec<(String, String)>) -> Self {
        Project {
            command,
            file: file.to_path_buf(),
            name: format!("strata-e2e-{}", run_id()),
            envs,
        }
    }

    fn args(&self, args: &[&str]) -> Vec<String> {
        let mut all = self.command.prefix.clone();
        all.extend(strings(&[
            "-f",
            &self.file.display().to_string(),
            "-p",
            &self.name,
        ]));
        all.extend(strings(args));
        all
    }

    /// Runs a compose subcommand (`up -d s3`, `kill store-0`, ...) and returns its stdout.
    pub async fn compose(&self, args: &[&str]) -> anyhow::Result<String> {
        run(&self.command.program, &self.args(args), &self.envs).await
    }

    /// The container of `service`.
    pub async fn container(&self, service: &str) -> anyhow::Result<String> {
        let id = self.compose(&["ps", "-q", service]).await?;
        let id = id.trim();
        if id.is_empty() {
            bail!("service {service} has no container");
        }
        Ok(id.to_owned())
    }

    /// The 127.0.0.1 address where `service`'s container `port` is published.
    pub async fn published(&self, service: &str, port: u16) -> anyhow::Result<SocketAddr> {
        let output = self.compose(&["port", service, &port.to_string()]).await?;
        output
            .trim()
            .parse()
            .with_context(|| format!("compose port {service} {port} printed {output:?}"))
    }

    /// The Docker name of the project's network `network`, found by compose's labels (compose
    /// v1 and v2 spell project prefixes differently).
    pub async fn network(&self, network: &str) -> anyhow::Result<String> {
        let names = run(
            "docker",
            &strings(&[
                "network",
                "ls",
                "--format",
                "{{.Name}}",
                "--filter",
                &format!("label=com.docker.compose.project={}", self.name),
                "--filter",
                &format!("label=com.docker.compose.network={network}"),
            ]),
            &[],
        )
        .await?;
        match names.lines().next() {
            Some(name) => Ok(name.trim().to_owned()),
            None => bail!("project {} has no network {network}", self.name),
        }
    }

    /// Cuts `service` off `network` (`docker network disconnect`).
    pub async fn disconnect(&self, network: &str, service: &str) -> anyhow::Result<()> {
        let container = self.container(service).await?;
        run(
            "docker",
            &strings(&[
                "network",
                "disconnect",
                &self.network(network).await?,
                &container,
            ]),
            &[],
        )
        .await?;
        Ok(())
    }

    /// Joins `service` to `network` again, under its service name.
    pub async fn connect(&self, network: &str, service: &str) -> anyhow::Result<()> {
        let container = self.container(service).await?;
        run(
            "docker",
            &strings(&[
                "network",
                "connect",
                "--alias",
                service,
                &self.network(network).await?,
                &container,
            ]),
            &[],
        )
        .await?;
        Ok(())
    }

    /// When `service`'s container last started (Docker's RFC 3339 timestamp).
    pub async fn started_at(&self, service: &str) -> anyhow::Result<String> {
        let container = self.container(service).await?;
        Ok(run(
            "docker",
            &strings(&["inspect", "-f", "{{.State.StartedAt}}", &container]),
            &[],
        )
        .await?
        .trim()
        .to_owned())
    }

    /// The last lines of every container's logs, for failure messages.
    pub async fn logs_tail(&self, lines: usize) -> String {
        self.compose(&["logs", "--no-color", "--tail", &lines.to_string()])
            .await
            .unwrap_or_else(|err| format!("(no logs: {err})"))
    }

    /// Waits until `url` answers 200.
    pub async fn wait_http_ok(url: &str, limit: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(response) = client.get(url).timeout(Duration::from_secs(2)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{url} did not answer 200 within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if std::env::var_os("STRATA_E2E_KEEP").is_some() {
            eprintln!(
                "STRATA_E2E_KEEP is set: compose project {} left running",
                self.name
            );
            return;
        }
        let _ = std::process::Command::new(&self.command.program)
            .args(self.args(&["down", "-v", "--remove-orphans", "-t", "5"]))
            .envs(self.envs.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
