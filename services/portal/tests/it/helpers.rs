//! Shared test plumbing: a fresh PostgreSQL database per test, orcid-sim in-process (as
//! ORCID and as the institution's OIDC identity provider), the token vault on the same
//! in-process bus, the portal configured through the real loader, a browser with its own
//! cookie jar, the sim's authorize form driven with reqwest, and a capture of every log line.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bus::Bus;
use idbridge_crypto::KeyRing;
use idbridge_platform::config::Sources;
use idbridge_platform::telemetry::{self, LogFormat, TelemetryConfig};
use orcid::OrcidId;
use orcid_sim::{SimConfig, SimHandle};
use portal::config::{DEFAULTS, PortalConfig};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::fmt::MakeWriter;
use uuid::Uuid;

pub const DEADLINE: Duration = Duration::from_secs(30);

/// The member client the researchers authorize (test data, not a real credential).
pub const ORCID_CLIENT_ID: &str = "APP-TESTPORTAL000001";
pub const ORCID_CLIENT_SECRET: &str = "test-portal-orcid-secret";
/// The institution's OIDC client at the simulator acting as the identity provider.
pub const IDP_CLIENT_ID: &str = "APP-TESTPORTALIDP001";
pub const IDP_CLIENT_SECRET: &str = "test-portal-idp-secret";
/// Caller tokens at the vault (test data).
pub const PORTAL_CALLER_TOKEN: &str = "TEST_PORTAL_CALLER_TOKEN_P001";
pub const WRITER_CALLER_TOKEN: &str = "TEST_WRITER_CALLER_TOKEN_P002";
pub const PASSWORD: &str = "test-user-password";
pub const SCOPES: &str = "/read-limited /activities/update";

// ---------------------------------------------------------------------------------------
// Logs

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

/// Installs (once) a subscriber recording every event at TRACE, as JSON.
pub fn capture_logs() {
    let buffer = LOGS.get_or_init(|| Arc::new(Mutex::new(Vec::new())));
    let config = TelemetryConfig {
        format: LogFormat::Json,
        filter: "trace".to_owned(),
        ..TelemetryConfig::default()
    };
    let _guard = telemetry::init_with_writer(&config, Capture(buffer.clone())).expect("telemetry");
}

/// Everything logged so far by every test of this binary.
pub fn logs() -> String {
    let buffer = LOGS.get().expect("capture_logs() was called");
    let bytes = buffer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Polls `check` until it returns `Some`, or panics naming `what` after [`DEADLINE`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Database

pub fn database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub struct TestDb {
    pub url: String,
    pub db: DatabaseConnection,
    name: String,
}

impl TestDb {
    pub async fn new() -> Self {
        let admin_url = database_url();
        let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("portal tests need PostgreSQL at {admin_url} (set TEST_DATABASE_URL): {e}")
        });
        let name = format!("test_portal_{}", Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("CREATE DATABASE");
        let _ = admin.close().await;
        let (base, _) = admin_url
            .split('?')
            .next()
            .and_then(|u| u.rsplit_once('/'))
            .expect("TEST_DATABASE_URL has a database path");
        let url = format!("{base}/{name}");
        let db = Database::connect(&url)
            .await
            .expect("connect to the test database");
        Self { url, db, name }
    }

    pub async fn outbox_bodies(&self, message_type: &str) -> Vec<String> {
        let rows = self
            .db
            .query_all_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT body FROM portal_outbox WHERE message_type = $1",
                vec![message_type.into()],
            ))
            .await
            .expect("outbox query");
        rows.iter()
            .map(|r| r.try_get_by_index::<String>(0).expect("body"))
            .collect()
    }

    pub async fn drop(self) {
        let _ = self.db.close().await;
        let admin = Database::connect(&database_url()).await.expect("admin");
        let _ = admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
        let _ = admin.close().await;
    }
}

// ---------------------------------------------------------------------------------------
// The system under test

