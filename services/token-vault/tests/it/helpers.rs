//! Shared test plumbing: a fresh database per test (PostgreSQL or SQLite), orcid-sim
//! in-process, an in-process bus with a listener on "connection.*", the vault on port 0
//! configured through the real loader, users connected through the simulator's OAuth, and a
//! process-wide capture of every log line.

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bus::events::{IdConnected, exchanges};
use bus::{
    Bus, ConsumerHandle, ConsumerOptions, Delivery, Outcome, OutgoingMessage, ServiceSpec,
    Topology, handler_fn,
};
use chrono::{DateTime, Utc};
use idbridge_crypto::{KeyRing, VaultPublicKey};
use idbridge_platform::config::Sources;
use idbridge_platform::telemetry::{self, LogFormat, TelemetryConfig};
use orcid::OrcidId;
use orcid::client::{ClientConfig, OrcidClient, RetryPolicy, UserTokens};
use orcid_sim::{SimConfig, SimHandle};
use sea_orm::{ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, Statement};
use secrecy::ExposeSecret;
use token_vault::client::VaultClient;
use token_vault::config::{DEFAULTS, VaultConfig};
use token_vault::{Application, AuditStats, Dependencies, KeyRingHandle, StartupError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::fmt::MakeWriter;
use uuid::Uuid;

pub const DEADLINE: Duration = Duration::from_secs(30);

/// The member client registered in every simulator (test data, not a real credential).
pub const TEST_CLIENT_ID: &str = "APP-TESTVAULT0000001";
pub const TEST_CLIENT_SECRET: &str = "test-vault-client-secret";
pub const TEST_REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

/// Caller tokens of the test services (test data).
pub const TEST_WRITER_TOKEN: &str = "TEST_WRITER_CALLER_TOKEN_0001";
pub const TEST_PORTAL_TOKEN: &str = "TEST_PORTAL_CALLER_TOKEN_0002";
pub const TEST_READER_TOKEN: &str = "TEST_READER_CALLER_TOKEN_0003";

pub const SCOPES: &str = "/read-limited /activities/update";

// ---------------------------------------------------------------------------------------
// Log capture

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

/// Installs (once) a subscriber recording every event of every crate at TRACE, as JSON.
pub fn capture_logs() {
    let buffer = LOGS.get_or_init(|| Arc::new(Mutex::new(Vec::new())));
    let config = TelemetryConfig {
        format: LogFormat::Json,
        filter: "trace".to_owned(),
        ..TelemetryConfig::default()
    };
    // Idempotent: the first test installs the subscriber, later calls do nothing.
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
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Databases

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

pub fn database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of this test's own; [`TestDb::drop`] removes it.
pub struct TestDb {
    pub url: String,
    pub db: DatabaseConnection,
    pub backend: Backend,
    name: String,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Self::postgres().await,
            Backend::Sqlite => Self::sqlite().await,
        }
    }

    async fn postgres() -> Self {
        let admin_url = database_url();
        let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "token-vault tests need PostgreSQL at {admin_url} (set TEST_DATABASE_URL; ./scripts/test.sh starts it): {e}"
            )
        });
        let name = format!("tv_{}", Uuid::new_v4().simple());
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
        Self {
            url,
            db,
            backend: Backend::Postgres,
            name,
        }
    }

    async fn sqlite() -> Self {
        let path =
            std::env::temp_dir().join(format!("token-vault-{}.sqlite", Uuid::new_v4().simple()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let db = Database::connect(&url).await.expect("SQLite");
        Self {
            url,
            db,
            backend: Backend::Sqlite,
            name: path.display().to_string(),
        }
    }

    /// `$n` placeholders for PostgreSQL, `?` for SQLite.
    pub fn sql(&self, postgres: &str) -> String {
        match self.backend {
            Backend::Postgres => postgres.to_owned(),
            Backend::Sqlite => {
                let mut out = postgres.to_owned();
                for n in (1..10).rev() {
                    out = out.replace(&format!("${n}"), "?");
                }
                out
            }
        }
    }

    pub fn statement(&self, postgres: &str, values: Vec<sea_orm::Value>) -> Statement {
        let backend = match self.backend {
            Backend::Postgres => DatabaseBackend::Postgres,
            Backend::Sqlite => DatabaseBackend::Sqlite,
        };
        Statement::from_sql_and_values(backend, self.sql(postgres), values)
    }

    pub async fn count(&self, postgres: &str, values: Vec<sea_orm::Value>) -> i64 {
        let row = self
            .db
            .query_one_raw(self.statement(postgres, values))
            .await
            .expect("count query")
            .expect("a row");
        row.try_get_by_index::<i64>(0).expect("a count")
    }

    pub async fn execute(&self, postgres: &str, values: Vec<sea_orm::Value>) -> u64 {
        self.db
            .execute_raw(self.statement(postgres, values))
            .await
            .expect("statement")
            .rows_affected()
    }

    /// Every table of the database, every row, as text (blobs as text and as hex).
    pub async fn dump(&self) -> String {
        let mut out = String::new();
        match self.backend {
            Backend::Postgres => {
                let tables = self
                    .db
                    .query_all_raw(self.statement(
                        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
                        vec![],
                    ))
                    .await
                    .expect("tables");
                for table in tables {
                    let name: String = table.try_get_by_index(0).expect("name");
                    let rows = self
                        .db
                        .query_all_raw(
                            self.statement(&format!("SELECT t::text FROM \"{name}\" t"), vec![]),
                        )
                        .await
                        .expect("rows");
                    for row in rows {
                        let text: String = row.try_get_by_index(0).expect("row text");
                        out.push_str(&name);
                        out.push_str(": ");
                        out.push_str(&text);
                        out.push('\n');
                    }
                }
            }
            Backend::Sqlite => {
                let tables = self
                    .db
                    .query_all_raw(self.statement(
                        "SELECT name FROM sqlite_master WHERE type = 'table'",
                        vec![],
                    ))
                    .await
                    .expect("tables");
                for table in tables {
                    let name: String = table.try_get_by_index(0).expect("name");
                    let columns = self
                        .db
                        .query_all_raw(self.statement(
                            &format!("SELECT name FROM pragma_table_info('{name}')"),
                            vec![],
                        ))
                        .await
                        .expect("columns");
                    for column in columns {
                        let column: String = column.try_get_by_index(0).expect("column");
                        let rows = self
                            .db
                            .query_all_raw(self.statement(
                                &format!("SELECT CAST(\"{column}\" AS BLOB) FROM \"{name}\""),
                                vec![],
                            ))
                            .await
                            .expect("values");
                        for row in rows {
                            let bytes: Option<Vec<u8>> = row.try_get_by_index(0).expect("value");
                            let bytes = bytes.unwrap_or_default();
                            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                            let text = format!("{} {hex}", String::from_utf8_lossy(&bytes));
                            out.push_str(&format!("{name}.{column}: {text}\n"));
                        }
                    }
                }
            }
        }
        out
    }

    pub async fn drop(self) {
        let _ = self.db.close().await;
        match self.backend {
            Backend::Postgres => {
                let admin = Database::connect(&database_url())
                    .await
                    .expect("PostgreSQL");
                admin
                    .execute_unprepared(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        self.name
                    ))
                    .await
                    .expect("DROP DATABASE");
                let _ = admin.close().await;
            }
            Backend::Sqlite => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.name));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Keys and configuration

pub fn unique_key_id(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..10])
}

