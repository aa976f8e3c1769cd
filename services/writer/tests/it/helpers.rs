//! Shared test plumbing: a fresh PostgreSQL database per test (or a SQLite file), orcid-sim
//! in-process, researchers connected through the simulator's real OAuth flow, a token source
//! over those connections, HR events, and readers of the simulator's record and stats.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bus::events::{
    AffiliationSection, HrEvent, HrEventType, Organization as EventOrganization,
    PartialDate as EventDate, Person, PersonNames, Position,
};
use bus::{Envelope, Outcome};
use chrono::Utc;
use futures_util::future::BoxFuture;
use idbridge_platform::config::Sources;
use orcid::OrcidId;
use orcid::client::{AccessToken, ClientConfig, OrcidClient, RetryPolicy, UserTokens};
use orcid::model::{DisambiguationSource, Organization};
use orcid_sim::{SimConfig, SimHandle};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};
use uuid::Uuid;
use writer::config::{DEFAULTS, WriterConfig};
use writer::ledger::LedgerItem;
use writer::tokens::{PersonToken, TokenError, TokenSource};
use writer::{Cause, WritePolicy, Writer, WriterParts};

pub const DEADLINE: Duration = Duration::from_secs(30);

/// The member client registered in every simulator (test data, not a real credential).
pub const TEST_CLIENT_ID: &str = "APP-TESTWRITER000001";
pub const TEST_CLIENT_SECRET: &str = "test-writer-client-secret";
pub const TEST_REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
/// Another member client (items of another source).
pub const OTHER_CLIENT_ID: &str = "APP-TESTWRITER000002";
pub const OTHER_CLIENT_SECRET: &str = "test-writer-other-secret";

pub const WRITE_SCOPES: &str = "/read-limited /activities/update";

/// The institution of every test: a ROR id the simulator's org table knows.
pub const ROR_ID: &str = "https://ror.org/05qwgg493";