/// What a test may change.
#[derive(Default)]
pub struct Options {
    /// Extra `IDBRIDGE__…` variables for the portal.
    pub portal_env: Vec<(String, String)>,
    /// Do not start the vault (its URL then points at a closed port).
    pub without_vault: bool,
    /// Sign in through OpenID Connect against the simulator.
    pub oidc: bool,
    /// Give the portal the vault's hand-off key in its configuration (else it asks the vault).
    pub configured_handoff: bool,
}

pub struct TestPortal {
    pub db: TestDb,
    pub sim: SimHandle,
    pub bus: Bus,
    pub url: String,
    pub vault_url: String,
    portal_shutdown: CancellationToken,
    portal_task: tokio::task::JoinHandle<Result<(), portal::StartupError>>,
    vault: Option<(
        CancellationToken,
        tokio::task::JoinHandle<Result<(), token_vault::StartupError>>,
    )>,
}

pub async fn spawn_sim() -> SimHandle {
    orcid_sim::spawn(
        SimConfig::for_tests()
            .with_client(ORCID_CLIENT_ID, ORCID_CLIENT_SECRET, "http://127.0.0.1")
            .with_client(IDP_CLIENT_ID, IDP_CLIENT_SECRET, "http://127.0.0.1"),
    )
    .await
    .expect("orcid-sim starts")
}

fn sha256_hex(text: &str) -> String {
    token_vault::token_sha256_hex(text)
}