/// A fresh key (`id:BASE64`) for a key list.
pub fn new_key_entry(id: &str) -> String {
    format!(
        "{id}:{}",
        KeyRing::generate_key().expect("key").expose_secret()
    )
}

pub fn ring(entries: &[String], active: &str) -> KeyRing {
    KeyRing::from_config(&entries.join(",").into(), active).expect("key ring")
}

/// The environment a test vault is configured with (through the real loader).
pub struct TestSettings {
    pub key_entries: Vec<String>,
    pub active_key: String,
    pub handoff_key_id: String,
    pub handoff_public: VaultPublicKey,
    handoff_private: String,
    pub extra_env: Vec<(String, String)>,
}

impl TestSettings {
    pub fn new() -> Self {
        let active_key = unique_key_id("k");
        let (private, public) = token_vault::handoff::generate_handoff_key().expect("hand-off key");
        Self {
            key_entries: vec![new_key_entry(&active_key)],
            active_key,
            handoff_key_id: unique_key_id("hk"),
            handoff_public: public,
            handoff_private: private.expose_secret().to_owned(),
            extra_env: Vec::new(),
        }
    }

    pub fn env(&self, db_url: &str, sim_url: &str) -> Vec<(String, String)> {
        let caller = |name: &str, token: &str, rights: &str| {
            vec![
                (
                    format!("IDBRIDGE__VAULT__CALLERS__{name}__TOKEN_SHA256"),
                    token_vault::token_sha256_hex(token),
                ),
                (
                    format!("IDBRIDGE__VAULT__CALLERS__{name}__RIGHTS"),
                    rights.to_owned(),
                ),
            ]
        };
        let mut env = vec![
            ("IDBRIDGE__VAULT__PORT".to_owned(), "0".to_owned()),
            (
                "IDBRIDGE__VAULT__KEYS".to_owned(),
                self.key_entries.join(","),
            ),
            (
                "IDBRIDGE__VAULT__ACTIVE_KEY".to_owned(),
                self.active_key.clone(),
            ),
            (
                "IDBRIDGE__VAULT__HANDOFF_KEYS".to_owned(),
                format!("{}:{}", self.handoff_key_id, self.handoff_private),
            ),
            ("IDBRIDGE__DATABASE__URL".to_owned(), db_url.to_owned()),
            (
                "IDBRIDGE__DATABASE__MAX_CONNECTIONS".to_owned(),
                "5".to_owned(),
            ),
            ("IDBRIDGE__ORCID__REGISTRY".to_owned(), sim_url.to_owned()),
            (
                "IDBRIDGE__ORCID__CLIENT_ID".to_owned(),
                TEST_CLIENT_ID.to_owned(),
            ),
            (
                "IDBRIDGE__ORCID__CLIENT_SECRET".to_owned(),
                TEST_CLIENT_SECRET.to_owned(),
            ),
        ];
        env.extend(caller(
            "WRITER",
            TEST_WRITER_TOKEN,
            r#"["token:read", "client-token:read", "connections:revoke"]"#,
        ));
        env.extend(caller(
            "PORTAL",
            TEST_PORTAL_TOKEN,
            r#"["connections:list", "connections:disconnect"]"#,
        ));
        env.extend(caller(
            "READER",
            TEST_READER_TOKEN,
            r#"["connections:list"]"#,
        ));
        env.extend(self.extra_env.iter().cloned());
        env
    }

