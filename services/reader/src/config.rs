//! The reader's configuration: embedded defaults (`config.default.toml`), an optional TOML
//! file, then `IDBRIDGE__…` environment variables; validated at load.

use std::path::Path;
use std::time::Duration;

pub use idbridge_platform::bus::BusConfig;
use idbridge_platform::config::{ConfigError, Problems, Sources, Validate, env_var_name};
pub use idbridge_platform::database::DatabaseConfig;
/// `[orcid]` (shared with every service that talks to ORCID).
pub use idbridge_platform::orcid::OrcidConfig;
use idbridge_platform::telemetry::TelemetryConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::reconcile::{MAX_LEASE, MIN_LEASE, ReconcileSettings};

/// The embedded defaults.
pub const DEFAULTS: &str = include_str!("../config.default.toml");

/// Everything the reader reads. Shared sections (`database`, `bus`, `orcid`, `telemetry`)
/// have the same shape in every service; unknown top-level sections are ignored.
#[derive(Clone, Debug, Deserialize)]
pub struct ReaderConfig {
    /// `[reader]`: the service itself.
    pub reader: ReaderSection,
    /// `[database]`.
    pub database: DatabaseConfig,
    /// `[bus]`.
    pub bus: BusConfig,
    /// `[orcid]`: the member API client; items whose source is its `client_id` are ours.
    pub orcid: OrcidConfig,
    /// `[telemetry]`.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// `[reader]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderSection {
    /// Partitions of the reader's queue (one read in flight per key).
    pub partitions: u16,
    /// Retry tiers in milliseconds, strictly increasing.
    pub retry_tiers_ms: Vec<u64>,
    /// Deliveries before a message is parked.
    pub max_attempts: u32,
    /// `[reader.vault]`.
    pub vault: VaultAccess,
    /// `[reader.reconcile]`.
    pub reconcile: ReconcileConfig,
}

/// `[reader.vault]`: the token vault's API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultAccess {
    /// Base URL (`http://token-vault:8081`).
    pub url: String,
    /// The reader's bearer token for the vault (rights `token:read`, `connections:list`,
    /// `connections:revoke`).
    #[serde(default)]
    pub caller_token: Option<SecretString>,
}

/// `[reader.reconcile]`: the periodic re-read of every connection.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileConfig {
    /// Run the sweep at all (a replica may leave it to others; the lease keeps it to one).
    pub enabled: bool,
    /// Every connection is read once per this many seconds.
    pub period_secs: u64,
    /// The least time between two sweep reads, whatever the number of connections.
    pub min_spacing_ms: u64,
    /// How long a replica holds the sweep without renewing (5 to 3600; renewed every
    /// third of it, also during a read).
    pub lease_secs: u64,
    /// The connections are listed again at least this often.
    pub refresh_secs: u64,
}

impl ReaderConfig {
    /// Loads defaults, then `file` when given, then the process environment.
    ///
    /// # Errors
    /// Every problem found, each with its key and fix.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Sources::new(DEFAULTS).file_opt(file).process_env().load()
    }

    /// Loads from explicit [`Sources`] (start from [`DEFAULTS`]).
    ///
    /// # Errors
    /// As [`ReaderConfig::load`].
    pub fn from_sources(sources: &Sources) -> Result<Self, ConfigError> {
        sources.load()
    }

    /// The bus's retry policy for the reader's queue.
    pub fn retry_policy(&self) -> bus::RetryPolicy {
        bus::RetryPolicy {
            tiers: self
                .reader
                .retry_tiers_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            max_attempts: self.reader.max_attempts,
        }
    }

    /// The sweep's timing.
    pub fn reconcile_settings(&self) -> ReconcileSettings {
        let r = &self.reader.reconcile;
        ReconcileSettings {
            period: Duration::from_secs(r.period_secs),
            min_spacing: Duration::from_millis(r.min_spacing_ms),
            lease: Duration::from_secs(r.lease_secs),
            refresh: Duration::from_secs(r.refresh_secs),
        }
    }
}

impl Validate for ReaderConfig {
    fn validate(&self, problems: &mut Problems) {
        self.validate_reader(problems);
        self.database.validate(problems);
        self.bus.validate(problems);
        self.orcid.validate(problems);
        self.telemetry.validate(problems);
    }
}

impl ReaderConfig {
    fn validate_reader(&self, problems: &mut Problems) {
        let reader = &self.reader;
        if reader.partitions == 0 {
            problems.add(
                "reader.partitions",
                "is 0",
                "use at least 1 (4 is a good start)",
            );
        }
        if reader.max_attempts == 0 {
            problems.add(
                "reader.max_attempts",
                "is 0",
                "use at least 1 (8 by default)",
            );
        }
        if let Err(e) = self.retry_policy().validate() {
            problems.add(
                "reader.retry_tiers_ms",
                e.to_string(),
                "list delays in milliseconds, strictly increasing, e.g. [5000, 30000, 120000]",
            );
        }
        match url::Url::parse(reader.vault.url.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => problems.add(
                "reader.vault.url",
                "is not an http(s) URL",
                "set it to the token vault's API, e.g. http://token-vault:8081",
            ),
        }
        if reader
            .vault
            .caller_token
            .as_ref()
            .is_some_and(|t| t.expose_secret().trim().is_empty())
        {
            problems.add(
                "reader.vault.caller_token",
                "is empty",
                format!(
                    "set {} to the reader's token for the vault (the vault stores its SHA-256)",
                    env_var_name("reader.vault.caller_token")
                ),
            );
        }
        let r = &reader.reconcile;
        if r.period_secs == 0 {
            problems.add(
                "reader.reconcile.period_secs",
                "is 0",
                "use the time in which every connection is read once, e.g. 86400 (a day)",
            );
        }
        let (min_lease, max_lease) = (MIN_LEASE.as_secs(), MAX_LEASE.as_secs());
        if !(min_lease..=max_lease).contains(&r.lease_secs) {
            problems.add(
                "reader.reconcile.lease_secs",
                format!("is {}, outside {min_lease}..={max_lease}", r.lease_secs),
                format!(
                    "use a few tens of seconds, e.g. 60: the holder renews every third of it, \
                     and a crashed holder blocks the sweep that long (at most {max_lease})"
                ),
            );
        }
        if r.refresh_secs == 0 {
            problems.add(
                "reader.reconcile.refresh_secs",
                "is 0",
                "use a few minutes, e.g. 600",
            );
        }
    }
}
