//! A real S3 server for tests: `moto_server` started on a free 127.0.0.1 port with
//! authentication on, or any S3 endpoint named by environment variables.
//!
//! Moto checks SigV4 signatures and IAM policies once `INITIAL_NO_AUTH_ACTION_COUNT` actions
//! have been served (it counts only requests that go through its authorisation check, not the
//! TCP readiness probe). We start it with a count of 4 and spend exactly those four unsigned
//! actions on setup: IAM CreateUser, PutUserPolicy (allow everything), CreateAccessKey, and S3
//! CreateBucket. Every later request must be signed with the access key created there; a wrong
//! key id gets 403 InvalidAccessKeyId and a wrong secret 403 SignatureDoesNotMatch, as on AWS.
//! (Moto routes an unsigned request by the credential scope in its Authorization header, so
//! the setup requests carry a dummy one naming `iam` or `s3`.)
//!
//! Moto bug worked around here (getmoto/moto#5948, open): moto recomputes the signature over
//! werkzeug's `request.url`, in which `%2F` in the query string has been decoded to `/`, while
//! SigV4 clients (object_store, boto3, the AWS CLI) sign the encoded form. So every ListObjectsV2
//! with a prefix or delimiter fails with SignatureDoesNotMatch. We start moto's own server
//! entry point through the Python interpreter of the installed `moto_server`, with a few lines
//! that re-encode the query string canonically (RFC 3986, as AWS does) before moto compares
//! signatures. Signatures are still checked: wrong keys and secrets are still refused.
//!
//! With `STRATA_TEST_S3_ENDPOINT`, `STRATA_TEST_S3_BUCKET`, `STRATA_TEST_S3_ACCESS_KEY` and
//! `STRATA_TEST_S3_SECRET_KEY` set (optionally `STRATA_TEST_S3_REGION`,
//! `STRATA_TEST_S3_INSECURE=true`), that endpoint is used instead (garage, MinIO, AWS) and no
//! process is started. If neither is possible the harness fails loudly: a skipped S3 test
//! would hide a broken integration.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Unsigned actions moto serves before it starts checking signatures (see the module header).
const SETUP_ACTIONS: u32 = 4;
const MOTO_USER: &str = "strata-test";
const DEFAULT_BUCKET: &str = "strata-test";

/// A running (or externally provided) S3 endpoint with a bucket and working credentials.
pub struct S3Server {
    /// host:port, no scheme (Thanos's `endpoint`).
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    /// Plain HTTP.
    pub insecure: bool,
    child: Option<Child>,
    log_path: Option<PathBuf>,
    _log_dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for S3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Server")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<secret>")
            .field("moto", &self.child.is_some())
            .finish()
    }
}

impl S3Server {
    /// The endpoint from `STRATA_TEST_S3_*` if set, else a fresh moto server.
    pub async fn start() -> Result<S3Server> {
        match Self::from_env()? {
            Some(server) => Ok(server),
            None => Self::start_moto().await,
        }
    }

    /// Whether this is a moto server started by the harness (tests that rely on moto-only
    /// behaviour, such as its IAM API, check this).
    pub fn is_moto(&self) -> bool {
        self.child.is_some()
    }

    fn from_env() -> Result<Option<S3Server>> {
        let Ok(endpoint) = std::env::var("STRATA_TEST_S3_ENDPOINT") else {
            return Ok(None);
        };
        let required = |name: &str| {
            std::env::var(name)
                .with_context(|| format!("STRATA_TEST_S3_ENDPOINT is set, so {name} must be too"))
        };
        let insecure = std::env::var("STRATA_TEST_S3_INSECURE")
            .map(|value| matches!(value.as_str(), "1" | "true" | "yes"))
            .unwrap_or(false);
        Ok(Some(S3Server {
            endpoint,
            bucket: required("STRATA_TEST_S3_BUCKET")?,
            access_key: required("STRATA_TEST_S3_ACCESS_KEY")?,
            secret_key: required("STRATA_TEST_S3_SECRET_KEY")?,
            region: std::env::var("STRATA_TEST_S3_REGION").unwrap_or_default(),
            insecure,
            child: None,
            log_path: None,
            _log_dir: None,
        }))
    }