    pub fn config(&self, db_url: &str, sim_url: &str) -> VaultConfig {
        VaultConfig::from_sources(&Sources::new(DEFAULTS).env(self.env(db_url, sim_url)))
            .unwrap_or_else(|e| panic!("test configuration: {e}"))
    }

    pub fn key_ring(&self) -> KeyRing {
        ring(&self.key_entries, &self.active_key)
    }
}

// ---------------------------------------------------------------------------------------
// The vault under test

pub struct TestVault {
    pub db: TestDb,
    pub sim: SimHandle,
    pub bus: Bus,
    pub settings: TestSettings,
    pub base_url: String,
    pub keys: KeyRingHandle,
    /// The running vault's audit writer counters (replaced by a restart).
    pub audit: AuditStats,
    pub orcid: OrcidClient,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), StartupError>>,
    events: tokio::sync::Mutex<Events>,
    /// Every event the listener received, for leak searches.
    pub seen: Arc<Mutex<Vec<Delivery>>>,
    listener: Option<ConsumerHandle>,
}

struct Events {
    rx: mpsc::UnboundedReceiver<Delivery>,
    pending: std::collections::VecDeque<Delivery>,
}

pub async fn spawn_sim() -> SimHandle {
    orcid_sim::spawn(SimConfig::for_tests().with_client(
        TEST_CLIENT_ID,
        TEST_CLIENT_SECRET,
        TEST_REDIRECT_URI,
    ))
    .await
    .expect("orcid-sim starts")
}

pub async fn spawn_vault(backend: Backend) -> TestVault {
    spawn_vault_with(backend, TestSettings::new()).await
}

pub async fn spawn_vault_with(backend: Backend, settings: TestSettings) -> TestVault {
    capture_logs();
    let db = TestDb::new(backend).await;
    let sim = spawn_sim().await;
    let bus =
        Bus::in_memory(&format!("t{}", &Uuid::new_v4().simple().to_string()[..8])).expect("bus");
    let (listener, events, seen) = listen(&bus).await;
    let orcid = OrcidClient::new(
        ClientConfig::custom(sim.base_url(), TEST_CLIENT_ID, TEST_CLIENT_SECRET.into())
            .expect("sim URL")
            .with_retry(RetryPolicy::none()),
    )
    .expect("ORCID client");
    let (base_url, keys, audit, shutdown, task) =
        start_app(&settings, &db.url, sim.base_url(), &bus).await;
    TestVault {
        db,
        sim,
        bus,
        settings,
        base_url,
        keys,
        audit,
        orcid,
        shutdown,
        task,
        events: tokio::sync::Mutex::new(Events {
            rx: events,
            pending: std::collections::VecDeque::new(),
        }),
        seen,
        listener: Some(listener),
    }
}

