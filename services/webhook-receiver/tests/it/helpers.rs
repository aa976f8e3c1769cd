//! Shared test plumbing: a fresh PostgreSQL database per test, RabbitMQ with a random prefix,
//! orcid-sim in-process (webhooks delivered only on flush), the receiver with the `/webhook`
//! token straight from the simulator's token endpoint, and a listener of "record changed".

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bus::events::{ConnectionLost, ConnectionReady, LostReason, RecordChanged, exchanges};
use bus::{
    Bus, ConsumerHandle, ConsumerOptions, Delivery, Outcome, OutgoingMessage, ServiceSpec,
    Topology, handler_fn,
};
use chrono::{DateTime, Utc};
use idbridge_platform::config::Sources;
use orcid::OrcidId;
use orcid::client::{ClientConfig, OrcidClient, RetryPolicy};
use orcid_sim::{SimConfig, SimHandle};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;
use webhook_receiver::config::{DEFAULTS, ReceiverConfig};
use webhook_receiver::registry::{Registration, RegistrationState};
use webhook_receiver::tokens::{ClientTokens, OrcidClientTokens};
use webhook_receiver::{Application, Dependencies};

pub const DEADLINE: Duration = Duration::from_secs(30);

/// The member client registered in every simulator (test data, not a real credential).
pub const TEST_CLIENT_ID: &str = "APP-TESTWEBHOOK00001";
pub const TEST_CLIENT_SECRET: &str = "test-webhook-client-secret";
pub const TEST_REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
/// The callback key of every test (test data).
pub const TEST_CALLBACK_KEY: &str = "test-callback-key-0123456789abcdef0123456789";

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

/// A database of this test's own; [`TestDb::drop`] removes it.
pub struct TestDb {
    pub db: DatabaseConnection,
    pub url: String,
    name: String,
}

impl TestDb {
    /// A fresh, empty PostgreSQL database.
    pub async fn postgres() -> Self {
        let admin_url = database_url();
        let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "webhook-receiver tests need PostgreSQL at {admin_url} (set TEST_DATABASE_URL): {e}"
            )
        });
        let name = format!("test_{}", Uuid::new_v4().simple());
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
        Self { db, url, name }
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
// The simulator

/// The simulator, delivering webhooks only when flushed (the periodic run is an hour away),
/// so a test sees every delivery in the flush's answer.
pub async fn spawn_sim() -> SimHandle {
    let mut config =
        SimConfig::for_tests().with_client(TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_REDIRECT_URI);
    config.webhook_interval = Duration::from_secs(3600);
    orcid_sim::spawn(config).await.expect("simulator starts")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

pub fn orcid_client(sim: &SimHandle) -> OrcidClient {
    OrcidClient::new(
        ClientConfig::custom(
            sim.base_url(),
            TEST_CLIENT_ID,
            TEST_CLIENT_SECRET.to_owned().into(),
        )
        .expect("loopback URL")
        .with_retry(RetryPolicy::new(
            2,
            Duration::from_millis(5),
            Duration::from_millis(20),
        )),
    )
    .expect("ORCID client")
}

/// Creates a user on the simulator; returns the iD.
pub async fn create_user(sim: &SimHandle, given: &str) -> OrcidId {
    let email = format!("{given}-{}@mailinator.com", Uuid::new_v4().simple());
    let res = http()
        .post(format!("{}/_sim/users", sim.base_url()))
        .json(&json!({"given-names": given, "family-name": "Tester", "email": email, "password": "test-user-password"}))
        .send()
        .await
        .expect("create user");
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.expect("json");
    OrcidId::parse(body["orcid"].as_str().expect("orcid")).expect("valid iD")
}

/// The user adds a work to their record on ORCID's site (the record changes).
pub async fn user_edits_record(sim: &SimHandle, orcid: &OrcidId) {
    let res = http()
        .post(format!("{}/_sim/records/{orcid}/work", sim.base_url()))
        .json(&json!({"title": {"title": {"value": format!("Edited {}", Uuid::new_v4())}}, "type": "book"}))
        .send()
        .await
        .expect("edit record");
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
}

/// Runs the simulator's webhook delivery now; returns the attempts.
pub async fn flush_webhooks(sim: &SimHandle) -> Vec<Value> {
    let res = http()
        .post(format!("{}/_sim/webhooks/flush", sim.base_url()))
        .send()
        .await
        .expect("flush");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    body["attempts"].as_array().cloned().unwrap_or_default()
}

/// The flush attempts for `orcid`.
pub fn attempts_for<'a>(attempts: &'a [Value], orcid: &OrcidId) -> Vec<&'a Value> {
    attempts
        .iter()
        .filter(|a| a["orcid"] == orcid.to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------
// The bus and the receiver

/// A bus on the RabbitMQ at `TEST_AMQP_URL`; fails loudly without one.
pub async fn amqp_bus(prefix: &str) -> Bus {
    let url = std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    Bus::amqp(bus::AmqpConfig::new(&url), prefix)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "this test needs RabbitMQ at {} (set TEST_AMQP_URL): {e}",
                bus::redact_url(&url)
            )
        })
}