    /// Starts moto_server with authentication on, creates a user, key and bucket.
    pub async fn start_moto() -> Result<S3Server> {
        let log_dir = tempfile::tempdir().context("create moto log directory")?;
        let log_path = log_dir.path().join("moto.log");
        let log = std::fs::File::create(&log_path).context("create moto log file")?;
        let log_err = log.try_clone().context("clone moto log file")?;
        let python = moto_python()?;
        let launcher = log_dir.path().join("moto_server_strata.py");
        std::fs::write(&launcher, MOTO_LAUNCHER).context("write moto launcher")?;
        // Port 0: the launcher writes the port the server bound to `port_file`.
        let port_file = log_dir.path().join("port");
        let child = Command::new(&python)
            .arg(&launcher)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", SETUP_ACTIONS.to_string())
            .env("STRATA_MOTO_PORT_FILE", &port_file)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn();
        let child =
            child.with_context(|| format!("start moto_server with {}", python.display()))?;
        let mut server = S3Server {
            endpoint: String::new(),
            bucket: DEFAULT_BUCKET.to_string(),
            access_key: String::new(),
            secret_key: String::new(),
            region: "us-east-1".to_string(),
            insecure: true,
            child: Some(child),
            log_path: Some(log_path),
            _log_dir: Some(log_dir),
        };
        let setup = async {
            server
                .wait_until_listening(&port_file, Duration::from_secs(30))
                .await?;
            server.create_user_key_and_bucket().await
        };
        if let Err(error) = setup.await {
            return Err(error.context(format!("moto log:\n{}", server.log_tail())));
        }
        Ok(server)
    }

