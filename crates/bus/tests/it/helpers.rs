//! Shared test plumbing: per-test names and databases, broker inspection, rabbitmqctl.

use std::{future::Future, time::Duration};

use bus::{AmqpConfig, Bus, Envelope, OutgoingMessage, migration::TableNames, redact_url};
use lapin::{Connection, ConnectionProperties, options::QueueDeclareOptions, types::FieldTable};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use uuid::Uuid;

pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

pub fn database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh name prefix so parallel tests never share a queue.
pub fn prefix() -> String {
    format!("t{}", &Uuid::new_v4().simple().to_string()[..12])
}

pub fn config(url: &str) -> AmqpConfig {
    let mut config = AmqpConfig::new(url).connection_name("bus-tests");
    config.max_reconnect_delay = Duration::from_millis(500);
    config
}

pub async fn amqp_bus(prefix: &str) -> Bus {
    amqp_bus_at(&amqp_url(), prefix).await
}

pub async fn amqp_bus_at(url: &str, prefix: &str) -> Bus {
    Bus::amqp(config(url), prefix).await.unwrap_or_else(|e| {
        panic!(
            "RabbitMQ is required at {} (set TEST_AMQP_URL; ./scripts/test.sh starts it): {e}",
            redact_url(url)
        )
    })
}

/// Messages ready in `queue` (not counting unacknowledged ones).
pub async fn queue_depth(queue: &str) -> u32 {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .expect("RabbitMQ (TEST_AMQP_URL)");
    let channel = connection.create_channel().await.expect("channel");
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue exists");
    let _ = connection.close(200, "bye".into()).await;
    declared.message_count()
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

/// A small raw message on `exchange` (relative name).
pub fn message(exchange: &str, routing_key: &str, payload: serde_json::Value) -> OutgoingMessage {
    OutgoingMessage::new(
        exchange,
        routing_key,
        Envelope::raw("test-event", 1, payload),
    )
}

pub fn tables() -> TableNames {
    TableNames::for_service("svc").unwrap()
}

/// The service migrator a real service would write: the bus's tables plus its own.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        bus::migration::migrations(&tables())
    }
}

/// A handler's own table, to count effects.
pub async fn create_effects_table(db: &DatabaseConnection) {
    db.execute_unprepared(
        "CREATE TABLE effects (message_id VARCHAR(64) NOT NULL, note VARCHAR(255) NOT NULL)",
    )
    .await
    .unwrap();
}

pub async fn effects(db: &DatabaseConnection, message_id: &str) -> i64 {
    let row = db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            db.get_database_backend(),
            match db.get_database_backend() {
                sea_orm::DatabaseBackend::Postgres => {
                    "SELECT COUNT(*) AS n FROM effects WHERE message_id = $1"
                }
                _ => "SELECT COUNT(*) AS n FROM effects WHERE message_id = ?",
            },
            [message_id.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

pub async fn total_effects(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM effects",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

/// A PostgreSQL database of its own, migrated; dropped by [`TestDb::drop`].
pub struct TestDb {
    pub db: DatabaseConnection,
    name: String,
}

pub async fn postgres() -> TestDb {
    let admin_url = database_url();
    let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is required at {admin_url} (set TEST_DATABASE_URL; ./scripts/test.sh starts it): {e}")
    });
    let name = format!("test_{}", Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let _ = admin.close().await;
    let (base, _) = admin_url
        .split('?')
        .next()
        .unwrap()
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL has a database path");
    let db = Database::connect(format!("{base}/{name}")).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    create_effects_table(&db).await;
    TestDb { db, name }
}

impl TestDb {
    pub async fn drop(self) {
        let _ = self.db.close().await;
        let admin = Database::connect(&database_url()).await.unwrap();
        admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .unwrap();
        let _ = admin.close().await;
    }
}

/// A SQLite database in a temporary file, migrated.
pub struct TestSqlite {
    pub db: DatabaseConnection,
    path: std::path::PathBuf,
}

pub async fn sqlite() -> TestSqlite {
    let path = std::env::temp_dir().join(format!("bus-test-{}.sqlite", Uuid::new_v4().simple()));
    let db = Database::connect(format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    Migrator::up(&db, None).await.unwrap();
    create_effects_table(&db).await;
    TestSqlite { db, path }
}

impl TestSqlite {
    pub async fn drop(self) {
        let _ = self.db.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Runs `rabbitmqctl`, panicking with its output when it fails.
pub async fn rabbitmqctl(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new("rabbitmqctl")
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("rabbitmqctl (RabbitMQ's CLI, which this test needs on the broker's machine) could not run: {e}"));
        assert!(
            output.status.success(),
            "rabbitmqctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    })
    .await
    .unwrap()
}

/// A RabbitMQ user of this test's own, so closing "its" connections touches nobody else's.
pub struct TempUser {
    pub name: String,
    password: String,
}

impl TempUser {
    pub async fn create() -> Self {
        let name = format!("bus-test-{}", &Uuid::new_v4().simple().to_string()[..10]);
        let password = Uuid::new_v4().simple().to_string();
        rabbitmqctl(&["add_user", &name, &password]).await;
        let user = Self { name, password };
        user.grant().await;
        user
    }

    pub async fn grant(&self) {
        rabbitmqctl(&["set_permissions", "-p", "/", &self.name, ".*", ".*", ".*"]).await;
    }

    pub async fn revoke(&self) {
        rabbitmqctl(&["clear_permissions", "-p", "/", &self.name]).await;
    }

    pub async fn close_connections(&self) {
        rabbitmqctl(&[
            "close_all_user_connections",
            &self.name,
            "closed by bus test",
        ])
        .await;
    }

    /// `TEST_AMQP_URL` with this user's credentials.
    pub fn url(&self) -> String {
        let base = amqp_url();
        let (scheme, rest) = base.split_once("://").expect("amqp URL");
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        format!("{scheme}://{}:{}@{host}", self.name, self.password)
    }

    pub async fn delete(self) {
        rabbitmqctl(&["delete_user", &self.name]).await;
    }
}

/// A TCP proxy in front of the test broker (`TEST_AMQP_URL`): for each accepted client it
/// connects to the broker and hands both sockets to `wire`, which starts the tasks that carry
/// the bytes (and may hold or drop some). Dropping the proxy stops them all.
pub struct BrokerProxy {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
    pumps: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl BrokerProxy {
    pub async fn start<W>(wire: W) -> Self
    where
        W: Fn(tokio::net::TcpStream, tokio::net::TcpStream) -> Vec<tokio::task::JoinHandle<()>>
            + Send
            + 'static,
    {
        let broker = url::Url::parse(&amqp_url()).unwrap();
        let upstream = format!(
            "{}:{}",
            broker.host_str().unwrap(),
            broker.port().unwrap_or(5672)
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pumps: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> =
            std::sync::Arc::default();
        let spawned = pumps.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                spawned.lock().unwrap().extend(wire(client, server));
            }
        });
        Self { addr, task, pumps }
    }

    /// `TEST_AMQP_URL` through this proxy.
    pub fn url(&self) -> String {
        let mut url = url::Url::parse(&amqp_url()).unwrap();
        url.set_ip_host(self.addr.ip()).unwrap();
        url.set_port(Some(self.addr.port())).unwrap();
        url.to_string()
    }
}

impl Drop for BrokerProxy {
    fn drop(&mut self) {
        self.task.abort();
        for pump in self.pumps.lock().unwrap().drain(..) {
            pump.abort();
        }
    }
}