pub fn prefix() -> String {
    format!("t{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// A bound loopback listener and its port (the receiver's public URL must be known before
/// it starts).
pub fn bind_loopback(port: u16) -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("a loopback port");
    let port = listener.local_addr().expect("address").port();
    (listener, port)
}

pub fn config(sim: &SimHandle, db: &TestDb, prefix: &str, port: u16) -> ReceiverConfig {
    ReceiverConfig::from_sources(
        &Sources::new(DEFAULTS)
            .set("webhooks.public_url", format!("http://127.0.0.1:{port}"))
            .and_then(|s| s.set("webhooks.callback_key", TEST_CALLBACK_KEY))
            .and_then(|s| s.set("webhooks.http.listen", format!("127.0.0.1:{port}")))
            .and_then(|s| s.set("webhooks.debounce_ms", 700))
            .and_then(|s| s.set("webhooks.flush_interval_ms", 50))
            .and_then(|s| s.set("webhooks.partitions", 2))
            .and_then(|s| s.set("webhooks.retry_tiers_ms", vec![50u64, 100, 200]))
            .and_then(|s| s.set("webhooks.max_attempts", 6))
            .and_then(|s| s.set("webhooks.rate_limit.per_minute", 1))
            .and_then(|s| s.set("webhooks.rate_limit.burst", 5))
            .and_then(|s| s.set("database.url", db.url.clone()))
            .and_then(|s| s.set("bus.prefix", prefix))
            .and_then(|s| s.set("orcid.registry", sim.base_url()))
            .and_then(|s| s.set("orcid.client_id", TEST_CLIENT_ID))
            .and_then(|s| s.set("orcid.client_secret", TEST_CLIENT_SECRET))
            .expect("overrides"),
    )
    .expect("valid configuration")
}

async fn build_app(
    sim: &SimHandle,
    db: &TestDb,
    bus: &Bus,
    config: &ReceiverConfig,
    tokens: Option<Arc<dyn ClientTokens>>,
    listener: std::net::TcpListener,
) -> Application {
    Application::build_with(
        config.clone(),
        Dependencies {
            bus: Some(bus.clone()),
            database: Some(db.db.clone()),
            tokens,
            orcid: Some(orcid_client(sim)),
            listener: Some(listener),
            ..Dependencies::default()
        },
    )
    .await
    .expect("receiver starts")
}

/// The receiver, a listener of "record changed", and what they run on.
pub struct Receiver {
    pub app: Application,
    pub bus: Bus,
    pub base: String,
    pub config: ReceiverConfig,
    listener: ConsumerHandle,
    listener_spec: ServiceSpec,
    changed: mpsc::UnboundedReceiver<RecordChanged>,
}

impl Receiver {
    pub async fn start(sim: &SimHandle, db: &TestDb) -> Self {
        Self::start_with_debounce(sim, db, 700).await
    }

    /// With a debounce window of `debounce_ms`.
    pub async fn start_with_debounce(sim: &SimHandle, db: &TestDb, debounce_ms: u64) -> Self {
        let prefix = prefix();
        let bus = amqp_bus(&prefix).await;
        let tokens: Arc<dyn ClientTokens> = Arc::new(OrcidClientTokens::new(orcid_client(sim)));
        Self::start_on(sim, db, bus, &prefix, Some(tokens), None, debounce_ms).await
    }

    /// On `bus` (prefix `prefix`), with `tokens`, or else the vault at `vault` (URL, caller
    /// token).
    pub async fn start_on(
        sim: &SimHandle,
        db: &TestDb,
        bus: Bus,
        prefix: &str,
        tokens: Option<Arc<dyn ClientTokens>>,
        vault: Option<(String, String)>,
        debounce_ms: u64,
    ) -> Self {
        // The listener first, so no "record changed" is unroutable.
        let listener_spec = ServiceSpec::new("listener").bind(exchanges::EVENTS, "record.changed");
        bus.declare(
            &Topology::new()
                .exchange(exchanges::EVENTS)
                .service(listener_spec.clone()),
        )
        .await
        .expect("listener topology");
        let (tx, changed) = mpsc::unbounded_channel();
        let listener = bus
            .consume(
                &listener_spec,
                ConsumerOptions::default(),
                handler_fn(move |d: Delivery| {
                    let tx = tx.clone();
                    async move {
                        if let Ok(event) = d.payload::<RecordChanged>() {
                            let _ = tx.send(event);
                        }
                        Outcome::Ack
                    }
                }),
            )
            .await
            .expect("listener");
        let (http_listener, port) = bind_loopback(0);
        let mut config = config(sim, db, prefix, port);
        config.webhooks.debounce_ms = debounce_ms;
        if let Some((url, token)) = vault {
            config.webhooks.vault.url = url;
            config.webhooks.vault.caller_token = Some(token.into());
        }
        let app = build_app(sim, db, &bus, &config, tokens, http_listener).await;
        assert_eq!(app.port(), port);
        Self {
            app,
            bus,
            base: format!("http://127.0.0.1:{port}"),
            config,
            listener,
            listener_spec,
            changed,
        }
    }

    /// Stops the receiver (gracefully) and starts a new one on the same database, bus and
    /// configuration; the listener keeps running.
    pub async fn restart(self, sim: &SimHandle, db: &TestDb) -> Self {
        let Self {
            app,
            bus,
            base,
            config,
            listener,
            listener_spec,
            changed,
        } = self;
        let port = app.port();
        app.shutdown_token().cancel();
        app.run_until_stopped().await;
        let tokens: Arc<dyn ClientTokens> = Arc::new(OrcidClientTokens::new(orcid_client(sim)));
        let (http_listener, _) = bind_loopback(port);
        let app = build_app(sim, db, &bus, &config, Some(tokens), http_listener).await;
        Self {
            app,
            bus,
            base,
            config,
            listener,
            listener_spec,
            changed,
        }
    }

    pub async fn publish_ready(&self, orcid: &OrcidId, person_id: &str) -> DateTime<Utc> {
        let at = Utc::now();
        let event = ConnectionReady {
            orcid: *orcid,
            person_id: person_id.to_owned(),
            scopes: vec!["/read-limited".into(), "/activities/update".into()],
            connected_at: at,
        };
        self.bus
            .publish(&OutgoingMessage::event(&event).expect("message"))
            .await
            .expect("publish ready");
        at
    }

    pub async fn publish_lost(&self, orcid: &OrcidId, person_id: &str) {
        let event = ConnectionLost {
            orcid: *orcid,
            person_id: person_id.to_owned(),
            reason: LostReason::Disconnected,
            detected_at: Utc::now(),
            primary_orcid: None,
        };
        self.bus
            .publish(&OutgoingMessage::event(&event).expect("message"))
            .await
            .expect("publish lost");
    }

    /// Waits until `orcid`'s registration is in `state`.
    pub async fn wait_state(&self, orcid: &OrcidId, state: RegistrationState) -> Registration {
        let registry = self.app.registry();
        wait_for(&format!("{orcid} {state:?}"), || async {
            registry
                .registration(orcid)
                .await
                .expect("registry")
                .filter(|r| r.state == state)
        })
        .await
    }

    /// The next "record changed".
    pub async fn next_changed(&mut self) -> RecordChanged {
        tokio::time::timeout(DEADLINE, self.changed.recv())
            .await
            .expect("\"record changed\" in time")
            .expect("the listener runs")
    }

    /// Every "record changed" received within `quiet` from now.
    pub async fn changed_within(&mut self, quiet: Duration) -> Vec<RecordChanged> {
        let mut all = Vec::new();
        let deadline = tokio::time::Instant::now() + quiet;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.changed.recv()).await {
            all.push(event);
        }
        all
    }

    pub async fn stop(self) {
        self.listener.stop().await;
        let token = self.app.shutdown_token();
        token.cancel();
        self.app.run_until_stopped().await;
        let spec = webhook_receiver::service_spec(&self.config);
        let _ = self
            .bus
            .delete(&webhook_receiver::topology(&spec).service(self.listener_spec))
            .await;
    }
}