pub fn institution() -> Organization {
    Organization::new(
        "Boston University",
        "Boston",
        Some("Massachusetts".to_owned()),
        "US",
        DisambiguationSource::Ror,
        ROR_ID,
    )
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

pub fn database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of this test's own, migrated; [`TestDb::drop`] removes it.
pub struct TestDb {
    pub db: DatabaseConnection,
    pub url: String,
    name: Option<String>,
    path: Option<std::path::PathBuf>,
}

impl TestDb {
    /// A fresh PostgreSQL database at `TEST_DATABASE_URL`'s server, with the writer's tables.
    pub async fn postgres() -> Self {
        let db = Self::empty_postgres().await;
        writer::migrate(&db.db).await.expect("migrations apply");
        db
    }

    /// A fresh, empty PostgreSQL database (for another service).
    pub async fn empty_postgres() -> Self {
        let admin_url = database_url();
        let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "writer tests need PostgreSQL at {admin_url} (set TEST_DATABASE_URL; ./scripts/test.sh starts it): {e}"
            )
        });
        let name = format!("wr_{}", Uuid::new_v4().simple());
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
            db,
            url,
            name: Some(name),
            path: None,
        }
    }

    /// A fresh SQLite file.
    pub async fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("writer-{}.sqlite", Uuid::new_v4().simple()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let db = Database::connect(&url).await.expect("SQLite");
        writer::migrate(&db).await.expect("migrations apply");
        Self {
            db,
            url,
            name: None,
            path: Some(path),
        }
    }

    /// One number from a `SELECT COUNT(*) AS n …`.
    pub async fn count(&self, sql: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(Statement::from_string(self.db.get_database_backend(), sql))
            .await
            .expect("query")
            .expect("a row");
        row.try_get("", "n").expect("n")
    }

    /// Message types in the outbox, in order.
    pub async fn outbox_types(&self) -> Vec<String> {
        self.db
            .query_all_raw(Statement::from_string(
                self.db.get_database_backend(),
                "SELECT message_type FROM writer_outbox ORDER BY seq",
            ))
            .await
            .expect("outbox")
            .iter()
            .map(|r| r.try_get::<String>("", "message_type").expect("type"))
            .collect()
    }

    /// Payloads of outbox messages of `message_type`, in order.
    pub async fn outbox_payloads(&self, message_type: &str) -> Vec<Value> {
        self.db
            .query_all_raw(Statement::from_string(
                self.db.get_database_backend(),
                "SELECT message_type, body FROM writer_outbox ORDER BY seq",
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
        if let Some(name) = self.name {
            let admin = Database::connect(&database_url()).await.expect("admin");
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
            let _ = admin.close().await;
        }
        if let Some(path) = self.path {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The simulator and researchers

pub async fn spawn_sim() -> SimHandle {
    orcid_sim::spawn(
        SimConfig::for_tests()
            .with_client(TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_REDIRECT_URI)
            .with_client(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, TEST_REDIRECT_URI),
    )
    .await
    .expect("simulator starts")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

/// The writer's ORCID client against the simulator; quick retries keep fault tests short.
pub fn orcid_client(sim: &SimHandle) -> OrcidClient {
    client_of(sim, TEST_CLIENT_ID, TEST_CLIENT_SECRET)
}

pub fn client_of(sim: &SimHandle, id: &str, secret: &str) -> OrcidClient {
    OrcidClient::new(
        ClientConfig::custom(sim.base_url(), id, secret.to_owned().into())
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
        .expect("POST /_sim/users");
    assert_eq!(res.status(), 201, "POST /_sim/users");
    let body: Value = res.json().await.expect("json");
    OrcidId::parse(body["orcid"].as_str().expect("orcid")).expect("valid iD")
}

/// The user approves `client_id` for `scopes` (headless) and the client exchanges the code
/// through the real ORCID client: a real token.
pub async fn authorize(
    sim: &SimHandle,
    orcid: &OrcidId,
    scopes: &str,
    client: &OrcidClient,
) -> AccessToken {
    authorize_tokens(sim, orcid, scopes, client)
        .await
        .access_token
}

/// [`authorize`], keeping everything ORCID answered (refresh token, scopes, expiry).
pub async fn authorize_tokens(
    sim: &SimHandle,
    orcid: &OrcidId,
    scopes: &str,
    client: &OrcidClient,
) -> UserTokens {
    let res = http()
        .get(format!("{}/oauth/authorize", sim.base_url()))
        .query(&[
            ("client_id", client.client_id()),
            ("response_type", "code"),
            ("scope", scopes),
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

/// `GET /_sim/records/{orcid}`.
pub async fn sim_record(sim: &SimHandle, orcid: &OrcidId) -> Value {
    let res = http()
        .get(format!("{}/_sim/records/{orcid}", sim.base_url()))
        .send()
        .await
        .expect("GET /_sim/records");
    assert_eq!(res.status(), 200);
    res.json().await.expect("json")
}

/// The items of one listing (`employments`, `invited-positions`, …) on the record.
pub async fn sim_items(sim: &SimHandle, orcid: &OrcidId, listing: &str) -> Vec<Value> {
    sim_record(sim, orcid).await["items"][listing]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub async fn sim_post(sim: &SimHandle, path: &str, body: Value) -> reqwest::Response {
    http()
        .post(format!("{}{path}", sim.base_url()))
        .json(&body)
        .send()
        .await
        .expect("sim hook")
}

/// Adds a fault rule (`POST /_sim/faults`).
pub async fn add_fault(sim: &SimHandle, rule: Value) {
    let res = sim_post(sim, "/_sim/faults", rule).await;
    assert_eq!(res.status(), 201, "POST /_sim/faults");
}

pub async fn clear_faults(sim: &SimHandle) {
    let res = http()
        .delete(format!("{}/_sim/faults", sim.base_url()))
        .send()
        .await
        .expect("DELETE /_sim/faults");
    assert_eq!(res.status(), 204);
}

/// `GET /_sim/stats`.
pub async fn sim_stats(sim: &SimHandle) -> Value {
    http()
        .get(format!("{}/_sim/stats", sim.base_url()))
        .send()
        .await
        .expect("GET /_sim/stats")
        .json()
        .await
        .expect("json")
}

/// Every counted member-API call (any status), summed.
pub fn api_calls(stats: &Value) -> u64 {
    stats
        .as_object()
        .map(|routes| {
            routes
                .iter()
                .filter(|(route, _)| route.contains("/v3.0/"))
                .flat_map(|(_, statuses)| statuses.as_object().into_iter().flatten())
                .filter_map(|(_, n)| n.as_u64())
                .sum()
        })
        .unwrap_or(0)
}

/// Calls of `route` (e.g. `POST /v3.0/{orcid}/employment`) answered `status`.
pub fn calls(stats: &Value, route: &str, status: &str) -> u64 {
    stats[route][status].as_u64().unwrap_or(0)
}

pub fn text(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

// ---------------------------------------------------------------------------------------
// Tokens: connections made through the simulator's OAuth

struct Connection {
    token: PersonToken,
    revoked: bool,
}

/// A token source over connections made in the test through orcid-sim's OAuth flow: the
/// tokens are real; `mark_revoked` ends the connection as the vault would.
#[derive(Default)]
pub struct SimTokens {
    connections: Mutex<HashMap<String, Connection>>,
    reports: Mutex<Vec<(String, String)>>,
}

impl SimTokens {
    pub fn connect(&self, person_id: &str, orcid: &OrcidId, token: AccessToken) {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                person_id.to_owned(),
                Connection {
                    token: PersonToken {
                        orcid: *orcid,
                        access_token: token,
                        generation: Some(1),
                    },
                    revoked: false,
                },
            );
    }

    /// `(person_id, reason)` of every revoked report.
    pub fn reports(&self) -> Vec<(String, String)> {
        self.reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl TokenSource for SimTokens {
    fn token<'a>(&'a self, person_id: &'a str) -> BoxFuture<'a, Result<PersonToken, TokenError>> {
        Box::pin(async move {
            let connections = self
                .connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match connections.get(person_id) {
                None => Err(TokenError::NotConnected),
                Some(c) if c.revoked => Err(TokenError::Revoked),
                Some(c) => Ok(c.token.clone()),
            }
        })
    }

    fn mark_revoked<'a>(
        &'a self,
        person_id: &'a str,
        _token: &'a PersonToken,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), TokenError>> {
        Box::pin(async move {
            if let Some(c) = self
                .connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_mut(person_id)
            {
                c.revoked = true;
            }
            self.reports
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((person_id.to_owned(), reason.to_owned()));
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------
// A writer against the simulator

pub struct Harness {
    pub sim: SimHandle,
    pub db: TestDb,
    pub tokens: Arc<SimTokens>,
    pub client: OrcidClient,
    pub writer: Writer,
}

impl Harness {
    pub async fn new() -> Self {
        Self::with(TestDb::postgres().await, WritePolicy::default()).await
    }

    pub async fn with(db: TestDb, policy: WritePolicy) -> Self {
        let sim = spawn_sim().await;
        let tokens = Arc::new(SimTokens::default());
        let client = orcid_client(&sim);
        let writer = Writer::new(WriterParts {
            db: db.db.clone(),
            orcid: client.clone(),
            tokens: tokens.clone(),
            institution: institution(),
            policy,
            relay_waker: None,
        });
        Self {
            sim,
            db,
            tokens,
            client,
            writer,
        }
    }

    /// A user on the simulator who connected (with `scopes`) as `person_id`.
    pub async fn connected_with(&self, person_id: &str, scopes: &str) -> OrcidId {
        let orcid = create_user(&self.sim, person_id).await;
        let token = authorize(&self.sim, &orcid, scopes, &self.client).await;
        self.tokens.connect(person_id, &orcid, token);
        orcid
    }

    pub async fn connected(&self, person_id: &str) -> OrcidId {
        self.connected_with(person_id, WRITE_SCOPES).await
    }

    /// Applies `event` as a consumer would, honouring `Retry` outcomes (without the tier
    /// delays), up to `max` times; returns the last outcome.
    pub async fn drive(&self, event: &HrEvent, max: usize) -> Outcome {
        let mut outcome = Outcome::Ack;
        for _ in 0..max {
            outcome = self.writer.apply_hr_event(event, &Cause::none()).await;
            match &outcome {
                Outcome::Retry { after, .. } => {
                    tokio::time::sleep((*after).min(Duration::from_millis(20))).await;
                }
                _ => return outcome,
            }
        }
        outcome
    }

    pub async fn apply(&self, event: &HrEvent) -> Outcome {
        self.writer.apply_hr_event(event, &Cause::none()).await
    }

    pub async fn item(&self, person_id: &str, position_id: &str) -> LedgerItem {
        self.writer
            .ledger()
            .item(person_id, position_id)
            .await
            .expect("ledger")
            .unwrap_or_else(|| panic!("no ledger item for {person_id}/{position_id}"))
    }

    pub async fn finish(self) {
        self.sim.stop().await;
        self.db.drop().await;
    }
}

// ---------------------------------------------------------------------------------------
// HR events

pub struct Hr {
    pub event: HrEvent,
}

/// A hire of `person_id` into `position_id` (employment) on `start`.
pub fn hire(person_id: &str, position_id: &str, start: &str) -> Hr {
    Hr {
        event: HrEvent {
            event_id: format!("hr-{}", Uuid::new_v4().simple()),
            event_type: HrEventType::Hire,
            occurred_at: Utc::now(),
            person: Person {
                person_id: person_id.to_owned(),
                names: Some(PersonNames {
                    given_names: Some("Josiah".to_owned()),
                    family_name: Some("Carberry".to_owned()),
                }),
                email: None,
            },
            position: Position {
                position_id: position_id.to_owned(),
                section: AffiliationSection::Employment,
                department: Some("Psychoceramics".to_owned()),
                role_title: Some("Professor".to_owned()),
                start_date: Some(EventDate::parse(start).expect("date")),
                end_date: None,
                organization: None,
                url: None,
                external_ids: Vec::new(),
            },
        },
    }
}

impl Hr {
    /// The same position, another event type, a fresh event id, one second later.
    pub fn then(&self, event_type: HrEventType) -> Hr {
        let mut event = self.event.clone();
        event.event_id = format!("hr-{}", Uuid::new_v4().simple());
        event.event_type = event_type;
        event.occurred_at = self.event.occurred_at + chrono::Duration::seconds(1);
        Hr { event }
    }

    pub fn end(mut self, end: &str) -> Hr {
        self.event.position.end_date = Some(EventDate::parse(end).expect("date"));
        self
    }

    pub fn start(mut self, start: &str) -> Hr {
        self.event.position.start_date = Some(EventDate::parse(start).expect("date"));
        self
    }

    pub fn role(mut self, role: &str) -> Hr {
        self.event.position.role_title = Some(role.to_owned());
        self
    }

    pub fn department(mut self, department: &str) -> Hr {
        self.event.position.department = Some(department.to_owned());
        self
    }

    pub fn section(mut self, section: AffiliationSection) -> Hr {
        self.event.position.section = section;
        self
    }

    pub fn organization(mut self, org: EventOrganization) -> Hr {
        self.event.position.organization = Some(org);
        self
    }

    pub fn envelope(&self) -> Envelope {
        Envelope::new(&self.event).expect("envelope")
    }
}

// ---------------------------------------------------------------------------------------
// Applications (bus wiring)

/// The writer's configuration through the real loader: in-process bus with `prefix`, the
/// given database, the simulator, short retry tiers.
pub fn app_config(sim: &SimHandle, db_url: &str, prefix: &str) -> WriterConfig {
    WriterConfig::from_sources(
        &Sources::new(DEFAULTS)
            .set("database.url", db_url)
            .and_then(|s| s.set("bus.prefix", prefix))
            .and_then(|s| s.set("orcid.registry", sim.base_url()))
            .and_then(|s| s.set("orcid.client_id", TEST_CLIENT_ID))
            .and_then(|s| s.set("orcid.client_secret", TEST_CLIENT_SECRET))
            .and_then(|s| s.set("institution.name", "Boston University"))
            .and_then(|s| s.set("institution.city", "Boston"))
            .and_then(|s| s.set("institution.region", "Massachusetts"))
            .and_then(|s| s.set("institution.country", "US"))
            .and_then(|s| s.set("institution.disambiguated_id", ROR_ID))
            .and_then(|s| s.set("writer.partitions", 4))
            .and_then(|s| s.set("writer.retry_tiers_ms", vec![50u64, 100, 200]))
            .and_then(|s| s.set("writer.max_attempts", 6))
            .and_then(|s| s.set("writer.http.listen", "127.0.0.1:0"))
            .expect("overrides"),
    )
    .expect("valid configuration")
}

/// A bus on the RabbitMQ at `TEST_AMQP_URL`; fails loudly without one.
pub async fn amqp_bus(prefix: &str) -> bus::Bus {
    let url = std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    bus::Bus::amqp(bus::AmqpConfig::new(&url), prefix)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "this test needs RabbitMQ at {} (set TEST_AMQP_URL; ./scripts/test.sh starts it): {e}",
                bus::redact_url(&url)
            )
        })
}

pub fn prefix() -> String {
    format!("t{}", &Uuid::new_v4().simple().to_string()[..12])
}