type Started = (
    String,
    KeyRingHandle,
    AuditStats,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), StartupError>>,
);

async fn start_app(settings: &TestSettings, db_url: &str, sim_url: &str, bus: &Bus) -> Started {
    let app = Application::build_with(
        settings.config(db_url, sim_url),
        Dependencies {
            bus: Some(bus.clone()),
            ..Dependencies::default()
        },
    )
    .await
    .expect("the vault starts");
    let base_url = format!("http://127.0.0.1:{}", app.port());
    let keys = app.key_ring();
    let audit = app.audit_stats();
    let shutdown = app.shutdown_token();
    let task = tokio::spawn(app.run_until_stopped());
    (base_url, keys, audit, shutdown, task)
}

/// A test service on the bus receiving every event.
async fn listen(
    bus: &Bus,
) -> (
    ConsumerHandle,
    mpsc::UnboundedReceiver<Delivery>,
    Arc<Mutex<Vec<Delivery>>>,
) {
    // Everything on the events exchange: "iD connected" too, for the leak search.
    let spec = ServiceSpec::new("test-listener").bind(exchanges::EVENTS, "#");
    bus.declare(&Topology::new().service(spec.clone()))
        .await
        .expect("declare listener");
    let (tx, rx) = mpsc::unbounded_channel();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let handle = bus
        .consume(
            &spec,
            ConsumerOptions::default(),
            handler_fn(move |delivery: Delivery| {
                let tx = tx.clone();
                let kept = kept.clone();
                async move {
                    kept.lock().expect("lock").push(delivery.clone());
                    let _ = tx.send(delivery);
                    Outcome::Ack
                }
            }),
        )
        .await
        .expect("listener");
    (handle, rx, seen)
}

/// A connected researcher: their iD, person id and what ORCID issued.
pub struct Connected {
    pub orcid: OrcidId,
    pub person_id: String,
    pub tokens: UserTokens,
}

impl TestVault {
    pub fn client(&self, caller_token: &str) -> VaultClient {
        VaultClient::new(&self.base_url, caller_token.into()).expect("client")
    }

    pub fn writer(&self) -> VaultClient {
        self.client(TEST_WRITER_TOKEN)
    }

    pub fn portal(&self) -> VaultClient {
        self.client(TEST_PORTAL_TOKEN)
    }

    /// A new user at the simulator who authorized the test client; ORCID's tokens.
    pub async fn authorize_user(&self) -> (OrcidId, UserTokens) {
        let n = Uuid::new_v4().simple().to_string();
        let http = http();
        let res = http
            .post(format!("{}/_sim/users", self.sim.base_url()))
            .json(&serde_json::json!({
                "given-names": "Sofia", "family-name": format!("Garcia {}", &n[..6]),
                "email": format!("{n}@mailinator.com"), "password": "test-user-password",
            }))
            .send()
            .await
            .expect("POST /_sim/users");
        assert_eq!(res.status(), 201);
        let body: serde_json::Value = res.json().await.expect("json");
        let orcid = OrcidId::parse(body["orcid"].as_str().expect("orcid")).expect("iD");
        let tokens = self.authorize(&orcid).await;
        (orcid, tokens)
    }

    /// `orcid` (already a user) authorizes the test client again: a new token pair.
    pub async fn authorize(&self, orcid: &OrcidId) -> UserTokens {
        let url = format!(
            "{}&sim_user={orcid}&sim_decision=authorize",
            self.orcid
                .authorize_url(TEST_REDIRECT_URI, orcid::client::Scopes::parse(SCOPES))
                .to_url()
        );
        let res = http().get(url).send().await.expect("authorize");
        assert_eq!(res.status(), 302, "headless authorize");
        let location = res.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned();
        let code = url::Url::parse(&location)
            .expect("url")
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("code");
        self.orcid
            .exchange_code(&code, TEST_REDIRECT_URI)
            .await
            .expect("code exchange")
    }

