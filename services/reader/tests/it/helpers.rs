//! Shared test plumbing: a fresh PostgreSQL database per test, orcid-sim in-process,
//! researchers connected through the simulator's real OAuth flow, a token source over those
//! connections, the reader on RabbitMQ, and a listener of what it publishes.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bus::events::{ConnectionReady, RecordChanged, exchanges};
use bus::{
    Bus, ConsumerHandle, ConsumerOptions, Delivery, Envelope, Outcome, OutgoingMessage,
    ServiceSpec, Topology, handler_fn,
};
use chrono::Utc;
use futures_util::future::BoxFuture;
use idbridge_platform::config::Sources;
use orcid::OrcidId;
use orcid::client::{AccessToken, ClientConfig, OrcidClient, RetryPolicy};
use orcid_sim::{SimConfig, SimHandle};
use reader::config::{DEFAULTS, ReaderConfig};
use reader::tokens::{ConnectionRef, ConnectionsPage, RecordToken, TokenError, TokenSource};
use reader::{Application, Dependencies};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

pub const DEADLINE: Duration = Duration::from_secs(60);

/// The member client registered in every simulator (test data, not a real credential).
pub const TEST_CLIENT_ID: &str = "APP-TESTREADER000001";
pub const TEST_CLIENT_SECRET: &str = "test-reader-client-secret";
pub const TEST_REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
pub const SCOPES: &str = "/read-limited /activities/update";

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

/// A database of this test's own, migrated; [`TestDb::drop`] removes it.
pub struct TestDb {
    pub db: DatabaseConnection,
    pub url: String,
    name: String,
}

impl TestDb {
    pub async fn postgres() -> Self {
        let db = Self::empty_postgres().await;
        reader::migrate(&db.db).await.expect("migrations apply");
        db
    }

    /// A fresh, empty database (for another service).
    pub async fn empty_postgres() -> Self {
        let admin_url = database_url();
        let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("reader tests need PostgreSQL at {admin_url} (set TEST_DATABASE_URL): {e}")
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
        let db = Database::connect(&url).await.expect("test database");
        Self { db, url, name }
    }

