//! The `[database]` section every service with a database reads, its validation, and the one
//! way to open a connection pool from it.

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
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