    /// The "iD connected" event the portal would publish.
    pub fn connect_event(
        &self,
        orcid: &OrcidId,
        person_id: &str,
        tokens: &UserTokens,
        granted_at: DateTime<Utc>,
    ) -> IdConnected {
        IdConnected {
            orcid: *orcid,
            person_id: person_id.to_owned(),
            name: tokens.name.clone(),
            scopes: tokens
                .scopes
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            sealed_token: token_vault::handoff::seal_tokens(
                &self.settings.handoff_public,
                orcid,
                person_id,
                tokens,
            )
            .expect("seal"),
            key_id: self.settings.handoff_key_id.clone(),
            granted_at,
        }
    }

    /// Publishes `message` and waits until the vault's inbox marks it processed (a message
    /// whose id the inbox has not seen yet).
    pub async fn publish_and_wait(&self, message: &OutgoingMessage) {
        self.publish(message).await;
        let id = message.envelope.message_id.to_string();
        wait_for("the message to be processed", || async {
            (self
                .db
                .count(
                    "SELECT COUNT(*) FROM token_vault_inbox WHERE message_id = $1",
                    vec![id.clone().into()],
                )
                .await
                > 0)
            .then_some(())
        })
        .await;
    }

    /// How many `message_type` events the vault recorded in its outbox (for `orcid`).
    pub async fn outbox_count(&self, message_type: &str, orcid: &OrcidId) -> i64 {
        let rows = self
            .db
            .db
            .query_all_raw(self.db.statement(
                "SELECT body FROM token_vault_outbox WHERE message_type = $1",
                vec![message_type.into()],
            ))
            .await
            .expect("outbox query");
        let orcid = orcid.to_string();
        let count = rows
            .iter()
            .filter(|row| {
                row.try_get_by_index::<String>(0)
                    .map(|p| p.contains(&orcid))
                    .unwrap_or(false)
            })
            .count();
        i64::try_from(count).expect("count")
    }

    pub async fn publish(&self, message: &OutgoingMessage) {
        self.bus.publish(message).await.expect("publish");
    }

    /// Connects a new user, waits for "connection ready".
    pub async fn connect_user(&self) -> Connected {
        let (orcid, tokens) = self.authorize_user().await;
        self.connect_with(orcid, tokens).await
    }

    /// Publishes "iD connected" for these tokens and waits for "connection ready".
    pub async fn connect_with(&self, orcid: OrcidId, tokens: UserTokens) -> Connected {
        let person_id = format!("P-{}", &Uuid::new_v4().simple().to_string()[..8]);
        let event = self.connect_event(&orcid, &person_id, &tokens, Utc::now());
        self.publish(&OutgoingMessage::event(&event).expect("event"))
            .await;
        let ready = self.next_event("connection-ready").await;
        assert_eq!(ready.envelope.payload["orcid"], orcid.to_string());
        Connected {
            orcid,
            person_id,
            tokens,
        }
    }

    /// The next event the listener received (of `message_type`), within [`DEADLINE`].
    pub async fn next_event(&self, message_type: &str) -> Delivery {
        let mut events = self.events.lock().await;
        if let Some(at) = events
            .pending
            .iter()
            .position(|d| d.envelope.message_type == message_type)
        {
            return events.pending.remove(at).expect("present");
        }
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, events.rx.recv()).await {
                Ok(Some(d)) if d.envelope.message_type == message_type => return d,
                Ok(Some(d)) => events.pending.push_back(d),
                Ok(None) => panic!("the listener stopped"),
                Err(_) => panic!("no {message_type} event within {DEADLINE:?}"),
            }
        }
    }

    /// Whether a request to the sim's member API with `token` is accepted (200) or refused.
    pub async fn sim_status_with(&self, orcid: &OrcidId, token: &str) -> u16 {
        http()
            .get(format!("{}/v3.0/{orcid}/record", self.sim.base_url()))
            .bearer_auth(token)
            .header("Accept", "application/json")
            .send()
            .await
            .expect("GET record")
            .status()
            .as_u16()
    }

    /// Restarts the vault process on the same database, simulator and bus.
    pub async fn restart(&mut self) {
        self.shutdown.cancel();
        let _ = (&mut self.task).await;
        let (base_url, keys, audit, shutdown, task) =
            start_app(&self.settings, &self.db.url, self.sim.base_url(), &self.bus).await;
        self.base_url = base_url;
        self.keys = keys;
        self.audit = audit;
        self.shutdown = shutdown;
        self.task = task;
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let result = (&mut self.task).await.expect("vault task");
        result.expect("the vault stops cleanly");
        if let Some(listener) = self.listener.take() {
            listener.stop().await;
        }
        self.sim.stop().await;
        self.db.drop().await;
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest")
}
