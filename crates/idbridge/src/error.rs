//! What can go wrong in a command, and the exit code each failure gives.

use std::path::PathBuf;

use idbridge_platform::config::ConfigError;

/// Exit codes (also in the README).
pub mod exit {
    /// Everything asked was done.
    pub const OK: u8 = 0;
    /// The command failed: configuration, a database or the broker unreachable, a publish
    /// not confirmed, a service that stopped with an error.
    pub const FAILED: u8 = 1;
    /// The command line is wrong (clap's own code).
    pub const USAGE: u8 = 2;
    /// The input had bad rows or events: they are listed, and the good ones were published
    /// (nothing with `--dry-run`).
    pub const BAD_INPUT: u8 = 3;
}

/// A command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration does not load.
    #[error("{what}: {source}")]
    Config {
        /// Whose configuration.
        what: &'static str,
        /// Every problem with its key and fix.
        #[source]
        source: ConfigError,
    },
    /// An input file cannot be read.
    #[error("cannot read {path}: {source}; check the path and its permissions")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file or directory cannot be written.
    #[error("cannot write {path}: {source}; check the directory exists and is writable")]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The command needs RabbitMQ but `[bus] amqp_url` is not set.
    #[error(
        "{command} needs RabbitMQ: set bus.amqp_url (IDBRIDGE__BUS__AMQP_URL=amqp://user:password@host:5672/%2f) or pass --config with a [bus] section"
    )]
    NoBroker {
        /// The command.
        command: &'static str,
    },
    /// The broker refused or failed.
    #[error("the message bus failed: {0}")]
    Bus(#[from] bus::BusError),
    /// A database is unreachable.
    #[error("{service}: {source}")]
    Database {
        /// Whose database.
        service: &'static str,
        /// Why.
        #[source]
        source: idbridge_platform::database::ConnectError,
    },
    /// A migration failed.
    #[error("{service}: applying migrations failed: {source}")]
    Migrate {
        /// Whose migrations.
        service: &'static str,
        /// Why.
        #[source]
        source: sea_orm::DbErr,
    },
    /// The service needs PostgreSQL but its `database.url` is SQLite.
    #[error(
        "{service} needs PostgreSQL: set database.url (IDBRIDGE__DATABASE__URL=postgres://user@host:5432/db) or pass --config with a [database] section"
    )]
    NeedsPostgres {
        /// Which.
        service: &'static str,
    },
    /// A service did not start or stopped with an error.
    #[error("{service}: {message}")]
    Service {
        /// Which.
        service: &'static str,
        /// Its error chain.
        message: String,
    },
    /// The admin server cannot listen.
    #[error(
        "cannot listen on {address} for the admin server: {source}; pick a free port in admin.listen"
    )]
    AdminBind {
        /// The address.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A service's port cannot be bound under `up`.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Signal handlers cannot be installed.
    #[error("cannot install the signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// Logging cannot be set up.
    #[error("logging: {0}")]
    Telemetry(#[from] idbridge_platform::telemetry::TelemetryError),
    /// A key cannot be generated or loaded.
    #[error("keys: {0}")]
    Keys(String),
    /// The ORCID simulator did not start.
    #[error("the ORCID simulator cannot listen on 127.0.0.1: {0}")]
    Simulator(#[source] std::io::Error),
    /// The demo tour failed.
    #[error("demo: {0}")]
    Demo(String),
    /// Key rotation failed.
    #[error("key rotation failed: {0}")]
    Rotate(#[from] token_vault::RotationError),
}

/// An error and its causes on one line (`a: b: c`).
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}
