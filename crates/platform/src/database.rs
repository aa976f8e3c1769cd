//! The `[database]` section every service with a database reads, its validation, and the one
//! way to open a connection pool from it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::{Problems, Validate};

/// `[database]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://…` or `sqlite://…` (may hold a password, hence secret).
    pub url: SecretString,
    /// Pool size.
    pub max_connections: u32,
    /// Apply pending migrations at start.
    pub migrate: bool,
}

impl Validate for DatabaseConfig {
    fn validate(&self, problems: &mut Problems) {
        let url = self.url.expose_secret();
        if !(url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || url.starts_with("sqlite:"))
        {
            problems.add(
                "database.url",
                "is neither a PostgreSQL nor a SQLite URL",
                "write postgres://user@host:5432/idbridge or sqlite://path/to/file.sqlite?mode=rwc",
            );
        }
        if self.max_connections == 0 {
            problems.add("database.max_connections", "is 0", "use at least 1");
        }
    }
}

/// The database is unreachable or refused the connection.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to the database at {url}")]
pub struct ConnectError {
    /// The URL without its password.
    pub url: String,
    /// The driver's error.
    #[source]
    pub source: DbErr,
}

/// Opens a pool of `config.max_connections` to `config.url`, without SQL statement logging.
///
/// On PostgreSQL every connection says who it is: `application_name` is `application` (say
/// `idbridge-writer`), so `pg_stat_activity`, the server's log and `pg_stat_statements` tell
/// the services apart, unless the URL names an `application_name` itself or `PGAPPNAME` is
/// set (then that one is kept).
///
/// On SQLite the file is put in WAL mode with a 30 s busy timeout, because a service's
/// readers and writers (API, consumer, outbox relay, maintenance jobs) share one file.
///
/// # Errors
/// [`ConnectError`], naming the URL without its password.
pub async fn connect(
    config: &DatabaseConfig,
    application: &str,
) -> Result<DatabaseConnection, ConnectError> {
    let url = config.url.expose_secret();
    let mut options = ConnectOptions::new(url.to_owned());
    let application = application.to_owned();
    options
        .max_connections(config.max_connections)
        .sqlx_logging(false)
        .map_sqlx_postgres_opts(move |o| {
            if o.get_application_name().is_some() {
                o
            } else {
                o.application_name(&application)
            }
        })
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(30))
        });
    Database::connect(options)
        .await
        .map_err(|source| ConnectError {
            url: ::bus::redact_url(url),
            source,
        })
}

/// The PostgreSQL advisory lock every idbridge migration holds: "idbridge" in ASCII. Advisory
/// locks belong to one database, so migrations of separate databases never wait for each other.
pub const MIGRATION_LOCK_KEY: i64 = 0x6964_6272_6964_6765;

fn sqlx_err(e: sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e)))
}

/// Runs `migrations` (a service's `Migrator::up`, on `db`'s pool) while this process holds the
/// database's migration lock, so processes migrating one PostgreSQL database at the same moment
/// (replicas starting with `database.migrate = true`, `idbridge migrate` run twice) take turns
/// instead of racing: unguarded, `CREATE TABLE IF NOT EXISTS` and the migration history's
/// primary key fail in all but one of them. The next one waits, then finds nothing left to
/// apply. A process that has to wait says so in its log.
///
/// The lock ([`MIGRATION_LOCK_KEY`]) is a session-level advisory lock on a connection of its
/// own, taken out of the pool (the pool may open a replacement, so a pool of one still
/// migrates), and it is released by closing that connection: also when this future is dropped,
/// and by PostgreSQL when the process dies. Hold it once per process at a time: `migrations`
/// must not call this function again (a second session of the same process would wait for the
/// first for ever). On SQLite `migrations` simply runs (SQLite serialises writers itself, and
/// one process uses the file).
///
/// # Errors
/// The lock could not be taken (connection refused, server gone), or `migrations` failed.
pub async fn with_migration_lock<T>(
    db: &DatabaseConnection,
    migrations: impl Future<Output = Result<T, DbErr>>,
) -> Result<T, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return migrations.await;
    }
    let mut session = db
        .get_postgres_connection_pool()
        .acquire()
        .await
        .map_err(sqlx_err)?
        .detach();
    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .fetch_one(&mut session)
        .await
        .map_err(sqlx_err)?;
    if !taken {
        tracing::info!("another process is migrating this database; waiting for it to finish");
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut session)
            .await
            .map_err(sqlx_err)?;
    }
    let result = migrations.await;
    // Ending the session releases the lock; a failed goodbye changes nothing for the
    // migrations (the server ends the session when the socket closes).
    if let Err(e) = sqlx::Connection::close(session).await {
        tracing::debug!(error = %e, "closing the migration lock's connection");
    }
    result
}
