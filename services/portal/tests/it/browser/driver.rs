//! Headless Chromium through chromedriver (WebDriver, plain HTTP on loopback) for the
//! browser tests: one chromedriver child per test, killed with its Chromium on drop; browser
//! tests serialised across test processes by a file lock (nextest runs each test in its own
//! process); a PNG screenshot, the page source, the cookies and the web storage kept at each
//! step so the tests can assert no token ever reached the browser.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// How long a page, an element or a state may take to appear (2 shared cores: generous).
pub const BROWSER_DEADLINE: Duration = Duration::from_secs(45);
/// How long a test may wait for another browser test to finish.
const LOCK_DEADLINE: Duration = Duration::from_secs(240);

const INSTALL: &str = "install them with `apt-get install chromium chromium-driver` \
(or set CHROME_BIN / CHROMEDRIVER to their paths)";

/// A phone-sized window (CSS pixels).
pub const PHONE: (u32, u32) = (390, 844);
/// A desktop window.
pub const DESKTOP: (u32, u32) = (1280, 1024);

/// `target/test-artifacts/portal-browser` in the workspace (created; an absolute path without
/// `..`, which Chromium needs to finish a download).
pub fn artifacts_dir() -> PathBuf {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts/portal-browser");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir.canonicalize().expect("the artifacts directory")
}

fn binary(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "the browser tests need Chromium and chromedriver: {} is missing; {INSTALL}",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe port");
    probe.local_addr().expect("addr").port()
}

/// Serialises the browser tests across processes (2 cores: one Chromium at a time).
async fn browser_lock() -> File {
    let dir = artifacts_dir();
    let file = File::create(dir.join(".browser.lock")).expect("lock file");
    let deadline = tokio::time::Instant::now() + LOCK_DEADLINE;
    loop {
        match file.try_lock() {
            Ok(()) => return file,
            Err(std::fs::TryLockError::WouldBlock) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "another browser test held {} for {LOCK_DEADLINE:?}",
                    dir.join(".browser.lock").display()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(std::fs::TryLockError::Error(e)) => panic!("locking the browser lock file: {e}"),
        }
    }
}

/// chromedriver in its own process group; the group (chromedriver and every Chromium process
/// it started) is killed on drop, and the profile directory removed.
struct ChromeDriver {
    child: Child,
    url: String,
    profile: PathBuf,
}

