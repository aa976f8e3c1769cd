//! The `[database]` section every service with a database reads, its validation, and the one
//! way to open a connection pool from it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{
    ConnAcquireErr, ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr,
};
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

/// As sea-orm maps a failed pool acquire.
fn acquire_err(e: sqlx::Error) -> DbErr {
    match e {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        e => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))),
    }
}

fn query_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))
}

/// Runs `migrations` (a service's `Migrator::up`, on `db`'s pool) while this process holds the
/// database's migration lock, so processes migrating one PostgreSQL database at the same moment
/// (replicas starting with `database.migrate = true`, the migration Jobs of two releases) take
/// turns instead of racing: unguarded, `CREATE TABLE IF NOT EXISTS` and the migration history's
/// primary key fail in all but one of them. The next one waits, then finds nothing left to
/// apply. A process that has to wait logs so (info, target `idbridge_platform::database`).
///
/// The lock ([`MIGRATION_LOCK_KEY`]) is a transaction-level advisory lock, taken in a
/// transaction kept open on a connection of its own, out of the pool (the pool may open a
/// replacement, so a pool of one still migrates). It ends with that transaction: rolled back
/// when the migrations are done, aborted by PostgreSQL when the connection closes (this future
/// dropped, the process dead). A transaction, not the session, holds it so that it also works
/// through PgBouncer in transaction pooling mode, which keeps a server connection with its
/// client only while a transaction is open. The session's TCP keepalives are shortened for the
/// transaction (30 s idle, then 3 probes 10 s apart), so a lock left by a machine that vanished
/// is freed in about a minute rather than after the operating system's two hours. A future
/// dropped while it still waits leaves its request queued in PostgreSQL until the lock is
/// free; that session then sees the closed socket and ends.
///
/// Hold it once per process at a time: `migrations` must not call this function again (a
/// second session of the same process would wait for the first for ever). On SQLite
/// `migrations` simply run: one process uses the file.
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
        .map_err(acquire_err)?
        .detach();
    let mut lock = sqlx::Connection::begin(&mut session)
        .await
        .map_err(query_err)?;
    for setting in [
        "SET LOCAL tcp_keepalives_idle = 30",
        "SET LOCAL tcp_keepalives_interval = 10",
        "SET LOCAL tcp_keepalives_count = 3",
    ] {
        sqlx::query(setting)
            .execute(&mut *lock)
            .await
            .map_err(query_err)?;
    }
    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .fetch_one(&mut *lock)
        .await
        .map_err(query_err)?;
    if !taken {
        tracing::info!("another process is migrating this database; waiting for it to finish");
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *lock)
            .await
            .map_err(query_err)?;
    }
    let result = migrations.await;
    // Ending the transaction releases the lock; should the rollback or the goodbye fail, the
    // closed socket ends the session and PostgreSQL aborts the transaction all the same.
    if let Err(e) = lock.rollback().await {
        tracing::debug!(error = %e, "ending the migration lock's transaction");
    }
    if let Err(e) = sqlx::Connection::close(session).await {
        tracing::debug!(error = %e, "closing the migration lock's connection");
    }
    result
}