async fn start_vault(
    db_url: &str,
    sim_url: &str,
    bus: &Bus,
) -> (
    String,
    String,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), token_vault::StartupError>>,
) {
    let key_id = format!("k-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let key = KeyRing::generate_key().expect("key");
    let (handoff_private, handoff_public) =
        token_vault::handoff::generate_handoff_key().expect("hand-off key");
    let handoff_id = format!("hk-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let env = vec![
        ("IDBRIDGE__VAULT__PORT".to_owned(), "0".to_owned()),
        (
            "IDBRIDGE__VAULT__KEYS".to_owned(),
            format!("{key_id}:{}", key.expose_secret()),
        ),
        ("IDBRIDGE__VAULT__ACTIVE_KEY".to_owned(), key_id),
        (
            "IDBRIDGE__VAULT__HANDOFF_KEYS".to_owned(),
            format!("{handoff_id}:{}", handoff_private.expose_secret()),
        ),
        ("IDBRIDGE__DATABASE__URL".to_owned(), db_url.to_owned()),
        (
            "IDBRIDGE__DATABASE__MAX_CONNECTIONS".to_owned(),
            "4".to_owned(),
        ),
        ("IDBRIDGE__ORCID__REGISTRY".to_owned(), sim_url.to_owned()),
        (
            "IDBRIDGE__ORCID__CLIENT_ID".to_owned(),
            ORCID_CLIENT_ID.to_owned(),
        ),
        (
            "IDBRIDGE__ORCID__CLIENT_SECRET".to_owned(),
            ORCID_CLIENT_SECRET.to_owned(),
        ),
        (
            "IDBRIDGE__VAULT__CALLERS__PORTAL__TOKEN_SHA256".to_owned(),
            sha256_hex(PORTAL_CALLER_TOKEN),
        ),
        (
            "IDBRIDGE__VAULT__CALLERS__PORTAL__RIGHTS".to_owned(),
            r#"["connections:list", "connections:disconnect"]"#.to_owned(),
        ),
        (
            "IDBRIDGE__VAULT__CALLERS__WRITER__TOKEN_SHA256".to_owned(),
            sha256_hex(WRITER_CALLER_TOKEN),
        ),
        (
            "IDBRIDGE__VAULT__CALLERS__WRITER__RIGHTS".to_owned(),
            // What the real writer's `VaultTokens` needs (tests/it/real_writer.rs).
            r#"["token:read", "connections:list", "connections:revoke"]"#.to_owned(),
        ),
    ];
    let config = token_vault::config::VaultConfig::from_sources(
        &Sources::new(token_vault::config::DEFAULTS).env(env),
    )
    .unwrap_or_else(|e| panic!("vault test configuration: {e}"));
    let app = token_vault::Application::build_with(
        config,
        token_vault::Dependencies {
            bus: Some(bus.clone()),
            ..token_vault::Dependencies::default()
        },
    )
    .await
    .expect("the vault starts");
    let url = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    let task = tokio::spawn(app.run_until_stopped());
    (
        url,
        format!("{handoff_id}:{handoff_public}"),
        shutdown,
        task,
    )
}

/// The portal's environment for this test.
pub fn portal_env(db_url: &str, sim_url: &str, vault_url: &str) -> Vec<(String, String)> {
    vec![
        ("IDBRIDGE__PORTAL__PORT".to_owned(), "0".to_owned()),
        ("IDBRIDGE__DATABASE__URL".to_owned(), db_url.to_owned()),
        (
            "IDBRIDGE__DATABASE__MAX_CONNECTIONS".to_owned(),
            "4".to_owned(),
        ),
        ("IDBRIDGE__ORCID__REGISTRY".to_owned(), sim_url.to_owned()),
        (
            "IDBRIDGE__ORCID__CLIENT_ID".to_owned(),
            ORCID_CLIENT_ID.to_owned(),
        ),
        (
            "IDBRIDGE__ORCID__CLIENT_SECRET".to_owned(),
            ORCID_CLIENT_SECRET.to_owned(),
        ),
        (
            "IDBRIDGE__PORTAL__VAULT__URL".to_owned(),
            vault_url.to_owned(),
        ),
        (
            "IDBRIDGE__PORTAL__VAULT__CALLER_TOKEN".to_owned(),
            PORTAL_CALLER_TOKEN.to_owned(),
        ),
    ]
}

pub fn load_config(env: Vec<(String, String)>) -> Result<PortalConfig, String> {
    PortalConfig::from_sources(&Sources::new(DEFAULTS).env(env)).map_err(|e| e.to_string())
}

pub async fn spawn() -> TestPortal {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(options: Options) -> TestPortal {
    capture_logs();
    let db = TestDb::new().await;
    let sim = spawn_sim().await;
    let bus =
        Bus::in_memory(&format!("p{}", &Uuid::new_v4().simple().to_string()[..8])).expect("bus");
    let (vault_url, vault, handoff) = if options.without_vault {
        ("http://127.0.0.1:9".to_owned(), None, None)
    } else {
        let (url, handoff, shutdown, task) = start_vault(&db.url, sim.base_url(), &bus).await;
        (url, Some((shutdown, task)), Some(handoff))
    };
    // The portal's public URL must be known before it binds: pick a free port first.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe port");
        probe.local_addr().expect("addr").port()
    };
    let mut env = portal_env(&db.url, sim.base_url(), &vault_url);
    env.push(("IDBRIDGE__PORTAL__PORT".to_owned(), port.to_string()));
    env.push((
        "IDBRIDGE__PORTAL__PUBLIC_URL".to_owned(),
        format!("http://127.0.0.1:{port}"),
    ));
    if options.configured_handoff {
        env.push((
            "IDBRIDGE__PORTAL__VAULT__HANDOFF_KEY".to_owned(),
            handoff.clone().expect("the vault runs"),
        ));
    }
    if options.oidc {
        for (k, v) in [
            ("IDBRIDGE__PORTAL__SIGNIN__METHOD", "oidc"),
            ("IDBRIDGE__PORTAL__SIGNIN__OIDC__ISSUER", sim.base_url()),
            ("IDBRIDGE__PORTAL__SIGNIN__OIDC__CLIENT_ID", IDP_CLIENT_ID),
            (
                "IDBRIDGE__PORTAL__SIGNIN__OIDC__CLIENT_SECRET",
                IDP_CLIENT_SECRET,
            ),
            ("IDBRIDGE__PORTAL__SIGNIN__OIDC__SCOPES", "openid"),
        ] {
            env.push((k.to_owned(), v.to_owned()));
        }
    }
    env.retain(|(k, _)| !options.portal_env.iter().any(|(o, _)| o == k));
    env.extend(options.portal_env);
    let config = load_config(env).unwrap_or_else(|e| panic!("portal test configuration: {e}"));
    let app = portal::Application::build_with(
        config,
        portal::Dependencies {
            bus: Some(bus.clone()),
            ..portal::Dependencies::default()
        },
    )
    .await
    .expect("the portal starts");
    let url = format!("http://127.0.0.1:{}", app.port());
    let portal_shutdown = app.shutdown_token();
    let portal_task = tokio::spawn(app.run_until_stopped());
    TestPortal {
        db,
        sim,
        bus,
        url,
        vault_url,
        portal_shutdown,
        portal_task,
        vault,
    }
}

impl TestPortal {
    pub fn browser(&self) -> Browser {
        Browser::new(&self.url)
    }

    /// A new user at the simulator: (iD, e-mail).
    pub async fn sim_user(&self, given: &str) -> (OrcidId, String) {
        let n = Uuid::new_v4().simple().to_string();
        let email = format!("{}@mailinator.com", &n[..12]);
        let res = http()
            .post(format!("{}/_sim/users", self.sim.base_url()))
            .json(&serde_json::json!({
                "given-names": given, "family-name": format!("Tester {}", &n[..6]),
                "email": email, "password": PASSWORD,
            }))
            .send()
            .await
            .expect("POST /_sim/users");
        assert_eq!(res.status(), 201);
        let body: serde_json::Value = res.json().await.expect("json");
        (
            OrcidId::parse(body["orcid"].as_str().expect("orcid")).expect("iD"),
            email,
        )
    }

    pub fn vault_client(&self, token: &str) -> token_vault::client::VaultClient {
        token_vault::client::VaultClient::new(&self.vault_url, token.into()).expect("client")
    }

    /// Waits until the vault lists an active connection for `person_id`.
    pub async fn wait_connected(&self, person_id: &str) -> token_vault::client::Connection {
        let vault = self.vault_client(PORTAL_CALLER_TOKEN);
        wait_for("the vault to store the connection", || async {
            let page = vault
                .connections(Some(person_id), None, None, None)
                .await
                .ok()?;
            page.connections
                .into_iter()
                .find(|c| c.state == token_vault::client::ConnectionState::Active)
        })
        .await
    }

    pub async fn stop(self) {
        self.portal_shutdown.cancel();
        let result = self.portal_task.await.expect("portal task");
        result.expect("the portal stops cleanly");
        if let Some((shutdown, task)) = self.vault {
            shutdown.cancel();
            let _ = task.await;
        }
        self.sim.stop().await;
        self.db.drop().await;
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("reqwest")
}

// ---------------------------------------------------------------------------------------
// A browser: one cookie jar for the portal, redirects not followed

pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> String {
        self.headers
            .get("location")
            .unwrap_or_else(|| panic!("no Location (status {})", self.status))
            .to_str()
            .expect("location")
            .to_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("header").to_owned())
    }

    /// The `value` of the hidden input `name` (the first one).
    pub fn hidden(&self, name: &str) -> Option<String> {
        hidden_inputs(&self.body)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The `data-error-code` of an error page.
    pub fn error_code(&self) -> Option<String> {
        let at = self.body.find("data-error-code=\"")? + "data-error-code=\"".len();
        let end = self.body[at..].find('"')?;
        Some(self.body[at..at + end].to_owned())
    }
}

pub struct Browser {
    pub base: String,
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    /// Every raw `Set-Cookie` seen.
    pub set_cookies: Vec<String>,
    /// Every page body seen.
    pub seen: Vec<String>,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: http(),
            cookies: BTreeMap::new(),
            set_cookies: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, response: reqwest::Response) -> Page {
        for value in response.headers().get_all("set-cookie") {
            let raw = value.to_str().expect("set-cookie").to_owned();
            let pair = raw.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                let expired = raw.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
                if expired {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies
                        .insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
            self.set_cookies.push(raw);
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.expect("body");
        self.seen.push(body.clone());
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.get_with(path, &[]).await
    }

    pub async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut request = self.http.get(self.url(path));
        if !self.cookies.is_empty() {
            request = request.header("cookie", self.cookie_header());
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.expect("GET");
        self.finish(response).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut request = self.http.post(self.url(path)).form(form);
        if !self.cookies.is_empty() {
            request = request.header("cookie", self.cookie_header());
        }
        let response = request.send().await.expect("POST");
        self.finish(response).await
    }

    /// Signs in with the development form.
    pub async fn dev_sign_in(&mut self, person_id: &str, name: &str, email: &str, admin: bool) {
        let page = self.get("/signin").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = page.hidden("csrf").expect("csrf field on the sign-in form");
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("person_id", person_id),
            ("name", name),
            ("email", email),
        ];
        if admin {
            form.push(("admin", "1"));
        }
        let page = self.post("/signin/dev", &form).await;
        assert_eq!(page.status, 303, "{}", page.body);
        assert_eq!(page.location(), "/me");
    }

    /// The CSRF token of the signed-in layout (the sign-out form).
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/me").await;
        page.hidden("csrf").expect("csrf on /me")
    }

    /// `/connect/orcid` → ORCID's authorize page; returns the authorize URL.
    pub async fn start_connect(&mut self) -> String {
        let page = self.get("/connect/orcid").await;
        assert_eq!(page.status, 303, "{}", page.body);
        page.location()
    }
}