    /// Sets up the user, key and bucket on a moto server started elsewhere (a container of
    /// the compose e2e test) with [`moto_launcher`] and `INITIAL_NO_AUTH_ACTION_COUNT=4`,
    /// reachable at `endpoint` (host:port). Retries while nothing answers there yet.
    pub async fn attach_moto(endpoint: &str, limit: Duration) -> Result<S3Server> {
        let deadline = Instant::now() + limit;
        // moto's own API (`/moto-api/`) answers without going through its authorisation
        // check, so probing it spends none of the four unsigned setup actions.
        let probe = format!("http://{endpoint}/moto-api/");
        loop {
            let answered = reqwest::Client::new()
                .get(&probe)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if answered {
                break;
            }
            if Instant::now() > deadline {
                bail!("moto at {endpoint} did not answer within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut server = S3Server {
            endpoint: endpoint.to_owned(),
            bucket: DEFAULT_BUCKET.to_string(),
            access_key: String::new(),
            secret_key: String::new(),
            region: "us-east-1".to_string(),
            insecure: true,
            child: None,
            log_path: None,
            _log_dir: None,
        };
        server.create_user_key_and_bucket().await?;
        Ok(server)
    }

    /// Waits for the launcher to report the port it bound in `port_file`.
    async fn wait_until_listening(&mut self, port_file: &Path, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(port) = std::fs::read_to_string(port_file)
                && let Ok(port) = port.trim().parse::<u16>()
            {
                self.endpoint = format!("127.0.0.1:{port}");
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().context("poll moto_server")?
            {
                bail!("moto_server exited during startup with {status}");
            }
            if Instant::now() > deadline {
                bail!("moto_server reported no listening port within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn create_user_key_and_bucket(&mut self) -> Result<()> {
        let client = reqwest::Client::new();
        let base = format!("http://{}/", self.endpoint);
        let unsigned = |service: &str| {
            format!(
                "AWS4-HMAC-SHA256 Credential=SETUP/20240101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
            )
        };
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        let iam_calls: [Vec<(&str, &str)>; 3] = [
            vec![("Action", "CreateUser"), ("UserName", MOTO_USER)],
            vec![
                ("Action", "PutUserPolicy"),
                ("UserName", MOTO_USER),
                ("PolicyName", "allow-all"),
                ("PolicyDocument", policy),
            ],
            vec![("Action", "CreateAccessKey"), ("UserName", MOTO_USER)],
        ];
        let mut last_body = String::new();
        for mut form in iam_calls {
            form.push(("Version", "2010-05-08"));
            let response = client
                .post(&base)
                .header("Authorization", unsigned("iam"))
                .form(&form)
                .send()
                .await
                .with_context(|| format!("moto IAM {}", form[0].1))?;
            let status = response.status();
            last_body = response.text().await.context("read moto IAM response")?;
            if !status.is_success() {
                bail!("moto IAM {} failed with {status}: {last_body}", form[0].1);
            }
        }
        self.access_key = xml_value(&last_body, "AccessKeyId")
            .context("CreateAccessKey response has no AccessKeyId")?;
        self.secret_key = xml_value(&last_body, "SecretAccessKey")
            .context("CreateAccessKey response has no SecretAccessKey")?;

        let response = client
            .put(format!("{base}{}", self.bucket))
            .header("Authorization", unsigned("s3"))
            .send()
            .await
            .context("moto CreateBucket")?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!(
                "moto CreateBucket {} failed with {status}: {body}",
                self.bucket
            );
        }
        Ok(())
    }

    /// objstore.yml for this server's bucket with its working credentials.
    pub fn objstore_yaml(&self) -> String {
        self.objstore_yaml_with("")
    }

    /// objstore.yml with extra lines appended to the `config` section, each a `key: value`
    /// line without indentation (e.g. "part_size: 5242880").
    pub fn objstore_yaml_with(&self, extra_config: &str) -> String {
        self.objstore_yaml_for(&self.access_key, &self.secret_key, extra_config)
    }

    /// objstore.yml for this bucket with the given credentials (for rejection tests).
    pub fn objstore_yaml_for(
        &self,
        access_key: &str,
        secret_key: &str,
        extra_config: &str,
    ) -> String {
        let mut yaml = format!(
            "type: S3\nconfig:\n  bucket: {}\n  endpoint: \"{}\"\n  access_key: \"{}\"\n  secret_key: \"{}\"\n  insecure: {}\n",
            self.bucket, self.endpoint, access_key, secret_key, self.insecure
        );
        if !self.region.is_empty() {
            yaml.push_str(&format!("  region: {}\n", self.region));
        }
        for line in extra_config.lines().filter(|line| !line.trim().is_empty()) {
            yaml.push_str("  ");
            yaml.push_str(line.trim());
            yaml.push('\n');
        }
        yaml
    }

    /// Writes objstore.yml into `dir` and returns its path.
    pub fn write_objstore_yaml(
        &self,
        dir: &std::path::Path,
        extra_config: &str,
    ) -> Result<PathBuf> {
        let path = dir.join("objstore.yml");
        std::fs::write(&path, self.objstore_yaml_with(extra_config))
            .with_context(|| format!("write {}", path.display()))?;
        Ok(path)
    }

    fn log_tail(&self) -> String {
        let Some(path) = &self.log_path else {
            return String::new();
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// moto's server entry point with the workaround of the module header, to run moto elsewhere
/// (`python3 <script> -H 0.0.0.0 -p 5000` in a container) and [`S3Server::attach_moto`] to it.
pub fn moto_launcher() -> &'static str {
    MOTO_LAUNCHER
}

/// moto's server entry point, with the signature check fed a canonically encoded query
/// string (see the module header).
const MOTO_LAUNCHER: &str = r#"
import sys
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import os

import moto.iam.access_control as access_control
import werkzeug.serving
from moto.server import main

# Started with port 0: report the port the server bound (written whole, then renamed).
_make_server = werkzeug.serving.make_server


def _make_server_reporting(*args, **kwargs):
    server = _make_server(*args, **kwargs)
    path = os.environ.get("STRATA_MOTO_PORT_FILE")
    if path:
        with open(path + ".tmp", "w") as out:
            out.write(str(server.socket.getsockname()[1]))
        os.replace(path + ".tmp", path)
    return server


werkzeug.serving.make_server = _make_server_reporting

_create_aws_request = access_control.IAMRequestBase._create_aws_request


def _canonical(component):
    return quote(unquote(component), safe="-_.~")


def _create_aws_request_encoded(self):
    request = _create_aws_request(self)
    parts = urlsplit(request.url)
    if parts.query:
        pairs = (pair.partition("=") for pair in parts.query.split("&"))
        query = "&".join(_canonical(k) + "=" + _canonical(v) for k, _, v in pairs)
        request.url = urlunsplit(parts._replace(query=query))
    return request


access_control.IAMRequestBase._create_aws_request = _create_aws_request_encoded
sys.exit(main())
"#;

const INSTALL_HINT: &str = "install it with `pip install 'moto[server]'`; the S3 tests need a real \
     S3 server and are not skipped without one (or point STRATA_TEST_S3_* at another S3 endpoint)";

/// The Python interpreter that runs the installed `moto_server`: the one named in its `#!`
/// line, or `python3` when that is a wrapper (pyenv shims, `env`).
pub fn moto_python() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let script = std::env::split_paths(&path)
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("moto_server is not installed (not on PATH): {INSTALL_HINT}"))?;
    let first_line = std::fs::read_to_string(&script)
        .ok()
        .and_then(|text| text.lines().next().map(str::to_string))
        .unwrap_or_default();
    let python = first_line
        .strip_prefix("#!")
        .map(str::trim)
        .filter(|interpreter| interpreter.contains("python") && !interpreter.contains(' '))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let importable = Command::new(&python)
        .args(["-c", "import moto.server, moto.iam.access_control"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false);
    if !importable {
        bail!(
            "found {} but {} cannot import moto.server: {INSTALL_HINT}",
            script.display(),
            python.display()
        );
    }
    Ok(python)
}

/// The text of the first `<tag>...</tag>` in `xml`.
fn xml_value(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml.get(start..)?.find(&close)?;
    xml.get(start..end).map(str::to_string)
}
