//! Headless Chromium for browser tests, driven through the DevTools protocol over a pipe
//! (`--remote-debugging-pipe`: JSON messages ended by NUL on file descriptors 3 and 4), so no
//! WebSocket client and no port are needed. A shell maps the child's stdin and stdout onto
//! descriptors 3 and 4 before it execs Chromium.
//!
//! [`Browser::launch`] returns `None` (after printing why) when no Chromium can start, so a
//! test can skip instead of failing on a machine without one; `scripts/install-deps.sh`
//! installs Debian's `chromium`. `STRATA_TEST_CHROMIUM` names another binary.
//!
//! The calls block: use them from a multi-threaded tokio test or a plain thread.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// How long one protocol call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A running headless Chromium with one page attached.
pub struct Browser {
    child: Child,
    commands: ChildStdin,
    messages: Receiver<Value>,
    next_id: u64,
    session: String,
    /// Uncaught exceptions and `console.error` calls seen on the page.
    pub page_errors: Vec<String>,
    _profile: tempfile::TempDir,
    log_path: PathBuf,
}

/// The Chromium binary to use: `STRATA_TEST_CHROMIUM`, else the first of Debian's and the
/// usual names on `PATH`.
fn chromium_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("STRATA_TEST_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser", "google-chrome", "chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

impl Browser {
    /// Starts headless Chromium with a `width` x `height` viewport and attaches to a new page.
    /// `Ok(None)` (with the reason printed) when Chromium is missing or does not start.
    pub fn launch(width: u32, height: u32) -> anyhow::Result<Option<Browser>> {
        let Some(binary) = chromium_binary() else {
            println!(
                "skipping browser test: no chromium on PATH (scripts/install-deps.sh installs it)"
            );
            return Ok(None);
        };
        match Self::start(&binary, width, height) {
            Ok(browser) => Ok(Some(browser)),
            Err(err) => {
                println!(
                    "skipping browser test: {} did not start: {err:#}",
                    binary.display()
                );
                Ok(None)
            }
        }
    }

    fn start(binary: &Path, width: u32, height: u32) -> anyhow::Result<Browser> {
        let profile = tempfile::tempdir().context("create a browser profile directory")?;
        let log_path = profile.path().join("chromium.log");
        let log = std::fs::File::create(&log_path).context("create the browser log")?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec 3<&0 4>&1 0</dev/null 1>/dev/null; exec "$0" "$@""#)
            .arg(binary)
            .args([
                "--headless=new",
                // Tests run as root in containers, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--mute-audio",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={width},{height}"))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("spawn chromium")?;
        let commands = child.stdin.take().context("chromium stdin")?;
        let output = child.stdout.take().context("chromium stdout")?;
        let (sender, messages) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(output);
            let mut buffer = Vec::new();
            loop {
                buffer.clear();
                match reader.read_until(0, &mut buffer) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if buffer.last() == Some(&0) {
                            buffer.pop();
                        }
                        if let Ok(message) = serde_json::from_slice::<Value>(&buffer)
                            && sender.send(message).is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        let mut browser = Browser {
            child,
            commands,
            messages,
            next_id: 0,
            session: String::new(),
            page_errors: Vec::new(),
            _profile: profile,
            log_path,
        };
        let target = browser
            .send(None, "Target.createTarget", json!({"url": "about:blank"}))
            .with_context(|| format!("first protocol call; log:\n{}", browser.log()))?;
        let target_id = target["targetId"]
            .as_str()
            .context("createTarget without targetId")?
            .to_owned();
        let attached = browser.send(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        browser.session = attached["sessionId"]
            .as_str()
            .context("attachToTarget without sessionId")?
            .to_owned();
        browser.call("Page.enable", json!({}))?;
        browser.call("Runtime.enable", json!({}))?;
        browser.set_viewport(width, height)?;
        Ok(browser)
    }

    /// What Chromium wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn send(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message)?;
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .and_then(|()| self.commands.flush())
            .with_context(|| format!("send {method} to chromium"))?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = match self.messages.recv_timeout(left) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => bail!("{method}: no answer in {CALL_TIMEOUT:?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("{method}: chromium closed the pipe; log:\n{}", self.log())
                }
            };
            if message["id"].as_u64() == Some(id) {
                if let Some(error) = message.get("error") {
                    bail!("{method}: {error}");
                }
                return Ok(message["result"].clone());
            }
            self.note_event(&message);
        }
    }

    /// Keeps page errors from events, for diagnostics.
    fn note_event(&mut self, message: &Value) {
        match message["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let details = &message["params"]["exceptionDetails"];
                let text = details["exception"]["description"]
                    .as_str()
                    .or_else(|| details["text"].as_str())
                    .unwrap_or("exception");
                self.page_errors.push(text.to_owned());
            }
            Some("Runtime.consoleAPICalled")
                if message["params"]["type"].as_str() == Some("error") =>
            {
                let args: Vec<String> = message["params"]["args"]
                    .as_array()
                    .map(|args| {
                        args.iter()
                            .map(|arg| {
                                arg["value"]
                                    .as_str()
                                    .map(str::to_owned)
                                    .unwrap_or_else(|| arg["description"].to_string())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                self.page_errors
                    .push(format!("console.error: {}", args.join(" ")));
            }
            _ => {}
        }
    }

    /// One DevTools call on the page.
    pub fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let session = self.session.clone();
        self.send(Some(&session), method, params)
    }

    pub fn set_viewport(&mut self, width: u32, height: u32) -> anyhow::Result<()> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )?;
        Ok(())
    }

    /// Loads `url` and waits until the document and its deferred scripts have run.
    pub fn navigate(&mut self, url: &str) -> anyhow::Result<()> {
        let result = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(error) = result["errorText"].as_str() {
            bail!("navigate to {url}: {error}");
        }
        // The old document may still answer for a moment: wait for the new one.
        self.wait_for(
            &format!(
                "document.readyState === 'complete' && location.href.startsWith({})",
                json!(url.split(['?', '#']).next().unwrap_or(url))
            ),
            Duration::from_secs(20),
        )
    }

    /// Evaluates `expression` (promises awaited) and returns its JSON value.
    pub fn eval(&mut self, expression: &str) -> anyhow::Result<Value> {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(details) = result.get("exceptionDetails") {
            bail!(
                "evaluate {expression}: {}",
                details["exception"]["description"]
                    .as_str()
                    .unwrap_or(&details.to_string())
            );
        }
        Ok(result["result"]["value"].clone())
    }

    /// Polls `expression` until it is truthy; fails after `timeout` with the page's errors.
    pub fn wait_for(&mut self, expression: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self
                .eval(&format!("Boolean({expression})"))
                .unwrap_or(Value::Null);
            if value == Value::Bool(true) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "waited {timeout:?} for `{expression}`; page errors: {:?}",
                    self.page_errors
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `text` into the focused element (input events fire as for a person typing).
    pub fn type_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.call("Input.insertText", json!({"text": text}))?;
        Ok(())
    }

    /// Presses and releases a key: `Enter`, `Tab`, `Escape`, `ArrowDown`, `ArrowUp` (key events
    /// only: no character is inserted).
    pub fn press(&mut self, key: &str) -> anyhow::Result<()> {
        let code = match key {
            "Enter" => 13,
            "Tab" => 9,
            "Escape" => 27,
            "ArrowUp" => 38,
            "ArrowDown" => 40,
            other => bail!("no key code known for {other}"),
        };
        for kind in ["rawKeyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code}),
            )?;
        }
        Ok(())
    }

    pub fn mouse_move(&mut self, x: f64, y: f64) -> anyhow::Result<()> {
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": x, "y": y}),
        )?;
        Ok(())
    }

    pub fn click(&mut self, x: f64, y: f64) -> anyhow::Result<()> {
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )?;
        }
        Ok(())
    }

    /// Clicks the centre of the first element matching the CSS `selector`.
    pub fn click_selector(&mut self, selector: &str) -> anyhow::Result<()> {
        let (x, y) = self.center_of(selector)?;
        self.click(x, y)
    }

    /// The viewport coordinates of the centre of the first element matching `selector`,
    /// scrolled into view.
    pub fn center_of(&mut self, selector: &str) -> anyhow::Result<(f64, f64)> {
        let value = self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); if (!e) return null; e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }})()",
            json!(selector)
        ))?;
        match (value[0].as_f64(), value[1].as_f64()) {
            (Some(x), Some(y)) => Ok((x, y)),
            _ => bail!("no element matches {selector}"),
        }
    }

    /// Saves a PNG of the whole page (up to 4000 px tall) to `path`.
    pub fn screenshot(&mut self, path: &Path) -> anyhow::Result<()> {
        let height = self
            .eval("document.documentElement.scrollHeight")?
            .as_f64()
            .unwrap_or(900.0)
            .min(4000.0);
        let width = self
            .eval("document.documentElement.clientWidth")?
            .as_f64()
            .unwrap_or(1280.0);
        let shot = self.call(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            }),
        )?;
        let data = shot["data"].as_str().context("screenshot without data")?;
        let bytes = decode_base64(data)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes).with_context(|| format!("write {}", path.display()))?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (with padding), as the protocol sends screenshots.
fn decode_base64(text: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut accumulator: u32 = 0;
    let mut bits = 0;
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' => continue,
            other => bail!("invalid base64 byte {other}"),
        };
        accumulator = (accumulator << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((accumulator >> bits) as u8);
            accumulator &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_round_trips_known_values() {
        assert_eq!(decode_base64("aGVsbG8=").ok(), Some(b"hello".to_vec()));
        assert_eq!(decode_base64("AAEC/w==").ok(), Some(vec![0, 1, 2, 255]));
        assert_eq!(decode_base64("").ok(), Some(Vec::new()));
        assert!(decode_base64("a*b").is_err());
    }
}