/// The hidden inputs of an HTML page (attributes `name` then `value`, as both the portal and
/// the simulator write them).
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for chunk in html.split("<input").skip(1) {
        let tag = chunk.split('>').next().unwrap_or("");
        if !tag.contains("type=\"hidden\"") {
            continue;
        }
        let attr = |name: &str| {
            let key = format!("{name}=\"");
            let at = tag.find(&key)? + key.len();
            let end = tag[at..].find('"')?;
            Some(unescape(&tag[at..at + end]))
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            out.push((n, v));
        }
    }
    out
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2F;", "/")
        .replace("&amp;", "&")
}

/// At ORCID (the simulator): opens `authorize_url`, signs in as `login` and clicks Authorize
/// or Deny; returns where ORCID sends the browser back.
pub async fn orcid_decides(authorize_url: &str, login: &str, authorize: bool) -> String {
    let client = http();
    let page = client
        .get(authorize_url)
        .send()
        .await
        .expect("authorize page");
    assert_eq!(page.status(), 200, "ORCID's authorize page");
    let html = page.text().await.expect("html");
    assert!(html.contains("id=\"authorize-button\""), "{html}");
    let mut form = hidden_inputs(&html);
    form.push(("username".to_owned(), login.to_owned()));
    form.push(("password".to_owned(), PASSWORD.to_owned()));
    form.push((
        "action".to_owned(),
        if authorize { "authorize" } else { "deny" }.to_owned(),
    ));
    let origin = {
        let url = url::Url::parse(authorize_url).expect("url");
        format!("{}://{}", url.scheme(), url.host_str().expect("host"))
            + &url.port().map(|p| format!(":{p}")).unwrap_or_default()
    };
    let answer = client
        .post(format!("{origin}/oauth/authorize"))
        .form(&form)
        .send()
        .await
        .expect("POST authorize");
    assert_eq!(answer.status(), 302, "ORCID redirects back");
    answer.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Connects a new sim user for the signed-in browser: returns (iD, the callback URL used).
pub async fn connect(portal: &TestPortal, browser: &mut Browser) -> (OrcidId, String) {
    let (orcid, email) = portal.sim_user("Ada").await;
    let authorize = browser.start_connect().await;
    let callback = orcid_decides(&authorize, &email, true).await;
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), "/me?connected=1");
    (orcid, callback)
}