impl ChromeDriver {
    async fn start(profile: PathBuf) -> Self {
        use std::os::unix::process::CommandExt;
        let driver = binary("CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = free_port();
        let log = File::create(artifacts_dir().join("chromedriver.log")).expect("driver log");
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}; {INSTALL}", driver.display()));
        let mut this = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile,
        };
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + BROWSER_DEADLINE;
        loop {
            if let Some(status) = this.child.try_wait().expect("chromedriver status") {
                panic!(
                    "chromedriver exited at start ({status}); see target/test-artifacts/portal-browser/chromedriver.log"
                );
            }
            let ready = http
                .get(format!("{}/status", this.url))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success());
            if let Some(response) = ready {
                let status: Value = response.json().await.expect("status json");
                if status["value"]["ready"] == json!(true) {
                    return this;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not answer on {} within {BROWSER_DEADLINE:?}",
                this.url
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The group of the process this test started (chromedriver is its leader).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// What the browser held at one step: for the "no token anywhere" checks.
pub struct Snapshot {
    pub step: String,
    pub url: String,
    pub source: String,
    /// `name=value; domain; path` for every cookie of the current page (HttpOnly ones too).
    pub cookies: Vec<String>,
    /// `localStorage` and `sessionStorage` as JSON.
    pub storage: String,
}

/// One headless Chromium session for one test.
pub struct Session {
    pub client: Client,
    test: &'static str,
    /// Where this session's downloads land: `target/test-artifacts/portal-browser/<test>-downloads`.
    downloads: PathBuf,
    pub snapshots: Vec<Snapshot>,
    // Dropped after the client: the driver (and Chromium) die, then the lock is released.
    _driver: ChromeDriver,
    _lock: File,
}

impl Session {
    /// Starts chromedriver and a headless Chromium with a window of `width`×`height`.
    pub async fn start(test: &'static str, (width, height): (u32, u32)) -> Self {
        let chromium = binary("CHROME_BIN", "/usr/bin/chromium");
        let lock = browser_lock().await;
        let profile = std::env::temp_dir().join(format!(
            "idbridge-portal-browser-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let downloads = artifacts_dir().join(format!("{test}-downloads"));
        // Chromium creates it on the first download.
        let _ = std::fs::remove_dir_all(&downloads);
        let driver = ChromeDriver::start(profile.clone()).await;
        let mut capabilities = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--hide-scrollbars",
                    "--lang=en-US",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.display()),
                ],
                "prefs": {
                    "download.default_directory": downloads,
                    "download.prompt_for_download": false,
                },
            },
        });
        // Headless Chromium keeps windows at least 500px wide: a phone is emulated instead
        // (its metrics, a mobile viewport honouring `<meta name="viewport">`, touch).
        if width < 500 {
            capabilities["goog:chromeOptions"]["mobileEmulation"] = json!({
                "deviceMetrics": {
                    "width": width, "height": height, "pixelRatio": 1.0,
                    "mobile": true, "touch": true,
                },
            });
        }
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("a Chromium session through chromedriver ({e}); {INSTALL}"));
        client
            .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
                None,
                Some(BROWSER_DEADLINE),
                None,
            ))
            .await
            .expect("page-load timeout");
        Self {
            client,
            test,
            downloads,
            snapshots: Vec::new(),
            _driver: driver,
            _lock: lock,
        }
    }

    /// Ends the WebDriver session (Chromium quits); the driver is killed on drop.
    pub async fn close(self) {
        let Self {
            client,
            _driver,
            _lock,
            ..
        } = self;
        let _ = client.close().await;
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    pub async fn url(&self) -> url::Url {
        self.client.current_url().await.expect("current URL")
    }

    /// Waits until the current URL satisfies `check`; returns it.
    pub async fn wait_url(&self, what: &str, check: impl Fn(&url::Url) -> bool) -> url::Url {
        let deadline = tokio::time::Instant::now() + BROWSER_DEADLINE;
        loop {
            let url = self.url().await;
            if check(&url) {
                return url;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {BROWSER_DEADLINE:?} waiting for {what}; the browser is at {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the element `#id` (on the page being loaded).
    pub async fn id(&self, id: &str) -> fantoccini::elements::Element {
        let found = self
            .client
            .wait()
            .at_most(BROWSER_DEADLINE)
            .for_element(Locator::Id(id))
            .await;
        match found {
            Ok(element) => element,
            Err(e) => {
                let url = self.url().await;
                panic!(
                    "no element #{id} within {BROWSER_DEADLINE:?} ({e}); the browser is at {url}"
                )
            }
        }
    }

    /// Whether `#id` is on the current page now.
    pub async fn has(&self, id: &str) -> bool {
        !self
            .client
            .find_all(Locator::Id(id))
            .await
            .expect("find")
            .is_empty()
    }

    /// Clicks `#id`.
    pub async fn click(&self, id: &str) {
        self.id(id)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click #{id}: {e}"));
    }

    /// Types `text` into the field `#id`, replacing what it held.
    pub async fn fill(&self, id: &str, text: &str) {
        let field = self.id(id).await;
        field.clear().await.expect("clear");
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into #{id}: {e}"));
    }

    /// Waits for the download `name` to be complete; returns its content.
    pub async fn downloaded(&self, name: &str) -> String {
        let path = self.downloads.join(name);
        let deadline = tokio::time::Instant::now() + BROWSER_DEADLINE;
        loop {
            // Chromium writes `<name>.crdownload` and renames it when done.
            if let Ok(text) = std::fs::read_to_string(&path) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no download {} within {BROWSER_DEADLINE:?}",
                path.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a script returning JSON.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed ({e}): {script}"))
    }

    /// Saves `target/test-artifacts/portal-browser/<test>-<step>.png` and records the page
    /// source, the cookies and the web storage of this step.
    pub async fn snapshot(&mut self, step: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let path = artifacts_dir().join(format!("{}-{step}.png", self.test));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        let url = self.url().await.to_string();
        let source = self.client.source().await.expect("page source");
        let cookies = self
            .client
            .get_all_cookies()
            .await
            .expect("cookies")
            .iter()
            .map(|c| {
                format!(
                    "{}={}; domain={}; path={}",
                    c.name(),
                    c.value(),
                    c.domain().unwrap_or(""),
                    c.path().unwrap_or("")
                )
            })
            .collect();
        let storage = self
            .js("return JSON.stringify([window.localStorage, window.sessionStorage]);")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.snapshots.push(Snapshot {
            step: step.to_owned(),
            url,
            source,
            cookies,
            storage,
        });
    }

    /// Asserts no snapshot (URL, page, cookie, web storage) holds any of `secrets`.
    pub fn assert_nothing_holds(&self, secrets: &[&str]) {
        assert!(!self.snapshots.is_empty(), "no snapshot taken");
        for secret in secrets {
            assert!(secret.len() >= 16, "a real token to look for");
            for s in &self.snapshots {
                assert!(
                    !s.url.contains(secret),
                    "step {}: the URL holds a token",
                    s.step
                );
                assert!(
                    !s.source.contains(secret),
                    "step {}: the page holds a token",
                    s.step
                );
                assert!(
                    !s.cookies.iter().any(|c| c.contains(secret)),
                    "step {}: a cookie holds a token",
                    s.step
                );
                assert!(
                    !s.storage.contains(secret),
                    "step {}: web storage holds a token",
                    s.step
                );
            }
        }
    }

    /// `document.documentElement.scrollWidth <= innerWidth` on the current page.
    pub async fn assert_no_horizontal_scroll(&self, page: &str) {
        let v = self
            .js("return [document.documentElement.scrollWidth, window.innerWidth];")
            .await;
        let (scroll, inner) = (
            v[0].as_u64().expect("scrollWidth"),
            v[1].as_u64().expect("innerWidth"),
        );
        assert!(
            scroll <= inner,
            "{page}: scrolls sideways on a {inner}px-wide viewport (content {scroll}px wide)"
        );
    }

    /// Asserts `img` (an element) is an image that loaded and is drawn at a non-zero size.
    pub async fn assert_image_loaded(&self, img: &fantoccini::elements::Element, what: &str) {
        let loaded = self
            .client
            .execute(
                "const i = arguments[0]; return i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0;",
                vec![serde_json::to_value(img).expect("element")],
            )
            .await
            .expect("image check");
        assert_eq!(
            loaded,
            json!(true),
            "{what}: the image did not load or is not drawn"
        );
    }
}
