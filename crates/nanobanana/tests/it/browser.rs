//! A real headless Chromium driven over the WebDriver protocol (chromedriver), with plain
//! HTTP: enough to open a page, find, click, type, read and take screenshots. Chromium and
//! chromedriver are Debian's `chromium` and `chromium-driver` (scripts/test installs them).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

/// W3C WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const START: Duration = Duration::from_secs(30);

pub struct Browser {
    http: reqwest::Client,
    session: String,
    _driver: tokio::process::Child,
    _profile: TempDir,
    artifacts: PathBuf,
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where screenshots go: `target/test-artifacts/<name>`.
fn artifacts(name: &str) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("test-artifacts").join(name);
    std::fs::create_dir_all(&dir).expect("create the artifacts directory");
    dir
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session with a fresh profile; panics with
    /// what to install when either cannot start.
    pub async fn start(artifacts_name: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromedriver ({e}): install Debian's `chromium` and `chromium-driver` \
                     (scripts/test installs them where missing)"
                )
            });
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("HTTP client");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + START;
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(answer) = ready {
                let status: Value = answer.json().await.unwrap_or_default();
                if status["value"]["ready"] == true {
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not become ready within {START:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = std::env::temp_dir().join(format!("nbtest-chromium-{}", uuid::Uuid::new_v4().simple()));
        let mut options = json!({"args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--window-size=1400,1000",
            format!("--user-data-dir={}", profile.display()),
        ]});
        if Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options}}});
        let answer = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("chromedriver answers a new session");
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or_default();
        let Some(session) = body["value"]["sessionId"].as_str() else {
            panic!("Chromium did not start ({status}): {body}");
        };
        Self {
            http,
            session: format!("{base}/session/{session}"),
            _driver: driver,
            _profile: TempDir(profile),
            artifacts: artifacts(artifacts_name),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or_default();
        assert!(status.is_success(), "WebDriver {method} {path}: {status} {body}");
        body["value"].clone()
    }

    /// Sets the window's size (a phone: 390 × 844).
    pub async fn resize(&self, width: u32, height: u32) {
        self.call(reqwest::Method::POST, "/window/rect", Some(json!({"width": width, "height": height})))
            .await;
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    /// Runs `script` in the page (`arguments[0]` = `arg`) and returns its value.
    pub async fn eval(&self, script: &str, arg: Value) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": [arg]})))
            .await
    }

    /// The first element matching `css`, waiting for it.
    pub async fn find(&self, css: &str, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = self
                .http
                .post(format!("{}/element", self.session))
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .expect("WebDriver answers");
            if found.status().is_success() {
                let body: Value = found.json().await.unwrap_or_default();
                if let Some(id) = body["value"][ELEMENT].as_str() {
                    return id.to_owned();
                }
            }
            if tokio::time::Instant::now() >= deadline {
                self.screenshot("failed-find").await;
                panic!("no element {css:?} within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the first element matching `css`; found again if the page redrew it meanwhile.
    pub async fn click(&self, css: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let element = self.find(css, timeout).await;
            let clicked = self
                .http
                .post(format!("{}/element/{element}/click", self.session))
                .json(&json!({}))
                .send()
                .await
                .expect("WebDriver answers");
            let status = clicked.status();
            if status.is_success() {
                return;
            }
            let body: Value = clicked.json().await.unwrap_or_default();
            let stale = body["value"]["error"] == "stale element reference";
            assert!(stale && tokio::time::Instant::now() < deadline, "click {css:?}: {status} {body}");
        }
    }

    /// Types into an element (for a file input: local paths, one per line).
    pub async fn type_into(&self, css: &str, text: &str, timeout: Duration) {
        let element = self.find(css, timeout).await;
        self.call(reqwest::Method::POST, &format!("/element/{element}/value"), Some(json!({"text": text})))
            .await;
    }

    /// Replaces an input's value, as a user selecting it all and typing would.
    pub async fn fill(&self, css: &str, text: &str, timeout: Duration) {
        let element = self.find(css, timeout).await;
        self.call(reqwest::Method::POST, &format!("/element/{element}/clear"), Some(json!({}))).await;
        self.call(reqwest::Method::POST, &format!("/element/{element}/value"), Some(json!({"text": text})))
            .await;
    }

    /// Waits until `script` (given `arg`) returns something truthy; returns it.
    pub async fn wait_until(&self, what: &str, script: &str, arg: Value, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let value = self.eval(script, arg.clone()).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            if tokio::time::Instant::now() >= deadline {
                let shot = self.screenshot("failed-wait").await;
                panic!("{what}: not within {timeout:?} (screenshot {})", shot.display());
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Saves a PNG of the window as `<name>.png` among the artifacts; its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let data = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        let path = self.artifacts.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    pub async fn close(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}