    /// Payloads of outbox messages of `message_type`, in order.
    pub async fn outbox_payloads(&self, message_type: &str) -> Vec<Value> {
        self.db
            .query_all_raw(Statement::from_string(
                self.db.get_database_backend(),
                "SELECT message_type, body FROM reader_outbox ORDER BY seq",
            ))
            .await
            .expect("outbox")
            .iter()
            .filter(|r| r.try_get::<String>("", "message_type").expect("type") == message_type)
            .map(|r| {
                let body: String = r.try_get("", "body").expect("body");
                let envelope: Value = serde_json::from_str(&body).expect("json");
                envelope["payload"].clone()
            })
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
// The simulator and researchers

pub async fn spawn_sim() -> SimHandle {
    orcid_sim::spawn(SimConfig::for_tests().with_client(
        TEST_CLIENT_ID,
        TEST_CLIENT_SECRET,
        TEST_REDIRECT_URI,
    ))
    .await
    .expect("simulator starts")
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

pub async fn create_user(sim: &SimHandle, given: &str) -> OrcidId {
    let email = format!("{given}-{}@mailinator.com", Uuid::new_v4().simple());
    let res = http()
        .post(format!("{}/_sim/users", sim.base_url()))
        .json(&json!({"given-names": given, "family-name": "Tester", "email": email, "password": "test-user-password"}))
        .send()
        .await
        .expect("POST /_sim/users");
    assert_eq!(res.status(), 201, "POST /_sim/users");
    let body: Value = res.json().await.expect("json");
    OrcidId::parse(body["orcid"].as_str().expect("orcid")).expect("valid iD")
}

/// The user approves our client (headless) and the code is exchanged: a real token.
pub async fn authorize(sim: &SimHandle, orcid: &OrcidId, client: &OrcidClient) -> AccessToken {
    authorize_tokens(sim, orcid, client).await.access_token
}

/// [`authorize`], keeping everything ORCID answered.
pub async fn authorize_tokens(
    sim: &SimHandle,
    orcid: &OrcidId,
    client: &OrcidClient,
) -> orcid::client::UserTokens {
    let res = http()
        .get(format!("{}/oauth/authorize", sim.base_url()))
        .query(&[
            ("client_id", client.client_id()),
            ("response_type", "code"),
            ("scope", SCOPES),
            ("redirect_uri", TEST_REDIRECT_URI),
            ("sim_user", &orcid.to_string()),
            ("sim_decision", "authorize"),
        ])
        .send()
        .await
        .expect("GET /oauth/authorize");
    assert_eq!(res.status(), 302, "headless authorize");
    let location = res.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let code = url::Url::parse(&location)
        .expect("absolute")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code in redirect");
    client
        .exchange_code(&code, TEST_REDIRECT_URI)
        .await
        .expect("code exchange")
}

/// A user hook call (`POST`, `PUT`, `DELETE` under `/_sim/records/…`); returns the JSON.
pub async fn sim_hook(sim: &SimHandle, method: &str, path: &str, body: Option<Value>) -> Value {
    let url = format!("{}/_sim/records/{path}", sim.base_url());
    let request = match method {
        "POST" => http().post(url),
        "PUT" => http().put(url),
        "DELETE" => http().delete(url),
        other => panic!("method {other}"),
    };
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let res = request.send().await.expect("sim hook");
    assert!(
        res.status().is_success(),
        "{method} {path}: {}",
        res.status()
    );
    res.json().await.unwrap_or(Value::Null)
}

/// The user adds a work of their own; returns its put code.
pub async fn user_adds_work(sim: &SimHandle, orcid: &OrcidId, title: &str) -> u64 {
    let answer = sim_hook(
        sim,
        "POST",
        &format!("{orcid}/work"),
        Some(json!({"title": {"title": {"value": title}}, "type": "book"})),
    )
    .await;
    answer["put-code"].as_u64().expect("put-code")
}

/// Our client writes an employment; returns its put code.
pub async fn we_write_employment(
    client: &OrcidClient,
    token: &AccessToken,
    orcid: &OrcidId,
    role: &str,
) -> u64 {
    let body = json!({
        "role-title": role,
        "start-date": {"year": {"value": "2020"}},
        "organization": {
            "name": "Boston University",
            "address": {"city": "Boston", "region": "Massachusetts", "country": "US"},
            "disambiguated-organization": {
                "disambiguated-organization-identifier": "https://ror.org/05qwgg493",
                "disambiguation-source": "ROR"
            }
        }
    });
    client
        .create(
            token,
            orcid,
            orcid::model::Section::Affiliation(orcid::model::AffiliationType::Employment),
            &body,
        )
        .await
        .expect("employment written")
        .get()
}

/// Our client writes a work; returns its put code.
pub async fn we_write_work(
    client: &OrcidClient,
    token: &AccessToken,
    orcid: &OrcidId,
    title: &str,
) -> u64 {
    let body = json!({
        "title": {"title": {"value": title}},
        "type": "journal-article",
        "external-ids": {"external-id": [{
            "external-id-type": "doi",
            "external-id-value": format!("10.1234/{}", Uuid::new_v4().simple()),
            "external-id-relationship": "self"
        }]}
    });
    client
        .create(token, orcid, orcid::model::Section::Work, &body)
        .await
        .expect("work written")
        .get()
}

/// `GET /_sim/stats`: calls of `route` (any status).
pub async fn sim_calls(sim: &SimHandle, route: &str) -> u64 {
    let stats: Value = http()
        .get(format!("{}/_sim/stats", sim.base_url()))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    stats[route]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Tokens

#[derive(Default)]
pub struct SimTokens {
    connections: Mutex<BTreeMap<String, (String, AccessToken, bool)>>,
    reports: Mutex<Vec<String>>,
}

impl SimTokens {
    pub fn connect(&self, person_id: &str, orcid: &OrcidId, token: AccessToken) {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(orcid.to_string(), (person_id.to_owned(), token, false));
    }

    pub fn reports(&self) -> Vec<String> {
        self.reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl TokenSource for SimTokens {
    fn token<'a>(&'a self, orcid: &'a OrcidId) -> BoxFuture<'a, Result<RecordToken, TokenError>> {
        Box::pin(async move {
            let map = self
                .connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match map.get(&orcid.to_string()) {
                None => Err(TokenError::NotConnected),
                Some((_, _, true)) => Err(TokenError::Revoked),
                Some((person_id, token, false)) => Ok(RecordToken {
                    orcid: *orcid,
                    person_id: Some(person_id.clone()),
                    access_token: token.clone(),
                    generation: Some(1),
                }),
            }
        })
    }

    fn mark_revoked<'a>(
        &'a self,
        token: &'a RecordToken,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), TokenError>> {
        Box::pin(async move {
            if let Some(c) = self
                .connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_mut(&token.orcid.to_string())
            {
                c.2 = true;
            }
            self.reports
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(format!("{}: {reason}", token.orcid));
            Ok(())
        })
    }

    fn connections<'a>(
        &'a self,
        after: Option<&'a str>,
        limit: u64,
    ) -> BoxFuture<'a, Result<ConnectionsPage, TokenError>> {
        Box::pin(async move {
            let map = self
                .connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let connections: Vec<ConnectionRef> = map
                .iter()
                .filter(|(orcid, (_, _, revoked))| {
                    !revoked && after.is_none_or(|a| orcid.as_str() > a)
                })
                .take(usize::try_from(limit).unwrap_or(usize::MAX))
                .map(|(orcid, (person_id, _, _))| ConnectionRef {
                    orcid: OrcidId::parse(orcid).expect("iD"),
                    person_id: person_id.clone(),
                })
                .collect();
            let next_after = (connections.len() as u64 == limit)
                .then(|| connections.last().map(|c| c.orcid.to_string()))
                .flatten();
            Ok(ConnectionsPage {
                connections,
                next_after,
            })
        })
    }
}

// ---------------------------------------------------------------------------------------
// The reader on RabbitMQ

pub fn prefix() -> String {
    format!("t{}", &Uuid::new_v4().simple().to_string()[..12])
}

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

/// The reader's configuration through the real loader.
pub fn app_config(
    sim: &SimHandle,
    db_url: &str,
    prefix: &str,
    reconcile: Option<u64>,
) -> ReaderConfig {
    ReaderConfig::from_sources(
        &Sources::new(DEFAULTS)
            .set("database.url", db_url)
            .and_then(|s| s.set("bus.prefix", prefix))
            .and_then(|s| s.set("orcid.registry", sim.base_url()))
            .and_then(|s| s.set("orcid.client_id", TEST_CLIENT_ID))
            .and_then(|s| s.set("orcid.client_secret", TEST_CLIENT_SECRET))
            .and_then(|s| s.set("reader.partitions", 2))
            .and_then(|s| s.set("reader.retry_tiers_ms", vec![50u64, 100, 200]))
            .and_then(|s| s.set("reader.max_attempts", 4))
            .and_then(|s| s.set("reader.reconcile.enabled", reconcile.is_some()))
            .and_then(|s| s.set("reader.reconcile.period_secs", reconcile.unwrap_or(86_400)))
            .and_then(|s| s.set("reader.reconcile.min_spacing_ms", 0))
            .and_then(|s| s.set("reader.reconcile.lease_secs", 5))
            .and_then(|s| s.set("reader.reconcile.refresh_secs", 1))
            .expect("overrides"),
    )
    .expect("valid configuration")
}

/// Everything one test needs.
pub struct Harness {
    pub sim: SimHandle,
    pub db: TestDb,
    pub bus: Bus,
    pub client: OrcidClient,
    pub tokens: Arc<SimTokens>,
    pub app: Option<Application>,
    pub events: mpsc::UnboundedReceiver<Envelope>,
    listener: ConsumerHandle,
    topology: Topology,
    /// Received and not yet asked for.
    seen: Vec<Envelope>,
}

impl Harness {
    /// The reader on RabbitMQ with a fresh prefix and database; `reconcile`: the sweep's
    /// period in seconds, or no sweep.
    pub async fn start(reconcile: Option<u64>) -> Self {
        let sim = spawn_sim().await;
        let db = TestDb::postgres().await;
        let prefix = prefix();
        let bus = amqp_bus(&prefix).await;
        let tokens = Arc::new(SimTokens::default());
        let client = orcid_client(&sim);
        let listener_spec = ServiceSpec::new("listener")
            .bind(exchanges::EVENTS, "record.updated")
            .bind(exchanges::EVENTS, "connection.lost");
        bus.declare(
            &Topology::new()
                .exchange(exchanges::EVENTS)
                .service(listener_spec.clone()),
        )
        .await
        .expect("listener topology");
        let (tx, events) = mpsc::unbounded_channel();
        let listener = bus
            .consume(
                &listener_spec,
                ConsumerOptions::default(),
                handler_fn(move |d: Delivery| {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send(d.envelope);
                        Outcome::Ack
                    }
                }),
            )
            .await
            .expect("listener");
        let config = app_config(&sim, &db.url, &prefix, reconcile);
        let topology = reader::topology(&reader::service_spec(&config)).service(listener_spec);
        let app = Application::build_with(
            config,
            Dependencies {
                bus: Some(bus.clone()),
                database: Some(db.db.clone()),
                tokens: Some(tokens.clone()),
                orcid: Some(client.clone()),
                ..Dependencies::default()
            },
        )
        .await
        .expect("reader starts");
        Self {
            sim,
            db,
            bus,
            client,
            tokens,
            app: Some(app),
            events,
            listener,
            topology,
            seen: Vec::new(),
        }
    }

    pub fn app(&self) -> &Application {
        self.app.as_ref().expect("running")
    }

    /// A user connected to our client: iD and token.
    pub async fn connected(&self, person_id: &str) -> (OrcidId, AccessToken) {
        let orcid = create_user(&self.sim, person_id).await;
        let token = authorize(&self.sim, &orcid, &self.client).await;
        self.tokens.connect(person_id, &orcid, token.clone());
        (orcid, token)
    }

    pub async fn publish_ready(&self, orcid: &OrcidId, person_id: &str) -> Envelope {
        let message = OutgoingMessage::event(&ConnectionReady {
            orcid: *orcid,
            person_id: person_id.to_owned(),
            scopes: SCOPES.split(' ').map(str::to_owned).collect(),
            connected_at: Utc::now(),
        })
        .expect("message");
        self.bus.publish(&message).await.expect("published");
        message.envelope
    }

    pub fn record_changed(orcid: &OrcidId) -> OutgoingMessage {
        OutgoingMessage::event(&RecordChanged {
            orcid: *orcid,
            received_at: Utc::now(),
        })
        .expect("message")
    }

    /// The next message of `message_type` about `orcid` the reader published.
    pub async fn next(&mut self, message_type: &str, orcid: &OrcidId) -> Value {
        let wanted = |e: &Envelope| {
            e.message_type == message_type
                && e.payload["orcid"].as_str() == Some(orcid.to_string().as_str())
        };
        if let Some(at) = self.seen.iter().position(wanted) {
            return self.seen.remove(at).payload;
        }
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let envelope = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {message_type} for {orcid} within {DEADLINE:?}"))
                .expect("listener open");
            if wanted(&envelope) {
                return envelope.payload;
            }
            self.seen.push(envelope);
        }
    }

    pub async fn finish(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown_token().cancel();
            app.run_until_stopped().await;
        }
        self.listener.stop().await;
        let _ = self.bus.delete(&self.topology).await;
        self.bus.close().await;
        self.sim.stop().await;
        self.db.drop().await;
    }
}

/// `(section, put_code)` pairs of an event's item list.
pub fn keys(event: &Value, list: &str) -> Vec<(String, u64)> {
    event[list]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    (
                        i["section"].as_str().expect("section").to_owned(),
                        i["put_code"].as_u64().expect("put_code"),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// The reader without the bus

/// The simulator, a database and a [`reader::Reader`] over them (no RabbitMQ): for tests
/// that call `read_record` or run the sweep directly.
pub struct Direct {
    pub sim: SimHandle,
    pub db: TestDb,
    pub client: OrcidClient,
    pub tokens: Arc<SimTokens>,
    pub reader: reader::Reader,
}

impl Direct {
    pub async fn start() -> Self {
        let sim = spawn_sim().await;
        let db = TestDb::postgres().await;
        let client = orcid_client(&sim);
        let tokens = Arc::new(SimTokens::default());
        let reader = reader::Reader::new(reader::ReaderParts {
            db: db.db.clone(),
            orcid: client.clone(),
            tokens: tokens.clone(),
            relay_waker: None,
        });
        Self {
            sim,
            db,
            client,
            tokens,
            reader,
        }
    }

    /// A user connected to our client.
    pub async fn connected(&self, person_id: &str) -> OrcidId {
        let orcid = create_user(&self.sim, person_id).await;
        let token = authorize(&self.sim, &orcid, &self.client).await;
        self.tokens.connect(person_id, &orcid, token);
        orcid
    }

    pub async fn finish(self) {
        self.sim.stop().await;
        self.db.drop().await;
    }
}
